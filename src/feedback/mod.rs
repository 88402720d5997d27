//! Feedback in the prompt: what the student's following of the teacher's advice led to,
//! counted per (abstract state, option) and told back to the teacher in plain words.

pub mod recorder;
pub mod state;
pub mod tuning;

pub use recorder::{FeedbackRecorder, OutcomeCounts, SegmentRecord};
pub use state::{AbstractState, DoorKnowledge, FrontKind};
