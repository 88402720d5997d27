//! One MiniGrid episode's state and its step function, with Farama MiniGrid 3.0's exact
//! rules (movement, pickup, drop, toggle, goal, lava, truncation) and task-specific success.

use std::fmt;

use super::object::{Cell, DoorState};
use super::task::{StepEvent, Task};

/// Grid coordinates; x grows right, y grows down, as in MiniGrid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
}

impl Pos {
    pub const fn new(x: i32, y: i32) -> Pos {
        Pos { x, y }
    }

    pub fn offset(self, (dx, dy): (i32, i32)) -> Pos {
        Pos::new(self.x + dx, self.y + dy)
    }

    pub fn manhattan(self, other: Pos) -> i32 {
        (self.x - other.x).abs() + (self.y - other.y).abs()
    }
}

/// MiniGrid's `DIR_TO_VEC`: 0 right, 1 down, 2 left, 3 up.
pub const DIR_TO_VEC: [(i32, i32); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];

/// The seven MiniGrid actions, numbered as `Actions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Action {
    Left = 0,
    Right = 1,
    Forward = 2,
    Pickup = 3,
    Drop = 4,
    Toggle = 5,
    Done = 6,
}

impl Action {
    pub const ALL: [Action; 7] =
        [Action::Left, Action::Right, Action::Forward, Action::Pickup, Action::Drop, Action::Toggle, Action::Done];
    pub const COUNT: usize = 7;

    pub fn from_index(index: usize) -> Option<Action> {
        Action::ALL.get(index).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Left => "left",
            Action::Right => "right",
            Action::Forward => "forward",
            Action::Pickup => "pickup",
            Action::Drop => "drop",
            Action::Toggle => "toggle",
            Action::Done => "done",
        }
    }
}

/// What one step returned.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct StepOutcome {
    pub reward: f32,
    pub terminated: bool,
    pub truncated: bool,
}

impl StepOutcome {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// Wall rings around the pre-encoded grid: enough for the largest view from any cell.
pub(super) const VIEW_PAD: i32 = super::observation::MAX_VIEW as i32 - 1;

/// A cell as the observation needs it: type, color and state in the low three bytes, and
/// bit 24 set when the cell blocks sight.
#[inline]
pub(super) fn packed_cell(cell: Cell) -> u32 {
    let [t, c, s] = cell.encode();
    t as u32 | (c as u32) << 8 | (s as u32) << 16 | (!cell.see_behind() as u32) << 24
}

/// The full state of one grid episode.
#[derive(Clone, Debug, PartialEq)]
pub struct GridWorld {
    width: i32,
    height: i32,
    /// Row-major, index `y * width + x` (MiniGrid's storage order).
    cells: Vec<Cell>,
    /// The same grid pre-encoded for observations (see `packed_cell`), surrounded by
    /// `VIEW_PAD` rings of walls so a view never needs a bounds check.
    packed: Vec<u32>,
    pub agent_pos: Pos,
    /// 0 right, 1 down, 2 left, 3 up.
    pub agent_dir: u8,
    /// The carried object; `Cell::Empty` when nothing is carried.
    pub carrying: Cell,
    pub step_count: u32,
    pub max_steps: u32,
    pub see_through_walls: bool,
    pub agent_view_size: usize,
    pub mission: String,
    pub task: Task,
}

impl GridWorld {
    /// An all-empty grid (levels draw walls themselves). Panics only on sizes below 3,
    /// which callers validate first.
    pub fn new(width: usize, height: usize) -> GridWorld {
        assert!(width >= 3 && height >= 3, "grid must be at least 3x3");
        let stride = width + 2 * VIEW_PAD as usize;
        let mut packed = vec![packed_cell(Cell::WALL); stride * (height + 2 * VIEW_PAD as usize)];
        for y in 0..height {
            let row = (y + VIEW_PAD as usize) * stride + VIEW_PAD as usize;
            packed[row..row + width].fill(packed_cell(Cell::Empty));
        }
        GridWorld {
            width: width as i32,
            height: height as i32,
            cells: vec![Cell::Empty; width * height],
            packed,
            agent_pos: Pos::new(1, 1),
            agent_dir: 0,
            carrying: Cell::Empty,
            step_count: 0,
            max_steps: 100,
            see_through_walls: false,
            agent_view_size: 7,
            mission: String::new(),
            task: Task::Navigate,
        }
    }

