//! `duet bench ...`: throughput benchmarks that print one JSON line each, so speed targets
//! live in measured numbers rather than in timed unit tests.

pub mod teacher;

pub mod learn;
pub mod train;

pub mod ui;

use std::time::Instant;

use crate::env::grid::Action;
use crate::env::grid::levels::LevelRng;
use crate::env::vec_env::{VecEnv, VecEnvConfig};

/// What `bench env` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvBenchResult {
    pub bench: &'static str,
    pub implementation: &'static str,
    pub level: String,
    pub num_envs: usize,
    pub steps: u64,
    pub seconds: f64,
    pub steps_per_sec: f64,
    pub threads: usize,
    pub episodes: u64,
}

/// Steps the batch with uniformly random actions (observation encoding and auto-reset
/// included) until at least `steps` env steps have been taken.
pub fn env_throughput(config: VecEnvConfig, steps: u64) -> EnvBenchResult {
    let mut env = VecEnv::new(config.clone());
    let n = env.num_envs();
    let mut rng = LevelRng::new(config.seed ^ 0xBE7C);
    let mut actions = vec![Action::Left; n];
    let mut episodes = 0u64;
    let start = Instant::now();
    while env.total_steps() < steps {
        for a in actions.iter_mut() {
            *a = Action::ALL[rng.rand_usize(0, Action::COUNT)];
        }
        env.step(&actions);
        episodes += env.drain_finished().len() as u64;
    }
    let seconds = start.elapsed().as_secs_f64();
    EnvBenchResult {
        bench: "env",
        implementation: "duet",
        level: config.env.name(),
        num_envs: n,
        steps: env.total_steps(),
        seconds,
        steps_per_sec: env.total_steps() as f64 / seconds.max(1e-9),
        threads: config.threads,
        episodes,
    }
}
