//! LLM4Teach's four tasks (SimpleDoorKey, LavaDoorKey, ColoredDoorKey, TwoDoor) as its
//! `env/` code defines them: view size 3, 150 steps, success when a toggle opens the door.

use super::builder::{DEFAULT_MAX_TRIES, LevelRng, PlacementFailed};
use crate::env::grid::object::{Cell, Color, DoorState};
use crate::env::grid::task::Task;
use crate::env::grid::world::{GridWorld, Pos};

/// The door-key tasks draw their room inside a fixed 10x10 array (`maxRoomSize`).
const DOOR_KEY_GRID: i32 = 10;
/// Room sides are drawn from `[minRoomSize, maxRoomSize]` as registered (5 and 10).
const MIN_ROOM_SIZE: i32 = 5;
const MAX_ROOM_SIZE: i32 = 10;
/// TwoDoor registers min = max = 20: its room always fills the whole 20x20 grid.
const TWO_DOOR_GRID: i32 = 20;
/// Every LLM4Teach task is registered with `agent_view_size=3`.
const VIEW_SIZE: usize = 3;
const MISSION: &str = "open the door";

/// A room wall, numbered as LLM4Teach numbers them (0 east, 1 south, 2 west, 3 north).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    East,
    South,
    West,
    North,
}

/// A door in a room's wall and the room cell just inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Doorway {
    door: Pos,
    inside: Pos,
}

/// SimpleDoorKey: a locked door of a random color on a random wall, its key anywhere in the room.
pub fn simple_door_key(rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| {
        let color = random_color(rng)?;
        let (mut w, room, _) = locked_room(color, rng)?;
        rng.place_agent(&mut w, Pos::new(0, 0), room)?;
        place_in_room(&mut w, Cell::Key(color), room, None, rng)?;
        Ok(w)
    })
}

/// LavaDoorKey: SimpleDoorKey plus one lava cell, never on the cell just inside the door
/// (the key, placed first, may be there).
pub fn lava_door_key(rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| {
        let color = random_color(rng)?;
        let (mut w, room, doorway) = locked_room(color, rng)?;
        rng.place_agent(&mut w, Pos::new(0, 0), room)?;
        place_in_room(&mut w, Cell::Key(color), room, None, rng)?;
        place_in_room(&mut w, Cell::Lava, room, Some(doorway.inside), rng)?;
        Ok(w)
    })
}

/// ColoredDoorKey: a blue locked door, the blue key and one red key (registered with exactly
/// two keys), neither key on the cell just inside the door.
pub fn colored_door_key(rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| {
        let (mut w, room, doorway) = locked_room(Color::Blue, rng)?;
        rng.place_agent(&mut w, Pos::new(0, 0), room)?;
        place_in_room(&mut w, Cell::Key(Color::Blue), room, Some(doorway.inside), rng)?;
        place_in_room(&mut w, Cell::Key(Color::Red), room, Some(doorway.inside), rng)?;
        Ok(w)
    })
}

/// TwoDoor: a 20x20 room with two locked doors of one random color on opposite walls (east
/// and west, or south and north), the key in the central 2x2, then the agent anywhere.
pub fn two_door(rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| {
        let room = (TWO_DOOR_GRID, TWO_DOOR_GRID);
        let mut w = walled_room(TWO_DOOR_GRID, room);
        let sides = if rng.rand_bool() { [Side::East, Side::West] } else { [Side::South, Side::North] };
        let color = random_color(rng)?;
        for side in sides {
            let doorway = doorway_on(side, room, rng);
            w.set(doorway.door, Cell::Door { color, state: DoorState::Locked });
        }
        // The key goes down before the agent exists, as in TwoDoorEnv.
        w.agent_pos = Pos::new(-1, -1);
        let centre = Pos::new(room.0 / 2 - 1, room.1 / 2 - 1);
        rng.place_obj(&mut w, Cell::Key(color), centre, (2, 2), &|_, _| false, DEFAULT_MAX_TRIES)?;
        rng.place_agent(&mut w, Pos::new(0, 0), room)?;
        Ok(w)
    })
}