    pub fn width(&self) -> usize {
        self.width as usize
    }

    pub fn height(&self) -> usize {
        self.height as usize
    }

    pub fn in_bounds(&self, p: Pos) -> bool {
        p.x >= 0 && p.y >= 0 && p.x < self.width && p.y < self.height
    }

    /// The cell at `p`; positions off the grid read as walls (as MiniGrid's `slice` does).
    #[inline]
    pub fn get(&self, p: Pos) -> Cell {
        if self.in_bounds(p) { self.cells[(p.y * self.width + p.x) as usize] } else { Cell::WALL }
    }

    /// Sets a cell; writes off the grid are ignored.
    #[inline]
    pub fn set(&mut self, p: Pos, cell: Cell) {
        if self.in_bounds(p) {
            let w = self.width;
            self.cells[(p.y * w + p.x) as usize] = cell;
            let at = self.packed_index(p);
            self.packed[at] = packed_cell(cell);
        }
    }

    /// Row stride of the padded, pre-encoded grid.
    #[inline]
    pub(super) fn packed_stride(&self) -> i32 {
        self.width + 2 * VIEW_PAD
    }

    /// Index of `p` in the padded grid; valid for `p` up to `VIEW_PAD` cells off the grid.
    #[inline]
    pub(super) fn packed_index(&self, p: Pos) -> usize {
        ((p.y + VIEW_PAD) * self.packed_stride() + p.x + VIEW_PAD) as usize
    }

    #[inline]
    pub(super) fn packed(&self) -> &[u32] {
        &self.packed
    }

    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    pub fn horz_wall(&mut self, x: i32, y: i32, length: i32, cell: Cell) {
        for i in 0..length {
            self.set(Pos::new(x + i, y), cell);
        }
    }

    pub fn vert_wall(&mut self, x: i32, y: i32, length: i32, cell: Cell) {
        for j in 0..length {
            self.set(Pos::new(x, y + j), cell);
        }
    }

    /// MiniGrid's `wall_rect`: the outline of a rectangle in walls.
    pub fn wall_rect(&mut self, x: i32, y: i32, w: i32, h: i32) {
        self.horz_wall(x, y, w, Cell::WALL);
        self.horz_wall(x, y + h - 1, w, Cell::WALL);
        self.vert_wall(x, y, h, Cell::WALL);
        self.vert_wall(x + w - 1, y, h, Cell::WALL);
    }

    pub fn dir_vec(&self) -> (i32, i32) {
        DIR_TO_VEC[(self.agent_dir & 3) as usize]
    }

    pub fn front_pos(&self) -> Pos {
        self.agent_pos.offset(self.dir_vec())
    }

    /// MiniGrid's success reward: `1 - 0.9 * step_count / max_steps`.
    pub fn success_reward(&self) -> f32 {
        (1.0 - 0.9 * (self.step_count as f64 / self.max_steps as f64)) as f32
    }

    /// Encodes the whole grid without the agent, `[x][y][3]` flattened (`grid.encode()`).
    pub fn encode_grid(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.cells.len() * 3);
        for x in 0..self.width {
            for y in 0..self.height {
                out.extend_from_slice(&self.get(Pos::new(x, y)).encode());
            }
        }
        out
    }

