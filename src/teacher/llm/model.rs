//! A decoder-only language model loaded from a GGUF file, whatever its architecture: the
//! forward passes over a [`KvCache`] and the scoring the teacher needs (continuation trees,
//! constrained-decoding scores, next-token logits, greedy decoding).
//!
//! What differs between architectures (Gemma 3, llama, Qwen2) sits behind the [`Decoder`]
//! trait: embedding, the layers and the final norm, and the output head's rows. Everything
//! here (token trees, sibling scoring, the output head run only where needed, the thread
//! pool) is written once over it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor};

use super::gemma3::Gemma3Decoder;
use super::gguf::{GgufError, GgufFile};
use super::kv_cache::KvCache;
use super::layers::{Layout, Pass};
use super::llama::LlamaDecoder;
use super::lora::LoraAdapters;

/// The architectures duet runs, as GGUF files name them.
pub const SUPPORTED_ARCHITECTURES: [&str; 3] = ["gemma3", "llama", "qwen2"];

/// Output-head rows computed at once when scoring a continuation (bounds memory).
const SCORING_ROWS_PER_CHUNK: usize = 32;

/// What went wrong loading or running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(
        "{}: architecture {architecture:?} is not supported (duet runs {})",
        path.display(),
        SUPPORTED_ARCHITECTURES.join(", ")
    )]
    WrongArchitecture { path: PathBuf, architecture: String },
    #[error("{}: unusable {architecture} hyper-parameters: {problem}", path.display())]
    InvalidConfig { path: PathBuf, architecture: String, problem: String },
    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", path.display())]
    TensorShape { path: PathBuf, name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{}: cannot dequantize tensor `{name}`: {source}", path.display())]
    Dequantize {
        path: PathBuf,
        name: String,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("cannot build a rayon pool of {threads} inference threads: {message}")]
    ThreadPool { threads: usize, message: String },
    #[error("no tokens to run the model on")]
    NoTokens,
    #[error("token id {token_id} is outside the {vocabulary_size}-token vocabulary")]
    TokenOutOfRange { token_id: u32, vocabulary_size: usize },
    #[error("{needed} positions exceed the model's context length of {context_length}")]
    ContextOverflow { needed: usize, context_length: usize },
    #[error("the cache has {found} layers, the model {expected}: it belongs to another model")]
    CacheMismatch { expected: usize, found: usize },
    #[error("nothing to score from: the cache is empty (process at least one token first)")]
    EmptyCache,
    #[error("forward pass failed: {0}")]
    Compute(#[from] candle_core::Error),
    #[error("unsupported option: {0}")]
    Unsupported(String),
}

/// How the model is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelOptions {
    /// Inference threads (candle's CPU kernels use rayon); on the shared 2-core machines one
    /// thread is fastest, as with llama.cpp.
    pub threads: usize,
    /// Precision the decoder layers' projection weights are dequantized to: f32 (default), or
    /// f16, half the memory and half the bytes each pass reads (activations stay f32; each
    /// projection's input is rounded to f16 for the product).
    pub weights: DType,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self { threads: 1, weights: DType::F32 }
    }
}

/// Which positions of a forward pass get logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitPositions {
    /// Only the last new position: `[vocabulary]`.
    Last,
    /// Every new position: `[new_positions, vocabulary]`.
    All,
}

/// What every architecture tells the shared code about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// The GGUF's `general.architecture`.
    pub architecture: String,
    pub vocabulary_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub layer_count: usize,
    pub head_count: usize,
    pub kv_head_count: usize,
    pub head_dim: usize,
    pub context_length: usize,
    /// The widest attention window of any layer; `None` when every layer sees everything.
    pub sliding_window: Option<usize>,
    pub final_logit_softcapping: Option<f64>,
}

/// The architecture-specific part of a model: what turns tokens into final hidden states,
/// and the output head. Implementations read their weights from a GGUF file.
pub trait Decoder: Send + Sync + std::fmt::Debug {
    fn spec(&self) -> &ModelSpec;

