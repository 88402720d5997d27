//! Rotary position tables (cos and sin per position and frequency) for one rope base, shared
//! by every layer that uses that base and grown on demand to the positions actually reached.

use std::sync::Mutex;

use candle_core::{Device, Tensor};

/// Fewest positions a table is built for: growing in small steps would rebuild it too often.
const MINIMUM_TABLE_POSITIONS: usize = 256;

/// cos/sin of `position / linear_scaling_factor * base^(-2i / head_dim)` for i < head_dim / 2,
/// laid out `[positions, head_dim / 2]` as `candle_nn::rotary_emb::rope` expects (the
/// half-split "NEOX" rotation Gemma uses, not the interleaved one).
#[derive(Debug)]
pub struct RopeTable {
    base: f64,
    linear_scaling_factor: f64,
    head_dim: usize,
    /// Per frequency, a divisor of it (Llama 3's `rope_freqs.weight`); empty: none.
    frequency_factors: Vec<f64>,
    /// Positions beyond this are an error: the model was not trained for them.
    maximum_positions: usize,
    device: Device,
    tables: Mutex<Option<CosSin>>,
}

#[derive(Clone, Debug)]
struct CosSin {
    positions: usize,
    cos: Tensor,
    sin: Tensor,
}

impl RopeTable {
    /// An empty table; nothing is computed until [`RopeTable::cos_sin`] asks for positions.
    pub fn new(
        base: f64,
        linear_scaling_factor: f64,
        head_dim: usize,
        maximum_positions: usize,
        device: &Device,
    ) -> Self {
        Self {
            base,
            linear_scaling_factor,
            head_dim,
            frequency_factors: Vec::new(),
            maximum_positions,
            device: device.clone(),
            tables: Mutex::new(None),
        }
    }

    /// The same table with each frequency divided by its factor (`head_dim / 2` of them).
    pub fn with_frequency_factors(mut self, factors: Vec<f64>) -> Self {
        self.frequency_factors = factors;
        *self.lock() = None;
        self
    }

    pub fn base(&self) -> f64 {
        self.base
    }

    /// Positions the table currently holds (0 before first use).
    pub fn built_positions(&self) -> usize {
        self.lock().as_ref().map_or(0, |tables| tables.positions)
    }

    /// cos and sin for positions `start..start + count`, each `[count, head_dim / 2]`; the
    /// table doubles (up to the model's context length) when it is too short.
    pub fn cos_sin(&self, start: usize, count: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let needed = start + count;
        if needed > self.maximum_positions {
            candle_core::bail!("rope positions up to {needed} exceed the context length {}", self.maximum_positions);
        }
        let mut guard = self.lock();
        let current = guard.as_ref().map_or(0, |tables| tables.positions);
        if needed > current {
            let grown = needed.max(current * 2).max(MINIMUM_TABLE_POSITIONS).min(self.maximum_positions);
            *guard = Some(self.build(grown)?);
        }
        let Some(tables) = guard.as_ref() else { candle_core::bail!("rope table missing after it was built") };
        Ok((tables.cos.narrow(0, start, count)?, tables.sin.narrow(0, start, count)?))
    }

    /// cos and sin for arbitrary `positions` (a token tree's), each `[positions.len(), head_dim / 2]`.
    pub fn cos_sin_at(&self, positions: &[usize]) -> candle_core::Result<(Tensor, Tensor)> {
        let highest = positions.iter().copied().max().unwrap_or(0);
        // Grows the table to cover every position (and checks the context length).
        self.cos_sin(0, highest + 1)?;
        let guard = self.lock();
        let Some(tables) = guard.as_ref() else { candle_core::bail!("rope table missing after it was built") };
        let indices: Vec<u32> = positions.iter().map(|&position| position as u32).collect();
        let indices = Tensor::new(indices.as_slice(), &self.device)?;
        Ok((tables.cos.index_select(&indices, 0)?, tables.sin.index_select(&indices, 0)?))
    }

    fn build(&self, positions: usize) -> candle_core::Result<CosSin> {
        let half = self.head_dim / 2;
        // f64 angles: at position 30k the f32 rounding of position * frequency shows.
        let inverse_frequencies: Vec<f64> = (0..half)
            .map(|index| {
                let factor = self.frequency_factors.get(index).copied().unwrap_or(1.0);
                self.base.powf(-((2 * index) as f64) / self.head_dim as f64) / factor
            })
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for position in 0..positions {
            let scaled_position = position as f64 / self.linear_scaling_factor;
            for frequency in &inverse_frequencies {
                let angle = scaled_position * frequency;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        Ok(CosSin {
            positions,
            cos: Tensor::from_vec(cos, (positions, half), &self.device)?,
            sin: Tensor::from_vec(sin, (positions, half), &self.device)?,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CosSin>> {
        // A panic while building leaves at worst a stale table, which is still correct.
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_demand_and_stays_within_the_context() {
        let table = RopeTable::new(10_000.0, 1.0, 8, 1000, &Device::Cpu);
        assert_eq!(table.built_positions(), 0);
        let (cos, sin) = table.cos_sin(3, 2).expect("positions 3 and 4");
        assert_eq!(cos.dims(), [2, 4]);
        assert_eq!(table.built_positions(), MINIMUM_TABLE_POSITIONS);
        table.cos_sin(300, 10).expect("grown");
        assert_eq!(table.built_positions(), 512);
        table.cos_sin(990, 10).expect("up to the context length");
        assert_eq!(table.built_positions(), 1000);
        assert!(table.cos_sin(995, 10).is_err());

        // Position 4, frequency index 1 of head_dim 8: angle 4 * 10000^(-1/4) = 0.4.
        let sin: Vec<Vec<f32>> = sin.to_vec2().expect("values");
        assert!((sin[1][1] - 0.4f32.sin()).abs() < 1e-6);
    }
}
