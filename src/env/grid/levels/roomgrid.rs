//! MiniGrid's `RoomGrid`: rooms on a regular grid with doors between them, and the levels
//! built on it (KeyCorridor, UnlockPickup, BlockedUnlockPickup).

use super::builder::{LevelRng, PlacementFailed};
use crate::env::grid::object::{Cell, Color, DoorState, ObjectType};
use crate::env::grid::task::{RoomLayout, Task};
use crate::env::grid::world::{GridWorld, Pos};

/// Room sides, in MiniGrid's order (right, down, left, up), the same as `DIR_TO_VEC`.
pub const RIGHT: usize = 0;
pub const DOWN: usize = 1;
pub const LEFT: usize = 2;
pub const UP: usize = 3;

/// Objects `add_object` and `add_distractors` may create.
pub const MOVABLE_TYPES: [ObjectType; 3] = [ObjectType::Key, ObjectType::Ball, ObjectType::Box];

/// MiniGrid's `place_in_room` passes `max_tries=1000`, and `place_obj` gives up only once
/// `num_tries > max_tries`, i.e. after 1001 draws.
const ROOM_PLACE_TRIES: usize = 1001;
/// `connect_all`'s default `max_itrs`.
pub const CONNECT_ALL_MAX_ITRS: usize = 5000;
/// Bounds on loops MiniGrid runs unbounded (they can only spin on impossible requests).
const MAX_AGENT_PLACEMENTS: usize = 1000;
const MAX_DOOR_SIDE_DRAWS: usize = 1000;
const MAX_DISTRACTOR_DRAWS: usize = 10_000;

/// Why a generation attempt must start over: MiniGrid's `RecursionError`, BabyAI's
/// `RejectSampling`, or a request MiniGrid would reject with an assertion. Generators
/// retry from scratch with fresh randomness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub &'static str);

impl From<PlacementFailed> for Rejected {
    fn from(_: PlacementFailed) -> Self {
        Rejected("rejection sampling failed in place_obj")
    }
}

/// What joins a room to its neighbour on one side (MiniGrid's `room.doors[k]`: `None`, a
/// `Door`, or `True` once `remove_wall` opened the whole wall).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Passage {
    #[default]
    Wall,
    Door,
    Opening,
}

impl Passage {
    /// Whether rooms on both sides count as connected (`if room.doors[k]:`).
    pub fn connects(self) -> bool {
        self != Passage::Wall
    }
}

/// One room of the grid, walls included (MiniGrid's `Room`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// Top-left corner, on the room's wall.
    pub top: Pos,
    /// Width and height, walls included.
    pub size: (i32, i32),
    pub doors: [Passage; 4],
    /// Where a door on each side would go (drawn once, when the grid is built).
    pub door_pos: [Option<Pos>; 4],
    /// `(i, j)` of the neighbouring room on each side.
    pub neighbors: [Option<(usize, usize)>; 4],
    /// Set by `add_door` on the room it was called for (MiniGrid's `room.locked`).
    pub locked: bool,
    /// Objects added through `add_object` (type, color), for `add_distractors`' uniqueness.
    pub objects: Vec<(ObjectType, Color)>,
}

impl Room {
    fn new(top: Pos, size: i32) -> Room {
        Room {
            top,
            size: (size, size),
            doors: [Passage::Wall; 4],
            door_pos: [None; 4],
            neighbors: [None; 4],
            locked: false,
            objects: Vec::new(),
        }
    }

    /// Whether `p` lies in the room's rectangle, walls included (`Room.pos_inside`).
    pub fn pos_inside(&self, p: Pos) -> bool {
        p.x >= self.top.x && p.y >= self.top.y && p.x < self.top.x + self.size.0 && p.y < self.top.y + self.size.1
    }
}

/// Rooms of `room_size` cells (walls shared between neighbours) on a `num_cols` x `num_rows`
/// grid, with MiniGrid `RoomGrid`'s generation helpers. Room `(i, j)` is column `i`, row `j`.
#[derive(Clone, Debug)]
pub struct RoomGrid {
    pub world: GridWorld,
    room_size: i32,
    num_rows: usize,
    num_cols: usize,
    /// Row-major: room `(i, j)` is `rooms[j * num_cols + i]`.
    rooms: Vec<Room>,
}