    /// Applies one action with MiniGrid's rules, then the task's own success check.
    pub fn step(&mut self, action: Action) -> StepOutcome {
        self.step_count += 1;
        let mut outcome = StepOutcome::default();
        let front = self.front_pos();
        let front_cell = self.get(front);
        let mut event = StepEvent::None;
        match action {
            Action::Left => self.agent_dir = (self.agent_dir + 3) % 4,
            Action::Right => self.agent_dir = (self.agent_dir + 1) % 4,
            Action::Forward => {
                if front_cell.can_overlap() {
                    self.agent_pos = front;
                }
                match front_cell {
                    Cell::Goal => {
                        outcome.terminated = true;
                        outcome.reward = self.success_reward();
                    }
                    Cell::Lava => outcome.terminated = true,
                    _ => {}
                }
            }
            Action::Pickup => {
                if front_cell.can_pickup() && self.carrying.is_empty() {
                    self.carrying = front_cell;
                    self.set(front, Cell::Empty);
                    event = StepEvent::PickedUp(front);
                }
            }
            Action::Drop => {
                if front_cell.is_empty() && !self.carrying.is_empty() && self.in_bounds(front) {
                    self.set(front, self.carrying);
                    self.carrying = Cell::Empty;
                    event = StepEvent::Dropped(front);
                }
            }
            Action::Toggle => event = self.toggle(front, front_cell),
            Action::Done => {}
        }
        if self.step_count >= self.max_steps {
            outcome.truncated = true;
        }
        // The task hook needs `&self` too, so take it out for the call.
        let mut task = std::mem::replace(&mut self.task, Task::Navigate);
        if let Some(success) = task.after_step(self, action, event) {
            outcome.terminated = true;
            outcome.reward = if success { self.success_reward() } else { 0.0 };
        }
        self.task = task;
        outcome
    }

    fn toggle(&mut self, front: Pos, front_cell: Cell) -> StepEvent {
        match front_cell {
            Cell::Door { color, state } => {
                let new_state = match state {
                    DoorState::Locked => {
                        if self.carrying == Cell::Key(color) {
                            DoorState::Open
                        } else {
                            return StepEvent::None;
                        }
                    }
                    DoorState::Open => DoorState::Closed,
                    DoorState::Closed => DoorState::Open,
                };
                self.set(front, Cell::Door { color, state: new_state });
                StepEvent::DoorToggled {
                    pos: front,
                    opened: new_state == DoorState::Open,
                    was_locked: state == DoorState::Locked,
                }
            }
            Cell::Box { .. } => {
                self.set(front, front_cell.box_contents());
                StepEvent::BoxOpened(front)
            }
            _ => StepEvent::None,
        }
    }

    /// Every position holding `cell`, in MiniGrid's scan order (x outer, y inner).
    pub fn find_all(&self, mut pred: impl FnMut(Cell) -> bool) -> Vec<Pos> {
        let mut out = Vec::new();
        for x in 0..self.width {
            for y in 0..self.height {
                let p = Pos::new(x, y);
                if pred(self.get(p)) {
                    out.push(p);
                }
            }
        }
        out
    }
}

