//! Building blocks every decoder architecture shares: linear layers on GGUF `[out, in]`
//! weights, RMSNorm, rotary embeddings in both layouts, masks and grouped-query attention.
//!
//! A forward pass appends tokens after a [`KvCache`] either as a sequence or as a token tree
//! laid out flat (a [`Layout`]); the mask and the rope positions come from the layout, so
//! every architecture gets multi-token appends, sliding windows and tree scoring alike.

use candle_core::{D, Device, Tensor};

use super::kv_cache::KvCache;
use super::lora::{LoraAdapters, LoraTarget};
use super::rope::RopeTable;

/// How a forward pass computes: with the fast inference kernels (fused RMSNorm, softmax and
/// rope, which record no backward pass) or composed of ops candle can differentiate (for
/// tuning), and with which LoRA adapters, if any, beside the frozen projections.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pass<'a> {
    pub differentiable: bool,
    pub adapters: Option<&'a LoraAdapters>,
}

impl Pass<'_> {
    /// The projection `target` of layer `layer`: `input · weightᵀ`, plus the adapter's update.
    pub fn project(
        &self,
        input: &Tensor,
        weight: &Tensor,
        layer: usize,
        target: LoraTarget,
    ) -> candle_core::Result<Tensor> {
        let base = if self.differentiable { frozen_linear(input, weight)? } else { linear(input, weight)? };
        match self.adapters.and_then(|adapters| adapters.delta(layer, target, input)) {
            Some(delta) => base + delta?,
            None => Ok(base),
        }
    }

    pub fn rms_norm(&self, input: &Tensor, weight: &Tensor, epsilon: f64) -> candle_core::Result<Tensor> {
        if self.differentiable {
            candle_nn::ops::rms_norm_slow(input, weight, epsilon as f32)
        } else {
            rms_norm(input, weight, epsilon)
        }
    }

    fn softmax_last_dim(&self, scores: &Tensor) -> candle_core::Result<Tensor> {
        if self.differentiable {
            candle_nn::ops::softmax(scores, D::Minus1)
        } else {
            candle_nn::ops::softmax_last_dim(scores)
        }
    }

    fn rope(&self, style: RopeStyle, heads: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        if !self.differentiable {
            return style.apply(heads, cos, sin);
        }
        let batched = heads.unsqueeze(0)?;
        let rotated = match style {
            RopeStyle::Halves => candle_nn::rotary_emb::rope_slow(&batched, cos, sin)?,
            RopeStyle::Pairs => candle_nn::rotary_emb::rope_i_slow(&batched, cos, sin)?,
        };
        rotated.squeeze(0)
    }
}

/// How rotary embeddings pair a head's dimensions (llama.cpp's rope types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimension i pairs with i + head_dim / 2 ("NEOX": Gemma, Qwen2).
    Halves,
    /// Dimension 2i pairs with 2i + 1 ("NORM": llama, whose q/k rows llama.cpp's converter
    /// permutes into this order).
    Pairs,
}

impl RopeStyle {
    /// Rotates `heads` `[heads, positions, head_dim]` by the angles of `cos`/`sin` `[positions, head_dim / 2]`.
    pub fn apply(self, heads: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        let batched = heads.unsqueeze(0)?;
        let rotated = match self {
            RopeStyle::Halves => candle_nn::rotary_emb::rope(&batched, cos, sin)?,
            RopeStyle::Pairs => candle_nn::rotary_emb::rope_i(&batched, cos, sin)?,
        };
        rotated.squeeze(0)
    }
}

/// Where a forward pass's new tokens sit: after `start` cached positions, as a sequence
/// (`parents: None`) or as a flat token tree (each token's parent before it, `None` for the
/// tokens that follow the cache directly), a tree token sitting at `start` plus its depth and
/// attending to the cache and its own ancestors only.
#[derive(Clone, Debug)]
pub struct Layout<'a> {
    pub start: usize,
    pub parents: Option<&'a [Option<usize>]>,
    /// Per new token, its depth (its index, for a sequence).
    pub depths: Vec<usize>,
}

