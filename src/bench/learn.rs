//! `duet bench learn`: trains one student per seed for a frame budget and reports, per seed,
//! the frames it took to reach 0.9 success over the last 100 episodes, and the final success.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::metrics::{EPISODE_WINDOW, MetricsError, MetricsLog, UpdateRecord};
use crate::training::checkpoint::write_file_atomically;
use crate::training::{TeacherEvaluation, TeacherKind, Trainer, TrainerConfig, TrainingError};

/// Success rate over the last `EPISODE_WINDOW` episodes that counts as solved.
pub const SUCCESS_TARGET: f64 = 0.9;

/// What to run: `seeds` runs of `config` with seeds `config.seed`, `config.seed + 1`, ...
#[derive(Clone, Debug)]
pub struct LearnBenchConfig {
    pub config: TrainerConfig,
    /// Frames (over all envs) each seed trains for; runs stop at the first update past it.
    pub frames: u64,
    pub seeds: u64,
    /// Where each seed's `seed-S/metrics.jsonl` and the result `learn.json` go, if anywhere.
    pub out: Option<PathBuf>,
    /// Episodes the teacher plays alone (0: not measured).
    pub teacher_episodes: usize,
    /// Updates between refreshes of the teacher prompt's feedback (0: no feedback).
    pub feedback_every: u64,
}

/// One seed's run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SeedResult {
    pub seed: u64,
    /// Frames when the success rate over a full window of `EPISODE_WINDOW` episodes first
    /// reached `SUCCESS_TARGET`; None when it never did within the budget.
    pub frames_to_target: Option<u64>,
    /// Success rate over the last `EPISODE_WINDOW` episodes when the budget ran out.
    pub final_success: Option<f64>,
    pub final_return: Option<f64>,
    pub frames: u64,
    pub updates: u64,
    pub episodes: u64,
    pub seconds: f64,
    /// An LLM teacher's advice computed by its model (its calls), in all and by the time the
    /// target was reached; None for teachers without a model.
    pub teacher_calls: Option<u64>,
    pub teacher_calls_to_target: Option<u64>,
    /// Fraction of the teacher's lookups its cache answered.
    pub teacher_cache_hit_rate: Option<f64>,
}