impl RoomGrid {
    /// MiniGrid's `RoomGrid._gen_grid`: every room walled, one candidate door position per
    /// shared wall, the agent in the middle room's centre facing right. Sizes below MiniGrid's
    /// asserted minimums (room size 3, one row, one column) are raised to them.
    pub fn new(room_size: usize, num_rows: usize, num_cols: usize, rng: &mut LevelRng) -> RoomGrid {
        let (room_size, num_rows, num_cols) = (room_size.max(3), num_rows.max(1), num_cols.max(1));
        let step = room_size - 1;
        let mut world = GridWorld::new(step * num_cols + 1, step * num_rows + 1);
        let size = room_size as i32;
        let mut rooms = Vec::with_capacity(num_rows * num_cols);
        for j in 0..num_rows {
            for i in 0..num_cols {
                let room = Room::new(Pos::new((i * step) as i32, (j * step) as i32), size);
                world.wall_rect(room.top.x, room.top.y, size, size);
                rooms.push(room);
            }
        }
        let mut grid = RoomGrid { world, room_size: size, num_rows, num_cols, rooms };
        grid.draw_door_positions(rng);
        let centre = |n: usize| ((n / 2) * step + room_size / 2) as i32;
        grid.world.agent_pos = Pos::new(centre(num_cols), centre(num_rows));
        grid.world.agent_dir = 0;
        grid.world.see_through_walls = false;
        grid.world.agent_view_size = 7;
        grid
    }

    /// Links neighbours and draws each shared wall's door position, in MiniGrid's order
    /// (row by row; right wall then bottom wall; left and top walls copy the neighbour's).
    fn draw_door_positions(&mut self, rng: &mut LevelRng) {
        for j in 0..self.num_rows {
            for i in 0..self.num_cols {
                let index = j * self.num_cols + i;
                let (top, size) = (self.rooms[index].top, self.room_size);
                let (low_x, low_y) = (top.x + 1, top.y + 1);
                let (high_x, high_y) = (top.x + size - 1, top.y + size - 1);
                if i + 1 < self.num_cols {
                    self.rooms[index].neighbors[RIGHT] = Some((i + 1, j));
                    self.rooms[index].door_pos[RIGHT] = Some(Pos::new(high_x, rng.rand_int(low_y, high_y)));
                }
                if j + 1 < self.num_rows {
                    self.rooms[index].neighbors[DOWN] = Some((i, j + 1));
                    self.rooms[index].door_pos[DOWN] = Some(Pos::new(rng.rand_int(low_x, high_x), high_y));
                }
                if i > 0 {
                    self.rooms[index].neighbors[LEFT] = Some((i - 1, j));
                    self.rooms[index].door_pos[LEFT] = self.rooms[index - 1].door_pos[RIGHT];
                }
                if j > 0 {
                    self.rooms[index].neighbors[UP] = Some((i, j - 1));
                    self.rooms[index].door_pos[UP] = self.rooms[index - self.num_cols].door_pos[DOWN];
                }
            }
        }
    }

    pub fn room_size(&self) -> i32 {
        self.room_size
    }

    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    pub fn num_cols(&self) -> usize {
        self.num_cols
    }

    /// The layout BabyAI's location words and `Task::babyai_from_mission` use.
    pub fn layout(&self) -> RoomLayout {
        RoomLayout { room_size: self.room_size, num_rows: self.num_rows as i32, num_cols: self.num_cols as i32 }
    }

    pub fn into_world(self) -> GridWorld {
        self.world
    }

    fn index(&self, i: usize, j: usize) -> Result<usize, Rejected> {
        if i < self.num_cols && j < self.num_rows { Ok(j * self.num_cols + i) } else { Err(Rejected("no such room")) }
    }

    /// Room `(i, j)` (`RoomGrid.get_room`); `None` outside the grid.
    pub fn get_room(&self, i: usize, j: usize) -> Option<&Room> {
        self.index(i, j).ok().map(|index| &self.rooms[index])
    }

    /// `(i, j)` of the room a position maps to (`RoomGrid.room_from_pos`): shared walls
    /// belong to the room right of / below them. `None` off the rooms.
    pub fn room_from_pos(&self, p: Pos) -> Option<(usize, usize)> {
        if p.x < 0 || p.y < 0 {
            return None;
        }
        let step = self.room_size - 1;
        let (i, j) = ((p.x / step) as usize, (p.y / step) as usize);
        (i < self.num_cols && j < self.num_rows).then_some((i, j))
    }

    /// Puts `cell` at a random free spot of room `(i, j)`, not next to the agent
    /// (`place_in_room` with `reject_next_to`), and records it in the room.
    pub fn place_in_room(&mut self, i: usize, j: usize, cell: Cell, rng: &mut LevelRng) -> Result<Pos, Rejected> {
        let index = self.index(i, j)?;
        let (top, size) = (self.rooms[index].top, self.rooms[index].size);
        let next_to_agent = |w: &GridWorld, p: Pos| p.manhattan(w.agent_pos) < 2;
        let pos = rng.place_obj(&mut self.world, cell, top, size, &next_to_agent, ROOM_PLACE_TRIES)?;
        if let Some(color) = cell.color() {
            self.rooms[index].objects.push((cell.object_type(), color));
        }
        Ok(pos)
    }

