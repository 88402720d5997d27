//! Embodied skills: the teacher's options in an apartment ("go to the kitchen table", "pick up
//! the apple") turned into Habitat's actions, the option menu, and an all-seeing oracle.
//!
//! Skills descend walking-distance fields over the plan's occupancy grid (`occupancy`): head
//! for the farthest cell within 0.8 m that is closer to the goal and in a straight free line,
//! turn (30° steps) until facing it, move. Fields depend only on the goal, so each is computed
//! once per goal and kept in a small per-thread cache. Within 2 m of the target a breadth-first
//! search over real poses finds the shortest way to the exact condition (reachable, the object
//! `Pick` would take, facing the furniture), which clutter would otherwise make them circle.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::env::embodied::occupancy::DistanceField;
use crate::env::embodied::text::{InView, in_view, nearest_point};
use crate::env::embodied::world::{HEADINGS, Hit, MOVE_DISTANCE, REACH};
use crate::env::embodied::{Action, EmbodiedEnv, FloorPlan, Place, PlaceName, Task, World};
use crate::skills::TeacherOption;

/// What an embodied skill says to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbodiedSkillStep {
    Act(Action),
    /// The option's target condition holds.
    Done,
    /// The option names nothing in this plan or state, or its target cannot be reached.
    Impossible,
}

/// Standing this close to an object (metres, centre to centre) puts it within reach (1 m) at
/// any heading the 30° turns leave; objects lie up to ~0.9 m from free floor (sofa backs).
const OBJECT_STANDOFF: f32 = 0.95;
/// Standing this close to furniture (to its edge) lets a ray straight ahead reach it.
const FURNITURE_STANDOFF: f32 = 0.55;
/// A room counts as reached this far inside its walls (for the field; `Done` is being in it).
const ROOM_MARGIN: f32 = 0.35;
/// How far ahead the path follower looks for a waypoint.
const HORIZON: f32 = 0.8;

/// What a distance field leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Goal {
    Room(usize),
    Furniture(usize),
    /// An object's spot, by the occupancy cell it lies in.
    Spot(usize),
}

thread_local! {
    /// Fields by (plan identity, goal); cleared when full. Plans are few and long-lived.
    static FIELDS: RefCell<HashMap<(usize, Goal), Rc<DistanceField>>> = RefCell::new(HashMap::new());
}
const FIELD_CACHE_SIZE: usize = 256;

fn field(plan: &FloorPlan, goal: Goal, spot: (f32, f32)) -> Rc<DistanceField> {
    let key = (plan as *const FloorPlan as usize, goal);
    if let Some(found) = FIELDS.with(|fields| fields.borrow().get(&key).cloned()) {
        return found;
    }
    let occupancy = plan.occupancy();
    let computed = Rc::new(match goal {
        Goal::Room(index) => {
            let rect = plan.file.rooms[index].rect;
            let inner = rect.inflated(-ROOM_MARGIN);
            let area = if inner.width() > 0.0 && inner.depth() > 0.0 { inner } else { rect };
            occupancy.distances_to(|x, z| area.contains(x, z))
        }
        Goal::Furniture(index) => {
            let rect = plan.file.furniture[index].rect;
            occupancy.distances_to(|x, z| {
                rect.distance_squared(x, z) <= FURNITURE_STANDOFF * FURNITURE_STANDOFF
                    && !wall_between(plan, (x, z), nearest_point(rect, x, z))
            })
        }
        Goal::Spot(_) => occupancy.distances_to(|x, z| {
            (x - spot.0).hypot(z - spot.1) <= OBJECT_STANDOFF && !wall_between(plan, (x, z), spot)
        }),
    });
    FIELDS.with(|fields| {
        let mut fields = fields.borrow_mut();
        if fields.len() >= FIELD_CACHE_SIZE {
            fields.clear();
        }
        fields.insert(key, Rc::clone(&computed));
    });
    computed
}