impl fmt::Display for GridWorld {
    /// MiniGrid's `pprint_grid`: two characters per cell, the agent as `>>`, `VV`, `<<`, `^^`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const AGENT: [char; 4] = ['>', 'V', '<', '^'];
        for y in 0..self.height {
            for x in 0..self.width {
                let p = Pos::new(x, y);
                let [a, b] = if p == self.agent_pos {
                    let c = AGENT[(self.agent_dir & 3) as usize];
                    [c, c]
                } else {
                    self.get(p).symbol()
                };
                write!(f, "{a}{b}")?;
            }
            if y + 1 < self.height {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::object::Color;
    use super::*;

    fn room(size: usize) -> GridWorld {
        let mut w = GridWorld::new(size, size);
        w.wall_rect(0, 0, size as i32, size as i32);
        w.max_steps = 10;
        w
    }

    #[test]
    fn turning_and_moving() {
        let mut w = room(5);
        w.agent_pos = Pos::new(1, 1);
        w.step(Action::Forward);
        assert_eq!(w.agent_pos, Pos::new(2, 1));
        w.step(Action::Left);
        assert_eq!(w.agent_dir, 3);
        w.step(Action::Forward); // into the wall
        assert_eq!(w.agent_pos, Pos::new(2, 1));
        w.step(Action::Right);
        w.step(Action::Right);
        assert_eq!(w.agent_dir, 1);
    }

    #[test]
    fn locked_door_needs_matching_key_and_never_relocks() {
        let mut w = room(5);
        w.agent_pos = Pos::new(1, 1);
        let door = Pos::new(2, 1);
        w.set(door, Cell::Door { color: Color::Yellow, state: DoorState::Locked });
        w.step(Action::Toggle);
        assert_eq!(w.get(door), Cell::Door { color: Color::Yellow, state: DoorState::Locked });
        w.carrying = Cell::Key(Color::Blue);
        w.step(Action::Toggle);
        assert_eq!(w.get(door), Cell::Door { color: Color::Yellow, state: DoorState::Locked });
        w.carrying = Cell::Key(Color::Yellow);
        w.step(Action::Toggle);
        assert_eq!(w.get(door), Cell::Door { color: Color::Yellow, state: DoorState::Open });
        assert_eq!(w.carrying, Cell::Key(Color::Yellow), "the key is kept");
        w.step(Action::Toggle);
        assert_eq!(w.get(door), Cell::Door { color: Color::Yellow, state: DoorState::Closed });
        w.carrying = Cell::Empty;
        w.step(Action::Toggle);
        assert_eq!(w.get(door), Cell::Door { color: Color::Yellow, state: DoorState::Open });
    }

    #[test]
    fn pickup_drop_and_box_rules() {
        let mut w = room(5);
        w.agent_pos = Pos::new(1, 1);
        let front = Pos::new(2, 1);
        w.set(front, Cell::boxed(Color::Red, Cell::Key(Color::Green)));
        w.step(Action::Toggle);
        assert_eq!(w.get(front), Cell::Key(Color::Green), "toggling a box reveals its contents");
        w.step(Action::Pickup);
        assert_eq!(w.carrying, Cell::Key(Color::Green));
        w.set(front, Cell::Ball(Color::Blue));
        w.step(Action::Pickup);
        assert_eq!(w.carrying, Cell::Key(Color::Green), "carry at most one object");
        w.step(Action::Drop);
        assert_eq!(w.get(front), Cell::Ball(Color::Blue), "drop only onto an empty cell");
        w.set(front, Cell::Goal);
        w.step(Action::Drop);
        assert_eq!(w.get(front), Cell::Goal);
        w.set(front, Cell::Empty);
        w.step(Action::Drop);
        assert_eq!(w.get(front), Cell::Key(Color::Green));
        assert!(w.carrying.is_empty());
    }

    #[test]
    fn goal_rewards_and_lava_terminates() {
        let mut w = room(5);
        w.max_steps = 100;
        w.agent_pos = Pos::new(1, 1);
        w.set(Pos::new(2, 1), Cell::Goal);
        let out = w.step(Action::Forward);
        assert!(out.terminated);
        assert!((out.reward - (1.0 - 0.9 * 0.01)).abs() < 1e-6);
        let mut w = room(5);
        w.agent_pos = Pos::new(1, 1);
        w.set(Pos::new(2, 1), Cell::Lava);
        let out = w.step(Action::Forward);
        assert!(out.terminated && out.reward == 0.0);
        assert_eq!(w.agent_pos, Pos::new(2, 1));
    }

    #[test]
    fn truncation_at_max_steps_can_coincide_with_termination() {
        let mut w = room(5);
        w.max_steps = 1;
        w.agent_pos = Pos::new(1, 1);
        w.set(Pos::new(2, 1), Cell::Goal);
        let out = w.step(Action::Forward);
        assert!(out.terminated && out.truncated);
        assert!((out.reward - 0.1).abs() < 1e-6);
    }

    #[test]
    fn display_matches_pprint_grid() {
        let mut w = room(3);
        w.agent_pos = Pos::new(1, 1);
        assert_eq!(w.to_string(), "WWWWWW\nWW>>WW\nWWWWWW");
    }
}
