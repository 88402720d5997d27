//! Checkpoints: the student's weights and Adam moments in safetensors, beside a RON record
//! (format version, progress, generator state, recent episodes) that commits the pair.
//!
//! Each save writes `student-<update>.safetensors` then `checkpoint.ron`, both temp + rename,
//! so a crash leaves the previous checkpoint whole. A resumed run continues exactly: the
//! student (weights, optimizer, generator, frame count, λ and a λ set by hand) is restored, and the envs are
//! rebuilt from the run's seed and stepped through every action the run took (saved in the
//! safetensors as `trainer.actions`, one byte per frame), which puts worlds, level generators,
//! episode counters and the oracle's fog back where they were.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{TeacherKind, TeacherLoading, Trainer, TrainerConfig, TrainingError};
use crate::env::scene::EncoderKind;
use crate::env::vec_env::EpisodeStats;
use crate::metrics::EpisodeWindow;
use crate::student::{RngState, StudentError, StudentState};

/// Bumped whenever the checkpoint's contents change meaning.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 2;
/// The tensor holding the run's action history.
const ACTIONS_TENSOR: &str = "trainer.actions";
/// The record's file name inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.ron";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Training(#[from] TrainingError),
    #[error(transparent)]
    Student(#[from] StudentError),
}

/// One finished episode, as the rolling metrics need it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct SavedEpisode {
    episode_return: f32,
    length: u32,
    success: bool,
    truncated: bool,
}

/// What `checkpoint.ron` holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename = "Checkpoint", deny_unknown_fields)]
struct CheckpointRecord {
    format_version: u32,
    /// The safetensors file beside this record.
    tensors: String,
    seed: u64,
    teacher: TeacherKind,
    encoder: EncoderKind,
    frames: u64,
    updates: u64,
    episodes: u64,
    adam_steps: u64,
    rng: RngState,
    recent_episodes: Vec<SavedEpisode>,
    /// The distillation weight set by hand (the app's λ override) in place of the schedule's;
    /// records from before it was saved have none.
    #[serde(default)]
    lambda_override: Option<f64>,
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers never see a half-written file.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = temporary_path(path);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or("file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp"))
}

fn io_error(path: &Path) -> impl Fn(io::Error) -> CheckpointError + '_ {
    move |error| CheckpointError::Io { path: path.to_owned(), error }
}

/// Where a checkpointed run stands, read without building anything.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckpointSummary {
    pub seed: u64,
    pub teacher: TeacherKind,
    pub frames: u64,
    pub updates: u64,
}

/// Reads `dir`'s checkpoint record.
pub fn read_checkpoint_summary(dir: &Path) -> Result<CheckpointSummary, CheckpointError> {
    let record = read_record(dir)?;
    Ok(CheckpointSummary { seed: record.seed, teacher: record.teacher, frames: record.frames, updates: record.updates })
}

fn read_record(dir: &Path) -> Result<CheckpointRecord, CheckpointError> {
    let record_path = dir.join(CHECKPOINT_FILE);
    let invalid = |message: String| CheckpointError::Invalid { path: record_path.clone(), message };
    let text = std::fs::read_to_string(&record_path).map_err(io_error(&record_path))?;
    let record: CheckpointRecord = ron::from_str(&text).map_err(|err| invalid(err.to_string()))?;
    if record.format_version != CHECKPOINT_FORMAT_VERSION {
        return Err(invalid(format!(
            "checkpoint format {} (this build reads {CHECKPOINT_FORMAT_VERSION})",
            record.format_version
        )));
    }
    Ok(record)
}

/// Whether `dir` holds a checkpoint.
pub fn has_checkpoint(dir: &Path) -> bool {
    dir.join(CHECKPOINT_FILE).is_file()
}

