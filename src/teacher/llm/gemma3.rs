//! duet's own Gemma 3 decoder, loaded from a GGUF file with its weights dequantized to f32:
//! forward passes over a [`KvCache`] (multi-token appends, sliding windows) and scoring.
//!
//! Why not candle-transformers' `quantized_gemma3`: it applies SiLU where Gemma 3 uses
//! GELU-tanh (perplexity 21 where llama.cpp gets 10 on the same file), builds a 131k-position
//! rope table per layer, cannot append several tokens to a filled cache, ignores the sliding
//! window when decoding, and keeps its internals private. candle's quantized CPU matmuls are
//! also slow for this file's Q5_0/Q8_0 blocks, while f32 weights run at llama.cpp's speed.
//!
//! Architecture (HF `modeling_gemma3.py`, llama.cpp's gemma3 graph): embeddings times
//! sqrt(hidden); per layer RMSNorm → attention (per-head q/k RMSNorm, rope, GQA, scale
//! head_dim^-0.5) → RMSNorm → residual, RMSNorm → GeGLU MLP (GELU tanh) → RMSNorm →
//! residual; every `sliding_window_pattern`-th layer is global (rope base from the file,
//! 1e6), the others attend to the last `sliding_window` positions (rope base 10k); final
//! RMSNorm; output head tied to the embeddings; no logit softcapping unless the file says so.
//! llama.cpp's converter stores Gemma's RMSNorm weights already shifted (w + 1), so they are
//! used as they are (adding 1 again sends perplexity to ~2e8). tests/gemma3_real.rs checks
//! perplexities and next-token log-probs against llama.cpp on the same file.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};

use super::geglu::gelu_tanh_times;
use super::gguf::{GgufError, GgufFile};
use super::kv_cache::KvCache;
use super::rope::RopeTable;

/// Rope base of the sliding-window layers: fixed by Gemma 3, not stored in GGUF files.
pub const LOCAL_ROPE_BASE: f64 = 10_000.0;

/// Every this-many-th layer is global when the file does not say otherwise (Gemma 3: 5 local
/// layers, then 1 global).
pub const DEFAULT_SLIDING_WINDOW_PATTERN: usize = 6;

/// Output-head rows computed at once when scoring a continuation (bounds memory).
const SCORING_ROWS_PER_CHUNK: usize = 32;

/// What went wrong loading or running the model.
#[derive(Debug, thiserror::Error)]
pub enum Gemma3Error {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("{}: architecture {architecture:?} is not gemma3", path.display())]
    WrongArchitecture { path: PathBuf, architecture: String },
    #[error("{}: unusable gemma3 hyper-parameters: {problem}", path.display())]
    InvalidConfig { path: PathBuf, problem: String },
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
    #[error("nothing to score from: the cache is empty (process at least <bos> first)")]
    EmptyCache,
    #[error("gemma3 forward pass failed: {0}")]
    Compute(#[from] candle_core::Error),
    #[error("unsupported option: {0}")]
    Unsupported(String),
}

/// Gemma 3's hyper-parameters, read from `gemma3.*` metadata and the tensor shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemma3Config {
    pub vocabulary_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub layer_count: usize,
    pub head_count: usize,
    pub kv_head_count: usize,
    pub head_dim: usize,
    pub rms_norm_epsilon: f64,
    pub global_rope_base: f64,
    pub local_rope_base: f64,
    /// Linear rope scaling of the global layers (Gemma 3 4B+ use 8; 1.0 means none).
    pub global_rope_linear_scaling: f64,
    /// Positions a local layer attends to, itself included; `None`: every layer is global.
    pub sliding_window: Option<usize>,
    pub sliding_window_pattern: usize,
    pub context_length: usize,
    /// Multiplies queries before q·k: `query_pre_attn_scalar^-0.5`.
    pub attention_scale: f64,
    pub final_logit_softcapping: Option<f64>,
}

