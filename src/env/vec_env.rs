//! N environments (grid worlds or embodied apartments) stepped as one batch: auto-reset,
//! per-env seeded episodes, all observations in one contiguous buffer, optional threads.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::embodied::{self, EmbodiedEnv, FloorPlan};
use super::grid::levels::LevelRng;
use super::grid::{Action, FogOfWar, GridWorld, Level, StepOutcome};

/// Which observation the student gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ObservationKind {
    /// MiniGrid's egocentric `view x view x 3` image.
    #[default]
    Egocentric,
    /// LLM4Teach's whole-grid `W x H x 4` view with a persistent fog of war.
    Historical,
}

/// What every env of a batch is.
#[derive(Clone, Debug, PartialEq)]
pub enum EnvKind {
    /// A grid level (MiniGrid, BabyAI, LLM4Teach).
    Grid(Level),
    /// An embodied apartment running one of its plan's tasks.
    Embodied(EmbodiedSetup),
}

impl EnvKind {
    /// The grid level, for a grid batch.
    pub fn level(&self) -> Option<&Level> {
        match self {
            EnvKind::Grid(level) => Some(level),
            EnvKind::Embodied(_) => None,
        }
    }

    /// The embodied setup, for an embodied batch.
    pub fn embodied(&self) -> Option<&EmbodiedSetup> {
        match self {
            EnvKind::Grid(_) => None,
            EnvKind::Embodied(setup) => Some(setup),
        }
    }

    /// What the scene picker and run records call it ("DoorKey-8x8", "Apartment 1: PickPlace").
    pub fn name(&self) -> String {
        match self {
            EnvKind::Grid(level) => level.name(),
            EnvKind::Embodied(setup) => setup.name(),
        }
    }
}

/// An embodied batch's floor plan and task, loaded (the scene file names the plan).
#[derive(Clone, Debug)]
pub struct EmbodiedSetup {
    /// The plan file, as resolved when the scene loaded.
    pub plan_path: PathBuf,
    pub plan: Arc<FloorPlan>,
    /// The plan's task number (counting from 0).
    pub task: usize,
    /// Distance shaping per metre closed (`EmbodiedEnv::shaping`); None: success reward only.
    pub shaping: Option<f32>,
    /// Whether the student's observation gives the goal's bearing and distance.
    pub goal_compass: bool,
}

impl EmbodiedSetup {
    pub fn name(&self) -> String {
        let task = match self.plan.file.tasks.get(self.task) {
            Some(embodied::TaskSpec::ObjectNav { .. }) => "ObjectNav",
            Some(embodied::TaskSpec::PickPlace { .. }) => "PickPlace",
            None => "no task",
        };
        format!("{}: {task}", self.plan.file.name)
    }

    /// A fresh env of this setup (episode not started).
    pub fn build(&self) -> Result<EmbodiedEnv, String> {
        let mut env = EmbodiedEnv::new(Arc::clone(&self.plan), self.task)?;
        env.shaping = self.shaping;
        Ok(env)
    }
}

/// Plans compare by file, task and switches: two loads of one file are the same setup.
impl PartialEq for EmbodiedSetup {
    fn eq(&self, other: &EmbodiedSetup) -> bool {
        self.plan_path == other.plan_path
            && self.task == other.task
            && self.shaping == other.shaping
            && self.goal_compass == other.goal_compass
    }
}

/// How a batch of environments is built.
#[derive(Clone, Debug, PartialEq)]
pub struct VecEnvConfig {
    pub env: EnvKind,
    pub num_envs: usize,
    pub seed: u64,
    /// Overrides the level's step limit when set.
    pub max_steps: Option<u32>,
    pub observation: ObservationKind,
    /// Worker threads for `step` (1 = step on the caller's thread, deterministic either way).
    pub threads: usize,
}

impl VecEnvConfig {
    /// Grid envs of `level`.
    pub fn new(level: Level, num_envs: usize, seed: u64) -> VecEnvConfig {
        VecEnvConfig::of(EnvKind::Grid(level), num_envs, seed)
    }

    /// Envs of any kind.
    pub fn of(env: EnvKind, num_envs: usize, seed: u64) -> VecEnvConfig {
        VecEnvConfig { env, num_envs, seed, max_steps: None, observation: ObservationKind::Egocentric, threads: 1 }
    }
}

/// A finished episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpisodeStats {
    pub env: usize,
    pub episode_return: f32,
    pub length: u32,
    /// Terminated with a positive reward (the level's success).
    pub success: bool,
    pub truncated: bool,
}

