//! Token-level PPO on the teacher's LoRA adapters with a per-token KL penalty to the frozen
//! base model: the baseline that ArCHer and CORY compare against, and CORY's per-agent update.
//!
//! An episode is one advice utterance: its tokens are the actions, each token's reward is
//! −β·(log π(token) − log π₀(token)) and the last token also gets the task reward (what the
//! student's following of the advice earned). A value head on the hidden state that predicts
//! each token gives V; advantages by GAE (γ = 1, λ = 0.95); clipped surrogate (0.2), value
//! loss weight 0.1, 4 epochs over each batch.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::Rng;

use super::gradients::GradientSum;
use super::policy::{OptionPolicy, OptionScores};
use crate::teacher::llm::{LoraAdapters, LoraConfig, ModelError, ModelSpec};

/// Fewest utterances in a batch for its advantages to be whitened.
pub const WHITEN_FROM_UTTERANCES: usize = 4;

/// PPO's hyper-parameters (defaults: CORY's; the learning rate a usual one for LoRA).
#[derive(Clone, Debug, PartialEq)]
pub struct PpoSettings {
    /// Adam's step size on the adapters and the value head. At 1e-3, two iterations of 4
    /// utterances moved the real teacher's option distributions by a KL of 1.1 nats from the
    /// base on DoorKey-5x5 (agreement 0.83 to 0.33) while the rewards barely differed.
    pub learning_rate: f64,
    /// β, the weight of the per-token KL penalty to the frozen base.
    pub kl_coefficient: f64,
    pub clip: f64,
    pub value_coefficient: f64,
    pub epochs: usize,
    pub gamma: f64,
    pub gae_lambda: f64,
}

impl Default for PpoSettings {
    fn default() -> Self {
        Self {
            learning_rate: 1e-4,
            kl_coefficient: 0.05,
            clip: 0.2,
            value_coefficient: 0.1,
            epochs: 4,
            gamma: 1.0,
            gae_lambda: 0.95,
        }
    }
}

/// An utterance drawn under the current adapters, with its scores from the drawing (detached).
#[derive(Debug)]
pub struct Sampled {
    pub option: usize,
    scores: OptionScores,
}

/// One sampled utterance and what it led to, with the quantities PPO freezes at sampling time.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    pub option: usize,
    pub task_reward: f32,
    /// Per token: log π_old, log π₀ (the base), V_old, the reward, the advantage, the return.
    pub old_log_probs: Vec<f32>,
    pub base_log_probs: Vec<f32>,
    pub values: Vec<f32>,
    pub rewards: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

impl Rollout {
    /// The utterance's KL to the base as sampled: Σ (log π_old − log π₀).
    pub fn kl(&self) -> f32 {
        self.old_log_probs.iter().zip(&self.base_log_probs).map(|(new, base)| new - base).sum()
    }
}

/// What one update did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PpoStats {
    pub task_reward: f32,
    pub kl: f32,
    pub policy_loss: f32,
    pub value_loss: f32,
}

/// A value head: `V(h) = h·w + b` on a hidden state.
#[derive(Debug)]
struct ValueHead {
    weight: Var,
    bias: Var,
}

impl ValueHead {
    fn new(hidden: usize) -> candle_core::Result<Self> {
        Ok(Self {
            weight: Var::zeros((hidden, 1), DType::F32, &Device::Cpu)?,
            bias: Var::zeros(1, DType::F32, &Device::Cpu)?,
        })
    }

    /// `[tokens, hidden]` → `[tokens]`.
    fn values(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        hidden.matmul(self.weight.as_tensor())?.squeeze(1)?.broadcast_add(self.bias.as_tensor())
    }
}

/// GAE over one utterance's per-token `rewards` and `values` (the state after the last token
/// is terminal): advantages and returns.
pub fn generalized_advantages(rewards: &[f32], values: &[f32], gamma: f64, lambda: f64) -> (Vec<f32>, Vec<f32>) {
    let mut advantages = vec![0.0f32; rewards.len()];
    let mut running = 0.0f64;
    for index in (0..rewards.len()).rev() {
        let next_value = values.get(index + 1).copied().unwrap_or(0.0) as f64;
        let delta = rewards[index] as f64 + gamma * next_value - values[index] as f64;
        running = delta + gamma * lambda * running;
        advantages[index] = running as f32;
    }
    let returns = advantages.iter().zip(values).map(|(advantage, value)| advantage + value).collect();
    (advantages, returns)
}

/// Single-adapter token-level PPO.
pub struct TokenPpo {
    settings: PpoSettings,
    adapters: LoraAdapters,
    value_head: ValueHead,
    /// The adapters' and the value head's variables (what the optimizer steps).
    variables: Vec<Var>,
    optimizer: AdamW,
}

impl std::fmt::Debug for TokenPpo {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TokenPpo").field("settings", &self.settings).finish()
    }
}

impl TokenPpo {
    /// Fresh adapters (`lora`) for a model of `spec`, a zero value head and AdamW over both.
    pub fn new(spec: &ModelSpec, lora: LoraConfig, settings: PpoSettings, seed: u64) -> Result<Self, ModelError> {
        let adapters =
            LoraAdapters::new(spec, lora, seed).map_err(|error| ModelError::Unsupported(error.to_string()))?;
        let value_head = ValueHead::new(spec.hidden_size)?;
        let mut vars = adapters.vars();
        vars.extend([value_head.weight.clone(), value_head.bias.clone()]);
        let optimizer = AdamW::new(
            vars.clone(),
            ParamsAdamW { lr: settings.learning_rate, weight_decay: 0.0, ..Default::default() },
        )?;
        Ok(Self { settings, adapters, value_head, variables: vars, optimizer })
    }

