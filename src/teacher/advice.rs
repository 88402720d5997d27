//! The LLM advisor: a GGUF language model (Gemma 3 by default) that turns a prompt template and a state into a
//! distribution over the legal options (continuation scoring, a lettered menu, or sampling).
//!
//! Speed comes from reuse: the rendered prompt prefix (instructions, few-shot examples,
//! feedback) is run once per prompt version and kept as a KV cache; each request restarts
//! from the longest token prefix it shares with the previous request (the mission line and
//! much of the description repeat), runs only the rest of its state text, and then scores
//! all options in one batched pass over a token tree sharing that cache.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::DType;
use rand::SeedableRng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand_chacha::ChaCha8Rng;

use crate::env::scene::{ScoringMode, TeacherSpec, WeightPrecision};
use crate::env::text::Detail;
use crate::skills::TeacherOption;
use crate::teacher::advisor::{AdviceOrigin, AdviceRequest, Advisor, AdvisorError, TeacherAdvice};
use crate::teacher::llm::{
    GgufFile, GgufTokenizer, KvCache, LanguageModel, LogitPositions, LoraAdapters, ModelError, ModelOptions,
    TreeNormalization, sibling_scoring_tokens,
};
use crate::teacher::model_path;
use crate::teacher::prompt::{PromptError, PromptTemplate, Slot, SlotValues, prompts_dir};

/// Letters that label a menu's options (the menu mode needs each to be a single token).
const MENU_LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Most tokens a sampled answer may take (an option phrase is at most ~8).
const SAMPLED_ANSWER_TOKENS: usize = 12;

/// Most tokens of a generated rationale.
pub const RATIONALE_TOKENS: usize = 32;

/// Added to every option's count in sample-and-count mode, so unnamed options keep a little
/// probability (the student's KL term needs no zeros).
const SAMPLE_COUNT_SMOOTHING: f32 = 0.1;

/// How an `LlmAdvisor` is set up; [`LlmAdvisorSettings::from_spec`] reads a scene's
/// `teacher` section.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmAdvisorSettings {
    /// The GGUF file (gemma3, llama or qwen2 architecture).
    pub model_path: PathBuf,
    pub scoring: ScoringMode,
    /// Softmax temperature over option scores (and of sampling, in sample-and-count mode).
    pub temperature: f64,
    /// Divide each option's log-likelihood by its token count (continuation mode).
    pub length_normalized: bool,
    /// What continuation scoring normalises each next token over: the option tokens that
    /// compete at that point (constrained decoding, the default: no penalty for the words a
    /// long phrase is committed to, and no pass over the 262k-token output head) or the
    /// whole vocabulary (true log-likelihoods).
    pub normalization: TreeNormalization,
    /// Generate a short rationale with each advice.
    pub rationale: bool,
    /// Answers sampled per request in sample-and-count mode (LLM4Teach asks 10 times).
    pub samples: usize,
    /// Seeds the sampling; each request mixes in its own text, so equal requests get equal
    /// advice.
    pub seed: u64,
    /// Inference threads (one is fastest on 2 cores).
    pub threads: usize,
    /// Precision of the layer weights: f32 or f16.
    pub weights: DType,
    /// LoRA adapters (safetensors from `duet tune`) to run beside the model's weights.
    pub adapters: Option<PathBuf>,
}

impl LlmAdvisorSettings {
    /// Settings for `model_path` with the scene defaults.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        let spec = TeacherSpec::default();
        Self {
            model_path: model_path.into(),
            scoring: spec.scoring,
            temperature: spec.temperature,
            length_normalized: spec.length_normalized,
            normalization: TreeNormalization::Siblings,
            rationale: spec.rationale,
            samples: 10,
            seed: 0,
            threads: 1,
            weights: DType::F32,
            adapters: None,
        }
    }

    /// The scene's teacher settings; the default model (`make model`) when it names none.
    pub fn from_spec(spec: &TeacherSpec) -> Result<Self, AdvisorError> {
        let model_path = match &spec.model {
            Some(path) => path.clone(),
            None => model_path::default_model_path().map_err(|error| AdvisorError::Model(error.to_string()))?,
        };
        Ok(Self {
            scoring: spec.scoring,
            temperature: spec.temperature,
            length_normalized: spec.length_normalized,
            rationale: spec.rationale,
            weights: match spec.weights {
                WeightPrecision::F32 => DType::F32,
                WeightPrecision::F16 => DType::F16,
            },
            adapters: spec.adapters.clone(),
            ..Self::new(model_path)
        })
    }
}

