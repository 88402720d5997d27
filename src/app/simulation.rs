//! Steps the live `Trainer` in `FixedUpdate` (speed and pause through `Time<Fixed>` /
//! `Time<Virtual>`) and publishes what views draw, including the focused agent's motion.

use std::time::{Duration, Instant};

use bevy::diagnostic::FrameCount;
use bevy::ecs::system::SystemParam;
use bevy::platform::cell::SyncCell;
use bevy::prelude::*;

use super::ppo_worker::UpdateWorker;
use crate::env::grid::{Action, GridWorld, Pos};
use crate::env::scene::EncoderKind;
use crate::metrics::UpdateRecord;
use crate::student::distill_lambda;
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

    /// Takes the trainer back from the update worker.
    pub fn put_back(&mut self, trainer: Box<Trainer>) {
        *self.trainer.get() = Some(trainer);
    }
}

/// What views draw: the trainer's worlds and numbers as of its last step. A copy, so drawing
/// goes on while the trainer is away on the update worker.
#[derive(Resource, Clone, Debug)]
pub struct TrainingSnapshot {
    worlds: Vec<GridWorld>,
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
    pub encoder: EncoderKind,
    /// A PPO update runs on the worker; stepping waits for it.
    pub updating: bool,
    /// The latest update's record (`None` before the first).
    pub latest: Option<UpdateRecord>,
    /// Counts publications, so views redraw only after a change.
    pub generation: u64,
}

impl TrainingSnapshot {
    pub fn of(trainer: &Trainer) -> TrainingSnapshot {
        let mut snapshot = TrainingSnapshot {
            worlds: Vec::new(),
            advice: Vec::new(),
            frames: 0,
            updates: 0,
            window_episodes: 0,
            success_rate: None,
            return_mean: None,
            teacher: TeacherKind::None,
            lambda: 0.0,
            encoder: trainer.config().student.encoder,
            updating: false,
            latest: None,
            generation: 0,
        };
        snapshot.publish(trainer);
        snapshot
    }

    /// Copies what views need from `trainer` (reusing the worlds' allocations).
    pub fn publish(&mut self, trainer: &Trainer) {
        let env = trainer.env();
        self.worlds.resize_with(env.num_envs(), || env.world(0).clone());
        for (index, world) in self.worlds.iter_mut().enumerate() {
            world.clone_from(env.world(index));
        }
        self.advice.clear();
        self.advice.extend(trainer.advice().iter().map(|advice| advice.as_ref().and_then(most_likely_action)));
        self.frames = trainer.frames();
        self.updates = trainer.updates();
        self.window_episodes = trainer.recent_episodes().len();
        self.success_rate = trainer.recent_episodes().success_rate();
        self.return_mean = trainer.recent_episodes().return_mean();
        let config = trainer.config();
        self.teacher = config.teacher;
        self.lambda = distill_lambda(&config.student.distill, trainer.frames());
        self.generation += 1;
    }

    pub fn num_envs(&self) -> usize {
        self.worlds.len()
    }

    /// Env `env`'s world, or the last env's for an index out of range.
    pub fn world(&self, env: usize) -> &GridWorld {
        // A scene has at least one env (the scene loader checks), so the index is valid.
        &self.worlds[env.min(self.worlds.len().saturating_sub(1))]
    }
}

