//! Teacher policies the student distils from: each gives, per env, the teacher's action
//! distribution for the state the env shows now, or None ("no advice yet", KL masked).

use super::NUM_ACTIONS;
use crate::env::grid::{FogOfWar, Level};
use crate::env::vec_env::VecEnv;
use crate::skills::{TrueState, oracle_advice, oracle_needs_true_state};

/// Probabilities over the primitive actions, indexed like `Action`.
pub type ActionDistribution = [f32; NUM_ACTIONS];

/// A source of advice. The trainer calls `advise` once after the envs are built or reset and
/// once after every step, before the student acts, so a teacher may track episodes.
pub trait TeacherPolicy: Send {
    /// Short name for logs and configs.
    fn name(&self) -> &'static str;
    /// Fills `advice[i]` for every env `i` of `env`.
    fn advise(&mut self, env: &VecEnv, advice: &mut [Option<ActionDistribution>]);
}

/// No teacher: never advises, so the student learns from reward alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTeacher;

impl TeacherPolicy for NoTeacher {
    fn name(&self) -> &'static str {
        "none"
    }

    fn advise(&mut self, _env: &VecEnv, advice: &mut [Option<ActionDistribution>]) {
        advice.fill(None);
    }
}

/// The scripted oracle (`skills::oracle_advice`): plans over what the student has seen this
/// episode, or over the true state on levels it cannot win otherwise.
#[derive(Clone, Debug)]
pub struct OracleTeacher {
    sees_true_state: bool,
    /// Per env, what its agent has seen this episode (when the env does not track it).
    fogs: Vec<Option<FogOfWar>>,
}

impl OracleTeacher {
    pub fn new(level: &Level) -> OracleTeacher {
        OracleTeacher { sees_true_state: oracle_needs_true_state(level), fogs: Vec::new() }
    }

    /// Whether it plans over the whole true state.
    pub fn sees_true_state(&self) -> bool {
        self.sees_true_state
    }
}

impl TeacherPolicy for OracleTeacher {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn advise(&mut self, env: &VecEnv, advice: &mut [Option<ActionDistribution>]) {
        self.fogs.resize(env.num_envs(), None);
        for (index, slot) in advice.iter_mut().enumerate().take(env.num_envs()) {
            let world = env.world(index);
            let advised = if self.sees_true_state {
                oracle_advice(world, &TrueState)
            } else if let Some(fog) = env.fog(index) {
                oracle_advice(world, fog)
            } else {
                let episode_ended = env.terminated()[index] || env.truncated()[index];
                let fog = match &mut self.fogs[index] {
                    Some(fog) if episode_ended => {
                        fog.reset(world);
                        fog
                    }
                    Some(fog) => {
                        fog.reveal(world);
                        fog
                    }
                    empty @ None => empty.insert(FogOfWar::for_world(world)),
                };
                oracle_advice(world, &*fog)
            };
            *slot = Some(advised.action_probs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Action;
    use crate::env::vec_env::VecEnvConfig;

    #[test]
    fn oracle_advice_wins_doorkey() {
        let level = Level::DoorKey { size: 5 };
        let mut env = VecEnv::new(VecEnvConfig::new(level.clone(), 3, 9));
        let mut teacher = OracleTeacher::new(&level);
        assert!(!teacher.sees_true_state());
        let mut advice = vec![None; 3];
        for _ in 0..200 {
            teacher.advise(&env, &mut advice);
            let actions: Vec<Action> = advice
                .iter()
                .map(|a| {
                    let probs = a.expect("oracle always advises");
                    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                    let best = (0..NUM_ACTIONS).fold(0, |b, i| if probs[i] > probs[b] { i } else { b });
                    Action::from_index(best).expect("action")
                })
                .collect();
            env.step(&actions);
        }
        let finished = env.drain_finished();
        assert!(finished.len() >= 6, "{finished:?}");
        assert!(finished.iter().all(|e| e.success), "{finished:?}");
        assert_eq!(NoTeacher.name(), "none");
        let mut none = vec![Some([0.0; NUM_ACTIONS])];
        NoTeacher.advise(&env, &mut none);
        assert_eq!(none, vec![None]);
    }
}
