//! Skills: each option's planner, mapping the current state to the primitive action to take
//! now, or saying the option is done or impossible. Memoryless, so any env step can ask.

use super::Knowledge;
use super::drop::drop_held;
use super::explore::explore;
use super::known_map::KnownMap;
use super::option::{Item, Target, TeacherOption};
use crate::env::grid::planner::{NavGoal, Pose};
use crate::env::grid::{Action, Cell, Color, DoorState, GridWorld, Pos};

/// What a skill says to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkillStep {
    /// Take this primitive action.
    Act(Action),
    /// The option's target condition holds: the item is held, the door open, the target faced.
    Done,
    /// The target is not known, or cannot be reached or used with what the agent knows.
    Impossible,
}

/// The primitive action for `option` now, planned only over cells `known` says the agent knows.
///
/// Done conditions: go to — facing a matching target (standing on the goal); pick up — holding
/// the item; open door — facing an open door of the color, or every known one of that color
/// open; open box — no box of that color known (an opened box is replaced by its contents);
/// drop — hands empty; explore — nothing unknown can be revealed from a reachable pose.
pub fn skill_action(option: TeacherOption, world: &GridWorld, known: &impl Knowledge) -> SkillStep {
    SkillPlanner::new(world, known).action(option)
}

/// Plans any number of options for one state, sharing the map and the search from the agent
/// they all need (turning a teacher's whole distribution over options into actions).
pub struct SkillPlanner<'a> {
    map: KnownMap<'a>,
}

impl<'a> SkillPlanner<'a> {
    pub fn new(world: &'a GridWorld, known: &impl Knowledge) -> SkillPlanner<'a> {
        SkillPlanner { map: KnownMap::new(world, known) }
    }

    /// What `skill_action` says for `option` in this planner's state.
    pub fn action(&self, option: TeacherOption) -> SkillStep {
        plan(option, &self.map, None).step()
    }
}

/// A skill's decision with the detail the oracle needs: where a walk is heading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    Done,
    Impossible,
    /// One step of a walk; `aim` is where it ends, when that is a single navigation goal
    /// (exploration's lookouts are not).
    Walk {
        action: Action,
        aim: Option<NavGoal>,
    },
    /// Act on the cell in front (pick up, toggle, drop) or step onto it.
    Interact(Action),
}

impl Plan {
    pub fn step(self) -> SkillStep {
        match self {
            Plan::Done => SkillStep::Done,
            Plan::Impossible => SkillStep::Impossible,
            Plan::Walk { action, .. } | Plan::Interact(action) => SkillStep::Act(action),
        }
    }

    pub fn action(self) -> Option<Action> {
        match self.step() {
            SkillStep::Act(action) => Some(action),
            _ => None,
        }
    }
}

/// Plans `option`; `among`, when given, limits its targets to those positions (the oracle
/// names a specific door or object that a color alone would not single out).
pub(crate) fn plan(option: TeacherOption, map: &KnownMap, among: Option<&[Pos]>) -> Plan {
    match option {
        TeacherOption::Explore => explore(map),
        TeacherOption::GoTo(Target::Goal) => go_to_goal(map, among),
        TeacherOption::GoTo(target) => go_to(target, map, among),
        TeacherOption::PickUp(item) => pick_up(item, map, among),
        TeacherOption::OpenDoor(color) => open_door(color, map, among),
        TeacherOption::OpenBox(color) => open_box(color, map, among),
        TeacherOption::Drop => drop_held(map),
        // Embodied options: a grid has no rooms, furniture or apples (`skills::embodied`).
        TeacherOption::GoToPlace(_)
        | TeacherOption::GoToObject(_)
        | TeacherOption::PickUpObject(_)
        | TeacherOption::PlaceObject(_) => Plan::Impossible,
    }
}

/// Walks to face `target` (already chosen as the nearest), then does `finish` (`None`: done).
pub(crate) fn approach(map: &KnownMap, target: Pos, pose: Pose, finish: Option<Action>) -> Plan {
    if pose == map.agent_pose() {
        return finish.map_or(Plan::Done, Plan::Interact);
    }
    match map.first_step_to(pose) {
        Some(action) => Plan::Walk { action, aim: Some(NavGoal::Face(target)) },
        None => Plan::Impossible,
    }
}

