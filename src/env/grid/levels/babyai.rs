//! BabyAI levels (GoToRedBallNoDists, GoToObj, PickupLoc, OpenDoor) on a `RoomGrid`, with
//! their mission strings, instruction verifiers and reset-time step limits.

use super::BABYAI_ROOM_SIZE;
use super::builder::LevelRng;
// `retry` is `RoomGridLevel._gen_grid`'s loop: a rejected attempt reruns everything,
// the room grid included.
use super::roomgrid::{CONNECT_ALL_MAX_ITRS, MOVABLE_TYPES, Rejected, RoomGrid, retry};
use crate::env::grid::object::{Cell, Color, ObjectType};
use crate::env::grid::task::{Location, ObjectDescription, Task};
use crate::env::grid::world::{GridWorld, Pos};

/// BabyAI's `LOC_NAMES`, in its order.
const LOCATIONS: [Location; 4] = [Location::Left, Location::Right, Location::Front, Location::Behind];
/// `LevelGen.rand_obj`'s `max_tries`; it gives up once `num_tries > max_tries`.
const RAND_OBJ_TRIES: usize = 101;

/// The verbs of BabyAI's action instructions, as their surface forms begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    GoTo,
    Pickup,
    Open,
}

impl Verb {
    fn prefix(self) -> &'static str {
        match self {
            Verb::GoTo => "go to ",
            Verb::Pickup => "pick up ",
            Verb::Open => "open ",
        }
    }
}

/// The end of a BabyAI reset: the surface form (article from the number of matches at the
/// start pose), the verifier, and the step limit for one navigation across the maze.
fn finish(grid: RoomGrid, verb: Verb, description: &ObjectDescription) -> Result<GridWorld, Rejected> {
    let layout = grid.layout();
    let mut world = grid.into_world();
    let matches = description.matching(&world, &layout).on_grid.len();
    if matches == 0 {
        return Err(Rejected("no object matching description"));
    }
    world.mission = format!("{}{}", verb.prefix(), description.surface(matches));
    world.task = Task::babyai_from_mission(&world.mission, &world, &layout).ok_or(Rejected("unparsable mission"))?;
    // `num_navs_needed` is 1 for a single action instruction.
    world.max_steps = (layout.room_size * layout.room_size * layout.num_rows * layout.num_cols) as u32;
    world.see_through_walls = false;
    world.agent_view_size = 7;
    Ok(world)
}

/// `RoomGridLevel.check_objs_reachable`: every non-wall object can be reached from the agent
/// through empty cells and doors (of any state), without moving anything.
fn check_objs_reachable(world: &GridWorld) -> Result<(), Rejected> {
    let (width, height) = (world.width(), world.height());
    let mut reachable = vec![false; width * height];
    let mut stack = vec![world.agent_pos];
    while let Some(p) = stack.pop() {
        if !world.in_bounds(p) {
            continue;
        }
        let index = p.y as usize * width + p.x as usize;
        if std::mem::replace(&mut reachable[index], true) {
            continue;
        }
        // Anything but a door stops the search (it is reached, not crossed).
        if !matches!(world.get(p), Cell::Empty | Cell::Door { .. }) {
            continue;
        }
        stack.extend([(1, 0), (-1, 0), (0, 1), (0, -1)].map(|d| p.offset(d)));
    }
    let unreachable = world
        .find_all(|c| !matches!(c, Cell::Empty | Cell::Wall(_)))
        .into_iter()
        .any(|p| !reachable[p.y as usize * width + p.x as usize]);
    if unreachable { Err(Rejected("unreachable object")) } else { Ok(()) }
}

fn describe(cell: Cell, location: Option<Location>) -> ObjectDescription {
    ObjectDescription::new(Some(cell.object_type()), cell.color(), location)
}

/// GoToRedBallNoDists: "go to the red ball", the ball and the agent alone in one 8x8 room.
pub fn go_to_red_ball_no_dists(rng: &mut LevelRng) -> GridWorld {
    retry(rng, try_go_to_red_ball)
}

fn try_go_to_red_ball(rng: &mut LevelRng) -> Result<GridWorld, Rejected> {
    let mut grid = RoomGrid::new(BABYAI_ROOM_SIZE as usize, 1, 1, rng);
    grid.place_agent(None, None, true, rng)?;
    let (ball, _) = grid.add_object(0, 0, Some(ObjectType::Ball), Some(Color::Red), rng)?;
    // GoToRedBall's distractors: none in the NoDists variant.
    grid.add_distractors(None, None, 0, false, rng)?;
    check_objs_reachable(&grid.world)?;
    finish(grid, Verb::GoTo, &describe(ball, None))
}

