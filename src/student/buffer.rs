//! The rollout: per step and env, what the student saw and did and what followed, with the
//! teacher's distribution and whether there was one. Flat, step-major (`step * envs + env`).

use super::NUM_ACTIONS;
use super::teacher::ActionDistribution;

/// One rollout of `steps` vectorised steps over `num_envs` envs.
#[derive(Clone, Debug)]
pub struct RolloutBuffer {
    pub num_envs: usize,
    pub steps: usize,
    pub observation_len: usize,
    pub observations: Vec<u8>,
    pub actions: Vec<u32>,
    pub log_probs: Vec<f32>,
    pub values: Vec<f32>,
    pub rewards: Vec<f32>,
    /// The episode ended with this step (terminated or truncated; no bootstrap across).
    pub dones: Vec<bool>,
    /// The teacher's distribution (zeros where it gave none).
    pub teacher_probs: Vec<ActionDistribution>,
    /// Whether the teacher advised on this sample.
    pub teacher_mask: Vec<bool>,
    /// Samples the update leaves out of its loss (an env under the user's manual control);
    /// empty while there are none, else one flag per sample.
    pub excluded: Vec<bool>,
}

impl RolloutBuffer {
    pub fn new(num_envs: usize, steps: usize, observation_len: usize) -> RolloutBuffer {
        let samples = num_envs * steps;
        RolloutBuffer {
            num_envs,
            steps,
            observation_len,
            observations: Vec::with_capacity(samples * observation_len),
            actions: Vec::with_capacity(samples),
            log_probs: Vec::with_capacity(samples),
            values: Vec::with_capacity(samples),
            rewards: Vec::with_capacity(samples),
            dones: Vec::with_capacity(samples),
            teacher_probs: Vec::with_capacity(samples),
            teacher_mask: Vec::with_capacity(samples),
            excluded: Vec::new(),
        }
    }

    /// Samples stored so far.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Vectorised steps stored so far.
    pub fn steps_filled(&self) -> usize {
        self.len() / self.num_envs.max(1)
    }

    pub fn is_full(&self) -> bool {
        self.steps_filled() >= self.steps
    }

    pub fn clear(&mut self) {
        self.observations.clear();
        self.actions.clear();
        self.log_probs.clear();
        self.values.clear();
        self.rewards.clear();
        self.dones.clear();
        self.teacher_probs.clear();
        self.teacher_mask.clear();
        self.excluded.clear();
    }

    /// Leaves env `env`'s latest decision out of the update's loss.
    pub fn exclude_latest(&mut self, env: usize) {
        let Some(index) = (self.steps_filled().checked_sub(1)).map(|step| step * self.num_envs + env) else {
            return;
        };
        if index < self.len() {
            self.excluded.resize(self.len(), false);
            self.excluded[index] = true;
        }
    }

    /// Whether sample `index` is left out of the loss.
    pub fn is_excluded(&self, index: usize) -> bool {
        self.excluded.get(index).copied().unwrap_or(false)
    }

    /// Stores what every env saw and the student did, before stepping.
    pub fn push_decision(
        &mut self,
        observations: &[u8],
        actions: &[u32],
        log_probs: &[f32],
        values: &[f32],
        advice: &[Option<ActionDistribution>],
    ) {
        debug_assert_eq!(observations.len(), self.num_envs * self.observation_len);
        self.observations.extend_from_slice(observations);
        self.actions.extend_from_slice(actions);
        self.log_probs.extend_from_slice(log_probs);
        self.values.extend_from_slice(values);
        for advised in advice {
            self.teacher_probs.push(advised.unwrap_or([0.0; NUM_ACTIONS]));
            self.teacher_mask.push(advised.is_some());
        }
    }

    /// Stores what the step returned, for the decisions pushed last.
    pub fn push_outcome(&mut self, rewards: &[f32], dones: &[bool]) {
        self.rewards.extend_from_slice(rewards);
        self.dones.extend_from_slice(dones);
    }
}