    /// Adds a key, ball or box to room `(i, j)` (`RoomGrid.add_object`); a missing kind or
    /// color is drawn at random.
    pub fn add_object(
        &mut self,
        i: usize,
        j: usize,
        kind: Option<ObjectType>,
        color: Option<Color>,
        rng: &mut LevelRng,
    ) -> Result<(Cell, Pos), Rejected> {
        let kind = match kind {
            Some(kind) => kind,
            None => rng.rand_elem(&MOVABLE_TYPES).unwrap_or(ObjectType::Ball),
        };
        let color = color.unwrap_or_else(|| rng.rand_color());
        let cell = match kind {
            ObjectType::Key => Cell::Key(color),
            ObjectType::Ball => Cell::Ball(color),
            ObjectType::Box => Cell::boxed(color, Cell::Empty),
            _ => return Err(Rejected("object kind not available in a room grid")),
        };
        let pos = self.place_in_room(i, j, cell, rng)?;
        Ok((cell, pos))
    }

    /// Puts a door on side `door_idx` of room `(i, j)` (`RoomGrid.add_door`). Missing
    /// arguments are drawn: a side with a neighbour and no door yet, a color, locked or not.
    /// Marks room `(i, j)` locked or not, as MiniGrid does.
    pub fn add_door(
        &mut self,
        i: usize,
        j: usize,
        door_idx: Option<usize>,
        color: Option<Color>,
        locked: Option<bool>,
        rng: &mut LevelRng,
    ) -> Result<(Cell, Pos), Rejected> {
        let index = self.index(i, j)?;
        let side = match door_idx {
            Some(side) => side,
            None => self.draw_free_side(index, rng)?,
        };
        let color = color.unwrap_or_else(|| rng.rand_color());
        let locked = locked.unwrap_or_else(|| rng.rand_bool());
        let room = self.rooms.get(index).ok_or(Rejected("no such room"))?;
        if side >= 4 || room.doors[side] != Passage::Wall {
            return Err(Rejected("door already exists"));
        }
        let (Some(pos), Some((ni, nj))) = (room.door_pos[side], room.neighbors[side]) else {
            return Err(Rejected("no neighbour on that side"));
        };
        let neighbour = self.index(ni, nj)?;
        let state = if locked { DoorState::Locked } else { DoorState::Closed };
        let door = Cell::Door { color, state };
        self.world.set(pos, door);
        self.rooms[index].locked = locked;
        self.rooms[index].doors[side] = Passage::Door;
        self.rooms[neighbour].doors[(side + 2) % 4] = Passage::Door;
        Ok((door, pos))
    }

    /// A random side of the room with a neighbour and no door yet (MiniGrid redraws forever).
    fn draw_free_side(&self, index: usize, rng: &mut LevelRng) -> Result<usize, Rejected> {
        let room = &self.rooms[index];
        for _ in 0..MAX_DOOR_SIDE_DRAWS {
            let side = rng.rand_usize(0, 4);
            if room.neighbors[side].is_some() && room.doors[side] == Passage::Wall {
                return Ok(side);
            }
        }
        Err(Rejected("no free wall for a door"))
    }

    /// Opens the whole wall on side `wall_idx` of room `(i, j)`, corners kept
    /// (`RoomGrid.remove_wall`).
    pub fn remove_wall(&mut self, i: usize, j: usize, wall_idx: usize) -> Result<(), Rejected> {
        let index = self.index(i, j)?;
        let room = &self.rooms[index];
        if wall_idx >= 4 || room.doors[wall_idx] != Passage::Wall {
            return Err(Rejected("door exists on this wall"));
        }
        let Some((ni, nj)) = room.neighbors[wall_idx] else {
            return Err(Rejected("invalid wall"));
        };
        let neighbour = self.index(ni, nj)?;
        let (top, (w, h)) = (room.top, room.size);
        let (start, step, length) = match wall_idx {
            RIGHT => (Pos::new(top.x + w - 1, top.y + 1), (0, 1), h - 2),
            DOWN => (Pos::new(top.x + 1, top.y + h - 1), (1, 0), w - 2),
            LEFT => (Pos::new(top.x, top.y + 1), (0, 1), h - 2),
            _ => (Pos::new(top.x + 1, top.y), (1, 0), w - 2),
        };
        for k in 0..length {
            self.world.set(start.offset((step.0 * k, step.1 * k)), Cell::Empty);
        }
        self.rooms[index].doors[wall_idx] = Passage::Opening;
        self.rooms[neighbour].doors[(wall_idx + 2) % 4] = Passage::Opening;
        Ok(())
    }