fn go_to(target: Target, map: &KnownMap, among: Option<&[Pos]>) -> Plan {
    let targets = map.find_known(|cell| target.matches(cell), among);
    if targets.contains(&map.front()) {
        return Plan::Done;
    }
    match map.nearest_facing(&targets) {
        Some((position, pose)) => approach(map, position, pose, None),
        None => Plan::Impossible,
    }
}

/// Walks onto the nearest known goal; the last step is the forward move onto it.
fn go_to_goal(map: &KnownMap, among: Option<&[Pos]>) -> Plan {
    if map.world.get(map.world.agent_pos) == Cell::Goal {
        return Plan::Done;
    }
    let goals = map.find_known(|cell| cell == Cell::Goal, among);
    let Some((goal, pose)) = map.nearest_facing(&goals) else { return Plan::Impossible };
    let aim = Some(NavGoal::Reach(goal));
    if pose == map.agent_pose() {
        return Plan::Walk { action: Action::Forward, aim };
    }
    match map.first_step_to(pose) {
        Some(action) => Plan::Walk { action, aim },
        None => Plan::Impossible,
    }
}

/// Picks up the nearest matching item, putting down what is held first.
fn pick_up(item: Item, map: &KnownMap, among: Option<&[Pos]>) -> Plan {
    if item.matches(map.world.carrying) {
        return Plan::Done;
    }
    let items = map.find_known(|cell| item.matches(cell), among);
    let Some((position, pose)) = map.nearest_facing(&items) else { return Plan::Impossible };
    if !map.world.carrying.is_empty() {
        return drop_held(map);
    }
    approach(map, position, pose, Some(Action::Pickup))
}

/// Opens the nearest shut door of `color` that can be opened: closed, or locked with its key
/// in hand. Toggling an open door would close it, so an open one counts as done.
fn open_door(color: Color, map: &KnownMap, among: Option<&[Pos]>) -> Plan {
    let doors = map.find_known(|cell| matches!(cell, Cell::Door { color: c, .. } if c == color), among);
    if doors.is_empty() {
        return Plan::Impossible;
    }
    let is_open = |p: Pos| matches!(map.world.get(p), Cell::Door { state: DoorState::Open, .. });
    if doors.contains(&map.front()) && is_open(map.front()) || doors.iter().all(|&p| is_open(p)) {
        return Plan::Done;
    }
    let holds_key = map.world.carrying == Cell::Key(color);
    let openable: Vec<Pos> = doors
        .into_iter()
        .filter(|&p| match map.world.get(p) {
            Cell::Door { state: DoorState::Closed, .. } => true,
            Cell::Door { state: DoorState::Locked, .. } => holds_key,
            _ => false,
        })
        .collect();
    match map.nearest_facing(&openable) {
        Some((door, pose)) => approach(map, door, pose, Some(Action::Toggle)),
        None => Plan::Impossible,
    }
}

