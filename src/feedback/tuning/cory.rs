//! CORY (Ma et al. 2024): two LoRA agents on one frozen base. The pioneer sees the query; the
//! observer sees the query and the pioneer's advice. The student evaluates both advices and
//! the *sum* of their rewards goes to both; each agent is updated by its own token-level PPO
//! (KL penalty to the base, reward at the last token); they exchange roles every
//! [`ROLE_EXCHANGE_PERIOD`] iterations, so each learns to advise alone and with help.

use rand::Rng;

use super::policy::OptionPolicy;
use super::ppo::{PpoSettings, PpoStats, Rollout, TokenPpo};
use crate::teacher::llm::{LoraConfig, ModelError, ModelSpec};

/// T_REx: iterations between role exchanges.
pub const ROLE_EXCHANGE_PERIOD: usize = 5;

/// One query as both agents see it: the pioneer's policy, and per pioneer option the
/// observer's policy (the query with that advice written into its prompt).
#[derive(Debug)]
pub struct CoryQuery<'m> {
    pub pioneer: OptionPolicy<'m>,
    pub observers: Vec<OptionPolicy<'m>>,
}

/// What one query's turn gave.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct CoryTurn {
    pub pioneer_option: usize,
    pub observer_option: usize,
    pub pioneer_reward: f32,
    pub observer_reward: f32,
}

/// What one iteration did.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CoryStats {
    /// Which agent (0 or 1) was the pioneer in this iteration.
    pub pioneer_agent: usize,
    pub pioneer: PpoStats,
    pub observer: PpoStats,
    /// Mean task rewards of the two roles' own advice (before sharing).
    pub pioneer_reward: f32,
    pub observer_reward: f32,
    /// Whether the roles were exchanged after this iteration.
    pub exchanged: bool,
    pub turns: Vec<CoryTurn>,
}

/// The two agents and whose turn it is to lead.
#[derive(Debug)]
pub struct Cory {
    agents: [TokenPpo; 2],
    pioneer: usize,
    iterations: usize,
    period: usize,
}

impl Cory {
    /// Two fresh agents (adapters seeded `seed` and `seed + 1`) with the same settings; agent
    /// 0 leads first.
    pub fn new(spec: &ModelSpec, lora: LoraConfig, settings: PpoSettings, seed: u64) -> Result<Self, ModelError> {
        Ok(Self {
            agents: [
                TokenPpo::new(spec, lora.clone(), settings.clone(), seed)?,
                TokenPpo::new(spec, lora, settings, seed + 1)?,
            ],
            pioneer: 0,
            iterations: 0,
            period: ROLE_EXCHANGE_PERIOD,
        })
    }

    /// The agent leading now.
    pub fn pioneer(&self) -> usize {
        self.pioneer
    }

    pub fn agent(&self, index: usize) -> &TokenPpo {
        &self.agents[index]
    }

    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// One iteration over `queries`: the pioneer advises, the observer advises having read
    /// it, `reward(query, option)` scores each advice, both get the sum, both update, and
    /// the roles are exchanged every `ROLE_EXCHANGE_PERIOD` iterations.
    pub fn iteration(
        &mut self,
        queries: &[CoryQuery],
        rng: &mut impl Rng,
        mut reward: impl FnMut(usize, usize) -> f32,
    ) -> Result<CoryStats, ModelError> {
        let (pioneer, observer) = (self.pioneer, 1 - self.pioneer);
        let mut pioneer_batch: Vec<(&OptionPolicy, Rollout)> = Vec::with_capacity(queries.len());
        let mut observer_batch: Vec<(&OptionPolicy, Rollout)> = Vec::with_capacity(queries.len());
        let mut turns = Vec::with_capacity(queries.len());
        for (index, query) in queries.iter().enumerate() {
            let pioneer_sampled = self.agents[pioneer].sample(&query.pioneer, rng)?;
            let pioneer_option = pioneer_sampled.option;
            let observer_policy = query.observers.get(pioneer_option).ok_or_else(|| {
                ModelError::Unsupported(format!("query {index} has no observer prompt for option {pioneer_option}"))
            })?;
            let observer_sampled = self.agents[observer].sample(observer_policy, rng)?;
            let observer_option = observer_sampled.option;
            let turn = CoryTurn {
                pioneer_option,
                observer_option,
                pioneer_reward: reward(index, pioneer_option),
                observer_reward: reward(index, observer_option),
            };
            let shared = turn.pioneer_reward + turn.observer_reward;
            pioneer_batch
                .push((&query.pioneer, self.agents[pioneer].rollout(&query.pioneer, pioneer_sampled, shared)?));
            observer_batch
                .push((observer_policy, self.agents[observer].rollout(observer_policy, observer_sampled, shared)?));
            turns.push(turn);
        }
        let pioneer_stats = self.agents[pioneer].update(&pioneer_batch)?;
        let observer_stats = self.agents[observer].update(&observer_batch)?;
        self.iterations += 1;
        let exchanged = self.iterations.is_multiple_of(self.period);
        if exchanged {
            self.pioneer = observer;
        }
        let count = turns.len().max(1) as f32;
        Ok(CoryStats {
            pioneer_agent: pioneer,
            pioneer: pioneer_stats,
            observer: observer_stats,
            pioneer_reward: turns.iter().map(|turn| turn.pioneer_reward).sum::<f32>() / count,
            observer_reward: turns.iter().map(|turn| turn.observer_reward).sum::<f32>() / count,
            exchanged,
            turns,
        })
    }
}
