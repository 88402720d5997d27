//! Farama MiniGrid's own levels: Empty, DoorKey, FourRooms, LavaCrossing, MultiRoom, with
//! MiniGrid 3.0's layout rules (our RNG stream differs from numpy's; the layouts do not).

use super::builder::{DEFAULT_MAX_TRIES, LevelRng};
use crate::env::grid::object::{Cell, Color, DoorState};
use crate::env::grid::task::Task;
use crate::env::grid::world::{GridWorld, Pos};

/// Empty-NxN: agent at (1, 1) facing right, goal in the bottom-right corner, and
/// `see_through_walls` on, as MiniGrid registers it.
pub fn empty(size: usize) -> GridWorld {
    let s = size as i32;
    let mut w = GridWorld::new(size, size);
    w.wall_rect(0, 0, s, s);
    w.set(Pos::new(s - 2, s - 2), Cell::Goal);
    w.agent_pos = Pos::new(1, 1);
    w.agent_dir = 0;
    w.see_through_walls = true;
    w.mission = "get to the green goal square".into();
    w
}

/// DoorKey-NxN: a vertical wall at a random column, a locked yellow door in it, the yellow
/// key and the agent on the left, the goal bottom-right.
pub fn door_key(size: usize, rng: &mut LevelRng) -> GridWorld {
    let s = size as i32;
    loop {
        let mut w = GridWorld::new(size, size);
        w.wall_rect(0, 0, s, s);
        w.set(Pos::new(s - 2, s - 2), Cell::Goal);
        let split = rng.rand_int(2, s - 2);
        w.vert_wall(split, 0, s, Cell::WALL);
        if rng.place_agent(&mut w, Pos::new(0, 0), (split, s)).is_err() {
            continue;
        }
        let door = rng.rand_int(1, s - 2);
        w.set(Pos::new(split, door), Cell::Door { color: Color::Yellow, state: DoorState::Locked });
        let key = rng.place_obj(
            &mut w,
            Cell::Key(Color::Yellow),
            Pos::new(0, 0),
            (split, s),
            &|_, _| false,
            DEFAULT_MAX_TRIES,
        );
        if key.is_err() {
            continue;
        }
        w.mission = "use the key to open the door and then get to the goal".into();
        return w;
    }
}

/// FourRooms: a 19x19 grid split into four 9x9 rooms by a wall cross, with one random gap
/// in each of the cross's four arms; the agent and the goal anywhere.
pub fn four_rooms(rng: &mut LevelRng) -> GridWorld {
    const SIZE: i32 = 19;
    loop {
        let mut w = GridWorld::new(SIZE as usize, SIZE as usize);
        w.wall_rect(0, 0, SIZE, SIZE);
        let room = SIZE / 2;
        // MiniGrid's loop over the 2x2 rooms: each draws its right and bottom wall, with a gap.
        for j in 0..2 {
            for i in 0..2 {
                let (left, top) = (i * room, j * room);
                let (right, bottom) = (left + room, top + room);
                if i + 1 < 2 {
                    w.vert_wall(right, top, room, Cell::WALL);
                    w.set(Pos::new(right, rng.rand_int(top + 1, bottom)), Cell::Empty);
                }
                if j + 1 < 2 {
                    w.horz_wall(left, bottom, room, Cell::WALL);
                    w.set(Pos::new(rng.rand_int(left + 1, right), bottom), Cell::Empty);
                }
            }
        }
        let agent = rng.place_agent(&mut w, Pos::new(0, 0), (SIZE, SIZE));
        if agent.is_err() || rng.place_anywhere(&mut w, Cell::Goal).is_err() {
            continue;
        }
        w.mission = "reach the goal".into();
        return finish_goal_level(w);
    }
}

/// Which way a lava river runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum River {
    /// A column of lava at this x.
    Vertical(i32),
    /// A row of lava at this y.
    Horizontal(i32),
}

/// A step of the path from the agent's corner to the goal's: crossing a vertical river moves
/// right, crossing a horizontal one moves down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Crossing {
    Right,
    Down,
}

