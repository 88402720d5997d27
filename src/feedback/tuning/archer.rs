//! ArCHer (Zhou et al. 2024), hierarchical actor-critic for multi-turn advice: an
//! utterance-level off-policy critic and a token-level actor on LoRA adapters.
//!
//! The critic has two Q heads on (state, advice) and two V heads on the state, small MLPs over
//! a frozen encoder (the base model's mean-pooled final hidden states of the state's prompt and
//! of the advice), each with a target copy Polyak-averaged (τ = 0.1) after every critic step,
//! trained from a replay buffer: Q_i → r + γ(1 − done)·V̄_i(s′), V_i → Q̄_i(s, a ~ π now). The
//! actor is updated by REINFORCE on freshly sampled advice at replayed states, the whole
//! utterance weighted by min(Q1, Q2)(s, a) − min(V1, V2)(s); critic steps outnumber actor
//! steps, and a warm-up trains the critic alone.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::gradients::GradientSum;
use super::policy::{OptionPolicy, draw};
use crate::teacher::llm::{LanguageModel, LoraAdapters, LoraConfig, ModelError, ModelSpec};

/// ArCHer's hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ArcherSettings {
    pub gamma: f64,
    /// Polyak factor of the target critics, applied after each critic step.
    pub tau: f64,
    pub critic_learning_rate: f64,
    pub actor_learning_rate: f64,
    /// Critic steps per iteration, each on one replayed minibatch.
    pub critic_steps: usize,
    /// Actor steps per iteration (after the warm-up).
    pub actor_steps: usize,
    /// Iterations that train the critic only.
    pub warmup_iterations: usize,
    pub batch_size: usize,
    pub buffer_capacity: usize,
    pub critic_hidden: usize,
}

impl Default for ArcherSettings {
    fn default() -> Self {
        Self {
            gamma: 0.95,
            tau: 0.1,
            critic_learning_rate: 1e-3,
            actor_learning_rate: 1e-4,
            critic_steps: 8,
            actor_steps: 1,
            warmup_iterations: 2,
            batch_size: 16,
            buffer_capacity: 4096,
            critic_hidden: 64,
        }
    }
}

/// One turn: in state `state` the teacher said `advice`, which earned `reward` (often 0 until
/// the episode's end) and led to `next_state` (`None`: the episode ended).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub state: usize,
    pub advice: usize,
    pub reward: f32,
    pub next_state: Option<usize>,
}

/// The critic's regression targets for Q_i: `r + γ(1 − done)·V̄_i(s′)`.
pub fn q_targets(rewards: &[f32], done: &[bool], next_target_values: &[f32], gamma: f64) -> Vec<f32> {
    rewards
        .iter()
        .zip(done)
        .zip(next_target_values)
        .map(|((&reward, &done), &next)| reward + if done { 0.0 } else { (gamma * next as f64) as f32 })
        .collect()
}

/// The actor's advantage of an utterance: `min(Q1, Q2) − min(V1, V2)`.
pub fn advantage(q: [f32; 2], v: [f32; 2]) -> f32 {
    q[0].min(q[1]) - v[0].min(v[1])
}

/// A two-layer MLP made of plain `Var`s (so a target copy can be Polyak-averaged into).
#[derive(Debug)]
struct Mlp {
    parameters: Vec<Var>,
}

impl Mlp {
    fn new(input: usize, hidden: usize, rng: &mut impl Rng) -> candle_core::Result<Self> {
        let mut matrix = |rows: usize, columns: usize| -> candle_core::Result<Var> {
            let bound = 1.0 / (columns as f32).sqrt();
            let values: Vec<f32> = (0..rows * columns).map(|_| rng.random_range(-bound..bound)).collect();
            Var::from_tensor(&Tensor::from_vec(values, (rows, columns), &Device::Cpu)?)
        };
        let first = matrix(hidden, input)?;
        let second = matrix(1, hidden)?;
        let parameters = vec![
            first,
            Var::zeros(hidden, DType::F32, &Device::Cpu)?,
            second,
            Var::zeros(1, DType::F32, &Device::Cpu)?,
        ];
        Ok(Self { parameters })
    }

    /// `[rows, input]` → `[rows]`.
    fn forward(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        let [w1, b1, w2, b2] = &self.parameters[..] else { candle_core::bail!("an MLP has four parameters") };
        let hidden = input.matmul(&w1.as_tensor().t()?)?.broadcast_add(b1.as_tensor())?.relu()?;
        hidden.matmul(&w2.as_tensor().t()?)?.broadcast_add(b2.as_tensor())?.squeeze(1)
    }