/// The whole benchmark, printed as one JSON object.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LearnBenchResult {
    pub bench: &'static str,
    pub level: String,
    pub teacher: String,
    pub encoder: String,
    /// Envs stepped in parallel: frames count every env's steps.
    pub num_envs: usize,
    pub frames_budget: u64,
    pub target: f64,
    pub window: usize,
    pub runs: Vec<SeedResult>,
    /// Seeds that reached the target.
    pub solved: usize,
    /// Median over seeds of `frames_to_target`, a seed that never got there counting as
    /// infinitely many; None when the median is such a seed.
    pub median_frames_to_target: Option<f64>,
    pub median_final_success: Option<f64>,
    /// The teacher acting alone (when asked for).
    pub teacher_alone: Option<TeacherEvaluation>,
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum LearnBenchError {
    #[error(transparent)]
    Training(#[from] TrainingError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("serialising the result: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The median of `values` where None sorts above every number; None when the median
/// element (or one of the two middle ones) is None or `values` is empty.
pub fn median_frames(values: &[Option<u64>]) -> Option<f64> {
    let mut sorted: Vec<Option<u64>> = values.to_vec();
    // None last: a seed that never reached the target took "more" frames than any that did.
    sorted.sort_by_key(|v| v.map_or((1, 0), |f| (0, f)));
    median_of_sorted(&sorted.iter().map(|v| v.map(|f| f as f64)).collect::<Vec<_>>())
}

/// The median of finite values (None entries are skipped); None when there are none.
pub fn median_values(values: &[Option<f64>]) -> Option<f64> {
    let mut present: Vec<f64> = values.iter().flatten().copied().collect();
    present.sort_by(f64::total_cmp);
    median_of_sorted(&present.into_iter().map(Some).collect::<Vec<_>>())
}

fn median_of_sorted(sorted: &[Option<f64>]) -> Option<f64> {
    let count = sorted.len();
    if count == 0 {
        return None;
    }
    if count % 2 == 1 {
        return sorted[count / 2];
    }
    Some((sorted[count / 2 - 1]? + sorted[count / 2]?) / 2.0)
}

/// Trains one seed for the budget; `on_update` sees every record (progress output).
fn run_seed(
    mut config: TrainerConfig,
    seed: u64,
    frames: u64,
    feedback_every: u64,
    log_dir: Option<&Path>,
    on_update: &mut dyn FnMut(u64, &UpdateRecord),
) -> Result<SeedResult, LearnBenchError> {
    config.seed = seed;
    let mut log = match log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|error| LearnBenchError::Io { path: dir.to_owned(), error })?;
            Some(MetricsLog::create(dir.join("metrics.jsonl"))?)
        }
        None => None,
    };
    let started = Instant::now();
    let mut trainer = Trainer::new(config)?;
    trainer.set_feedback_every(feedback_every);
    trainer.start_clock();
    let mut frames_to_target = None;
    let mut teacher_calls_to_target = None;
    let mut last = UpdateRecord::default();
    while trainer.frames() < frames {
        last = trainer.train_one_update()?;
        if let Some(log) = log.as_mut() {
            log.append(&last)?;
        }
        on_update(seed, &last);
        let window_full = trainer.recent_episodes().len() >= EPISODE_WINDOW;
        if frames_to_target.is_none() && window_full && last.success_rate.is_some_and(|s| s >= SUCCESS_TARGET) {
            frames_to_target = Some(last.frames);
            teacher_calls_to_target = trainer.teacher().client_stats().map(|stats| stats.computed);
        }
    }
    let stats = trainer.teacher().client_stats();
    if let Some(dir) = log_dir {
        // What the student last told the teacher (`bench teacher --feedback` replays it).
        let path = dir.join("feedback.txt");
        write_file_atomically(&path, trainer.feedback_sent().as_bytes())
            .map_err(|error| LearnBenchError::Io { path, error })?;
    }
    Ok(SeedResult {
        seed,
        frames_to_target,
        final_success: last.success_rate,
        final_return: last.return_mean,
        frames: trainer.frames(),
        updates: trainer.updates(),
        episodes: trainer.episodes(),
        seconds: started.elapsed().as_secs_f64(),
        teacher_calls: stats.as_ref().map(|stats| stats.computed),
        teacher_calls_to_target,
        teacher_cache_hit_rate: stats.as_ref().map(|stats| stats.cache_hit_rate()),
    })
}