/// Runs a generator until its placements all succeed (they practically always do at once),
/// then applies the settings the four tasks share.
fn retry(rng: &mut LevelRng, generate: impl Fn(&mut LevelRng) -> Result<GridWorld, PlacementFailed>) -> GridWorld {
    loop {
        if let Ok(mut w) = generate(rng) {
            w.mission = MISSION.into();
            w.agent_view_size = VIEW_SIZE;
            w.see_through_walls = false;
            w.task = Task::OpenDoor;
            return w;
        }
    }
}

/// A uniformly random door color from MiniGrid's sorted `COLOR_NAMES`.
fn random_color(rng: &mut LevelRng) -> Result<Color, PlacementFailed> {
    rng.rand_elem(&Color::SORTED_NAMES).ok_or(PlacementFailed)
}

/// The door-key room: random size from the top-left corner of the 10x10 array, a locked
/// door of `color` on a random wall. Returns the grid, the room size and the doorway.
fn locked_room(color: Color, rng: &mut LevelRng) -> Result<(GridWorld, (i32, i32), Doorway), PlacementFailed> {
    let room = (rng.rand_int(MIN_ROOM_SIZE, MAX_ROOM_SIZE + 1), rng.rand_int(MIN_ROOM_SIZE, MAX_ROOM_SIZE + 1));
    let mut w = walled_room(DOOR_KEY_GRID, room);
    let side = rng.rand_elem(&[Side::East, Side::South, Side::West, Side::North]).ok_or(PlacementFailed)?;
    let doorway = doorway_on(side, room, rng);
    w.set(doorway.door, Cell::Door { color, state: DoorState::Locked });
    Ok((w, room, doorway))
}

/// A square grid with a walled room of `room` size in its top-left corner (the rest stays empty).
fn walled_room(grid: i32, room: (i32, i32)) -> GridWorld {
    let mut w = GridWorld::new(grid as usize, grid as usize);
    w.wall_rect(0, 0, room.0, room.1);
    w
}

/// A random door position on the `side` wall of a room at the origin, off the corners.
fn doorway_on(side: Side, room: (i32, i32), rng: &mut LevelRng) -> Doorway {
    let (width, height) = room;
    let (door, inward) = match side {
        Side::East => (Pos::new(width - 1, rng.rand_int(1, height - 1)), (-1, 0)),
        Side::South => (Pos::new(rng.rand_int(1, width - 1), height - 1), (0, -1)),
        Side::West => (Pos::new(0, rng.rand_int(1, height - 1)), (1, 0)),
        Side::North => (Pos::new(rng.rand_int(1, width - 1), 0), (0, 1)),
    };
    Doorway { door, inside: door.offset(inward) }
}