impl Gemma3Config {
    /// Reads the hyper-parameters of `file`, which must be a gemma3 GGUF.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, Gemma3Error> {
        let path = file.path().to_path_buf();
        let architecture = file.architecture()?;
        if architecture != "gemma3" {
            return Err(Gemma3Error::WrongArchitecture { path, architecture: architecture.to_string() });
        }
        let count = |key: &str| file.u32(key).map(|value| value as usize);
        let hidden_size = count("gemma3.embedding_length")?;
        let layer_count = count("gemma3.block_count")?;
        let head_count = count("gemma3.attention.head_count")?;
        let kv_head_count = count("gemma3.attention.head_count_kv")?;
        let head_dim = match file.optional_u32("gemma3.attention.key_length")? {
            Some(length) => length as usize,
            None => hidden_size / head_count.max(1),
        };
        let value_dim = file.optional_u32("gemma3.attention.value_length")?.map_or(head_dim, |length| length as usize);
        let sliding_window = match file.optional_u32("gemma3.attention.sliding_window")? {
            Some(0) | None => None,
            Some(window) => Some(window as usize),
        };
        let sliding_window_pattern = file
            .optional_u32("gemma3.attention.sliding_window_pattern")?
            .map_or(DEFAULT_SLIDING_WINDOW_PATTERN, |pattern| pattern as usize);
        let global_rope_linear_scaling = match file.optional_string("gemma3.rope.scaling.type")? {
            None | Some("none") => 1.0,
            Some("linear") => optional_f32(file, "gemma3.rope.scaling.factor")?.unwrap_or(1.0),
            Some(other) => {
                return Err(Gemma3Error::InvalidConfig {
                    path,
                    problem: format!("rope scaling {other:?} is not supported"),
                });
            }
        };
        // Gemma 3 27B (62 layers) was trained with query_pre_attn_scalar = hidden / heads, the
        // others with head_dim; GGUF files do not store it (llama.cpp decides the same way).
        let query_pre_attention_scalar =
            if layer_count == 62 { hidden_size as f64 / head_count.max(1) as f64 } else { head_dim as f64 };
        let vocabulary_size = match file.tensor_infos().get("token_embd.weight") {
            Some(info) => info.shape.dims().first().copied().unwrap_or(0),
            None => return Err(GgufError::MissingTensor { path, name: "token_embd.weight".into() }.into()),
        };
        let config = Gemma3Config {
            vocabulary_size,
            hidden_size,
            intermediate_size: count("gemma3.feed_forward_length")?,
            layer_count,
            head_count,
            kv_head_count,
            head_dim,
            rms_norm_epsilon: file.f32("gemma3.attention.layer_norm_rms_epsilon")? as f64,
            global_rope_base: optional_f32(file, "gemma3.rope.freq_base")?.unwrap_or(1_000_000.0),
            local_rope_base: LOCAL_ROPE_BASE,
            global_rope_linear_scaling,
            sliding_window,
            sliding_window_pattern,
            context_length: count("gemma3.context_length")?,
            attention_scale: query_pre_attention_scalar.powf(-0.5),
            final_logit_softcapping: optional_f32(file, "gemma3.final_logit_softcapping")?.filter(|cap| *cap > 0.0),
        };
        let problem = |text: String| Err(Gemma3Error::InvalidConfig { path: path.clone(), problem: text });
        if value_dim != head_dim {
            return problem(format!("value length {value_dim} differs from key length {head_dim}"));
        }
        if [hidden_size, layer_count, head_count, kv_head_count, head_dim, config.intermediate_size, vocabulary_size]
            .contains(&0)
            || config.context_length == 0
            || sliding_window_pattern == 0
        {
            return problem("a size is zero".to_string());
        }
        if head_count % kv_head_count != 0 {
            return problem(format!("{head_count} query heads do not share {kv_head_count} kv heads evenly"));
        }
        if head_dim % 2 != 0 {
            return problem(format!("rope needs an even head dimension, got {head_dim}"));
        }
        Ok(config)
    }

    /// Whether `layer` attends only to the last `sliding_window` positions.
    pub fn is_sliding_layer(&self, layer: usize) -> bool {
        self.sliding_window.is_some() && !(layer + 1).is_multiple_of(self.sliding_window_pattern)
    }
}

fn optional_f32(file: &GgufFile, key: &str) -> Result<Option<f64>, GgufError> {
    if file.metadata().contains_key(key) { file.f32(key).map(|value| Some(value as f64)) } else { Ok(None) }
}

/// How the model is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gemma3Options {
    /// Inference threads (candle's CPU kernels use rayon); on the shared 2-core machines one
    /// thread is fastest, as with llama.cpp.
    pub threads: usize,
    /// Precision the decoder layers' projection weights are dequantized to: f32 (default), or
    /// f16, half the memory and half the bytes each pass reads (activations stay f32; each
    /// projection's input is rounded to f16 for the product).
    pub weights: DType,
}

