//! Steps the live `Trainer` in `FixedUpdate` (speed and pause through `Time<Fixed>` /
//! `Time<Virtual>`) and publishes what views draw, including the focused agent's motion.

use std::time::{Duration, Instant};

use bevy::diagnostic::FrameCount;
use bevy::ecs::system::SystemParam;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;

use super::feedback_view::FeedbackView;
use super::ppo_worker::UpdateWorker;
use super::teacher_view::TeacherView;
use crate::env::embodied::EmbodiedEnv;
use crate::env::grid::{Action, GridWorld, Pos};
use crate::env::scene::EncoderKind;
use crate::metrics::UpdateRecord;
use crate::training::{TeacherKind, Trainer};

/// The trainer between PPO updates; empty while the update worker has it.
#[derive(Resource)]
pub struct LiveTrainer {
    // `Trainer` is `Send` but not `Sync` (its teacher is a `Box<dyn TeacherPolicy>`, a `Send`
    // trait); `SyncCell` allows only exclusive access, which is all the stepping needs. Boxed,
    // so the channels to the update worker move a pointer.
    trainer: SyncCell<Option<Box<Trainer>>>,
    /// Episodes already announced as `EpisodeEnded`.
    episodes_announced: u64,
}

impl LiveTrainer {
    pub fn new(trainer: Trainer) -> LiveTrainer {
        let episodes_announced = trainer.episodes();
        LiveTrainer { trainer: SyncCell::new(Some(Box::new(trainer))), episodes_announced }
    }

    /// Hands the trainer out (to the update worker), if it is here.
    pub fn take(&mut self) -> Option<Box<Trainer>> {
        self.trainer.get().take()
    }

    /// Takes the trainer back from the update worker.
    pub fn put_back(&mut self, trainer: Box<Trainer>) {
        *self.trainer.get() = Some(trainer);
    }

    /// The trainer, unless the update worker has it.
    pub fn trainer_mut(&mut self) -> Option<&mut Trainer> {
        self.trainer.get().as_mut().map(|trainer| &mut **trainer)
    }

    /// Puts a new run in place of the old (reset, loaded checkpoint, another scene).
    pub fn replace(&mut self, trainer: Trainer) {
        self.episodes_announced = trainer.episodes();
        *self.trainer.get() = Some(Box::new(trainer));
    }
}

/// What views draw: the trainer's worlds and numbers as of its last step. A copy, so drawing
/// goes on while the trainer is away on the update worker.
#[derive(Resource, Clone, Debug)]
pub struct TrainingSnapshot {
    worlds: Vec<GridWorld>,
    /// The envs of an embodied scene (`worlds` is empty then).
    embodied: Vec<EmbodiedEnv>,
    /// The teacher's most likely action per env (`None`: no advice).
    pub advice: Vec<Option<Action>>,
    pub frames: u64,
    pub updates: u64,
    /// Episodes the rates below cover (at most the last 100).
    pub window_episodes: usize,
    /// Over those episodes, as the update records compute them.
    pub success_rate: Option<f64>,
    pub return_mean: Option<f64>,
    pub teacher: TeacherKind,
    /// The distillation weight the next update would use.
    pub lambda: f64,
    /// `lambda` is set by hand (the run tab's override), not by the schedule.
    pub lambda_overridden: bool,
    pub encoder: EncoderKind,
    /// A PPO update runs on the worker; stepping waits for it.
    pub updating: bool,
    /// The latest update's record (`None` before the first).
    pub latest: Option<UpdateRecord>,
    /// Counts publications, so views redraw only after a change.
    pub generation: u64,
    /// When it was last published.
    pub published_at: Instant,
    /// What the student reports back to the teacher (the feedback panel).
    pub feedback: FeedbackView,
    /// The env the user drives (manual control), as the trainer last had it.
    pub manual: Option<usize>,
}

