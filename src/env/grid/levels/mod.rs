//! The catalogue of grid levels: names, parameters, validation and seeded generation with
//! the layout rules of MiniGrid 3.0, BabyAI and LLM4Teach's tasks.

mod babyai;
mod builder;
mod llm4teach;
mod minigrid;
mod roomgrid;

use std::fmt;

pub use builder::LevelRng;
pub use roomgrid::RoomGrid;

use super::object::{Color, ObjectType};
use super::task::{RoomLayout, Task};
use super::world::GridWorld;

/// BabyAI's rooms are all 8 cells wide (walls shared between neighbours).
pub const BABYAI_ROOM_SIZE: i32 = 8;

/// A grid level and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Level {
    /// MiniGrid Empty: a walled room, agent top-left facing right, goal bottom-right.
    Empty {
        size: usize,
    },
    /// MiniGrid DoorKey: a wall splits the room; a locked yellow door and its key.
    DoorKey {
        size: usize,
    },
    /// LLM4Teach: a room of random size in a 10x10 array, one locked door, its key.
    SimpleDoorKey,
    /// LLM4Teach SimpleDoorKey plus one lava cell, never in front of the door.
    LavaDoorKey,
    /// LLM4Teach: a blue locked door, a blue and a red key, neither in front of the door.
    ColoredDoorKey,
    /// LLM4Teach: 20x20, two locked doors on opposite walls, the key in the central 2x2.
    TwoDoor,
    /// MiniGrid KeyCorridor: rooms off a corridor, a locked room holds the ball to fetch.
    KeyCorridor {
        num_rows: usize,
        room_size: usize,
    },
    UnlockPickup,
    BlockedUnlockPickup,
    FourRooms,
    LavaCrossing {
        size: usize,
        num_crossings: usize,
    },
    MultiRoom {
        num_rooms: usize,
        max_room_size: usize,
    },
    GoToRedBallNoDists,
    GoToObj,
    PickupLoc,
    OpenDoor,
}

/// Why a level's parameters are impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LevelError(pub String);

impl Level {
    /// Every ready-made level, by its canonical name.
    pub fn presets() -> Vec<Level> {
        use Level::*;
        vec![
            Empty { size: 5 },
            Empty { size: 8 },
            Empty { size: 16 },
            DoorKey { size: 5 },
            DoorKey { size: 6 },
            DoorKey { size: 8 },
            DoorKey { size: 16 },
            SimpleDoorKey,
            LavaDoorKey,
            ColoredDoorKey,
            TwoDoor,
            KeyCorridor { num_rows: 1, room_size: 3 },
            KeyCorridor { num_rows: 2, room_size: 3 },
            KeyCorridor { num_rows: 3, room_size: 3 },
            UnlockPickup,
            BlockedUnlockPickup,
            FourRooms,
            LavaCrossing { size: 9, num_crossings: 1 },
            MultiRoom { num_rooms: 2, max_room_size: 4 },
            GoToRedBallNoDists,
            GoToObj,
            PickupLoc,
            OpenDoor,
        ]
    }

    /// The canonical short name ("DoorKey-8x8", "KeyCorridorS3R1", "MultiRoom-N2-S4").
    pub fn name(&self) -> String {
        use Level::*;
        match self {
            Empty { size } => format!("Empty-{size}x{size}"),
            DoorKey { size } => format!("DoorKey-{size}x{size}"),
            SimpleDoorKey => "SimpleDoorKey".into(),
            LavaDoorKey => "LavaDoorKey".into(),
            ColoredDoorKey => "ColoredDoorKey".into(),
            TwoDoor => "TwoDoor".into(),
            KeyCorridor { num_rows, room_size } => format!("KeyCorridorS{room_size}R{num_rows}"),
            UnlockPickup => "UnlockPickup".into(),
            BlockedUnlockPickup => "BlockedUnlockPickup".into(),
            FourRooms => "FourRooms".into(),
            LavaCrossing { size, num_crossings } => format!("LavaCrossingS{size}N{num_crossings}"),
            MultiRoom { num_rooms, max_room_size } => format!("MultiRoom-N{num_rooms}-S{max_room_size}"),
            GoToRedBallNoDists => "GoToRedBallNoDists".into(),
            GoToObj => "GoToObj".into(),
            PickupLoc => "PickupLoc".into(),
            OpenDoor => "OpenDoor".into(),
        }
    }