impl Default for Gemma3Options {
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

/// Weights of one decoder layer; linear weights are `[out, in]` as GGUF stores them.
#[derive(Debug)]
struct DecoderLayer {
    attention_norm: Tensor,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    query_norm: Tensor,
    key_norm: Tensor,
    attention_output: Tensor,
    post_attention_norm: Tensor,
    feed_forward_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    post_feed_forward_norm: Tensor,
    is_sliding: bool,
}

/// A loaded Gemma 3 model (f32 weights on the CPU) and its inference thread pool.
pub struct Gemma3Model {
    config: Gemma3Config,
    path: PathBuf,
    token_embedding: Tensor,
    layers: Vec<DecoderLayer>,
    output_norm: Tensor,
    global_rope: RopeTable,
    local_rope: RopeTable,
    thread_pool: rayon::ThreadPool,
    device: Device,
}

impl std::fmt::Debug for Gemma3Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Gemma3Model").field("path", &self.path).field("config", &self.config).finish()
    }
}

impl Gemma3Model {
    /// Opens `path` and loads the model (see [`Gemma3Model::load`]).
    pub fn load_path(path: &Path, options: &Gemma3Options) -> Result<Self, Gemma3Error> {
        let mut file = GgufFile::open(path)?;
        Self::load(&mut file, options)
    }

