//! The stand-in policy the app runs until the student trains: at each episode start it asks
//! the planner for a winning plan and plays it, falling back to random actions without one.
//!
//! Bevy-free and deliberately small: the `Trainer` (student + teacher) replaces it.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::grid::planner::{self, SolveBudget};
use crate::env::grid::{Action, GridWorld};
use crate::env::vec_env::VecEnv;

/// What an env's actions currently come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanStatus {
    /// Before the first step: plans are made on demand.
    NotPlanned,
    /// Playing the planner's plan; this many actions are left.
    FollowingPlan { actions_left: usize },
    /// The planner found no plan (or it ran out): uniformly random actions.
    Random,
}

/// One env's current plan.
#[derive(Clone, Debug)]
struct EnvPlan {
    actions: VecDeque<Action>,
    /// The planner found nothing this episode.
    random: bool,
    /// Not planned yet (before the first step).
    stale: bool,
}

impl EnvPlan {
    fn replan(&mut self, world: &GridWorld, budget: SolveBudget) {
        let found = planner::solve(world, budget);
        self.random = found.is_none();
        self.actions = found.unwrap_or_default().into();
        self.stale = false;
    }
}

/// Plans per env with `planner::solve` and plays the plans.
pub struct ScriptedPolicy {
    plans: Vec<EnvPlan>,
    budget: SolveBudget,
    rng: ChaCha8Rng,
}

impl ScriptedPolicy {
    /// A policy for `num_envs` envs; `seed` drives the random fallback.
    pub fn new(num_envs: usize, seed: u64) -> ScriptedPolicy {
        let fresh = EnvPlan { actions: VecDeque::new(), random: false, stale: true };
        ScriptedPolicy {
            plans: vec![fresh; num_envs],
            budget: SolveBudget::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// One action per env for the next `VecEnv::step`, planning the envs whose episode just
    /// began.
    pub fn act(&mut self, envs: &VecEnv) -> Vec<Action> {
        let mut actions = Vec::with_capacity(self.plans.len());
        for (env, plan) in self.plans.iter_mut().enumerate() {
            if plan.stale {
                plan.replan(envs.world(env), self.budget);
            }
            let action = match plan.actions.pop_front() {
                Some(action) => action,
                None => {
                    plan.random = true;
                    Action::ALL[self.rng.random_range(0..Action::COUNT)]
                }
            };
            actions.push(action);
        }
        actions
    }

    /// Call after each `VecEnv::step`: envs whose episode ended start a fresh one and get a
    /// new plan now, so `status` describes the episode on screen. (The planner takes well
    /// under 10 ms on every preset level, so planning inline never stalls a frame.)
    pub fn observe_step(&mut self, envs: &VecEnv) {
        let ended = envs.terminated().iter().zip(envs.truncated()).map(|(&t, &u)| t || u);
        for (env, (plan, ended)) in self.plans.iter_mut().zip(ended).enumerate() {
            if ended {
                plan.replan(envs.world(env), self.budget);
            }
        }
    }

    /// Where env `env`'s next actions come from (`None` for an env out of range).
    pub fn status(&self, env: usize) -> Option<PlanStatus> {
        let plan = self.plans.get(env)?;
        Some(if plan.stale {
            PlanStatus::NotPlanned
        } else if plan.random {
            PlanStatus::Random
        } else {
            PlanStatus::FollowingPlan { actions_left: plan.actions.len() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Level;
    use crate::env::vec_env::VecEnvConfig;

    #[test]
    fn plans_solve_doorkey_episodes() {
        let mut envs = VecEnv::new(VecEnvConfig::new(Level::DoorKey { size: 6 }, 4, 3));
        let mut policy = ScriptedPolicy::new(envs.num_envs(), 3);
        let mut finished = Vec::new();
        for _ in 0..200 {
            let actions = policy.act(&envs);
            envs.step(&actions);
            policy.observe_step(&envs);
            finished.extend(envs.drain_finished());
        }
        assert!(finished.len() >= 8, "only {} episodes in 200 steps", finished.len());
        assert!(finished.iter().all(|episode| episode.success), "{finished:?}");
    }

    #[test]
    fn status_reports_the_plan_and_replans_at_once_when_an_episode_ends() {
        let mut envs = VecEnv::new(VecEnvConfig::new(Level::Empty { size: 5 }, 1, 0));
        let mut policy = ScriptedPolicy::new(1, 0);
        assert_eq!(policy.status(0), Some(PlanStatus::NotPlanned));
        // Empty-5x5: 2 forward, right, 2 forward onto the goal.
        for actions_left in (0..5).rev() {
            let actions = policy.act(&envs);
            assert_eq!(policy.status(0), Some(PlanStatus::FollowingPlan { actions_left }));
            envs.step(&actions);
            policy.observe_step(&envs);
        }
        assert!(envs.drain_finished()[0].success);
        assert_eq!(policy.status(0), Some(PlanStatus::FollowingPlan { actions_left: 5 }), "next episode planned");
        assert_eq!(policy.status(1), None);
    }
}