fn most_likely_action(probs: &[f32; Action::COUNT]) -> Option<Action> {
    let best = (0..probs.len()).fold(0, |best, index| if probs[index] > probs[best] { index } else { best });
    Action::from_index(best)
}

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
    fn ticks_per_sec(self) -> f64 {
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

    /// "watch, 5 steps/s per env", for the header.
    pub fn label(self) -> String {
        match self {
            Speed::Watch => format!("watch, {} steps/s per env", Speed::Watch.ticks_per_sec()),
            Speed::Fast => format!("fast, {} steps/s per env", Speed::Fast.ticks_per_sec()),
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

/// Wall time `Max` may spend stepping per rendered frame, leaving the rest to drawing.
const MAX_SPEED_FRAME_BUDGET: Duration = Duration::from_millis(8);

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
    fn snap(env: usize, world: &GridWorld) -> AgentMotion {
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
        let motion = AgentMotion::snap(0, app.world().resource::<TrainingSnapshot>().world(0));
        let teacher = app.world().resource::<TrainingSnapshot>().teacher;
        app.insert_resource(Time::<Fixed>::from_hz(self.speed.ticks_per_sec()))
            .insert_resource(self.speed)
            .insert_resource(WantedTeacher(teacher))
            .init_resource::<FocusedEnv>()
            .insert_resource(motion)
            .add_message::<EpisodeEnded>()
            .add_systems(FixedUpdate, step_trainer)
            .add_systems(Update, (speed_and_pause_keys, teacher_key, snap_motion_on_focus_change));
    }
}

/// What `step_trainer` reads besides the trainer.
#[derive(SystemParam)]
struct StepContext<'w> {
    worker: Res<'w, UpdateWorker>,
    wanted_teacher: Res<'w, WantedTeacher>,
    focus: Res<'w, FocusedEnv>,
    speed: Res<'w, Speed>,
    frame: Res<'w, FrameCount>,
}

/// One tick: one trainer step, or at `Max` as many as fit in the frame's budget; a full
/// rollout goes to the update worker and stepping waits until it comes back. At `Max` only
/// the first tick of a frame steps: on a slow frame `FixedUpdate` runs several ticks to
/// catch up, and stepping in each would slow the next frame further.
fn step_trainer(
    mut live: ResMut<LiveTrainer>,
    mut snapshot: ResMut<TrainingSnapshot>,
    mut motion: ResMut<AgentMotion>,
    mut ended: MessageWriter<EpisodeEnded>,
    mut exit: MessageWriter<AppExit>,
    context: StepContext,
    mut last_max_frame: Local<Option<u32>>,
) {
    let StepContext { worker, wanted_teacher, focus, speed, frame } = context;
    if *speed == Speed::Max {
        if *last_max_frame == Some(frame.0) {
            return;
        }
        *last_max_frame = Some(frame.0);
    }
    let live = &mut *live;
    let Some(trainer) = live.trainer.get().as_mut() else {
        return; // the update worker has it
    };
    trainer.set_teacher(wanted_teacher.0);
    let focused = focus.0.min(trainer.env().num_envs() - 1);
    let started = Instant::now();
    let mut steps = 0;
    let rollout_full = loop {
        let before = AgentPose::of(trainer.env().world(focused));
        let full = match trainer.step() {
            Ok(full) => full,
            Err(error) => {
                error!("training step failed: {error}");
                exit.write(AppExit::error());
                return;
            }
        };
        announce_episodes(trainer, &mut live.episodes_announced, &mut ended);
        steps += 1;
        let world = trainer.env().world(focused);
        let episode_restarted = world.step_count == 0;
        *motion = if episode_restarted || *speed == Speed::Max {
            // A new episode (or a blur of steps) jumps rather than slides.
            AgentMotion::snap(focused, world)
        } else {
            AgentMotion { env: focused, from: before, to: AgentPose::of(world) }
        };
        if full || *speed != Speed::Max || started.elapsed() >= MAX_SPEED_FRAME_BUDGET || steps >= 10_000 {
            break full;
        }
    };
    snapshot.publish(trainer);
    if rollout_full && let Some(trainer) = live.trainer.get().take() {
        match worker.start_update(trainer) {
            Ok(()) => snapshot.updating = true,
            Err(trainer) => {
                error!("the PPO update worker is gone");
                live.put_back(trainer);
                exit.write(AppExit::error());
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

/// Space pauses; `+` / `-` change speed. Typed characters suit any layout; the physical
/// `=`/`-` keys and the keypad count as well.
fn speed_and_pause_keys(
    keys: Res<ButtonInput<KeyCode>>,
    characters: Res<ButtonInput<bevy::input::keyboard::Key>>,
    mut speed: ResMut<Speed>,
    mut fixed: ResMut<Time<Fixed>>,
    mut virtual_time: ResMut<Time<Virtual>>,
) {
    use bevy::input::keyboard::Key;
    if keys.just_pressed(KeyCode::Space) {
        if virtual_time.is_paused() {
            virtual_time.unpause();
        } else {
            virtual_time.pause();
        }
    }
    let typed = |text: &str| characters.just_pressed(Key::Character(text.into()));
    let pressed = |codes: [KeyCode; 2]| codes.iter().any(|&code| keys.just_pressed(code));
    let new_speed = if typed("+") || typed("=") || pressed([KeyCode::Equal, KeyCode::NumpadAdd]) {
        speed.faster()
    } else if typed("-") || pressed([KeyCode::Minus, KeyCode::NumpadSubtract]) {
        speed.slower()
    } else {
        *speed
    };
    if new_speed != *speed {
        *speed = new_speed;
        fixed.set_timestep_hz(new_speed.ticks_per_sec());
    }
}

/// `T` turns the teacher off and back on (the oracle: the only teacher the app offers yet).
fn teacher_key(keys: Res<ButtonInput<KeyCode>>, mut wanted: ResMut<WantedTeacher>) {
    if keys.just_pressed(KeyCode::KeyT) {
        wanted.0 = match wanted.0 {
            TeacherKind::None => TeacherKind::Oracle,
            TeacherKind::Oracle => TeacherKind::None,
        };
    }
}

fn snap_motion_on_focus_change(
    focus: Res<FocusedEnv>,
    snapshot: Res<TrainingSnapshot>,
    mut motion: ResMut<AgentMotion>,
) {
    if focus.is_changed() && motion.env != focus.0 && focus.0 < snapshot.num_envs() {
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
        assert_eq!(Speed::Max.faster(), Speed::Max);
        assert_eq!(Speed::Max.slower(), Speed::Fast);
        assert_eq!(Speed::from_name("max"), Some(Speed::Max));
        assert_eq!(Speed::from_name("slow"), None);
    }
}