    /// Embeds `tokens`, runs them through every layer at the places `layout` gives (appending
    /// their keys and values to `cache`) and applies the final norm: `[tokens, hidden]`.
    /// `pass` says whether to record a backward pass and which adapters to add.
    fn hidden_states(
        &self,
        tokens: &Tensor,
        layout: &Layout,
        cache: &mut KvCache,
        pass: &Pass,
    ) -> candle_core::Result<Tensor>;

    /// The output head's rows, `[vocabulary, hidden]` (the token embeddings when tied).
    fn output_rows(&self) -> &Tensor;
}

/// A loaded model (weights dequantized on the CPU), the LoRA adapters its inference passes
/// use (none by default), and its inference thread pool.
pub struct LanguageModel {
    decoder: Box<dyn Decoder>,
    adapters: Option<Arc<LoraAdapters>>,
    path: PathBuf,
    thread_pool: rayon::ThreadPool,
    device: Device,
}

impl std::fmt::Debug for LanguageModel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("LanguageModel").field("path", &self.path).field("decoder", &self.decoder).finish()
    }
}

impl LanguageModel {
    /// Opens `path` and loads the model (see [`LanguageModel::load`]).
    pub fn load_path(path: &Path, options: &ModelOptions) -> Result<Self, ModelError> {
        let mut file = GgufFile::open(path)?;
        Self::load(&mut file, options)
    }