/// LavaCrossing: agent top-left facing right, goal bottom-right, `num_crossings` lava rivers
/// on even rows/columns, each with one opening on a monotone path to the goal (crossing.py).
pub fn lava_crossing(size: usize, num_crossings: usize, rng: &mut LevelRng) -> GridWorld {
    let s = size as i32;
    let mut w = GridWorld::new(size, size);
    w.wall_rect(0, 0, s, s);
    w.agent_pos = Pos::new(1, 1);
    w.agent_dir = 0;
    w.set(Pos::new(s - 2, s - 2), Cell::Goal);

    // A shuffled prefix is a uniform random subset; only the sorted positions matter after.
    let candidates: Vec<River> =
        (2..s - 2).step_by(2).map(River::Vertical).chain((2..s - 2).step_by(2).map(River::Horizontal)).collect();
    let (mut columns, mut rows) = (Vec::new(), Vec::new());
    for river in rng.rand_subset(&candidates, num_crossings) {
        match river {
            River::Vertical(x) => columns.push(x),
            River::Horizontal(y) => rows.push(y),
        }
    }
    columns.sort_unstable();
    rows.sort_unstable();
    for &y in &rows {
        w.horz_wall(1, y, s - 2, Cell::Lava);
    }
    for &x in &columns {
        w.vert_wall(x, 1, s - 2, Cell::Lava);
    }

    // One crossing per river, in random order; each opens the river where the path meets it.
    let mut steps = vec![Crossing::Right; columns.len()];
    steps.extend(vec![Crossing::Down; rows.len()]);
    let path = rng.rand_subset(&steps, steps.len());
    let x_limits: Vec<i32> = std::iter::once(0).chain(columns.iter().copied()).chain([s - 1]).collect();
    let y_limits: Vec<i32> = std::iter::once(0).chain(rows.iter().copied()).chain([s - 1]).collect();
    let (mut room_x, mut room_y) = (0, 0);
    for step in path {
        let opening = match step {
            Crossing::Right => {
                room_x += 1;
                Pos::new(x_limits[room_x], rng.rand_int(y_limits[room_y] + 1, y_limits[room_y + 1]))
            }
            Crossing::Down => {
                room_y += 1;
                Pos::new(rng.rand_int(x_limits[room_x] + 1, x_limits[room_x + 1]), y_limits[room_y])
            }
        };
        w.set(opening, Cell::Empty);
    }
    w.mission = "avoid the lava and get to the green goal square".into();
    finish_goal_level(w)
}

/// MultiRoom's grid is always 25x25, whatever the number of rooms.
const MULTI_ROOM_GRID: i32 = 25;
/// MultiRoom rooms are at least 4x4 (walls included).
const MIN_ROOM_SIZE: i32 = 4;
/// How many times a room tries to place its successor before the chain stops there.
const NEXT_ROOM_TRIES: usize = 8;
/// Whole-chain attempts before settling for the longest chain found; MiniGrid retries
/// forever, which never comes close to this for the parameters `Level::validate` allows.
const MAX_CHAIN_ATTEMPTS: usize = 100_000;

/// A room wall, numbered as MiniGrid's MultiRoom numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Right = 0,
    South = 1,
    Left = 2,
    North = 3,
}

impl Side {
    const ALL: [Side; 4] = [Side::Right, Side::South, Side::Left, Side::North];

    fn opposite(self) -> Side {
        Side::ALL[(self as usize + 2) % 4]
    }
}

/// One room of the chain: its outline and the door through which the chain enters it
/// (the first room's "entry" is just its corner, and gets no door).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChainRoom {
    top: Pos,
    size: (i32, i32),
    entry_door: Pos,
}

impl ChainRoom {
    /// Whether a room at `top` with `size` stays clear of this one, with MiniGrid's exact
    /// (asymmetric) test.
    fn clear_of(&self, top: Pos, size: (i32, i32)) -> bool {
        top.x + size.0 < self.top.x
            || self.top.x + self.size.0 <= top.x
            || top.y + size.1 < self.top.y
            || self.top.y + self.size.1 <= top.y
    }
}