impl TrainingSnapshot {
    pub fn of(trainer: &Trainer) -> TrainingSnapshot {
        let mut snapshot = TrainingSnapshot {
            worlds: Vec::new(),
            embodied: Vec::new(),
            advice: Vec::new(),
            frames: 0,
            updates: 0,
            window_episodes: 0,
            success_rate: None,
            return_mean: None,
            teacher: TeacherKind::None,
            lambda: 0.0,
            lambda_overridden: false,
            encoder: trainer.config().student.encoder,
            updating: false,
            latest: None,
            generation: 0,
            published_at: Instant::now(),
            feedback: FeedbackView::default(),
            manual: None,
        };
        snapshot.publish(trainer);
        snapshot
    }

    /// Copies what views need from `trainer` (reusing the worlds' allocations).
    pub fn publish(&mut self, trainer: &Trainer) {
        let env = trainer.env();
        if let Some(first) = env.embodied(0) {
            self.embodied.resize_with(env.num_envs(), || first.clone());
            for (index, copy) in self.embodied.iter_mut().enumerate() {
                if let Some(embodied) = env.embodied(index) {
                    copy.clone_from(embodied);
                }
            }
        } else {
            self.worlds.resize_with(env.num_envs(), || env.world(0).clone());
            for (index, world) in self.worlds.iter_mut().enumerate() {
                world.clone_from(env.world(index));
            }
        }
        self.advice.clear();
        self.advice.extend(trainer.advice().iter().map(|advice| advice.as_ref().and_then(most_likely_action)));
        self.frames = trainer.frames();
        self.updates = trainer.updates();
        self.window_episodes = trainer.recent_episodes().len();
        self.success_rate = trainer.recent_episodes().success_rate();
        self.return_mean = trainer.recent_episodes().return_mean();
        self.teacher = trainer.config().teacher;
        self.lambda = trainer.distill_lambda();
        self.lambda_overridden = trainer.lambda_override().is_some();
        self.manual = trainer.manual_env();
        self.feedback.capture(trainer);
        self.generation += 1;
        self.published_at = Instant::now();
    }

    pub fn num_envs(&self) -> usize {
        self.worlds.len().max(self.embodied.len())
    }

    /// Whether the envs are embodied apartments (the grid views stay away).
    pub fn is_embodied(&self) -> bool {
        !self.embodied.is_empty()
    }

    /// Env `env`'s embodied env, or the last env's for an index out of range (embodied scenes).
    pub fn embodied(&self, env: usize) -> Option<&EmbodiedEnv> {
        self.embodied.get(env.min(self.embodied.len().saturating_sub(1)))
    }

    /// The cells the layout sizes the views by: the grid, or the apartment in half-metre squares.
    pub fn layout_cells(&self) -> (usize, usize) {
        match self.embodied.first() {
            Some(env) => {
                let bounds = env.world.plan().bounds;
                ((bounds.width() / 0.5).ceil() as usize, (bounds.depth() / 0.5).ceil() as usize)
            }
            None => {
                let world = self.world(0);
                (world.width(), world.height())
            }
        }
    }

    /// The env under manual control as of the last publication, if any.
    pub fn manual_env(&self) -> Option<usize> {
        self.manual
    }

    /// Env `env`'s grid world, or the last env's for an index out of range (grid scenes only:
    /// the grid views run only for them).
    pub fn world(&self, env: usize) -> &GridWorld {
        // A scene has at least one env (the scene loader checks), so the index is valid.
        &self.worlds[env.min(self.worlds.len().saturating_sub(1))]
    }
}

fn most_likely_action(probs: &[f32; Action::COUNT]) -> Option<Action> {
    let best = (0..probs.len()).fold(0, |best, index| if probs[index] > probs[best] { index } else { best });
    Action::from_index(best)
}

