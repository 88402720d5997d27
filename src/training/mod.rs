//! The training loop: `Trainer` owns the envs, the student and a teacher; `step()` takes one
//! vectorised env step and `update()` one PPO update, so the app and the CLI drive the same loop.

pub mod checkpoint;
pub mod llm_teacher;

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::grid::Action;
use crate::env::scene::{Scene, StudentSpec, TeacherSpec};
use crate::env::vec_env::{EnvKind, EpisodeStats, ObservationKind, VecEnv, VecEnvConfig};
use crate::feedback::FeedbackRecorder;
use crate::metrics::{EpisodeWindow, UpdateRecord};
use crate::student::{
    ActionDistribution, NoTeacher, ObservationLayout, OracleTeacher, RolloutBuffer, Student, StudentError,
    TeacherPolicy, distill_lambda,
};

/// Which teacher advises the student.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeacherKind {
    /// Reward only.
    #[default]
    None,
    /// The scripted oracle expert (`skills::oracle_advice`).
    Oracle,
    /// A local language model's option advice through the skills (`llm_teacher::LlmTeacher`);
    /// the scene's `teacher` section says which model and prompt.
    Llm,
}

impl TeacherKind {
    pub fn name(self) -> &'static str {
        match self {
            TeacherKind::None => "none",
            TeacherKind::Oracle => "oracle",
            TeacherKind::Llm => "llm",
        }
    }

    /// A teacher of this kind. The LLM teacher loads its model on its worker threads and
    /// returns at once; one that cannot start at all is replaced by a teacher that never
    /// advises and says why in `client_stats().last_error` (the app shows it).
    fn build(self, env: &EnvKind, settings: &TeacherSpec) -> Box<dyn TeacherPolicy> {
        match self {
            TeacherKind::None => Box::new(NoTeacher),
            TeacherKind::Oracle => Box::new(OracleTeacher::new(env)),
            TeacherKind::Llm => match llm_teacher::start(settings) {
                Ok(mut teacher) => {
                    // Built without waiting for the model: the app, which must never wait.
                    teacher.set_wait_for_advice(false);
                    Box::new(teacher)
                }
                Err(error) => Box::new(llm_teacher::UnavailableTeacher::new(error.to_string())),
            },
        }
    }

    /// Like `build`, but waits until the LLM teacher's model has loaded, and fails with the
    /// reason (naming the file) when it cannot: a run asked to learn from the LLM should
    /// stop rather than train without it.
    fn build_loaded(self, env: &EnvKind, settings: &TeacherSpec) -> Result<Box<dyn TeacherPolicy>, TrainingError> {
        if self != TeacherKind::Llm {
            return Ok(self.build(env, settings));
        }
        let failed = |error: String| TrainingError::Config(format!("the LLM teacher cannot start: {error}"));
        let mut teacher = llm_teacher::start(settings).map_err(|error| failed(error.to_string()))?;
        teacher.client_mut().wait_until_ready(llm_teacher::LOAD_TIMEOUT).map_err(|error| failed(error.to_string()))?;
        Ok(Box::new(teacher))
    }
}

impl FromStr for TeacherKind {
    type Err = TrainingError;
    fn from_str(text: &str) -> Result<TeacherKind, TrainingError> {
        match text {
            "none" => Ok(TeacherKind::None),
            "oracle" => Ok(TeacherKind::Oracle),
            "llm" => Ok(TeacherKind::Llm),
            other => {
                Err(TrainingError::Config(format!("unknown teacher {other:?}; expected `none`, `oracle` or `llm`")))
            }
        }
    }
}

/// The scene's teacher section, with the embodied prompt where an embodied scene names none
/// (the grid prompt, the default, speaks of keys and doors).
pub fn teacher_settings_for(scene: &Scene) -> TeacherSpec {
    let mut settings = scene.teacher.clone();
    if scene.embodied().is_some() && settings.prompt.is_none() {
        settings.prompt = Some(crate::teacher::prompt::prompts_dir().join(EMBODIED_PROMPT));
    }
    settings
}

/// The shipped prompt for embodied scenes, in `assets/prompts`.
pub const EMBODIED_PROMPT: &str = "embodied.txt";

/// Everything a run needs; `from_scene` reads it off a scene.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerConfig {
    /// The grid level or the embodied apartment every env runs.
    pub env: EnvKind,
    pub num_envs: usize,
    pub max_steps: Option<u32>,
    pub observation: ObservationKind,
    pub seed: u64,
    pub student: StudentSpec,
    pub teacher: TeacherKind,
    /// The LLM teacher's model, prompt, workers and scoring (the scene's `teacher` section).
    pub teacher_settings: TeacherSpec,
}

impl TrainerConfig {
    /// The scene's environment (an embodied plan is loaded), envs, seed and student;
    /// `teacher` chosen by the caller.
    pub fn from_scene(scene: &Scene, teacher: TeacherKind) -> Result<TrainerConfig, TrainingError> {
        Ok(TrainerConfig {
            env: scene.env_kind().map_err(TrainingError::Config)?,
            num_envs: scene.env.num_envs(),
            max_steps: scene.env.max_steps(),
            observation: scene.student.observation,
            seed: scene.seed,
            student: scene.student.clone(),
            teacher,
            teacher_settings: teacher_settings_for(scene),
        })
    }

    /// `num_envs` envs of the run's level, step limit and observation, seeded by `seed`.
    pub fn env_config(&self, num_envs: usize, seed: u64) -> VecEnvConfig {
        let mut env_config = VecEnvConfig::of(self.env.clone(), num_envs, seed);
        env_config.max_steps = self.max_steps;
        env_config.observation = self.observation;
        env_config
    }
}