/// The shipped template for a scoring mode and description detail: the menu mode's examples
/// answer with letters, and each template's examples are described as the states will be.
pub fn default_template_path(scoring: ScoringMode, detail: Detail) -> PathBuf {
    let name = match (scoring, detail) {
        (ScoringMode::Menu, Detail::Coarse) => "grid-menu.txt",
        (ScoringMode::Menu, Detail::Detailed) => "grid-detailed-menu.txt",
        (ScoringMode::Continuation | ScoringMode::SampleAndCount, Detail::Coarse) => "grid.txt",
        (ScoringMode::Continuation | ScoringMode::SampleAndCount, Detail::Detailed) => "grid-detailed.txt",
    };
    prompts_dir().join(name)
}

/// The scene's template (`teacher.prompt`), or the shipped default for its scoring mode.
pub fn template_for_spec(spec: &TeacherSpec) -> Result<PromptTemplate, PromptError> {
    match &spec.prompt {
        Some(path) => PromptTemplate::load(path),
        None => PromptTemplate::load(default_template_path(spec.scoring, spec.description)),
    }
}

/// What running a request's state tokens gave: the cache after them, how many were reused
/// from the previous request, and the options' per-token log-probabilities when they were
/// scored in the same pass.
struct StatePass {
    cache: KvCache,
    reused: usize,
    option_log_probs: Option<Vec<Vec<f32>>>,
}

/// Where the time of the last request went, for `duet teacher ask` and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct AdviceTiming {
    /// Prefix tokens run for this request (0 when the cached prefix was used).
    pub prefix_tokens: usize,
    pub prefix_seconds: f64,
    /// State tokens of the request, and how many were reused from the previous request.
    pub state_tokens: usize,
    pub reused_state_tokens: usize,
    pub state_seconds: f64,
    /// Option tokens run through the model (continuation: with sibling normalisation only up
    /// to where the options part) or sampled (sample-and-count).
    pub option_tokens: usize,
    pub scoring_seconds: f64,
    pub rationale_seconds: f64,
    pub total_seconds: f64,
}

/// The cached prompt prefix.
struct PrefixCache {
    text: String,
    tokens: Vec<u32>,
    cache: KvCache,
}

/// The previous request's prefix-plus-state cache, to restart from the shared tokens.
struct StateCache {
    tokens: Vec<u32>,
    cache: KvCache,
}

/// A local LLM teacher (see the module summary).
pub struct LlmAdvisor {
    settings: LlmAdvisorSettings,
    model: LanguageModel,
    tokenizer: GgufTokenizer,
    model_name: String,
    template: PromptTemplate,
    feedback: String,
    examples: String,
    version: u64,
    prefix: Option<PrefixCache>,
    last_state: Option<StateCache>,
    /// Tokens that end an answer line.
    newline_tokens: Vec<u32>,
    last_timing: AdviceTiming,
}

impl std::fmt::Debug for LlmAdvisor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("LlmAdvisor").field("model", &self.model_name).field("version", &self.version).finish()
    }
}