impl Trainer {
    /// Saves the student and the run's progress into `dir` (between updates only: a
    /// half-filled rollout is not saved). Returns the record's path.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf, CheckpointError> {
        if !self.rollout.is_empty() {
            return Err(TrainingError::Config("checkpoints are taken between updates".into()).into());
        }
        let mut state = self.student.state();
        if !self.action_history.is_empty() {
            let history = &self.action_history;
            let actions = candle_core::Tensor::from_slice(history, history.len(), &candle_core::Device::Cpu)
                .map_err(StudentError::from)?;
            state.tensors.insert(ACTIONS_TENSOR.to_owned(), actions);
        }
        let tensors_name = format!("student-{:06}.safetensors", self.updates);
        let tensors_path = dir.join(&tensors_name);
        let temporary = temporary_path(&tensors_path);
        candle_core::safetensors::save(&state.tensors, &temporary).map_err(StudentError::from)?;
        std::fs::rename(&temporary, &tensors_path).map_err(io_error(&tensors_path))?;
        let record = CheckpointRecord {
            format_version: CHECKPOINT_FORMAT_VERSION,
            tensors: tensors_name.clone(),
            seed: self.config.seed,
            teacher: self.config.teacher,
            encoder: self.config.student.encoder,
            frames: self.frames,
            updates: self.updates,
            episodes: self.episodes,
            adam_steps: state.adam_steps,
            rng: state.rng,
            recent_episodes: self
                .window
                .episodes()
                .map(|e| SavedEpisode {
                    episode_return: e.episode_return,
                    length: e.length,
                    success: e.success,
                    truncated: e.truncated,
                })
                .collect(),
            lambda_override: self.lambda_override,
        };
        let record_path = dir.join(CHECKPOINT_FILE);
        let text = ron::ser::to_string_pretty(&record, ron::ser::PrettyConfig::new().struct_names(true))
            .map_err(|err| CheckpointError::Invalid { path: record_path.clone(), message: err.to_string() })?;
        write_file_atomically(&record_path, text.as_bytes()).map_err(io_error(&record_path))?;
        // Older tensor files are no longer referenced; failing to remove one costs only disk.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("student-") && name.ends_with(".safetensors") && name != tensors_name {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(record_path)
    }

    /// A trainer that continues the run checkpointed in `dir`. `config` must describe the same
    /// run (seed, teacher and encoder are checked; the network's shapes are checked on load).
    /// An LLM teacher's model is loaded first (`TeacherLoading::Wait`).
    pub fn resume(config: TrainerConfig, dir: &Path) -> Result<Trainer, CheckpointError> {
        Trainer::resume_with_teacher_loading(config, dir, TeacherLoading::Wait)
    }

    /// `resume`, with an LLM teacher loading as `loading` says.
    pub fn resume_with_teacher_loading(
        config: TrainerConfig,
        dir: &Path,
        loading: TeacherLoading,
    ) -> Result<Trainer, CheckpointError> {
        Trainer::resume_checked(config, dir, loading, true)
    }

    /// The run checkpointed in `dir` continued by its student alone, whatever teacher it had:
    /// the same envs and student, only without advice from here on (the race view's second
    /// run after a Load). `config.teacher` is ignored; seed and encoder are checked.
    pub fn resume_without_teacher(mut config: TrainerConfig, dir: &Path) -> Result<Trainer, CheckpointError> {
        config.teacher = TeacherKind::None;
        Trainer::resume_checked(config, dir, TeacherLoading::Background, false)
    }

    /// `resume_with_teacher_loading`; `same_teacher` checks the checkpoint's teacher too.
    fn resume_checked(
        config: TrainerConfig,
        dir: &Path,
        loading: TeacherLoading,
        same_teacher: bool,
    ) -> Result<Trainer, CheckpointError> {
        let record_path = dir.join(CHECKPOINT_FILE);
        let invalid = |message: String| CheckpointError::Invalid { path: record_path.clone(), message };
        let record = read_record(dir)?;
        let teacher = if same_teacher { record.teacher } else { config.teacher };
        if (record.seed, teacher, record.encoder) != (config.seed, config.teacher, config.student.encoder) {
            return Err(invalid(format!(
                "checkpoint of seed {} teacher {} encoder {:?}, asked to resume seed {} teacher {} encoder {:?}",
                record.seed,
                record.teacher.name(),
                record.encoder,
                config.seed,
                config.teacher.name(),
                config.student.encoder
            )));
        }
        if record.tensors.contains(['/', '\\']) || record.tensors.starts_with('.') {
            return Err(invalid(format!(
                "tensors file {:?} must be a plain name in the run directory",
                record.tensors
            )));
        }
        let tensors_path = dir.join(&record.tensors);
        let tensors = candle_core::safetensors::load(&tensors_path, &candle_core::Device::Cpu)
            .map_err(|err| CheckpointError::Invalid { path: tensors_path.clone(), message: err.to_string() })?;
        let actions: Vec<u8> = match tensors.get(ACTIONS_TENSOR) {
            Some(tensor) => tensor
                .to_vec1()
                .map_err(|err| CheckpointError::Invalid { path: tensors_path.clone(), message: err.to_string() })?,
            None => Vec::new(),
        };
        if actions.len() as u64 != record.frames {
            return Err(CheckpointError::Invalid {
                path: tensors_path,
                message: format!("{} saved actions for {} frames", actions.len(), record.frames),
            });
        }
        let mut trainer = Trainer::with_teacher_loading(config, loading)?;
        trainer.replay_actions(&actions)?;
        trainer.student.restore(&StudentState { tensors, adam_steps: record.adam_steps, rng: record.rng })?;
        trainer.frames = record.frames;
        trainer.updates = record.updates;
        trainer.episodes = record.episodes;
        trainer.set_lambda_override(record.lambda_override);
        trainer.window = EpisodeWindow::default();
        for e in record.recent_episodes {
            trainer.window.push(EpisodeStats {
                env: 0,
                episode_return: e.episode_return,
                length: e.length,
                success: e.success,
                truncated: e.truncated,
            });
        }
        Ok(trainer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Level;
    use crate::env::scene::StudentSpec;
    use crate::env::vec_env::{EnvKind, ObservationKind};

    fn config() -> TrainerConfig {
        TrainerConfig {
            env: EnvKind::Grid(Level::Empty { size: 5 }),
            num_envs: 2,
            max_steps: None,
            observation: ObservationKind::Egocentric,
            seed: 4,
            student: StudentSpec { frames_per_env: 8, minibatch: 8, ..StudentSpec::default() },
            teacher: TeacherKind::Oracle,
            teacher_settings: Default::default(),
        }
    }

    fn parameters(trainer: &Trainer) -> Vec<Vec<f32>> {
        let state = trainer.student().state();
        let mut names: Vec<&String> = state.tensors.keys().collect();
        names.sort();
        names.into_iter().map(|n| state.tensors[n].flatten_all().and_then(|t| t.to_vec1()).expect("values")).collect()
    }

    #[test]
    fn resume_restores_the_student_exactly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut trainer = Trainer::new(config()).expect("trainer");
        trainer.train_one_update().expect("update");
        trainer.train_one_update().expect("update");
        trainer.save_checkpoint(dir.path()).expect("save");
        trainer.train_one_update().expect("update");
        trainer.save_checkpoint(dir.path()).expect("save again");
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into())
            .collect();
        assert_eq!(files.len(), 2, "one record and the newest tensors only: {files:?}");

        let resumed = Trainer::resume(config(), dir.path()).expect("resume");
        assert_eq!((resumed.frames(), resumed.updates()), (trainer.frames(), trainer.updates()));
        assert_eq!(parameters(&resumed), parameters(&trainer));
        assert_eq!(resumed.student().state().rng, trainer.student().state().rng);
        assert_eq!(resumed.window.success_rate(), trainer.window.success_rate());

        let mut other = config();
        other.seed = 5;
        assert!(matches!(Trainer::resume(other, dir.path()), Err(CheckpointError::Invalid { .. })));
        let record = dir.path().join(CHECKPOINT_FILE);
        let text = std::fs::read_to_string(&record).expect("record");
        std::fs::write(&record, text.replace("format_version: 2", "format_version: 99")).expect("write");
        let error = Trainer::resume(config(), dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("checkpoint format 99"), "{error}");
    }

    /// Records without the wall-clock speed, the one thing that may differ between runs.
    fn timeless(mut record: crate::metrics::UpdateRecord) -> crate::metrics::UpdateRecord {
        record.fps = 0.0;
        record
    }

    #[test]
    fn resume_continues_exactly() {
        for teacher in [TeacherKind::None, TeacherKind::Oracle] {
            let config = TrainerConfig {
                env: EnvKind::Grid(Level::DoorKey { size: 5 }),
                num_envs: 3,
                // Short episodes, so that several end (and their envs draw new levels) on both
                // sides of the checkpoint.
                max_steps: Some(7),
                teacher,
                ..config()
            };
            let mut straight = Trainer::new(config.clone()).expect("trainer");
            let expected: Vec<_> = (0..6).map(|_| straight.train_one_update().map(timeless).expect("update")).collect();

            let dir = tempfile::tempdir().expect("temp dir");
            let mut first = Trainer::new(config.clone()).expect("trainer");
            let mut records: Vec<_> = (0..3).map(|_| first.train_one_update().map(timeless).expect("update")).collect();
            first.save_checkpoint(dir.path()).expect("save");
            drop(first);
            let mut resumed = Trainer::resume(config, dir.path()).expect("resume");
            records.extend((0..3).map(|_| resumed.train_one_update().map(timeless).expect("update")));
            assert_eq!(records, expected, "{teacher:?}");
            assert!(records.iter().any(|r| r.episodes > 0), "episodes ended: {records:?}");
            assert_eq!(resumed.env().observations(), straight.env().observations(), "{teacher:?}");
            assert_eq!(resumed.action_history(), straight.action_history());
            assert_eq!(parameters(&resumed), parameters(&straight));
        }
    }

    #[test]
    fn resume_refuses_a_history_that_does_not_match_the_frames() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut trainer = Trainer::new(config()).expect("trainer");
        trainer.train_one_update().expect("update");
        trainer.save_checkpoint(dir.path()).expect("save");
        let record = dir.path().join(CHECKPOINT_FILE);
        let text = std::fs::read_to_string(&record).expect("record");
        std::fs::write(&record, text.replace("frames: 16,", "frames: 32,")).expect("write");
        let error = Trainer::resume(config(), dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("16 saved actions for 32 frames"), "{error}");
    }

    #[test]
    fn a_lambda_set_by_hand_is_saved_and_restored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut trainer = Trainer::new(config()).expect("trainer");
        trainer.set_lambda_override(Some(0.3));
        trainer.train_one_update().expect("update");
        trainer.save_checkpoint(dir.path()).expect("save");
        let resumed = Trainer::resume(config(), dir.path()).expect("resume");
        assert_eq!(resumed.lambda_override(), Some(0.3));
        assert_eq!(resumed.distill_lambda(), 0.3);
        // Without one, the schedule again.
        trainer.set_lambda_override(None);
        trainer.train_one_update().expect("update");
        trainer.save_checkpoint(dir.path()).expect("save");
        let resumed = Trainer::resume(config(), dir.path()).expect("resume");
        assert_eq!(resumed.lambda_override(), None);
        assert_eq!(resumed.distill_lambda(), trainer.distill_lambda());
        // A record written before the field existed loads, with no override.
        let record = dir.path().join(CHECKPOINT_FILE);
        let text = std::fs::read_to_string(&record).expect("record");
        assert!(text.contains("lambda_override: None"), "{text}");
        let older: String =
            text.lines().filter(|line| !line.contains("lambda_override")).collect::<Vec<_>>().join("\n");
        std::fs::write(&record, older).expect("write");
        let resumed = Trainer::resume(config(), dir.path()).expect("an older record");
        assert_eq!(resumed.lambda_override(), None);
    }

    #[test]
    fn a_run_resumes_without_its_teacher() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut trainer = Trainer::new(config()).expect("trainer");
        trainer.train_one_update().expect("update");
        trainer.save_checkpoint(dir.path()).expect("save");
        let alone = Trainer::resume_without_teacher(config(), dir.path()).expect("resume without the oracle");
        assert_eq!(alone.config().teacher, TeacherKind::None);
        assert!(alone.advice().iter().all(Option::is_none));
        assert_eq!((alone.frames(), alone.updates()), (trainer.frames(), trainer.updates()));
        assert_eq!(alone.env().observations(), trainer.env().observations());
        assert_eq!(parameters(&alone), parameters(&trainer));
        let mut other = config();
        other.seed = 5;
        assert!(matches!(Trainer::resume_without_teacher(other, dir.path()), Err(CheckpointError::Invalid { .. })));
    }

    #[test]
    fn checkpoints_only_between_updates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut trainer = Trainer::new(config()).expect("trainer");
        trainer.step().expect("step");
        assert!(trainer.save_checkpoint(dir.path()).is_err());
        assert!(!has_checkpoint(dir.path()));
    }
}