    /// Parses a short name or a Gym id ("MiniGrid-DoorKey-8x8-v0", "BabyAI-GoToObj-v0").
    /// Parameterised families accept any size ("DoorKey-12x12"); `validate` checks them.
    pub fn from_name(name: &str) -> Option<Level> {
        let short = name.strip_prefix("MiniGrid-").or_else(|| name.strip_prefix("BabyAI-")).unwrap_or(name);
        let short = short.strip_suffix("-v0").unwrap_or(short);
        // LLM4Teach registers its tasks under their generator parameters.
        match short {
            "SimpleDoorKey-Min5-Max10-View3" => return Some(Level::SimpleDoorKey),
            "LavaDoorKey-Min5-Max10-View3" => return Some(Level::LavaDoorKey),
            "ColoredDoorKey-Min5-Max10-View3" => return Some(Level::ColoredDoorKey),
            "TwoDoor-Min20-Max20" => return Some(Level::TwoDoor),
            _ => {}
        }
        if let Some(level) = Level::presets().into_iter().find(|l| l.name() == short) {
            return Some(level);
        }
        let square = |rest: &str| -> Option<usize> {
            let (a, b) = rest.split_once('x')?;
            let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
            (a == b).then_some(a)
        };
        if let Some(rest) = short.strip_prefix("Empty-") {
            return square(rest).map(|size| Level::Empty { size });
        }
        if let Some(rest) = short.strip_prefix("DoorKey-") {
            return square(rest).map(|size| Level::DoorKey { size });
        }
        if let Some(rest) = short.strip_prefix("KeyCorridorS") {
            let (s, r) = rest.split_once('R')?;
            return Some(Level::KeyCorridor { room_size: s.parse().ok()?, num_rows: r.parse().ok()? });
        }
        if let Some(rest) = short.strip_prefix("LavaCrossingS") {
            let (s, n) = rest.split_once('N')?;
            return Some(Level::LavaCrossing { size: s.parse().ok()?, num_crossings: n.parse().ok()? });
        }
        if let Some(rest) = short.strip_prefix("MultiRoom-N") {
            let (n, s) = rest.split_once("-S")?;
            return Some(Level::MultiRoom { num_rooms: n.parse().ok()?, max_room_size: s.parse().ok()? });
        }
        None
    }

    /// Rejects impossible parameters before any generation is attempted.
    pub fn validate(&self) -> Result<(), LevelError> {
        let fail = |msg: String| Err(LevelError(format!("{}: {msg}", self.name())));
        match *self {
            Level::Empty { size } if !(3..=64).contains(&size) => fail("size must be between 3 and 64".into()),
            Level::DoorKey { size } if !(5..=64).contains(&size) => fail("size must be between 5 and 64".into()),
            Level::KeyCorridor { num_rows, room_size }
                if !(1..=6).contains(&num_rows) || !(3..=12).contains(&room_size) =>
            {
                fail("rows must be 1..=6 and room size 3..=12".into())
            }
            Level::LavaCrossing { size, num_crossings } if !(5..=64).contains(&size) || size.is_multiple_of(2) => {
                fail(format!("size must be odd and between 5 and 64 (got {size}, {num_crossings} crossings)"))
            }
            Level::LavaCrossing { size, num_crossings } if num_crossings == 0 || num_crossings > (size - 3) / 2 * 2 => {
                fail(format!("{num_crossings} crossings do not fit a {size}x{size} grid"))
            }
            Level::MultiRoom { num_rooms, max_room_size }
                if !(1..=10).contains(&num_rooms) || !(4..=10).contains(&max_room_size) =>
            {
                fail("rooms must be 1..=10 and max room size 4..=10".into())
            }
            _ => Ok(()),
        }
    }

    /// The level's own step limit (BabyAI computes it at reset from the instruction).
    pub fn default_max_steps(&self) -> u32 {
        // Saturating: callers may ask before `validate` has rejected absurd sizes.
        let square = |n: usize| (n.min(u16::MAX as usize) as u32).pow(2);
        match self {
            Level::Empty { size } => 4u32.saturating_mul(square(*size)),
            Level::DoorKey { size } => 10u32.saturating_mul(square(*size)),
            Level::SimpleDoorKey | Level::LavaDoorKey | Level::ColoredDoorKey | Level::TwoDoor => 150,
            Level::KeyCorridor { room_size, .. } => 30u32.saturating_mul(square(*room_size)),
            Level::UnlockPickup => 8 * 6u32.pow(2),
            Level::BlockedUnlockPickup => 16 * 6u32.pow(2),
            Level::FourRooms => 100,
            Level::LavaCrossing { size, .. } => 4u32.saturating_mul(square(*size)),
            Level::MultiRoom { num_rooms, .. } => 20u32.saturating_mul((*num_rooms).min(u16::MAX as usize) as u32),
            // BabyAI: num_navs * room_size^2 * rows * cols, with one navigation for these.
            Level::GoToRedBallNoDists | Level::GoToObj | Level::PickupLoc => 64,
            Level::OpenDoor => 64 * 9,
        }
    }

    /// Rooms for BabyAI's location words, where the level is built on a room grid.
    pub fn room_layout(&self, width: usize, height: usize) -> Option<RoomLayout> {
        match self {
            Level::GoToRedBallNoDists | Level::GoToObj | Level::PickupLoc | Level::OpenDoor => Some(RoomLayout {
                room_size: BABYAI_ROOM_SIZE,
                num_cols: ((width as i32 - 1) / (BABYAI_ROOM_SIZE - 1)).max(1),
                num_rows: ((height as i32 - 1) / (BABYAI_ROOM_SIZE - 1)).max(1),
            }),
            _ => None,
        }
    }

    /// Generates a fresh episode for `seed`. Same seed, same layout.
    pub fn generate(&self, seed: u64) -> GridWorld {
        let mut rng = LevelRng::new(seed);
        self.generate_with(&mut rng)
    }

