//! What an advice earns when tuning: from a sampled situation, the advised option's skill is
//! followed until its target is reached (or it cannot go on), then a frozen snapshot of the
//! student plays the rest of the episode; the reward is the episode's return.
//!
//! The student is frozen (a copy of its weights) so a teacher iteration's rewards do not
//! drift while the teacher is updated; the skills make the advice mean the same thing it
//! means in training, where the student follows the option's actions.

use crate::env::grid::{Action, FogOfWar, GridWorld};
use crate::env::vec_env::{VecEnv, VecEnvConfig};
use crate::skills::{SkillStep, TeacherOption, skill_action};
use crate::student::{Student, StudentError};
use crate::teacher::situations::Situation;

/// Most primitive steps one advised option may take before the student takes over.
pub const DEFAULT_OPTION_STEPS: usize = 64;

/// What following one advice led to.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The episode's return (MiniGrid: 1 − 0.9·steps/max_steps on success, else 0).
    pub reward: f32,
    pub success: bool,
    /// Whether the option's skill reached its target.
    pub reached: bool,
    /// Where the option left the agent, when the episode had not ended by then.
    pub after_option: Option<(GridWorld, FogOfWar)>,
}

/// Judges advice with a frozen student.
pub struct AdviceJudge {
    student: Student,
    env_config: VecEnvConfig,
    /// Most primitive steps one option may take.
    option_steps: usize,
    /// Episodes the student has played out (`finish`).
    played_out: usize,
}

impl std::fmt::Debug for AdviceJudge {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AdviceJudge").field("option_steps", &self.option_steps).finish()
    }
}

impl AdviceJudge {
    /// A judge playing with a copy of `student`'s weights in envs configured like
    /// `env_config` (its level, observation and step limit; one env is used).
    pub fn new(
        student: &Student,
        mut env_config: VecEnvConfig,
        option_steps: usize,
        seed: u64,
    ) -> Result<Self, StudentError> {
        let mut frozen = Student::new(student.model().layout().clone(), student.spec().clone(), seed)?;
        frozen.restore(&student.state())?;
        env_config.num_envs = 1;
        Ok(Self { student: frozen, env_config, option_steps, played_out: 0 })
    }

    /// Follows `option` from `situation`, then lets the student finish the episode.
    pub fn judge(&mut self, situation: &Situation, option: TeacherOption) -> Result<Judgement, StudentError> {
        let followed = self.follow(&situation.world, &situation.fog, option);
        match followed.ended {
            Some((reward, success)) => Ok(Judgement { reward, success, reached: followed.reached, after_option: None }),
            None => {
                let (reward, success) = self.finish(followed.world.clone())?;
                Ok(Judgement {
                    reward,
                    success,
                    reached: followed.reached,
                    after_option: Some((followed.world, followed.fog)),
                })
            }
        }
    }

    /// How many episodes the student has played out so far.
    pub fn played_out(&self) -> usize {
        self.played_out
    }

    /// Runs `option`'s skill from `world` (the agent having seen `fog`) until its target is
    /// reached, it cannot go on, the episode ends, or `option_steps` steps.
    pub fn follow(&self, world: &GridWorld, fog: &FogOfWar, option: TeacherOption) -> Followed {
        let mut world = world.clone();
        let mut fog = fog.clone();
        for _ in 0..self.option_steps {
            match skill_action(option, &world, &fog) {
                SkillStep::Act(action) => {
                    let outcome = world.step(action);
                    if outcome.done() {
                        let success = outcome.terminated && outcome.reward > 0.0;
                        return Followed { ended: Some((outcome.reward, success)), reached: success, world, fog };
                    }
                    fog.reveal(&world);
                }
                SkillStep::Done => return Followed { ended: None, reached: true, world, fog },
                SkillStep::Impossible => break,
            }
        }
        Followed { ended: None, reached: false, world, fog }
    }

    /// The frozen student plays `world`'s episode to its end: (return, success).
    pub fn finish(&mut self, world: GridWorld) -> Result<(f32, bool), StudentError> {
        self.played_out += 1;
        let mut env = VecEnv::new(self.env_config.clone());
        env.set_world(0, world);
        loop {
            let decision = self.student.act(env.observations())?;
            let action = decision
                .actions
                .first()
                .and_then(|&action| Action::from_index(action as usize))
                .ok_or_else(|| StudentError::Config("the student chose no action".into()))?;
            env.step(&[action]);
            if let Some(episode) = env.drain_finished().into_iter().next() {
                return Ok((episode.episode_return, episode.success));
            }
        }
    }
}

/// Where following an option left the episode.
#[derive(Clone, Debug)]
pub struct Followed {
    /// The episode ended on the way: (reward, success).
    pub ended: Option<(f32, bool)>,
    pub reached: bool,
    pub world: GridWorld,
    pub fog: FogOfWar,
}