/// One env's state: a grid world, or an embodied env (boxed: it is much larger).
#[derive(Clone, Debug)]
enum SlotWorld {
    Grid(GridWorld),
    Embodied(Box<EmbodiedEnv>),
}

/// One environment of the batch and its own episode stream.
#[derive(Clone, Debug)]
struct EnvSlot {
    world: SlotWorld,
    rng: LevelRng,
    fog: Option<FogOfWar>,
    episode_return: f32,
    episodes: u64,
    /// What the last step returned, and the episode it ended (if any).
    last_outcome: StepOutcome,
    ended: Option<EpisodeStats>,
}

/// Below this many envs per worker, handing work to the pool costs more than it saves.
const MIN_ENVS_PER_TASK: usize = 128;

/// The batch. After `step`, `observations()` holds the observation each env shows now: for
/// envs whose episode just ended, the first observation of their next episode (the ending
/// step's reward and flags are in `rewards()`, `terminated()`, `truncated()`).
pub struct VecEnv {
    config: VecEnvConfig,
    slots: Vec<EnvSlot>,
    observation_len: usize,
    observations: Vec<u8>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    finished: Vec<EpisodeStats>,
    total_steps: u64,
    /// Persistent workers for `threads > 1` (spawning threads per step would cost more
    /// than stepping small batches).
    pool: Option<rayon::ThreadPool>,
}

