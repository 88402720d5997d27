//! `duet bench teacher`: the LLM advisor's latency (cold and with the prompt prefix cached),
//! prompt speed and agreement with the oracle over states sampled from real rollouts.
//!
//! States come from episodes of a scene's level driven by the oracle (the states a student
//! that follows advice sees) and by random actions (the states an early student sees), each
//! described as the teacher sees them: the agent's fog of war, `env::text`, the legal menu.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::skills::TeacherOption;
use crate::teacher::advice::LlmAdvisor;
use crate::teacher::advisor::{AdviceRequest, Advisor, AdvisorError};
pub use crate::teacher::situations::{
    Situation, TeacherState, sample_embodied_states, sample_situations, sample_states, state_after_oracle_steps,
    teacher_state,
};

/// The teacher's answer in one state (`bench teacher --answers`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TeacherAnswer {
    pub description: String,
    pub oracle: String,
    /// Options with the teacher's probabilities, most likely first.
    pub advice: Vec<(String, f32)>,
    pub agrees: bool,
}

/// What `bench teacher` measured, one JSON object.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TeacherBenchResult {
    pub bench: &'static str,
    pub level: String,
    pub model: String,
    pub prompt: String,
    pub scoring: String,
    /// Continuation scoring's normalisation (Siblings: constrained to the options).
    pub normalization: String,
    pub states: usize,
    pub mean_options: f64,
    pub prefix_tokens: usize,
    pub mean_state_tokens: f64,
    /// Mean state tokens reused from the previous request's cache.
    pub mean_reused_state_tokens: f64,
    /// Latency with everything recomputed (prefix included), over the first `cold_states`.
    pub cold_states: usize,
    pub cold_p50_ms: f64,
    pub cold_p95_ms: f64,
    /// Latency with the prefix cached.
    pub cached_p50_ms: f64,
    pub cached_p95_ms: f64,
    /// The same in CPU time of this process (10 ms resolution): what a request costs when
    /// the machine is not shared, as wall time on these loaded 2-core machines is not.
    pub cached_p50_cpu_ms: Option<f64>,
    pub cached_p95_cpu_ms: Option<f64>,
    /// Prefix tokens per CPU-second of this process while running the cold prefixes.
    pub prompt_tokens_per_cpu_second: Option<f64>,
    pub prompt_tokens_per_second: f64,
    /// Fraction of states where the teacher's top option is the oracle's.
    pub agreement: f64,
    /// Mean probability the teacher gives the oracle's option.
    pub mean_oracle_probability: f64,
    /// Agreement of always answering the first listed option, for comparison.
    pub agreement_first_option: f64,
    /// Agreement of a uniform guess (mean of 1 / options).
    pub agreement_chance: f64,
    /// The best agreement any teacher reading these descriptions could reach: states that read
    /// alike but where the oracle (which sees the true state) does different things can only
    /// all agree with one answer.
    pub agreement_ceiling: f64,
    /// Per state, what the teacher answered (written by `--answers`, not printed).
    #[serde(skip)]
    pub answers: Vec<TeacherAnswer>,
}