/// MultiRoom-N{num_rooms}-S{max_room_size}: a chain of rooms joined by closed doors of
/// changing colors; the agent in the first room, the goal in the last.
pub fn multi_room(num_rooms: usize, max_room_size: usize, rng: &mut LevelRng) -> GridWorld {
    // `Level::validate` rejects zero rooms; a chain still needs one to hold agent and goal.
    let rooms = room_chain(num_rooms.max(1), max_room_size as i32, rng);
    loop {
        if let Some(w) = build_multi_room(&rooms, rng) {
            return w;
        }
    }
}

/// MiniGrid's search for a chain: fresh chains from random corners until one is long enough.
fn room_chain(num_rooms: usize, max_room_size: i32, rng: &mut LevelRng) -> Vec<ChainRoom> {
    let mut longest = Vec::new();
    let mut attempts = 0;
    // Keep going past the cap while nothing at all was placed, so there is always a room.
    while longest.len() < num_rooms && (attempts < MAX_CHAIN_ATTEMPTS || longest.is_empty()) {
        attempts += 1;
        let corner = Pos::new(rng.rand_int(0, MULTI_ROOM_GRID - 2), rng.rand_int(0, MULTI_ROOM_GRID - 2));
        let mut chain = Vec::new();
        place_room(num_rooms, &mut chain, max_room_size, Side::Left, corner, rng);
        if chain.len() > longest.len() {
            longest = chain;
        }
    }
    longest
}

/// MiniGrid's `_placeRoom`: a room of random size entered through `entry_door` on its
/// `entry_side` wall. Returns false if it does not fit; once placed, it tries a few times to
/// continue the chain through another wall, and returns true however far that got.
fn place_room(
    rooms_left: usize,
    chain: &mut Vec<ChainRoom>,
    max_size: i32,
    entry_side: Side,
    entry_door: Pos,
    rng: &mut LevelRng,
) -> bool {
    let size = (rng.rand_int(MIN_ROOM_SIZE, max_size + 1), rng.rand_int(MIN_ROOM_SIZE, max_size + 1));
    let top = if chain.is_empty() { entry_door } else { room_top_for_door(entry_side, entry_door, size, rng) };
    if top.x < 0 || top.y < 0 || top.x + size.0 > MULTI_ROOM_GRID || top.y + size.1 >= MULTI_ROOM_GRID {
        return false;
    }
    // The room it is entered from shares a wall with it, so only the others are checked.
    let earlier = &chain[..chain.len().saturating_sub(1)];
    if !earlier.iter().all(|room| room.clear_of(top, size)) {
        return false;
    }
    chain.push(ChainRoom { top, size, entry_door });
    if rooms_left == 1 {
        return true;
    }
    let exits: Vec<Side> = Side::ALL.into_iter().filter(|&side| side != entry_side).collect();
    for _ in 0..NEXT_ROOM_TRIES {
        let Some(exit_side) = rng.rand_elem(&exits) else { break };
        let exit_door = door_on_side(exit_side, top, size, rng);
        if place_room(rooms_left - 1, chain, max_size, exit_side.opposite(), exit_door, rng) {
            break;
        }
    }
    true
}

/// Where a room of `size` must start so that `door` lies on its `side` wall, off the corners.
fn room_top_for_door(side: Side, door: Pos, size: (i32, i32), rng: &mut LevelRng) -> Pos {
    match side {
        Side::Right => Pos::new(door.x - size.0 + 1, rng.rand_int(door.y - size.1 + 2, door.y)),
        Side::South => Pos::new(rng.rand_int(door.x - size.0 + 2, door.x), door.y - size.1 + 1),
        Side::Left => Pos::new(door.x, rng.rand_int(door.y - size.1 + 2, door.y)),
        Side::North => Pos::new(rng.rand_int(door.x - size.0 + 2, door.x), door.y),
    }
}

/// A random door position on a room's `side` wall, off the corners.
fn door_on_side(side: Side, top: Pos, size: (i32, i32), rng: &mut LevelRng) -> Pos {
    match side {
        Side::Right => Pos::new(top.x + size.0 - 1, top.y + rng.rand_int(1, size.1 - 1)),
        Side::South => Pos::new(top.x + rng.rand_int(1, size.0 - 1), top.y + size.1 - 1),
        Side::Left => Pos::new(top.x, top.y + rng.rand_int(1, size.1 - 1)),
        Side::North => Pos::new(top.x + rng.rand_int(1, size.0 - 1), top.y),
    }
}