/// Whether a wall lies across the straight segment between two points (a goal seen through
/// a wall is no goal).
fn wall_between(plan: &FloorPlan, from: (f32, f32), to: (f32, f32)) -> bool {
    let (dx, dz) = (to.0 - from.0, to.1 - from.1);
    plan.wall_boxes.iter().any(|rect| {
        // Slab test on the segment (t in 0..1); an axis the segment does not move along must
        // already lie inside the slab.
        let mut enter = 0.0f32;
        let mut exit = 1.0f32;
        for (origin, delta, low, high) in [(from.0, dx, rect.min.0, rect.max.0), (from.1, dz, rect.min.1, rect.max.1)] {
            if delta.abs() < 1e-9 {
                if origin < low || origin > high {
                    return false;
                }
            } else {
                let (a, b) = ((low - origin) / delta, (high - origin) / delta);
                enter = enter.max(a.min(b));
                exit = exit.min(a.max(b));
            }
        }
        enter <= exit
    })
}

/// The heading (0..12) nearest the direction from the agent to (tx, tz).
fn heading_towards(world: &World, tx: f32, tz: f32) -> u8 {
    let yaw = (-(tz - world.pose.z)).atan2(tx - world.pose.x);
    let step = std::f32::consts::TAU / HEADINGS as f32;
    ((yaw / step).round() as i32).rem_euclid(HEADINGS as i32) as u8
}

/// Turn towards `heading`, the shorter way.
fn turn_towards(world: &World, heading: u8) -> Action {
    let left_turns = (heading as i32 - world.pose.heading as i32).rem_euclid(HEADINGS as i32);
    if left_turns <= HEADINGS as i32 / 2 { Action::TurnLeft } else { Action::TurnRight }
}

/// Face (tx, tz), or `None` when already facing it.
fn face(world: &World, tx: f32, tz: f32) -> Option<Action> {
    let heading = heading_towards(world, tx, tz);
    (heading != world.pose.heading).then(|| turn_towards(world, heading))
}

/// Actions the path follower looks ahead over (every sequence of this many moves and turns).
const LOOKAHEAD: usize = 4;

/// The next action along the goal's field, or None once the agent stands in the goal region.
/// It tries every sequence of `LOOKAHEAD` moves and turns on the real geometry (sliding
/// included) and takes the first action of the one that ends lowest on the field; when none
/// gets lower (a turn-around needs more than the lookahead), it turns towards the waypoint.
fn follow(world: &World, goal: Goal, spot: (f32, f32)) -> Result<Option<Action>, ()> {
    let plan = world.plan();
    let occupancy = plan.occupancy();
    let field = field(plan, goal, spot);
    let here = field.at(occupancy, world.pose.x, world.pose.z);
    if !here.is_finite() {
        return Err(());
    }
    if here == 0.0 {
        return Ok(None);
    }
    let mut best: Option<(f32, Action)> = None;
    let mut stack = vec![(world.pose, 0usize, None::<Action>)];
    while let Some((pose, depth, first)) = stack.pop() {
        if depth == LOOKAHEAD {
            let value = field.at(occupancy, pose.x, pose.z);
            if let Some(first) = first
                && best.is_none_or(|(b, _)| value < b - 1e-4)
            {
                best = Some((value, first));
            }
            continue;
        }
        for action in [Action::MoveForward, Action::TurnLeft, Action::TurnRight] {
            let next = match action {
                Action::MoveForward => {
                    let moved = world.pose_after(pose, action);
                    // Reaching the goal region ends the walk: score it at once.
                    if field.at(occupancy, moved.x, moved.z) == 0.0 {
                        let value = -((LOOKAHEAD - depth) as f32);
                        if best.is_none_or(|(b, _)| value < b - 1e-4) {
                            best = Some((value, first.unwrap_or(action)));
                        }
                        continue;
                    }
                    moved
                }
                _ => world.pose_after(pose, action),
            };
            stack.push((next, depth + 1, first.or(Some(action))));
        }
    }
    match best {
        Some((value, action)) if value < here - 0.05 => Ok(Some(action)),
        _ => {
            let (x, z) = (world.pose.x, world.pose.z);
            let (tx, tz) = field.waypoint(occupancy, x, z, HORIZON).unwrap_or(spot);
            Ok(Some(face(world, tx, tz).unwrap_or(Action::TurnLeft)))
        }
    }
}

/// How deep the close-range search looks (moves and turns), and how many poses it may visit.
const NEAR_DEPTH: usize = 8;
const NEAR_POSES: usize = 4000;
/// Within this straight-line distance of its target a skill plans on the real geometry
/// (`search_near`) before following the field: near clutter, the field's greedy steps can
/// turn left and right forever.
const NEAR_RANGE: f32 = 2.0;