impl<'a> Layout<'a> {
    /// The layout of `count` tokens after `start` cached ones; `parents` makes them a tree
    /// (each parent must come before its child).
    pub fn new(start: usize, count: usize, parents: Option<&'a [Option<usize>]>) -> candle_core::Result<Self> {
        let depths = match parents {
            None => (0..count).collect(),
            Some(parents) => {
                let mut depths = Vec::with_capacity(parents.len());
                for (node, parent) in parents.iter().enumerate() {
                    match parent {
                        None => depths.push(0),
                        Some(parent) if *parent < node => depths.push(depths[*parent] + 1),
                        Some(parent) => candle_core::bail!(
                            "token tree node {node} has parent {parent}, which does not come before it"
                        ),
                    }
                }
                depths
            }
        };
        Ok(Self { start, parents, depths })
    }

    pub fn count(&self) -> usize {
        self.depths.len()
    }

    /// The absolute position after the deepest new token: what the context must hold.
    pub fn end(&self) -> usize {
        self.start + self.depths.iter().copied().max().map_or(0, |deepest| deepest + 1)
    }

    /// cos and sin of `table` at the new tokens' positions.
    pub fn rope(&self, table: &RopeTable) -> candle_core::Result<(Tensor, Tensor)> {
        match self.parents {
            None => table.cos_sin(self.start, self.count()),
            Some(_) => {
                let positions: Vec<usize> = self.depths.iter().map(|depth| self.start + depth).collect();
                table.cos_sin_at(&positions)
            }
        }
    }

    /// The mask for attention limited to the last `window` positions (`None`: unlimited).
    pub fn mask(&self, window: Option<usize>, device: &Device) -> candle_core::Result<AttentionMask> {
        match self.parents {
            None => AttentionMask::new(self.start, self.count(), window, device),
            Some(parents) => AttentionMask::for_tree(self.start, parents, &self.depths, window, device),
        }
    }
}

/// Which cached keys the new queries may see: query at absolute position `q` sees key `k`
/// when `k <= q` and, in sliding layers, `q - k < window`.
#[derive(Debug)]
pub struct AttentionMask {
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

/// The attention projections of one layer; optional parts are what architectures differ in.
#[derive(Debug)]
pub struct AttentionWeights {
    pub query: Tensor,
    pub key: Tensor,
    pub value: Tensor,
    pub output: Tensor,
    /// Qwen2's q/k/v biases.
    pub biases: Option<[Tensor; 3]>,
    /// Gemma 3's per-head RMSNorm of queries and keys (before rope).
    pub query_key_norms: Option<[Tensor; 2]>,
}

/// The shape of attention, the same for every layer of a model.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Multiplies queries before q·k.
    pub scale: f64,
    pub rope: RopeStyle,
    pub rms_norm_epsilon: f64,
}