/// Draws the chain (rooms in order, each entry door after its room's walls), then places the
/// agent in the first room and the goal in the last. `None` if a placement gives up.
fn build_multi_room(rooms: &[ChainRoom], rng: &mut LevelRng) -> Option<GridWorld> {
    let (first, last) = (rooms.first()?, rooms.last()?);
    let mut w = GridWorld::new(MULTI_ROOM_GRID as usize, MULTI_ROOM_GRID as usize);
    let mut previous_color = None;
    for (index, room) in rooms.iter().enumerate() {
        w.wall_rect(room.top.x, room.top.y, room.size.0, room.size.1);
        if index > 0 {
            // Neighbouring doors never share a color.
            let colors: Vec<Color> = Color::SORTED_NAMES.into_iter().filter(|&c| Some(c) != previous_color).collect();
            let color = rng.rand_elem(&colors)?;
            w.set(room.entry_door, Cell::Door { color, state: DoorState::Closed });
            previous_color = Some(color);
        }
    }
    rng.place_agent(&mut w, first.top, first.size).ok()?;
    rng.place_obj(&mut w, Cell::Goal, last.top, last.size, &|_, _| false, DEFAULT_MAX_TRIES).ok()?;
    w.mission = "traverse the rooms to get to the goal".into();
    Some(finish_goal_level(w))
}

/// The settings MiniGrid's goal levels share: partial view of 7 that walls block.
fn finish_goal_level(mut w: GridWorld) -> GridWorld {
    w.see_through_walls = false;
    w.agent_view_size = 7;
    w.task = Task::Navigate;
    w
}

#[cfg(test)]
mod tests {
    use super::super::test_support::reachable;
    use super::*;
    use crate::env::grid::object::ObjectType;

    const SEEDS: u64 = 1000;

    fn count(w: &GridWorld, pred: impl Fn(Cell) -> bool) -> usize {
        w.find_all(pred).len()
    }

    fn assert_goal_level_settings(w: &GridWorld) {
        assert!(!w.see_through_walls);
        assert_eq!(w.agent_view_size, 7);
        assert_eq!(w.task, Task::Navigate);
        assert!(w.agent_dir < 4);
        assert!(w.get(w.agent_pos).is_empty(), "agent on an empty cell\n{w}");
        assert_eq!(count(w, |c| c == Cell::Goal), 1, "exactly one goal\n{w}");
    }

    /// FourRooms invariants, for our layouts and MiniGrid's recorded ones alike.
    fn check_four_rooms(w: &GridWorld) {
        assert_eq!((w.width(), w.height()), (19, 19));
        assert_goal_level_settings(w);
        assert_eq!((w.mission.as_str(), w.max_steps), ("reach the goal", 100));
        for i in 0..19 {
            for edge in [Pos::new(i, 0), Pos::new(i, 18), Pos::new(0, i), Pos::new(18, i)] {
                assert_eq!(w.get(edge), Cell::WALL);
            }
        }
        assert_eq!(w.get(Pos::new(9, 9)), Cell::WALL);
        // One gap in each arm of the cross (the goal may lie in a gap).
        let open = |p: Pos| w.get(p) != Cell::WALL;
        for range in [1..9, 10..18] {
            let column_gaps = range.clone().filter(|&y| open(Pos::new(9, y))).count();
            let row_gaps = range.filter(|&x| open(Pos::new(x, 9))).count();
            assert_eq!((column_gaps, row_gaps), (1, 1), "\n{w}");
        }
        let walls = count(w, |c| c == Cell::WALL);
        assert_eq!(walls, 4 * 18 + 2 * 17 - 1 - 4, "only the outline and the cross\n{w}");
        let goal = w.find_all(|c| c == Cell::Goal)[0];
        assert_ne!(goal, w.agent_pos);
        assert!(reachable(w, w.agent_pos, Cell::can_overlap).contains(&goal), "\n{w}");
    }