    /// Reads the hyper-parameters and every tensor of `file` with the decoder its
    /// `general.architecture` names, dequantizing the weights.
    pub fn load(file: &mut GgufFile, options: &ModelOptions) -> Result<Self, ModelError> {
        let device = Device::Cpu;
        let threads = options.threads.max(1);
        if !matches!(options.weights, DType::F32 | DType::F16) {
            return Err(ModelError::Unsupported(format!("weights in {:?} (f32 or f16 only)", options.weights)));
        }
        let architecture = file.architecture()?.to_string();
        let thread_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |index| format!("llm-inference-{index}"))
            .build()
            .map_err(|error| ModelError::ThreadPool { threads, message: error.to_string() })?;
        let decoder: Box<dyn Decoder> = match architecture.as_str() {
            "gemma3" => Box::new(Gemma3Decoder::load(file, options.weights, &device)?),
            "llama" | "qwen2" => Box::new(LlamaDecoder::load(file, options.weights, &device)?),
            _ => return Err(ModelError::WrongArchitecture { path: file.path().to_path_buf(), architecture }),
        };
        Ok(Self { decoder, adapters: None, path: file.path().to_path_buf(), thread_pool, device })
    }

    pub fn config(&self) -> &ModelSpec {
        self.decoder.spec()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn threads(&self) -> usize {
        self.thread_pool.current_num_threads()
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config().layer_count)
    }

    /// Puts `adapters` (or none) beside the frozen weights in every inference pass from now on.
    /// Caches computed before hold the old model's keys and values: callers drop them.
    pub fn set_adapters(&mut self, adapters: Option<Arc<LoraAdapters>>) -> Result<(), ModelError> {
        if let Some(adapters) = &adapters
            && adapters.layer_count() != self.config().layer_count
        {
            return Err(ModelError::Unsupported(format!(
                "adapters for {} layers on a {}-layer model",
                adapters.layer_count(),
                self.config().layer_count
            )));
        }
        self.adapters = adapters;
        Ok(())
    }

    pub fn adapters(&self) -> Option<&Arc<LoraAdapters>> {
        self.adapters.as_ref()
    }

    /// Logits at every position of `tokens` (from an empty context, no cache kept), computed
    /// with ops that record a backward pass, with `adapters` beside the frozen weights: what
    /// tuning differentiates. Equal to [`LanguageModel::forward`] up to rounding.
    pub fn differentiable_logits(&self, tokens: &[u32], adapters: Option<&LoraAdapters>) -> Result<Tensor, ModelError> {
        self.thread_pool.install(|| {
            let hidden = self.differentiable_hidden(tokens, adapters)?;
            Ok(self.logits(&hidden)?)
        })
    }

    /// Log-probabilities (over the whole vocabulary) of each token of `continuation` after
    /// `prompt`, `[continuation.len()]`, differentiable as [`LanguageModel::differentiable_logits`]
    /// is; the output head runs only for the rows that predict the continuation.
    pub fn differentiable_log_probs(
        &self,
        prompt: &[u32],
        continuation: &[u32],
        adapters: Option<&LoraAdapters>,
    ) -> Result<Tensor, ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::EmptyCache);
        }
        if continuation.is_empty() {
            return Err(ModelError::NoTokens);
        }
        self.thread_pool.install(|| {
            let tokens: Vec<u32> = prompt.iter().chain(continuation).copied().collect();
            let hidden = self.differentiable_hidden(&tokens, adapters)?;
            let predicting = hidden.narrow(0, prompt.len() - 1, continuation.len())?;
            let log_probs = candle_nn::ops::log_softmax(&self.logits(&predicting)?, candle_core::D::Minus1)?;
            let targets = Tensor::new(continuation, &self.device)?.unsqueeze(1)?;
            Ok(log_probs.gather(&targets, 1)?.squeeze(1)?)
        })
    }

    /// The final-norm hidden states `[tokens, hidden]` of `tokens` from an empty context,
    /// differentiable as [`LanguageModel::differentiable_logits`] is (what a value head or
    /// constrained scoring reads).
    pub fn differentiable_hidden_states(
        &self,
        tokens: &[u32],
        adapters: Option<&LoraAdapters>,
    ) -> Result<Tensor, ModelError> {
        self.thread_pool.install(|| self.differentiable_hidden(tokens, adapters))
    }

    /// Logits of `rows` `[rows, hidden]` for the vocabulary entries `token_ids` only,
    /// `[rows, token_ids.len()]`, differentiable in `rows` (the output head stays frozen).
    pub fn logits_for(&self, rows: &Tensor, token_ids: &[u32]) -> Result<Tensor, ModelError> {
        let spec = self.config();
        if let Some(&token_id) = token_ids.iter().find(|&&token| token as usize >= spec.vocabulary_size) {
            return Err(ModelError::TokenOutOfRange { token_id, vocabulary_size: spec.vocabulary_size });
        }
        let head = self.decoder.output_rows().index_select(&Tensor::new(token_ids, &self.device)?, 0)?;
        let logits = rows.matmul(&head.t()?)?;
        Ok(match spec.final_logit_softcapping {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        })
    }

    fn differentiable_hidden(&self, tokens: &[u32], adapters: Option<&LoraAdapters>) -> Result<Tensor, ModelError> {
        let pass = Pass { differentiable: true, adapters };
        Ok(self.forward_layout_with(tokens, &self.new_cache(), None, &pass)?.0)
    }

    /// Appends `tokens` to `cache` and returns logits for `positions` of them. On error the
    /// cache is left as it was.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        positions: LogitPositions,
    ) -> Result<Tensor, ModelError> {
        self.thread_pool.install(|| {
            let (hidden, updated) = self.forward_hidden(tokens, cache)?;
            let rows = match positions {
                LogitPositions::Last => hidden.i(hidden.dim(0)? - 1)?.unsqueeze(0)?,
                LogitPositions::All => hidden,
            };
            let logits = self.logits(&rows)?;
            let logits = match positions {
                LogitPositions::Last => logits.squeeze(0)?,
                LogitPositions::All => logits,
            };
            *cache = updated;
            Ok(logits)
        })
    }

    /// Runs `tokens` after what `cache` holds and keeps them in it, computing no logits: what
    /// scoring from the cache's last hidden state needs. The output head over the 262k-token
    /// vocabulary costs about as much as two tokens through all layers and reads the 671 MB
    /// embedding matrix, so a request that only scores its options should not pay for it.
    pub fn extend(&self, tokens: &[u32], cache: &mut KvCache) -> Result<(), ModelError> {
        self.thread_pool.install(|| {
            let (_, updated) = self.forward_hidden(tokens, cache)?;
            *cache = updated;
            Ok(())
        })
    }

    /// Log-probabilities (natural log) of each token of `continuation` following what `cache`
    /// holds, computing the output head and log-softmax only for those positions. The cache
    /// then holds the continuation too; snapshot it first to score alternatives.
    pub fn continuation_log_probs(&self, cache: &mut KvCache, continuation: &[u32]) -> Result<Vec<f32>, ModelError> {
        if continuation.is_empty() {
            return Ok(Vec::new());
        }
        let Some(previous_hidden) = cache.last_hidden().cloned() else { return Err(ModelError::EmptyCache) };
        self.thread_pool.install(|| {
            let (hidden, updated) = self.forward_hidden(continuation, cache)?;
            // The state before token i predicts token i: the cache's last state, then all
            // new states but the last.
            let predicting =
                Tensor::cat(&[&previous_hidden.unsqueeze(0)?, &hidden.narrow(0, 0, continuation.len() - 1)?], 0)?;
            let mut log_probs = Vec::with_capacity(continuation.len());
            // Rows in chunks: a logits row is a megabyte with Gemma's 262k vocabulary.
            for (chunk_index, targets) in continuation.chunks(SCORING_ROWS_PER_CHUNK).enumerate() {
                let rows = predicting.narrow(0, chunk_index * SCORING_ROWS_PER_CHUNK, targets.len())?;
                let logits: Vec<Vec<f32>> = self.logits(&rows)?.to_vec2()?;
                log_probs.extend(logits.iter().zip(targets).map(|(row, &token)| log_softmax_at(row, token as usize)));
            }
            *cache = updated;
            Ok(log_probs)
        })
    }

    /// Log-probabilities of each token of every continuation following what `cache` holds,
    /// all in one pass: the continuations become a token tree (shared first tokens computed
    /// once), each token attending to the cache and its own ancestors at its own position.
    /// The output head and log-softmax run only for tree nodes that predict a scored token.
    /// Equal to [`LanguageModel::continuation_log_probs`] on each continuation from `cache`,
    /// which is left untouched.
    pub fn score_continuations(&self, cache: &KvCache, continuations: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.score_continuation_tree(cache, continuations, TreeNormalization::Vocabulary)
    }

    /// Like [`LanguageModel::score_continuations`] with a choice of what each next-token
    /// distribution is normalised over; `Siblings` gives the probabilities of decoding
    /// constrained to the continuations (see [`TreeNormalization`]) and needs the output head
    /// only for the continuations' own token ids.
    pub fn score_continuation_tree(
        &self,
        cache: &KvCache,
        continuations: &[&[u32]],
        normalization: TreeNormalization,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let tree = TokenTree::build(continuations);
        if tree.tokens.is_empty() {
            return Ok(vec![Vec::new(); continuations.len()]);
        }
        let Some(root_hidden) = cache.last_hidden().cloned() else { return Err(ModelError::EmptyCache) };
        self.thread_pool.install(|| {
            if normalization == TreeNormalization::Siblings {
                return self.sibling_scores(cache, &tree, &root_hidden);
            }
            let (hidden, _tree_cache) = self.forward_layout(&tree.tokens, cache, Some(&tree.parents))?;
            // Rows that predict something: the cache's last state (row 0), then every node
            // with children.
            let mut predictor_row = vec![None; tree.tokens.len()];
            let mut predictor_nodes = Vec::new();
            for parent in tree.parents.iter().flatten() {
                if predictor_row[*parent].is_none() {
                    predictor_row[*parent] = Some(predictor_nodes.len() + 1);
                    predictor_nodes.push(*parent as u32);
                }
            }
            let predicting = if predictor_nodes.is_empty() {
                root_hidden.unsqueeze(0)?
            } else {
                let node_rows = hidden.index_select(&Tensor::new(predictor_nodes.as_slice(), &self.device)?, 0)?;
                Tensor::cat(&[&root_hidden.unsqueeze(0)?, &node_rows], 0)?
            };
            // Targets per predicting row: (node, token).
            let mut targets: Vec<Vec<(usize, u32)>> = vec![Vec::new(); predicting.dim(0)?];
            for (node, (&token, parent)) in tree.tokens.iter().zip(&tree.parents).enumerate() {
                let row = match parent {
                    None => 0,
                    Some(parent) => predictor_row[*parent].unwrap_or(0),
                };
                targets[row].push((node, token));
            }
            let mut node_log_probs = vec![0.0f32; tree.tokens.len()];
            let row_count = predicting.dim(0)?;
            for chunk_start in (0..row_count).step_by(SCORING_ROWS_PER_CHUNK) {
                let chunk_len = SCORING_ROWS_PER_CHUNK.min(row_count - chunk_start);
                let logits: Vec<Vec<f32>> = self.logits(&predicting.narrow(0, chunk_start, chunk_len)?)?.to_vec2()?;
                for (offset, row) in logits.iter().enumerate() {
                    let log_normalizer = log_sum_exp(row);
                    for &(node, token) in &targets[chunk_start + offset] {
                        node_log_probs[node] = (row.get(token as usize).copied().unwrap_or(f32::NEG_INFINITY) as f64
                            - log_normalizer) as f32;
                    }
                }
            }
            Ok(tree.paths.iter().map(|path| path.iter().map(|&node| node_log_probs[node]).collect()).collect())
        })
    }

    /// `score_continuation_tree` with `Siblings` normalisation. A token that is the only one
    /// continuing any continuation where it stands scores log 1 = 0 whatever the model says, so
    /// only the nodes where continuations part (and their ancestors) are run through the model:
    /// for "go to the yellow key" / "go to the yellow door" / "pick up the yellow key" that is
    /// "go to the yellow", not all 14 tokens.
    fn sibling_scores(
        &self,
        cache: &KvCache,
        tree: &TokenTree,
        root_hidden: &Tensor,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let plan = SiblingPlan::of(tree);
        let hidden = if plan.run.is_empty() {
            None
        } else {
            let tokens: Vec<u32> = plan.run.iter().map(|&node| tree.tokens[node]).collect();
            let parents: Vec<Option<usize>> =
                plan.run.iter().map(|&node| tree.parents[node].and_then(|parent| plan.run_index[parent])).collect();
            Some(self.forward_layout(&tokens, cache, Some(&parents))?.0)
        };
        self.sibling_scores_from(tree, &plan, root_hidden, hidden.as_ref())
    }

    /// Runs `state` after what `cache` holds, keeping it there, and scores `continuations`
    /// after it as `score_continuation_tree` with `Siblings` does, in one pass: the state
    /// tokens as a chain, the option tree's forks hanging from its last token. Each pass reads
    /// every weight however few its tokens (~70 ms here), so one pass instead of two is most
    /// of what a request costs beyond its tokens.
    pub fn extend_and_score_siblings(
        &self,
        state: &[u32],
        cache: &mut KvCache,
        continuations: &[&[u32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if state.is_empty() {
            return self.score_continuation_tree(cache, continuations, TreeNormalization::Siblings);
        }
        let tree = TokenTree::build(continuations);
        let plan = SiblingPlan::of(&tree);
        let (start, chain) = (cache.len(), state.len());
        let mut tokens = state.to_vec();
        let mut parents: Vec<Option<usize>> = (0..chain).map(|index| index.checked_sub(1)).collect();
        for &node in &plan.run {
            tokens.push(tree.tokens[node]);
            // A run node's parent is run too (`SiblingPlan::of` keeps every ancestor).
            let parent =
                tree.parents[node].and_then(|parent| plan.run_index[parent]).map_or(chain - 1, |row| chain + row);
            parents.push(Some(parent));
        }
        self.thread_pool.install(|| {
            let (hidden, updated) = self.forward_layout(&tokens, cache, Some(&parents))?;
            let root = hidden.i(chain - 1)?;
            let run_rows = if plan.run.is_empty() { None } else { Some(hidden.narrow(0, chain, plan.run.len())?) };
            let scores = self.sibling_scores_from(&tree, &plan, &root, run_rows.as_ref())?;
            // The forks were laid out after the state: keep the state alone.
            *cache = updated.truncated(start + chain)?.with_last_hidden(root);
            Ok(scores)
        })
    }

    /// Sibling-normalised scores of `tree` from the hidden states that predict its tokens:
    /// `root_hidden` for its first tokens, row `plan.run_index[parent]` of `hidden` for the others.
    fn sibling_scores_from(
        &self,
        tree: &TokenTree,
        plan: &SiblingPlan,
        root_hidden: &Tensor,
        hidden: Option<&Tensor>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        // One logit per node that has siblings: its parent's row times its token's embedding.
        let scored: Vec<usize> = (0..tree.tokens.len()).filter(|&node| plan.has_siblings[node]).collect();
        let mut node_log_probs = vec![0.0f32; tree.tokens.len()];
        if scored.is_empty() {
            return Ok(tree.paths.iter().map(|path| path.iter().map(|&node| node_log_probs[node]).collect()).collect());
        }
        let predictors: Vec<Tensor> = scored
            .iter()
            .map(|&node| match (tree.parents[node], hidden) {
                (None, _) => Ok(root_hidden.clone()),
                (Some(parent), Some(hidden)) => {
                    let row = plan.run_index[parent].ok_or(ModelError::EmptyCache)?;
                    Ok(hidden.get(row)?)
                }
                (Some(_), None) => Err(ModelError::EmptyCache),
            })
            .collect::<Result<_, ModelError>>()?;
        let rows = Tensor::stack(&predictors, 0)?;
        let scored_tokens: Vec<u32> = scored.iter().map(|&node| tree.tokens[node]).collect();
        let embeddings =
            self.decoder.output_rows().index_select(&Tensor::new(scored_tokens.as_slice(), &self.device)?, 0)?;
        let logits = (rows * embeddings)?.sum(1)?;
        let logits = match self.config().final_logit_softcapping {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        };
        let logits: Vec<f32> = logits.to_vec1()?;
        let mut groups: std::collections::BTreeMap<Option<usize>, Vec<(usize, f32)>> = Default::default();
        for (&node, &logit) in scored.iter().zip(&logits) {
            groups.entry(tree.parents[node]).or_default().push((node, logit));
        }
        for siblings in groups.values() {
            let sibling_logits: Vec<f32> = siblings.iter().map(|&(_, logit)| logit).collect();
            let log_normalizer = log_sum_exp(&sibling_logits);
            for &(node, logit) in siblings {
                node_log_probs[node] = (logit as f64 - log_normalizer) as f32;
            }
        }
        Ok(tree.paths.iter().map(|path| path.iter().map(|&node| node_log_probs[node]).collect()).collect())
    }

    /// The next token's logits after what `cache` holds, for `token_ids` only (what a menu of
    /// single-token answers needs: their softmax does not need the whole vocabulary).
    pub fn next_token_logits_for(&self, cache: &KvCache, token_ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let Some(hidden) = cache.last_hidden().cloned() else { return Err(ModelError::EmptyCache) };
        if let Some(&token_id) = token_ids.iter().find(|&&token| token as usize >= self.config().vocabulary_size) {
            return Err(ModelError::TokenOutOfRange { token_id, vocabulary_size: self.config().vocabulary_size });
        }
        if token_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.thread_pool.install(|| {
            let rows = self.decoder.output_rows().index_select(&Tensor::new(token_ids, &self.device)?, 0)?;
            let logits = hidden.unsqueeze(0)?.matmul(&rows.t()?)?;
            let logits = match self.config().final_logit_softcapping {
                Some(cap) => ((logits / cap)?.tanh()? * cap)?,
                None => logits,
            };
            Ok(logits.squeeze(0)?.to_vec1()?)
        })
    }

    /// The next token's logits over the whole vocabulary after what `cache` holds.
    pub fn next_token_logits(&self, cache: &KvCache) -> Result<Vec<f32>, ModelError> {
        let Some(hidden) = cache.last_hidden().cloned() else { return Err(ModelError::EmptyCache) };
        self.thread_pool.install(|| Ok(self.logits(&hidden.unsqueeze(0)?)?.squeeze(0)?.to_vec1()?))
    }

    /// Greedy decoding: the up to `maximum_tokens` most likely tokens after what `cache` holds
    /// (at least one token), stopping after any of `stop_tokens`; the cache then holds them.
    pub fn greedy_continuation(
        &self,
        cache: &mut KvCache,
        maximum_tokens: usize,
        stop_tokens: &[u32],
    ) -> Result<Vec<u32>, ModelError> {
        let Some(mut hidden) = cache.last_hidden().cloned() else { return Err(ModelError::EmptyCache) };
        let mut generated = Vec::new();
        self.thread_pool.install(|| {
            while generated.len() < maximum_tokens {
                let token = self.logits(&hidden.unsqueeze(0)?)?.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
                generated.push(token);
                let (new_hidden, updated) = self.forward_hidden(&[token], cache)?;
                *cache = updated;
                if stop_tokens.contains(&token) {
                    break;
                }
                hidden = new_hidden.i(0)?;
            }
            Ok(generated)
        })
    }

    /// Runs `tokens` through every layer after what `cache` holds; returns the final-norm
    /// hidden states `[tokens, hidden]` and the cache extended by them (callers commit it
    /// once nothing else can fail).
    fn forward_hidden(&self, tokens: &[u32], cache: &KvCache) -> Result<(Tensor, KvCache), ModelError> {
        self.forward_layout(tokens, cache, None)
    }

    /// [`LanguageModel::forward_hidden`] for a sequence (`tree: None`) or for a token tree
    /// laid out flat (`tree: Some(parents)`, see [`Layout`]). The returned cache holds a
    /// tree's tokens in flat order, which is no sequence: callers drop it or cut it back.
    fn forward_layout(
        &self,
        tokens: &[u32],
        cache: &KvCache,
        tree: Option<&[Option<usize>]>,
    ) -> Result<(Tensor, KvCache), ModelError> {
        let pass = Pass { differentiable: false, adapters: self.adapters.as_deref() };
        self.forward_layout_with(tokens, cache, tree, &pass)
    }

    fn forward_layout_with(
        &self,
        tokens: &[u32],
        cache: &KvCache,
        tree: Option<&[Option<usize>]>,
        pass: &Pass,
    ) -> Result<(Tensor, KvCache), ModelError> {
        let spec = self.config();
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        if cache.layer_count() != spec.layer_count {
            return Err(ModelError::CacheMismatch { expected: spec.layer_count, found: cache.layer_count() });
        }
        if let Some(&token_id) = tokens.iter().find(|&&token| token as usize >= spec.vocabulary_size) {
            return Err(ModelError::TokenOutOfRange { token_id, vocabulary_size: spec.vocabulary_size });
        }
        let layout = Layout::new(cache.len(), tokens.len(), tree)?;
        if layout.end() > spec.context_length {
            return Err(ModelError::ContextOverflow { needed: layout.end(), context_length: spec.context_length });
        }
        let mut updated = cache.clone();
        let token_ids = Tensor::new(tokens, &self.device)?;
        let normed = self.decoder.hidden_states(&token_ids, &layout, &mut updated, pass)?;
        updated.advance(tokens.len(), normed.i(tokens.len() - 1)?);
        Ok((normed, updated))
    }

    /// The output head: `[rows, hidden]` -> `[rows, vocabulary]`.
    fn logits(&self, rows: &Tensor) -> candle_core::Result<Tensor> {
        let logits = rows.matmul(&self.decoder.output_rows().t()?)?;
        match self.config().final_logit_softcapping {
            Some(cap) => (logits / cap)?.tanh()? * cap,
            None => Ok(logits),
        }
    }
}

/// log softmax(row)[target], accumulated in f64.
pub(crate) fn log_softmax_at(row: &[f32], target: usize) -> f32 {
    let maximum = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&logit| (logit as f64 - maximum).exp()).sum();
    (row.get(target).copied().unwrap_or(f32::NEG_INFINITY) as f64 - maximum - sum.ln()) as f32
}

