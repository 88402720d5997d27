//! `AbstractState`: a small, coarse key of a grid state as the agent knows it, so that
//! outcomes of advice can be counted per kind of situation and told back in plain English.

use std::fmt;

use crate::env::grid::{Cell, DoorState, GridWorld, Pos};
use crate::skills::{Item, Knowledge};

/// The state of the door that matters most, among those the agent has seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DoorKnowledge {
    /// No door seen this episode.
    Unseen,
    Open,
    Closed,
    Locked,
}

/// What stands in the cell the agent faces, as coarse as a small model needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontKind {
    Nothing,
    Wall,
    Door,
    Key,
    Ball,
    Box,
    Goal,
    Lava,
}

impl FrontKind {
    fn of_cell(cell: Cell) -> FrontKind {
        match cell {
            Cell::Empty | Cell::Floor(_) => FrontKind::Nothing,
            Cell::Wall(_) => FrontKind::Wall,
            Cell::Door { .. } => FrontKind::Door,
            Cell::Key(_) => FrontKind::Key,
            Cell::Ball(_) => FrontKind::Ball,
            Cell::Box { .. } => FrontKind::Box,
            Cell::Goal => FrontKind::Goal,
            Cell::Lava => FrontKind::Lava,
        }
    }

    /// "nothing", "a wall", "a door", ...
    pub fn phrase(self) -> &'static str {
        match self {
            FrontKind::Nothing => "nothing",
            FrontKind::Wall => "a wall",
            FrontKind::Door => "a door",
            FrontKind::Key => "a key",
            FrontKind::Ball => "a ball",
            FrontKind::Box => "a box",
            FrontKind::Goal => "the goal",
            FrontKind::Lava => "lava",
        }
    }
}

/// A coarse key of what the agent knows: what it holds, the relevant door, whether a key and
/// the goal have been seen, and what it faces. Ordered, so that rendering is deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbstractState {
    pub door: DoorKnowledge,
    pub held: Option<Item>,
    /// A key lies somewhere the agent has seen (a held key does not count).
    pub key_seen: bool,
    pub goal_seen: bool,
    pub front: FrontKind,
}

impl AbstractState {
    /// The key of `world` as the agent knows it through `known` (a `FogOfWar`). The relevant door is the most
    /// restrictive one seen (locked over closed over open), because that is the one that bars
    /// the way; levels with several doors are folded into it on purpose, to keep counts dense.
    pub fn of(world: &GridWorld, known: &impl Knowledge) -> AbstractState {
        let mut door = DoorKnowledge::Unseen;
        let mut key_seen = false;
        let mut goal_seen = false;
        for y in 0..world.height() as i32 {
            for x in 0..world.width() as i32 {
                let p = Pos { x, y };
                if !known.knows(p) {
                    continue;
                }
                match world.get(p) {
                    Cell::Door { state, .. } => {
                        let known = match state {
                            DoorState::Open => DoorKnowledge::Open,
                            DoorState::Closed => DoorKnowledge::Closed,
                            DoorState::Locked => DoorKnowledge::Locked,
                        };
                        door = door.max(known);
                    }
                    Cell::Key(_) => key_seen = true,
                    Cell::Goal => goal_seen = true,
                    _ => {}
                }
            }
        }
        let front_pos = world.front_pos();
        let front = if world.in_bounds(front_pos) { FrontKind::of_cell(world.get(front_pos)) } else { FrontKind::Wall };
        AbstractState { door, held: Item::of_cell(world.carrying), key_seen, goal_seen, front }
    }
}

impl fmt::Display for AbstractState {
    /// "the door was locked, nothing was held, a key was seen, the goal was not seen and a
    /// wall was in front": past tense, since feedback reports what happened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.door {
            DoorKnowledge::Unseen => f.write_str("no door was seen")?,
            DoorKnowledge::Open => f.write_str("the door was open")?,
            DoorKnowledge::Closed => f.write_str("the door was closed")?,
            DoorKnowledge::Locked => f.write_str("the door was locked")?,
        }
        match self.held {
            Some(item) => write!(f, ", the {item} was held")?,
            None => f.write_str(", nothing was held")?,
        }
        f.write_str(if self.key_seen { ", a key was seen" } else { ", no key was seen" })?;
        f.write_str(if self.goal_seen { ", the goal was seen" } else { ", the goal was not seen" })?;
        write!(f, " and {} was in front", self.front.phrase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Color;
    use crate::skills::{Carryable, TrueState};

    /// Knows exactly the listed cells.
    struct Cells(Vec<Pos>);

    impl Knowledge for Cells {
        fn knows(&self, p: Pos) -> bool {
            self.0.contains(&p)
        }
    }

    /// An empty walled 6x5 room, the agent at (1,1) facing east.
    fn room() -> GridWorld {
        let mut world = GridWorld::new(6, 5);
        world.wall_rect(0, 0, 6, 5);
        world.agent_pos = Pos { x: 1, y: 1 };
        world.agent_dir = 0;
        world
    }

    #[test]
    fn empty_room_knows_nothing_but_what_is_in_front() {
        let world = room();
        let state = AbstractState::of(&world, &TrueState);
        assert_eq!(
            state,
            AbstractState {
                door: DoorKnowledge::Unseen,
                held: None,
                key_seen: false,
                goal_seen: false,
                front: FrontKind::Nothing
            }
        );
        assert_eq!(
            state.to_string(),
            "no door was seen, nothing was held, no key was seen, the goal was not seen and nothing was in front"
        );
    }

    #[test]
    fn locked_door_beats_open_one_and_held_key_is_not_seen_key() {
        let mut world = room();
        world.set(Pos { x: 2, y: 1 }, Cell::Door { color: Color::Yellow, state: DoorState::Locked });
        world.set(Pos { x: 4, y: 3 }, Cell::Door { color: Color::Blue, state: DoorState::Open });
        world.set(Pos { x: 4, y: 1 }, Cell::Goal);
        world.carrying = Cell::Key(Color::Yellow);
        let state = AbstractState::of(&world, &TrueState);
        assert_eq!(state.door, DoorKnowledge::Locked);
        assert_eq!(state.held, Some(Item::new(Carryable::Key, Color::Yellow)));
        assert!(!state.key_seen);
        assert!(state.goal_seen);
        assert_eq!(state.front, FrontKind::Door);
        assert_eq!(
            state.to_string(),
            "the door was locked, the yellow key was held, no key was seen, the goal was seen and a door was in front"
        );
    }

    #[test]
    fn unseen_cells_are_not_known() {
        let mut world = room();
        world.set(Pos { x: 3, y: 3 }, Cell::Key(Color::Yellow));
        world.set(Pos { x: 4, y: 3 }, Cell::Door { color: Color::Yellow, state: DoorState::Closed });
        let mut known = Cells(vec![Pos { x: 3, y: 3 }]);
        let state = AbstractState::of(&world, &known);
        assert!(state.key_seen);
        assert_eq!(state.door, DoorKnowledge::Unseen);
        known.0.push(Pos { x: 4, y: 3 });
        assert_eq!(AbstractState::of(&world, &known).door, DoorKnowledge::Closed);
    }
}
