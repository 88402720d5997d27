//! World objects of a MiniGrid grid: cell contents, colors and door states, with
//! MiniGrid's exact integer encodings (`OBJECT_TO_IDX`, `COLOR_TO_IDX`, `STATE_TO_IDX`).

use std::fmt;

/// The six MiniGrid colors, numbered as `COLOR_TO_IDX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Red = 0,
    Green = 1,
    Blue = 2,
    Purple = 3,
    Yellow = 4,
    Grey = 5,
}

impl Color {
    pub const ALL: [Color; 6] = [Color::Red, Color::Green, Color::Blue, Color::Purple, Color::Yellow, Color::Grey];
    /// MiniGrid's `COLOR_NAMES` is sorted alphabetically; random color draws index into it.
    pub const SORTED_NAMES: [Color; 6] =
        [Color::Blue, Color::Green, Color::Grey, Color::Purple, Color::Red, Color::Yellow];

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(index: u8) -> Option<Color> {
        Color::ALL.get(index as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Purple => "purple",
            Color::Yellow => "yellow",
            Color::Grey => "grey",
        }
    }

    pub fn from_name(name: &str) -> Option<Color> {
        Color::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Object type indices, as MiniGrid's `OBJECT_TO_IDX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    Unseen = 0,
    Empty = 1,
    Wall = 2,
    Floor = 3,
    Door = 4,
    Key = 5,
    Ball = 6,
    Box = 7,
    Goal = 8,
    Lava = 9,
    Agent = 10,
}

impl ObjectType {
    pub fn from_index(index: u8) -> Option<ObjectType> {
        use ObjectType::*;
        [Unseen, Empty, Wall, Floor, Door, Key, Ball, Box, Goal, Lava, Agent].get(index as usize).copied()
    }

    pub fn name(self) -> &'static str {
        use ObjectType::*;
        match self {
            Unseen => "unseen",
            Empty => "empty",
            Wall => "wall",
            Floor => "floor",
            Door => "door",
            Key => "key",
            Ball => "ball",
            Box => "box",
            Goal => "goal",
            Lava => "lava",
            Agent => "agent",
        }
    }

    pub fn from_name(name: &str) -> Option<ObjectType> {
        (0..=10).filter_map(ObjectType::from_index).find(|t| t.name() == name)
    }
}

/// Door states, as MiniGrid's `STATE_TO_IDX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoorState {
    Open = 0,
    Closed = 1,
    Locked = 2,
}

impl DoorState {
    pub fn from_index(index: u8) -> Option<DoorState> {
        [DoorState::Open, DoorState::Closed, DoorState::Locked].get(index as usize).copied()
    }
}

/// One encoded cell: (type, color, state), MiniGrid's `WorldObj.encode()`.
pub type Encoded = [u8; 3];

/// An object a box can hold. Boxes inside boxes keep their own contents out (MiniGrid
/// never nests them), which keeps `Cell` small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Contents(pub Encoded);

/// What occupies one grid cell. `Empty` is MiniGrid's `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Cell {
    #[default]
    Empty,
    Wall(Color),
    Floor(Color),
    Door {
        color: Color,
        state: DoorState,
    },
    Key(Color),
    Ball(Color),
    Box {
        color: Color,
        contents: Option<Contents>,
    },
    Goal,
    Lava,
}

impl Cell {
    pub const WALL: Cell = Cell::Wall(Color::Grey);

    pub fn object_type(self) -> ObjectType {
        match self {
            Cell::Empty => ObjectType::Empty,
            Cell::Wall(_) => ObjectType::Wall,
            Cell::Floor(_) => ObjectType::Floor,
            Cell::Door { .. } => ObjectType::Door,
            Cell::Key(_) => ObjectType::Key,
            Cell::Ball(_) => ObjectType::Ball,
            Cell::Box { .. } => ObjectType::Box,
            Cell::Goal => ObjectType::Goal,
            Cell::Lava => ObjectType::Lava,
        }
    }

    /// The object's color; `None` for an empty cell. Goal is green and lava red, as in MiniGrid.
    pub fn color(self) -> Option<Color> {
        match self {
            Cell::Empty => None,
            Cell::Wall(c) | Cell::Floor(c) | Cell::Key(c) | Cell::Ball(c) => Some(c),
            Cell::Door { color, .. } | Cell::Box { color, .. } => Some(color),
            Cell::Goal => Some(Color::Green),
            Cell::Lava => Some(Color::Red),
        }
    }

    pub fn is_empty(self) -> bool {
        matches!(self, Cell::Empty)
    }

    /// Whether the agent may stand on this cell (MiniGrid: `None` or `can_overlap()`).
    pub fn can_overlap(self) -> bool {
        match self {
            Cell::Empty | Cell::Floor(_) | Cell::Goal | Cell::Lava => true,
            Cell::Door { state, .. } => state == DoorState::Open,
            _ => false,
        }
    }

    pub fn can_pickup(self) -> bool {
        matches!(self, Cell::Key(_) | Cell::Ball(_) | Cell::Box { .. })
    }

    /// Whether sight passes through this cell (walls and closed or locked doors block it).
    pub fn see_behind(self) -> bool {
        match self {
            Cell::Wall(_) => false,
            Cell::Door { state, .. } => state == DoorState::Open,
            _ => true,
        }
    }

    /// MiniGrid's encoding. An empty cell encodes as (1, 0, 0).
    pub fn encode(self) -> Encoded {
        let state = match self {
            Cell::Door { state, .. } => state as u8,
            _ => 0,
        };
        [self.object_type() as u8, self.color().map_or(0, Color::index), state]
    }

