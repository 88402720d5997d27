//! What the controls panel and shortcuts ask of the run (single step, reset, load a
//! checkpoint or another scene, apply a prompt), queued until the trainer is home from an update.

use std::path::{Path, PathBuf};

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::SceneInfo;
use super::learning_curve::LearningCurve;
use super::ppo_worker::UpdateWorker;
use super::prompt_editor::PromptEditor;
use super::race::RunStarted;
use super::simulation::{
    AgentMotion, FocusedEnv, LambdaOverride, LiveTrainer, StepOutputs, Wanted, WantedTeacher, advance,
};
use super::update_history::UpdateHistory;
use crate::env::scene::Scene;
use crate::training::checkpoint::{has_checkpoint, read_checkpoint_summary};
use crate::training::{TeacherKind, TeacherLoading, Trainer, TrainerConfig};

/// Messages the controls panel keeps (newest last).
const MAX_MESSAGES: usize = 6;

/// A request that needs the trainer itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Control {
    /// One env step of every env (while paused).
    Step,
    /// A fresh student on the same scene.
    Reset,
    /// Continue the run checkpointed in this directory.
    LoadCheckpoint(PathBuf),
    /// Start a fresh run on this scene file.
    LoadScene(PathBuf),
    /// Put the prompt editor's draft in force.
    ApplyPrompt,
}

/// One line of feedback in the controls panel.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlMessage {
    pub text: String,
    pub is_error: bool,
}

/// Queued requests, a checkpoint save waiting for the next update boundary, and feedback.
#[derive(Resource, Debug, Default)]
pub struct Controls {
    queue: Vec<Control>,
    /// Checkpoints hold no half-filled rollout: the save happens when the next update
    /// comes back, before stepping resumes.
    pub save_pending: bool,
    pub messages: Vec<ControlMessage>,
}

impl Controls {
    pub fn request(&mut self, control: Control) {
        self.queue.push(control);
    }

    /// Requests still waiting for the trainer.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn tell(&mut self, text: impl Into<String>, is_error: bool) {
        let text = text.into();
        if is_error {
            warn!("{text}");
        } else {
            info!("{text}");
        }
        self.messages.push(ControlMessage { text, is_error });
        let excess = self.messages.len().saturating_sub(MAX_MESSAGES);
        self.messages.drain(..excess);
    }
}

/// Where the run's files go and the scene it came from.
#[derive(Resource, Clone, Debug)]
pub struct RunFiles {
    /// The scene the run trains on.
    pub scene: Scene,
    /// Checkpoints are written here (`--out`, else `runs/app`) and loaded from
    /// `load_dir`, which the panel edits.
    pub out_dir: PathBuf,
    pub load_dir: String,
    /// Where the screenshot button writes PNGs (edited in the panel).
    pub screenshot_dir: String,
    /// The folder the scene picker lists.
    pub scene_dir: PathBuf,
}

impl RunFiles {
    pub fn new(scene: Scene, out_dir: Option<&Path>, scene_dir: &Path) -> RunFiles {
        let out_dir = out_dir.map_or_else(|| PathBuf::from("runs/app"), Path::to_owned);
        RunFiles {
            scene,
            load_dir: out_dir.display().to_string(),
            out_dir,
            screenshot_dir: "screenshots".to_owned(),
            scene_dir: scene_dir.to_owned(),
        }
    }
}

/// Where the run shown started from: its configuration (seed, teacher, student) and, for a
/// loaded run, the checkpoint. The race's second run starts from the same place.
#[derive(Resource, Clone, Debug)]
pub struct RunOrigin {
    pub config: TrainerConfig,
    pub checkpoint: Option<PathBuf>,
}

/// What starting a new run resets besides the trainer.
#[derive(SystemParam)]
pub struct RunViews<'w> {
    history: ResMut<'w, UpdateHistory>,
    learning_curve: ResMut<'w, LearningCurve>,
    focus: ResMut<'w, FocusedEnv>,
    info: ResMut<'w, SceneInfo>,
    files: ResMut<'w, RunFiles>,
    editor: ResMut<'w, PromptEditor>,
    origin: ResMut<'w, RunOrigin>,
    started: MessageWriter<'w, RunStarted>,
}

