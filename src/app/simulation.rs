//! Steps the scene's `VecEnv` in `FixedUpdate` with the scripted policy; speed and pause
//! through `Time<Fixed>` / `Time<Virtual>`, and the focused agent's motion for interpolation.

use std::time::{Duration, Instant};

use bevy::diagnostic::FrameCount;
use bevy::prelude::*;

use super::run_stats::RunStats;
use super::scripted_policy::ScriptedPolicy;
use crate::env::grid::{GridWorld, Pos};
use crate::env::vec_env::{VecEnv, VecEnvConfig};

/// The envs, the policy driving them and the run's statistics.
#[derive(Resource)]
pub struct Simulation {
    pub envs: VecEnv,
    pub policy: ScriptedPolicy,
    pub stats: RunStats,
    /// Counts `VecEnv` steps, so views redraw only after a change.
    pub generation: u64,
}

/// How fast the envs step.
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
    /// `FixedUpdate` ticks per second; each tick is one `VecEnv` step except at `Max`.
    fn ticks_per_sec(self) -> f64 {
        match self {
            Speed::Watch => 5.0,
            Speed::Fast => 30.0,
            Speed::Max => 60.0,
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

/// Builds the envs from the scene and steps them.
pub struct SimulationPlugin {
    pub config: VecEnvConfig,
    pub seed: u64,
}

impl Plugin for SimulationPlugin {
    fn build(&self, app: &mut App) {
        let envs = VecEnv::new(self.config.clone());
        let policy = ScriptedPolicy::new(envs.num_envs(), self.seed);
        let motion = AgentMotion::snap(0, envs.world(0));
        app.insert_resource(Simulation { envs, policy, stats: RunStats::default(), generation: 0 })
            .insert_resource(Time::<Fixed>::from_hz(Speed::default().ticks_per_sec()))
            .init_resource::<Speed>()
            .init_resource::<FocusedEnv>()
            .insert_resource(motion)
            .add_message::<EpisodeEnded>()
            .add_systems(FixedUpdate, step_envs)
            .add_systems(Update, (speed_and_pause_keys, snap_motion_on_focus_change, record_step_rate));
    }
}

/// One tick: one `VecEnv` step, or at `Max` as many as fit in the frame's budget. At `Max`
/// only the first tick of a frame steps: on a slow frame `FixedUpdate` runs several ticks
/// to catch up, and stepping in each would slow the next frame further.
fn step_envs(
    mut simulation: ResMut<Simulation>,
    mut motion: ResMut<AgentMotion>,
    mut ended: MessageWriter<EpisodeEnded>,
    focus: Res<FocusedEnv>,
    speed: Res<Speed>,
    frame: Res<FrameCount>,
    mut last_max_frame: Local<Option<u32>>,
) {
    if *speed == Speed::Max {
        if *last_max_frame == Some(frame.0) {
            return;
        }
        *last_max_frame = Some(frame.0);
    }
    let simulation = &mut *simulation;
    let focused = focus.0.min(simulation.envs.num_envs() - 1);
    let started = Instant::now();
    let mut steps = 0;
    loop {
        let before = AgentPose::of(simulation.envs.world(focused));
        let actions = simulation.policy.act(&simulation.envs);
        simulation.envs.step(&actions);
        simulation.policy.observe_step(&simulation.envs);
        for episode in simulation.envs.drain_finished() {
            simulation.stats.record_episode(&episode);
            ended.write(EpisodeEnded { env: episode.env, success: episode.success });
        }
        simulation.generation += 1;
        steps += 1;
        let world = simulation.envs.world(focused);
        let episode_restarted = world.step_count == 0;
        *motion = if episode_restarted || *speed == Speed::Max {
            // A new episode (or a blur of steps) jumps rather than slides.
            AgentMotion::snap(focused, world)
        } else {
            AgentMotion { env: focused, from: before, to: AgentPose::of(world) }
        };
        if *speed != Speed::Max || started.elapsed() >= MAX_SPEED_FRAME_BUDGET || steps >= 10_000 {
            break;
        }
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

fn snap_motion_on_focus_change(focus: Res<FocusedEnv>, simulation: Res<Simulation>, mut motion: ResMut<AgentMotion>) {
    if focus.is_changed() && motion.env != focus.0 && focus.0 < simulation.envs.num_envs() {
        *motion = AgentMotion::snap(focus.0, simulation.envs.world(focus.0));
    }
}

fn record_step_rate(real_time: Res<Time<Real>>, mut simulation: ResMut<Simulation>) {
    let total_steps = simulation.envs.total_steps();
    simulation.stats.record_steps(real_time.elapsed_secs_f64(), total_steps);
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
    }
}