    #[test]
    fn four_rooms_layout() {
        for seed in 0..SEEDS {
            check_four_rooms(&super::super::Level::FourRooms.generate(seed));
        }
    }

    /// Interior cells of column `x` (or row `y`) holding lava.
    fn lava_in_line(w: &GridWorld, line: i32, vertical: bool) -> usize {
        let s = w.width() as i32;
        let at = |k: i32| if vertical { Pos::new(line, k) } else { Pos::new(k, line) };
        (1..s - 1).filter(|&k| w.get(at(k)) == Cell::Lava).count()
    }

    /// LavaCrossing invariants: corners, rivers on even lines each with one opening, a safe path.
    fn check_lava_crossing(w: &GridWorld, size: usize, crossings: usize) {
        let s = size as i32;
        assert_eq!((w.width(), w.height()), (size, size));
        assert_goal_level_settings(w);
        assert_eq!(w.max_steps, 4 * (size as u32).pow(2));
        assert_eq!(w.mission, "avoid the lava and get to the green goal square");
        assert_eq!((w.agent_pos, w.agent_dir), (Pos::new(1, 1), 0));
        assert_eq!(w.get(Pos::new(s - 2, s - 2)), Cell::Goal);
        // A river is an even line all lava but for its one opening.
        let mut rivers = 0;
        for vertical in [true, false] {
            for line in 1..s - 1 {
                let lava = lava_in_line(w, line, vertical);
                if lava == (s - 3) as usize {
                    assert!(line % 2 == 0 && line >= 2 && line <= s - 3, "river at {line}\n{w}");
                    rivers += 1;
                } else {
                    assert!(lava < (s - 3) as usize / 2 + 1, "line {line} is neither river nor crossed\n{w}");
                }
            }
        }
        assert_eq!(rivers, crossings.min(2 * ((size - 3) / 2)), "\n{w}");
        let others = count(w, |c| !matches!(c, Cell::Empty | Cell::Lava | Cell::Goal | Cell::WALL));
        assert_eq!(others, 0);
        let safe = reachable(w, w.agent_pos, |c| c.can_overlap() && c != Cell::Lava);
        assert!(safe.contains(&Pos::new(s - 2, s - 2)), "goal reachable without lava\n{w}");
    }

    #[test]
    fn lava_crossing_layout() {
        for (size, crossings) in [(9, 1), (9, 2), (9, 3), (9, 6), (11, 5), (13, 1)] {
            let level = super::super::Level::LavaCrossing { size, num_crossings: crossings };
            assert!(level.validate().is_ok());
            for seed in 0..SEEDS {
                check_lava_crossing(&level.generate(seed), size, crossings);
            }
        }
    }

    #[test]
    fn multi_room_chains_follow_minigrid_rules() {
        for (num_rooms, max_size) in [(1, 4), (2, 4), (4, 5), (6, 10), (10, 10), (10, 4)] {
            let mut rng = LevelRng::new(num_rooms as u64 * 100 + max_size as u64);
            for _ in 0..200 {
                let rooms = room_chain(num_rooms, max_size, &mut rng);
                assert_eq!(rooms.len(), num_rooms);
                for (i, room) in rooms.iter().enumerate() {
                    let (sx, sy) = room.size;
                    assert!((MIN_ROOM_SIZE..=max_size).contains(&sx) && (MIN_ROOM_SIZE..=max_size).contains(&sy));
                    assert!(room.top.x >= 0 && room.top.y >= 0 && room.top.x + sx <= 25 && room.top.y + sy <= 24);
                    if i > 0 {
                        assert!(on_wall_off_corner(room, room.entry_door), "{room:?}");
                        assert!(on_wall_off_corner(&rooms[i - 1], room.entry_door), "{room:?}");
                    }
                    for other in &rooms[..i.saturating_sub(1)] {
                        assert!(other.clear_of(room.top, room.size));
                    }
                }
            }
        }
    }

    fn on_wall_off_corner(room: &ChainRoom, p: Pos) -> bool {
        let (x0, y0) = (room.top.x, room.top.y);
        let (x1, y1) = (x0 + room.size.0 - 1, y0 + room.size.1 - 1);
        let on_vertical = (p.x == x0 || p.x == x1) && p.y > y0 && p.y < y1;
        let on_horizontal = (p.y == y0 || p.y == y1) && p.x > x0 && p.x < x1;
        on_vertical || on_horizontal
    }