    /// Places the agent in room `(i, j)` (random when `None`), redrawing until it faces an
    /// empty cell or a wall (`RoomGrid.place_agent`).
    pub fn place_agent(
        &mut self,
        i: Option<usize>,
        j: Option<usize>,
        rand_dir: bool,
        rng: &mut LevelRng,
    ) -> Result<Pos, Rejected> {
        let i = i.unwrap_or_else(|| rng.rand_usize(0, self.num_cols));
        let j = j.unwrap_or_else(|| rng.rand_usize(0, self.num_rows));
        let index = self.index(i, j)?;
        let (top, size) = (self.rooms[index].top, self.rooms[index].size);
        for _ in 0..MAX_AGENT_PLACEMENTS {
            // MiniGrid's `place_agent`: the agent's old cell must not block its own placement.
            self.world.agent_pos = Pos::new(-1, -1);
            let pos = rng.place_obj(&mut self.world, Cell::Empty, top, size, &|_, _| false, ROOM_PLACE_TRIES)?;
            self.world.agent_pos = pos;
            if rand_dir {
                self.world.agent_dir = rng.rand_dir();
            }
            let front = self.world.get(self.world.front_pos());
            if matches!(front, Cell::Empty | Cell::Wall(_)) {
                return Ok(pos);
            }
        }
        Err(Rejected("agent always faces an object"))
    }

    /// Rooms reachable from room `start` through doors and opened walls, whatever the
    /// doors' states (`connect_all`'s `find_reach`).
    fn reachable_rooms(&self, start: usize) -> usize {
        let mut seen = vec![false; self.rooms.len()];
        let mut stack = vec![start];
        let mut count = 0;
        while let Some(index) = stack.pop() {
            if std::mem::replace(&mut seen[index], true) {
                continue;
            }
            count += 1;
            let room = &self.rooms[index];
            for side in 0..4 {
                if let (true, Some((i, j))) = (room.doors[side].connects(), room.neighbors[side]) {
                    stack.push(j * self.num_cols + i);
                }
            }
        }
        count
    }

    /// Adds unlocked doors of colors from `door_colors` until every room is reachable from the
    /// agent's room (`RoomGrid.connect_all`); never touches a room marked locked. Returns the
    /// new doors' positions.
    pub fn connect_all(
        &mut self,
        door_colors: &[Color],
        max_itrs: usize,
        rng: &mut LevelRng,
    ) -> Result<Vec<Pos>, Rejected> {
        let (si, sj) = self.room_from_pos(self.world.agent_pos).ok_or(Rejected("agent outside the rooms"))?;
        let start = self.index(si, sj)?;
        let mut added = Vec::new();
        let mut iterations = 0;
        loop {
            if iterations > max_itrs {
                return Err(Rejected("connect_all failed"));
            }
            iterations += 1;
            if self.reachable_rooms(start) == self.rooms.len() {
                return Ok(added);
            }
            let i = rng.rand_usize(0, self.num_cols);
            let j = rng.rand_usize(0, self.num_rows);
            let side = rng.rand_usize(0, 4);
            let room = &self.rooms[j * self.num_cols + i];
            if room.door_pos[side].is_none() || room.doors[side] != Passage::Wall {
                continue;
            }
            let Some((ni, nj)) = room.neighbors[side] else { continue };
            if room.locked || self.rooms[nj * self.num_cols + ni].locked {
                continue;
            }
            let color = rng.rand_elem(door_colors).ok_or(Rejected("no door colors"))?;
            let (_, pos) = self.add_door(i, j, Some(side), Some(color), Some(false), rng)?;
            added.push(pos);
        }
    }

    /// Adds `num_distractors` random keys, balls and boxes, in room `(i, j)` or random rooms
    /// (`RoomGrid.add_distractors`); with `all_unique`, no (type, color) repeats any object
    /// already added to a room.
    pub fn add_distractors(
        &mut self,
        i: Option<usize>,
        j: Option<usize>,
        num_distractors: usize,
        all_unique: bool,
        rng: &mut LevelRng,
    ) -> Result<Vec<(Cell, Pos)>, Rejected> {
        let mut existing: Vec<(ObjectType, Color)> =
            self.rooms.iter().flat_map(|r| r.objects.iter().copied()).collect();
        let mut added = Vec::with_capacity(num_distractors);
        let mut draws = 0;
        while added.len() < num_distractors {
            draws += 1;
            if draws > MAX_DISTRACTOR_DRAWS {
                return Err(Rejected("no distinct distractor left"));
            }
            let color = rng.rand_color();
            let kind = rng.rand_elem(&MOVABLE_TYPES).unwrap_or(ObjectType::Ball);
            if all_unique && existing.contains(&(kind, color)) {
                continue;
            }
            let room_i = i.unwrap_or_else(|| rng.rand_usize(0, self.num_cols));
            let room_j = j.unwrap_or_else(|| rng.rand_usize(0, self.num_rows));
            let object = self.add_object(room_i, room_j, Some(kind), Some(color), rng)?;
            existing.push((kind, color));
            added.push(object);
        }
        Ok(added)
    }
}

