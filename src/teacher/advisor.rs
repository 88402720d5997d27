//! What every teacher back end answers: a request (the mission, the text of a state, the
//! options legal in it) and an advice (a distribution over those options, a rationale).
//!
//! Back ends (`Advisor`s: the LLM, test doubles) run on worker threads behind the
//! `TeacherClient`; the trainer and the app only ever see `TeacherAdvice`.

use std::time::Duration;

use crate::skills::TeacherOption;
use crate::teacher::prompt::PromptTemplate;

/// One question to the teacher. Equal requests get equal advice under one prompt version,
/// so the request (with the version and the model) is the cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdviceRequest {
    /// The level's mission ("use the key to open the door and then get to the goal").
    pub mission: String,
    /// `env::text` description of what the agent knows now.
    pub description: String,
    /// The options legal in this state (`skills::available_options`), in a stable order.
    pub options: Vec<TeacherOption>,
}

/// Where an advice came from, for the teacher panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AdviceOrigin {
    /// Computed by a worker for this request.
    Fresh,
    /// Answered from the client's cache.
    Cache,
}

/// The teacher's answer for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherAdvice {
    /// The request's options, in its order.
    pub options: Vec<TeacherOption>,
    /// One probability per option, summing to 1.
    pub probabilities: Vec<f32>,
    /// A short generated reason, when the back end was asked for one.
    pub rationale: Option<String>,
    /// The prompt version the advice was computed under.
    pub prompt_version: u64,
    pub origin: AdviceOrigin,
    /// How long the back end took to compute it (zero for cache hits is not implied: a
    /// cached advice keeps the latency it was computed with).
    pub latency: Duration,
}

impl TeacherAdvice {
    /// The most probable option (the first among ties), if there are options at all.
    pub fn top_option(&self) -> Option<TeacherOption> {
        let mut best: Option<(TeacherOption, f32)> = None;
        for (&option, &p) in self.options.iter().zip(&self.probabilities) {
            if best.is_none_or(|(_, best_p)| p > best_p) {
                best = Some((option, p));
            }
        }
        best.map(|(option, _)| option)
    }

    /// The probability given to `option` (0 when it was not among the options).
    pub fn probability_of(&self, option: TeacherOption) -> f32 {
        self.options.iter().position(|&o| o == option).map_or(0.0, |index| self.probabilities[index])
    }
}

/// Live statistics of a teacher's worker threads, for the teacher panel and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TeacherClientStats {
    pub model_name: String,
    /// The prompt version new advice is computed under.
    pub prompt_version: u64,
    pub workers: usize,
    /// Requests waiting for a worker.
    pub queue_depth: usize,
    /// Lookups so far, and those answered from the cache.
    pub lookups: u64,
    pub cache_hits: u64,
    /// Advice computed by workers so far.
    pub computed: u64,
    /// Worker latency over recent computed advice.
    pub latency_p50: Duration,
    pub latency_p95: Duration,
    /// Requests a worker failed on, and workers restarted after a panic or failure.
    pub failures: u64,
    pub restarts: u64,
    /// The last failure, for display.
    pub last_error: Option<String>,
}

impl TeacherClientStats {
    /// Fraction of lookups answered from the cache (0 before any lookup).
    pub fn cache_hit_rate(&self) -> f64 {
        if self.lookups == 0 { 0.0 } else { self.cache_hits as f64 / self.lookups as f64 }
    }
}

/// Why a back end could not answer; the worker reports it and the request goes unanswered
/// (the student then trains without advice for that state).
#[derive(Debug, thiserror::Error)]
pub enum AdvisorError {
    #[error("the request has no options to choose from")]
    NoOptions,
    #[error("the prompt is too long for the model: {tokens} tokens, the model takes {limit}")]
    PromptTooLong { tokens: usize, limit: usize },
    #[error("{0}")]
    Model(String),
    /// The template does not suit the advisor (e.g. a lettered menu without `{options}`).
    #[error("{0}")]
    Prompt(String),
}

/// A teacher back end. Each worker thread owns one; it answers one request at a time.
pub trait Advisor: Send {
    /// Names the model in panels, logs and cache keys (e.g. the GGUF file name).
    fn model_name(&self) -> &str;
    /// Puts `template` in force; `feedback` fills its `{feedback}` slot (empty for none).
    /// Later advice is computed under `version`.
    fn set_prompt(&mut self, template: &PromptTemplate, feedback: &str, version: u64) -> Result<(), AdvisorError>;
    /// The advice for `request` under the prompt in force.
    fn advise(&mut self, request: &AdviceRequest) -> Result<TeacherAdvice, AdvisorError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skills::{Item, Target};

    #[test]
    fn top_option_is_the_first_most_probable() {
        let key = Item::new(crate::skills::Carryable::Key, crate::env::grid::Color::Yellow);
        let advice = TeacherAdvice {
            options: vec![TeacherOption::Explore, TeacherOption::PickUp(key), TeacherOption::GoTo(Target::Goal)],
            probabilities: vec![0.2, 0.4, 0.4],
            rationale: None,
            prompt_version: 0,
            origin: AdviceOrigin::Fresh,
            latency: Duration::ZERO,
        };
        assert_eq!(advice.top_option(), Some(TeacherOption::PickUp(key)));
        assert_eq!(advice.probability_of(TeacherOption::GoTo(Target::Goal)), 0.4);
        assert_eq!(advice.probability_of(TeacherOption::Drop), 0.0);
    }
}
