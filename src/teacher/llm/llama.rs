//! The llama-family [`Decoder`], for GGUF files of architecture `llama` (Llama 2/3, TinyLlama,
//! SmolLM) and `qwen2` (Qwen2, Qwen2.5): what most small chat models ship as.
//!
//! Architecture (llama.cpp's llama and qwen2 graphs): token embeddings; per layer RMSNorm →
//! attention (q/k/v projections, Qwen2 with biases; rope; GQA; scale head_dim^-0.5) → residual,
//! RMSNorm → SwiGLU MLP (SiLU(gate) · up → down) → residual; final RMSNorm; output head
//! `output.weight`, or the embeddings when the file has none (tied). Rope pairs adjacent
//! dimensions for llama (llama.cpp's converter permutes q/k rows into that order) and halves
//! for Qwen2; Llama 3's `rope_freqs.weight` divides the frequencies.

use candle_core::{DType, Device, Tensor};

use super::gguf::{GgufError, GgufFile};
use super::kv_cache::KvCache;
use super::layers::{AttentionShape, AttentionWeights, Layout, Pass, RopeStyle, attention};
use super::lora::LoraTarget;
use super::model::{Decoder, ModelError, ModelSpec, WeightLoader};
use super::rope::RopeTable;

/// Rope base when the file gives none (llama's).
pub const DEFAULT_ROPE_BASE: f64 = 10_000.0;

/// Which member of the family a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlamaVariant {
    Llama,
    Qwen2,
}

impl LlamaVariant {
    pub fn architecture(self) -> &'static str {
        match self {
            LlamaVariant::Llama => "llama",
            LlamaVariant::Qwen2 => "qwen2",
        }
    }
}

/// The hyper-parameters, read from `<architecture>.*` metadata and the tensor shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub variant: LlamaVariant,
    pub vocabulary_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub layer_count: usize,
    pub head_count: usize,
    pub kv_head_count: usize,
    pub head_dim: usize,
    pub rms_norm_epsilon: f64,
    pub rope_base: f64,
    /// Linear rope scaling (1.0: none).
    pub rope_linear_scaling: f64,
    pub context_length: usize,
}

impl LlamaConfig {
    /// Reads the hyper-parameters of `file`, which must be a llama or qwen2 GGUF.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let path = file.path().to_path_buf();
        let architecture = file.architecture()?;
        let variant = match architecture {
            "llama" => LlamaVariant::Llama,
            "qwen2" => LlamaVariant::Qwen2,
            other => return Err(ModelError::WrongArchitecture { path, architecture: other.to_string() }),
        };
        let key = |name: &str| format!("{architecture}.{name}");
        let count = |name: &str| file.u32(&key(name)).map(|value| value as usize);
        let problem = |text: String| ModelError::InvalidConfig {
            path: path.clone(),
            architecture: architecture.to_string(),
            problem: text,
        };
        let hidden_size = count("embedding_length")?;
        let head_count = count("attention.head_count")?;
        let kv_head_count = file.optional_u32(&key("attention.head_count_kv"))?.map_or(head_count, |n| n as usize);
        let head_dim = match file.optional_u32(&key("attention.key_length"))? {
            Some(length) => length as usize,
            None => hidden_size / head_count.max(1),
        };
        let value_dim = file.optional_u32(&key("attention.value_length"))?.map_or(head_dim, |n| n as usize);
        let rope_dim = file.optional_u32(&key("rope.dimension_count"))?.map_or(head_dim, |n| n as usize);
        let rope_linear_scaling = match file.optional_string(&key("rope.scaling.type"))? {
            None | Some("none") => 1.0,
            Some("linear") => file.optional_f32(&key("rope.scaling.factor"))?.map_or(1.0, f64::from),
            Some(other) => return Err(problem(format!("rope scaling {other:?} is not supported"))),
        };
        let vocabulary_size = match file.tensor_infos().get("token_embd.weight") {
            Some(info) => info.shape.dims().first().copied().unwrap_or(0),
            None => return Err(GgufError::MissingTensor { path, name: "token_embd.weight".into() }.into()),
        };
        let config = LlamaConfig {
            variant,
            vocabulary_size,
            hidden_size,
            intermediate_size: count("feed_forward_length")?,
            layer_count: count("block_count")?,
            head_count,
            kv_head_count,
            head_dim,
            rms_norm_epsilon: file.f32(&key("attention.layer_norm_rms_epsilon"))? as f64,
            rope_base: file.optional_f32(&key("rope.freq_base"))?.map_or(DEFAULT_ROPE_BASE, f64::from),
            rope_linear_scaling,
            context_length: count("context_length")?,
        };
        if value_dim != head_dim {
            return Err(problem(format!("value length {value_dim} differs from key length {head_dim}")));
        }
        if rope_dim != head_dim {
            return Err(problem(format!("rope over {rope_dim} of {head_dim} head dimensions is not supported")));
        }
        if [hidden_size, config.layer_count, head_count, kv_head_count, head_dim, config.intermediate_size].contains(&0)
            || vocabulary_size == 0
            || config.context_length == 0
        {
            return Err(problem("a size is zero".to_string()));
        }
        if head_count % kv_head_count != 0 {
            return Err(problem(format!("{head_count} query heads do not share {kv_head_count} kv heads evenly")));
        }
        if head_dim % 2 != 0 {
            return Err(problem(format!("rope needs an even head dimension, got {head_dim}")));
        }
        Ok(config)
    }
}