/// SplitMix64: decorrelates per-env seeds drawn from one run seed.
fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl VecEnv {
    /// Builds and resets every env. The level must already be validated; an embodied
    /// setup's task must exist in its plan (`EmbodiedSetup::build`).
    pub fn new(config: VecEnvConfig) -> VecEnv {
        let num_envs = config.num_envs.max(1);
        let blank = match &config.env {
            EnvKind::Grid(_) => SlotWorld::Grid(GridWorld::new(3, 3)),
            EnvKind::Embodied(setup) => match setup.build() {
                Ok(env) => SlotWorld::Embodied(Box::new(env)),
                Err(error) => panic!("an embodied setup whose task does not exist: {error}"),
            },
        };
        let slots: Vec<EnvSlot> = (0..num_envs)
            .map(|i| {
                let rng = LevelRng::new(mix_seed(config.seed, i as u64));
                let mut slot = EnvSlot {
                    world: blank.clone(),
                    rng,
                    fog: None,
                    episode_return: 0.0,
                    episodes: 0,
                    last_outcome: StepOutcome::default(),
                    ended: None,
                };
                reset_slot(&mut slot, &config);
                slot
            })
            .collect();
        let observation_len = match &slots[0].world {
            SlotWorld::Grid(world) => observation_len(world, config.observation),
            SlotWorld::Embodied(_) => embodied::student::OBSERVATION_LEN,
        };
        // A pool that cannot start (thread limits) just means stepping on the caller's thread.
        let pool = (config.threads > 1)
            .then(|| rayon::ThreadPoolBuilder::new().num_threads(config.threads).build().ok())
            .flatten();
        let mut env = VecEnv {
            pool,
            observations: vec![0; observation_len * num_envs],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            finished: Vec::new(),
            total_steps: 0,
            observation_len,
            slots,
            config,
        };
        env.write_all_observations();
        env
    }

    pub fn config(&self) -> &VecEnvConfig {
        &self.config
    }

    pub fn num_envs(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of one env's observation in `observations()`.
    pub fn observation_len(&self) -> usize {
        self.observation_len
    }

    pub fn observations(&self) -> &[u8] {
        &self.observations
    }

    pub fn observation(&self, env: usize) -> &[u8] {
        &self.observations[env * self.observation_len..(env + 1) * self.observation_len]
    }

    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    /// Env `env`'s grid world. Panics on an embodied batch: callers that serve both kinds
    /// ask `grid` or `embodied`.
    pub fn world(&self, env: usize) -> &GridWorld {
        match &self.slots[env].world {
            SlotWorld::Grid(world) => world,
            SlotWorld::Embodied(_) => panic!("env {env} is embodied, not a grid world"),
        }
    }

    /// Env `env`'s grid world, if the batch is a grid one.
    pub fn grid(&self, env: usize) -> Option<&GridWorld> {
        match &self.slots[env].world {
            SlotWorld::Grid(world) => Some(world),
            SlotWorld::Embodied(_) => None,
        }
    }

    /// Env `env`'s embodied env, if the batch is an embodied one.
    pub fn embodied(&self, env: usize) -> Option<&EmbodiedEnv> {
        match &self.slots[env].world {
            SlotWorld::Grid(_) => None,
            SlotWorld::Embodied(env) => Some(env),
        }
    }

    /// Whether the envs are embodied apartments (else grid worlds).
    pub fn is_embodied(&self) -> bool {
        matches!(self.config.env, EnvKind::Embodied(_))
    }

    /// Cells the student has seen this episode, where the historical view tracks them.
    pub fn fog(&self, env: usize) -> Option<&FogOfWar> {
        self.slots[env].fog.as_ref()
    }

    /// Env steps taken since construction (over all envs).
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// Episodes that ended since the last call.
    pub fn drain_finished(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.finished)
    }

    /// Starts a fresh episode in every env.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            reset_slot(slot, &self.config);
        }
        self.write_all_observations();
    }

    /// Replaces one env's grid world (manual control, tests); its observation is refreshed.
    pub fn set_world(&mut self, env: usize, world: GridWorld) {
        let slot = &mut self.slots[env];
        if let Some(fog) = slot.fog.as_mut() {
            fog.reset(&world);
        }
        slot.world = SlotWorld::Grid(world);
        let len = self.observation_len;
        write_observation(slot, &self.config, &mut self.observations[env * len..(env + 1) * len]);
    }

    /// Steps every env with its action; ended episodes reset at once. The result does not
    /// depend on the number of threads.
    pub fn step(&mut self, actions: &[Action]) {
        assert_eq!(actions.len(), self.slots.len(), "one action per env");
        let len = self.observation_len;
        let VecEnv { config, slots, observations, pool, .. } = self;
        let config = &*config;
        match pool {
            Some(pool) if slots.len() >= 2 * MIN_ENVS_PER_TASK => {
                let chunk = slots.len().div_ceil(pool.current_num_threads() * 4).max(MIN_ENVS_PER_TASK);
                pool.install(|| {
                    slots
                        .par_chunks_mut(chunk)
                        .zip(observations.par_chunks_mut(chunk * len))
                        .zip(actions.par_chunks(chunk))
                        .for_each(|((slots, observations), actions)| {
                            for ((slot, obs), &action) in
                                slots.iter_mut().zip(observations.chunks_mut(len)).zip(actions)
                            {
                                step_slot(slot, action, config, obs);
                            }
                        });
                });
            }
            _ => {
                for ((slot, obs), &action) in slots.iter_mut().zip(observations.chunks_mut(len)).zip(actions) {
                    step_slot(slot, action, config, obs);
                }
            }
        }
        self.collect_outcomes(None);
        self.total_steps += self.slots.len() as u64;
    }

    /// Steps every env but `waiting`, which stands still (no step counted, no time passes
    /// for it: manual control waiting for a key); its reward and flags read 0 and false.
    pub fn step_except(&mut self, actions: &[Action], waiting: usize) {
        assert_eq!(actions.len(), self.slots.len(), "one action per env");
        let len = self.observation_len;
        // One env at a time: manual control runs with a handful of envs, and the result is the
        // same as `step`'s for every env that moves.
        for (i, ((slot, obs), &action)) in
            self.slots.iter_mut().zip(self.observations.chunks_mut(len)).zip(actions).enumerate()
        {
            if i != waiting {
                step_slot(slot, action, &self.config, obs);
            }
        }
        self.collect_outcomes(Some(waiting));
        self.total_steps += self.slots.len().saturating_sub(1) as u64;
    }

    /// Reads each env's last step into the reward and flag columns and gathers ended episodes;
    /// the `waiting` env, which did not step, reads 0 and false.
    fn collect_outcomes(&mut self, waiting: Option<usize>) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if Some(i) == waiting {
                self.rewards[i] = 0.0;
                self.terminated[i] = false;
                self.truncated[i] = false;
                continue;
            }
            let outcome = slot.last_outcome;
            self.rewards[i] = outcome.reward;
            self.terminated[i] = outcome.terminated;
            self.truncated[i] = outcome.truncated;
            if let Some(mut episode) = slot.ended.take() {
                episode.env = i;
                self.finished.push(episode);
            }
        }
    }

    fn write_all_observations(&mut self) {
        let len = self.observation_len;
        for (slot, obs) in self.slots.iter_mut().zip(self.observations.chunks_mut(len)) {
            write_observation(slot, &self.config, obs);
        }
    }
}

fn observation_len(world: &GridWorld, kind: ObservationKind) -> usize {
    match kind {
        ObservationKind::Egocentric => world.observation_len(),
        ObservationKind::Historical => world.width() * world.height() * 4,
    }
}