    fn copy(&self) -> candle_core::Result<Self> {
        let parameters =
            self.parameters.iter().map(|var| Var::from_tensor(&var.as_tensor().copy()?)).collect::<Result<_, _>>()?;
        Ok(Self { parameters })
    }

    /// `self ← τ·online + (1 − τ)·self`.
    fn polyak_from(&self, online: &Mlp, tau: f64) -> candle_core::Result<()> {
        for (target, source) in self.parameters.iter().zip(&online.parameters) {
            let mixed = ((source.as_tensor() * tau)? + (target.as_tensor() * (1.0 - tau))?)?;
            target.set(&mixed)?;
        }
        Ok(())
    }
}

/// The critic's frozen encoder: per state, the base model's mean-pooled hidden state of its
/// prompt; per (state, advice), that of the advice's tokens after the prompt.
#[derive(Debug)]
struct Features {
    states: Tensor,
    advice: Vec<Tensor>,
}

impl Features {
    fn of(model: &LanguageModel, states: &[OptionPolicy]) -> Result<Self, ModelError> {
        let mut state_rows = Vec::with_capacity(states.len());
        let mut advice_rows = Vec::with_capacity(states.len());
        for policy in states {
            let prompt = policy.prompt();
            let pooled = model.differentiable_hidden_states(prompt, None)?.detach().mean(0)?;
            state_rows.push(pooled);
            let mut per_option = Vec::with_capacity(policy.option_count());
            for option in 0..policy.option_count() {
                let tokens: Vec<u32> = prompt.iter().chain(policy.option_tokens(option)).copied().collect();
                let hidden = model.differentiable_hidden_states(&tokens, None)?.detach();
                per_option.push(hidden.narrow(0, prompt.len(), tokens.len() - prompt.len())?.mean(0)?);
            }
            advice_rows.push(Tensor::stack(&per_option, 0)?);
        }
        Ok(Self { states: Tensor::stack(&state_rows, 0)?, advice: advice_rows })
    }

    fn state(&self, states: &[usize]) -> candle_core::Result<Tensor> {
        let indices: Vec<u32> = states.iter().map(|&state| state as u32).collect();
        self.states.index_select(&Tensor::new(indices.as_slice(), &Device::Cpu)?, 0)
    }

    fn state_advice(&self, pairs: &[(usize, usize)]) -> candle_core::Result<Tensor> {
        let states = self.state(&pairs.iter().map(|&(state, _)| state).collect::<Vec<_>>())?;
        let advice: Vec<Tensor> =
            pairs.iter().map(|&(state, option)| self.advice[state].get(option)).collect::<Result<_, _>>()?;
        Tensor::cat(&[states, Tensor::stack(&advice, 0)?], D::Minus1)
    }
}

/// What one iteration did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ArcherStats {
    pub q_loss: f32,
    pub v_loss: f32,
    /// Mean advantage of the actor's fresh samples (0 during the warm-up).
    pub advantage: f32,
    pub actor_loss: f32,
    pub actor_updated: bool,
    pub buffer: usize,
}

/// The actor (LoRA adapters), the critics and their targets, and the replay buffer, over a
/// fixed set of states (each an [`OptionPolicy`]: a prompt and its legal advice).
pub struct Archer {
    settings: ArcherSettings,
    adapters: LoraAdapters,
    actor_optimizer: AdamW,
    q: [Mlp; 2],
    v: [Mlp; 2],
    q_target: [Mlp; 2],
    v_target: [Mlp; 2],
    critic_optimizer: AdamW,
    features: Features,
    buffer: Vec<Transition>,
    next_slot: usize,
    iterations: usize,
    /// Per state, the actor's option distribution, worked out when first needed and
    /// forgotten when the actor steps: the actor is fixed while episodes are collected and
    /// the critic trains, so sampling advice there (every turn, and every V target of every
    /// critic step) draws from these instead of scoring every option again.
    distributions: Vec<Option<Vec<f32>>>,
}

impl std::fmt::Debug for Archer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Archer").field("settings", &self.settings).field("buffer", &self.buffer.len()).finish()
    }
}