/// Manual control as the user wants it (`M`, the arrow keys): the env to drive and the
/// actions not yet handed to the trainer. Applied before each step, like the teacher switch,
/// so keys pressed during an update are kept.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct ManualControl {
    pub env: Option<usize>,
    pub keys: Vec<Action>,
    /// Episodes the user finished, not yet announced (`manual` tells them).
    pub finished: Vec<crate::env::vec_env::EpisodeStats>,
}

/// A distillation weight λ set by hand in the run tab, in force from the next update on
/// (`None`: the scene's schedule). Applied before each step, like the teacher switch.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct LambdaOverride(pub Option<f64>);

/// Who should advise the student; `T` toggles it. Applied before the next step, so a press
/// during an update is not lost.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WantedTeacher(pub TeacherKind);

/// How fast the trainer steps.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Speed {
    /// A few steps a second, smooth enough to follow one agent.
    #[default]
    Watch,
    Fast,
    /// As many steps as a slice of each frame allows.
    Max,
}

impl Speed {
    /// `FixedUpdate` ticks per second; each tick is one trainer step except at `Max`.
    pub fn ticks_per_sec(self) -> f64 {
        match self {
            Speed::Watch => 5.0,
            Speed::Fast => 30.0,
            Speed::Max => 60.0,
        }
    }

    /// `watch`, `fast` or `max` (the `--speed` flag).
    pub fn from_name(name: &str) -> Option<Speed> {
        match name {
            "watch" => Some(Speed::Watch),
            "fast" => Some(Speed::Fast),
            "max" => Some(Speed::Max),
            _ => None,
        }
    }

    pub fn faster(self) -> Speed {
        match self {
            Speed::Watch => Speed::Fast,
            Speed::Fast | Speed::Max => Speed::Max,
        }
    }

    pub fn slower(self) -> Speed {
        match self {
            Speed::Watch | Speed::Fast => Speed::Watch,
            Speed::Max => Speed::Fast,
        }
    }

    /// "watch (5/s)": steps per second of every env, for the header.
    pub fn label(self) -> String {
        match self {
            Speed::Watch => format!("watch ({}/s)", Speed::Watch.ticks_per_sec()),
            Speed::Fast => format!("fast ({}/s)", Speed::Fast.ticks_per_sec()),
            Speed::Max => "max".to_owned(),
        }
    }

    /// How long an episode's end flashes: shorter when episodes end often, so frames show
    /// the latest outcomes rather than a constant glow.
    pub fn flash_secs(self) -> f32 {
        match self {
            Speed::Watch => 0.7,
            Speed::Fast => 0.3,
            Speed::Max => 0.15,
        }
    }
}

/// Wall time `Max` may spend stepping per rendered frame, leaving the rest to drawing: at
/// most this much, less while frames run late (`adapt_budget`).
const MAX_SPEED_FRAME_BUDGET: Duration = Duration::from_millis(8);
/// The least stepping a `Max` frame keeps, so training never stalls behind slow drawing.
const MIN_SPEED_FRAME_BUDGET: Duration = Duration::from_millis(1);
/// The frame time `Max` steers its stepping budget towards: under the 33 ms of 30 fps by
/// enough that the slow frames (those during PPO updates) stay under it too. Measured with
/// `duet bench ui` on 2 cores: 27 ms gave p95 32-33 ms, 25 ms about 30 ms, 23 ms no lower
/// p95 but a third fewer updates.
const FRAME_TIME_TARGET: Duration = Duration::from_millis(25);
/// How often `Max` publishes what the views draw ("a snapshot now and then"): copying the
/// worlds and repainting every thumbnail and the focused view each frame shows nothing an eye
/// can follow at this speed, and the time goes to stepping instead (measured: the same frame
/// times, 30-50% more PPO updates in the app).
const MAX_SPEED_SNAPSHOT_INTERVAL: Duration = Duration::from_millis(100);

