//! The attention key/value cache of one token sequence, with cheap snapshots: run a fixed
//! prompt prefix once, snapshot it, then restore the snapshot and append only each suffix.

use candle_core::{D, Tensor};

/// Keys and values per layer (`[kv_heads, positions, head_dim]`), the number of positions
/// processed, and the last position's final hidden state (which predicts the next token).
///
/// Cloning shares the tensors (candle tensors are reference-counted and never mutated in
/// place; appending builds new ones), so a clone is a snapshot costing a few pointers.
#[derive(Clone, Debug)]
pub struct KvCache {
    layers: Vec<Option<LayerKeysValues>>,
    positions: usize,
    last_hidden: Option<Tensor>,
}

#[derive(Clone, Debug)]
struct LayerKeysValues {
    keys: Tensor,
    values: Tensor,
}

impl KvCache {
    /// An empty cache for a model with `layer_count` layers.
    pub fn new(layer_count: usize) -> Self {
        Self { layers: vec![None; layer_count], positions: 0, last_hidden: None }
    }

    /// Tokens processed so far (the position the next token will take).
    pub fn len(&self) -> usize {
        self.positions
    }

    pub fn is_empty(&self) -> bool {
        self.positions == 0
    }

    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// A copy to return to later with [`KvCache::restore`].
    pub fn snapshot(&self) -> KvCache {
        self.clone()
    }

    /// Goes back to `snapshot`'s state (e.g. the cached prompt prefix).
    pub fn restore(&mut self, snapshot: &KvCache) {
        self.clone_from(snapshot);
    }

    /// The cache of the first `positions` tokens only (a shared prefix of two sequences).
    /// Shortening forgets the last hidden state, so the result must get at least one more
    /// token before it can predict anything.
    pub fn truncated(&self, positions: usize) -> candle_core::Result<KvCache> {
        if positions >= self.positions {
            return Ok(self.clone());
        }
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                layer
                    .as_ref()
                    .map(|layer| {
                        Ok(LayerKeysValues {
                            keys: layer.keys.narrow(D::Minus2, 0, positions)?,
                            values: layer.values.narrow(D::Minus2, 0, positions)?,
                        })
                    })
                    .transpose()
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(KvCache { layers, positions, last_hidden: None })
    }

    /// The final-norm hidden state `[hidden]` of the last token processed, if any.
    pub fn last_hidden(&self) -> Option<&Tensor> {
        self.last_hidden.as_ref()
    }

    /// Appends `keys`/`values` (`[kv_heads, new_positions, head_dim]`) to `layer` and returns
    /// all keys and values of that layer so far.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        keys: &Tensor,
        values: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let Some(slot) = self.layers.get_mut(layer) else {
            candle_core::bail!("layer {layer} is outside a {}-layer cache", self.layers.len())
        };
        let joined = match slot.take() {
            None => LayerKeysValues { keys: keys.clone(), values: values.clone() },
            Some(previous) => LayerKeysValues {
                keys: Tensor::cat(&[&previous.keys, keys], D::Minus2)?,
                values: Tensor::cat(&[&previous.values, values], D::Minus2)?,
            },
        };
        let result = (joined.keys.clone(), joined.values.clone());
        *slot = Some(joined);
        Ok(result)
    }

    /// Records that `new_positions` tokens went through every layer, ending with `last_hidden`.
    /// This cache with `hidden` as the state of its last position (after `truncated`).
    pub(crate) fn with_last_hidden(mut self, hidden: Tensor) -> KvCache {
        self.last_hidden = Some(hidden);
        self
    }

    pub(crate) fn advance(&mut self, new_positions: usize, last_hidden: Tensor) {
        self.positions += new_positions;
        self.last_hidden = Some(last_hidden);
    }
}