/// `place_obj` inside the room, optionally never on `forbidden`.
fn place_in_room(
    w: &mut GridWorld,
    cell: Cell,
    room: (i32, i32),
    forbidden: Option<Pos>,
    rng: &mut LevelRng,
) -> Result<Pos, PlacementFailed> {
    rng.place_obj(w, cell, Pos::new(0, 0), room, &|_, p| Some(p) == forbidden, DEFAULT_MAX_TRIES)
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::reachable;
    use super::*;
    use crate::env::grid::object::ObjectType;
    use crate::env::grid::world::{Action, DIR_TO_VEC};

    const SEEDS: u64 = 1000;

    /// The room's size, read off its top wall and left wall (a door may sit in either).
    fn room_size(w: &GridWorld) -> (i32, i32) {
        let solid = |p: Pos| !w.get(p).is_empty();
        let width = (0..w.width() as i32).take_while(|&x| solid(Pos::new(x, 0))).count() as i32;
        let height = (0..w.height() as i32).take_while(|&y| solid(Pos::new(0, y))).count() as i32;
        (width, height)
    }

    fn is_interior(room: (i32, i32), p: Pos) -> bool {
        p.x > 0 && p.y > 0 && p.x < room.0 - 1 && p.y < room.1 - 1
    }

    /// The room cell next to a door on the room's outline.
    fn inside_of(room: (i32, i32), door: Pos) -> Pos {
        DIR_TO_VEC.into_iter().map(|step| door.offset(step)).find(|&p| is_interior(room, p)).unwrap_or(door)
    }

    fn is_outline_off_corner(room: (i32, i32), p: Pos) -> bool {
        let on_vertical = (p.x == 0 || p.x == room.0 - 1) && p.y > 0 && p.y < room.1 - 1;
        let on_horizontal = (p.y == 0 || p.y == room.1 - 1) && p.x > 0 && p.x < room.0 - 1;
        on_vertical || on_horizontal
    }

    fn only(w: &GridWorld, pred: impl Fn(Cell) -> bool) -> Pos {
        let found = w.find_all(pred);
        assert_eq!(found.len(), 1, "{w}");
        found[0]
    }

    /// What every door-key task shares: the array, the room, the locked door, the agent inside.
    /// Returns the room size, the door and its inside cell.
    fn check_door_key_room(w: &GridWorld) -> ((i32, i32), Pos, Pos) {
        assert_eq!((w.width(), w.height()), (10, 10));
        assert_eq!((w.agent_view_size, w.max_steps, w.see_through_walls), (3, 150, false));
        assert_eq!((w.mission.as_str(), &w.task), ("open the door", &Task::OpenDoor));
        let room = room_size(w);
        assert!((5..=10).contains(&room.0) && (5..=10).contains(&room.1), "{room:?}\n{w}");
        let door = only(w, |c| c.object_type() == ObjectType::Door);
        assert!(matches!(w.get(door), Cell::Door { state: DoorState::Locked, .. }));
        assert!(is_outline_off_corner(room, door), "{door:?}\n{w}");
        for p in w.find_all(|c| !c.is_empty()) {
            assert!(p.x < room.0 && p.y < room.1, "nothing outside the room\n{w}");
            assert_eq!(is_interior(room, p), w.get(p).object_type() != ObjectType::Wall && p != door, "{p:?}\n{w}");
        }
        assert!(is_interior(room, w.agent_pos) && w.get(w.agent_pos).is_empty() && w.agent_dir < 4);
        (room, door, inside_of(room, door))
    }

    /// The agent can reach the key, and with it picked up, the cell inside the door.
    fn check_key_then_door_reachable(w: &GridWorld, key: Pos, inside: Pos) {
        let walkable = |c: Cell| c.is_empty();
        let before = reachable(w, w.agent_pos, walkable);
        assert!(DIR_TO_VEC.iter().any(|&step| before.contains(&key.offset(step))), "key reachable\n{w}");
        let mut without_key = w.clone();
        without_key.set(key, Cell::Empty);
        assert!(reachable(&without_key, w.agent_pos, walkable).contains(&inside), "door reachable\n{w}");
    }

    #[test]
    fn simple_door_key_layout() {
        let mut sizes = std::collections::HashSet::new();
        for seed in 0..SEEDS {
            let w = Level::SimpleDoorKey.generate(seed);
            let (room, door, inside) = check_door_key_room(&w);
            sizes.insert(room);
            let Some(color) = w.get(door).color() else { panic!("door has a color") };
            let key = only(&w, |c| c.object_type() == ObjectType::Key);
            assert_eq!(w.get(key), Cell::Key(color));
            assert!(is_interior(room, key));
            let unexpected =
                w.find_all(|c| !matches!(c, Cell::Empty | Cell::Wall(_) | Cell::Door { .. } | Cell::Key(_)));
            assert_eq!(unexpected, vec![]);
            check_key_then_door_reachable(&w, key, inside);
        }
        assert_eq!(sizes.len(), 36, "every room size from 5x5 to 10x10 occurs");
    }

    #[test]
    fn lava_door_key_layout() {
        let mut key_inside_door = 0;
        for seed in 0..SEEDS {
            let w = Level::LavaDoorKey.generate(seed);
            let (room, door, inside) = check_door_key_room(&w);
            let key = only(&w, |c| c.object_type() == ObjectType::Key);
            assert_eq!(w.get(key).color(), w.get(door).color());
            let lava = only(&w, |c| c == Cell::Lava);
            assert!(is_interior(room, lava));
            assert_ne!(lava, inside, "lava never in front of the door, seed {seed}\n{w}");
            assert_ne!(lava, w.agent_pos);
            key_inside_door += usize::from(key == inside);
            check_key_then_door_reachable(&w, key, inside);
        }
        assert!(key_inside_door > 0, "the key alone may lie in front of the door");
    }

    #[test]
    fn colored_door_key_layout() {
        for seed in 0..SEEDS {
            let w = Level::ColoredDoorKey.generate(seed);
            let (_, door, inside) = check_door_key_room(&w);
            assert_eq!(w.get(door), Cell::Door { color: Color::Blue, state: DoorState::Locked });
            let blue = only(&w, |c| c == Cell::Key(Color::Blue));
            let red = only(&w, |c| c == Cell::Key(Color::Red));
            assert_eq!(w.find_all(|c| c.object_type() == ObjectType::Key).len(), 2);
            assert!(blue != inside && red != inside, "no key in front of the door\n{w}");
            assert_eq!(w.find_all(|c| c == Cell::Lava), vec![]);
            check_key_then_door_reachable(&w, blue, inside);
        }
    }

    #[test]
    fn two_door_layout() {
        let mut east_west = 0;
        for seed in 0..SEEDS {
            let w = Level::TwoDoor.generate(seed);
            assert_eq!((w.width(), w.height()), (20, 20));
            assert_eq!((w.agent_view_size, w.max_steps, w.see_through_walls), (3, 150, false));
            assert_eq!((w.mission.as_str(), &w.task), ("open the door", &Task::OpenDoor));
            let doors = w.find_all(|c| c.object_type() == ObjectType::Door);
            assert_eq!(doors.len(), 2);
            let [a, b] = [doors[0], doors[1]];
            assert_eq!(w.get(a), w.get(b), "same color, both locked");
            assert!(matches!(w.get(a), Cell::Door { state: DoorState::Locked, .. }));
            assert!(is_outline_off_corner((20, 20), a) && is_outline_off_corner((20, 20), b));
            let across = |low: fn(Pos) -> bool, high: fn(Pos) -> bool| (low(a) && high(b)) || (low(b) && high(a));
            let west_east = across(|p| p.x == 0, |p| p.x == 19);
            let north_south = across(|p| p.y == 0, |p| p.y == 19);
            assert!(west_east || north_south, "doors on opposite walls: {a:?} {b:?}");
            east_west += usize::from(west_east);
            let key = only(&w, |c| c.object_type() == ObjectType::Key);
            assert_eq!(w.get(key).color(), w.get(a).color());
            assert!((9..=10).contains(&key.x) && (9..=10).contains(&key.y), "key in the central 2x2");
            assert!(is_interior((20, 20), w.agent_pos) && w.get(w.agent_pos).is_empty());
            let walls = w.find_all(|c| c == Cell::WALL).len();
            assert_eq!(walls, 4 * 19 - 2);
        }
        assert!(east_west > 400 && east_west < 600, "{east_west}");
    }

    #[test]
    fn opening_a_door_ends_the_episode_with_the_time_discounted_reward() {
        for level in [Level::SimpleDoorKey, Level::LavaDoorKey, Level::ColoredDoorKey, Level::TwoDoor] {
            for seed in 0..20 {
                let mut w = level.generate(seed);
                let size = w.width() as i32;
                let room = if size == 20 { (20, 20) } else { room_size(&w) };
                let doors = w.find_all(|c| c.object_type() == ObjectType::Door);
                let door = doors[seed as usize % doors.len()];
                let Some(color) = w.get(door).color() else { panic!("door has a color") };
                // Stand just inside the door, facing it, holding the key.
                let inside = inside_of(room, door);
                w.set(inside, Cell::Empty);
                w.agent_pos = inside;
                w.agent_dir = DIR_TO_VEC.iter().position(|&step| inside.offset(step) == door).unwrap_or(0) as u8;
                w.carrying = Cell::Key(color);
                w.step_count = 14;
                let outcome = w.step(Action::Toggle);
                assert!(outcome.terminated && !outcome.truncated, "{}", level.name());
                assert!((outcome.reward - (1.0 - 0.9 * 15.0 / 150.0)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn the_wrong_key_leaves_the_colored_door_locked() {
        let mut w = Level::ColoredDoorKey.generate(3);
        let (room, door, inside) = check_door_key_room(&w);
        assert!(is_interior(room, inside));
        w.set(inside, Cell::Empty);
        w.agent_pos = inside;
        w.agent_dir = DIR_TO_VEC.iter().position(|&step| inside.offset(step) == door).unwrap_or(0) as u8;
        w.carrying = Cell::Key(Color::Red);
        let outcome = w.step(Action::Toggle);
        assert!(!outcome.terminated);
        assert_eq!(w.get(door), Cell::Door { color: Color::Blue, state: DoorState::Locked });
    }
}