fn reset_slot(slot: &mut EnvSlot, config: &VecEnvConfig) {
    slot.episode_return = 0.0;
    slot.episodes += 1;
    let level = match (&mut slot.world, &config.env) {
        (SlotWorld::Grid(world), EnvKind::Grid(level)) => {
            *world = level.generate_with(&mut slot.rng);
            world
        }
        (SlotWorld::Embodied(env), EnvKind::Embodied(_)) => {
            // One 64-bit episode seed from the slot's stream, so episodes differ and replay.
            let high = slot.rng.rand_usize(0, 1 << 32) as u64;
            let seed = high << 32 | slot.rng.rand_usize(0, 1 << 32) as u64;
            env.reset(seed);
            if let Some(max_steps) = config.max_steps {
                env.max_steps = max_steps;
            }
            return;
        }
        _ => unreachable!("a slot's world always has its batch's kind"),
    };
    if let Some(max_steps) = config.max_steps {
        level.max_steps = max_steps;
    }
    if config.observation == ObservationKind::Historical {
        match slot.fog.as_mut() {
            Some(fog) => fog.reset(level),
            None => slot.fog = Some(FogOfWar::for_world(level)),
        }
    }
}

fn write_observation(slot: &mut EnvSlot, config: &VecEnvConfig, out: &mut [u8]) {
    match (&slot.world, config.observation) {
        (SlotWorld::Grid(world), ObservationKind::Egocentric) => world.write_observation(out),
        (SlotWorld::Grid(world), ObservationKind::Historical) => {
            if let Some(fog) = slot.fog.as_mut() {
                fog.write(world, out);
            }
        }
        (SlotWorld::Embodied(env), _) => {
            let compass = config.env.embodied().is_some_and(|setup| setup.goal_compass);
            embodied::student::write_observation(env, compass, out);
        }
    }
}

