//! N grid environments stepped as one batch: auto-reset, per-env seeded episodes, all
//! observations in one contiguous buffer, optional parallel stepping across threads.

use rayon::prelude::*;

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

/// How a batch of environments is built.
#[derive(Clone, Debug, PartialEq)]
pub struct VecEnvConfig {
    pub level: Level,
    pub num_envs: usize,
    pub seed: u64,
    /// Overrides the level's step limit when set.
    pub max_steps: Option<u32>,
    pub observation: ObservationKind,
    /// Worker threads for `step` (1 = step on the caller's thread, deterministic either way).
    pub threads: usize,
}

impl VecEnvConfig {
    pub fn new(level: Level, num_envs: usize, seed: u64) -> VecEnvConfig {
        VecEnvConfig { level, num_envs, seed, max_steps: None, observation: ObservationKind::Egocentric, threads: 1 }
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

/// One environment of the batch and its own episode stream.
#[derive(Clone, Debug)]
struct EnvSlot {
    world: GridWorld,
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
    /// Builds and resets every env. The level must already be validated.
    pub fn new(config: VecEnvConfig) -> VecEnv {
        let num_envs = config.num_envs.max(1);
        let slots: Vec<EnvSlot> = (0..num_envs)
            .map(|i| {
                let rng = LevelRng::new(mix_seed(config.seed, i as u64));
                let mut slot = EnvSlot {
                    world: GridWorld::new(3, 3),
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
        let observation_len = observation_len(&slots[0].world, config.observation);
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

    pub fn world(&self, env: usize) -> &GridWorld {
        &self.slots[env].world
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

    /// Replaces one env's world (manual control, tests); its observation is refreshed.
    pub fn set_world(&mut self, env: usize, world: GridWorld) {
        let slot = &mut self.slots[env];
        slot.world = world;
        if let Some(fog) = slot.fog.as_mut() {
            fog.reset(&slot.world);
        }
        let len = self.observation_len;
        write_observation(slot, self.config.observation, &mut self.observations[env * len..(env + 1) * len]);
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
            write_observation(slot, self.config.observation, obs);
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
    slot.world = config.level.generate_with(&mut slot.rng);
    if let Some(max_steps) = config.max_steps {
        slot.world.max_steps = max_steps;
    }
    slot.episode_return = 0.0;
    slot.episodes += 1;
    if config.observation == ObservationKind::Historical {
        match slot.fog.as_mut() {
            Some(fog) => fog.reset(&slot.world),
            None => slot.fog = Some(FogOfWar::for_world(&slot.world)),
        }
    }
}

fn write_observation(slot: &mut EnvSlot, kind: ObservationKind, out: &mut [u8]) {
    match kind {
        ObservationKind::Egocentric => slot.world.write_observation(out),
        ObservationKind::Historical => {
            if let Some(fog) = slot.fog.as_mut() {
                fog.write(&slot.world, out);
            }
        }
    }
}

/// Steps one env, resets it when the episode ended, and writes its next observation.
fn step_slot(slot: &mut EnvSlot, action: Action, config: &VecEnvConfig, obs: &mut [u8]) {
    let outcome = slot.world.step(action);
    slot.episode_return += outcome.reward;
    slot.last_outcome = outcome;
    if outcome.done() {
        slot.ended = Some(EpisodeStats {
            env: 0,
            episode_return: slot.episode_return,
            length: slot.world.step_count,
            success: outcome.terminated && outcome.reward > 0.0,
            truncated: outcome.truncated && !outcome.terminated,
        });
        reset_slot(slot, config);
    } else if let Some(fog) = slot.fog.as_mut() {
        fog.reveal(&slot.world);
    }
    write_observation(slot, config.observation, obs);
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

    #[test]
    fn historical_observations_cover_the_whole_grid() {
        let mut config = VecEnvConfig::new(Level::DoorKey { size: 6 }, 2, 0);
        config.observation = ObservationKind::Historical;
        let env = VecEnv::new(config);
        assert_eq!(env.observation_len(), 6 * 6 * 4);
        assert!(env.fog(0).is_some());
    }
}
