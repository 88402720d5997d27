//! Teacher policies the student distils from: each gives, per env, the teacher's action
//! distribution for the state the env shows now, or None ("no advice yet", KL masked).

use std::time::Duration;

use super::NUM_ACTIONS;
use crate::env::embodied;
use crate::env::grid::FogOfWar;
use crate::env::vec_env::{EnvKind, VecEnv};
use crate::skills::embodied::embodied_oracle_advice;
use crate::skills::{TrueState, oracle_advice, oracle_needs_true_state};
use crate::teacher::advisor::{AdviceOrigin, TeacherAdvice, TeacherClientStats};
use crate::teacher::prompt::PromptTemplate;

/// Probabilities over the primitive actions, indexed like `Action`.
pub type ActionDistribution = [f32; NUM_ACTIONS];

/// A source of advice. The trainer calls `advise` once after the envs are built or reset and
/// once after every step, before the student acts, so a teacher may track episodes.
pub trait TeacherPolicy: Send {
    /// Short name for logs and configs.
    fn name(&self) -> &'static str;
    /// Fills `advice[i]` for every env `i` of `env`.
    fn advise(&mut self, env: &VecEnv, advice: &mut [Option<ActionDistribution>]);

    /// The option-level advice behind the last `advise` for env `index`, for teachers that
    /// think in options (what the teacher panel shows).
    fn option_advice(&self, _index: usize) -> Option<&TeacherAdvice> {
        None
    }

    /// Live statistics of the teacher's worker threads (LLM teachers).
    fn client_stats(&self) -> Option<TeacherClientStats> {
        None
    }

    /// The prompt template in force (LLM teachers).
    fn prompt(&self) -> Option<&PromptTemplate> {
        None
    }

    /// Puts `template` in force from the next advice on and returns the new prompt version;
    /// on error the template in force stays.
    fn set_prompt(&mut self, _template: PromptTemplate) -> Result<u64, String> {
        Err(format!("the {} teacher takes no prompt", self.name()))
    }

    /// Puts `text` in the prompt's `{feedback}` slot from the next advice on and returns the
    /// new prompt version (LLM teachers); others refuse it.
    fn set_feedback(&mut self, _text: &str) -> Result<u64, String> {
        Err(format!("the {} teacher takes no feedback", self.name()))
    }
}

/// Per env, what its agent has seen this episode, for teachers that plan over the student's
/// knowledge on envs that do not track it themselves (`VecEnv::fog`).
#[derive(Clone, Debug, Default)]
pub struct EpisodeFogs {
    fogs: Vec<Option<FogOfWar>>,
    /// `env.total_steps()` at the last `begin`: a jump means advice resumes after a pause (a
    /// teacher kept aside while toggled off), so what was seen belongs to old episodes.
    last_total_steps: Option<u64>,
}

impl EpisodeFogs {
    /// Call once per `advise`, before `observe`.
    pub fn begin(&mut self, env: &VecEnv) {
        let steps = env.total_steps();
        let one_step = env.num_envs() as u64;
        let continuous = self.last_total_steps.is_some_and(|last| steps == last || steps == last + one_step);
        if !continuous {
            self.fogs.clear();
        }
        self.fogs.resize(env.num_envs(), None);
        self.last_total_steps = Some(steps);
    }

    /// What env `index`'s agent has seen this episode, counting what it sees now: the env's
    /// own record when it keeps one, else ours (forgotten when an episode ends).
    pub fn observe<'a>(&'a mut self, env: &'a VecEnv, index: usize) -> &'a FogOfWar {
        if let Some(fog) = env.fog(index) {
            return fog;
        }
        let world = env.world(index);
        let episode_ended = env.terminated()[index] || env.truncated()[index];
        let slot = &mut self.fogs[index];
        match slot {
            Some(fog) if episode_ended => fog.reset(world),
            Some(fog) => fog.reveal(world),
            None => {}
        }
        slot.get_or_insert_with(|| FogOfWar::for_world(world))
    }
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
/// episode, or over the true state on levels it cannot win otherwise. In embodied scenes it is
/// the all-seeing expert (`skills::embodied::embodied_oracle_advice`).
#[derive(Clone, Debug)]
pub struct OracleTeacher {
    sees_true_state: bool,
    /// Per env, what its agent has seen this episode (when the env does not track it).
    fogs: EpisodeFogs,
    /// Per env, the option the oracle pursues now (probability 1).
    options: Vec<Option<TeacherAdvice>>,
}

impl OracleTeacher {
    pub fn new(env: &EnvKind) -> OracleTeacher {
        OracleTeacher {
            sees_true_state: env.level().is_none_or(oracle_needs_true_state),
            fogs: EpisodeFogs::default(),
            options: Vec::new(),
        }
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
        self.fogs.begin(env);
        self.options.resize(env.num_envs(), None);
        for (index, slot) in advice.iter_mut().enumerate().take(env.num_envs()) {
            let (option, action_probs) = match env.embodied(index) {
                Some(embodied_env) => {
                    let advised = embodied_oracle_advice(embodied_env);
                    (advised.option, embodied::student::student_probabilities(&advised.action_probs))
                }
                None => {
                    let world = env.world(index);
                    let advised = if self.sees_true_state {
                        oracle_advice(world, &TrueState)
                    } else {
                        oracle_advice(world, self.fogs.observe(env, index))
                    };
                    (advised.option, advised.action_probs)
                }
            };
            *slot = Some(action_probs);
            self.options[index] = Some(TeacherAdvice {
                options: vec![option],
                probabilities: vec![1.0],
                rationale: None,
                prompt_version: 0,
                origin: AdviceOrigin::Fresh,
                latency: Duration::ZERO,
            });
        }
    }

    fn option_advice(&self, index: usize) -> Option<&TeacherAdvice> {
        self.options.get(index).and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::{Action, Level};
    use crate::env::vec_env::VecEnvConfig;

    #[test]
    fn oracle_advice_wins_doorkey() {
        let level = Level::DoorKey { size: 5 };
        let mut env = VecEnv::new(VecEnvConfig::new(level.clone(), 3, 9));
        let mut teacher = OracleTeacher::new(&EnvKind::Grid(level.clone()));
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
        let option = teacher.option_advice(0).expect("the oracle names its option");
        assert_eq!(option.probabilities, vec![1.0]);
        assert!(teacher.option_advice(3).is_none());
        assert!(teacher.set_prompt(PromptTemplate::parse("{observation}{options}", "t").expect("valid")).is_err());
        assert_eq!(NoTeacher.name(), "none");
        let mut none = vec![Some([0.0; NUM_ACTIONS])];
        NoTeacher.advise(&env, &mut none);
        assert_eq!(none, vec![None]);
    }
}
