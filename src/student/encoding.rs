//! Turns the env's raw u8 observations into the network's input: one-hot vectors per
//! (type, color, state[, direction]) index, channels-last (`[row][col][one-hot]`).

use crate::env::embodied;
use crate::env::grid::GridWorld;
use crate::env::vec_env::{ObservationKind, VecEnv};

/// Values each egocentric channel takes: object type (0..=10), color (0..=5), door state (0..=2).
pub const EGOCENTRIC_CARDINALITIES: [usize; 3] = [11, 6, 3];
/// The historical view adds the agent's direction (0..=3, 4 = no agent here).
pub const HISTORICAL_CARDINALITIES: [usize; 4] = [11, 6, 3, 5];

/// The shape of one observation: `rows x cols` cells of `cardinalities.len()` raw bytes,
/// cell-major (`[row][col][channel]`), as `VecEnv` writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservationLayout {
    pub rows: usize,
    pub cols: usize,
    pub cardinalities: Vec<usize>,
}

impl ObservationLayout {
    /// The layout `VecEnv` produces for `kind` on worlds like `world`.
    pub fn for_env(kind: ObservationKind, world: &GridWorld) -> ObservationLayout {
        match kind {
            ObservationKind::Egocentric => ObservationLayout {
                rows: world.agent_view_size,
                cols: world.agent_view_size,
                cardinalities: EGOCENTRIC_CARDINALITIES.to_vec(),
            },
            ObservationKind::Historical => ObservationLayout {
                rows: world.width(),
                cols: world.height(),
                cardinalities: HISTORICAL_CARDINALITIES.to_vec(),
            },
        }
    }

    /// The layout `env` produces: `for_env` on its grid worlds, or the embodied row of
    /// ray and task cells (`env::embodied::student`).
    pub fn for_batch(kind: ObservationKind, env: &VecEnv) -> ObservationLayout {
        match env.grid(0) {
            Some(world) => ObservationLayout::for_env(kind, world),
            None => ObservationLayout {
                rows: 1,
                cols: embodied::student::CELLS,
                cardinalities: embodied::student::CARDINALITIES.to_vec(),
            },
        }
    }

    /// Bytes of one raw observation.
    pub fn raw_len(&self) -> usize {
        self.rows * self.cols * self.cardinalities.len()
    }

    /// Raw bytes per cell (what LLM4Teach's CNN reads, without one-hot encoding).
    pub fn raw_channels(&self) -> usize {
        self.cardinalities.len()
    }

    /// One-hot values per cell.
    pub fn channels(&self) -> usize {
        self.cardinalities.iter().sum()
    }

    /// Floats of one encoded observation (`rows x cols x channels`).
    pub fn encoded_len(&self) -> usize {
        self.channels() * self.rows * self.cols
    }

    /// Appends the one-hot encoding of each raw observation in `raw` (a whole number of
    /// them) to `out`, channels-last. Out-of-range values encode as all zeros.
    pub fn encode_into(&self, raw: &[u8], out: &mut Vec<f32>) {
        let raw_len = self.raw_len();
        let plane = self.rows * self.cols;
        let channels = self.channels();
        let raw_channels = self.cardinalities.len();
        for observation in raw.chunks_exact(raw_len) {
            let start = out.len();
            out.resize(start + self.encoded_len(), 0.0);
            let encoded = &mut out[start..];
            for cell in 0..plane {
                let mut channel_offset = 0;
                for (channel, &cardinality) in self.cardinalities.iter().enumerate() {
                    let value = observation[cell * raw_channels + channel] as usize;
                    if value < cardinality {
                        encoded[cell * channels + channel_offset + value] = 1.0;
                    }
                    channel_offset += cardinality;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_is_channels_last() {
        let layout = ObservationLayout { rows: 1, cols: 2, cardinalities: vec![2, 3] };
        assert_eq!(layout.encoded_len(), 10);
        let mut out = Vec::new();
        // Cell 0: (1, 2); cell 1: (0, 9 = out of range).
        layout.encode_into(&[1, 2, 0, 9], &mut out);
        #[rustfmt::skip]
        let expected = [
            0.0, 1.0, 0.0, 0.0, 1.0, // cell 0: channel 0 = 1, channel 1 = 2
            1.0, 0.0, 0.0, 0.0, 0.0, // cell 1: channel 0 = 0, channel 1 out of range
        ];
        assert_eq!(out, expected);
        layout.encode_into(&[0, 0, 1, 1], &mut out);
        assert_eq!(out.len(), 20);
    }
}
