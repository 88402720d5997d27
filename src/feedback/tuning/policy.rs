//! The teacher as a policy over advice utterances for tuning: decoding constrained to the
//! legal option phrases, with per-token log-probabilities differentiable in LoRA adapters.
//!
//! An utterance is one option phrase (" pick up the red key\n"), chosen token by token among
//! the tokens that continue some legal phrase from what was chosen so far (the same
//! constrained decoding the advisor scores with). Tokens with no alternative have log-prob 0.

use candle_core::{D, IndexOp, Tensor};
use rand::Rng;

use crate::teacher::llm::{LanguageModel, LoraAdapters, ModelError};

/// One decoding step of an option: the candidate token ids there and which is the option's.
#[derive(Clone, Debug, PartialEq)]
struct Step {
    candidates: Vec<u32>,
    chosen: usize,
}

/// A prompt and its legal option phrases, tokenized, read as a policy of `model`.
#[derive(Debug)]
pub struct OptionPolicy<'m> {
    model: &'m LanguageModel,
    prompt: Vec<u32>,
    options: Vec<Vec<u32>>,
    /// Per option, its decoding steps.
    steps: Vec<Vec<Step>>,
}

/// What scoring one option gave: per-token log-probs `[tokens]` and the hidden states that
/// predicted them `[tokens, hidden]` (for a value head), both carrying the backward graph.
#[derive(Debug)]
pub struct OptionScores {
    pub log_probs: Tensor,
    pub hidden: Tensor,
}

impl<'m> OptionPolicy<'m> {
    /// `prompt` (non-empty) followed by one of `options` (distinct, non-empty token
    /// sequences, none a prefix of another).
    pub fn new(model: &'m LanguageModel, prompt: Vec<u32>, options: Vec<Vec<u32>>) -> Result<Self, ModelError> {
        if prompt.is_empty() || options.is_empty() || options.iter().any(Vec::is_empty) {
            return Err(ModelError::NoTokens);
        }
        for (index, option) in options.iter().enumerate() {
            if options.iter().enumerate().any(|(other, longer)| other != index && longer.starts_with(option)) {
                return Err(ModelError::Unsupported(format!("option {index} is a prefix of another option")));
            }
        }
        let steps = options
            .iter()
            .map(|option| {
                (0..option.len())
                    .map(|depth| {
                        let mut candidates: Vec<u32> = options
                            .iter()
                            .filter(|other| other.len() > depth && other[..depth] == option[..depth])
                            .map(|other| other[depth])
                            .collect();
                        candidates.sort_unstable();
                        candidates.dedup();
                        let chosen = candidates.iter().position(|&token| token == option[depth]).unwrap_or(0);
                        Step { candidates, chosen }
                    })
                    .collect()
            })
            .collect();
        Ok(Self { model, prompt, options, steps })
    }

    /// The prompt's tokens.
    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }

    pub fn option_count(&self) -> usize {
        self.options.len()
    }

    /// The tokens of option `option`.
    pub fn option_tokens(&self, option: usize) -> &[u32] {
        &self.options[option]
    }

    /// Per-token constrained log-probs of `option` after the prompt with `adapters` (none:
    /// the frozen base), and the hidden states that predicted each token.
    pub fn score(&self, option: usize, adapters: Option<&LoraAdapters>) -> Result<OptionScores, ModelError> {
        let tokens: Vec<u32> = self.prompt.iter().chain(&self.options[option]).copied().collect();
        let hidden_states = self.model.differentiable_hidden_states(&tokens, adapters)?;
        let length = self.options[option].len();
        let hidden = hidden_states.narrow(0, self.prompt.len() - 1, length)?;
        let mut log_probs = Vec::with_capacity(length);
        for (depth, step) in self.steps[option].iter().enumerate() {
            let row = hidden.i(depth)?.unsqueeze(0)?;
            let logits = self.model.logits_for(&row, &step.candidates)?;
            let log_softmax = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
            log_probs.push(log_softmax.i((0, step.chosen))?);
        }
        Ok(OptionScores { log_probs: Tensor::stack(&log_probs, 0)?, hidden })
    }

    /// Each option's probability under constrained decoding (no backward graph kept).
    pub fn probabilities(&self, adapters: Option<&LoraAdapters>) -> Result<Vec<f32>, ModelError> {
        Ok(self.scored(adapters)?.0)
    }

    /// Each option's probability and its scores, detached.
    fn scored(&self, adapters: Option<&LoraAdapters>) -> Result<(Vec<f32>, Vec<OptionScores>), ModelError> {
        let mut probabilities = Vec::with_capacity(self.options.len());
        let mut scores = Vec::with_capacity(self.options.len());
        for option in 0..self.options.len() {
            let OptionScores { log_probs, hidden } = self.score(option, adapters)?;
            let log_probs = log_probs.detach();
            probabilities.push(log_probs.sum_all()?.to_scalar::<f32>()?.exp());
            scores.push(OptionScores { log_probs, hidden: hidden.detach() });
        }
        Ok((probabilities, scores))
    }

    /// An option drawn from [`OptionPolicy::probabilities`], with its scores (detached), which
    /// sampling computed anyway: what freezing a rollout needs without scoring the option again.
    pub fn sample_scored(
        &self,
        adapters: Option<&LoraAdapters>,
        rng: &mut impl Rng,
    ) -> Result<(usize, OptionScores), ModelError> {
        let (probabilities, mut scores) = self.scored(adapters)?;
        let chosen = draw(&probabilities, rng);
        Ok((chosen, scores.swap_remove(chosen)))
    }
}

/// An index drawn in proportion to `probabilities` (non-empty; need not sum to 1).
pub fn draw(probabilities: &[f32], rng: &mut impl Rng) -> usize {
    let total: f32 = probabilities.iter().sum();
    crate::numerics::sample_index(probabilities, rng.random::<f32>() * total)
}