/// Grouped-query self-attention of `input` `[count, hidden]` at layer `layer` of `cache`
/// (appending the new keys and values), under `mask`, rotated by `cos`/`sin`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    pass: &Pass,
    weights: &AttentionWeights,
    shape: &AttentionShape,
    layer: usize,
    input: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    mask: &AttentionMask,
    cache: &mut KvCache,
) -> candle_core::Result<Tensor> {
    let AttentionShape { heads, kv_heads, head_dim, .. } = *shape;
    let count = input.dim(0)?;
    let biases = weights.biases.as_ref();
    let norms = weights.query_key_norms.as_ref();
    // [count, heads * head_dim] (+ bias) -> per-head RMSNorm -> [heads, count, head_dim].
    let project = |target: LoraTarget, weight: &Tensor, bias: Option<&Tensor>, norm: Option<&Tensor>, heads| {
        let projected = pass.project(input, weight, layer, target)?;
        let projected = match bias {
            Some(bias) => projected.broadcast_add(bias)?,
            None => projected,
        };
        let projected = projected.reshape((count, heads, head_dim))?;
        let projected = match norm {
            Some(norm) => pass.rms_norm(&projected, norm, shape.rms_norm_epsilon)?,
            None => projected,
        };
        projected.transpose(0, 1)?.contiguous()
    };
    let queries = project(LoraTarget::Query, &weights.query, biases.map(|b| &b[0]), norms.map(|n| &n[0]), heads)?;
    let queries = (pass.rope(shape.rope, &queries, cos, sin)? * shape.scale)?;
    let keys = project(LoraTarget::Key, &weights.key, biases.map(|b| &b[1]), norms.map(|n| &n[1]), kv_heads)?;
    let keys = pass.rope(shape.rope, &keys, cos, sin)?;
    let values = project(LoraTarget::Value, &weights.value, biases.map(|b| &b[2]), None, kv_heads)?;
    let (all_keys, all_values) = cache.append(layer, &keys, &values)?;
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
    let group = heads / kv_heads;
    let grouped_queries = queries.reshape((kv_heads, group * count, head_dim))?;
    let scores = grouped_queries.matmul(&all_keys.t()?)?;
    let scores = match &mask.additive {
        Some(additive) => scores.reshape((heads, count, key_count))?.broadcast_add(additive)?,
        None => scores.reshape((heads, count, key_count))?,
    };
    let attention_weights = pass.softmax_last_dim(&scores)?.reshape((kv_heads, group * count, key_count))?;
    let attended = attention_weights.matmul(&all_values.contiguous()?)?;
    let merged = attended.reshape((heads, count, head_dim))?.transpose(0, 1)?.reshape((count, heads * head_dim))?;
    pass.project(&merged, &weights.output, layer, LoraTarget::Output)
}

/// `input [rows, in] · weightᵀ` for a GGUF `[out, in]` weight; an f16 weight takes the input
/// rounded to f16 and gives an f32 result.
pub fn linear(input: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    if weight.dtype() == input.dtype() {
        input.matmul(&weight.t()?)
    } else {
        input.to_dtype(weight.dtype())?.matmul(&weight.t()?)?.to_dtype(input.dtype())
    }
}

/// [`linear`] for a pass that records a backward graph, whose backward gives the input's
/// gradient only. candle's matmul backward also computes the gradient of a frozen weight
/// (never read, as costly as the input's) and leaves it in the gradient store: on Gemma 3
/// 270M that was about 400 MB and a third of the backward time per forward pass.
pub fn frozen_linear(input: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
    if input.dtype() != candle_core::DType::F32 || input.rank() != 2 {
        return linear(input, weight);
    }
    input.apply_op1(FrozenLinear { weight: weight.clone() })
}

/// `input · weightᵀ` with a constant weight, as a custom op (see [`frozen_linear`]).
struct FrozenLinear {
    weight: Tensor,
}

impl candle_core::CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let values = storage.as_slice::<f32>()?;
        let input = match layout.contiguous_offsets() {
            Some((start, end)) => Tensor::from_slice(&values[start..end], layout.shape(), &Device::Cpu)?,
            None => candle_core::bail!("frozen-linear needs a contiguous input"),
        };
        let output = linear(&input, &self.weight)?;
        let shape = output.shape().clone();
        Ok((candle_core::CpuStorage::F32(output.flatten_all()?.to_vec1()?), shape))
    }

    fn bwd(&self, _input: &Tensor, _output: &Tensor, output_grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // d(x·Wᵀ)/dx applied to the output's gradient: grad · W.
        let grad = if self.weight.dtype() == output_grad.dtype() {
            output_grad.matmul(&self.weight)?
        } else {
            output_grad.to_dtype(self.weight.dtype())?.matmul(&self.weight)?.to_dtype(output_grad.dtype())?
        };
        Ok(Some(grad))
    }
}

/// RMSNorm over the last dimension, times `weight`.
pub fn rms_norm(input: &Tensor, weight: &Tensor, epsilon: f64) -> candle_core::Result<Tensor> {
    candle_nn::ops::rms_norm(&input.contiguous()?, weight, epsilon as f32)
}
