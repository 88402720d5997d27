//! Skills: the teacher's vocabulary of high-level options and the planners that turn each
//! option into the primitive action to take now, plus a scripted oracle expert over them.
//!
//! Everything plans only over what the agent knows (`Knowledge`): a `FogOfWar` of the cells it
//! has seen, or `TrueState` for an all-seeing expert. Unknown cells are never walked through.

mod drop;
pub mod embodied;
mod explore;
mod known_map;
pub mod option;
pub mod oracle;
pub mod skill;
#[cfg(test)]
mod test_worlds;

use crate::env::grid::{FogOfWar, Pos};

pub use option::{Carryable, Item, OptionParseError, Target, TeacherOption, available_options};
pub use oracle::{OracleAdvice, oracle_advice, oracle_needs_true_state};
pub use skill::{SkillPlanner, SkillStep, skill_action};

/// What the planner may look at: cells the agent knows. The true grid is read only there.
pub trait Knowledge {
    /// Whether the agent knows what is at `p` (asked only for positions on the grid).
    fn knows(&self, p: Pos) -> bool;
}

impl Knowledge for FogOfWar {
    fn knows(&self, p: Pos) -> bool {
        self.is_seen(p)
    }
}

/// Knowledge of the whole true state: an oracle that sees everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrueState;

impl Knowledge for TrueState {
    fn knows(&self, _: Pos) -> bool {
        true
    }
}