/// The first action of a shortest sequence of moves and turns, on the real geometry (sliding
/// included), after which `reached` holds; `None` when none within `NEAR_DEPTH`. Breadth
/// first, so each step shortens the remaining plan and the follower cannot oscillate.
fn search_near(world: &World, reached: impl Fn(&World) -> bool) -> Option<Action> {
    let mut probe = world.clone();
    let key = |pose: &crate::env::embodied::Pose| {
        ((pose.x * 100.0).round() as i32, (pose.z * 100.0).round() as i32, pose.heading)
    };
    let mut seen = std::collections::HashSet::from([key(&world.pose)]);
    let mut frontier = vec![(world.pose, None::<Action>)];
    for _ in 0..NEAR_DEPTH {
        let mut next_frontier = Vec::new();
        for (pose, first) in frontier {
            for action in [Action::MoveForward, Action::TurnLeft, Action::TurnRight] {
                let next = world.pose_after(pose, action);
                if !seen.insert(key(&next)) {
                    continue;
                }
                let first = first.or(Some(action));
                probe.pose = next;
                if reached(&probe) {
                    return first;
                }
                if seen.len() >= NEAR_POSES {
                    return None;
                }
                next_frontier.push((next, first));
            }
        }
        frontier = next_frontier;
    }
    None
}

fn go_to_object(world: &World, index: usize) -> EmbodiedSkillStep {
    if world.is_reachable(index) {
        return EmbodiedSkillStep::Done;
    }
    let object = world.objects[index];
    if (object.x - world.pose.x).hypot(object.z - world.pose.z) <= NEAR_RANGE
        && let Some(action) = search_near(world, |probe| probe.is_reachable(index))
    {
        return EmbodiedSkillStep::Act(action);
    }
    let occupancy = world.plan().occupancy();
    let Some(cell) = occupancy.cell_at(object.x, object.z) else { return EmbodiedSkillStep::Impossible };
    match follow(world, Goal::Spot(cell), (object.x, object.z)) {
        Err(()) => EmbodiedSkillStep::Impossible,
        Ok(Some(action)) => EmbodiedSkillStep::Act(action),
        // In the region but not reachable yet: face it, or step closer.
        Ok(None) => EmbodiedSkillStep::Act(face(world, object.x, object.z).unwrap_or_else(|| closer(world))),
    }
}

fn facing_furniture(world: &World, index: usize) -> bool {
    let (distance, hit) = world.solid_ahead();
    hit == Hit::Furniture(index) && distance <= REACH
}

fn go_to_furniture(world: &World, index: usize) -> EmbodiedSkillStep {
    if facing_furniture(world, index) {
        return EmbodiedSkillStep::Done;
    }
    let rect = world.plan().file.furniture[index].rect;
    if rect.distance_squared(world.pose.x, world.pose.z) <= NEAR_RANGE * NEAR_RANGE
        && let Some(action) = search_near(world, |probe| facing_furniture(probe, index))
    {
        return EmbodiedSkillStep::Act(action);
    }
    // Aim a little inside the top: a ray at its very edge may pass beside it.
    let inset = 0.2f32.min(rect.width() / 2.0 - 0.01).min(rect.depth() / 2.0 - 0.01).max(0.0);
    let (nx, nz) = nearest_point(rect.inflated(-inset), world.pose.x, world.pose.z);
    match follow(world, Goal::Furniture(index), (nx, nz)) {
        Err(()) => EmbodiedSkillStep::Impossible,
        Ok(Some(action)) => EmbodiedSkillStep::Act(action),
        Ok(None) => EmbodiedSkillStep::Act(face(world, nx, nz).unwrap_or_else(|| closer(world))),
    }
}

/// Facing the target but not there yet: step forward when that moves at all, else turn.
fn closer(world: &World) -> Action {
    let (x, z, _) = world.forward_end(world.pose, MOVE_DISTANCE);
    if (x - world.pose.x).hypot(z - world.pose.z) > 0.02 { Action::MoveForward } else { Action::TurnLeft }
}