/// Steps one env, resets it when the episode ended, and writes its next observation. An
/// embodied env takes the action of the same index (`embodied::student::ACTIONS`).
fn step_slot(slot: &mut EnvSlot, action: Action, config: &VecEnvConfig, obs: &mut [u8]) {
    let (outcome, length, success) = match &mut slot.world {
        SlotWorld::Grid(world) => {
            let outcome = world.step(action);
            (outcome, world.step_count, outcome.terminated && outcome.reward > 0.0)
        }
        SlotWorld::Embodied(env) => {
            let action = embodied::student::action_of_index(action as usize).unwrap_or(embodied::Action::Stop);
            let result = env.step(action);
            let outcome = StepOutcome {
                reward: result.reward,
                terminated: result.done && !result.truncated,
                truncated: result.truncated,
            };
            (outcome, env.steps, result.success)
        }
    };
    slot.episode_return += outcome.reward;
    slot.last_outcome = outcome;
    if outcome.done() {
        slot.ended = Some(EpisodeStats {
            env: 0,
            episode_return: slot.episode_return,
            length,
            success,
            truncated: outcome.truncated && !outcome.terminated,
        });
        reset_slot(slot, config);
    } else if let (Some(fog), SlotWorld::Grid(world)) = (slot.fog.as_mut(), &slot.world) {
        fog.reveal(world);
    }
    write_observation(slot, config, obs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_actions(n: usize, seed: u64) -> Vec<Vec<Action>> {
        let mut rng = LevelRng::new(seed);
        (0..n).map(|_| (0..300).map(|_| Action::from_index(rng.rand_usize(0, 7)).unwrap()).collect()).collect()
    }

    #[test]
    fn same_seed_same_run_with_any_thread_count() {
        let level = Level::DoorKey { size: 5 };
        // Enough envs that the pool really splits the work.
        let mut one = VecEnv::new(VecEnvConfig::new(level.clone(), 300, 42));
        let mut config = VecEnvConfig::new(level, 300, 42);
        config.threads = 3;
        let mut many = VecEnv::new(config);
        for actions in random_actions(600, 1) {
            one.step(&actions);
            many.step(&actions);
            assert_eq!(one.observations(), many.observations());
            assert_eq!(one.rewards(), many.rewards());
        }
        assert_eq!(one.drain_finished(), many.drain_finished());
    }

    #[test]
    fn episodes_auto_reset_and_are_reported() {
        let mut config = VecEnvConfig::new(Level::Empty { size: 5 }, 4, 0);
        config.max_steps = Some(5);
        let mut env = VecEnv::new(config);
        for _ in 0..5 {
            env.step(&[Action::Left; 4]);
        }
        let finished = env.drain_finished();
        assert_eq!(finished.len(), 4);
        assert!(finished.iter().all(|e| e.truncated && e.length == 5 && !e.success));
        assert!(env.truncated().iter().all(|&t| t));
        assert_eq!(env.world(0).step_count, 0, "fresh episode after the limit");
        assert_eq!(env.total_steps(), 20);
    }

    #[test]
    fn a_waiting_env_stands_still_while_the_others_step_as_usual() {
        let level = Level::DoorKey { size: 5 };
        let mut all = VecEnv::new(VecEnvConfig::new(level.clone(), 3, 9));
        let mut but_one = VecEnv::new(VecEnvConfig::new(level, 3, 9));
        let before = but_one.world(1).clone();
        for actions in random_actions(40, 2).iter().map(|a| &a[..3]) {
            all.step(actions);
            but_one.step_except(actions, 1);
            for env in [0, 2] {
                assert_eq!(all.observation(env), but_one.observation(env));
                assert_eq!(all.rewards()[env], but_one.rewards()[env]);
            }
            assert_eq!((but_one.rewards()[1], but_one.terminated()[1], but_one.truncated()[1]), (0.0, false, false));
        }
        assert_eq!(but_one.world(1), &before, "the waiting env did not move");
        assert_eq!(but_one.total_steps(), 80);
        let finished = |env: &mut VecEnv| env.drain_finished().into_iter().filter(|e| e.env != 1).collect::<Vec<_>>();
        assert_eq!(finished(&mut all), finished(&mut but_one));
    }

    fn apartment(num_envs: usize, seed: u64) -> VecEnvConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenes/floorplans/apartment-1.ron");
        let plan = Arc::new(FloorPlan::load(path).expect("the shipped plan loads"));
        let setup = EmbodiedSetup { plan_path: path.into(), plan, task: 1, shaping: None, goal_compass: true };
        VecEnvConfig::of(EnvKind::Embodied(setup), num_envs, seed)
    }

    #[test]
    fn embodied_batches_step_reset_and_replay_like_grid_ones() {
        let mut config = apartment(300, 5);
        config.max_steps = Some(40);
        let mut one = VecEnv::new(config.clone());
        config.threads = 3;
        let mut many = VecEnv::new(config);
        assert!(one.is_embodied() && one.grid(0).is_none());
        assert_eq!(one.observation_len(), embodied::student::OBSERVATION_LEN);
        // Moves and turns only (no Stop): episodes end at the step limit and start afresh.
        let mut rng = LevelRng::new(8);
        for _ in 0..100 {
            let actions: Vec<Action> = (0..300).map(|_| Action::ALL[rng.rand_usize(0, 3)]).collect();
            one.step(&actions);
            many.step(&actions);
            assert_eq!(one.observations(), many.observations());
        }
        let finished = one.drain_finished();
        assert_eq!(finished, many.drain_finished());
        assert_eq!(finished.len(), 600, "two episodes of 40 steps per env in 100 steps");
        assert!(finished.iter().all(|e| e.truncated && e.length == 40 && !e.success));
        let first = one.embodied(0).expect("embodied").steps;
        assert_eq!(first, 20, "20 steps into its third episode");
        // Episodes are laid out differently per env and per episode.
        let poses: std::collections::HashSet<String> =
            (0..300).map(|i| format!("{:?}", one.embodied(i).expect("embodied").world.objects)).collect();
        assert!(poses.len() > 200, "only {} layouts among 300 envs", poses.len());
    }

    #[test]
    fn an_embodied_stop_ends_the_episode_without_success_far_from_the_goal() {
        let mut env = VecEnv::new(apartment(2, 1));
        env.step(&[Action::Done, Action::Forward]);
        assert_eq!(env.terminated(), &[true, false]);
        let finished = env.drain_finished();
        assert_eq!(finished.len(), 1);
        assert!(!finished[0].success && !finished[0].truncated && finished[0].length == 1);
        assert_eq!(env.embodied(0).expect("embodied").steps, 0, "a fresh episode");
    }

    #[test]
    fn historical_observations_cover_the_whole_grid() {
        let mut config = VecEnvConfig::new(Level::DoorKey { size: 6 }, 2, 0);
        config.observation = ObservationKind::Historical;
        let env = VecEnv::new(config);
        assert_eq!(env.observation_len(), 6 * 6 * 4);
        assert!(env.fog(0).is_some());
    }
}