fn open_box(color: Color, map: &KnownMap, among: Option<&[Pos]>) -> Plan {
    let boxes = map.find_known(|cell| matches!(cell, Cell::Box { color: c, .. } if c == color), among);
    if boxes.is_empty() {
        return Plan::Done;
    }
    match map.nearest_facing(&boxes) {
        Some((position, pose)) => approach(map, position, pose, Some(Action::Toggle)),
        None => Plan::Impossible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::FogOfWar;
    use crate::env::grid::planner::path_to_face;
    use crate::skills::TrueState;
    use crate::skills::option::Carryable;
    use crate::skills::test_worlds::{fog_where, world_from};

    /// Steps `option`'s skill on the real engine, the fog following the agent's view, until it
    /// reports done; returns the steps taken, or why it stopped.
    fn run(world: &mut GridWorld, fog: &mut FogOfWar, option: TeacherOption) -> Result<usize, SkillStep> {
        for taken in 0..200 {
            match skill_action(option, world, fog) {
                SkillStep::Done => return Ok(taken),
                SkillStep::Act(action) => {
                    // Walks never step into a cell the agent has not seen.
                    if action == Action::Forward {
                        assert!(fog.is_seen(world.front_pos()), "stepped into the unknown\n{world}");
                    }
                    world.step(action);
                    fog.reveal(world);
                }
                SkillStep::Impossible => return Err(SkillStep::Impossible),
            }
        }
        Err(SkillStep::Act(Action::Done))
    }

    fn seeing_everything(world: &GridWorld) -> FogOfWar {
        fog_where(world, |_| true)
    }

    const ROOM: [&str; 6] = ["#######", "#>....#", "#.....#", "#...a.#", "#....G#", "#######"];
    const BALL: Pos = Pos::new(4, 3);

    fn blue_ball() -> Item {
        Item::new(Carryable::Ball, Color::Blue)
    }

    #[test]
    fn go_to_faces_the_target_by_a_shortest_walk_and_stops() {
        let mut world = world_from(&ROOM);
        let shortest = path_to_face(&world, BALL).map(|walk| walk.len());
        let mut fog = seeing_everything(&world);
        let taken = run(&mut world, &mut fog, TeacherOption::GoTo(Target::Item(blue_ball())));
        assert_eq!(taken.ok(), shortest);
        assert_eq!(world.front_pos(), BALL);
    }

    #[test]
    fn go_to_the_goal_ends_standing_on_it() {
        let mut world = world_from(&ROOM);
        let mut fog = seeing_everything(&world);
        assert!(run(&mut world, &mut fog, TeacherOption::GoTo(Target::Goal)).is_ok());
        assert_eq!(world.get(world.agent_pos), Cell::Goal);
    }

    #[test]
    fn pick_up_walks_up_and_picks_it_up() {
        let mut world = world_from(&ROOM);
        let shortest = path_to_face(&world, BALL).map(|walk| walk.len() + 1);
        let mut fog = seeing_everything(&world);
        assert_eq!(run(&mut world, &mut fog, TeacherOption::PickUp(blue_ball())).ok(), shortest);
        assert_eq!(world.carrying, Cell::Ball(Color::Blue));
        assert_eq!(skill_action(TeacherOption::PickUp(blue_ball()), &world, &fog), SkillStep::Done);
    }

    #[test]
    fn pick_up_puts_down_what_is_held_first() {
        let mut world = world_from(&ROOM);
        world.carrying = Cell::Key(Color::Red);
        let mut fog = seeing_everything(&world);
        assert!(run(&mut world, &mut fog, TeacherOption::PickUp(blue_ball())).is_ok());
        assert_eq!(world.carrying, Cell::Ball(Color::Blue));
        assert_eq!(world.find_all(|cell| cell == Cell::Key(Color::Red)).len(), 1, "the key was put down");
    }

    #[test]
    fn unseen_targets_and_unseen_cells_are_off_limits() {
        let world = world_from(&["#######", "#>...a#", "#######"]);
        let ball = TeacherOption::PickUp(blue_ball());
        assert_eq!(skill_action(ball, &world, &fog_where(&world, |p| p.x <= 3)), SkillStep::Impossible, "ball unseen");
        // The ball is seen, but the cell before it is not: no walk may cross it.
        let gap = fog_where(&world, |p| p != Pos::new(3, 1));
        assert_eq!(skill_action(ball, &world, &gap), SkillStep::Impossible);
        assert_eq!(skill_action(ball, &world, &TrueState), SkillStep::Act(Action::Forward));
    }

    #[test]
    fn open_door_toggles_a_closed_door_once() {
        let mut world = world_from(&["#######", "#>.d.G#", "#######"]);
        let mut fog = seeing_everything(&world);
        assert_eq!(run(&mut world, &mut fog, TeacherOption::OpenDoor(Color::Red)), Ok(2), "forward, toggle");
        assert_eq!(world.get(Pos::new(3, 1)), Cell::Door { color: Color::Red, state: DoorState::Open });
        assert_eq!(
            skill_action(TeacherOption::OpenDoor(Color::Blue), &world, &fog),
            SkillStep::Impossible,
            "no blue door"
        );
    }

    #[test]
    fn locked_doors_need_their_key_in_hand() {
        let mut world = world_from(&["#######", "#>.D.G#", "#######"]);
        let mut fog = seeing_everything(&world);
        let open = TeacherOption::OpenDoor(Color::Yellow);
        assert_eq!(skill_action(open, &world, &fog), SkillStep::Impossible);
        world.carrying = Cell::Key(Color::Red);
        assert_eq!(skill_action(open, &world, &fog), SkillStep::Impossible, "the wrong key");
        world.carrying = Cell::Key(Color::Yellow);
        assert!(run(&mut world, &mut fog, open).is_ok());
        assert_eq!(world.get(Pos::new(3, 1)), Cell::Door { color: Color::Yellow, state: DoorState::Open });
    }

    #[test]
    fn open_box_leaves_its_contents() {
        let mut world = world_from(&["######", "#>.B.#", "######"]);
        let mut fog = seeing_everything(&world);
        assert!(run(&mut world, &mut fog, TeacherOption::OpenBox(Color::Green)).is_ok());
        assert_eq!(world.get(Pos::new(3, 1)), Cell::Key(Color::Yellow));
    }

    #[test]
    fn drop_keeps_doorways_and_objects_clear() {
        // Standing in front of the door, holding the key: the door's front cell and the cells
        // beside the ball are poor spots; the far corner is not.
        let mut world = world_from(&["#######", "#.a.#.#", "#...>D.", "#....#.", "#######"]);
        world.carrying = Cell::Key(Color::Yellow);
        let mut fog = seeing_everything(&world);
        assert!(run(&mut world, &mut fog, TeacherOption::Drop).is_ok());
        let dropped = world.find_all(|cell| cell == Cell::Key(Color::Yellow));
        assert_eq!(dropped.len(), 1);
        let spot = dropped[0];
        assert!(spot.manhattan(Pos::new(5, 2)) > 1, "not beside the door: {spot:?}\n{world}");
        assert!(spot.manhattan(Pos::new(2, 1)) > 1, "not beside the ball: {spot:?}\n{world}");
        assert!(world.carrying.is_empty());
        assert_eq!(skill_action(TeacherOption::Drop, &world, &fog), SkillStep::Done);
    }

    #[test]
    fn drop_never_walls_off_the_way_on() {
        // A one-cell passage between two rooms: dropping in it would cut the room in two.
        let mut world = world_from(&["#######", "#>.#..#", "#.....#", "#..#..#", "#######"]);
        world.carrying = Cell::Ball(Color::Blue);
        world.agent_pos = Pos::new(2, 2);
        let mut fog = seeing_everything(&world);
        assert!(run(&mut world, &mut fog, TeacherOption::Drop).is_ok());
        assert_ne!(world.get(Pos::new(3, 2)), Cell::Ball(Color::Blue), "the passage stays open\n{world}");
    }

    #[test]
    fn explore_uncovers_the_room_and_stops_at_closed_doors() {
        let mut world = world_from(&["##########", "#>.....#.#", "#......d.#", "#......#.#", "##########"]);
        let mut fog = FogOfWar::for_world(&world);
        assert!(run(&mut world, &mut fog, TeacherOption::Explore).is_ok());
        for y in 0..5 {
            for x in 0..8 {
                assert!(fog.is_seen(Pos::new(x, y)), "({x}, {y}) is in the room or its walls");
            }
        }
        assert!(!fog.is_seen(Pos::new(8, 2)), "behind the closed door stays unseen");
    }

    #[test]
    fn explore_turns_before_it_walks() {
        // Facing a wall in a corridor: a turn shows what lies behind, no walk needed yet.
        let world = world_from(&["#######", "#..>..#", "#######"]);
        let fog = FogOfWar::for_world(&world);
        assert!(matches!(
            skill_action(TeacherOption::Explore, &world, &fog),
            SkillStep::Act(Action::Left | Action::Right)
        ));
        assert_eq!(skill_action(TeacherOption::Explore, &world, &TrueState), SkillStep::Done);
    }

    #[test]
    fn a_planner_answers_every_option_like_skill_action() {
        let world = world_from(&ROOM);
        let fog = FogOfWar::for_world(&world);
        let planner = SkillPlanner::new(&world, &fog);
        for option in TeacherOption::vocabulary() {
            assert_eq!(planner.action(option), skill_action(option, &world, &fog), "{option}");
        }
    }
}