    /// MultiRoom invariants: closed doors between the rooms, the goal behind them.
    fn check_multi_room(w: &GridWorld, num_rooms: usize) {
        assert_eq!((w.width(), w.height()), (25, 25));
        assert_goal_level_settings(w);
        assert_eq!(w.max_steps, 20 * num_rooms as u32);
        assert_eq!(w.mission, "traverse the rooms to get to the goal");
        let is_door = |c: Cell| c.object_type() == ObjectType::Door;
        let doors: Vec<Cell> = w.find_all(is_door).into_iter().map(|p| w.get(p)).collect();
        assert_eq!(doors.len(), num_rooms - 1, "\n{w}");
        assert!(doors.iter().all(|d| matches!(d, Cell::Door { state: DoorState::Closed, .. })));
        let goal = w.find_all(|c| c == Cell::Goal)[0];
        let through_doors = reachable(w, w.agent_pos, |c| c.can_overlap() || is_door(c));
        assert!(through_doors.contains(&goal), "\n{w}");
        let without_doors = reachable(w, w.agent_pos, Cell::can_overlap);
        assert!(!without_doors.contains(&goal), "the doors close the rooms off\n{w}");
    }

    #[test]
    fn multi_room_layout() {
        for (num_rooms, max_size) in [(2, 4), (4, 5), (6, 10)] {
            let level = super::super::Level::MultiRoom { num_rooms, max_room_size: max_size };
            for seed in 0..SEEDS {
                check_multi_room(&level.generate(seed), num_rooms);
            }
        }
    }

    /// The same invariants hold for the start states MiniGrid 3.0 itself recorded.
    #[test]
    fn recorded_minigrid_layouts_pass_the_same_checks() {
        use crate::env::conformance::{read_fixture, start_state};
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minigrid");
        let read = |name: &str| {
            let path = fixtures.join(format!("MiniGrid-{name}-v0.jsonl.gz"));
            let Some(level) = super::super::Level::from_name(name) else { panic!("{name}") };
            let trajectories = read_fixture(&path).unwrap_or_default();
            assert!(!trajectories.is_empty(), "{name}");
            let mut worlds: Vec<GridWorld> = trajectories.iter().filter_map(|(_, t)| start_state(t).ok()).collect();
            assert_eq!(worlds.len(), trajectories.len());
            // Some recordings shorten max_steps to exercise truncation; the layout is what counts.
            worlds.iter_mut().for_each(|w| w.max_steps = level.default_max_steps());
            worlds
        };
        for w in read("FourRooms") {
            check_four_rooms(&w);
        }
        for w in read("LavaCrossingS9N1") {
            check_lava_crossing(&w, 9, 1);
        }
        for w in read("MultiRoom-N2-S4") {
            check_multi_room(&w, 2);
        }
    }

    #[test]
    fn multi_room_neighbouring_doors_differ_in_color() {
        for seed in 0..200 {
            let mut rng = LevelRng::new(seed);
            let rooms = room_chain(6, 6, &mut rng);
            let Some(w) = build_multi_room(&rooms, &mut rng) else { panic!("placement failed") };
            let colors: Vec<Color> = rooms[1..].iter().filter_map(|r| w.get(r.entry_door).color()).collect();
            assert_eq!(colors.len(), 5);
            assert!(colors.windows(2).all(|pair| pair[0] != pair[1]), "{colors:?}");
            let agent_room = rooms[0];
            assert!(w.agent_pos.x > agent_room.top.x && w.agent_pos.x < agent_room.top.x + agent_room.size.0 - 1);
        }
    }

    #[test]
    fn largest_multi_room_generates_quickly() {
        let start = std::time::Instant::now();
        for seed in 0..50 {
            let w = super::super::Level::MultiRoom { num_rooms: 10, max_room_size: 10 }.generate(seed);
            assert_eq!(count(&w, |c| c.object_type() == ObjectType::Door), 9);
        }
        assert!(start.elapsed().as_secs() < 20);
    }
}