/// log Σ exp(row), accumulated in f64.
fn log_sum_exp(row: &[f32]) -> f64 {
    let maximum = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&logit| (logit as f64 - maximum).exp()).sum();
    maximum + sum.ln()
}

/// What each next-token distribution of a continuation tree is normalised over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TreeNormalization {
    /// The whole vocabulary: true log-likelihoods of the continuations.
    #[default]
    Vocabulary,
    /// The tokens that continue some continuation from that node: the log-probabilities of
    /// decoding constrained to the continuations. Tokens with no alternative score 0 (a
    /// phrase is not penalised for words the others do not compete with), and the
    /// continuations' probabilities sum to 1 when none is a prefix of another.
    Siblings,
}

/// Continuations merged into a prefix tree: shared leading tokens become one node.
#[derive(Debug, Default)]
struct TokenTree {
    tokens: Vec<u32>,
    parents: Vec<Option<usize>>,
    /// Per continuation, its nodes from first token to last.
    paths: Vec<Vec<usize>>,
}

impl TokenTree {
    fn build(continuations: &[&[u32]]) -> TokenTree {
        let mut tree = TokenTree::default();
        let mut children: std::collections::HashMap<(Option<usize>, u32), usize> = std::collections::HashMap::new();
        for continuation in continuations {
            let mut parent = None;
            let mut path = Vec::with_capacity(continuation.len());
            for &token in *continuation {
                let node = *children.entry((parent, token)).or_insert_with(|| {
                    tree.tokens.push(token);
                    tree.parents.push(parent);
                    tree.tokens.len() - 1
                });
                path.push(node);
                parent = Some(node);
            }
            tree.paths.push(path);
        }
        tree
    }
}