/// Runs the benchmark over `states`: `cold_states` of them with caches dropped first, then
/// all of them with the prefix cached.
pub fn bench_teacher(
    advisor: &mut LlmAdvisor,
    env_name: &str,
    prompt_name: &str,
    states: &[TeacherState],
    cold_states: usize,
) -> Result<TeacherBenchResult, AdvisorError> {
    let mut cold_ms = Vec::new();
    let mut prefix_tokens = 0;
    let mut prefix_seconds = 0.0;
    let cpu_before = process_cpu_seconds();
    let mut prefix_cpu = 0.0;
    for state in states.iter().take(cold_states) {
        advisor.forget_caches();
        let cpu_start = process_cpu_seconds();
        let advice = advisor.advise(&state.request)?;
        let timing = advisor.last_timing();
        // Only the prefix part of the CPU time counts for prompt speed: estimate it by the
        // prefix's share of the wall time of this request.
        if let (Some(start), Some(end)) = (cpu_start, process_cpu_seconds()) {
            prefix_cpu += (end - start) * timing.prefix_seconds / timing.total_seconds.max(1e-9);
        }
        prefix_tokens = timing.prefix_tokens;
        prefix_seconds += timing.prefix_seconds;
        cold_ms.push(advice.latency.as_secs_f64() * 1e3);
    }
    let measured_cpu = cpu_before.is_some() && !cold_ms.is_empty();

    let mut cached_ms = Vec::new();
    let mut cached_cpu_ms = Vec::new();
    let mut agreements = 0usize;
    let mut oracle_probability = 0.0;
    let mut first_option_agreements = 0usize;
    let mut chance = 0.0;
    let mut state_tokens = 0usize;
    let mut reused_tokens = 0usize;
    let mut answers = Vec::with_capacity(states.len());
    for state in states {
        let cpu_start = process_cpu_seconds();
        let advice = advisor.advise(&state.request)?;
        if let (Some(start), Some(end)) = (cpu_start, process_cpu_seconds()) {
            cached_cpu_ms.push((end - start) * 1e3);
        }
        cached_ms.push(advice.latency.as_secs_f64() * 1e3);
        let timing = advisor.last_timing();
        state_tokens += timing.state_tokens;
        reused_tokens += timing.reused_state_tokens;
        let agrees = advice.top_option() == Some(state.oracle_option);
        agreements += usize::from(agrees);
        let mut ranked: Vec<(String, f32)> =
            advice.options.iter().map(TeacherOption::phrase).zip(advice.probabilities.iter().copied()).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        answers.push(TeacherAnswer {
            description: state.request.description.clone(),
            oracle: state.oracle_option.phrase(),
            advice: ranked,
            agrees,
        });
        oracle_probability += advice.probability_of(state.oracle_option) as f64;
        first_option_agreements += usize::from(state.request.options.first() == Some(&state.oracle_option));
        chance += 1.0 / state.request.options.len().max(1) as f64;
    }
    let count = states.len().max(1) as f64;
    Ok(TeacherBenchResult {
        bench: "teacher",
        level: env_name.to_owned(),
        model: advisor.model_name().to_string(),
        prompt: prompt_name.to_string(),
        scoring: format!("{:?}", advisor.settings().scoring),
        normalization: format!("{:?}", advisor.settings().normalization),
        states: states.len(),
        mean_options: states.iter().map(|state| state.request.options.len()).sum::<usize>() as f64 / count,
        prefix_tokens,
        mean_state_tokens: state_tokens as f64 / count,
        mean_reused_state_tokens: reused_tokens as f64 / count,
        cold_states: cold_ms.len(),
        cold_p50_ms: percentile(&cold_ms, 0.5),
        cold_p95_ms: percentile(&cold_ms, 0.95),
        cached_p50_ms: percentile(&cached_ms, 0.5),
        cached_p95_ms: percentile(&cached_ms, 0.95),
        cached_p50_cpu_ms: (!cached_cpu_ms.is_empty()).then(|| percentile(&cached_cpu_ms, 0.5)),
        cached_p95_cpu_ms: (!cached_cpu_ms.is_empty()).then(|| percentile(&cached_cpu_ms, 0.95)),
        prompt_tokens_per_cpu_second: measured_cpu
            .then(|| (prefix_tokens * cold_ms.len()) as f64 / prefix_cpu.max(1e-9)),
        prompt_tokens_per_second: (prefix_tokens * cold_ms.len()) as f64 / prefix_seconds.max(1e-9),
        agreement: agreements as f64 / count,
        mean_oracle_probability: oracle_probability / count,
        agreement_first_option: first_option_agreements as f64 / count,
        agreement_chance: chance / count,
        agreement_ceiling: agreement_ceiling(states),
        answers,
    })
}

/// The fraction of `states` a teacher answering each distinct request with the oracle option
/// most common among its states would agree with.
pub fn agreement_ceiling(states: &[TeacherState]) -> f64 {
    let mut votes: HashMap<&AdviceRequest, HashMap<TeacherOption, usize>> = HashMap::new();
    for state in states {
        *votes.entry(&state.request).or_default().entry(state.oracle_option).or_default() += 1;
    }
    let best: usize = votes.values().map(|options| options.values().max().copied().unwrap_or(0)).sum();
    best as f64 / states.len().max(1) as f64
}

/// Writes every state's full prompt and options as JSON lines (for tools/llama_cpp_peer.py).
pub fn dump_prompts(advisor: &LlmAdvisor, states: &[TeacherState], path: &Path) -> std::io::Result<()> {
    let mut text = Vec::new();
    for state in states {
        let line = serde_json::json!({
            "prompt": advisor.prompt_text(&state.request),
            "options": state.request.options.iter().map(TeacherOption::phrase).collect::<Vec<_>>(),
            "oracle": state.oracle_option.phrase(),
        });
        writeln!(text, "{line}")?;
    }
    crate::training::checkpoint::write_file_atomically(path, &text)
}

/// The `fraction` quantile (nearest rank) of `values`, 0 for none.
pub fn percentile(values: &[f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) closed by ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s on every common configuration.
    Some((user + system) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::text::Detail;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&values, 0.5), 3.0);
        assert_eq!(percentile(&values, 0.95), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn the_ceiling_counts_states_that_read_alike_once() {
        let level = crate::env::grid::Level::from_name("DoorKey-8x8").expect("a level");
        let (world, fog) = state_after_oracle_steps(&level, 3, 0);
        let state = teacher_state(&level, &world, &fog, Detail::Coarse);
        let other = TeacherState { oracle_option: TeacherOption::Drop, ..state.clone() };
        let mut elsewhere = state.clone();
        elsewhere.request.description.push_str(" Elsewhere.");
        assert_eq!(agreement_ceiling(&[state.clone(), other.clone(), elsewhere.clone()]), 2.0 / 3.0);
        assert_eq!(agreement_ceiling(&[state.clone(), state, other, elsewhere]), 3.0 / 4.0);
        assert_eq!(agreement_ceiling(&[]), 0.0);
    }
}