fn go_to_room(world: &World, index: usize) -> EmbodiedSkillStep {
    let plan = world.plan();
    if plan.room_index_at(world.pose.x, world.pose.z) == Some(index) {
        return EmbodiedSkillStep::Done;
    }
    let rect = plan.file.rooms[index].rect;
    let centre = ((rect.min.0 + rect.max.0) / 2.0, (rect.min.1 + rect.max.1) / 2.0);
    match follow(world, Goal::Room(index), centre) {
        Err(()) => EmbodiedSkillStep::Impossible,
        Ok(Some(action)) => EmbodiedSkillStep::Act(action),
        // In the room's inner area means in the room: unreachable here, but stay safe.
        Ok(None) => EmbodiedSkillStep::Done,
    }
}

/// The primitive action for `option` in `env` now.
///
/// Done conditions: go to a room — standing in it; go to furniture — its edge straight ahead
/// within reach; go to an object — one of the kind within reach, in front, in sight; pick up —
/// holding one of the kind; place — not holding one; explore — every room visited.
pub fn embodied_skill_action(option: TeacherOption, env: &EmbodiedEnv) -> EmbodiedSkillStep {
    let world = &env.world;
    let held_kind = world.held.map(|index| world.objects[index].kind);
    match option {
        TeacherOption::GoToPlace(name) => match world.plan().place(name.as_str()) {
            Some(Place::Room(index)) => go_to_room(world, index),
            Some(Place::Furniture(index)) => go_to_furniture(world, index),
            None => EmbodiedSkillStep::Impossible,
        },
        TeacherOption::GoToObject(kind) => {
            if world.nearest_reachable(Some(kind)).is_some() {
                return EmbodiedSkillStep::Done;
            }
            match world.nearest_object(kind, None) {
                Some(index) => go_to_object(world, index),
                None => EmbodiedSkillStep::Impossible,
            }
        }
        TeacherOption::PickUpObject(kind) => {
            if held_kind == Some(kind) {
                return EmbodiedSkillStep::Done;
            }
            if held_kind.is_some() {
                return EmbodiedSkillStep::Impossible; // hands full: place first
            }
            pick_up(world, world.nearest_object(kind, None))
        }
        TeacherOption::PlaceObject(kind) => {
            if held_kind != Some(kind) {
                return EmbodiedSkillStep::Done;
            }
            match world.place_target() {
                Some(_) => EmbodiedSkillStep::Act(Action::Place),
                None => EmbodiedSkillStep::Impossible, // go to a receptacle first
            }
        }
        TeacherOption::Explore => explore(env),
        TeacherOption::GoTo(_)
        | TeacherOption::PickUp(_)
        | TeacherOption::OpenDoor(_)
        | TeacherOption::OpenBox(_)
        | TeacherOption::Drop => EmbodiedSkillStep::Impossible,
    }
}

/// Walks up to object `target` and picks it up once it is the object `Pick` would take.
fn pick_up(world: &World, target: Option<usize>) -> EmbodiedSkillStep {
    let Some(index) = target else { return EmbodiedSkillStep::Impossible };
    if world.is_reachable(index) {
        if world.nearest_reachable(None) == Some(index) {
            return EmbodiedSkillStep::Act(Action::Pick);
        }
        // Another object is nearer the hand: find a pose from which this one is the nearest.
        let object = world.objects[index];
        let action = search_near(world, |probe| probe.nearest_reachable(None) == Some(index));
        return EmbodiedSkillStep::Act(
            action.unwrap_or_else(|| face(world, object.x, object.z).unwrap_or_else(|| closer(world))),
        );
    }
    let object = world.objects[index];
    if (object.x - world.pose.x).hypot(object.z - world.pose.z) <= NEAR_RANGE
        && let Some(action) = search_near(world, |probe| probe.nearest_reachable(None) == Some(index))
    {
        return EmbodiedSkillStep::Act(action);
    }
    go_to_object(world, index)
}

/// Goes to the nearest room not visited this episode.
fn explore(env: &EmbodiedEnv) -> EmbodiedSkillStep {
    let world = &env.world;
    let plan = world.plan();
    let (x, z) = (world.pose.x, world.pose.z);
    let unvisited = (0..plan.file.rooms.len()).filter(|&room| !env.has_visited(room)).min_by(|&a, &b| {
        let distance = |room: usize| {
            let rect = plan.file.rooms[room].rect;
            rect.distance_squared(x, z)
        };
        distance(a).total_cmp(&distance(b))
    });
    match unvisited {
        Some(room) => go_to_room(world, room),
        None => EmbodiedSkillStep::Done,
    }
}