/// What sibling-normalised scoring of a token tree must run: nodes with two or more children
/// (their next-token logits are needed) and their ancestors, in tree order.
struct SiblingPlan {
    run: Vec<usize>,
    /// Per tree node, its index in `run` (None: not run).
    run_index: Vec<Option<usize>>,
    /// Per tree node, whether another node shares its parent (else it scores 0).
    has_siblings: Vec<bool>,
}

impl SiblingPlan {
    fn of(tree: &TokenTree) -> SiblingPlan {
        let count = tree.tokens.len();
        let mut children = vec![0usize; count];
        let mut root_children = 0usize;
        for parent in &tree.parents {
            match parent {
                Some(parent) => children[*parent] += 1,
                None => root_children += 1,
            }
        }
        let mut needed: Vec<bool> = children.iter().map(|&n| n >= 2).collect();
        // Parents come before their children, so one backward sweep marks every ancestor.
        for node in (0..count).rev() {
            if needed[node]
                && let Some(parent) = tree.parents[node]
            {
                needed[parent] = true;
            }
        }
        let mut run_index = vec![None; count];
        let mut run = Vec::new();
        for node in (0..count).filter(|&node| needed[node]) {
            run_index[node] = Some(run.len());
            run.push(node);
        }
        let has_siblings = tree
            .parents
            .iter()
            .map(|parent| match parent {
                Some(parent) => children[*parent] >= 2,
                None => root_children >= 2,
            })
            .collect();
        SiblingPlan { run, run_index, has_siblings }
    }
}