impl LlmAdvisor {
    /// Loads the tokenizer and the model of `settings.model_path` and puts `template` in
    /// force (prompt version 0). A missing file names `make model`; a corrupt one names the
    /// file and the problem.
    pub fn load(settings: LlmAdvisorSettings, template: &PromptTemplate) -> Result<LlmAdvisor, AdvisorError> {
        let path = settings.model_path.clone();
        model_path::require_model_file(&path).map_err(|error| AdvisorError::Model(error.to_string()))?;
        let corrupt = |message: String| {
            AdvisorError::Model(format!(
                "{message} (is {} a complete GGUF of a supported architecture? `make model` re-fetches the default one)",
                path.display()
            ))
        };
        let mut file = GgufFile::open(&path).map_err(|error| corrupt(error.to_string()))?;
        let tokenizer = GgufTokenizer::from_gguf(&file).map_err(|error| corrupt(error.to_string()))?;
        let mut model = LanguageModel::load(
            &mut file,
            &ModelOptions { threads: settings.threads.max(1), weights: settings.weights },
        )
        .map_err(|error| corrupt(error.to_string()))?;
        if let Some(adapters_path) = &settings.adapters {
            // A tuned teacher: the adapters must fit this model (the file is named if not).
            let adapters = LoraAdapters::load(adapters_path, model.config())
                .map_err(|error| AdvisorError::Model(error.to_string()))?;
            model.set_adapters(Some(std::sync::Arc::new(adapters))).map_err(model_error)?;
        }
        let newline_tokens = single_tokens(&tokenizer, &["\n", "\n\n"]);
        let model_name =
            path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned());
        let mut advisor = LlmAdvisor {
            settings,
            model,
            tokenizer,
            model_name,
            template: template.clone(),
            feedback: String::new(),
            examples: String::new(),
            version: 0,
            prefix: None,
            last_state: None,
            newline_tokens,
            last_timing: AdviceTiming::default(),
        };
        advisor.set_prompt(template, "", 0)?;
        Ok(advisor)
    }

    /// Loads the advisor a scene's `teacher` section describes, with its template.
    pub fn from_spec(spec: &TeacherSpec) -> Result<LlmAdvisor, AdvisorError> {
        let settings = LlmAdvisorSettings::from_spec(spec)?;
        let template = template_for_spec(spec).map_err(|error| AdvisorError::Model(error.to_string()))?;
        LlmAdvisor::load(settings, &template)
    }

    pub fn settings(&self) -> &LlmAdvisorSettings {
        &self.settings
    }

    pub fn model(&self) -> &LanguageModel {
        &self.model
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &PromptTemplate {
        &self.template
    }

    /// Changes the scoring mode (and nothing else) from the next request on.
    pub fn set_scoring(&mut self, scoring: ScoringMode) {
        self.settings.scoring = scoring;
    }

    /// Changes what continuation scoring normalises over, from the next request on.
    pub fn set_normalization(&mut self, normalization: TreeNormalization) {
        self.settings.normalization = normalization;
    }

    /// Turns rationales on or off from the next request on.
    pub fn set_rationale(&mut self, rationale: bool) {
        self.settings.rationale = rationale;
    }

    /// Text for the `{examples}` slot (empty for none); takes effect with the next request.
    pub fn set_examples(&mut self, examples: &str) {
        self.examples = examples.to_string();
    }

    /// Forgets the cached prefix and state, so the next request runs the whole prompt (what
    /// a cold request costs).
    pub fn forget_caches(&mut self) {
        self.prefix = None;
        self.last_state = None;
    }

    /// Where the time of the last request went.
    pub fn last_timing(&self) -> &AdviceTiming {
        &self.last_timing
    }

    /// The whole prompt the model reads for `request` (prefix and state part).
    pub fn prompt_text(&self, request: &AdviceRequest) -> String {
        self.render(request).full()
    }

    /// The `{options}` slot's text for `options` under the current scoring mode.
    pub fn options_text(&self, options: &[TeacherOption]) -> String {
        match self.settings.scoring {
            ScoringMode::Menu => options
                .iter()
                .zip(MENU_LETTERS.chars())
                .map(|(option, letter)| format!("{letter}. {}", option.phrase()))
                .collect::<Vec<_>>()
                .join("\n"),
            ScoringMode::Continuation | ScoringMode::SampleAndCount => {
                options.iter().map(|option| format!("- {}", option.phrase())).collect::<Vec<_>>().join("\n")
            }
        }
    }

    fn render(&self, request: &AdviceRequest) -> crate::teacher::prompt::RenderedPrompt {
        let options = self.options_text(&request.options);
        self.template.render(&SlotValues {
            mission: &request.mission,
            observation: &request.description,
            options: &options,
            feedback: &self.feedback,
            examples: &self.examples,
        })
    }

    /// Tokens of the start of a prompt (with `<bos>` where the model has one).
    fn encode_start(&self, text: &str) -> Result<Vec<u32>, AdvisorError> {
        self.tokenizer.encode(text, true).map_err(|error| AdvisorError::Model(error.to_string()))
    }

    /// Tokens of text that continues the prompt (state parts, options, rationales).
    fn encode(&self, text: &str) -> Result<Vec<u32>, AdvisorError> {
        self.tokenizer.encode_continuation(text).map_err(|error| AdvisorError::Model(error.to_string()))
    }

    fn check_length(&self, tokens: usize) -> Result<(), AdvisorError> {
        let limit = self.model.config().context_length;
        if tokens > limit { Err(AdvisorError::PromptTooLong { tokens, limit }) } else { Ok(()) }
    }

    /// Makes sure the cache holds `prefix_text`; returns the tokens it ran (0 when cached).
    fn ensure_prefix(&mut self, prefix_text: &str) -> Result<usize, AdvisorError> {
        if self.prefix.as_ref().is_some_and(|prefix| prefix.text == prefix_text) {
            return Ok(0);
        }
        self.prefix = None;
        self.last_state = None;
        let tokens = self.encode_start(prefix_text)?;
        self.check_length(tokens.len())?;
        let mut cache = self.model.new_cache();
        self.model.extend(&tokens, &mut cache).map_err(model_error)?;
        let count = tokens.len();
        self.prefix = Some(PrefixCache { text: prefix_text.to_string(), tokens, cache });
        Ok(count)
    }

    /// The cache after the prefix and `state_tokens`, reusing the previous request's shared
    /// leading tokens; returns it and how many state tokens were reused.
    /// With `continuations`, also scores them (sibling-normalised) in the same pass: their
    /// per-token log-probabilities.
    fn state_cache_scoring(
        &mut self,
        state_tokens: &[u32],
        continuations: Option<&[&[u32]]>,
    ) -> Result<StatePass, AdvisorError> {
        let Some(prefix) = &self.prefix else { return Err(AdvisorError::Model("no prompt prefix in force".into())) };
        self.check_length(prefix.tokens.len() + state_tokens.len() + SAMPLED_ANSWER_TOKENS)?;
        if state_tokens.is_empty() {
            let scores = match continuations {
                Some(continuations) => Some(
                    self.model
                        .score_continuation_tree(&prefix.cache, continuations, TreeNormalization::Siblings)
                        .map_err(model_error)?,
                ),
                None => None,
            };
            return Ok(StatePass { cache: prefix.cache.clone(), reused: 0, option_log_probs: scores });
        }
        // At least one token is run, so the cache ends with a fresh hidden state.
        let shared = self.last_state.as_ref().map_or(0, |last| {
            last.tokens.iter().zip(state_tokens).take_while(|(a, b)| a == b).count().min(state_tokens.len() - 1)
        });
        let mut cache = match &self.last_state {
            Some(last) if shared > 0 => last
                .cache
                .truncated(prefix.tokens.len() + shared)
                .map_err(|error| AdvisorError::Model(error.to_string()))?,
            _ => prefix.cache.clone(),
        };
        let scores = match continuations {
            Some(continuations) => Some(
                self.model
                    .extend_and_score_siblings(&state_tokens[shared..], &mut cache, continuations)
                    .map_err(model_error)?,
            ),
            None => {
                self.model.extend(&state_tokens[shared..], &mut cache).map_err(model_error)?;
                None
            }
        };
        self.last_state = Some(StateCache { tokens: state_tokens.to_vec(), cache: cache.clone() });
        Ok(StatePass { cache, reused: shared, option_log_probs: scores })
    }

    /// The token ids each option is scored as: " phrase\n".
    fn option_continuations(&self, options: &[TeacherOption]) -> Result<Vec<Vec<u32>>, AdvisorError> {
        options.iter().map(|option| self.encode(&format!(" {}\n", option.phrase()))).collect()
    }

    /// Each option's score from its tokens' log-probabilities: their sum, or their mean.
    fn option_scores(&self, log_probs: &[Vec<f32>]) -> Vec<f64> {
        log_probs
            .iter()
            .map(|token_log_probs| {
                let total: f64 = token_log_probs.iter().map(|&value| value as f64).sum();
                if self.settings.length_normalized { total / token_log_probs.len().max(1) as f64 } else { total }
            })
            .collect()
    }

    /// Continuation scoring over the whole vocabulary (true log-likelihoods of " phrase\n" per
    /// option, all in one tree pass after the state). Sibling normalisation scores with the
    /// state's own pass instead (`state_cache_scoring`).
    fn vocabulary_scores(&self, cache: &KvCache, options: &[TeacherOption]) -> Result<(Vec<f64>, usize), AdvisorError> {
        let continuations = self.option_continuations(options)?;
        let slices: Vec<&[u32]> = continuations.iter().map(Vec::as_slice).collect();
        let log_probs =
            self.model.score_continuation_tree(cache, &slices, TreeNormalization::Vocabulary).map_err(model_error)?;
        Ok((self.option_scores(&log_probs), continuations.iter().map(Vec::len).sum()))
    }

    /// Menu scoring: the next token's logits for the options' letters.
    fn menu_scores(&self, cache: &KvCache, options: &[TeacherOption]) -> Result<Vec<f64>, AdvisorError> {
        if options.len() > MENU_LETTERS.len() {
            return Err(AdvisorError::Model(format!(
                "a menu has at most {} options, got {}",
                MENU_LETTERS.len(),
                options.len()
            )));
        }
        let mut letter_ids = Vec::with_capacity(options.len());
        for letter in MENU_LETTERS.chars().take(options.len()) {
            let tokens = self.encode(&format!(" {letter}"))?;
            let [token] = tokens[..] else {
                return Err(AdvisorError::Model(format!(
                    "the menu letter \" {letter}\" is not one token for this model"
                )));
            };
            letter_ids.push(token);
        }
        let logits = self.model.next_token_logits_for(cache, &letter_ids).map_err(model_error)?;
        Ok(logits.into_iter().map(f64::from).collect())
    }

    /// Sample-and-count: `samples` sampled answer lines, each counted for the first legal
    /// option it names; returns smoothed frequencies and the tokens sampled.
    fn sampled_frequencies(&self, cache: &KvCache, request: &AdviceRequest) -> Result<(Vec<f32>, usize), AdvisorError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        request.hash(&mut hasher);
        let mut rng = ChaCha8Rng::seed_from_u64(self.settings.seed ^ hasher.finish());
        let mut counts = vec![0usize; request.options.len()];
        let mut sampled_tokens = 0;
        let eos = self.tokenizer.eos_token_id();
        for _ in 0..self.settings.samples.max(1) {
            let mut sample_cache = cache.clone();
            let mut answer = Vec::new();
            let mut logits = self.model.next_token_logits(&sample_cache).map_err(model_error)?;
            while answer.len() < SAMPLED_ANSWER_TOKENS {
                let token = sample(&logits, self.settings.temperature, &mut rng)?;
                if token == eos || self.newline_tokens.contains(&token) {
                    break;
                }
                answer.push(token);
                let next =
                    self.model.forward(&[token], &mut sample_cache, LogitPositions::Last).map_err(model_error)?;
                logits = next.to_vec1().map_err(|error| AdvisorError::Model(error.to_string()))?;
            }
            sampled_tokens += answer.len() + 1;
            let text = self.tokenizer.decode(&answer, true).map_err(|error| AdvisorError::Model(error.to_string()))?;
            if let Some(named) = TeacherOption::find_in(&text, &request.options)
                && let Some(index) = request.options.iter().position(|&option| option == named)
            {
                counts[index] += 1;
            }
        }
        let total = counts.iter().sum::<usize>() as f32 + SAMPLE_COUNT_SMOOTHING * counts.len() as f32;
        Ok((counts.iter().map(|&count| (count as f32 + SAMPLE_COUNT_SMOOTHING) / total).collect(), sampled_tokens))
    }

    /// A short greedy reason after the chosen option, cut at the end of the line.
    fn rationale(&self, cache: &KvCache, option: TeacherOption) -> Result<String, AdvisorError> {
        let lead = format!(" {} because", option.phrase());
        let mut cache = cache.clone();
        let lead_tokens = self.encode(&lead)?;
        self.model.extend(&lead_tokens, &mut cache).map_err(model_error)?;
        let mut stops = self.newline_tokens.clone();
        stops.push(self.tokenizer.eos_token_id());
        let mut generated =
            self.model.greedy_continuation(&mut cache, RATIONALE_TOKENS, &stops).map_err(model_error)?;
        if generated.last().is_some_and(|token| stops.contains(token)) {
            generated.pop();
        }
        let text = self.tokenizer.decode(&generated, true).map_err(|error| AdvisorError::Model(error.to_string()))?;
        Ok(format!("because {}", text.trim()))
    }
}