/// The options the teacher may advise now, in a stable order: explore; go to each other room;
/// for each object in view, go to it and (hands free) pick it up; go to each receptacle in
/// view; place what is held. Like the description, it depends only on what is in view.
pub fn embodied_options(env: &EmbodiedEnv) -> Vec<TeacherOption> {
    embodied_options_in_view(env, &in_view(&env.world))
}

/// `embodied_options` with what is in view already worked out (`text::in_view`).
pub fn embodied_options_in_view(env: &EmbodiedEnv, view: &InView) -> Vec<TeacherOption> {
    let world = &env.world;
    let plan = world.plan();
    let mut menu = BTreeSet::from([TeacherOption::Explore]);
    let here = plan.room_index_at(world.pose.x, world.pose.z);
    for (index, room) in plan.file.rooms.iter().enumerate() {
        if Some(index) != here
            && let Some(name) = PlaceName::new(&room.name)
        {
            menu.insert(TeacherOption::GoToPlace(name));
        }
    }
    for &index in &view.objects {
        let kind = world.objects[index].kind;
        menu.insert(TeacherOption::GoToObject(kind));
        if world.held.is_none() {
            menu.insert(TeacherOption::PickUpObject(kind));
        }
    }
    for &index in &view.receptacles {
        if let Some(name) = PlaceName::new(&plan.file.furniture[index].name) {
            menu.insert(TeacherOption::GoToPlace(name));
        }
    }
    if let Some(held) = world.held {
        menu.insert(TeacherOption::PlaceObject(world.objects[held].kind));
    }
    menu.into_iter().collect()
}

/// The oracle's advice: the option it pursues and its action, as probabilities indexed like
/// `Action::ALL`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbodiedOracleAdvice {
    pub option: TeacherOption,
    pub action_probs: [f32; 6],
}

impl EmbodiedOracleAdvice {
    fn of(option: TeacherOption, action: Action) -> EmbodiedOracleAdvice {
        let mut action_probs = [0.0; 6];
        if let Some(index) = Action::ALL.iter().position(|&a| a == action) {
            action_probs[index] = 1.0;
        }
        EmbodiedOracleAdvice { option, action_probs }
    }

    /// The action it takes.
    pub fn action(&self) -> Action {
        let best = (0..6).fold(0, |best, i| if self.action_probs[i] > self.action_probs[best] { i } else { best });
        Action::ALL[best]
    }
}

/// The all-seeing expert. ObjectNav: go to the nearest goal object, then stop. PickPlace: go to
/// the goal object, pick it up, go to the receptacle, place it.
pub fn embodied_oracle_advice(env: &EmbodiedEnv) -> EmbodiedOracleAdvice {
    let world = &env.world;
    let acting = |option: TeacherOption, step: EmbodiedSkillStep, done: Action| match step {
        EmbodiedSkillStep::Act(action) => EmbodiedOracleAdvice::of(option, action),
        EmbodiedSkillStep::Done => EmbodiedOracleAdvice::of(option, done),
        // Unreachable goals do not happen on valid plans; wander rather than stop.
        EmbodiedSkillStep::Impossible => EmbodiedOracleAdvice::of(TeacherOption::Explore, Action::TurnLeft),
    };
    match env.task {
        Task::ObjectNav { object } => {
            let option = TeacherOption::GoToObject(object);
            acting(option, embodied_skill_action(option, env), Action::Stop)
        }
        Task::PickPlace { object, receptacle } => {
            let held_kind = world.held.map(|index| world.objects[index].kind);
            if held_kind == Some(object) {
                if world.place_target() == Some(receptacle) {
                    return EmbodiedOracleAdvice::of(TeacherOption::PlaceObject(object), Action::Place);
                }
                let name = PlaceName::new(&world.plan().file.furniture[receptacle].name);
                let step = go_to_furniture(world, receptacle);
                let option = name.map_or(TeacherOption::Explore, TeacherOption::GoToPlace);
                // Facing it (Done) means placing.
                acting(option, step, Action::Place)
            } else {
                let option = TeacherOption::PickUpObject(object);
                acting(option, pick_up(world, world.nearest_object(object, Some(receptacle))), Action::Pick)
            }
        }
    }
}

#[cfg(test)]
mod tests;