/// Why training could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error(transparent)]
    Student(#[from] StudentError),
    #[error("{0}")]
    Config(String),
}

/// How a student did over some episodes, without learning.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvaluationSummary {
    pub episodes: usize,
    pub success_rate: f64,
    pub return_mean: f64,
    pub length_mean: f64,
}

impl EvaluationSummary {
    /// Means over `finished` (all zero when it is empty).
    fn of(finished: &[EpisodeStats]) -> EvaluationSummary {
        let count = finished.len().max(1) as f64;
        EvaluationSummary {
            episodes: finished.len(),
            success_rate: finished.iter().filter(|e| e.success).count() as f64 / count,
            return_mean: finished.iter().map(|e| f64::from(e.episode_return)).sum::<f64>() / count,
            length_mean: finished.iter().map(|e| f64::from(e.length)).sum::<f64>() / count,
        }
    }
}

/// How the teacher did acting alone.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct TeacherEvaluation {
    #[serde(flatten)]
    pub summary: EvaluationSummary,
    /// Fraction of steps the teacher had no advice for (random actions).
    pub unadvised_fraction: f64,
}

/// Decorrelates the teacher-alone evaluation's action draws from its envs' seed.
const TEACHER_EVALUATION_SALT: u64 = 0x7EAC_4E12_0000_0001;

/// Decorrelates the student's seed from the envs' (which use the run seed directly).
const STUDENT_SEED_SALT: u64 = 0xD1E7_5EED_0000_0001;

/// Envs + student + teacher + the running statistics of one run.
pub struct Trainer {
    config: TrainerConfig,
    env: VecEnv,
    student: Student,
    teacher: Box<dyn TeacherPolicy>,
    /// The LLM teacher while toggled off, so turning it back on does not reload the model.
    parked_teacher: Option<(TeacherKind, Box<dyn TeacherPolicy>)>,
    rollout: RolloutBuffer,
    /// The teacher's advice for the states the envs show now.
    advice: Vec<Option<ActionDistribution>>,
    actions: Vec<Action>,
    /// Every action taken, step-major (one per env per step): replaying them from the run's
    /// seed puts the envs (worlds, generators, episode counters) back exactly on resume.
    action_history: Vec<u8>,
    dones: Vec<bool>,
    frames: u64,
    updates: u64,
    episodes: u64,
    window: EpisodeWindow,
    /// Samples of the current rollout with advice, and those where the student agreed.
    advised_samples: u64,
    agreeing_samples: u64,
    last_update_at: Option<(Instant, u64)>,
    /// What following the teacher's advice led to (`feedback`); None while switched off.
    feedback: Option<FeedbackRecorder>,
    /// Send the rendered feedback to the teacher every this many updates (0: never).
    feedback_every: u64,
    /// The feedback text the teacher last accepted.
    feedback_sent: String,
    /// A distillation weight set by hand (the app's λ override) in place of the schedule's.
    lambda_override: Option<f64>,
    /// The env the user drives by hand (the app's manual control), if any.
    manual: Option<ManualControl>,
}

/// One env under manual control: it steps only on the user's actions, one per trainer step,
/// and waits (stands still) on the steps without one.
#[derive(Clone, Debug, Default)]
struct ManualControl {
    env: usize,
    /// Actions the user asked for, not yet taken.
    queued: VecDeque<Action>,
    /// Episodes the user finished (kept out of the student's metrics), not yet collected.
    finished: Vec<EpisodeStats>,
}

/// Stands in `action_history` for a step on which the env under manual control waited: on
/// resume it waits again, so the replay reaches the same worlds.
pub const WAITED: u8 = u8::MAX;

/// The teacher as the feedback recorder sees it while an env is under manual control: no
/// advice for that env, so the user's moves are not counted as the student following one.
struct WithoutAdviceFor {
    teacher: Box<dyn TeacherPolicy>,
    env: usize,
}

impl TeacherPolicy for WithoutAdviceFor {
    fn name(&self) -> &'static str {
        self.teacher.name()
    }

    fn advise(&mut self, env: &VecEnv, advice: &mut [Option<ActionDistribution>]) {
        self.teacher.advise(env, advice);
    }

    fn option_advice(&self, index: usize) -> Option<&crate::teacher::advisor::TeacherAdvice> {
        if index == self.env { None } else { self.teacher.option_advice(index) }
    }
}

/// Updates between two refreshes of the teacher's feedback (about 100k frames with 16 envs):
/// each refresh is a new prompt version, whose prefix the LLM recomputes (~3.5 s) and whose
/// advice it recomputes state by state, so refreshing every few updates starved the student
/// of advice (coverage 6% -> 0.4% at every 5 updates on DoorKey-5x5).
pub const FEEDBACK_EVERY_UPDATES: u64 = 50;

/// Lines of feedback sent to the teacher: a 270M model copies a few short lines best.
pub const FEEDBACK_LINES: usize = 4;

/// Whether building a trainer waits for an LLM teacher's model to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeacherLoading {
    /// Wait, and fail naming the file when it cannot load (headless runs: a run asked to
    /// learn from the LLM should stop rather than train without it).
    Wait,
    /// Return at once; the model loads on the teacher's worker threads and load errors show
    /// in `client_stats()` (the app, which must keep drawing frames).
    Background,
}

