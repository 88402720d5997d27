//! PPO (clipped surrogate, optionally clipped value loss, entropy bonus, GAE, Adam with
//! global grad-norm clipping) plus λ · KL(teacher ‖ student) over the advised samples.

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::buffer::RolloutBuffer;
use super::encoding::ObservationLayout;
use super::fused::{self, FusedNetwork, LossCoefficients, LossTargets, Workspace};
use super::model::ActorCritic;
use super::optimizer::{Adam, clip_grad_norm};
use super::{NUM_ACTIONS, StudentError};
use crate::env::scene::StudentSpec;

/// Generalised advantage estimates and returns (`advantage + value`) for a step-major
/// rollout of `num_envs` envs. `dones[i]` means the episode ended with step `i`, so nothing
/// is bootstrapped across it; `last_values` are the values of the states after the last step.
pub fn generalized_advantages(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    last_values: &[f32],
    num_envs: usize,
    gamma: f32,
    gae_lambda: f32,
) -> (Vec<f32>, Vec<f32>) {
    generalized_advantages_excluding(rewards, values, dones, &[], last_values, num_envs, gamma, gae_lambda)
}

/// `generalized_advantages` where the samples flagged in `excluded` (empty: none) were not the
/// student's: a sample followed by an excluded one bootstraps from that one's value (the
/// student's estimate of the state it left) and takes nothing of what came after it.
#[allow(clippy::too_many_arguments)]
pub fn generalized_advantages_excluding(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    excluded: &[bool],
    last_values: &[f32],
    num_envs: usize,
    gamma: f32,
    gae_lambda: f32,
) -> (Vec<f32>, Vec<f32>) {
    let samples = rewards.len();
    let steps = samples / num_envs.max(1);
    let mut advantages = vec![0.0f32; samples];
    for (env, &last_value) in last_values.iter().enumerate().take(num_envs) {
        let mut running = 0.0f32;
        for step in (0..steps).rev() {
            let index = step * num_envs + env;
            let next_value = if step + 1 < steps { values[index + num_envs] } else { last_value };
            let continues = if dones[index] { 0.0 } else { 1.0 };
            let delta = rewards[index] + gamma * next_value * continues - values[index];
            let next_excluded = step + 1 < steps && excluded.get(index + num_envs).copied().unwrap_or(false);
            let chained = if next_excluded { 0.0 } else { running };
            running = delta + gamma * gae_lambda * continues * chained;
            advantages[index] = running;
        }
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

/// PPO's clipped surrogate, negated for minimising: `-mean(min(r A, clip(r, 1±ε) A))`.
pub fn clipped_policy_loss(
    new_log_probs: &Tensor,
    old_log_probs: &Tensor,
    advantages: &Tensor,
    clip: f64,
) -> Result<Tensor, StudentError> {
    let ratio = (new_log_probs - old_log_probs)?.exp()?;
    let unclipped = (&ratio * advantages)?;
    let clipped = (ratio.clamp(1.0 - clip, 1.0 + clip)? * advantages)?;
    Ok(unclipped.minimum(&clipped)?.mean_all()?.neg()?)
}

/// The critic's loss: `mean((V - R)^2)`, or with `clip`, `mean(max((V - R)^2,
/// (V_old + clip(V - V_old, ±ε) - R)^2))` as in rl-starter-files (torch-ac).
pub fn value_loss(
    new_values: &Tensor,
    old_values: &Tensor,
    returns: &Tensor,
    clip: Option<f64>,
) -> Result<Tensor, StudentError> {
    let unclipped = (new_values - returns)?.sqr()?;
    let Some(clip) = clip else { return Ok(unclipped.mean_all()?) };
    let clipped_values = (old_values + (new_values - old_values)?.clamp(-clip, clip)?)?;
    let clipped = (clipped_values - returns)?.sqr()?;
    Ok(unclipped.maximum(&clipped)?.mean_all()?)
}

/// Mean of KL(teacher ‖ student) = Σ_a p_T (log p_T - log π_S) over the samples whose mask
/// is 1; 0 when none is. Actions the teacher gives probability 0 add nothing.
pub fn masked_teacher_kl(
    student_log_probs: &Tensor,
    teacher_probs: &Tensor,
    mask: &Tensor,
) -> Result<Tensor, StudentError> {
    let advised = f64::from(mask.sum_all()?.to_scalar::<f32>()?);
    let teacher_log_probs = teacher_probs.clamp(1e-12, 1.0)?.log()?;
    let per_sample = (teacher_probs * (teacher_log_probs - student_log_probs)?)?.sum(D::Minus1)?;
    Ok(((per_sample * mask)?.sum_all()? / advised.max(1.0))?)
}

/// What the student did in one vectorised step.
#[derive(Clone, Debug, Default)]
pub struct StudentStep {
    pub actions: Vec<u32>,
    pub log_probs: Vec<f32>,
    pub values: Vec<f32>,
    /// The most likely action per env (for agreement with the teacher).
    pub greedy_actions: Vec<u32>,
}

/// Averages over the minibatches of one PPO update.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct UpdateStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    /// `mean((r - 1) - log r)`, the low-variance estimator of KL(old ‖ new).
    pub approx_kl: f64,
    /// Fraction of samples whose ratio was clipped.
    pub clip_fraction: f64,
    /// KL(teacher ‖ student) over advised samples; None when no sample was advised.
    pub teacher_kl: Option<f64>,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// A ChaCha generator's exact position, to continue its stream after a restart.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    /// The 128-bit word position, in decimal (RON has no portable 128-bit integers).
    pub word_pos: String,
}

impl RngState {
    fn of(rng: &ChaCha8Rng) -> RngState {
        RngState { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    fn generator(&self) -> Result<ChaCha8Rng, StudentError> {
        let word_pos: u128 =
            self.word_pos.parse().map_err(|_| StudentError::Config(format!("bad rng word_pos {:?}", self.word_pos)))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// Everything that changes as the student learns: weights, optimizer moments and step
/// count, and its generator. Tensors are named `param.*`, `adam.first.*`, `adam.second.*`.
pub struct StudentState {
    pub tensors: HashMap<String, Tensor>,
    pub adam_steps: u64,
    pub rng: RngState,
}

/// The learner: network, optimiser, hyper-parameters and its own seeded generator (for
/// sampling actions and shuffling minibatches).
pub struct Student {
    model: ActorCritic,
    optimizer: Adam,
    spec: StudentSpec,
    rng: ChaCha8Rng,
    /// The fused forward/backward for the CNN and MLP (None: LLM4Teach's encoder, on candle),
    /// with a flat copy of the parameters that `update` and `restore` keep equal to the `Var`s.
    fused: Option<FusedStudent>,
}

/// The fused path's state: the network's layout, the parameters flattened, scratch space.
struct FusedStudent {
    network: FusedNetwork,
    parameters: Vec<f32>,
    /// Counts changes of `parameters`, so that acting rebuilds what it derives from them.
    version: u64,
    workspace: Workspace,
    acting: Workspace,
}

impl FusedStudent {
    /// Takes new parameter values.
    fn set_parameters(&mut self, parameters: Vec<f32>) {
        self.parameters = parameters;
        self.version += 1;
    }
}

impl Student {
    pub fn new(layout: ObservationLayout, spec: StudentSpec, seed: u64) -> Result<Student, StudentError> {
        spec.validate().map_err(StudentError::Config)?;
        let model = ActorCritic::new(layout, spec.encoder, seed)?;
        let parameters = model.parameters().iter().map(|(_, var)| var.clone()).collect();
        let optimizer = Adam::new(parameters, spec.lr, spec.adam_eps)?;
        // A different stream from the weights' so that both can be drawn from one seed.
        let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x05EE_DAC7);
        // DUET_STUDENT_UPDATE=candle runs the reference path (to compare speed and learning).
        let candle_only = std::env::var("DUET_STUDENT_UPDATE").is_ok_and(|path| path == "candle");
        let fused = match FusedNetwork::new(model.layout(), spec.encoder, model.parameters())? {
            Some(_) if candle_only => None,
            Some(network) => {
                let parameters = network.flatten(model.parameters())?;
                Some(FusedStudent {
                    network,
                    parameters,
                    version: 0,
                    workspace: Workspace::default(),
                    acting: Workspace::default(),
                })
            }
            None => None,
        };
        Ok(Student { model, optimizer, spec, rng, fused })
    }

    /// A student that learns with candle's autograd only (the reference for the fused path).
    pub fn new_on_candle(layout: ObservationLayout, spec: StudentSpec, seed: u64) -> Result<Student, StudentError> {
        let mut student = Student::new(layout, spec, seed)?;
        student.fused = None;
        Ok(student)
    }

    /// Whether updates (and acting) run the fused forward/backward instead of candle's.
    pub fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    pub fn model(&self) -> &ActorCritic {
        &self.model
    }

    pub fn spec(&self) -> &StudentSpec {
        &self.spec
    }

    /// A snapshot of what learning has changed (for checkpoints).
    pub fn state(&self) -> StudentState {
        let (first, second) = self.optimizer.moments();
        let mut tensors = HashMap::new();
        for (index, (name, var)) in self.model.parameters().iter().enumerate() {
            tensors.insert(format!("param.{name}"), var.as_tensor().detach());
            tensors.insert(format!("adam.first.{name}"), first[index].clone());
            tensors.insert(format!("adam.second.{name}"), second[index].clone());
        }
        StudentState { tensors, adam_steps: self.optimizer.steps(), rng: RngState::of(&self.rng) }
    }

    /// Puts back a snapshot taken from a student with the same network.
    pub fn restore(&mut self, state: &StudentState) -> Result<(), StudentError> {
        let take = |key: String, shape: &[usize]| -> Result<Tensor, StudentError> {
            let tensor =
                state.tensors.get(&key).ok_or_else(|| StudentError::Config(format!("missing tensor {key}")))?;
            if tensor.dims() != shape || tensor.dtype() != DType::F32 {
                return Err(StudentError::Config(format!(
                    "tensor {key} is {:?} {:?}, expected f32 {shape:?}",
                    tensor.dtype(),
                    tensor.dims()
                )));
            }
            Ok(tensor.clone())
        };
        let (mut values, mut first, mut second) = (Vec::new(), Vec::new(), Vec::new());
        for (name, var) in self.model.parameters() {
            values.push(take(format!("param.{name}"), var.dims())?);
            first.push(take(format!("adam.first.{name}"), var.dims())?);
            second.push(take(format!("adam.second.{name}"), var.dims())?);
        }
        let rng = state.rng.generator()?;
        self.optimizer.restore(state.adam_steps, first, second)?;
        for ((_, var), value) in self.model.parameters().iter().zip(values) {
            var.set(&value)?;
        }
        if let Some(fused) = &mut self.fused {
            let parameters = fused.network.flatten(self.model.parameters())?;
            fused.set_parameters(parameters);
        }
        self.rng = rng;
        Ok(())
    }

    /// Samples one action per observation in `raw` (a whole number of observations).
    pub fn act(&mut self, raw: &[u8]) -> Result<StudentStep, StudentError> {
        let (log_probs, values) = match &mut self.fused {
            Some(fused) => {
                let inputs = fused.network.sparse_inputs(raw);
                let samples: Vec<u32> = (0..(raw.len() / self.model.layout().raw_len().max(1)) as u32).collect();
                fused.acting.parameters_version = Some(fused.version);
                fused.network.forward(&inputs, &samples, &fused.parameters, &mut fused.acting);
                (fused::log_softmax_rows(&fused.acting.logits), fused.acting.values.clone())
            }
            None => {
                let (logits, values) = self.model.forward(&self.model.input(raw)?)?;
                let log_probs: Vec<Vec<f32>> = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2()?;
                let log_probs = log_probs
                    .iter()
                    .map(|row| std::array::from_fn(|a| row.get(a).copied().unwrap_or(f32::NEG_INFINITY)))
                    .collect();
                (log_probs, values.to_vec1()?)
            }
        };
        let mut step = StudentStep { values, ..StudentStep::default() };
        for row in &log_probs {
            let draw: f32 = self.rng.random();
            let mut cumulative = 0.0f32;
            // Falls back to the last action if rounding leaves the draw above the total.
            let mut action = NUM_ACTIONS - 1;
            for (index, log_prob) in row.iter().enumerate() {
                cumulative += log_prob.exp();
                if draw < cumulative {
                    action = index;
                    break;
                }
            }
            let greedy = (0..NUM_ACTIONS).fold(0, |best, i| if row[i] > row[best] { i } else { best });
            step.actions.push(action as u32);
            step.log_probs.push(row[action]);
            step.greedy_actions.push(greedy as u32);
        }
        Ok(step)
    }

    /// State values of the observations in `raw`.
    pub fn values(&self, raw: &[u8]) -> Result<Vec<f32>, StudentError> {
        if let Some(fused) = &self.fused {
            let inputs = fused.network.sparse_inputs(raw);
            let samples: Vec<u32> = (0..(raw.len() / self.model.layout().raw_len().max(1)) as u32).collect();
            let mut workspace = Workspace::default();
            fused.network.forward(&inputs, &samples, &fused.parameters, &mut workspace);
            return Ok(workspace.values);
        }
        let (_, values) = self.model.forward(&self.model.input(raw)?)?;
        Ok(values.to_vec1()?)
    }

    /// One PPO update over a full rollout; `last_values` are the values after its last
    /// step and `distill_lambda` weights the teacher-KL term. Runs the fused path when the
    /// encoder has one, candle's autograd otherwise.
    pub fn update(
        &mut self,
        rollout: &RolloutBuffer,
        last_values: &[f32],
        distill_lambda: f64,
    ) -> Result<UpdateStats, StudentError> {
        if self.fused.is_some() {
            self.update_fused(rollout, last_values, distill_lambda)
        } else {
            self.update_candle(rollout, last_values, distill_lambda)
        }
    }

    /// Advantages and returns of a full rollout, checked.
    /// GAE advantages and returns of `rollout` under this student's γ and λ (`last_values`: the
    /// values of the states after its last step).
    pub fn advantages(
        &self,
        rollout: &RolloutBuffer,
        last_values: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), StudentError> {
        let samples = rollout.len();
        if samples == 0 || rollout.rewards.len() != samples {
            return Err(StudentError::Config("update needs a rollout with an outcome for every decision".into()));
        }
        Ok(generalized_advantages_excluding(
            &rollout.rewards,
            &rollout.values,
            &rollout.dones,
            &rollout.excluded,
            last_values,
            rollout.num_envs,
            self.spec.gamma as f32,
            self.spec.gae_lambda as f32,
        ))
    }

    /// Fisher-Yates with the student's own generator (both paths shuffle the same way).
    fn shuffle(&mut self, order: &mut [u32]) {
        for i in (1..order.len()).rev() {
            order.swap(i, self.rng.random_range(0..=i));
        }
    }

    /// The update on the fused forward/backward and a flat Adam step (same minibatches, loss
    /// and optimizer as `update_candle`; only the arithmetic's order differs).
    fn update_fused(
        &mut self,
        rollout: &RolloutBuffer,
        last_values: &[f32],
        distill_lambda: f64,
    ) -> Result<UpdateStats, StudentError> {
        let spec = self.spec.clone();
        let (advantages, returns) = self.advantages(rollout, last_values)?;
        let Some(mut fused) = self.fused.take() else {
            return self.update_candle(rollout, last_values, distill_lambda);
        };
        let inputs = fused.network.sparse_inputs(&rollout.observations);
        let coefficients = LossCoefficients {
            clip: spec.clip as f32,
            value_clip: spec.clip_value.then_some(spec.clip as f32),
            entropy: spec.entropy_coef as f32,
            value: spec.value_coef as f32,
            distill_lambda: distill_lambda as f32,
        };
        let mut grads = vec![0.0f32; fused.network.parameter_len()];
        let (mut grad_logits, mut grad_values) = (Vec::new(), Vec::new());
        let mut batch = MinibatchColumns::default();
        let mut order = trained_samples(rollout);
        let minibatch = spec.minibatch.min(order.len()).max(1);
        let mut totals = UpdateStats::default();
        let (mut teacher_kl_total, mut teacher_kl_batches, mut batches) = (0.0, 0usize, 0usize);
        let mut outcome = Ok(());
        'epochs: for _ in 0..spec.epochs {
            self.shuffle(&mut order);
            for chunk in order.chunks(minibatch) {
                batch.gather(chunk, rollout, &advantages, &returns, spec.normalize_advantages);
                fused.network.forward(&inputs, chunk, &fused.parameters, &mut fused.workspace);
                let targets = batch.targets();
                let loss = fused::ppo_loss_gradient(
                    &fused.workspace.logits,
                    &fused.workspace.values,
                    &targets,
                    &coefficients,
                    &mut grad_logits,
                    &mut grad_values,
                );
                fused.network.backward(
                    &inputs,
                    chunk,
                    &fused.parameters,
                    &grad_logits,
                    &grad_values,
                    &mut fused.workspace,
                    &mut grads,
                );
                // Global norm clipping as `clip_grad_norm` does it.
                let grad_norm = grads.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt();
                let scale = spec.max_grad_norm / (grad_norm + 1e-6);
                let scale = (scale < 1.0).then_some(scale as f32);
                if let Err(error) = self.optimizer.step_flat(&mut fused.parameters, &grads, scale) {
                    outcome = Err(error);
                    break 'epochs;
                }
                if let Some(kl) = loss.teacher_kl {
                    teacher_kl_total += f64::from(kl);
                    teacher_kl_batches += 1;
                }
                totals.policy_loss += f64::from(loss.policy);
                totals.value_loss += f64::from(loss.value);
                totals.entropy += f64::from(loss.entropy);
                totals.approx_kl += f64::from(loss.approx_kl);
                totals.clip_fraction += f64::from(loss.clip_fraction);
                totals.grad_norm += grad_norm;
                batches += 1;
            }
        }
        fused.version += 1;
        let written = fused.network.write_back(&fused.parameters, self.model.parameters());
        self.fused = Some(fused);
        outcome.and(written)?;
        Ok(averaged(totals, batches, teacher_kl_total, teacher_kl_batches))
    }

    /// The update on candle's autograd (the reference implementation; LLM4Teach's encoder).
    pub fn update_candle(
        &mut self,
        rollout: &RolloutBuffer,
        last_values: &[f32],
        distill_lambda: f64,
    ) -> Result<UpdateStats, StudentError> {
        let spec = self.spec.clone();
        let (advantages, returns) = self.advantages(rollout, last_values)?;
        let device = Device::Cpu;
        let inputs = self.model.input(&rollout.observations)?;
        let parameters: Vec<_> = self.model.parameters().iter().map(|(_, var)| var.clone()).collect();

        let mut batch = MinibatchColumns::default();
        let mut order = trained_samples(rollout);
        let minibatch = spec.minibatch.min(order.len()).max(1);
        let mut totals = UpdateStats::default();
        let (mut teacher_kl_total, mut teacher_kl_batches, mut batches) = (0.0, 0usize, 0usize);
        for _ in 0..spec.epochs {
            self.shuffle(&mut order);
            for chunk in order.chunks(minibatch) {
                batch.gather(chunk, rollout, &advantages, &returns, spec.normalize_advantages);
                let index = Tensor::from_slice(chunk, chunk.len(), &device)?;
                let terms = candle_minibatch_loss(
                    &self.model,
                    &inputs.index_select(&index, 0)?,
                    &batch,
                    &spec,
                    distill_lambda,
                )?;
                let mut grads = terms.loss.backward()?;
                let grad_norm = clip_grad_norm(&mut grads, &parameters, spec.max_grad_norm)?;
                self.optimizer.step(&grads)?;
                if let Some(kl) = terms.teacher_kl {
                    teacher_kl_total += f64::from(kl);
                    teacher_kl_batches += 1;
                }
                totals.policy_loss += f64::from(terms.stats.policy);
                totals.value_loss += f64::from(terms.stats.value);
                totals.entropy += f64::from(terms.stats.entropy);
                totals.approx_kl += f64::from(terms.stats.approx_kl);
                totals.clip_fraction += f64::from(terms.stats.clip_fraction);
                totals.grad_norm += grad_norm;
                batches += 1;
            }
        }
        if let Some(fused) = &mut self.fused {
            let parameters = fused.network.flatten(self.model.parameters())?;
            fused.set_parameters(parameters);
        }
        Ok(averaged(totals, batches, teacher_kl_total, teacher_kl_batches))
    }
}

/// The samples the loss learns from: all but those the rollout excludes (an update whose
/// samples are all excluded has no minibatch and changes nothing).
fn trained_samples(rollout: &RolloutBuffer) -> Vec<u32> {
    (0..rollout.len() as u32).filter(|&index| !rollout.is_excluded(index as usize)).collect()
}

/// Per-minibatch sums turned into the update's averages.
fn averaged(totals: UpdateStats, batches: usize, teacher_kl_total: f64, teacher_kl_batches: usize) -> UpdateStats {
    let per_batch = batches.max(1) as f64;
    UpdateStats {
        policy_loss: totals.policy_loss / per_batch,
        value_loss: totals.value_loss / per_batch,
        entropy: totals.entropy / per_batch,
        approx_kl: totals.approx_kl / per_batch,
        clip_fraction: totals.clip_fraction / per_batch,
        teacher_kl: (teacher_kl_batches > 0).then(|| teacher_kl_total / teacher_kl_batches as f64),
        grad_norm: totals.grad_norm / per_batch,
    }
}

/// One minibatch's rollout columns, gathered in the minibatch's order.
#[derive(Default)]
pub(crate) struct MinibatchColumns {
    pub actions: Vec<u32>,
    pub old_log_probs: Vec<f32>,
    /// Normalised per minibatch when the spec says so.
    pub advantages: Vec<f32>,
    pub old_values: Vec<f32>,
    pub returns: Vec<f32>,
    /// `[batch, NUM_ACTIONS]`, zeros where the teacher gave nothing.
    pub teacher_probs: Vec<f32>,
    pub teacher_mask: Vec<bool>,
}

impl MinibatchColumns {
    /// The columns as the fused loss gradient takes them.
    pub(crate) fn targets(&self) -> LossTargets<'_> {
        LossTargets {
            actions: &self.actions,
            old_log_probs: &self.old_log_probs,
            advantages: &self.advantages,
            old_values: &self.old_values,
            returns: &self.returns,
            teacher_probs: &self.teacher_probs,
            teacher_mask: &self.teacher_mask,
        }
    }

    pub(crate) fn gather(
        &mut self,
        chunk: &[u32],
        rollout: &RolloutBuffer,
        advantages: &[f32],
        returns: &[f32],
        normalize: bool,
    ) {
        let pick = |column: &[f32], out: &mut Vec<f32>| {
            out.clear();
            out.extend(chunk.iter().map(|&i| column[i as usize]));
        };
        pick(&rollout.log_probs, &mut self.old_log_probs);
        pick(advantages, &mut self.advantages);
        if normalize {
            self.advantages = normalized(&self.advantages);
        }
        pick(&rollout.values, &mut self.old_values);
        pick(returns, &mut self.returns);
        self.actions.clear();
        self.actions.extend(chunk.iter().map(|&i| rollout.actions[i as usize]));
        self.teacher_probs.clear();
        self.teacher_probs.extend(chunk.iter().flat_map(|&i| rollout.teacher_probs[i as usize]));
        self.teacher_mask.clear();
        self.teacher_mask.extend(chunk.iter().map(|&i| rollout.teacher_mask[i as usize]));
    }
}

/// One minibatch's loss on candle and its terms.
pub(crate) struct CandleLoss {
    pub loss: Tensor,
    pub stats: fused::MinibatchLoss,
    pub teacher_kl: Option<f32>,
}

/// The minibatch loss built from candle ops (clip loss - c_e entropy + c_v value loss, plus
/// λ · masked KL when any sample is advised): what `loss.backward()` differentiates.
pub(crate) fn candle_minibatch_loss(
    model: &ActorCritic,
    inputs: &Tensor,
    batch: &MinibatchColumns,
    spec: &StudentSpec,
    distill_lambda: f64,
) -> Result<CandleLoss, StudentError> {
    let device = Device::Cpu;
    let size = batch.actions.len();
    let actions = Tensor::from_slice(&batch.actions, (size, 1), &device)?;
    let old_log_probs = Tensor::from_slice(&batch.old_log_probs, size, &device)?;
    let advantages = Tensor::from_slice(&batch.advantages, size, &device)?;
    let old_values = Tensor::from_slice(&batch.old_values, size, &device)?;
    let returns = Tensor::from_slice(&batch.returns, size, &device)?;
    let teacher_probs = Tensor::from_slice(&batch.teacher_probs, (size, NUM_ACTIONS), &device)?;
    let mask_values: Vec<f32> = batch.teacher_mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    let mask = Tensor::from_slice(&mask_values, size, &device)?;
    let (logits, values) = model.forward(inputs)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let new_log_probs = log_probs.gather(&actions, 1)?.squeeze(1)?;
    let entropy = (log_probs.exp()? * &log_probs)?.sum(D::Minus1)?.mean_all()?.neg()?;
    let policy = clipped_policy_loss(&new_log_probs, &old_log_probs, &advantages, spec.clip)?;
    let critic = value_loss(&values, &old_values, &returns, spec.clip_value.then_some(spec.clip))?;
    let mut loss = ((&policy - (&entropy * spec.entropy_coef)?)? + (&critic * spec.value_coef)?)?;
    let mut teacher_kl = None;
    if batch.teacher_mask.iter().any(|&m| m) {
        let kl = masked_teacher_kl(&log_probs, &teacher_probs, &mask)?;
        if distill_lambda > 0.0 {
            loss = (loss + (&kl * distill_lambda)?)?;
        }
        teacher_kl = Some(kl.to_scalar::<f32>()?);
    }
    let log_ratio = (new_log_probs.detach() - old_log_probs)?;
    let ratio = log_ratio.exp()?;
    let approx_kl = ((&ratio - 1.0)? - &log_ratio)?.mean_all()?.to_scalar::<f32>()?;
    let clipped = (ratio - 1.0)?.abs()?.gt(spec.clip)?.to_dtype(DType::F32)?.mean_all()?;
    let stats = fused::MinibatchLoss {
        policy: policy.to_scalar::<f32>()?,
        value: critic.to_scalar::<f32>()?,
        entropy: entropy.to_scalar::<f32>()?,
        approx_kl,
        clip_fraction: clipped.to_scalar::<f32>()?,
        teacher_kl,
    };
    Ok(CandleLoss { loss, stats, teacher_kl })
}

/// `(x - mean) / (std + 1e-8)` with the unbiased std, as PyTorch's `.std()`.
fn normalized(values: &[f32]) -> Vec<f32> {
    let n = values.len();
    if n < 2 {
        return values.to_vec();
    }
    let mean = values.iter().sum::<f32>() / n as f32;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1) as f32;
    let scale = 1.0 / (variance.sqrt() + 1e-8);
    values.iter().map(|v| (v - mean) * scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: &[f32]) -> Tensor {
        Tensor::from_slice(values, values.len(), &Device::Cpu).expect("tensor")
    }

    fn scalar(t: Tensor) -> f32 {
        t.to_scalar::<f32>().expect("scalar")
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn gae_matches_hand_computation() {
        // One env, three steps, the episode ends after step 1; gamma 0.9, lambda 0.8.
        let rewards = [1.0, 2.0, 0.5];
        let values = [0.5, 1.0, 2.0];
        let dones = [false, true, false];
        let (advantages, returns) = generalized_advantages(&rewards, &values, &dones, &[3.0], 1, 0.9, 0.8);
        // step 2: delta = 0.5 + 0.9*3.0 - 2.0 = 1.2; A2 = 1.2
        // step 1: done -> delta = 2.0 - 1.0 = 1.0; A1 = 1.0 (no carry)
        // step 0: delta = 1.0 + 0.9*1.0 - 0.5 = 1.4; A0 = 1.4 + 0.72*1.0 = 2.12
        let expected = [2.12, 1.0, 1.2];
        for (a, e) in advantages.iter().zip(expected) {
            assert!(close(*a, e), "{advantages:?}");
        }
        for ((r, a), v) in returns.iter().zip(expected).zip(values) {
            assert!(close(*r, a + v));
        }
    }

    #[test]
    fn gae_keeps_envs_apart() {
        // Two envs, two steps, step-major: env 0 gets rewards, env 1 nothing and ends at once.
        let rewards = [1.0, 0.0, 1.0, 0.0];
        let values = [0.0; 4];
        let dones = [false, true, false, false];
        let (advantages, _) = generalized_advantages(&rewards, &values, &dones, &[0.0, 10.0], 2, 0.5, 1.0);
        // env 0: A1 = 1, A0 = 1 + 0.5*1 = 1.5. env 1: A1 = 0.5*10 = 5; A0 = 0 (done).
        assert_eq!(advantages, vec![1.5, 0.0, 1.0, 5.0]);
    }

    #[test]
    fn an_excluded_sample_cuts_the_chain_behind_it_but_is_bootstrapped_from() {
        // One env, three steps; step 1 was the user's (manual control), gamma 0.5, lambda 1.
        let rewards = [1.0, 8.0, 2.0];
        let values = [0.0, 4.0, 0.0];
        let dones = [false; 3];
        let excluded = [false, true, false];
        let (advantages, _) =
            generalized_advantages_excluding(&rewards, &values, &dones, &excluded, &[0.0], 1, 0.5, 1.0);
        // step 0: delta = 1 + 0.5*4 - 0 = 3, and nothing of steps 1-2 (the user's reward 8).
        assert_eq!(advantages[0], 3.0);
        assert_eq!(advantages[2], 2.0);
        // No exclusions: the plain estimate.
        let (plain, _) = generalized_advantages_excluding(&rewards, &values, &dones, &[], &[0.0], 1, 0.5, 1.0);
        assert_eq!(plain, generalized_advantages(&rewards, &values, &dones, &[0.0], 1, 0.5, 1.0).0);
        assert_ne!(plain[0], 3.0);
    }

    #[test]
    fn clipped_policy_loss_matches_hand_computation() {
        // Ratios e^0.5 = 1.6487 (clipped to 1.2), e^-0.5 = 0.6065 (clipped to 0.8), 1.
        let new = tensor(&[0.5, -0.5, 0.0]);
        let old = tensor(&[0.0, 0.0, 0.0]);
        let advantages = tensor(&[2.0, 2.0, -1.0]);
        // min(1.6487*2, 1.2*2) = 2.4; min(0.6065*2, 0.8*2) = 1.2131; min(-1, -1) = -1.
        let expected = -(2.4 + 2.0 * (-0.5f32).exp() - 1.0) / 3.0;
        let loss = scalar(clipped_policy_loss(&new, &old, &advantages, 0.2).expect("loss"));
        assert!(close(loss, expected), "{loss} vs {expected}");
        // Negative advantage with a large ratio: the unclipped (more pessimistic) term wins.
        let loss = scalar(clipped_policy_loss(&tensor(&[0.5]), &tensor(&[0.0]), &tensor(&[-1.0]), 0.2).expect("l"));
        assert!(close(loss, 0.5f32.exp()), "{loss}");
    }

    #[test]
    fn value_loss_matches_hand_computation() {
        let new = tensor(&[1.0, 0.0]);
        let old = tensor(&[0.5, 0.5]);
        let returns = tensor(&[2.0, 0.4]);
        // Unclipped: (1-2)^2 = 1, (0-0.4)^2 = 0.16 -> mean 0.58.
        assert!(close(scalar(value_loss(&new, &old, &returns, None).expect("l")), 0.58));
        // Clip 0.2: clipped values 0.7, 0.3 -> (0.7-2)^2 = 1.69, (0.3-0.4)^2 = 0.01;
        // max per sample: 1.69, 0.16 -> mean 0.925.
        assert!(close(scalar(value_loss(&new, &old, &returns, Some(0.2)).expect("l")), 0.925));
    }

    #[test]
    fn teacher_kl_is_masked_and_skips_zero_probabilities() {
        let student = Tensor::from_slice(&[0.25f32, 0.75, 0.5, 0.5], (2, 2), &Device::Cpu)
            .and_then(|t| t.log())
            .expect("log probs");
        let teacher = Tensor::from_slice(&[1.0f32, 0.0, 0.5, 0.5], (2, 2), &Device::Cpu).expect("teacher");
        // Sample 0: KL = 1*ln(1/0.25) = ln 4; sample 1: identical, KL = 0.
        let both = scalar(masked_teacher_kl(&student, &teacher, &tensor(&[1.0, 1.0])).expect("kl"));
        assert!(close(both, 4f32.ln() / 2.0), "{both}");
        let first = scalar(masked_teacher_kl(&student, &teacher, &tensor(&[1.0, 0.0])).expect("kl"));
        assert!(close(first, 4f32.ln()), "{first}");
        let second = scalar(masked_teacher_kl(&student, &teacher, &tensor(&[0.0, 1.0])).expect("kl"));
        assert!(close(second, 0.0), "{second}");
        let none = scalar(masked_teacher_kl(&student, &teacher, &tensor(&[0.0, 0.0])).expect("kl"));
        assert_eq!(none, 0.0);
    }

    #[test]
    fn teacher_kl_gradient_pulls_the_student_towards_the_teacher() {
        let layout = ObservationLayout { rows: 1, cols: 1, cardinalities: vec![2] };
        let spec =
            StudentSpec { encoder: crate::env::scene::EncoderKind::Mlp, entropy_coef: 0.0, ..StudentSpec::default() };
        let mut student = Student::new(layout, spec, 3).expect("student");
        // Rewards all zero: PPO's own terms vanish (advantages 0, values near 0); the KL
        // term alone moves the policy towards action 2.
        let mut teacher = [0.0f32; NUM_ACTIONS];
        teacher[2] = 1.0;
        let mut rollout = RolloutBuffer::new(4, 8, 1);
        for _ in 0..8 {
            let step = student.act(&[1, 1, 1, 1]).expect("act");
            rollout.push_decision(&[1, 1, 1, 1], &step.actions, &step.log_probs, &step.values, &[Some(teacher); 4]);
            rollout.push_outcome(&[0.0; 4], &[false; 4]);
        }
        let before = action_prob(&student, 2);
        let last = student.values(&[1, 1, 1, 1]).expect("values");
        let stats = student.update(&rollout, &last, 1.0).expect("update");
        assert!(stats.teacher_kl.is_some());
        assert!(action_prob(&student, 2) > before + 0.05, "{before} -> {}", action_prob(&student, 2));
    }

    fn action_prob(student: &Student, action: usize) -> f32 {
        let (logits, _) = student.model().forward(&student.model().input(&[1]).expect("input")).expect("forward");
        let probs: Vec<Vec<f32>> = candle_nn::ops::softmax(&logits, 1).and_then(|p| p.to_vec2()).expect("probs");
        probs[0][action]
    }

    #[test]
    fn normalisation_uses_the_unbiased_std() {
        let normalized = normalized(&[1.0, 2.0, 3.0]);
        assert!(close(normalized[0], -1.0) && close(normalized[1], 0.0) && close(normalized[2], 1.0), "{normalized:?}");
    }
}