/// Gives the final touches of MiniGrid's pick-up-the-target levels: mission, task, limits.
fn finish_pick_up(grid: RoomGrid, target: Cell, max_steps: u32) -> Result<GridWorld, Rejected> {
    let color = target.color().ok_or(Rejected("target has no color"))?;
    let kind = target.object_type();
    let mut world = grid.into_world();
    world.mission = format!("pick up the {color} {}", kind.name());
    world.task = Task::pick_up_target(&world, kind, color);
    world.max_steps = max_steps;
    world.see_through_walls = false;
    world.agent_view_size = 7;
    Ok(world)
}

/// Reruns one generation attempt until it succeeds (MiniGrid's `RecursionError`, BabyAI's
/// `RejectSampling`). Every attempt draws fresh randomness and succeeds with high probability.
pub(super) fn retry(
    rng: &mut LevelRng,
    mut attempt: impl FnMut(&mut LevelRng) -> Result<GridWorld, Rejected>,
) -> GridWorld {
    loop {
        if let Ok(world) = attempt(rng) {
            return world;
        }
    }
}

/// KeyCorridorS{room_size}R{num_rows}: three columns of rooms, the middle one a corridor; a
/// locked door on the right column guards the ball, its key lies in a left-column room.
pub fn key_corridor(num_rows: usize, room_size: usize, rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| try_key_corridor(num_rows.max(1), room_size, rng))
}

fn try_key_corridor(num_rows: usize, room_size: usize, rng: &mut LevelRng) -> Result<GridWorld, Rejected> {
    let mut grid = RoomGrid::new(room_size, num_rows, 3, rng);
    for j in 1..num_rows {
        grid.remove_wall(1, j, UP)?;
    }
    let locked_row = rng.rand_usize(0, num_rows);
    let (door, _) = grid.add_door(2, locked_row, Some(LEFT), None, Some(true), rng)?;
    let door_color = door.color().ok_or(Rejected("door has no color"))?;
    let (target, _) = grid.add_object(2, locked_row, Some(ObjectType::Ball), None, rng)?;
    let key_row = rng.rand_usize(0, num_rows);
    grid.add_object(0, key_row, Some(ObjectType::Key), Some(door_color), rng)?;
    grid.place_agent(Some(1), Some(num_rows / 2), true, rng)?;
    grid.connect_all(&Color::SORTED_NAMES, CONNECT_ALL_MAX_ITRS, rng)?;
    let max_steps = 30 * grid.room_size().pow(2) as u32;
    finish_pick_up(grid, target, max_steps)
}

/// UnlockPickup: two 6x6 rooms joined by a locked door; the key and the agent on the left,
/// the box to pick up on the right.
pub fn unlock_pickup(rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| try_unlock_pickup(false, rng))
}

/// BlockedUnlockPickup: UnlockPickup with a ball blocking the locked door on the agent's side.
pub fn blocked_unlock_pickup(rng: &mut LevelRng) -> GridWorld {
    retry(rng, |rng| try_unlock_pickup(true, rng))
}