impl Archer {
    /// Fresh adapters and critics for `states` of `model`; the encoder's features are
    /// computed once here (the base is frozen).
    pub fn new(
        model: &LanguageModel,
        states: &[OptionPolicy],
        lora: LoraConfig,
        settings: ArcherSettings,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let spec: &ModelSpec = model.config();
        let adapters =
            LoraAdapters::new(spec, lora, seed).map_err(|error| ModelError::Unsupported(error.to_string()))?;
        let actor_optimizer = AdamW::new(
            adapters.vars(),
            ParamsAdamW { lr: settings.actor_learning_rate, weight_decay: 0.0, ..Default::default() },
        )?;
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed ^ 0xa5c4);
        let hidden = spec.hidden_size;
        let q = [
            Mlp::new(2 * hidden, settings.critic_hidden, &mut rng)?,
            Mlp::new(2 * hidden, settings.critic_hidden, &mut rng)?,
        ];
        let v =
            [Mlp::new(hidden, settings.critic_hidden, &mut rng)?, Mlp::new(hidden, settings.critic_hidden, &mut rng)?];
        let q_target = [q[0].copy()?, q[1].copy()?];
        let v_target = [v[0].copy()?, v[1].copy()?];
        let critic_vars: Vec<Var> = q.iter().chain(&v).flat_map(|mlp| mlp.parameters.clone()).collect();
        let critic_optimizer = AdamW::new(
            critic_vars,
            ParamsAdamW { lr: settings.critic_learning_rate, weight_decay: 0.0, ..Default::default() },
        )?;
        let features = Features::of(model, states)?;
        Ok(Self {
            settings,
            adapters,
            actor_optimizer,
            q,
            v,
            q_target,
            v_target,
            critic_optimizer,
            features,
            buffer: Vec::new(),
            next_slot: 0,
            iterations: 0,
            distributions: vec![None; states.len()],
        })
    }

    pub fn adapters(&self) -> &LoraAdapters {
        &self.adapters
    }

    /// Advice for `state` drawn from the actor.
    pub fn act(&mut self, states: &[OptionPolicy], state: usize, rng: &mut impl Rng) -> Result<usize, ModelError> {
        Ok(draw(self.distribution(states, state)?, rng))
    }

    /// The actor's option distribution at `state` (see `distributions`).
    fn distribution(&mut self, states: &[OptionPolicy], state: usize) -> Result<&[f32], ModelError> {
        if self.distributions.len() != states.len() {
            self.distributions = vec![None; states.len()];
        }
        if self.distributions[state].is_none() {
            self.distributions[state] = Some(states[state].probabilities(Some(&self.adapters))?);
        }
        Ok(self.distributions[state].as_deref().unwrap_or_default())
    }

    /// Stores `transitions` (the oldest go once the buffer is full).
    pub fn remember(&mut self, transitions: &[Transition]) {
        for &transition in transitions {
            if self.buffer.len() < self.settings.buffer_capacity {
                self.buffer.push(transition);
            } else {
                self.buffer[self.next_slot] = transition;
                self.next_slot = (self.next_slot + 1) % self.settings.buffer_capacity;
            }
        }
    }

    /// The two Q heads' and two V heads' values, `([q1, q2], [v1, v2])`, for (state, advice).
    pub fn critic_values(&self, state: usize, advice: usize) -> Result<([f32; 2], [f32; 2]), ModelError> {
        let pair = self.features.state_advice(&[(state, advice)])?;
        let alone = self.features.state(&[state])?;
        let value = |mlp: &Mlp, input: &Tensor| -> Result<f32, ModelError> {
            Ok(mlp.forward(input)?.to_vec1::<f32>()?.first().copied().unwrap_or(0.0))
        };
        Ok((
            [value(&self.q[0], &pair)?, value(&self.q[1], &pair)?],
            [value(&self.v[0], &alone)?, value(&self.v[1], &alone)?],
        ))
    }

    /// One iteration after new transitions were remembered: `critic_steps` critic steps,
    /// then (after the warm-up) `actor_steps` actor steps.
    pub fn train(&mut self, states: &[OptionPolicy], rng: &mut impl Rng) -> Result<ArcherStats, ModelError> {
        let mut stats = ArcherStats { buffer: self.buffer.len(), ..ArcherStats::default() };
        if self.buffer.is_empty() {
            return Ok(stats);
        }
        for _ in 0..self.settings.critic_steps {
            let batch: Vec<Transition> =
                (0..self.settings.batch_size).filter_map(|_| self.buffer.choose(rng).copied()).collect();
            let (q_loss, v_loss) = self.critic_step(states, &batch, rng)?;
            stats.q_loss = q_loss;
            stats.v_loss = v_loss;
        }
        self.iterations += 1;
        if self.iterations > self.settings.warmup_iterations {
            for _ in 0..self.settings.actor_steps {
                let replayed: Vec<usize> = (0..self.settings.batch_size)
                    .filter_map(|_| self.buffer.choose(rng).map(|transition| transition.state))
                    .collect();
                let (loss, advantage) = self.actor_step(states, &replayed, rng)?;
                stats.actor_loss = loss;
                stats.advantage = advantage;
            }
            stats.actor_updated = true;
        }
        Ok(stats)
    }

    fn critic_step(
        &mut self,
        states: &[OptionPolicy],
        batch: &[Transition],
        rng: &mut impl Rng,
    ) -> Result<(f32, f32), ModelError> {
        let rewards: Vec<f32> = batch.iter().map(|transition| transition.reward).collect();
        let done: Vec<bool> = batch.iter().map(|transition| transition.next_state.is_none()).collect();
        // A done transition's next state is never read; any valid index stands in for it.
        let next: Vec<usize> =
            batch.iter().map(|transition| transition.next_state.unwrap_or(transition.state)).collect();
        let next_features = self.features.state(&next)?;
        let pairs: Vec<(usize, usize)> = batch.iter().map(|transition| (transition.state, transition.advice)).collect();
        let pair_features = self.features.state_advice(&pairs)?;
        // V's targets use advice the current actor would give now.
        let fresh: Vec<(usize, usize)> = batch
            .iter()
            .map(|transition| Ok((transition.state, self.act(states, transition.state, rng)?)))
            .collect::<Result<_, ModelError>>()?;
        let fresh_features = self.features.state_advice(&fresh)?;
        let state_features = self.features.state(&pairs.iter().map(|&(state, _)| state).collect::<Vec<_>>())?;
        let mut q_losses = Vec::new();
        let mut v_losses = Vec::new();
        for head in 0..2 {
            let next_values: Vec<f32> = self.v_target[head].forward(&next_features)?.to_vec1()?;
            let q_target =
                Tensor::new(q_targets(&rewards, &done, &next_values, self.settings.gamma).as_slice(), &Device::Cpu)?;
            q_losses.push((self.q[head].forward(&pair_features)? - q_target)?.sqr()?.mean_all()?);
            let v_target = self.q_target[head].forward(&fresh_features)?.detach();
            v_losses.push((self.v[head].forward(&state_features)? - v_target)?.sqr()?.mean_all()?);
        }
        let q_loss = (&q_losses[0] + &q_losses[1])?;
        let v_loss = (&v_losses[0] + &v_losses[1])?;
        self.critic_optimizer.backward_step(&(&q_loss + &v_loss)?)?;
        for head in 0..2 {
            self.q_target[head].polyak_from(&self.q[head], self.settings.tau)?;
            self.v_target[head].polyak_from(&self.v[head], self.settings.tau)?;
        }
        Ok((q_loss.to_scalar::<f32>()? / 2.0, v_loss.to_scalar::<f32>()? / 2.0))
    }

    /// REINFORCE at `replayed` states with freshly sampled advice, each utterance's log-prob
    /// weighted by its advantage under the critic.
    fn actor_step(
        &mut self,
        states: &[OptionPolicy],
        replayed: &[usize],
        rng: &mut impl Rng,
    ) -> Result<(f32, f32), ModelError> {
        // One utterance's graph at a time; the step takes the summed gradients.
        let mut gradients = GradientSum::new(self.adapters.vars());
        let mut loss = 0.0f32;
        let mut advantages = Vec::with_capacity(replayed.len());
        let count = replayed.len().max(1) as f64;
        for &state in replayed {
            let advice = self.act(states, state, rng)?;
            let (q, v) = self.critic_values(state, advice)?;
            let weight = advantage(q, v);
            advantages.push(weight);
            let log_prob = states[state].score(advice, Some(&self.adapters))?.log_probs.sum_all()?;
            let term = (log_prob * (-(weight as f64) / count))?;
            gradients.add(&term)?;
            loss += term.to_scalar::<f32>()?;
        }
        gradients.step(&mut self.actor_optimizer)?;
        self.distributions.iter_mut().for_each(|distribution| *distribution = None);
        Ok((loss, advantages.iter().sum::<f32>() / advantages.len().max(1) as f32))
    }
}
