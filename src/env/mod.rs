//! Pure simulation, no Bevy and no candle: gridworlds (`grid`), scene files, batched stepping
//! and the text descriptions the teacher reads.

pub mod grid;
pub mod scene;
pub mod conformance;
pub mod vec_env;
pub mod text;