fn try_unlock_pickup(blocked: bool, rng: &mut LevelRng) -> Result<GridWorld, Rejected> {
    const ROOM_SIZE: usize = 6;
    let mut grid = RoomGrid::new(ROOM_SIZE, 1, 2, rng);
    let (target, _) = grid.add_object(1, 0, Some(ObjectType::Box), None, rng)?;
    let (door, door_pos) = grid.add_door(0, 0, Some(RIGHT), None, Some(true), rng)?;
    let door_color = door.color().ok_or(Rejected("door has no color"))?;
    if blocked {
        // Set straight on the grid, as MiniGrid does: not one of the room's objects.
        let ball_color = rng.rand_color();
        grid.world.set(door_pos.offset((-1, 0)), Cell::Ball(ball_color));
    }
    grid.add_object(0, 0, Some(ObjectType::Key), Some(door_color), rng)?;
    grid.place_agent(Some(0), Some(0), true, rng)?;
    let per_room = if blocked { 16 } else { 8 };
    finish_pick_up(grid, target, per_room * (ROOM_SIZE * ROOM_SIZE) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::levels::Level;
    use crate::env::grid::task::ObjectSet;

    const SEEDS: u64 = 1000;

    fn cells_where(world: &GridWorld, pred: impl Fn(Cell) -> bool) -> Vec<(Pos, Cell)> {
        world.find_all(&pred).into_iter().map(|p| (p, world.get(p))).collect()
    }

    /// Cells reachable from the agent through empty cells and doors the predicate lets
    /// through; blocking objects are reached (they can be faced) but not crossed.
    fn flood(world: &GridWorld, door_passable: impl Fn(DoorState) -> bool) -> Vec<Pos> {
        let mut seen = vec![world.agent_pos];
        let mut stack = vec![world.agent_pos];
        while let Some(p) = stack.pop() {
            let passable = match world.get(p) {
                Cell::Empty => true,
                Cell::Door { state, .. } => door_passable(state),
                _ => p == world.agent_pos,
            };
            if !passable {
                continue;
            }
            for d in [(1, 0), (0, 1), (-1, 0), (0, -1)] {
                let q = p.offset(d);
                if world.in_bounds(q) && !matches!(world.get(q), Cell::Wall(_)) && !seen.contains(&q) {
                    seen.push(q);
                    stack.push(q);
                }
            }
        }
        seen
    }

    /// Shared checks: agent on an empty cell inside the given room, facing an empty cell or
    /// a wall, MiniGrid's view settings, and a mission naming exactly one target.
    fn check_common(level: &Level, world: &GridWorld, agent_room: &Room) -> Pos {
        assert!(world.get(world.agent_pos).is_empty(), "agent on an object\n{world}");
        assert!(agent_room.pos_inside(world.agent_pos), "agent outside its room\n{world}");
        // The agent was placed facing an empty cell or a wall; KeyCorridor's `connect_all`
        // runs afterwards and may have turned that wall into an unlocked door.
        let front = world.get(world.front_pos());
        let front_ok = match level {
            Level::KeyCorridor { .. } => {
                matches!(front, Cell::Empty | Cell::Wall(_) | Cell::Door { state: DoorState::Closed, .. })
            }
            _ => matches!(front, Cell::Empty | Cell::Wall(_)),
        };
        assert!(front_ok, "agent faces {front:?}\n{world}");
        assert!(!world.see_through_walls);
        assert_eq!(world.agent_view_size, 7);
        assert_eq!(world.max_steps, level.default_max_steps());
        let rest = world.mission.strip_prefix("pick up the ").expect("mission wording");
        let (color, noun) = rest.split_once(' ').expect("color and noun");
        let color = Color::from_name(color).expect("color");
        let kind = ObjectType::from_name(noun).expect("type");
        let targets = cells_where(world, |c| c.object_type() == kind && c.color() == Some(color));
        assert_eq!(targets.len(), 1, "{}\n{world}", world.mission);
        let Task::PickUpTarget { target } = &world.task else { panic!("wrong task") };
        assert_eq!(target, &ObjectSet { on_grid: vec![targets[0].0], carried: false });
        assert_eq!(level.task_for(world).as_ref(), Some(&world.task));
        targets[0].0
    }

    fn room_at(top: Pos, size: i32) -> Room {
        Room::new(top, size)
    }

    #[test]
    fn key_corridor_layouts() {
        for num_rows in 1..=3usize {
            let level = Level::KeyCorridor { num_rows, room_size: 3 };
            for seed in 0..SEEDS {
                let world = level.generate(seed);
                assert_eq!((world.width(), world.height()), (7, 2 * num_rows + 1));
                let middle = room_at(Pos::new(2, 2 * (num_rows / 2) as i32), 3);
                let ball = check_common(&level, &world, &middle);
                assert!(world.mission.ends_with(" ball"));
                // The ball sits in a right-column room whose only entry is a locked door.
                assert_eq!(ball.x, 5, "{world}");
                let entry = Pos::new(4, ball.y);
                let Cell::Door { color: door_color, state: DoorState::Locked } = world.get(entry) else {
                    panic!("no locked door in front of the ball room\n{world}")
                };
                for q in [Pos::new(5, ball.y - 1), Pos::new(5, ball.y + 1)] {
                    assert!(!matches!(world.get(q), Cell::Door { .. }), "ball room has a second door\n{world}");
                }
                let locked = cells_where(&world, |c| matches!(c, Cell::Door { state: DoorState::Locked, .. }));
                assert_eq!(locked.len(), 1);
                let keys = cells_where(&world, |c| matches!(c, Cell::Key(_)));
                assert_eq!(keys.len(), 1);
                assert_eq!(keys[0].1, Cell::Key(door_color), "key opens the locked door");
                assert_eq!(keys[0].0.x, 1, "key in the left column");
                // Solvable: the key is reachable without the locked door, the ball with it.
                assert!(flood(&world, |s| s != DoorState::Locked).contains(&keys[0].0), "{world}");
                assert!(flood(&world, |_| true).contains(&ball), "{world}");
            }
        }
    }

    #[test]
    fn unlock_pickup_layouts() {
        for (level, blocked) in [(Level::UnlockPickup, false), (Level::BlockedUnlockPickup, true)] {
            for seed in 0..SEEDS {
                let world = level.generate(seed);
                assert_eq!((world.width(), world.height()), (11, 6));
                let left = room_at(Pos::new(0, 0), 6);
                let target = check_common(&level, &world, &left);
                assert!(world.mission.ends_with(" box"));
                assert!(target.x > 5, "box in the right room\n{world}");
                let doors = cells_where(&world, |c| matches!(c, Cell::Door { .. }));
                assert_eq!(doors.len(), 1);
                let (door_pos, door) = doors[0];
                assert_eq!(door_pos.x, 5);
                let Cell::Door { color, state: DoorState::Locked } = door else { panic!("door not locked") };
                let keys = cells_where(&world, |c| matches!(c, Cell::Key(_)));
                assert_eq!(keys.len(), 1);
                assert_eq!(keys[0].1, Cell::Key(color));
                assert!(keys[0].0.x < 5, "key in the agent's room");
                let balls = cells_where(&world, |c| matches!(c, Cell::Ball(_)));
                if blocked {
                    assert_eq!(balls.len(), 1);
                    assert_eq!(balls[0].0, door_pos.offset((-1, 0)), "ball blocks the door\n{world}");
                } else {
                    assert!(balls.is_empty());
                    assert!(flood(&world, |s| s != DoorState::Locked).contains(&keys[0].0));
                }
            }
        }
    }

    #[test]
    fn key_corridor_middle_column_is_a_corridor() {
        for (num_rows, room_size) in [(3usize, 3usize), (3, 4), (3, 5), (3, 6)] {
            let level = Level::KeyCorridor { num_rows, room_size };
            let step = room_size as i32 - 1;
            for seed in 0..100 {
                let world = level.generate(seed);
                let bottom = step * num_rows as i32;
                // Inside the middle column only the outer walls remain: rows 1..bottom are open.
                for y in 1..bottom {
                    for x in step + 1..2 * step {
                        assert!(!matches!(world.get(Pos::new(x, y)), Cell::Wall(_)), "{world}");
                    }
                }
                let middle = room_at(Pos::new(step, step * (num_rows / 2) as i32), room_size as i32);
                let ball = check_common(&level, &world, &middle);
                assert!(flood(&world, |_| true).contains(&ball), "{world}");
            }
        }
    }

    #[test]
    fn own_step_limits_match_level_defaults() {
        let mut rng = LevelRng::new(3);
        for (level, world) in [
            (Level::KeyCorridor { num_rows: 1, room_size: 3 }, key_corridor(1, 3, &mut rng)),
            (Level::KeyCorridor { num_rows: 3, room_size: 6 }, key_corridor(3, 6, &mut rng)),
            (Level::UnlockPickup, unlock_pickup(&mut rng)),
            (Level::BlockedUnlockPickup, blocked_unlock_pickup(&mut rng)),
        ] {
            assert_eq!(world.max_steps, level.default_max_steps(), "{}", level.name());
        }
        assert_eq!(Level::KeyCorridor { num_rows: 1, room_size: 3 }.default_max_steps(), 270);
        assert_eq!(Level::UnlockPickup.default_max_steps(), 288);
        assert_eq!(Level::BlockedUnlockPickup.default_max_steps(), 576);
    }

    #[test]
    fn generation_is_deterministic() {
        for level in [Level::KeyCorridor { num_rows: 3, room_size: 3 }, Level::UnlockPickup, Level::BlockedUnlockPickup]
        {
            for seed in 0..20 {
                assert_eq!(level.generate(seed), level.generate(seed));
            }
        }
    }

    #[test]
    fn grid_geometry_matches_minigrid() {
        let mut rng = LevelRng::new(5);
        let grid = RoomGrid::new(8, 3, 3, &mut rng);
        assert_eq!((grid.world.width(), grid.world.height()), (22, 22));
        assert_eq!(grid.world.agent_pos, Pos::new(11, 11));
        assert_eq!(grid.room_from_pos(Pos::new(7, 0)), Some((1, 0)));
        assert_eq!(grid.room_from_pos(Pos::new(6, 20)), Some((0, 2)));
        assert_eq!(grid.room_from_pos(Pos::new(21, 3)), None);
        let centre = grid.get_room(1, 1).expect("room");
        assert_eq!((centre.top, centre.size), (Pos::new(7, 7), (8, 8)));
        assert_eq!(centre.neighbors, [Some((2, 1)), Some((1, 2)), Some((0, 1)), Some((1, 0))]);
        // Shared walls share their door positions.
        assert_eq!(centre.door_pos[LEFT], grid.get_room(0, 1).expect("room").door_pos[RIGHT]);
        assert_eq!(centre.door_pos[UP], grid.get_room(1, 0).expect("room").door_pos[DOWN]);
        let corner = grid.get_room(0, 0).expect("room");
        assert_eq!(corner.neighbors[LEFT], None);
        assert_eq!(corner.door_pos[UP], None);
        for side in 0..4 {
            let Some(p) = centre.door_pos[side] else { panic!("centre room has all four walls") };
            assert_eq!(grid.world.get(p), Cell::WALL);
            let on_x = p.x == 7 || p.x == 14;
            let on_y = p.y == 7 || p.y == 14;
            assert!(on_x != on_y, "door position on a wall, not a corner: {p:?}");
        }
        assert!(grid.get_room(3, 0).is_none());
    }

    #[test]
    fn doors_walls_and_invalid_requests() {
        let mut rng = LevelRng::new(11);
        let mut grid = RoomGrid::new(5, 2, 2, &mut rng);
        let (door, pos) = grid.add_door(0, 0, Some(RIGHT), Some(Color::Red), Some(true), &mut rng).expect("door");
        assert_eq!(door, Cell::Door { color: Color::Red, state: DoorState::Locked });
        assert_eq!(grid.world.get(pos), door);
        assert!(grid.get_room(0, 0).expect("room").locked);
        assert_eq!(grid.get_room(1, 0).expect("room").doors[LEFT], Passage::Door);
        assert!(grid.add_door(1, 0, Some(LEFT), None, None, &mut rng).is_err(), "door already exists");
        assert!(grid.add_door(0, 0, Some(LEFT), None, None, &mut rng).is_err(), "outer wall");
        assert!(grid.add_door(2, 0, None, None, None, &mut rng).is_err(), "no such room");
        grid.remove_wall(0, 0, DOWN).expect("wall");
        for x in 1..4 {
            assert_eq!(grid.world.get(Pos::new(x, 4)), Cell::Empty);
        }
        assert_eq!(grid.world.get(Pos::new(0, 4)), Cell::WALL, "corners stay");
        assert_eq!(grid.world.get(Pos::new(4, 4)), Cell::WALL, "corners stay");
        assert_eq!(grid.get_room(0, 1).expect("room").doors[UP], Passage::Opening);
        assert!(grid.remove_wall(0, 1, UP).is_err());
        assert!(grid.add_object(0, 0, Some(ObjectType::Door), None, &mut rng).is_err());
    }

    #[test]
    fn connect_all_reaches_every_room_and_spares_locked_ones() {
        for seed in 0..200 {
            let mut rng = LevelRng::new(seed);
            let mut grid = RoomGrid::new(6, 3, 3, &mut rng);
            grid.add_door(2, 2, Some(UP), None, Some(true), &mut rng).expect("door");
            let added = grid.connect_all(&Color::SORTED_NAMES, CONNECT_ALL_MAX_ITRS, &mut rng).expect("connected");
            assert_eq!(grid.reachable_rooms(4), 9);
            let locked_room = grid.get_room(2, 2).expect("room");
            assert_eq!(locked_room.doors[LEFT], Passage::Wall, "nothing added to a locked room");
            for p in added {
                assert!(matches!(grid.world.get(p), Cell::Door { state: DoorState::Closed, .. }));
            }
        }
    }

    #[test]
    fn distractors_and_agent_placement() {
        for seed in 0..200 {
            let mut rng = LevelRng::new(seed);
            let mut grid = RoomGrid::new(8, 1, 1, &mut rng);
            let before = grid.world.agent_pos;
            let objects = grid.add_distractors(None, None, 18, true, &mut rng).expect("room for 18");
            let mut kinds: Vec<_> = objects.iter().map(|(c, _)| (c.object_type(), c.color())).collect();
            kinds.sort();
            kinds.dedup();
            assert_eq!(kinds.len(), 18, "all unique");
            for (cell, p) in &objects {
                assert_eq!(grid.world.get(*p), *cell);
                assert!(p.manhattan(before) >= 2, "not next to the agent");
            }
            assert!(grid.add_distractors(None, None, 1, true, &mut rng).is_err(), "every pair used");
            let p = grid.place_agent(None, None, true, &mut rng).expect("agent");
            assert!(grid.world.get(p).is_empty());
            assert!(matches!(grid.world.get(grid.world.front_pos()), Cell::Empty | Cell::Wall(_)));
        }
    }
}
