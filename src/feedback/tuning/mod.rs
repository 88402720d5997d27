//! Tuning the teacher's weights from the student's feedback: the teacher as a policy over
//! advice utterances on LoRA adapters, and the algorithms that train it (token-level PPO, CORY, ArCHer).

pub mod archer;
pub mod cory;
pub mod gradients;
pub mod policy;
pub mod ppo;
pub mod run;
pub mod setup;
pub mod task;

pub use archer::{Archer, ArcherSettings, ArcherStats, Transition, advantage, q_targets};
pub use cory::{Cory, CoryQuery, CoryStats, CoryTurn, ROLE_EXCHANGE_PERIOD};
pub use gradients::GradientSum;
pub use policy::{OptionPolicy, OptionScores};
pub use ppo::{PpoSettings, PpoStats, Rollout, Sampled, TokenPpo, generalized_advantages};
pub use run::{Algorithm, TuneConfig, TuneError, TuneRecord, TuneRun};
pub use setup::{AdapterSaves, TUNING_PROMPT, TuningTeacher, save_adapters};
pub use task::{AdviceJudge, DEFAULT_OPTION_STEPS, Followed, Judgement};

#[cfg(test)]
mod tests;