    /// Inverse of `encode` (MiniGrid's `WorldObj.decode`): unseen and agent decode to empty,
    /// goal and lava ignore the stored color.
    pub fn decode(encoded: Encoded) -> Option<Cell> {
        let [type_index, color_index, state_index] = encoded;
        let kind = ObjectType::from_index(type_index)?;
        let color = Color::from_index(color_index)?;
        Some(match kind {
            ObjectType::Unseen | ObjectType::Empty | ObjectType::Agent => Cell::Empty,
            ObjectType::Wall => Cell::Wall(color),
            ObjectType::Floor => Cell::Floor(color),
            ObjectType::Door => {
                // MiniGrid decodes `is_open = state == 0`, `is_locked = state == 2`.
                Cell::Door { color, state: DoorState::from_index(state_index).unwrap_or(DoorState::Closed) }
            }
            ObjectType::Key => Cell::Key(color),
            ObjectType::Ball => Cell::Ball(color),
            ObjectType::Box => Cell::Box { color, contents: None },
            ObjectType::Goal => Cell::Goal,
            ObjectType::Lava => Cell::Lava,
        })
    }

    /// What a box holds, as a cell (empty when it holds nothing or this is not a box).
    pub fn box_contents(self) -> Cell {
        match self {
            Cell::Box { contents: Some(Contents(encoded)), .. } => Cell::decode(encoded).unwrap_or(Cell::Empty),
            _ => Cell::Empty,
        }
    }

    /// A box holding `contents` (an empty cell means an empty box).
    pub fn boxed(color: Color, contents: Cell) -> Cell {
        let contents = if contents.is_empty() { None } else { Some(Contents(contents.encode())) };
        Cell::Box { color, contents }
    }

    /// Two-character symbol used by the ASCII display (MiniGrid's `pprint_grid` letters).
    pub fn symbol(self) -> [char; 2] {
        let color_letter = |c: Color| c.name().chars().next().unwrap_or('?').to_ascii_uppercase();
        match self {
            Cell::Empty => [' ', ' '],
            Cell::Wall(_) => ['W', 'W'],
            Cell::Floor(c) => ['F', color_letter(c)],
            Cell::Door { state: DoorState::Open, .. } => ['_', '_'],
            Cell::Door { color, state: DoorState::Locked } => ['L', color_letter(color)],
            Cell::Door { color, state: DoorState::Closed } => ['D', color_letter(color)],
            Cell::Key(c) => ['K', color_letter(c)],
            Cell::Ball(c) => ['A', color_letter(c)],
            Cell::Box { color, .. } => ['B', color_letter(color)],
            Cell::Goal => ['G', 'G'],
            Cell::Lava => ['V', 'V'],
        }
    }

    /// Short English noun phrase ("yellow key", "locked blue door"), used by `env::text`.
    pub fn describe(self) -> String {
        match self {
            Cell::Empty => "nothing".to_string(),
            Cell::Wall(_) => "wall".to_string(),
            Cell::Floor(c) => format!("{c} floor"),
            Cell::Door { color, state } => {
                let s = match state {
                    DoorState::Open => "open",
                    DoorState::Closed => "closed",
                    DoorState::Locked => "locked",
                };
                format!("{s} {color} door")
            }
            Cell::Key(c) => format!("{c} key"),
            Cell::Ball(c) => format!("{c} ball"),
            Cell::Box { color, .. } => format!("{color} box"),
            Cell::Goal => "goal".to_string(),
            Cell::Lava => "lava".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_minigrid_tables() {
        assert_eq!(Cell::Empty.encode(), [1, 0, 0]);
        assert_eq!(Cell::WALL.encode(), [2, 5, 0]);
        assert_eq!(Cell::Door { color: Color::Yellow, state: DoorState::Locked }.encode(), [4, 4, 2]);
        assert_eq!(Cell::Key(Color::Purple).encode(), [5, 3, 0]);
        assert_eq!(Cell::Goal.encode(), [8, 1, 0]);
        assert_eq!(Cell::Lava.encode(), [9, 0, 0]);
        assert_eq!(Cell::boxed(Color::Red, Cell::Key(Color::Blue)).encode(), [7, 0, 0]);
    }

    #[test]
    fn decode_inverts_encode() {
        for cell in [
            Cell::Empty,
            Cell::WALL,
            Cell::Floor(Color::Blue),
            Cell::Door { color: Color::Red, state: DoorState::Open },
            Cell::Door { color: Color::Red, state: DoorState::Closed },
            Cell::Key(Color::Green),
            Cell::Ball(Color::Grey),
            Cell::Goal,
            Cell::Lava,
        ] {
            assert_eq!(Cell::decode(cell.encode()), Some(cell));
        }
        assert_eq!(Cell::decode([0, 0, 0]), Some(Cell::Empty));
        assert_eq!(Cell::decode([11, 0, 0]), None);
        assert_eq!(Cell::decode([5, 6, 0]), None);
    }

    #[test]
    fn box_round_trips_its_contents() {
        let b = Cell::boxed(Color::Blue, Cell::Key(Color::Red));
        assert_eq!(b.box_contents(), Cell::Key(Color::Red));
        assert_eq!(Cell::boxed(Color::Blue, Cell::Empty).box_contents(), Cell::Empty);
    }

    #[test]
    fn color_names_sorted_like_minigrid() {
        let mut names: Vec<&str> = Color::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        let sorted: Vec<&str> = Color::SORTED_NAMES.iter().map(|c| c.name()).collect();
        assert_eq!(names, sorted);
    }
}