impl Advisor for LlmAdvisor {
    fn model_name(&self) -> &str {
        &self.model_name
    }

    fn set_prompt(&mut self, template: &PromptTemplate, feedback: &str, version: u64) -> Result<(), AdvisorError> {
        if self.settings.scoring == ScoringMode::Menu && !template.uses(Slot::Options) {
            return Err(AdvisorError::Prompt(format!(
                "{}: the menu scoring mode needs the {{options}} slot (its answers are the options' letters)",
                template.source()
            )));
        }
        let previous = (self.template.clone(), self.feedback.clone());
        self.template = template.clone();
        self.feedback = feedback.to_string();
        // The prefix does not depend on the state: render it with empty state slots and run
        // it now, so a prompt too long for the model is refused here, not per request.
        let prefix =
            self.render(&AdviceRequest { mission: String::new(), description: String::new(), options: vec![] });
        if let Err(error) = self.ensure_prefix(&prefix.prefix) {
            (self.template, self.feedback) = previous;
            return Err(error);
        }
        self.version = version;
        Ok(())
    }

    fn advise(&mut self, request: &AdviceRequest) -> Result<TeacherAdvice, AdvisorError> {
        if request.options.is_empty() {
            return Err(AdvisorError::NoOptions);
        }
        let started = Instant::now();
        let mut timing = AdviceTiming::default();
        let rendered = self.render(request);
        timing.prefix_tokens = self.ensure_prefix(&rendered.prefix)?;
        timing.prefix_seconds = started.elapsed().as_secs_f64();

        let state_started = Instant::now();
        let state_tokens = self.encode(&rendered.state_part)?;
        // Sibling-normalised continuation scoring runs with the state in one pass.
        let one_pass = self.settings.scoring == ScoringMode::Continuation
            && self.settings.normalization == TreeNormalization::Siblings;
        let continuations = if one_pass { self.option_continuations(&request.options)? } else { Vec::new() };
        let slices: Vec<&[u32]> = continuations.iter().map(Vec::as_slice).collect();
        let StatePass { cache, reused, option_log_probs: log_probs } =
            self.state_cache_scoring(&state_tokens, one_pass.then_some(&slices[..]))?;
        timing.state_tokens = state_tokens.len();
        timing.reused_state_tokens = reused;
        timing.state_seconds = state_started.elapsed().as_secs_f64();

        let scoring_started = Instant::now();
        let temperature = self.settings.temperature.max(1e-6);
        let probabilities = match (self.settings.scoring, log_probs) {
            (ScoringMode::Continuation, Some(log_probs)) => {
                timing.option_tokens = sibling_scoring_tokens(&slices);
                softmax(&self.option_scores(&log_probs), temperature)
            }
            (ScoringMode::Continuation, None) => {
                let (scores, option_tokens) = self.vocabulary_scores(&cache, &request.options)?;
                timing.option_tokens = option_tokens;
                softmax(&scores, temperature)
            }
            (ScoringMode::Menu, _) => softmax(&self.menu_scores(&cache, &request.options)?, temperature),
            (ScoringMode::SampleAndCount, _) => {
                let (frequencies, sampled) = self.sampled_frequencies(&cache, request)?;
                timing.option_tokens = sampled;
                frequencies
            }
        };
        timing.scoring_seconds = scoring_started.elapsed().as_secs_f64();

        let mut advice = TeacherAdvice {
            options: request.options.clone(),
            probabilities,
            rationale: None,
            prompt_version: self.version,
            origin: AdviceOrigin::Fresh,
            latency: Duration::ZERO,
        };
        if self.settings.rationale
            && let Some(top) = advice.top_option()
        {
            let rationale_started = Instant::now();
            advice.rationale = Some(self.rationale(&cache, top)?);
            timing.rationale_seconds = rationale_started.elapsed().as_secs_f64();
        }
        advice.latency = started.elapsed();
        timing.total_seconds = advice.latency.as_secs_f64();
        self.last_timing = timing;
        Ok(advice)
    }
}