/// Carries out queued requests while the trainer is home (between updates).
pub fn run_controls(
    mut controls: ResMut<Controls>,
    mut live: ResMut<LiveTrainer>,
    mut outputs: StepOutputs,
    mut views: RunViews,
    worker: Res<UpdateWorker>,
    wanted: Res<WantedTeacher>,
    mut lambda: ResMut<LambdaOverride>,
) {
    while !controls.queue.is_empty() {
        if live.trainer_mut().is_none() {
            return; // away on the update worker; the rest waits for it
        }
        let control = controls.queue.remove(0);
        match control {
            Control::Step => {
                let step_wanted = Wanted { teacher: wanted.0, lambda: lambda.0 };
                advance(&mut live, &mut outputs, &worker, step_wanted, views.focus.0, None);
            }
            Control::ApplyPrompt => {
                let Some(trainer) = live.trainer_mut() else { return };
                let frames = trainer.frames();
                match views.editor.apply(trainer.teacher_mut(), frames) {
                    Ok(version) => controls.tell(format!("prompt version {version} in force"), false),
                    Err(error) => controls.tell(format!("prompt not applied: {error}"), true),
                }
                outputs.teacher_view.capture(trainer, views.focus.0);
            }
            Control::Reset => {
                let config = match TrainerConfig::from_scene(&views.files.scene, wanted.0) {
                    Ok(config) => config,
                    Err(error) => {
                        controls.tell(format!("reset failed: {error}"), true);
                        continue;
                    }
                };
                match Trainer::with_teacher_loading(config, TeacherLoading::Background) {
                    Ok(trainer) => {
                        start_run(trainer, None, &mut live, &mut outputs, &mut views);
                        controls.tell("new run: a fresh student", false);
                    }
                    Err(error) => controls.tell(format!("reset failed: {error}"), true),
                }
            }
            Control::LoadCheckpoint(dir) => match load_checkpoint(&views.files.scene, &dir) {
                Ok(trainer) => {
                    let updates = trainer.updates();
                    // The checkpoint's hand-set λ (or none) is in force again, and the Run tab
                    // shows it: the override is applied before every step from this resource.
                    lambda.set_if_neq(LambdaOverride(trainer.lambda_override()));
                    start_run(trainer, Some(dir.clone()), &mut live, &mut outputs, &mut views);
                    controls.tell(format!("loaded {} (update {updates})", dir.display()), false);
                }
                Err(error) => controls.tell(error, true),
            },
            Control::LoadScene(path) => match load_scene(&path, wanted.0, outputs.snapshot.is_embodied()) {
                Ok((scene, trainer)) => {
                    views.info.set_if_neq(SceneInfo::of(&scene));
                    views.files.scene = scene;
                    start_run(trainer, None, &mut live, &mut outputs, &mut views);
                    controls.tell(format!("training on {}", path.display()), false);
                }
                Err(error) => controls.tell(error, true),
            },
        }
    }
}

/// A trainer continuing the run in `dir`, built for `scene` with the checkpoint's seed and
/// teacher (the checkpoint checks the rest).
fn load_checkpoint(scene: &Scene, dir: &Path) -> Result<Trainer, String> {
    if !has_checkpoint(dir) {
        return Err(format!("{}: no checkpoint there", dir.display()));
    }
    let summary = read_checkpoint_summary(dir).map_err(|error| error.to_string())?;
    let mut config = TrainerConfig::from_scene(scene, summary.teacher).map_err(|error| error.to_string())?;
    config.seed = summary.seed;
    let mut trainer = Trainer::resume_with_teacher_loading(config, dir, TeacherLoading::Background)
        .map_err(|error| error.to_string())?;
    trainer.start_clock();
    Ok(trainer)
}

/// Loads a scene of the kind shown now (`embodied` or grid): the views of each kind are
/// built when the app starts.
fn load_scene(path: &Path, teacher: TeacherKind, embodied: bool) -> Result<(Scene, Trainer), String> {
    let scene = Scene::load(path).map_err(|error| error.to_string())?;
    if scene.embodied().is_some() != embodied {
        let (now, asked) = if embodied { ("an embodied", "a grid") } else { ("a grid", "an embodied") };
        return Err(format!(
            "{}: {asked} scene; this window shows {now} scene: start `duet --scene {}` for it",
            path.display(),
            path.display()
        ));
    }
    let config = TrainerConfig::from_scene(&scene, teacher).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut trainer = Trainer::with_teacher_loading(config, TeacherLoading::Background)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    trainer.start_clock();
    Ok((scene, trainer))
}

/// Puts `trainer` in place of the run shown (loaded from `checkpoint`, if any) and clears what
/// belonged to the old run; the race's second run restarts from the same origin.
fn start_run(
    mut trainer: Trainer,
    checkpoint: Option<PathBuf>,
    live: &mut LiveTrainer,
    outputs: &mut StepOutputs,
    views: &mut RunViews,
) {
    trainer.start_clock();
    *views.origin = RunOrigin { config: trainer.config().clone(), checkpoint };
    let focus = views.focus.0.min(trainer.env().num_envs() - 1);
    views.focus.set_if_neq(FocusedEnv(focus));
    // A new run starts with the student driving every env.
    *outputs.manual = Default::default();
    outputs.snapshot.publish(&trainer);
    outputs.snapshot.latest = None;
    outputs.snapshot.updating = false;
    outputs.teacher_view.capture(&trainer, focus);
    if let Some(world) = trainer.env().grid(focus) {
        *outputs.motion = AgentMotion::snap(focus, world);
    }
    outputs.fault.message = None;
    views.history.clear();
    *views.learning_curve = LearningCurve::default();
    views.editor.history.clear();
    views.started.write(RunStarted);
    live.replace(trainer);
}