/// Weights of one layer; linear weights are `[out, in]` as GGUF stores them.
#[derive(Debug)]
struct DecoderLayer {
    attention_norm: Tensor,
    attention: AttentionWeights,
    feed_forward_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// A loaded llama or Qwen2 decoder.
#[derive(Debug)]
pub struct LlamaDecoder {
    config: LlamaConfig,
    spec: ModelSpec,
    shape: AttentionShape,
    token_embedding: Tensor,
    /// `None`: tied to the embeddings.
    output: Option<Tensor>,
    layers: Vec<DecoderLayer>,
    output_norm: Tensor,
    rope: RopeTable,
    device: Device,
}

impl LlamaDecoder {
    /// Reads the hyper-parameters and every tensor of `file`, dequantizing the norms, biases,
    /// embeddings and output head to f32 and the layers' projections to `weights`.
    pub fn load(file: &mut GgufFile, weights: DType, device: &Device) -> Result<Self, ModelError> {
        let config = LlamaConfig::from_gguf(file)?;
        let mut loader = WeightLoader::new(file, device);
        let (hidden, heads, kv_heads, head_dim) =
            (config.hidden_size, config.head_count, config.kv_head_count, config.head_dim);
        let token_embedding = loader.load("token_embd.weight", &[config.vocabulary_size, hidden])?;
        let output = if loader.has("output.weight") {
            Some(loader.load("output.weight", &[config.vocabulary_size, hidden])?)
        } else {
            None
        };
        let output_norm = loader.load("output_norm.weight", &[hidden])?;
        let frequency_factors = if loader.has("rope_freqs.weight") {
            Some(loader.load("rope_freqs.weight", &[head_dim / 2])?.to_vec1::<f32>()?)
        } else {
            None
        };
        let mut layers = Vec::with_capacity(config.layer_count);
        for layer in 0..config.layer_count {
            let name = |part: &str, kind: &str| format!("blk.{layer}.{part}.{kind}");
            let mut weight =
                |part: &str, shape: &[usize], dtype: DType| loader.load_as(&name(part, "weight"), shape, dtype);
            let (norm, projection) = (DType::F32, weights);
            let attention_norm = weight("attn_norm", &[hidden], norm)?;
            let query = weight("attn_q", &[heads * head_dim, hidden], projection)?;
            let key = weight("attn_k", &[kv_heads * head_dim, hidden], projection)?;
            let value = weight("attn_v", &[kv_heads * head_dim, hidden], projection)?;
            let attention_output = weight("attn_output", &[hidden, heads * head_dim], projection)?;
            let feed_forward_norm = weight("ffn_norm", &[hidden], norm)?;
            let gate = weight("ffn_gate", &[config.intermediate_size, hidden], projection)?;
            let up = weight("ffn_up", &[config.intermediate_size, hidden], projection)?;
            let down = weight("ffn_down", &[hidden, config.intermediate_size], projection)?;
            // Qwen2 always has q/k/v biases; a llama file may (some fine-tunes add them).
            let biases = if config.variant == LlamaVariant::Qwen2 || loader.has(&name("attn_q", "bias")) {
                Some([
                    loader.load(&name("attn_q", "bias"), &[heads * head_dim])?,
                    loader.load(&name("attn_k", "bias"), &[kv_heads * head_dim])?,
                    loader.load(&name("attn_v", "bias"), &[kv_heads * head_dim])?,
                ])
            } else {
                None
            };
            layers.push(DecoderLayer {
                attention_norm,
                attention: AttentionWeights {
                    query,
                    key,
                    value,
                    output: attention_output,
                    biases,
                    query_key_norms: None,
                },
                feed_forward_norm,
                gate,
                up,
                down,
            });
        }
        let mut rope =
            RopeTable::new(config.rope_base, config.rope_linear_scaling, head_dim, config.context_length, device);
        if let Some(factors) = frequency_factors {
            rope = rope.with_frequency_factors(factors.into_iter().map(f64::from).collect());
        }
        let spec = ModelSpec {
            architecture: config.variant.architecture().into(),
            vocabulary_size: config.vocabulary_size,
            hidden_size: hidden,
            intermediate_size: config.intermediate_size,
            layer_count: config.layer_count,
            head_count: heads,
            kv_head_count: kv_heads,
            head_dim,
            context_length: config.context_length,
            sliding_window: None,
            final_logit_softcapping: None,
        };
        let shape = AttentionShape {
            heads,
            kv_heads,
            head_dim,
            scale: (head_dim as f64).powf(-0.5),
            rope: match config.variant {
                LlamaVariant::Llama => RopeStyle::Pairs,
                LlamaVariant::Qwen2 => RopeStyle::Halves,
            },
            rms_norm_epsilon: config.rms_norm_epsilon,
        };
        Ok(Self { config, spec, shape, token_embedding, output, layers, output_norm, rope, device: device.clone() })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }
}

impl Decoder for LlamaDecoder {
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
        let epsilon = self.config.rms_norm_epsilon;
        let mut hidden = self.token_embedding.index_select(tokens, 0)?;
        let (cos, sin) = layout.rope(&self.rope)?;
        let mask = layout.mask(None, &self.device)?;
        for (index, layer) in self.layers.iter().enumerate() {
            let attention_input = pass.rms_norm(&hidden, &layer.attention_norm, epsilon)?;
            let attended =
                attention(pass, &layer.attention, &self.shape, index, &attention_input, &cos, &sin, &mask, cache)?;
            hidden = (hidden + attended)?;
            let feed_forward_input = pass.rms_norm(&hidden, &layer.feed_forward_norm, epsilon)?;
            let gate = pass.project(&feed_forward_input, &layer.gate, index, LoraTarget::Gate)?;
            let up = pass.project(&feed_forward_input, &layer.up, index, LoraTarget::Up)?;
            let fed_forward = pass.project(&(gate.silu()? * up)?, &layer.down, index, LoraTarget::Down)?;
            hidden = (hidden + fed_forward)?;
        }
        pass.rms_norm(&hidden, &self.output_norm, epsilon)
    }

    fn output_rows(&self) -> &Tensor {
        self.output.as_ref().unwrap_or(&self.token_embedding)
    }
}

#[cfg(test)]
pub(crate) mod tests;