/// The next frame's stepping budget at `Max`: the last frame's lateness (or earliness)
/// against `FRAME_TIME_TARGET` comes off (or back onto) the budget, half at a time so one
/// slow frame does not swing it, within `MIN_SPEED_FRAME_BUDGET..=MAX_SPEED_FRAME_BUDGET`.
fn adapt_budget(budget: Duration, last_frame: Duration) -> Duration {
    let error = FRAME_TIME_TARGET.as_secs_f64() - last_frame.as_secs_f64();
    let next = budget.as_secs_f64() + 0.5 * error;
    Duration::from_secs_f64(next.clamp(MIN_SPEED_FRAME_BUDGET.as_secs_f64(), MAX_SPEED_FRAME_BUDGET.as_secs_f64()))
}

/// The env shown large.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FocusedEnv(pub usize);

/// Where the agent stands and faces, as numbers to interpolate.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct AgentPose {
    pub pos: Vec2,
    /// Clockwise quarter turns from facing right (MiniGrid's `agent_dir`).
    pub quarter_turns: f32,
}

impl AgentPose {
    pub fn of(world: &GridWorld) -> AgentPose {
        let Pos { x, y } = world.agent_pos;
        AgentPose { pos: Vec2::new(x as f32, y as f32), quarter_turns: f32::from(world.agent_dir & 3) }
    }

    /// The pose a fraction `t` of the way to `to`, turning the short way round.
    pub fn lerp(self, to: AgentPose, t: f32) -> AgentPose {
        let mut turn = (to.quarter_turns - self.quarter_turns).rem_euclid(4.0);
        if turn > 2.0 {
            turn -= 4.0;
        }
        AgentPose { pos: self.pos.lerp(to.pos, t), quarter_turns: self.quarter_turns + turn * t }
    }
}

/// The focused agent's pose before and after the last step, for drawing in between.
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct AgentMotion {
    pub env: usize,
    pub from: AgentPose,
    pub to: AgentPose,
}

impl AgentMotion {
    pub fn snap(env: usize, world: &GridWorld) -> AgentMotion {
        let pose = AgentPose::of(world);
        AgentMotion { env, from: pose, to: pose }
    }
}

/// An episode just ended (views flash it).
#[derive(Message, Clone, Copy, Debug)]
pub struct EpisodeEnded {
    pub env: usize,
    pub success: bool,
}

/// Steps the trainer and publishes its snapshot; the trainer and snapshot resources are
/// inserted by `app::run` (building the trainer can fail, and is reported before the window).
pub struct SimulationPlugin {
    pub speed: Speed,
}

impl Plugin for SimulationPlugin {
    fn build(&self, app: &mut App) {
        let snapshot = app.world().resource::<TrainingSnapshot>();
        let motion =
            if snapshot.is_embodied() { AgentMotion::default() } else { AgentMotion::snap(0, snapshot.world(0)) };
        let teacher = app.world().resource::<TrainingSnapshot>().teacher;
        let when_on = if teacher == TeacherKind::None { TeacherKind::Oracle } else { teacher };
        app.insert_resource(Time::<Fixed>::from_hz(self.speed.ticks_per_sec()))
            .insert_resource(self.speed)
            .insert_resource(WantedTeacher(teacher))
            .insert_resource(TeacherWhenOn(when_on))
            .init_resource::<FocusedEnv>()
            .init_resource::<LambdaOverride>()
            .init_resource::<ManualControl>()
            .init_resource::<TrainingFault>()
            .insert_resource(motion)
            .add_message::<EpisodeEnded>()
            .add_systems(FixedUpdate, step_trainer)
            .add_systems(
                Update,
                (
                    speed_and_pause_keys,
                    apply_speed,
                    teacher_key,
                    snap_motion_on_focus_change,
                    teacher_view_on_focus_change,
                )
                    .chain(),
            );
    }
}

/// What `step_trainer` reads besides the trainer.
#[derive(SystemParam)]
struct StepContext<'w> {
    worker: Res<'w, UpdateWorker>,
    wanted_teacher: Res<'w, WantedTeacher>,
    lambda_override: Res<'w, LambdaOverride>,
    focus: Res<'w, FocusedEnv>,
    speed: Res<'w, Speed>,
    frame: Res<'w, FrameCount>,
    real_time: Res<'w, Time<Real>>,
}

