//! `duet bench train`: training throughput of the student, env frames per second with the
//! PPO updates included, split into acting (student forward + env step) and learning time.

use std::time::Instant;

use crate::training::{Trainer, TrainerConfig, TrainingError};

/// What `bench train` measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainBenchResult {
    pub bench: &'static str,
    pub implementation: &'static str,
    pub level: String,
    pub encoder: String,
    pub num_envs: usize,
    pub frames: u64,
    pub updates: u64,
    pub seconds: f64,
    /// Frames over all the wall time: acting and learning.
    pub frames_per_sec: f64,
    /// Student forward passes, env steps and teacher advice.
    pub acting_seconds: f64,
    /// PPO updates.
    pub update_seconds: f64,
    /// How the student's forward/backward ran: `fused` (hand-fused, the CNN and MLP) or
    /// `candle` (autograd; LLM4Teach's encoder).
    pub student_path: &'static str,
    /// Threads candle may use (RAYON_NUM_THREADS; the CLI sets 1 unless told otherwise);
    /// None when unset (one per core).
    pub threads: Option<usize>,
}

/// Trains a fresh student on `config` until at least `frames` frames (whole updates).
pub fn train_throughput(config: TrainerConfig, frames: u64) -> Result<TrainBenchResult, TrainingError> {
    let level = config.env.name();
    let encoder = format!("{:?}", config.student.encoder);
    let num_envs = config.num_envs;
    let mut trainer = Trainer::new(config)?;
    let (mut acting_seconds, mut update_seconds) = (0.0, 0.0);
    let started = Instant::now();
    while trainer.frames() < frames {
        let acting = Instant::now();
        while !trainer.step()? {}
        let learning = Instant::now();
        trainer.update()?;
        acting_seconds += learning.duration_since(acting).as_secs_f64();
        update_seconds += learning.elapsed().as_secs_f64();
    }
    let seconds = started.elapsed().as_secs_f64();
    let student_path = if trainer.student().is_fused() { "fused" } else { "candle" };
    Ok(TrainBenchResult {
        bench: "train",
        implementation: "duet",
        level,
        encoder,
        num_envs,
        frames: trainer.frames(),
        updates: trainer.updates(),
        seconds,
        frames_per_sec: trainer.frames() as f64 / seconds.max(1e-9),
        acting_seconds,
        update_seconds,
        student_path,
        threads: std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Level;
    use crate::env::scene::{EncoderKind, StudentSpec};
    use crate::env::vec_env::{EnvKind, ObservationKind};
    use crate::training::TeacherKind;

    #[test]
    fn counts_whole_updates_and_their_time() {
        let config = TrainerConfig {
            env: EnvKind::Grid(Level::Empty { size: 5 }),
            num_envs: 2,
            max_steps: None,
            observation: ObservationKind::Egocentric,
            seed: 3,
            student: StudentSpec { encoder: EncoderKind::Mlp, frames_per_env: 16, minibatch: 16, ..Default::default() },
            teacher: TeacherKind::None,
            teacher_settings: Default::default(),
        };
        let result = train_throughput(config, 33).expect("bench");
        // 32 frames per update: 33 frames take two updates.
        assert_eq!((result.frames, result.updates), (64, 2));
        assert!(result.acting_seconds > 0.0 && result.update_seconds > 0.0);
        assert!(result.acting_seconds + result.update_seconds <= result.seconds);
        assert_eq!(result.level, "Empty-5x5");
        assert_eq!(result.student_path, "fused");
    }
}
