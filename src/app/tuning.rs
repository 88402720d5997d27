//! Tuning the teacher from the app: a background thread loads its own copy of the scene's model
//! and runs `TuneRun` (PPO, CORY or ArCHer) judged by a snapshot of the live student.
//!
//! The thread never touches Bevy: it sends what happens over a crossbeam channel that
//! `collect_tuning` drains each frame, and Stop sets an `AtomicBool` the run's record callback
//! reads (the iteration under way finishes first: an iteration takes minutes on the real model).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use super::control::{Control, Controls, RunFiles};
use super::simulation::{LiveTrainer, TeacherWhenOn, WantedTeacher};
use crate::env::scene::Scene;
use crate::feedback::tuning::{
    AdapterSaves, AdviceJudge, Algorithm, DEFAULT_OPTION_STEPS, TuneConfig, TuneRecord, TuneRun, TuningTeacher,
};
use crate::training::{TeacherKind, TrainerConfig};

/// Situations sampled from the level (`duet tune`'s default).
const SITUATIONS: usize = 16;

/// Where a tuning run stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TuningStatus {
    #[default]
    Idle,
    /// Start was pressed while the PPO worker had the trainer: the student is copied when it is back.
    WaitingForStudent,
    LoadingModel,
    /// The base teacher is being evaluated (iteration 0).
    EvaluatingBase,
    Running {
        iteration: usize,
        of: usize,
    },
    /// Done (or stopped early) and the adapters saved at these paths.
    Finished {
        iterations: usize,
        stopped: bool,
        adapters: Vec<PathBuf>,
    },
    Failed(String),
}

impl TuningStatus {
    /// A run is under way (Start is refused, Stop is offered).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            TuningStatus::WaitingForStudent
                | TuningStatus::LoadingModel
                | TuningStatus::EvaluatingBase
                | TuningStatus::Running { .. }
        )
    }
}

/// What the tuning thread reports.
#[derive(Debug)]
enum TuningEvent {
    Loaded,
    Record(TuneRecord),
    Finished { stopped: bool, adapters: Vec<PathBuf> },
    Failed(String),
}

/// The thread of a run under way.
struct TuningJob {
    events: Receiver<TuningEvent>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The Tuning tab's choices, the run's status and its records (iteration 0 is the base teacher).
#[derive(Resource)]
pub struct Tuning {
    pub algorithm: Algorithm,
    pub iterations: usize,
    pub batch: usize,
    pub status: TuningStatus,
    pub records: Vec<TuneRecord>,
    /// Stop was pressed; the run ends after the iteration under way.
    pub stopping: bool,
    start_requested: bool,
    job: Option<TuningJob>,
}

impl Default for Tuning {
    /// `duet tune`'s defaults: PPO, 10 iterations of 8 utterances.
    fn default() -> Tuning {
        Tuning {
            algorithm: Algorithm::Ppo,
            iterations: 10,
            batch: 8,
            status: TuningStatus::Idle,
            records: Vec::new(),
            stopping: false,
            start_requested: false,
            job: None,
        }
    }
}

impl Tuning {
    /// Asks for a run with the current choices; it starts when the trainer is home.
    pub fn start(&mut self) {
        if self.status.is_busy() {
            return;
        }
        self.records.clear();
        self.stopping = false;
        self.start_requested = true;
        self.status = TuningStatus::WaitingForStudent;
    }

    /// Ends the run after the iteration under way (a start still waiting is called off).
    pub fn stop(&mut self) {
        if self.start_requested {
            self.start_requested = false;
            self.status = TuningStatus::Idle;
            return;
        }
        if let Some(job) = &self.job {
            job.stop.store(true, Ordering::Relaxed);
            self.stopping = true;
        }
    }
}

pub struct TuningPlugin;

impl Plugin for TuningPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Tuning>().add_systems(Update, collect_tuning);
    }
}

/// Starts a requested run when the trainer is home (its student is copied, which takes
/// milliseconds) and takes in what the tuning thread reported since the last frame.
fn collect_tuning(mut tuning: ResMut<Tuning>, mut live: ResMut<LiveTrainer>, files: Res<RunFiles>) {
    if tuning.start_requested
        && let Some(trainer) = live.trainer_mut()
    {
        tuning.start_requested = false;
        let started = spawn_job(&tuning, trainer, &files.scene, &files.out_dir);
        match started {
            Ok(job) => {
                tuning.job = Some(job);
                tuning.status = TuningStatus::LoadingModel;
            }
            Err(error) => tuning.status = TuningStatus::Failed(error),
        }
    }
    let Some(job) = tuning.job.take() else { return };
    let mut ended = false;
    for event in job.events.try_iter() {
        match event {
            TuningEvent::Loaded => tuning.status = TuningStatus::EvaluatingBase,
            TuningEvent::Record(record) => {
                tuning.status = TuningStatus::Running { iteration: record.iteration, of: tuning.iterations };
                tuning.records.push(record);
            }
            TuningEvent::Finished { stopped, adapters } => {
                let iterations = tuning.records.len().saturating_sub(1);
                tuning.status = TuningStatus::Finished { iterations, stopped, adapters };
                ended = true;
            }
            TuningEvent::Failed(message) => {
                tuning.status = TuningStatus::Failed(message);
                ended = true;
            }
        }
    }
    if !ended && job.thread.is_finished() && job.events.is_empty() {
        tuning.status = TuningStatus::Failed("the tuning thread stopped without a word (it panicked)".to_owned());
        ended = true;
    }
    if ended {
        tuning.stopping = false;
    } else {
        tuning.job = Some(job);
    }
}