/// What stepping writes: the views' copies and the messages for flashes and faults.
#[derive(SystemParam)]
pub struct StepOutputs<'w> {
    pub snapshot: ResMut<'w, TrainingSnapshot>,
    pub teacher_view: ResMut<'w, TeacherView>,
    pub motion: ResMut<'w, AgentMotion>,
    pub ended: MessageWriter<'w, EpisodeEnded>,
    pub fault: ResMut<'w, TrainingFault>,
    pub virtual_time: ResMut<'w, Time<Virtual>>,
    pub manual: ResMut<'w, ManualControl>,
}

/// One tick: one trainer step, or at `Max` as many as fit in the frame's budget; a full
/// rollout goes to the update worker and stepping waits until it comes back. At `Max` only
/// the first tick of a frame steps: on a slow frame `FixedUpdate` runs several ticks to
/// catch up, and stepping in each would slow the next frame further.
fn step_trainer(
    mut live: ResMut<LiveTrainer>,
    mut outputs: StepOutputs,
    context: StepContext,
    mut last_max_frame: Local<Option<u32>>,
    mut max_budget: Local<Option<Duration>>,
) {
    let StepContext { worker, wanted_teacher, lambda_override, focus, speed, frame, real_time } = context;
    if *speed == Speed::Max {
        if *last_max_frame == Some(frame.0) {
            return;
        }
        *last_max_frame = Some(frame.0);
    }
    let budget = if *speed == Speed::Max {
        let adapted = adapt_budget(max_budget.unwrap_or(MAX_SPEED_FRAME_BUDGET), real_time.delta());
        *max_budget = Some(adapted);
        Some(adapted)
    } else {
        None
    };
    let wanted = Wanted { teacher: wanted_teacher.0, lambda: lambda_override.0 };
    advance(&mut live, &mut outputs, &worker, wanted, focus.0, budget);
}

/// What the user asked of the run that applies before the next step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wanted {
    pub teacher: TeacherKind,
    pub lambda: Option<f64>,
}

/// Steps the trainer once (or, with a `budget`, as often as fits in it), publishes what the
/// views draw and hands a full rollout to the update worker. A failed step pauses training
/// and reports the fault rather than ending the app.
pub fn advance(
    live: &mut LiveTrainer,
    outputs: &mut StepOutputs,
    worker: &UpdateWorker,
    wanted: Wanted,
    focus: usize,
    budget: Option<Duration>,
) {
    let Some(trainer) = live.trainer.get().as_mut() else {
        return; // the update worker has it
    };
    trainer.set_teacher(wanted.teacher);
    trainer.set_lambda_override(wanted.lambda);
    let focused = focus.min(trainer.env().num_envs() - 1);
    trainer.set_manual_control(outputs.manual.env);
    for action in outputs.manual.keys.drain(..) {
        trainer.queue_manual_action(action);
    }
    let started = Instant::now();
    let mut steps = 0;
    let rollout_full = loop {
        let before = trainer.env().grid(focused).map(AgentPose::of);
        let full = match trainer.step() {
            Ok(full) => full,
            Err(error) => {
                outputs.fault.report(format!("training step failed: {error}"));
                outputs.virtual_time.pause();
                return;
            }
        };
        announce_episodes(trainer, &mut live.episodes_announced, &mut outputs.ended);
        for episode in trainer.take_manual_episodes() {
            outputs.ended.write(EpisodeEnded { env: episode.env, success: episode.success });
            outputs.manual.finished.push(episode);
        }
        outputs.teacher_view.follow_step(trainer, focused);
        steps += 1;
        if let (Some(world), Some(before), None) = (trainer.env().grid(focused), before, budget) {
            *outputs.motion = if world.step_count == 0 {
                // A new episode jumps rather than slides.
                AgentMotion::snap(focused, world)
            } else {
                AgentMotion { env: focused, from: before, to: AgentPose::of(world) }
            };
        }
        let out_of_budget = budget.is_none_or(|budget| started.elapsed() >= budget);
        if full || out_of_budget || steps >= 10_000 {
            break full;
        }
    };
    // With a budget (`Max`), views are refreshed now and then; always before an update takes
    // the trainer away.
    let due =
        budget.is_none() || rollout_full || outputs.snapshot.published_at.elapsed() >= MAX_SPEED_SNAPSHOT_INTERVAL;
    if due {
        outputs.snapshot.publish(trainer);
        outputs.teacher_view.capture(trainer, focused);
        // A blur of steps: the agent jumps to where the published picture has it.
        if let (Some(world), Some(_)) = (trainer.env().grid(focused), budget) {
            *outputs.motion = AgentMotion::snap(focused, world);
        }
    }
    if rollout_full && let Some(trainer) = live.trainer.get().take() {
        match worker.start_update(trainer) {
            Ok(()) => outputs.snapshot.updating = true,
            Err(trainer) => {
                live.put_back(trainer);
                outputs.fault.report("the PPO update worker is gone; training is paused".to_owned());
                outputs.virtual_time.pause();
            }
        }
    }
}

