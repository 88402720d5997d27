//! Training curves: one record per PPO update (episodes over a rolling window, losses,
//! teacher agreement and coverage, speed), appended to a JSONL file line by line.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::env::vec_env::EpisodeStats;

/// Episodes the rolling success rate, return and length average over (rl-starter-files logs
/// per update; 100 follows Gym's convention for "solved").
pub const EPISODE_WINDOW: usize = 100;

/// What one PPO update did and where training stands after it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpdateRecord {
    /// Updates done so far, this one included.
    pub update: u64,
    /// Env frames so far (over all envs).
    pub frames: u64,
    /// Envs stepped in parallel: `frames` counts every env's steps (0 in logs written
    /// before this field existed).
    #[serde(default)]
    pub num_envs: usize,
    /// Episodes finished so far.
    pub episodes: u64,
    /// Over the last `EPISODE_WINDOW` episodes; None before the first one ends.
    pub return_mean: Option<f64>,
    pub success_rate: Option<f64>,
    pub episode_length: Option<f64>,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub clip_fraction: f64,
    pub grad_norm: f64,
    /// KL(teacher ‖ student) over advised samples; None when none was advised.
    pub teacher_kl: Option<f64>,
    /// The distillation weight this update used.
    pub lambda: f64,
    /// Fraction of advised samples where the student's most likely action is one the teacher
    /// rates highest; None when none was advised.
    pub teacher_agreement: Option<f64>,
    /// Fraction of the rollout's samples that had advice.
    pub teacher_coverage: f64,
    /// Env frames per second of wall time since the previous update (acting and learning).
    pub fps: f64,
}

/// The last `EPISODE_WINDOW` finished episodes.
#[derive(Clone, Debug, Default)]
pub struct EpisodeWindow {
    episodes: VecDeque<EpisodeStats>,
}

impl EpisodeWindow {
    pub fn push(&mut self, episode: EpisodeStats) {
        if self.episodes.len() == EPISODE_WINDOW {
            self.episodes.pop_front();
        }
        self.episodes.push_back(episode);
    }

    pub fn len(&self) -> usize {
        self.episodes.len()
    }

    /// Oldest first.
    pub fn episodes(&self) -> impl Iterator<Item = &EpisodeStats> {
        self.episodes.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.episodes.is_empty()
    }

    fn mean(&self, value: impl Fn(&EpisodeStats) -> f64) -> Option<f64> {
        (!self.episodes.is_empty()).then(|| self.episodes.iter().map(value).sum::<f64>() / self.episodes.len() as f64)
    }

    pub fn success_rate(&self) -> Option<f64> {
        self.mean(|e| if e.success { 1.0 } else { 0.0 })
    }

    pub fn return_mean(&self) -> Option<f64> {
        self.mean(|e| f64::from(e.episode_return))
    }

    pub fn length_mean(&self) -> Option<f64> {
        self.mean(|e| f64::from(e.length))
    }
}

/// Why metrics could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("serialising a record: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// A JSONL file of `UpdateRecord`s. Each record is one `write` of a whole line, then a flush,
/// so a reader (or a crash) sees only whole lines.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Starts a new log at `path` (truncating an old one).
    pub fn create(path: impl AsRef<Path>) -> Result<MetricsLog, MetricsError> {
        let path = path.as_ref().to_owned();
        let file = File::create(&path).map_err(|error| MetricsError::Io { path: path.clone(), error })?;
        Ok(MetricsLog { path, file })
    }

    /// Continues the log at `path` (creating it when missing).
    pub fn append_to(path: impl AsRef<Path>) -> Result<MetricsLog, MetricsError> {
        let path = path.as_ref().to_owned();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|error| MetricsError::Io { path: path.clone(), error })?;
        Ok(MetricsLog { path, file })
    }

    pub fn append(&mut self, record: &UpdateRecord) -> Result<(), MetricsError> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        let io_error = |error| MetricsError::Io { path: self.path.clone(), error };
        self.file.write_all(line.as_bytes()).map_err(io_error)?;
        self.file.flush().map_err(|error| MetricsError::Io { path: self.path.clone(), error })
    }
}

/// Reads back a JSONL log (for tests and tools); blank lines are skipped.
pub fn read_log(path: impl AsRef<Path>) -> Result<Vec<UpdateRecord>, MetricsError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|error| MetricsError::Io { path: path.to_owned(), error })?;
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).map_err(MetricsError::from)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(success: bool, length: u32) -> EpisodeStats {
        EpisodeStats { env: 0, episode_return: if success { 1.0 } else { 0.0 }, length, success, truncated: !success }
    }

    #[test]
    fn window_keeps_the_last_hundred() {
        let mut window = EpisodeWindow::default();
        assert_eq!(window.success_rate(), None);
        for _ in 0..EPISODE_WINDOW {
            window.push(episode(false, 10));
        }
        for _ in 0..50 {
            window.push(episode(true, 20));
        }
        assert_eq!(window.len(), EPISODE_WINDOW);
        assert_eq!(window.success_rate(), Some(0.5));
        assert_eq!(window.return_mean(), Some(0.5));
        assert_eq!(window.length_mean(), Some(15.0));
    }

    #[test]
    fn log_round_trips_whole_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::create(&path).expect("create");
        let first = UpdateRecord { update: 1, frames: 2048, success_rate: Some(0.25), ..UpdateRecord::default() };
        log.append(&first).expect("append");
        drop(log);
        let second = UpdateRecord { update: 2, teacher_kl: Some(0.5), ..UpdateRecord::default() };
        MetricsLog::append_to(&path).and_then(|mut log| log.append(&second)).expect("append");
        assert_eq!(read_log(&path).expect("read"), vec![first, second]);
        // Lines written before `num_envs` existed still read (as 0).
        let old = r#"{"update":3,"frames":6144,"episodes":1,"return_mean":null,"success_rate":null,"episode_length":null,"policy_loss":0.0,"value_loss":0.0,"entropy":0.0,"approx_kl":0.0,"clip_fraction":0.0,"grad_norm":0.0,"teacher_kl":null,"lambda":1.0,"teacher_agreement":null,"teacher_coverage":0.0,"fps":0.0}"#;
        let record: UpdateRecord = serde_json::from_str(old).expect("an old line");
        assert_eq!((record.update, record.num_envs), (3, 0));
    }
}
