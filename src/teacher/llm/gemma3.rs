//! duet's own Gemma 3 decoder: the [`Decoder`] a gemma3 GGUF file loads as, its weights
//! dequantized to f32 (or f16), with sliding-window layers and two rope bases.
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

use candle_core::{DType, Device, Tensor};

use super::geglu::gelu_tanh_times;
use super::gguf::{GgufError, GgufFile};
use super::kv_cache::KvCache;
use super::layers::{AttentionMask, AttentionShape, AttentionWeights, Layout, Pass, RopeStyle, attention};
use super::lora::LoraTarget;
use super::model::{Decoder, ModelError, ModelSpec, WeightLoader};
use super::rope::RopeTable;

/// Rope base of the sliding-window layers: fixed by Gemma 3, not stored in GGUF files.
pub const LOCAL_ROPE_BASE: f64 = 10_000.0;

/// Every this-many-th layer is global when the file does not say otherwise (Gemma 3: 5 local
/// layers, then 1 global).
pub const DEFAULT_SLIDING_WINDOW_PATTERN: usize = 6;

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
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let path = file.path().to_path_buf();
        let architecture = file.architecture()?;
        if architecture != "gemma3" {
            return Err(ModelError::WrongArchitecture { path, architecture: architecture.to_string() });
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
            Some("linear") => file.optional_f32("gemma3.rope.scaling.factor")?.map_or(1.0, f64::from),
            Some(other) => {
                return Err(ModelError::InvalidConfig {
                    path,
                    architecture: "gemma3".into(),
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
            global_rope_base: file.optional_f32("gemma3.rope.freq_base")?.map_or(1_000_000.0, f64::from),
            local_rope_base: LOCAL_ROPE_BASE,
            global_rope_linear_scaling,
            sliding_window,
            sliding_window_pattern,
            context_length: count("gemma3.context_length")?,
            attention_scale: query_pre_attention_scalar.powf(-0.5),
            final_logit_softcapping: file
                .optional_f32("gemma3.final_logit_softcapping")?
                .map(f64::from)
                .filter(|cap| *cap > 0.0),
        };
        let problem = |text: String| {
            Err(ModelError::InvalidConfig { path: path.clone(), architecture: "gemma3".into(), problem: text })
        };
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

/// Weights of one decoder layer; linear weights are `[out, in]` as GGUF stores them.
#[derive(Debug)]
struct DecoderLayer {
    attention_norm: Tensor,
    attention: AttentionWeights,
    post_attention_norm: Tensor,
    feed_forward_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
    post_feed_forward_norm: Tensor,
    is_sliding: bool,
}

/// A loaded Gemma 3 decoder.
#[derive(Debug)]
pub struct Gemma3Decoder {
    config: Gemma3Config,
    spec: ModelSpec,
    shape: AttentionShape,
    token_embedding: Tensor,
    layers: Vec<DecoderLayer>,
    output_norm: Tensor,
    global_rope: RopeTable,
    local_rope: RopeTable,
    device: Device,
}

impl Gemma3Decoder {
    /// Reads the hyper-parameters and every tensor of `file`, dequantizing the norms and the
    /// embeddings to f32 and the layers' projections to `weights` (f32 or f16).
    pub fn load(file: &mut GgufFile, weights: DType, device: &Device) -> Result<Self, ModelError> {
        let config = Gemma3Config::from_gguf(file)?;
        let mut loader = WeightLoader::new(file, device);
        let (hidden, heads, kv_heads, head_dim) =
            (config.hidden_size, config.head_count, config.kv_head_count, config.head_dim);
        let token_embedding = loader.load("token_embd.weight", &[config.vocabulary_size, hidden])?;
        let output_norm = loader.load("output_norm.weight", &[hidden])?;
        let mut layers = Vec::with_capacity(config.layer_count);
        for layer in 0..config.layer_count {
            let mut weight = |name: &str, shape: &[usize], dtype: DType| {
                loader.load_as(&format!("blk.{layer}.{name}.weight"), shape, dtype)
            };
            let (norm, projection) = (DType::F32, weights);
            layers.push(DecoderLayer {
                attention_norm: weight("attn_norm", &[hidden], norm)?,
                attention: AttentionWeights {
                    query: weight("attn_q", &[heads * head_dim, hidden], projection)?,
                    key: weight("attn_k", &[kv_heads * head_dim, hidden], projection)?,
                    value: weight("attn_v", &[kv_heads * head_dim, hidden], projection)?,
                    output: weight("attn_output", &[hidden, heads * head_dim], projection)?,
                    biases: None,
                    query_key_norms: Some([
                        weight("attn_q_norm", &[head_dim], norm)?,
                        weight("attn_k_norm", &[head_dim], norm)?,
                    ]),
                },
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
            device,
        );
        let local_rope = RopeTable::new(config.local_rope_base, 1.0, head_dim, config.context_length, device);
        let spec = ModelSpec {
            architecture: "gemma3".into(),
            vocabulary_size: config.vocabulary_size,
            hidden_size: hidden,
            intermediate_size: config.intermediate_size,
            layer_count: config.layer_count,
            head_count: heads,
            kv_head_count: kv_heads,
            head_dim,
            context_length: config.context_length,
            sliding_window: config.sliding_window,
            final_logit_softcapping: config.final_logit_softcapping,
        };
        let shape = AttentionShape {
            heads,
            kv_heads,
            head_dim,
            scale: config.attention_scale,
            rope: RopeStyle::Halves,
            rms_norm_epsilon: config.rms_norm_epsilon,
        };
        Ok(Self {
            config,
            spec,
            shape,
            token_embedding,
            layers,
            output_norm,
            global_rope,
            local_rope,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Gemma3Config {
        &self.config
    }

    #[allow(clippy::too_many_arguments)]
    fn decoder_layer(
        &self,
        pass: &Pass,
        layer: &DecoderLayer,
        index: usize,
        hidden: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttentionMask,
        cache: &mut KvCache,
    ) -> candle_core::Result<Tensor> {
        let epsilon = self.config.rms_norm_epsilon;
        let attention_input = pass.rms_norm(hidden, &layer.attention_norm, epsilon)?;
        let attended = attention(pass, &layer.attention, &self.shape, index, &attention_input, cos, sin, mask, cache)?;
        let hidden = (hidden + pass.rms_norm(&attended, &layer.post_attention_norm, epsilon)?)?;
        let feed_forward_input = pass.rms_norm(&hidden, &layer.feed_forward_norm, epsilon)?;
        let gate = pass.project(&feed_forward_input, &layer.gate, index, LoraTarget::Gate)?;
        let up = pass.project(&feed_forward_input, &layer.up, index, LoraTarget::Up)?;
        // candle's `gelu` is the tanh approximation, with a backward pass; the fused kernel has none.
        let activated = if pass.differentiable { (gate.gelu()? * up)? } else { gelu_tanh_times(&gate, &up)? };
        let fed_forward = pass.project(&activated, &layer.down, index, LoraTarget::Down)?;
        hidden + pass.rms_norm(&fed_forward, &layer.post_feed_forward_norm, epsilon)?
    }
}

impl Decoder for Gemma3Decoder {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn hidden_states(
        &self,
        tokens: &Tensor,
        layout: &Layout,
        cache: &mut KvCache,
        pass: &Pass,
    ) -> candle_core::Result<Tensor> {
        let mut hidden = (self.token_embedding.index_select(tokens, 0)? * (self.config.hidden_size as f64).sqrt())?;
        let (global_cos, global_sin) = layout.rope(&self.global_rope)?;
        let (local_cos, local_sin) = layout.rope(&self.local_rope)?;
        let global_mask = layout.mask(None, &self.device)?;
        let local_mask = layout.mask(self.config.sliding_window, &self.device)?;
        for (index, layer) in self.layers.iter().enumerate() {
            let (cos, sin, mask) = if layer.is_sliding {
                (&local_cos, &local_sin, &local_mask)
            } else {
                (&global_cos, &global_sin, &global_mask)
            };
            hidden = self.decoder_layer(pass, layer, index, &hidden, cos, sin, mask, cache)?;
        }
        pass.rms_norm(&hidden, &self.output_norm, self.config.rms_norm_epsilon)
    }

    fn output_rows(&self) -> &Tensor {
        // Gemma ties its output head to the embeddings.
        &self.token_embedding
    }
}

#[cfg(test)]
mod tests;