/// Runs every seed in turn (sequentially: frame counts, not wall time, are the measure).
pub fn learn(
    bench: &LearnBenchConfig,
    on_update: &mut dyn FnMut(u64, &UpdateRecord),
) -> Result<LearnBenchResult, LearnBenchError> {
    let mut runs = Vec::new();
    for offset in 0..bench.seeds {
        let seed = bench.config.seed.wrapping_add(offset);
        let log_dir = bench.out.as_ref().map(|out| out.join(format!("seed-{seed}")));
        runs.push(run_seed(
            bench.config.clone(),
            seed,
            bench.frames,
            bench.feedback_every,
            log_dir.as_deref(),
            on_update,
        )?);
    }
    let teacher_alone = if bench.teacher_episodes > 0 && bench.config.teacher != TeacherKind::None {
        let trainer = Trainer::new(bench.config.clone())?;
        Some(trainer.evaluate_teacher(bench.teacher_episodes, bench.config.seed)?)
    } else {
        None
    };
    let result = LearnBenchResult {
        bench: "learn",
        level: bench.config.env.name(),
        teacher: bench.config.teacher.name().to_owned(),
        encoder: format!("{:?}", bench.config.student.encoder),
        num_envs: bench.config.num_envs,
        frames_budget: bench.frames,
        target: SUCCESS_TARGET,
        window: EPISODE_WINDOW,
        solved: runs.iter().filter(|r| r.frames_to_target.is_some()).count(),
        median_frames_to_target: median_frames(&runs.iter().map(|r| r.frames_to_target).collect::<Vec<_>>()),
        median_final_success: median_values(&runs.iter().map(|r| r.final_success).collect::<Vec<_>>()),
        runs,
        teacher_alone,
    };
    if let Some(out) = &bench.out {
        let path = out.join("learn.json");
        let text = serde_json::to_string_pretty(&result)?;
        write_file_atomically(&path, text.as_bytes()).map_err(|error| LearnBenchError::Io { path, error })?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Level;
    use crate::env::scene::{EncoderKind, StudentSpec};
    use crate::env::vec_env::EnvKind;
    use crate::env::vec_env::ObservationKind;

    #[test]
    fn medians_count_unsolved_seeds_as_slowest() {
        assert_eq!(median_frames(&[Some(30), None, Some(10)]), Some(30.0));
        assert_eq!(median_frames(&[None, Some(10), None]), None);
        assert_eq!(median_frames(&[Some(10), Some(20)]), Some(15.0));
        assert_eq!(median_frames(&[Some(10), None]), None);
        assert_eq!(median_frames(&[]), None);
        assert_eq!(median_values(&[Some(0.5), None, Some(0.25), Some(1.0)]), Some(0.5));
        assert_eq!(median_values(&[Some(0.5), Some(0.25)]), Some(0.375));
    }

    #[test]
    fn seeds_follow_the_base_seed_and_logs_match_the_result() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = TrainerConfig {
            env: EnvKind::Grid(Level::Empty { size: 5 }),
            num_envs: 4,
            max_steps: None,
            observation: ObservationKind::Egocentric,
            seed: 7,
            student: StudentSpec { encoder: EncoderKind::Mlp, frames_per_env: 32, minibatch: 64, ..Default::default() },
            teacher: TeacherKind::Oracle,
            teacher_settings: Default::default(),
        };
        let bench = LearnBenchConfig {
            config,
            frames: 1000,
            seeds: 2,
            out: Some(dir.path().to_owned()),
            teacher_episodes: 20,
            feedback_every: crate::training::FEEDBACK_EVERY_UPDATES,
        };
        let mut updates = 0;
        let result = learn(&bench, &mut |_, _| updates += 1).expect("bench");
        assert_eq!(result.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), vec![7, 8]);
        // 128 frames per update: the first update past 1000 frames is the 8th.
        assert!(result.runs.iter().all(|r| r.frames == 1024 && r.updates == 8), "{:?}", result.runs);
        assert_eq!(updates, 16);
        for run in &result.runs {
            let log =
                crate::metrics::read_log(dir.path().join(format!("seed-{}/metrics.jsonl", run.seed))).expect("log");
            assert_eq!(log.len(), 8);
            assert_eq!(log.last().and_then(|r| r.success_rate), run.final_success);
            // The reported frame is the first logged one with a full window at the target.
            let first = log.iter().find(|r| r.episodes >= 100 && r.success_rate.is_some_and(|s| s >= 0.9));
            assert_eq!(first.map(|r| r.frames), run.frames_to_target);
        }
        let teacher = result.teacher_alone.expect("teacher measured");
        // The oracle solves Empty-5x5 every time, always advising.
        assert_eq!((teacher.summary.episodes, teacher.summary.success_rate), (20, 1.0));
        assert_eq!(teacher.unadvised_fraction, 0.0);
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("learn.json")).expect("json"))
                .expect("parse");
        assert_eq!(written["runs"].as_array().map(Vec::len), Some(2));
        assert_eq!(written["teacher"], "oracle");
    }
}