    /// Generates with a caller-owned RNG (vectorised envs keep one per env).
    pub fn generate_with(&self, rng: &mut LevelRng) -> GridWorld {
        let mut world = match *self {
            Level::Empty { size } => minigrid::empty(size),
            Level::DoorKey { size } => minigrid::door_key(size, rng),
            Level::SimpleDoorKey => llm4teach::simple_door_key(rng),
            Level::LavaDoorKey => llm4teach::lava_door_key(rng),
            Level::ColoredDoorKey => llm4teach::colored_door_key(rng),
            Level::TwoDoor => llm4teach::two_door(rng),
            Level::KeyCorridor { num_rows, room_size } => roomgrid::key_corridor(num_rows, room_size, rng),
            Level::UnlockPickup => roomgrid::unlock_pickup(rng),
            Level::BlockedUnlockPickup => roomgrid::blocked_unlock_pickup(rng),
            Level::FourRooms => minigrid::four_rooms(rng),
            Level::LavaCrossing { size, num_crossings } => minigrid::lava_crossing(size, num_crossings, rng),
            Level::MultiRoom { num_rooms, max_room_size } => minigrid::multi_room(num_rooms, max_room_size, rng),
            Level::GoToRedBallNoDists => babyai::go_to_red_ball_no_dists(rng),
            Level::GoToObj => babyai::go_to_obj(rng),
            Level::PickupLoc => babyai::pickup_loc(rng),
            Level::OpenDoor => babyai::open_door(rng),
        };
        if !matches!(self, Level::GoToRedBallNoDists | Level::GoToObj | Level::PickupLoc | Level::OpenDoor) {
            world.max_steps = self.default_max_steps();
        }
        world.step_count = 0;
        world.carrying = super::object::Cell::Empty;
        world
    }

    /// The success rule for a recorded start state (conformance replays): the level's task,
    /// rebuilt from the mission string and the grid as MiniGrid would have set it up.
    pub fn task_for(&self, world: &GridWorld) -> Option<Task> {
        match self {
            Level::KeyCorridor { .. } | Level::UnlockPickup | Level::BlockedUnlockPickup => {
                let rest = world.mission.strip_prefix("pick up the ")?;
                let (color, noun) = rest.split_once(' ')?;
                Some(Task::pick_up_target(world, ObjectType::from_name(noun)?, Color::from_name(color)?))
            }
            Level::SimpleDoorKey | Level::LavaDoorKey | Level::ColoredDoorKey | Level::TwoDoor => Some(Task::OpenDoor),
            Level::GoToRedBallNoDists | Level::GoToObj | Level::PickupLoc | Level::OpenDoor => {
                let rooms = self.room_layout(world.width(), world.height())?;
                Task::babyai_from_mission(&world.mission, world, &rooms)
            }
            _ => Some(Task::Navigate),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Helpers shared by the level generators' tests.
#[cfg(test)]
mod test_support {
    use std::collections::VecDeque;

    use crate::env::grid::object::Cell;
    use crate::env::grid::world::{DIR_TO_VEC, GridWorld, Pos};

    /// Cells reachable from `from` through cells `passable` accepts.
    pub fn reachable(w: &GridWorld, from: Pos, passable: impl Fn(Cell) -> bool) -> Vec<Pos> {
        let mut seen = vec![from];
        let mut queue = VecDeque::from([from]);
        while let Some(p) = queue.pop_front() {
            for step in DIR_TO_VEC {
                let q = p.offset(step);
                if w.in_bounds(q) && !seen.contains(&q) && passable(w.get(q)) {
                    seen.push(q);
                    queue.push_back(q);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for level in Level::presets() {
            assert_eq!(Level::from_name(&level.name()), Some(level.clone()), "{}", level.name());
        }
        assert_eq!(Level::from_name("MiniGrid-DoorKey-8x8-v0"), Some(Level::DoorKey { size: 8 }));
        assert_eq!(Level::from_name("BabyAI-GoToObj-v0"), Some(Level::GoToObj));
        assert_eq!(Level::from_name("MiniGrid-TwoDoor-Min20-Max20"), Some(Level::TwoDoor));
        assert_eq!(Level::from_name("DoorKey-12x12"), Some(Level::DoorKey { size: 12 }));
        assert_eq!(Level::from_name("DoorKey-12x11"), None);
        assert_eq!(Level::from_name("Nope"), None);
    }

    #[test]
    fn impossible_sizes_are_rejected() {
        assert!(Level::DoorKey { size: 3 }.validate().is_err());
        assert!(Level::Empty { size: 2 }.validate().is_err());
        assert!(Level::LavaCrossing { size: 8, num_crossings: 1 }.validate().is_err());
        for level in Level::presets() {
            assert!(level.validate().is_ok(), "{}", level.name());
        }
    }

    #[test]
    fn generation_is_deterministic_per_seed() {
        for level in Level::presets() {
            let a = level.generate(7);
            let b = level.generate(7);
            assert_eq!(a, b, "{}", level.name());
        }
    }
}