fn model_error(error: ModelError) -> AdvisorError {
    AdvisorError::Model(error.to_string())
}

/// Ids of those `texts` that are one token each.
fn single_tokens(tokenizer: &GgufTokenizer, texts: &[&str]) -> Vec<u32> {
    texts
        .iter()
        .filter_map(|text| match tokenizer.encode_continuation(text).ok()?.as_slice() {
            [token] => Some(*token),
            _ => None,
        })
        .collect()
}

/// softmax(scores / temperature) in f64, as f32 probabilities.
pub fn softmax(scores: &[f64], temperature: f64) -> Vec<f32> {
    let maximum = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !maximum.is_finite() {
        return vec![1.0 / scores.len().max(1) as f32; scores.len()];
    }
    let exponentials: Vec<f64> = scores.iter().map(|score| ((score - maximum) / temperature).exp()).collect();
    let total: f64 = exponentials.iter().sum();
    exponentials.iter().map(|value| (value / total) as f32).collect()
}

/// One token drawn from softmax(logits / temperature).
fn sample(logits: &[f32], temperature: f64, rng: &mut ChaCha8Rng) -> Result<u32, AdvisorError> {
    let maximum = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> =
        logits.iter().map(|&logit| ((logit as f64 - maximum) / temperature.max(1e-6)).exp()).collect();
    let distribution = WeightedIndex::new(&weights).map_err(|error| AdvisorError::Model(error.to_string()))?;
    Ok(distribution.sample(rng) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_normalised_and_sharpened_by_low_temperature() {
        let warm = softmax(&[-1.0, -2.0, -3.0], 1.0);
        let cold = softmax(&[-1.0, -2.0, -3.0], 0.25);
        assert!((warm.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(warm[0] > warm[1] && warm[1] > warm[2]);
        assert!(cold[0] > warm[0]);
        assert_eq!(softmax(&[f64::NEG_INFINITY, f64::NEG_INFINITY], 1.0), vec![0.5, 0.5]);
    }

    #[test]
    fn a_missing_model_names_make_model() {
        let directory = tempfile::tempdir().expect("temp dir");
        let template = PromptTemplate::parse("{observation}\n{options}\nAnswer:", "t").expect("valid");
        let missing = directory.path().join("absent.gguf");
        let error = LlmAdvisor::load(LlmAdvisorSettings::new(&missing), &template).expect_err("missing");
        let message = error.to_string();
        assert!(message.contains("absent.gguf") && message.contains("make model"), "{message}");

        let corrupt = directory.path().join("corrupt.gguf");
        std::fs::write(&corrupt, b"not a gguf at all").expect("write");
        let message = LlmAdvisor::load(LlmAdvisorSettings::new(&corrupt), &template).expect_err("corrupt").to_string();
        assert!(message.contains("corrupt.gguf") && message.contains("make model"), "{message}");
    }
}