    pub fn adapters(&self) -> &LoraAdapters {
        &self.adapters
    }

    pub fn settings(&self) -> &PpoSettings {
        &self.settings
    }

    /// Samples an utterance from `policy` under the current adapters, asks `reward` what it
    /// earned, and freezes what the update needs.
    pub fn collect(
        &self,
        policy: &OptionPolicy,
        rng: &mut impl Rng,
        reward: impl FnOnce(usize) -> f32,
    ) -> Result<Rollout, ModelError> {
        let sampled = self.sample(policy, rng)?;
        let task_reward = reward(sampled.option);
        self.rollout(policy, sampled, task_reward)
    }

    /// An utterance drawn from `policy` under the current adapters.
    pub fn sample(&self, policy: &OptionPolicy, rng: &mut impl Rng) -> Result<Sampled, ModelError> {
        let (option, scores) = policy.sample_scored(Some(&self.adapters), rng)?;
        Ok(Sampled { option, scores })
    }

    /// The rollout of the `sampled` utterance of `policy`, which earned `task_reward`: per-token
    /// log-probs now (from the sampling) and under the base, values, KL-penalised rewards,
    /// advantages, returns.
    pub fn rollout(&self, policy: &OptionPolicy, sampled: Sampled, task_reward: f32) -> Result<Rollout, ModelError> {
        let Sampled { option, scores } = sampled;
        let old_log_probs: Vec<f32> = scores.log_probs.to_vec1()?;
        let values: Vec<f32> = self.value_head.values(&scores.hidden)?.to_vec1()?;
        let base_log_probs: Vec<f32> = policy.score(option, None)?.log_probs.detach().to_vec1()?;
        let beta = self.settings.kl_coefficient as f32;
        let mut rewards: Vec<f32> =
            old_log_probs.iter().zip(&base_log_probs).map(|(new, base)| -beta * (new - base)).collect();
        if let Some(last) = rewards.last_mut() {
            *last += task_reward;
        }
        let (advantages, returns) =
            generalized_advantages(&rewards, &values, self.settings.gamma, self.settings.gae_lambda);
        Ok(Rollout { option, task_reward, old_log_probs, base_log_probs, values, rewards, advantages, returns })
    }

    /// `epochs` clipped-surrogate steps over `batch` (each rollout with the policy it was
    /// sampled from), one optimizer step per epoch over the whole batch.
    pub fn update(&mut self, batch: &[(&OptionPolicy, Rollout)]) -> Result<PpoStats, ModelError> {
        let mut stats = PpoStats::default();
        if batch.is_empty() {
            return Ok(stats);
        }
        let count = batch.len() as f32;
        // Advantages whitened over the batch's tokens (as TRL's PPO, which CORY builds on):
        // the step size then does not depend on the scale of the rewards. Not below
        // `WHITEN_FROM_UTTERANCES`: the tokens of one or two utterances say nothing about the
        // spread, and whitening them turns any difference, however small, into a full step
        // (a batch of 1 on the real teacher moved it by KL 0.9 in two iterations).
        let all: Vec<f32> = batch.iter().flat_map(|(_, rollout)| rollout.advantages.iter().copied()).collect();
        let (mean, deviation) = if batch.len() >= WHITEN_FROM_UTTERANCES {
            let mean = all.iter().sum::<f32>() / all.len().max(1) as f32;
            let variance = all.iter().map(|value| (value - mean).powi(2)).sum::<f32>() / all.len().max(1) as f32;
            (mean, variance.sqrt().max(1e-6))
        } else {
            (0.0, 1.0)
        };
        let whiten =
            |advantages: &[f32]| -> Vec<f32> { advantages.iter().map(|value| (value - mean) / deviation).collect() };
        stats.task_reward = batch.iter().map(|(_, rollout)| rollout.task_reward).sum::<f32>() / count;
        stats.kl = batch.iter().map(|(_, rollout)| rollout.kl()).sum::<f32>() / count;
        let clip = self.settings.clip;
        // Each utterance is back-propagated on its own and the step takes the sum (one
        // utterance's graph alive at a time; see `GradientSum`).
        for _ in 0..self.settings.epochs {
            let mut gradients = GradientSum::new(self.variables.clone());
            let (mut policy_loss, mut value_loss) = (0.0f32, 0.0f32);
            for (policy, rollout) in batch {
                let scores = policy.score(rollout.option, Some(&self.adapters))?;
                let device = scores.log_probs.device().clone();
                let old = Tensor::new(rollout.old_log_probs.as_slice(), &device)?;
                let advantages = Tensor::new(whiten(&rollout.advantages).as_slice(), &device)?;
                let ratio = (&scores.log_probs - old)?.exp()?;
                let unclipped = (&ratio * &advantages)?;
                let clipped = (ratio.clamp(1.0 - clip, 1.0 + clip)? * &advantages)?;
                let utterance_policy_loss = (unclipped.minimum(&clipped)?.mean_all()?.neg()? / count as f64)?;
                let returns = Tensor::new(rollout.returns.as_slice(), &device)?;
                let values = self.value_head.values(&scores.hidden)?;
                let utterance_value_loss = ((values - returns)?.sqr()?.mean_all()? / count as f64)?;
                let loss = (&utterance_policy_loss + (&utterance_value_loss * self.settings.value_coefficient)?)?;
                gradients.add(&loss)?;
                policy_loss += utterance_policy_loss.to_scalar::<f32>()?;
                value_loss += utterance_value_loss.to_scalar::<f32>()?;
            }
            gradients.step(&mut self.optimizer)?;
            stats.policy_loss = policy_loss;
            stats.value_loss = value_loss;
        }
        Ok(stats)
    }
}