/// Sends `EpisodeEnded` for the episodes the trainer finished since the last call.
fn announce_episodes(trainer: &Trainer, announced: &mut u64, ended: &mut MessageWriter<EpisodeEnded>) {
    let new = trainer.episodes().saturating_sub(*announced);
    *announced = trainer.episodes();
    let recent = trainer.recent_episodes();
    // More than the window holds (a huge step) loses the oldest flashes only.
    let skip = recent.len().saturating_sub(new as usize);
    for episode in recent.episodes().skip(skip) {
        ended.write(EpisodeEnded { env: episode.env, success: episode.success });
    }
}

/// Whether egui is taking the keyboard (the prompt editor has focus): shortcuts then stay
/// quiet, so typing a space does not pause training.
pub fn typing_in_ui(egui_input: &Option<Res<EguiWantsInput>>) -> bool {
    egui_input.as_ref().is_some_and(|input| input.wants_keyboard_input())
}

/// Space pauses; `+` / `-` change speed. Typed characters suit any layout; the physical
/// `=`/`-` keys and the keypad count as well.
fn speed_and_pause_keys(
    keys: Res<ButtonInput<KeyCode>>,
    characters: Res<ButtonInput<bevy::input::keyboard::Key>>,
    egui_input: Option<Res<EguiWantsInput>>,
    mut speed: ResMut<Speed>,
    mut virtual_time: ResMut<Time<Virtual>>,
) {
    use bevy::input::keyboard::Key;
    if typing_in_ui(&egui_input) {
        return;
    }
    if keys.just_pressed(KeyCode::Space) {
        if virtual_time.is_paused() {
            virtual_time.unpause();
        } else {
            virtual_time.pause();
        }
    }
    let typed = |text: &str| characters.just_pressed(Key::Character(text.into()));
    let pressed = |codes: [KeyCode; 2]| codes.iter().any(|&code| keys.just_pressed(code));
    if typed("+") || typed("=") || pressed([KeyCode::Equal, KeyCode::NumpadAdd]) {
        speed.set_if_neq(speed.faster());
    } else if typed("-") || pressed([KeyCode::Minus, KeyCode::NumpadSubtract]) {
        speed.set_if_neq(speed.slower());
    }
}

/// Keeps the fixed timestep in step with the speed, however it was changed (keys, panel).
fn apply_speed(speed: Res<Speed>, mut fixed: ResMut<Time<Fixed>>) {
    if speed.is_changed() {
        fixed.set_timestep_hz(speed.ticks_per_sec());
    }
}

/// The teacher `T` (or the panel's switch) turns back on.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TeacherWhenOn(pub TeacherKind);

