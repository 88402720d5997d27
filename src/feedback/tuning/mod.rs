//! Tuning the teacher's weights from the student's feedback: the teacher as a policy over
//! advice utterances on LoRA adapters, and the algorithms that train it (token-level PPO, CORY).

pub mod cory;
pub mod policy;
pub mod ppo;

pub use cory::{Cory, CoryQuery, CoryStats, CoryTurn, ROLE_EXCHANGE_PERIOD};
pub use policy::{OptionPolicy, OptionScores};
pub use ppo::{PpoSettings, PpoStats, Rollout, TokenPpo, generalized_advantages};

#[cfg(test)]
mod tests;
