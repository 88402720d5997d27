//! duet: a local LLM teacher and an RL student that learn from each other, live.
//! Layers (dependencies point down): app -> training -> feedback -> teacher/student/skills -> env.

#[cfg(feature = "app")]
pub mod app;
pub mod bench;
pub mod cli;
pub mod env;
pub mod feedback;
pub mod metrics;
pub mod numerics;
pub mod skills;
pub mod student;
pub mod teacher;
pub mod training;