/// Tokens sibling-normalised scoring of `continuations` runs through the model (for timings).
pub fn sibling_scoring_tokens(continuations: &[&[u32]]) -> usize {
    SiblingPlan::of(&TokenTree::build(continuations)).run.len()
}

/// Reads named tensors of a GGUF file for a decoder, checking their shapes.
pub(super) struct WeightLoader<'a> {
    file: &'a mut GgufFile,
    device: &'a Device,
}

impl<'a> WeightLoader<'a> {
    pub(super) fn new(file: &'a mut GgufFile, device: &'a Device) -> Self {
        Self { file, device }
    }

    /// Whether the file holds a tensor called `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.file.tensor_infos().contains_key(name)
    }

    /// Reads `name`, checks its shape and dequantizes it to f32.
    pub(super) fn load(&mut self, name: &str, expected: &[usize]) -> Result<Tensor, ModelError> {
        self.load_as(name, expected, DType::F32)
    }

    /// Reads `name`, checks its shape and dequantizes it to `dtype`.
    pub(super) fn load_as(&mut self, name: &str, expected: &[usize], dtype: DType) -> Result<Tensor, ModelError> {
        let quantized = self.file.tensor(name, self.device)?;
        let found = quantized.shape().dims();
        if found != expected {
            return Err(ModelError::TensorShape {
                path: self.file.path().to_path_buf(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            });
        }
        let dequantize = || quantized.dequantize(self.device)?.to_dtype(DType::F32)?.to_dtype(dtype);
        dequantize().map_err(|source| ModelError::Dequantize {
            path: self.file.path().to_path_buf(),
            name: name.to_string(),
            source: Box::new(source),
        })
    }
}
