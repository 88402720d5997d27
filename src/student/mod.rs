//! The PPO student: a candle-nn actor-critic (MiniGrid CNN or MLP), PPO with a masked
//! teacher-KL term, the rollout buffer, and the teacher policies the student distils from.

pub mod buffer;
pub mod encoding;
pub mod fused;
pub mod model;
pub mod optimizer;
pub mod ppo;
pub mod schedule;
pub mod teacher;

pub use buffer::RolloutBuffer;
pub use encoding::ObservationLayout;
pub use model::ActorCritic;
pub use ppo::{RngState, Student, StudentState, StudentStep, UpdateStats};
pub use schedule::distill_lambda;
pub use teacher::{ActionDistribution, NoTeacher, OracleTeacher, TeacherPolicy};

use crate::env::grid::Action;

/// Actions the student chooses among (MiniGrid's seven).
pub const NUM_ACTIONS: usize = Action::COUNT;

/// Why the student could not be built or trained.
#[derive(Debug, thiserror::Error)]
pub enum StudentError {
    /// A tensor operation failed (shapes, dtypes): a bug rather than bad input.
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The configuration cannot work with this environment.
    #[error("{0}")]
    Config(String),
}