/// Puts `adapters` (None: the base model) in the live LLM teacher the way a new scene rebuilds
/// its teacher: the scene's `teacher.adapters`, then a Reset with the LLM teacher on. The run
/// starts over with a fresh student, so what it learns is the tuned teacher's doing.
pub fn use_adapters(
    adapters: Option<PathBuf>,
    files: &mut RunFiles,
    controls: &mut Controls,
    wanted: &mut WantedTeacher,
    when_on: &mut TeacherWhenOn,
) {
    let what = adapters.as_ref().map_or("the base teacher".to_owned(), |path| path.display().to_string());
    files.scene.teacher.adapters = adapters;
    wanted.0 = TeacherKind::Llm;
    when_on.0 = TeacherKind::Llm;
    controls.request(Control::Reset);
    controls.tell(format!("restarting with {what}"), false);
}

/// What the thread needs, gathered on the main thread.
struct TuningSetup {
    scene: Scene,
    config: TuneConfig,
    judge: AdviceJudge,
    out_dir: PathBuf,
}

/// Copies the live student into a judge and starts the thread.
fn spawn_job(
    tuning: &Tuning,
    trainer: &crate::training::Trainer,
    scene: &Scene,
    out_dir: &Path,
) -> Result<TuningJob, String> {
    if tuning.iterations == 0 || tuning.batch == 0 {
        return Err("iterations and batch must be at least 1".to_owned());
    }
    let trainer_config = TrainerConfig::from_scene(scene, TeacherKind::None).map_err(|error| error.to_string())?;
    let level = trainer_config.env.level().cloned().ok_or("tuning the teacher needs a grid scene")?;
    let env_config = trainer_config.env_config(1, scene.seed);
    let judge = AdviceJudge::new(trainer.student(), env_config, DEFAULT_OPTION_STEPS, scene.seed)
        .map_err(|error| format!("copying the student: {error}"))?;
    let config = TuneConfig {
        iterations: tuning.iterations,
        batch: tuning.batch,
        situations: SITUATIONS,
        seed: scene.seed,
        detail: scene.teacher.description,
        ..TuneConfig::new(level, tuning.algorithm)
    };
    let setup = TuningSetup { scene: scene.clone(), config, judge, out_dir: out_dir.to_owned() };
    let (sender, events) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("teacher-tuning".into())
        .spawn(move || {
            let outcome = tune_in_background(setup, &sender, &thread_stop);
            // The app may have closed meanwhile; then nobody listens.
            let _ = sender.send(match outcome {
                Ok((stopped, adapters)) => TuningEvent::Finished { stopped, adapters },
                Err(message) => TuningEvent::Failed(message),
            });
        })
        .map_err(|error| format!("starting the tuning thread: {error}"))?;
    Ok(TuningJob { events, stop, thread })
}

/// The run itself, as `duet tune` does it: prompt, model, base evaluation, iterations, adapters
/// saved to `out_dir`. Returns whether it was stopped and the adapters' paths.
fn tune_in_background(
    setup: TuningSetup,
    events: &Sender<TuningEvent>,
    stop: &AtomicBool,
) -> Result<(bool, Vec<PathBuf>), String> {
    let TuningSetup { scene, config, mut judge, out_dir } = setup;
    // The base model, whatever adapters the live teacher runs with.
    let TuningTeacher { model, tokenizer, template } =
        TuningTeacher::load(&scene.teacher, None).map_err(|error| error.to_string())?;
    let algorithm = config.algorithm.name();
    let run = TuneRun::new(&model, &tokenizer, &template, config).map_err(|error| error.to_string())?;
    let _ = events.send(TuningEvent::Loaded);

    let base = run.base_record().map_err(|error| error.to_string())?;
    let _ = events.send(TuningEvent::Record(base));
    let mut stopped = stop.load(Ordering::Relaxed);
    std::fs::create_dir_all(&out_dir).map_err(|error| format!("creating {}: {error}", out_dir.display()))?;
    let stem = format!("tuned-{algorithm}");
    // Saved after every iteration, so quitting mid-run keeps the adapters so far.
    let mut saves = AdapterSaves::new(&out_dir, &stem);
    if !stopped {
        run.run(&mut judge, |record, adapters| {
            saves.save(adapters);
            let _ = events.send(TuningEvent::Record(record.clone()));
            stopped = stop.load(Ordering::Relaxed);
            !stopped
        })
        .map_err(|error| error.to_string())?;
    }
    let saved = saves.finish().map_err(|error| error.to_string())?;
    Ok((stopped, saved))
}