impl Trainer {
    /// A fresh run; an LLM teacher's model is loaded first (`TeacherLoading::Wait`).
    pub fn new(config: TrainerConfig) -> Result<Trainer, TrainingError> {
        Trainer::with_teacher_loading(config, TeacherLoading::Wait)
    }

    /// A fresh run whose LLM teacher, if any, loads as `loading` says.
    pub fn with_teacher_loading(config: TrainerConfig, loading: TeacherLoading) -> Result<Trainer, TrainingError> {
        match &config.env {
            EnvKind::Grid(level) => {
                level.validate().map_err(|err| TrainingError::Config(format!("impossible level {err}")))?
            }
            EnvKind::Embodied(setup) => {
                setup.build().map_err(TrainingError::Config)?;
            }
        }
        let env = VecEnv::new(config.env_config(config.num_envs, config.seed));
        let layout = ObservationLayout::for_batch(config.observation, &env);
        let student = Student::new(layout, config.student.clone(), config.seed ^ STUDENT_SEED_SALT)?;
        let mut teacher = match loading {
            TeacherLoading::Wait => config.teacher.build_loaded(&config.env, &config.teacher_settings)?,
            TeacherLoading::Background => config.teacher.build(&config.env, &config.teacher_settings),
        };
        let num_envs = env.num_envs();
        let mut advice = vec![None; num_envs];
        teacher.advise(&env, &mut advice);
        let rollout = RolloutBuffer::new(num_envs, config.student.frames_per_env, env.observation_len());
        // What advice led to is recorded per grid abstract state; embodied states have none yet.
        let feedback = (!env.is_embodied()).then(FeedbackRecorder::new);
        Ok(Trainer {
            config,
            env,
            student,
            teacher,
            parked_teacher: None,
            rollout,
            advice,
            actions: Vec::with_capacity(num_envs),
            action_history: Vec::new(),
            dones: vec![false; num_envs],
            frames: 0,
            updates: 0,
            episodes: 0,
            window: EpisodeWindow::default(),
            advised_samples: 0,
            agreeing_samples: 0,
            last_update_at: None,
            feedback,
            feedback_every: FEEDBACK_EVERY_UPDATES,
            feedback_sent: String::new(),
            lambda_override: None,
            manual: None,
        })
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    pub fn env(&self) -> &VecEnv {
        &self.env
    }

    pub fn student(&self) -> &Student {
        &self.student
    }

    /// Env frames so far (over all envs).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Episodes finished so far (over all envs).
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// The last `EPISODE_WINDOW` finished episodes, oldest first (what records average over).
    pub fn recent_episodes(&self) -> &EpisodeWindow {
        &self.window
    }

    /// Switches who advises from the next step on (the app's teacher toggle). The new teacher
    /// advises on the states the envs show now, so the next sample is advised consistently;
    /// samples already in the rollout keep the advice they had.
    pub fn set_teacher(&mut self, teacher: TeacherKind) {
        if teacher == self.config.teacher {
            return;
        }
        let previous = std::mem::replace(&mut self.config.teacher, teacher);
        let next = match self.parked_teacher.take() {
            Some((kind, parked)) if kind == teacher => parked,
            other => {
                self.parked_teacher = other;
                teacher.build(&self.config.env, &self.config.teacher_settings)
            }
        };
        let replaced = std::mem::replace(&mut self.teacher, next);
        // Keep a running LLM teacher (its model loaded, its cache warm); one that could not
        // start (no workers) is dropped so that turning it on again retries.
        if previous == TeacherKind::Llm && replaced.client_stats().is_some_and(|stats| stats.workers > 0) {
            self.parked_teacher = Some((previous, replaced));
        }
        // The new teacher has not had the feedback yet: the next refresh sends it.
        self.feedback_sent.clear();
        self.teacher.advise(&self.env, &mut self.advice);
    }

    /// The teacher in force (for panels: option advice, worker statistics, prompt).
    pub fn teacher(&self) -> &dyn TeacherPolicy {
        self.teacher.as_ref()
    }

    /// The teacher in force, mutably (the prompt editor's Apply).
    pub fn teacher_mut(&mut self) -> &mut dyn TeacherPolicy {
        self.teacher.as_mut()
    }

    /// The teacher's advice for the states the envs show now.
    pub fn advice(&self) -> &[Option<ActionDistribution>] {
        &self.advice
    }

    /// Whether the rollout is full, so that `update` is due.
    pub fn rollout_full(&self) -> bool {
        self.rollout.is_full()
    }

    /// One vectorised step: the student acts on what every env shows, the envs step, the
    /// rollout stores it all, and the teacher advises on the new states. Returns whether
    /// the rollout is now full.
    pub fn step(&mut self) -> Result<bool, TrainingError> {
        if self.rollout.is_full() {
            return Ok(true);
        }
        let decision = self.student.act(self.env.observations())?;
        // The env under manual control takes the user's next action, or waits for one.
        let manual = self.manual.as_mut().map(|manual| (manual.env, manual.queued.pop_front()));
        let manual_env = manual.map(|(env, _)| env);
        for (index, (advised, &greedy)) in self.advice.iter().zip(&decision.greedy_actions).enumerate() {
            if manual_env == Some(index) {
                continue; // the student's choice there is not taken
            }
            if let Some(probs) = advised {
                self.advised_samples += 1;
                // Ties count: the oracle spreads its mass over equally short walks.
                let best = probs.iter().copied().fold(f32::MIN, f32::max);
                if probs[greedy as usize] >= best - 1e-6 {
                    self.agreeing_samples += 1;
                }
            }
        }
        self.rollout.push_decision(
            self.env.observations(),
            &decision.actions,
            &decision.log_probs,
            &decision.values,
            &self.advice,
        );
        // The user's steps (and the waits between them) are left out of the PPO loss rather
        // than recorded with the policy's log-probability: the user's actions were not drawn
        // from the policy, so a ratio against its probability would be off-policy, and a wait
        // is no transition at all. The student's own samples before the take-over bootstrap
        // from the value of the state it handed over (`generalized_advantages_excluding`).
        if let Some(env) = manual_env {
            self.rollout.exclude_latest(env);
        }
        self.actions.clear();
        for &action in &decision.actions {
            let action = Action::from_index(action as usize)
                .ok_or_else(|| TrainingError::Config(format!("the student chose action {action}")))?;
            self.actions.push(action);
        }
        let waiting = match manual {
            Some((env, Some(action))) => {
                self.actions[env] = action;
                None
            }
            Some((env, None)) => Some(env),
            None => None,
        };
        let history_start = self.action_history.len();
        self.action_history.extend(self.actions.iter().map(|&action| action as u8));
        if let Some(env) = waiting {
            self.action_history[history_start + env] = WAITED;
        }
        if let Some(feedback) = &mut self.feedback {
            match manual_env {
                None => feedback.observe_decisions(&self.env, self.teacher.as_ref(), &self.actions),
                Some(env) => {
                    // `NoTeacher` holds the place for the call's length (a unit struct: no allocation).
                    let teacher = std::mem::replace(&mut self.teacher, Box::new(NoTeacher));
                    let hiding = WithoutAdviceFor { teacher, env };
                    feedback.observe_decisions(&self.env, &hiding, &self.actions);
                    self.teacher = hiding.teacher;
                }
            }
        }
        match waiting {
            Some(env) => self.env.step_except(&self.actions, env),
            None => self.env.step(&self.actions),
        }
        if let Some(feedback) = &mut self.feedback {
            feedback.observe_outcomes(&self.env);
        }
        for (done, (&terminated, &truncated)) in
            self.dones.iter_mut().zip(self.env.terminated().iter().zip(self.env.truncated()))
        {
            *done = terminated || truncated;
        }
        self.rollout.push_outcome(self.env.rewards(), &self.dones);
        for episode in self.env.drain_finished() {
            match &mut self.manual {
                // The user's episodes are not the student's: they stay out of its metrics.
                Some(manual) if manual.env == episode.env => manual.finished.push(episode),
                _ => {
                    self.window.push(episode);
                    self.episodes += 1;
                }
            }
        }
        self.teacher.advise(&self.env, &mut self.advice);
        // Frames count vectorised steps times envs, waits included, as the rollout's samples
        // and the action history do.
        self.frames += self.env.num_envs() as u64;
        Ok(self.rollout.is_full())
    }

    /// Hands env `env` to the user (`None`: back to the student). From the next step on it
    /// takes only the actions `queue_manual_action` gives, one per step, and waits without
    /// one; its samples stay out of the PPO loss and its episodes out of the metrics, while
    /// the other envs train as before. Another env's control, and queued actions, end.
    pub fn set_manual_control(&mut self, env: Option<usize>) {
        let env = env.filter(|&env| env < self.env.num_envs());
        if env == self.manual.as_ref().map(|manual| manual.env) {
            return;
        }
        self.manual = env.map(|env| ManualControl { env, ..ManualControl::default() });
    }

    /// The env under manual control, if any.
    pub fn manual_env(&self) -> Option<usize> {
        self.manual.as_ref().map(|manual| manual.env)
    }

    /// Queues `action` for the env under manual control (taken by the next step without
    /// one); false when no env is under manual control.
    pub fn queue_manual_action(&mut self, action: Action) -> bool {
        match &mut self.manual {
            Some(manual) => {
                manual.queued.push_back(action);
                true
            }
            None => false,
        }
    }

    /// Actions queued for the env under manual control and not yet taken.
    pub fn manual_actions_queued(&self) -> usize {
        self.manual.as_ref().map_or(0, |manual| manual.queued.len())
    }

    /// The episodes the user finished under manual control since the last call.
    pub fn take_manual_episodes(&mut self) -> Vec<EpisodeStats> {
        self.manual.as_mut().map(|manual| std::mem::take(&mut manual.finished)).unwrap_or_default()
    }

    /// One PPO update over what the rollout holds (normally a full one), then a fresh rollout.
    pub fn update(&mut self) -> Result<UpdateRecord, TrainingError> {
        let last_values = self.student.values(self.env.observations())?;
        if let Some(feedback) = &mut self.feedback {
            // The GAE the update computes (again: a pass over the rollout, microseconds), for
            // what following each advice was worth.
            let (advantages, _) = self.student.advantages(&self.rollout, &last_values)?;
            feedback.attach_advantages(&advantages, self.rollout.num_envs);
        }
        let lambda = self.distill_lambda();
        let stats = self.student.update(&self.rollout, &last_values, lambda)?;
        let samples = self.rollout.len() as f64;
        self.rollout.clear();
        self.updates += 1;
        let now = Instant::now();
        let fps = match self.last_update_at {
            Some((then, frames)) => (self.frames - frames) as f64 / now.duration_since(then).as_secs_f64().max(1e-9),
            None => 0.0,
        };
        self.last_update_at = Some((now, self.frames));
        let record = UpdateRecord {
            update: self.updates,
            frames: self.frames,
            num_envs: self.env.num_envs(),
            episodes: self.episodes,
            return_mean: self.window.return_mean(),
            success_rate: self.window.success_rate(),
            episode_length: self.window.length_mean(),
            policy_loss: stats.policy_loss,
            value_loss: stats.value_loss,
            entropy: stats.entropy,
            approx_kl: stats.approx_kl,
            clip_fraction: stats.clip_fraction,
            grad_norm: stats.grad_norm,
            teacher_kl: stats.teacher_kl,
            lambda,
            teacher_agreement: (self.advised_samples > 0)
                .then(|| self.agreeing_samples as f64 / self.advised_samples as f64),
            teacher_coverage: if samples > 0.0 { self.advised_samples as f64 / samples } else { 0.0 },
            fps,
        };
        self.advised_samples = 0;
        self.agreeing_samples = 0;
        self.send_feedback_if_due();
        Ok(record)
    }

    /// What following the teacher's advice led to so far (None while recording is off).
    pub fn feedback(&self) -> Option<&FeedbackRecorder> {
        self.feedback.as_ref()
    }

    /// Switches feedback recording on (afresh) or off; off, the teacher gets no feedback.
    pub fn set_feedback_recording(&mut self, on: bool) {
        let on = on && !self.env.is_embodied();
        if on != self.feedback.is_some() {
            self.feedback = on.then(FeedbackRecorder::new);
        }
    }

    /// Sets how many updates pass between two feedback refreshes (0: never send).
    pub fn set_feedback_every(&mut self, updates: u64) {
        self.feedback_every = updates;
    }

    /// Uses `lambda` as the distillation weight from the next update on, in place of the
    /// schedule's (`None`: the schedule again). A negative or non-finite weight counts as `None`.
    pub fn set_lambda_override(&mut self, lambda: Option<f64>) {
        self.lambda_override = lambda.filter(|weight| weight.is_finite() && *weight >= 0.0);
    }

    /// The weight set with `set_lambda_override`, if any.
    pub fn lambda_override(&self) -> Option<f64> {
        self.lambda_override
    }

    /// The distillation weight the next update uses: the override, else the schedule's.
    pub fn distill_lambda(&self) -> f64 {
        self.lambda_override.unwrap_or_else(|| distill_lambda(&self.config.student.distill, self.frames, self.updates))
    }

    /// The feedback text the teacher last accepted (empty before the first).
    pub fn feedback_sent(&self) -> &str {
        &self.feedback_sent
    }

    /// Every `feedback_every` updates, puts the rendered feedback in the teacher's prompt when
    /// it changed. Teachers without a prompt refuse it, which changes nothing.
    fn send_feedback_if_due(&mut self) {
        let Some(feedback) = &self.feedback else { return };
        if self.feedback_every == 0 || !self.updates.is_multiple_of(self.feedback_every) {
            return;
        }
        let text = feedback.prompt_text(FEEDBACK_LINES);
        if text != self.feedback_sent && self.teacher.set_feedback(&text).is_ok() {
            self.feedback_sent = text;
        }
    }

    /// Steps until the rollout is full, then updates: one point on the learning curve.
    pub fn train_one_update(&mut self) -> Result<UpdateRecord, TrainingError> {
        while !self.step()? {}
        self.update()
    }

    /// Plays `episodes` episodes with the current student in fresh envs seeded by `seed`
    /// (sampling its actions, or taking the most likely with `greedy`), without learning.
    pub fn evaluate(&mut self, episodes: usize, greedy: bool, seed: u64) -> Result<EvaluationSummary, TrainingError> {
        let mut env = VecEnv::new(self.config.env_config(self.config.num_envs, seed));
        let mut finished = Vec::with_capacity(episodes);
        let mut actions = Vec::with_capacity(env.num_envs());
        while finished.len() < episodes {
            let decision = self.student.act(env.observations())?;
            let chosen = if greedy { &decision.greedy_actions } else { &decision.actions };
            actions.clear();
            for &action in chosen {
                let action = Action::from_index(action as usize)
                    .ok_or_else(|| TrainingError::Config(format!("the student chose action {action}")))?;
                actions.push(action);
            }
            env.step(&actions);
            finished.extend(env.drain_finished());
        }
        // Envs finish in any order: keep the first `episodes` so the count is exact.
        finished.truncate(episodes);
        Ok(EvaluationSummary::of(&finished))
    }

    /// Plays `episodes` episodes in fresh envs seeded by `seed` with the run's teacher alone
    /// acting (sampling its action distribution), without the student: the teacher's own
    /// success, which the student should surpass. Steps without advice (a teacher still
    /// thinking) take a uniformly random action and are counted.
    pub fn evaluate_teacher(&self, episodes: usize, seed: u64) -> Result<TeacherEvaluation, TrainingError> {
        if self.config.teacher == TeacherKind::None {
            return Err(TrainingError::Config("the run has no teacher to evaluate".into()));
        }
        let mut env = VecEnv::new(self.config.env_config(self.config.num_envs, seed));
        // The teacher's own success needs its advice at every step: an LLM teacher is loaded
        // first and waited for on each new situation.
        let settings = TeacherSpec { wait_for_advice: true, ..self.config.teacher_settings.clone() };
        let mut teacher = self.config.teacher.build_loaded(&self.config.env, &settings)?;
        let mut advice = vec![None; env.num_envs()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ TEACHER_EVALUATION_SALT);
        let (mut steps, mut unadvised_steps) = (0u64, 0u64);
        let mut finished = Vec::with_capacity(episodes);
        let mut actions = Vec::with_capacity(env.num_envs());
        while finished.len() < episodes {
            teacher.advise(&env, &mut advice);
            actions.clear();
            for advised in &advice {
                let index = match advised {
                    Some(probs) => crate::numerics::sample_index(probs, rng.random::<f32>()),
                    None => {
                        unadvised_steps += 1;
                        rng.random_range(0..Action::COUNT)
                    }
                };
                let action = Action::from_index(index)
                    .ok_or_else(|| TrainingError::Config(format!("the teacher chose action {index}")))?;
                actions.push(action);
            }
            steps += actions.len() as u64;
            env.step(&actions);
            finished.extend(env.drain_finished());
        }
        finished.truncate(episodes);
        Ok(TeacherEvaluation {
            summary: EvaluationSummary::of(&finished),
            unadvised_fraction: unadvised_steps as f64 / steps.max(1) as f64,
        })
    }

    /// Every action the run took so far, step-major (`num_envs` per step).
    pub fn action_history(&self) -> &[u8] {
        &self.action_history
    }

    /// Steps the envs through `actions` (step-major, as `action_history` gives them) the way
    /// `step` did, without the student, so that a trainer built from the run's seed reaches
    /// the run's env state exactly. The oracle advises after every step, as it did, to rebuild
    /// the fog it keeps; other teachers advise once at the end (an LLM would be asked about
    /// every replayed state otherwise).
    fn replay_actions(&mut self, actions: &[u8]) -> Result<(), TrainingError> {
        let num_envs = self.env.num_envs();
        if !actions.len().is_multiple_of(num_envs) {
            return Err(TrainingError::Config(format!(
                "{} saved actions are not a whole number of steps of {num_envs} envs",
                actions.len()
            )));
        }
        let advise_every_step = self.config.teacher == TeacherKind::Oracle;
        for step in actions.chunks_exact(num_envs) {
            self.actions.clear();
            let mut waiting = None;
            for (env, &index) in step.iter().enumerate() {
                if index == WAITED && waiting.is_none() {
                    waiting = Some(env);
                    self.actions.push(Action::Done); // not taken
                    continue;
                }
                let action = Action::from_index(usize::from(index))
                    .ok_or_else(|| TrainingError::Config(format!("saved action {index} is no action")))?;
                self.actions.push(action);
            }
            match waiting {
                Some(env) => self.env.step_except(&self.actions, env),
                None => self.env.step(&self.actions),
            }
            self.env.drain_finished();
            if advise_every_step {
                self.teacher.advise(&self.env, &mut self.advice);
            }
        }
        if !advise_every_step {
            self.teacher.advise(&self.env, &mut self.advice);
        }
        self.action_history.extend_from_slice(actions);
        Ok(())
    }

    /// Starts the clock for the first update's `fps` (otherwise it reports 0).
    pub fn start_clock(&mut self) {
        self.last_update_at = Some((Instant::now(), self.frames));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Level;
    use crate::env::scene::EncoderKind;

    fn config(teacher: TeacherKind, encoder: EncoderKind) -> TrainerConfig {
        TrainerConfig {
            env: EnvKind::Grid(Level::DoorKey { size: 5 }),
            num_envs: 4,
            max_steps: None,
            observation: ObservationKind::Egocentric,
            seed: 11,
            student: StudentSpec { encoder, frames_per_env: 16, minibatch: 32, ..StudentSpec::default() },
            teacher,
            teacher_settings: TeacherSpec::default(),
        }
    }

    fn run(config: TrainerConfig, updates: usize) -> Vec<UpdateRecord> {
        let mut trainer = Trainer::new(config).expect("trainer");
        (0..updates)
            .map(|_| {
                let mut record = trainer.train_one_update().expect("update");
                record.fps = 0.0; // wall time is the one thing that may differ
                record
            })
            .collect()
    }

    #[test]
    fn same_seed_same_metrics_bit_for_bit() {
        for teacher in [TeacherKind::None, TeacherKind::Oracle] {
            let first = run(config(teacher, EncoderKind::Cnn), 3);
            let second = run(config(teacher, EncoderKind::Cnn), 3);
            assert_eq!(first, second, "{teacher:?}");
            // Serialised too, which is what lands in the log.
            let as_json = |r: &[UpdateRecord]| serde_json::to_string(r).expect("json");
            assert_eq!(as_json(&first), as_json(&second));
        }
        let mut other_seed = config(TeacherKind::None, EncoderKind::Cnn);
        other_seed.seed = 12;
        assert_ne!(run(other_seed, 1), run(config(TeacherKind::None, EncoderKind::Cnn), 1));
    }

    #[test]
    fn records_count_frames_and_teacher_coverage() {
        let records = run(config(TeacherKind::Oracle, EncoderKind::Mlp), 2);
        assert_eq!(records[1].update, 2);
        assert_eq!(records[1].frames, 2 * 4 * 16);
        assert_eq!(records[0].teacher_coverage, 1.0, "the oracle always advises");
        assert!(records[0].teacher_kl.is_some() && records[0].teacher_agreement.is_some());
        assert!(records[0].lambda > 0.0 && records[1].lambda < records[0].lambda);
        let records = run(config(TeacherKind::None, EncoderKind::Mlp), 1);
        assert_eq!(
            (records[0].teacher_coverage, records[0].teacher_kl, records[0].teacher_agreement),
            (0.0, None, None)
        );
    }

    #[test]
    fn trainer_can_move_to_a_worker_thread() {
        // The app runs updates off the main thread.
        fn assert_send<T: Send>() {}
        assert_send::<Trainer>();
    }

    /// The oracle's advice, taking feedback as an LLM teacher would, and noting what it got.
    struct FeedbackTakingOracle {
        oracle: OracleTeacher,
        received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl TeacherPolicy for FeedbackTakingOracle {
        fn name(&self) -> &'static str {
            "feedback-taking oracle"
        }

        fn advise(&mut self, env: &VecEnv, advice: &mut [Option<ActionDistribution>]) {
            self.oracle.advise(env, advice);
        }

        fn option_advice(&self, index: usize) -> Option<&crate::teacher::advisor::TeacherAdvice> {
            self.oracle.option_advice(index)
        }

        fn set_feedback(&mut self, text: &str) -> Result<u64, String> {
            let mut received = self.received.lock().map_err(|error| error.to_string())?;
            received.push(text.to_owned());
            Ok(received.len() as u64)
        }
    }

    fn apartment_config(teacher: TeacherKind) -> TrainerConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenes/pickplace-apartment-1.ron");
        let scene = Scene::load(path).expect("the shipped scene loads");
        TrainerConfig { num_envs: 4, ..TrainerConfig::from_scene(&scene, teacher).expect("config") }
    }

    #[test]
    fn an_embodied_scene_trains_through_the_same_loop() {
        let config = apartment_config(TeacherKind::None);
        assert_eq!(
            config.teacher_settings.prompt.as_deref().and_then(|p| p.file_name()),
            Some(std::ffi::OsStr::new(EMBODIED_PROMPT))
        );
        let mut trainer = Trainer::new(config).expect("trainer");
        assert!(trainer.env().is_embodied() && trainer.feedback().is_none());
        let record = trainer.train_one_update().expect("update");
        assert_eq!(trainer.frames(), 4 * 128);
        assert!(record.policy_loss.is_finite() && record.value_loss.is_finite(), "{record:?}");
        // Same seed, same run: a second trainer takes the same actions.
        let mut again = Trainer::new(apartment_config(TeacherKind::None)).expect("trainer");
        again.train_one_update().expect("update");
        assert_eq!(trainer.action_history(), again.action_history());
    }

    #[test]
    fn feedback_goes_to_the_teacher_every_k_updates_when_it_changed() {
        let config = config(TeacherKind::Oracle, EncoderKind::Mlp);
        let mut trainer = Trainer::new(config.clone()).expect("trainer");
        let received: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        trainer.teacher =
            Box::new(FeedbackTakingOracle { oracle: OracleTeacher::new(&config.env), received: received.clone() });
        trainer.teacher.advise(&trainer.env, &mut trainer.advice);
        trainer.set_feedback_every(3);
        let mut sent_at = Vec::new();
        for _ in 0..12 {
            let before = received.lock().expect("lock").len();
            trainer.train_one_update().expect("update");
            if received.lock().expect("lock").len() > before {
                sent_at.push(trainer.updates());
            }
        }
        let received = received.lock().expect("lock").clone();
        assert!(!received.is_empty(), "no feedback sent in {} episodes", trainer.episodes());
        assert!(sent_at.iter().all(|update| update % 3 == 0), "{sent_at:?}");
        let texts: Vec<&str> = received.iter().map(String::as_str).collect();
        assert!(texts.windows(2).all(|pair| pair[0] != pair[1]), "an unchanged text was sent again");
        assert_eq!(texts.last().copied(), Some(trainer.feedback_sent()));
        // Update 12 was a refresh, so the teacher holds what the recorder says now.
        let feedback = trainer.feedback().expect("recording");
        // Each update gave the segments it saw open their first step's advantage.
        let advantaged: u32 = feedback.counts().values().map(|counts| counts.advantaged).sum();
        assert!(advantaged > 0, "{:?}", feedback.counts());
        assert!(feedback.counts().values().filter_map(|counts| counts.mean_advantage()).all(f64::is_finite));
        assert_eq!(trainer.feedback_sent(), feedback.prompt_text(FEEDBACK_LINES));
        assert!(trainer.feedback_sent().starts_with(crate::feedback::recorder::FEEDBACK_HEADING));
        // A new teacher gets the feedback at the next refresh even though the text is the same.
        trainer.set_teacher(TeacherKind::None);
        assert_eq!(trainer.feedback_sent(), "");
    }

    #[test]
    fn set_teacher_switches_advice_at_once() {
        let mut trainer = Trainer::new(config(TeacherKind::Oracle, EncoderKind::Mlp)).expect("trainer");
        assert!(trainer.advice().iter().all(Option::is_some));
        trainer.set_teacher(TeacherKind::None);
        assert_eq!(trainer.config().teacher, TeacherKind::None);
        assert!(trainer.advice().iter().all(Option::is_none));
        trainer.step().expect("step");
        trainer.set_teacher(TeacherKind::Oracle);
        assert!(trainer.advice().iter().all(Option::is_some));
        let record = trainer.train_one_update().expect("update");
        assert!(record.teacher_coverage > 0.0 && record.teacher_coverage < 1.0, "{record:?}");
    }

    /// Empty-5x5: the agent starts at (1, 1) facing right, the goal is at (3, 3).
    fn empty_config(teacher: TeacherKind) -> TrainerConfig {
        TrainerConfig { env: EnvKind::Grid(Level::Empty { size: 5 }), ..config(teacher, EncoderKind::Mlp) }
    }

    const TO_THE_GOAL: [Action; 5] =
        [Action::Forward, Action::Forward, Action::Right, Action::Forward, Action::Forward];

    #[test]
    fn manual_control_drives_the_real_env_and_stays_out_of_the_loss() {
        let mut trainer = Trainer::new(empty_config(TeacherKind::Oracle)).expect("trainer");
        let start = trainer.env().world(1).clone();
        trainer.step().expect("a student step first");
        let student_moved = trainer.env().world(1).clone();
        trainer.set_manual_control(Some(1));
        assert_eq!(trainer.manual_env(), Some(1));
        // Without a key the env waits; the others go on.
        let others: Vec<_> = [0, 2, 3].iter().map(|&env| trainer.env().world(env).step_count).collect();
        trainer.step().expect("step");
        assert_eq!(trainer.env().world(1), &student_moved, "the env under manual control waited");
        let now: Vec<_> = [0, 2, 3].iter().map(|&env| trainer.env().world(env).step_count).collect();
        assert!(now.iter().zip(&others).all(|(after, before)| after != before || *after == 0), "{now:?}");
        // Handed back and taken again (an empty queue), the user's actions, one per step, walk
        // on from where the student left the episode (ending it if they reach the goal).
        trainer.set_manual_control(None);
        trainer.set_manual_control(Some(1));
        let mut expected = student_moved;
        let mut ended = None;
        for action in TO_THE_GOAL {
            assert!(trainer.queue_manual_action(action));
        }
        for _ in 0..TO_THE_GOAL.len() {
            trainer.step().expect("step");
        }
        for action in TO_THE_GOAL {
            let outcome = expected.step(action);
            if outcome.done() {
                ended = Some(outcome);
                break;
            }
        }
        assert_eq!(trainer.manual_actions_queued(), 0);
        let manual_episodes = trainer.take_manual_episodes();
        match ended {
            Some(outcome) => {
                assert_eq!(manual_episodes.len(), 1, "{manual_episodes:?}");
                assert_eq!(manual_episodes[0].success, outcome.terminated && outcome.reward > 0.0);
            }
            None => {
                assert!(manual_episodes.is_empty());
                assert_eq!(trainer.env().world(1), &expected);
            }
        }
        assert_ne!(trainer.env().world(1), &start);
        // The rest of the rollout: env 1 waits throughout, and every one of its samples since
        // the take-over is excluded; the student's first one is not.
        while !trainer.step().expect("step") {}
        let excluded: Vec<usize> = (0..trainer.rollout.len()).filter(|&i| trainer.rollout.is_excluded(i)).collect();
        let steps = trainer.rollout.steps;
        assert_eq!(excluded, (1..steps).map(|step| step * 4 + 1).collect::<Vec<_>>());
        let waits = trainer.action_history().iter().filter(|&&action| action == WAITED).count();
        assert_eq!(waits, steps - 1 - TO_THE_GOAL.len());
        let record = trainer.update().expect("an update with manual samples");
        for loss in [record.policy_loss, record.value_loss, record.entropy, record.approx_kl, record.grad_norm] {
            assert!(loss.is_finite(), "{record:?}");
        }
        // The user's episode is not in the student's metrics.
        assert!(trainer.recent_episodes().episodes().all(|episode| episode.env != 1));
        assert_eq!(trainer.episodes(), trainer.recent_episodes().len() as u64);
        // Handing back: env 1 is the student's again, nothing excluded.
        trainer.set_manual_control(None);
        assert!(!trainer.queue_manual_action(Action::Left));
        trainer.train_one_update().expect("update");
        trainer.step().expect("step");
        assert!(trainer.rollout.excluded.is_empty());
    }

    #[test]
    fn a_run_with_manual_control_resumes_exactly() {
        let config = empty_config(TeacherKind::None);
        let mut trainer = Trainer::new(config.clone()).expect("trainer");
        trainer.set_manual_control(Some(2));
        for action in TO_THE_GOAL {
            trainer.queue_manual_action(action);
        }
        trainer.train_one_update().expect("update");
        assert!(trainer.action_history().contains(&WAITED));
        let dir = tempfile::tempdir().expect("temp dir");
        trainer.save_checkpoint(dir.path()).expect("save");
        let resumed = Trainer::resume(config, dir.path()).expect("resume");
        assert_eq!(resumed.env().observations(), trainer.env().observations());
        assert_eq!(resumed.action_history(), trainer.action_history());
        assert_eq!(resumed.manual_env(), None, "a resumed run starts with the student in control");
    }

    #[test]
    fn manual_control_unused_changes_nothing() {
        let plain = run(config(TeacherKind::Oracle, EncoderKind::Mlp), 2);
        let mut trainer = Trainer::new(config(TeacherKind::Oracle, EncoderKind::Mlp)).expect("trainer");
        // Taken and handed back before any step, and a key without manual control.
        trainer.set_manual_control(Some(0));
        trainer.set_manual_control(None);
        assert!(!trainer.queue_manual_action(Action::Forward));
        let records: Vec<_> = (0..2)
            .map(|_| {
                let mut record = trainer.train_one_update().expect("update");
                record.fps = 0.0;
                record
            })
            .collect();
        assert_eq!(records, plain);
        assert!(!trainer.action_history().contains(&WAITED));
    }

    #[test]
    fn teacher_names_parse() {
        assert_eq!("oracle".parse::<TeacherKind>().ok(), Some(TeacherKind::Oracle));
        assert_eq!("none".parse::<TeacherKind>().ok(), Some(TeacherKind::None));
        assert_eq!("llm".parse::<TeacherKind>().ok(), Some(TeacherKind::Llm));
        assert!("gpt".parse::<TeacherKind>().is_err());
    }
}
