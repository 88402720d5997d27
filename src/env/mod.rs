//! Pure simulation, no Bevy and no candle: gridworlds (`grid`), scene files, batched stepping
//! and the text descriptions the teacher reads.

pub mod conformance;
pub mod embodied;
pub mod grid;
pub mod scene;
pub mod text;
pub mod vec_env;