/// GoToObj: one random key, ball or box in an 8x8 room; go to it.
pub fn go_to_obj(rng: &mut LevelRng) -> GridWorld {
    retry(rng, try_go_to_obj)
}

fn try_go_to_obj(rng: &mut LevelRng) -> Result<GridWorld, Rejected> {
    let mut grid = RoomGrid::new(BABYAI_ROOM_SIZE as usize, 1, 1, rng);
    grid.place_agent(None, None, true, rng)?;
    let objects = grid.add_distractors(None, None, 1, true, rng)?;
    let &(object, _) = objects.first().ok_or(Rejected("no object added"))?;
    finish(grid, Verb::GoTo, &describe(object, None))
}

/// PickupLoc: BabyAI's level generator restricted to one "pick up" action in a single room
/// with 8 distractors, the object described by type, maybe color, maybe location.
pub fn pickup_loc(rng: &mut LevelRng) -> GridWorld {
    retry(rng, try_pickup_loc)
}

fn try_pickup_loc(rng: &mut LevelRng) -> Result<GridWorld, Rejected> {
    let mut grid = RoomGrid::new(BABYAI_ROOM_SIZE as usize, 1, 1, rng);
    // `locked_room_prob` is 0, so LevelGen never adds a locked room.
    grid.connect_all(&Color::SORTED_NAMES, CONNECT_ALL_MAX_ITRS, rng)?;
    // Placed while the agent still stands at the room's centre, as in BabyAI.
    grid.add_distractors(None, None, 8, false, rng)?;
    grid.place_agent(None, None, true, rng)?;
    // `unblocking` is off: every object must be reachable as is.
    check_objs_reachable(&grid.world)?;
    let description = rand_obj(&grid, &MOVABLE_TYPES, true, rng)?;
    finish(grid, Verb::Pickup, &description)
}

/// `LevelGen.rand_obj`: a random description (color or none, a type, a location half the
/// time when `locations` is on) that matches at least one object at the start pose.
fn rand_obj(
    grid: &RoomGrid,
    types: &[ObjectType],
    locations: bool,
    rng: &mut LevelRng,
) -> Result<ObjectDescription, Rejected> {
    let colors: Vec<Option<Color>> = std::iter::once(None).chain(Color::SORTED_NAMES.map(Some)).collect();
    let layout = grid.layout();
    for _ in 0..RAND_OBJ_TRIES {
        let color = rng.rand_elem(&colors).flatten();
        let object_type = rng.rand_elem(types);
        let location = if locations && rng.rand_bool() { rng.rand_elem(&LOCATIONS) } else { None };
        let description = ObjectDescription::new(object_type, color, location);
        if !description.matching(&grid.world, &layout).is_empty() {
            return Ok(description);
        }
    }
    Err(Rejected("failed to find suitable object"))
}

/// OpenDoor: 3x3 rooms of 8, four unlocked doors of distinct colors around the centre room
/// where the agent starts; open the door named by its color or by its location.
pub fn open_door(rng: &mut LevelRng) -> GridWorld {
    retry(rng, try_open_door)
}