    /// Reads the hyper-parameters and every tensor of `file`, dequantizing weights to f32.
    pub fn load(file: &mut GgufFile, options: &Gemma3Options) -> Result<Self, Gemma3Error> {
        let config = Gemma3Config::from_gguf(file)?;
        let device = Device::Cpu;
        let threads = options.threads.max(1);
        let thread_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|index| format!("gemma3-inference-{index}"))
            .build()
            .map_err(|error| Gemma3Error::ThreadPool { threads, message: error.to_string() })?;
        if !matches!(options.weights, DType::F32 | DType::F16) {
            return Err(Gemma3Error::Unsupported(format!("weights in {:?} (f32 or f16 only)", options.weights)));
        }
        let mut loader = WeightLoader { file, device: &device };
        let (hidden, heads, kv_heads, head_dim) =
            (config.hidden_size, config.head_count, config.kv_head_count, config.head_dim);
        let token_embedding = loader.load("token_embd.weight", &[config.vocabulary_size, hidden])?;
        let output_norm = loader.load("output_norm.weight", &[hidden])?;
        let mut layers = Vec::with_capacity(config.layer_count);
        for layer in 0..config.layer_count {
            let mut weight = |name: &str, shape: &[usize], dtype: DType| {
                loader.load(&format!("blk.{layer}.{name}.weight"), shape)?.to_dtype(dtype).map_err(Gemma3Error::from)
            };
            let (norm, projection) = (DType::F32, options.weights);
            layers.push(DecoderLayer {
                attention_norm: weight("attn_norm", &[hidden], norm)?,
                query: weight("attn_q", &[heads * head_dim, hidden], projection)?,
                key: weight("attn_k", &[kv_heads * head_dim, hidden], projection)?,
                value: weight("attn_v", &[kv_heads * head_dim, hidden], projection)?,
                query_norm: weight("attn_q_norm", &[head_dim], norm)?,
                key_norm: weight("attn_k_norm", &[head_dim], norm)?,
                attention_output: weight("attn_output", &[hidden, heads * head_dim], projection)?,
                post_attention_norm: weight("post_attention_norm", &[hidden], norm)?,
                feed_forward_norm: weight("ffn_norm", &[hidden], norm)?,
                gate: weight("ffn_gate", &[config.intermediate_size, hidden], projection)?,
                up: weight("ffn_up", &[config.intermediate_size, hidden], projection)?,
                down: weight("ffn_down", &[hidden, config.intermediate_size], projection)?,
                post_feed_forward_norm: weight("post_ffw_norm", &[hidden], norm)?,
                is_sliding: config.is_sliding_layer(layer),
            });
        }
        let global_rope = RopeTable::new(
            config.global_rope_base,
            config.global_rope_linear_scaling,
            head_dim,
            config.context_length,
            &device,
        );
        let local_rope = RopeTable::new(config.local_rope_base, 1.0, head_dim, config.context_length, &device);
        Ok(Self {
            path: file.path().to_path_buf(),
            config,
            token_embedding,
            layers,
            output_norm,
            global_rope,
            local_rope,
            thread_pool,
            device,
        })
    }

    pub fn config(&self) -> &Gemma3Config {
        &self.config
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn threads(&self) -> usize {
        self.thread_pool.current_num_threads()
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.layer_count)
    }

    /// Appends `tokens` to `cache` and returns logits for `positions` of them. On error the
    /// cache is left as it was.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        positions: LogitPositions,
    ) -> Result<Tensor, Gemma3Error> {
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
    pub fn extend(&self, tokens: &[u32], cache: &mut KvCache) -> Result<(), Gemma3Error> {
        self.thread_pool.install(|| {
            let (_, updated) = self.forward_hidden(tokens, cache)?;
            *cache = updated;
            Ok(())
        })
    }

    /// Log-probabilities (natural log) of each token of `continuation` following what `cache`
    /// holds, computing the output head and log-softmax only for those positions. The cache
    /// then holds the continuation too; snapshot it first to score alternatives.
    pub fn continuation_log_probs(&self, cache: &mut KvCache, continuation: &[u32]) -> Result<Vec<f32>, Gemma3Error> {
        if continuation.is_empty() {
            return Ok(Vec::new());
        }
        let Some(previous_hidden) = cache.last_hidden().cloned() else { return Err(Gemma3Error::EmptyCache) };
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
    /// Equal to [`Gemma3Model::continuation_log_probs`] on each continuation from `cache`,
    /// which is left untouched.
    pub fn score_continuations(&self, cache: &KvCache, continuations: &[&[u32]]) -> Result<Vec<Vec<f32>>, Gemma3Error> {
        self.score_continuation_tree(cache, continuations, TreeNormalization::Vocabulary)
    }

    /// Like [`Gemma3Model::score_continuations`] with a choice of what each next-token
    /// distribution is normalised over; `Siblings` gives the probabilities of decoding
    /// constrained to the continuations (see [`TreeNormalization`]) and needs the output head
    /// only for the continuations' own token ids.
    pub fn score_continuation_tree(
        &self,
        cache: &KvCache,
        continuations: &[&[u32]],
        normalization: TreeNormalization,
    ) -> Result<Vec<Vec<f32>>, Gemma3Error> {
        let tree = TokenTree::build(continuations);
        if tree.tokens.is_empty() {
            return Ok(vec![Vec::new(); continuations.len()]);
        }
        let Some(root_hidden) = cache.last_hidden().cloned() else { return Err(Gemma3Error::EmptyCache) };
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
    ) -> Result<Vec<Vec<f32>>, Gemma3Error> {
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
    ) -> Result<Vec<Vec<f32>>, Gemma3Error> {
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
    ) -> Result<Vec<Vec<f32>>, Gemma3Error> {
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
                    let row = plan.run_index[parent].ok_or(Gemma3Error::EmptyCache)?;
                    Ok(hidden.get(row)?)
                }
                (Some(_), None) => Err(Gemma3Error::EmptyCache),
            })
            .collect::<Result<_, Gemma3Error>>()?;
        let rows = Tensor::stack(&predictors, 0)?;
        let scored_tokens: Vec<u32> = scored.iter().map(|&node| tree.tokens[node]).collect();
        let embeddings = self.token_embedding.index_select(&Tensor::new(scored_tokens.as_slice(), &self.device)?, 0)?;
        let logits = (rows * embeddings)?.sum(1)?;
        let logits = match self.config.final_logit_softcapping {
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
    pub fn next_token_logits_for(&self, cache: &KvCache, token_ids: &[u32]) -> Result<Vec<f32>, Gemma3Error> {
        let Some(hidden) = cache.last_hidden().cloned() else { return Err(Gemma3Error::EmptyCache) };
        if let Some(&token_id) = token_ids.iter().find(|&&token| token as usize >= self.config.vocabulary_size) {
            return Err(Gemma3Error::TokenOutOfRange { token_id, vocabulary_size: self.config.vocabulary_size });
        }
        if token_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.thread_pool.install(|| {
            let rows = self.token_embedding.index_select(&Tensor::new(token_ids, &self.device)?, 0)?;
            let logits = hidden.unsqueeze(0)?.matmul(&rows.t()?)?;
            let logits = match self.config.final_logit_softcapping {
                Some(cap) => ((logits / cap)?.tanh()? * cap)?,
                None => logits,
            };
            Ok(logits.squeeze(0)?.to_vec1()?)
        })
    }

    /// The next token's logits over the whole vocabulary after what `cache` holds.
    pub fn next_token_logits(&self, cache: &KvCache) -> Result<Vec<f32>, Gemma3Error> {
        let Some(hidden) = cache.last_hidden().cloned() else { return Err(Gemma3Error::EmptyCache) };
        self.thread_pool.install(|| Ok(self.logits(&hidden.unsqueeze(0)?)?.squeeze(0)?.to_vec1()?))
    }

    /// Greedy decoding: the up to `maximum_tokens` most likely tokens after what `cache` holds
    /// (at least one token), stopping after any of `stop_tokens`; the cache then holds them.
    pub fn greedy_continuation(
        &self,
        cache: &mut KvCache,
        maximum_tokens: usize,
        stop_tokens: &[u32],
    ) -> Result<Vec<u32>, Gemma3Error> {
        let Some(mut hidden) = cache.last_hidden().cloned() else { return Err(Gemma3Error::EmptyCache) };
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
    fn forward_hidden(&self, tokens: &[u32], cache: &KvCache) -> Result<(Tensor, KvCache), Gemma3Error> {
        self.forward_layout(tokens, cache, None)
    }

    /// [`Gemma3Model::forward_hidden`] for a sequence (`tree: None`) or for a token tree laid
    /// out flat (`tree: Some(parents)`, each token's parent index before it, `None` for the
    /// tokens that follow the cache directly): a token then sits at the cache's length plus
    /// its depth and attends to the cache and to its own ancestors only. The returned cache
    /// holds a tree's tokens in flat order, which is no sequence: callers drop it.
    fn forward_layout(
        &self,
        tokens: &[u32],
        cache: &KvCache,
        tree: Option<&[Option<usize>]>,
    ) -> Result<(Tensor, KvCache), Gemma3Error> {
        if tokens.is_empty() {
            return Err(Gemma3Error::NoTokens);
        }
        if cache.layer_count() != self.layers.len() {
            return Err(Gemma3Error::CacheMismatch { expected: self.layers.len(), found: cache.layer_count() });
        }
        if let Some(&token_id) = tokens.iter().find(|&&token| token as usize >= self.config.vocabulary_size) {
            return Err(Gemma3Error::TokenOutOfRange { token_id, vocabulary_size: self.config.vocabulary_size });
        }
        let start = cache.len();
        let count = tokens.len();
        let depths = match tree {
            Some(parents) => tree_depths(parents)?,
            None => (0..count).collect(),
        };
        let deepest = depths.iter().copied().max().unwrap_or(0);
        if start + deepest + 1 > self.config.context_length {
            return Err(Gemma3Error::ContextOverflow {
                needed: start + deepest + 1,
                context_length: self.config.context_length,
            });
        }
        let mut updated = cache.clone();
        let token_ids = Tensor::new(tokens, &self.device)?;
        let mut hidden = (self.token_embedding.index_select(&token_ids, 0)? * (self.config.hidden_size as f64).sqrt())?;
        let ((global_cos, global_sin), (local_cos, local_sin)) = match tree {
            None => (self.global_rope.cos_sin(start, count)?, self.local_rope.cos_sin(start, count)?),
            Some(_) => {
                let positions: Vec<usize> = depths.iter().map(|depth| start + depth).collect();
                (self.global_rope.cos_sin_at(&positions)?, self.local_rope.cos_sin_at(&positions)?)
            }
        };
        let (global_mask, local_mask) = match tree {
            None => (
                AttentionMask::new(start, count, None, &self.device)?,
                AttentionMask::new(start, count, self.config.sliding_window, &self.device)?,
            ),
            Some(parents) => (
                AttentionMask::for_tree(start, parents, &depths, None, &self.device)?,
                AttentionMask::for_tree(start, parents, &depths, self.config.sliding_window, &self.device)?,
            ),
        };
        for (index, layer) in self.layers.iter().enumerate() {
            let (cos, sin, mask) = if layer.is_sliding {
                (&local_cos, &local_sin, &local_mask)
            } else {
                (&global_cos, &global_sin, &global_mask)
            };
            hidden = self.decoder_layer(layer, index, &hidden, cos, sin, mask, &mut updated)?;
        }
        let normed = self.rms_norm(&hidden, &self.output_norm)?;
        updated.advance(count, normed.i(count - 1)?);
        Ok((normed, updated))
    }

    #[allow(clippy::too_many_arguments)]
    fn decoder_layer(
        &self,
        layer: &DecoderLayer,
        index: usize,
        hidden: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttentionMask,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let attention_input = self.rms_norm(hidden, &layer.attention_norm)?;
        let attended = self.attention(layer, index, &attention_input, cos, sin, mask, cache)?;
        let hidden = (hidden + self.rms_norm(&attended, &layer.post_attention_norm)?)?;
        let feed_forward_input = self.rms_norm(&hidden, &layer.feed_forward_norm)?;
        let gate = linear(&feed_forward_input, &layer.gate)?;
        let up = linear(&feed_forward_input, &layer.up)?;
        let fed_forward = linear(&gelu_tanh_times(&gate, &up)?, &layer.down)?;
        hidden + self.rms_norm(&fed_forward, &layer.post_feed_forward_norm)?
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &DecoderLayer,
        index: usize,
        input: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttentionMask,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let Gemma3Config { head_count, kv_head_count, head_dim, .. } = self.config;
        let count = input.dim(0)?;
        // [count, heads * head_dim] -> per-head RMSNorm -> [heads, count, head_dim] -> rope.
        let project = |weight: &Tensor, norm: Option<&Tensor>, heads: usize| -> candle_core::Result<Tensor> {
            let projected = linear(input, weight)?.reshape((count, heads, head_dim))?;
            let projected = match norm {
                Some(norm) => self.rms_norm(&projected, norm)?,
                None => projected,
            };
            projected.transpose(0, 1)?.contiguous()
        };
        let apply_rope = |heads: Tensor| -> candle_core::Result<Tensor> {
            candle_nn::rotary_emb::rope(&heads.unsqueeze(0)?, cos, sin)?.squeeze(0)
        };
        let queries =
            (apply_rope(project(&layer.query, Some(&layer.query_norm), head_count)?)? * self.config.attention_scale)?;
        let keys = apply_rope(project(&layer.key, Some(&layer.key_norm), kv_head_count)?)?;
        let values = project(&layer.value, None, kv_head_count)?;
        let (all_keys, all_values) = cache.append(index, &keys, &values)?;
        // Keys no new query can see (older than the window) are left out of the products.
        let (all_keys, all_values) = if mask.first_key > 0 {
            let visible = all_keys.dim(1)? - mask.first_key;
            (
                all_keys.narrow(1, mask.first_key, visible)?.contiguous()?,
                all_values.narrow(1, mask.first_key, visible)?.contiguous()?,
            )
        } else {
            (all_keys, all_values)
        };
        let key_count = all_keys.dim(1)?;
        // Grouped-query attention without copying keys: the query heads sharing a kv head
        // (consecutive, as in HF's repeat_kv) are stacked along the position axis.
        let group = head_count / kv_head_count;
        let grouped_queries = queries.reshape((kv_head_count, group * count, head_dim))?;
        let scores = grouped_queries.matmul(&all_keys.t()?)?;
        let scores = match &mask.additive {
            Some(additive) => scores.reshape((head_count, count, key_count))?.broadcast_add(additive)?,
            None => scores.reshape((head_count, count, key_count))?,
        };
        let weights = candle_nn::ops::softmax_last_dim(&scores)?.reshape((kv_head_count, group * count, key_count))?;
        let attended = weights.matmul(&all_values.contiguous()?)?;
        let merged = attended
            .reshape((head_count, count, head_dim))?
            .transpose(0, 1)?
            .reshape((count, head_count * head_dim))?;
        linear(&merged, &layer.attention_output)
    }

    fn rms_norm(&self, input: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(&input.contiguous()?, weight, self.config.rms_norm_epsilon as f32)
    }

    /// Output head (tied to the embeddings): `[rows, hidden]` -> `[rows, vocabulary]`.
    fn logits(&self, rows: &Tensor) -> candle_core::Result<Tensor> {
        let logits = rows.matmul(&self.token_embedding.t()?)?;
        match self.config.final_logit_softcapping {
            Some(cap) => (logits / cap)?.tanh()? * cap,
            None => Ok(logits),
        }
    }
}

/// `input [rows, in] · weightᵀ` for a GGUF `[out, in]` weight; an f16 weight takes the input
/// rounded to f16 and gives an f32 result.
fn linear(input: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    if weight.dtype() == input.dtype() {
        input.matmul(&weight.t()?)
    } else {
        input.to_dtype(weight.dtype())?.matmul(&weight.t()?)?.to_dtype(input.dtype())
    }
}

/// log softmax(row)[target], accumulated in f64.
fn log_softmax_at(row: &[f32], target: usize) -> f32 {
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

/// Depth of each node of a flat tree (0 for roots); parents must come before children.
fn tree_depths(parents: &[Option<usize>]) -> Result<Vec<usize>, Gemma3Error> {
    let mut depths = Vec::with_capacity(parents.len());
    for (node, parent) in parents.iter().enumerate() {
        match parent {
            None => depths.push(0),
            Some(parent) if *parent < node => depths.push(depths[*parent] + 1),
            Some(parent) => {
                return Err(Gemma3Error::Compute(candle_core::Error::Msg(format!(
                    "token tree node {node} has parent {parent}, which does not come before it"
                ))));
            }
        }
    }
    Ok(depths)
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

/// Which cached keys the new queries may see: query at absolute position `q` sees key `k`
/// when `k <= q` and, in sliding layers, `q - k < window`.
#[derive(Debug)]
struct AttentionMask {
    /// First key position any new query can see; earlier keys are skipped altogether.
    first_key: usize,
    /// `[new_positions, visible_keys]` of 0 / -inf, or `None` when everything is visible.
    additive: Option<Tensor>,
}

impl AttentionMask {
    fn new(start: usize, count: usize, window: Option<usize>, device: &Device) -> candle_core::Result<Self> {
        let first_key = window.map_or(0, |window| (start + 1).saturating_sub(window));
        let key_end = start + count;
        let visible = |query: usize, key: usize| key <= query && window.is_none_or(|window| query - key < window);
        let mut values = Vec::with_capacity(count * (key_end - first_key));
        let mut everything_visible = true;
        for query in start..key_end {
            for key in first_key..key_end {
                let seen = visible(query, key);
                everything_visible &= seen;
                values.push(if seen { 0.0f32 } else { f32::NEG_INFINITY });
            }
        }
        let additive = if everything_visible {
            None
        } else {
            Some(Tensor::from_vec(values, (count, key_end - first_key), device)?)
        };
        Ok(Self { first_key, additive })
    }
}

impl AttentionMask {
    /// The mask of a flat token tree after `start` cached positions: a node at position
    /// `start + depth` sees the cached keys (within the window) and its ancestors and itself.
    fn for_tree(
        start: usize,
        parents: &[Option<usize>],
        depths: &[usize],
        window: Option<usize>,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let count = parents.len();
        let first_key = window.map_or(0, |window| (start + 1).saturating_sub(window));
        let in_window = |query: usize, key: usize| window.is_none_or(|window| query - key < window);
        let key_count = start - first_key + count;
        let mut values = Vec::with_capacity(count * key_count);
        for node in 0..count {
            let query = start + depths[node];
            for key in first_key..start {
                values.push(if in_window(query, key) { 0.0f32 } else { f32::NEG_INFINITY });
            }
            let row_start = values.len();
            values.extend(std::iter::repeat_n(f32::NEG_INFINITY, count));
            let mut ancestor = Some(node);
            while let Some(visible) = ancestor {
                if in_window(query, start + depths[visible]) {
                    values[row_start + visible] = 0.0;
                }
                ancestor = parents[visible];
            }
        }
        Ok(Self { first_key, additive: Some(Tensor::from_vec(values, (count, key_count), device)?) })
    }
}

struct WeightLoader<'a> {
    file: &'a mut GgufFile,
    device: &'a Device,
}

impl WeightLoader<'_> {
    /// Reads `name`, checks its shape and dequantizes it to f32.
    fn load(&mut self, name: &str, expected: &[usize]) -> Result<Tensor, Gemma3Error> {
        let quantized = self.file.tensor(name, self.device)?;
        let found = quantized.shape().dims();
        if found != expected {
            return Err(Gemma3Error::TensorShape {
                path: self.file.path().to_path_buf(),
                name: name.to_string(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            });
        }
        let dequantize = || quantized.dequantize(self.device)?.to_dtype(DType::F32);
        dequantize().map_err(|source| Gemma3Error::Dequantize {
            path: self.file.path().to_path_buf(),
            name: name.to_string(),
            source: Box::new(source),
        })
    }
}

#[cfg(test)]
mod tests;