impl WantedTeacher {
    /// Off if on, else the teacher the app advises with.
    pub fn toggle(&mut self, when_on: TeacherWhenOn) {
        self.0 = if self.0 == TeacherKind::None { when_on.0 } else { TeacherKind::None };
    }
}

/// `T` turns the teacher off and back on.
fn teacher_key(
    keys: Res<ButtonInput<KeyCode>>,
    egui_input: Option<Res<EguiWantsInput>>,
    when_on: Res<TeacherWhenOn>,
    mut wanted: ResMut<WantedTeacher>,
) {
    if keys.just_pressed(KeyCode::KeyT) && !typing_in_ui(&egui_input) {
        wanted.toggle(*when_on);
    }
}

/// A failure training could not go on from (a failed step or update, a panic in the PPO
/// thread): shown in the panels; training pauses until the user resumes, resets or loads.
#[derive(Resource, Clone, Debug, Default)]
pub struct TrainingFault {
    pub message: Option<String>,
}

impl TrainingFault {
    pub fn report(&mut self, message: String) {
        error!("{message}");
        self.message = Some(message);
    }
}

/// A new focus while paused or updating still shows that env's teacher view.
fn teacher_view_on_focus_change(
    focus: Res<FocusedEnv>,
    mut live: ResMut<LiveTrainer>,
    mut teacher_view: ResMut<TeacherView>,
) {
    if focus.is_changed()
        && teacher_view.env != focus.0
        && let Some(trainer) = live.trainer_mut()
    {
        teacher_view.capture(trainer, focus.0);
    }
}

fn snap_motion_on_focus_change(
    focus: Res<FocusedEnv>,
    snapshot: Res<TrainingSnapshot>,
    mut motion: ResMut<AgentMotion>,
) {
    if focus.is_changed() && motion.env != focus.0 && focus.0 < snapshot.num_envs() && !snapshot.is_embodied() {
        *motion = AgentMotion::snap(focus.0, snapshot.world(focus.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poses_turn_the_short_way() {
        let pose = |x: f32, quarter_turns: f32| AgentPose { pos: Vec2::new(x, 0.0), quarter_turns };
        // Facing up (3) to facing right (0) is a quarter turn clockwise, not three back.
        assert_eq!(pose(0.0, 3.0).lerp(pose(0.0, 0.0), 0.5).quarter_turns, 3.5);
        assert_eq!(pose(0.0, 0.0).lerp(pose(0.0, 3.0), 0.5).quarter_turns, -0.5);
        assert_eq!(pose(1.0, 1.0).lerp(pose(2.0, 1.0), 0.25), pose(1.25, 1.0));
    }

    #[test]
    fn speeds_step_up_and_down_and_stop_at_the_ends() {
        assert_eq!(Speed::Watch.slower(), Speed::Watch);
        assert_eq!(Speed::Watch.faster().faster(), Speed::Max);
        // The stepping budget gives way to slow frames and comes back on fast ones.
        let ms = Duration::from_millis;
        let near = |a: Duration, b: Duration| assert!(a.abs_diff(b) < Duration::from_micros(1), "{a:?} vs {b:?}");
        let target = FRAME_TIME_TARGET;
        near(adapt_budget(ms(8), target), ms(8));
        near(adapt_budget(ms(8), target + ms(8)), ms(4));
        near(adapt_budget(ms(4), ms(100)), MIN_SPEED_FRAME_BUDGET);
        near(adapt_budget(ms(4), target - ms(6)), ms(7));
        near(adapt_budget(ms(7), ms(10)), MAX_SPEED_FRAME_BUDGET);
        assert_eq!(Speed::Max.faster(), Speed::Max);
        assert_eq!(Speed::Max.slower(), Speed::Fast);
        assert_eq!(Speed::from_name("max"), Some(Speed::Max));
        assert_eq!(Speed::from_name("slow"), None);
    }
}