fn try_open_door(rng: &mut LevelRng) -> Result<GridWorld, Rejected> {
    let mut grid = RoomGrid::new(BABYAI_ROOM_SIZE as usize, 3, 3, rng);
    let door_colors = rng.rand_subset(&Color::SORTED_NAMES, 4);
    let mut doors: Vec<(Cell, Pos)> = Vec::with_capacity(4);
    for (side, &color) in door_colors.iter().enumerate() {
        doors.push(grid.add_door(1, 1, Some(side), Some(color), Some(false), rng)?);
    }
    let &(first_door, _) = doors.first().ok_or(Rejected("no door added"))?;
    // `select_by` is drawn from ["color", "loc"].
    let description = if rng.rand_bool() {
        describe(first_door, None)
    } else {
        ObjectDescription::new(Some(ObjectType::Door), None, rng.rand_elem(&LOCATIONS))
    };
    grid.place_agent(Some(1), Some(1), true, rng)?;
    finish(grid, Verb::Open, &description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::levels::Level;
    use crate::env::grid::object::DoorState;
    use crate::env::grid::task::{Instruction, RoomLayout};

    const SEEDS: u64 = 1000;

    fn objects(world: &GridWorld) -> Vec<(Pos, Cell)> {
        world.find_all(|c| !matches!(c, Cell::Empty | Cell::Wall(_))).into_iter().map(|p| (p, world.get(p))).collect()
    }

    /// Shared checks; returns the parsed description and how many objects it matches.
    fn check_common(level: &Level, world: &GridWorld, verb: Verb, size: usize) -> (ObjectDescription, usize) {
        assert_eq!((world.width(), world.height()), (size, size));
        assert!(world.get(world.agent_pos).is_empty(), "agent on an object\n{world}");
        assert!(matches!(world.get(world.front_pos()), Cell::Empty | Cell::Wall(_)), "{world}");
        assert!(!world.see_through_walls);
        assert_eq!(world.agent_view_size, 7);
        assert_eq!(world.max_steps, level.default_max_steps());
        let rest = world.mission.strip_prefix(verb.prefix()).expect("mission verb");
        let description = ObjectDescription::parse(rest).expect("mission parses back");
        let layout = level.room_layout(world.width(), world.height()).expect("room layout");
        let matched = description.matching(world, &layout);
        let n = matched.on_grid.len();
        assert!(n >= 1, "{}\n{world}", world.mission);
        assert_eq!(description.surface(n), rest, "article follows the match count");
        let expected = Task::babyai_from_mission(&world.mission, world, &layout);
        assert_eq!(Some(&world.task), expected.as_ref());
        assert_eq!(level.task_for(world).as_ref(), Some(&world.task));
        let objects_in_task = match &world.task {
            Task::BabyAi(Instruction::GoTo { objects, positions }) => {
                assert_eq!(verb, Verb::GoTo);
                assert_eq!(positions, &objects.on_grid);
                objects
            }
            Task::BabyAi(Instruction::Pickup { objects, was_carrying: false }) => {
                assert_eq!(verb, Verb::Pickup);
                objects
            }
            Task::BabyAi(Instruction::Open { objects }) => {
                assert_eq!(verb, Verb::Open);
                objects
            }
            other => panic!("wrong task {other:?}"),
        };
        assert_eq!(objects_in_task, &matched);
        (description, n)
    }

    fn inside_single_room(p: Pos) -> bool {
        (1..7).contains(&p.x) && (1..7).contains(&p.y)
    }

    #[test]
    fn go_to_red_ball_no_dists_layouts() {
        let level = Level::GoToRedBallNoDists;
        for seed in 0..SEEDS {
            let world = level.generate(seed);
            check_common(&level, &world, Verb::GoTo, 8);
            assert_eq!(world.mission, "go to the red ball");
            assert!(inside_single_room(world.agent_pos));
            let objects = objects(&world);
            assert_eq!(objects.len(), 1, "{world}");
            assert_eq!(objects[0].1, Cell::Ball(Color::Red));
            assert!(objects[0].0.manhattan(world.agent_pos) >= 2, "ball not next to the agent");
        }
    }

    #[test]
    fn go_to_obj_layouts() {
        let level = Level::GoToObj;
        let mut kinds = std::collections::HashSet::new();
        for seed in 0..SEEDS {
            let world = level.generate(seed);
            let (description, n) = check_common(&level, &world, Verb::GoTo, 8);
            assert!(inside_single_room(world.agent_pos));
            let objects = objects(&world);
            assert_eq!(objects.len(), 1, "{world}");
            let (pos, cell) = objects[0];
            assert!(MOVABLE_TYPES.contains(&cell.object_type()));
            assert_eq!(description, describe(cell, None));
            assert_eq!(n, 1);
            assert!(world.mission.starts_with("go to the "));
            assert!(pos.manhattan(world.agent_pos) >= 2);
            kinds.insert((cell.object_type(), cell.color()));
        }
        assert_eq!(kinds.len(), 18, "every type and color shows up");
    }

    #[test]
    fn pickup_loc_layouts() {
        let level = Level::PickupLoc;
        let (mut with_location, mut without_color, mut ambiguous) = (0, 0, 0);
        for seed in 0..SEEDS {
            let world = level.generate(seed);
            let (description, n) = check_common(&level, &world, Verb::Pickup, 8);
            assert!(inside_single_room(world.agent_pos));
            let objects = objects(&world);
            assert_eq!(objects.len(), 8, "{world}");
            assert!(objects.iter().all(|(_, c)| MOVABLE_TYPES.contains(&c.object_type())));
            // Distractors avoid the room centre, where the agent stood while they were placed.
            assert!(objects.iter().all(|(p, _)| p.manhattan(Pos::new(4, 4)) >= 2), "{world}");
            assert!(check_objs_reachable(&world).is_ok(), "{world}");
            assert!(description.object_type.is_some_and(|t| t != ObjectType::Door));
            with_location += usize::from(description.location.is_some());
            without_color += usize::from(description.color.is_none());
            ambiguous += usize::from(n > 1);
        }
        // Half the draws carry a location and one in seven no color, but rejecting those
        // that match nothing favours the broader ones: about a third of each survive.
        assert!((200..500).contains(&with_location), "{with_location}");
        assert!((200..450).contains(&without_color), "{without_color}");
        assert!(ambiguous > 0);
    }

    #[test]
    fn open_door_layouts() {
        let level = Level::OpenDoor;
        let (mut by_color, mut by_location) = (0, 0);
        for seed in 0..SEEDS {
            let world = level.generate(seed);
            let (description, _) = check_common(&level, &world, Verb::Open, 22);
            // The agent starts inside the centre room.
            assert!((8..14).contains(&world.agent_pos.x) && (8..14).contains(&world.agent_pos.y), "{world}");
            let doors = objects(&world);
            assert_eq!(doors.len(), 4, "{world}");
            let mut colors: Vec<Color> = doors.iter().filter_map(|(_, c)| c.color()).collect();
            colors.sort();
            colors.dedup();
            assert_eq!(colors.len(), 4, "distinct colors");
            for (p, cell) in &doors {
                assert!(matches!(cell, Cell::Door { state: DoorState::Closed, .. }));
                let on_vertical = (p.x == 7 || p.x == 14) && (8..14).contains(&p.y);
                let on_horizontal = (p.y == 7 || p.y == 14) && (8..14).contains(&p.x);
                assert!(on_vertical || on_horizontal, "door on the centre room's walls: {p:?}");
            }
            assert_eq!(description.object_type, Some(ObjectType::Door));
            match (description.color, description.location) {
                (Some(color), None) => {
                    by_color += 1;
                    // The first door drawn is the centre room's right one.
                    let right = doors.iter().find(|(p, _)| p.x == 14).expect("right door");
                    assert_eq!(right.1.color(), Some(color));
                    assert!(world.mission.starts_with("open the "));
                }
                (None, Some(_)) => by_location += 1,
                other => panic!("unexpected description {other:?}"),
            }
        }
        assert!(by_color > 350 && by_location > 350, "{by_color} {by_location}");
    }

    #[test]
    fn generation_is_deterministic() {
        for level in [Level::GoToRedBallNoDists, Level::GoToObj, Level::PickupLoc, Level::OpenDoor] {
            for seed in 0..20 {
                assert_eq!(level.generate(seed), level.generate(seed));
            }
        }
    }

    #[test]
    fn reachability_check_sees_walled_in_objects() {
        let mut world = GridWorld::new(8, 8);
        world.wall_rect(0, 0, 8, 8);
        world.agent_pos = Pos::new(1, 1);
        world.set(Pos::new(5, 5), Cell::Key(Color::Blue));
        assert!(check_objs_reachable(&world).is_ok());
        // Boxes around the key: they are reachable, the key is not.
        for d in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
            world.set(Pos::new(5, 5).offset(d), Cell::boxed(Color::Red, Cell::Empty));
        }
        assert!(check_objs_reachable(&world).is_err());
        // Doors do not block, whatever their state.
        let mut world = GridWorld::new(8, 8);
        world.wall_rect(0, 0, 8, 8);
        world.vert_wall(3, 0, 8, Cell::WALL);
        world.set(Pos::new(3, 3), Cell::Door { color: Color::Red, state: DoorState::Locked });
        world.agent_pos = Pos::new(1, 1);
        world.set(Pos::new(5, 5), Cell::Ball(Color::Green));
        assert!(check_objs_reachable(&world).is_ok());
    }

    #[test]
    fn location_words_follow_the_start_pose() {
        // Facing right from (2, 4): the ball at (5, 4) is in front, (2, 2) on the left.
        let mut world = GridWorld::new(8, 8);
        world.wall_rect(0, 0, 8, 8);
        world.agent_pos = Pos::new(2, 4);
        world.agent_dir = 0;
        world.set(Pos::new(5, 4), Cell::Ball(Color::Red));
        world.set(Pos::new(2, 2), Cell::Key(Color::Red));
        let layout = RoomLayout { room_size: 8, num_rows: 1, num_cols: 1 };
        let front = ObjectDescription::new(None, Some(Color::Red), Some(Location::Front));
        assert_eq!(front.matching(&world, &layout).on_grid, vec![Pos::new(5, 4)]);
        let left = ObjectDescription::new(Some(ObjectType::Key), None, Some(Location::Left));
        assert_eq!(left.matching(&world, &layout).on_grid, vec![Pos::new(2, 2)]);
        assert_eq!(left.surface(1), "the key on your left");
    }
}
