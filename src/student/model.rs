//! The actor-critic network: an encoder (MiniGrid's CNN, an MLP or LLM4Teach's padded CNN)
//! feeding 64-unit actor and critic heads, with weights initialised from the run's seed.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::Linear;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::encoding::ObservationLayout;
use super::{NUM_ACTIONS, StudentError};
use crate::env::scene::EncoderKind;

/// Width of the heads' hidden layer and of the MLP encoder (rl-starter-files).
const HIDDEN: usize = 64;

/// A square convolution (2x2 unpadded for MiniGrid's CNN, 3x3 with padding 1 for LLM4Teach's),
/// stride 1, over channels-last maps, as one matrix product over gathered patches. candle's
/// CPU conv2d backward (a naive transposed convolution) made updates 8x slower; one
/// `index_select` and its `index_add` backward copy the least.
struct Conv {
    /// `[kernel * kernel * in_channels, out_channels]`, rows ordered (dy, dx, in_channel).
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    /// Zero cells added on every side before the convolution.
    padding: usize,
}

/// For each output cell of a `kernel x kernel` convolution over a `rows x cols` map (padding
/// already applied), the input cells in (dy, dx) order, as flat cell indices.
fn patch_cells(rows: usize, cols: usize, kernel: usize) -> Vec<u32> {
    let (out_rows, out_cols) = (rows + 1 - kernel, cols + 1 - kernel);
    let mut cells = Vec::with_capacity(out_rows * out_cols * kernel * kernel);
    for row in 0..out_rows {
        for col in 0..out_cols {
            for dy in 0..kernel {
                for dx in 0..kernel {
                    cells.push(((row + dy) * cols + col + dx) as u32);
                }
            }
        }
    }
    cells
}

impl Conv {
    /// `[batch, rows, cols, in]` -> `[batch, rows', cols', out]` (`rows' = rows + 2 * padding
    /// - kernel + 1`).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = if self.padding > 0 {
            x.pad_with_zeros(1, self.padding, self.padding)?.pad_with_zeros(2, self.padding, self.padding)?
        } else {
            x.clone()
        };
        let (batch, rows, cols, channels) = x.dims4()?;
        let (out_rows, out_cols, taps) = (rows + 1 - self.kernel, cols + 1 - self.kernel, self.kernel * self.kernel);
        let cells = patch_cells(rows, cols, self.kernel);
        let cells = Tensor::from_vec(cells, out_rows * out_cols * taps, x.device())?;
        let patches = x.reshape((batch, rows * cols, channels))?.index_select(&cells, 1)?;
        self.forward_patches(&patches.reshape((batch, out_rows, out_cols, taps * channels))?)
    }

    /// The convolution over patches already gathered: `[batch, rows', cols', 4 * in]`.
    fn forward_patches(&self, patches: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, rows, cols, width) = patches.dims4()?;
        let out = patches.reshape((batch * rows * cols, width))?.matmul(&self.weight)?.broadcast_add(&self.bias)?;
        out.reshape((batch, rows, cols, self.weight.dim(1)?))
    }
}

/// 2x2 max-pool, stride 2, over channels-last maps (an odd last row or column is dropped).
fn max_pool_2x2(x: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, rows, cols, channels) = x.dims4()?;
    let x = x.narrow(1, 0, rows / 2 * 2)?.narrow(2, 0, cols / 2 * 2)?.contiguous()?;
    x.reshape((batch, rows / 2, 2, cols / 2, 2, channels))?.max(4)?.max(2)
}

/// The network body.
enum Encoder {
    /// Conv 2x2 (16) - ReLU - max-pool 2x2 - conv 2x2 (32) - ReLU - conv 2x2 (64) - ReLU.
    Cnn { convs: [Conv; 3] },
    /// Two tanh layers over the flattened one-hot observation.
    Mlp { layers: [Linear; 2] },
    /// LLM4Teach's student: conv 3x3 pad 1 (16) - ReLU - (32) - ReLU - (64) - ReLU over the raw
    /// (not one-hot, not normalised) observation values, no pooling.
    Llm4Teach { convs: [Conv; 3] },
}

/// For each cell of a `rows x cols` map of `channels` raw bytes per cell, its 3x3 neighbourhood
/// (dy, dx, channel order) as floats, zeros outside the map: the padded first convolution's
/// patches, `[rows][cols][9 * channels]` per observation, appended to `out`.
fn padded_patches_3x3(raw: &[u8], rows: usize, cols: usize, channels: usize, out: &mut Vec<f32>) {
    for observation in raw.chunks_exact(rows * cols * channels) {
        for row in 0..rows {
            for col in 0..cols {
                for dy in 0..3 {
                    for dx in 0..3 {
                        let (r, c) = ((row + dy).checked_sub(1), (col + dx).checked_sub(1));
                        match (r, c) {
                            (Some(r), Some(c)) if r < rows && c < cols => {
                                let cell = (r * cols + c) * channels;
                                out.extend(observation[cell..cell + channels].iter().map(|&v| f32::from(v)));
                            }
                            _ => out.extend(std::iter::repeat_n(0.0, channels)),
                        }
                    }
                }
            }
        }
    }
}

/// Actor and critic sharing one encoder.
pub struct ActorCritic {
    layout: ObservationLayout,
    encoder: Encoder,
    actor: [Linear; 2],
    critic: [Linear; 2],
    /// ReLU between the heads' layers (LLM4Teach) instead of tanh (rl-starter-files).
    relu_heads: bool,
    /// Every trainable tensor, in a fixed order (optimizer state and gradient norms follow it).
    parameters: Vec<(String, Var)>,
}

/// Creates parameters from a seeded generator, so one seed gives one network.
struct ParameterFactory {
    rng: ChaCha8Rng,
    parameters: Vec<(String, Var)>,
}

impl ParameterFactory {
    fn variable(&mut self, name: &str, shape: &[usize], values: Vec<f32>) -> Result<Tensor, StudentError> {
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?)?;
        let tensor = var.as_tensor().clone();
        self.parameters.push((name.to_owned(), var));
        Ok(tensor)
    }

    fn uniform(&mut self, count: usize, bound: f32) -> Vec<f32> {
        (0..count).map(|_| self.rng.random_range(-bound..=bound)).collect()
    }

    fn normal(&mut self) -> f32 {
        // Box-Muller: rand 0.9 without rand_distr.
        let u1: f32 = self.rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// rl-starter-files' `init_params`: N(0, 1) rows scaled to unit norm, zero bias.
    fn linear(&mut self, name: &str, inputs: usize, outputs: usize) -> Result<Linear, StudentError> {
        let mut weights = Vec::with_capacity(inputs * outputs);
        for _ in 0..outputs {
            let row: Vec<f32> = (0..inputs).map(|_| self.normal()).collect();
            let norm = row.iter().map(|w| w * w).sum::<f32>().sqrt().max(f32::EPSILON);
            weights.extend(row.iter().map(|w| w / norm));
        }
        let weight = self.variable(&format!("{name}.weight"), &[outputs, inputs], weights)?;
        let bias = self.variable(&format!("{name}.bias"), &[outputs], vec![0.0; outputs])?;
        Ok(Linear::new(weight, Some(bias)))
    }

    /// PyTorch's default Linear init (LLM4Teach keeps it): U(±1/sqrt(fan_in)) for weights and bias.
    fn torch_linear(&mut self, name: &str, inputs: usize, outputs: usize) -> Result<Linear, StudentError> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let weights = self.uniform(outputs * inputs, bound);
        let weight = self.variable(&format!("{name}.weight"), &[outputs, inputs], weights)?;
        let biases = self.uniform(outputs, bound);
        let bias = self.variable(&format!("{name}.bias"), &[outputs], biases)?;
        Ok(Linear::new(weight, Some(bias)))
    }

    /// PyTorch's default conv init: U(±1/sqrt(fan_in)) for weights and bias.
    fn conv(
        &mut self,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        padding: usize,
    ) -> Result<Conv, StudentError> {
        let fan_in = inputs * kernel * kernel;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let weights = self.uniform(outputs * fan_in, bound);
        let weight = self.variable(&format!("{name}.weight"), &[fan_in, outputs], weights)?;
        let biases = self.uniform(outputs, bound);
        let bias = self.variable(&format!("{name}.bias"), &[outputs], biases)?;
        Ok(Conv { weight, bias, kernel, padding })
    }
}

/// Side of the CNN's output map for an input side, or None when the input is too small
/// (2x2 conv, 2x2 pool, 2x2 conv, 2x2 conv needs at least 7 cells).
fn cnn_output_side(side: usize) -> Option<usize> {
    let pooled = side.checked_sub(1)? / 2;
    pooled.checked_sub(2).filter(|&s| s >= 1)
}

impl ActorCritic {
    /// A freshly initialised network for observations shaped like `layout`.
    pub fn new(layout: ObservationLayout, kind: EncoderKind, seed: u64) -> Result<ActorCritic, StudentError> {
        let mut factory = ParameterFactory { rng: ChaCha8Rng::seed_from_u64(seed), parameters: Vec::new() };
        let (encoder, embedding) = match kind {
            EncoderKind::Cnn => {
                let (Some(rows), Some(cols)) = (cnn_output_side(layout.rows), cnn_output_side(layout.cols)) else {
                    return Err(StudentError::Config(format!(
                        "the CNN encoder needs observations of at least 7x7 cells (got {}x{}); use `encoder: Mlp`",
                        layout.rows, layout.cols
                    )));
                };
                let convs = [
                    factory.conv("encoder.conv1", layout.channels(), 16, 2, 0)?,
                    factory.conv("encoder.conv2", 16, 32, 2, 0)?,
                    factory.conv("encoder.conv3", 32, 64, 2, 0)?,
                ];
                (Encoder::Cnn { convs }, 64 * rows * cols)
            }
            EncoderKind::Llm4Teach => {
                // Padding 1 keeps the map's size through all three convolutions.
                let convs = [
                    factory.conv("encoder.conv1", layout.raw_channels(), 16, 3, 1)?,
                    factory.conv("encoder.conv2", 16, 32, 3, 1)?,
                    factory.conv("encoder.conv3", 32, 64, 3, 1)?,
                ];
                (Encoder::Llm4Teach { convs }, 64 * layout.rows * layout.cols)
            }
            EncoderKind::Mlp => {
                let layers = [
                    factory.linear("encoder.fc1", layout.encoded_len(), HIDDEN)?,
                    factory.linear("encoder.fc2", HIDDEN, HIDDEN)?,
                ];
                (Encoder::Mlp { layers }, HIDDEN)
            }
        };
        let relu_heads = kind == EncoderKind::Llm4Teach;
        let (actor, critic) = if relu_heads {
            (
                [
                    factory.torch_linear("actor.fc1", embedding, HIDDEN)?,
                    factory.torch_linear("actor.fc2", HIDDEN, NUM_ACTIONS)?,
                ],
                [
                    factory.torch_linear("critic.fc1", embedding, HIDDEN)?,
                    factory.torch_linear("critic.fc2", HIDDEN, 1)?,
                ],
            )
        } else {
            (
                [factory.linear("actor.fc1", embedding, HIDDEN)?, factory.linear("actor.fc2", HIDDEN, NUM_ACTIONS)?],
                [factory.linear("critic.fc1", embedding, HIDDEN)?, factory.linear("critic.fc2", HIDDEN, 1)?],
            )
        };
        Ok(ActorCritic { layout, encoder, actor, critic, relu_heads, parameters: factory.parameters })
    }

    pub fn layout(&self) -> &ObservationLayout {
        &self.layout
    }

    /// Trainable tensors with their names, in a fixed order.
    pub fn parameters(&self) -> &[(String, Var)] {
        &self.parameters
    }

    /// Encodes raw observations (a whole number of them) into the network's input tensor:
    /// the first convolution's patches for the CNNs, flat one-hot vectors for the MLP.
    pub fn input(&self, raw: &[u8]) -> Result<Tensor, StudentError> {
        let batch = raw.len() / self.layout.raw_len().max(1);
        if let Encoder::Llm4Teach { .. } = self.encoder {
            let (rows, cols, channels) = (self.layout.rows, self.layout.cols, self.layout.raw_channels());
            let mut patches = Vec::with_capacity(batch * rows * cols * 9 * channels);
            padded_patches_3x3(&raw[..batch * self.layout.raw_len()], rows, cols, channels, &mut patches);
            return Ok(Tensor::from_vec(patches, (batch, rows, cols, 9 * channels), &Device::Cpu)?);
        }
        let mut encoded = Vec::with_capacity(batch * self.layout.encoded_len());
        self.layout.encode_into(raw, &mut encoded);
        let (rows, cols, channels) = (self.layout.rows, self.layout.cols, self.layout.channels());
        if let Encoder::Mlp { .. } = self.encoder {
            return Ok(Tensor::from_vec(encoded, (batch, rows * cols * channels), &Device::Cpu)?);
        }
        // The first convolution's patches, gathered here: the input needs no gradient, so
        // this copy stays out of the graph.
        let cells = patch_cells(rows, cols, 2);
        let mut patches = Vec::with_capacity(batch * cells.len() * channels);
        for observation in encoded.chunks_exact(rows * cols * channels) {
            for &cell in &cells {
                let cell = cell as usize;
                patches.extend_from_slice(&observation[cell * channels..(cell + 1) * channels]);
            }
        }
        Ok(Tensor::from_vec(patches, (batch, rows - 1, cols - 1, 4 * channels), &Device::Cpu)?)
    }

    /// Action logits `[batch, 7]` and state values `[batch]` for an input from `input`.
    pub fn forward(&self, input: &Tensor) -> Result<(Tensor, Tensor), StudentError> {
        let embedding = match &self.encoder {
            Encoder::Cnn { convs } => {
                let x = max_pool_2x2(&convs[0].forward_patches(input)?.relu()?)?;
                let x = convs[1].forward(&x)?.relu()?;
                convs[2].forward(&x)?.relu()?.flatten_from(1)?
            }
            Encoder::Mlp { layers } => {
                let x = layers[0].forward(input)?.tanh()?;
                layers[1].forward(&x)?.tanh()?
            }
            Encoder::Llm4Teach { convs } => {
                let x = convs[0].forward_patches(input)?.relu()?;
                let x = convs[1].forward(&x)?.relu()?;
                convs[2].forward(&x)?.relu()?.flatten_from(1)?
            }
        };
        let activation = |x: Tensor| if self.relu_heads { x.relu() } else { x.tanh() };
        let logits = self.actor[1].forward(&activation(self.actor[0].forward(&embedding)?)?)?;
        let values = self.critic[1].forward(&activation(self.critic[0].forward(&embedding)?)?)?.squeeze(1)?;
        Ok((logits, values))
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.parameters.iter().map(|(_, var)| var.elem_count()).sum()
    }

    /// Whether every parameter is f32 (the only dtype the student uses).
    pub fn is_f32(&self) -> bool {
        self.parameters.iter().all(|(_, var)| var.dtype() == DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egocentric() -> ObservationLayout {
        ObservationLayout { rows: 7, cols: 7, cardinalities: vec![11, 6, 3] }
    }

    #[test]
    fn cnn_matches_rl_starter_files_shapes() {
        let model = ActorCritic::new(egocentric(), EncoderKind::Cnn, 0).expect("model");
        // Convs: 20*16*4+16, 16*32*4+32, 32*64*4+64; heads: 64*64+64 + 64*7+7, 64*64+64 + 64+1.
        let convs = 20 * 16 * 4 + 16 + 16 * 32 * 4 + 32 + 32 * 64 * 4 + 64;
        let heads = 64 * 64 + 64 + 64 * 7 + 7 + 64 * 64 + 64 + 64 + 1;
        assert_eq!(model.parameter_count(), convs + heads);
        assert!(model.is_f32());
        let input = model.input(&vec![1u8; 3 * 7 * 7 * 3]).expect("input");
        let (logits, values) = model.forward(&input).expect("forward");
        assert_eq!(logits.dims(), &[3, 7]);
        assert_eq!(values.dims(), &[3]);
    }

    #[test]
    fn conv_and_pool_match_hand_computation() {
        // One 2x3 map with one channel; weight sums the 2x2 window's top-left and
        // bottom-right cells (rows ordered dy, dx), bias 0.5.
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (1, 2, 3, 1), &Device::Cpu).expect("x");
        let conv = Conv {
            weight: Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0], (4, 1), &Device::Cpu).expect("w"),
            bias: Tensor::from_slice(&[0.5f32], 1, &Device::Cpu).expect("b"),
            kernel: 2,
            padding: 0,
        };
        let out: Vec<f32> = conv.forward(&x).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).expect("out");
        assert_eq!(out, vec![1.0 + 5.0 + 0.5, 2.0 + 6.0 + 0.5]);
        let x = Tensor::from_slice(&[1.0f32, 9.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 0.0], (1, 3, 3, 1), &Device::Cpu)
            .expect("x");
        let pooled: Vec<f32> = max_pool_2x2(&x).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).expect("p");
        assert_eq!(pooled, vec![9.0]);
    }

    #[test]
    fn patches_gathered_on_the_cpu_match_the_convolution() {
        let layout = egocentric();
        let model = ActorCritic::new(layout.clone(), EncoderKind::Cnn, 1).expect("model");
        let raw: Vec<u8> = (0..2 * layout.raw_len()).map(|i| (i * 7 % 11) as u8 % 3).collect();
        let mut encoded = Vec::new();
        layout.encode_into(&raw, &mut encoded);
        let maps = Tensor::from_vec(encoded, (2, 7, 7, layout.channels()), &Device::Cpu).expect("maps");
        let Encoder::Cnn { convs } = &model.encoder else { panic!("cnn") };
        let direct: Vec<f32> =
            convs[0].forward(&maps).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).expect("d");
        let gathered: Vec<f32> = convs[0]
            .forward_patches(&model.input(&raw).expect("input"))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .expect("g");
        assert_eq!(direct, gathered);
    }

    #[test]
    fn mlp_and_small_views() {
        let small = ObservationLayout { rows: 3, cols: 3, cardinalities: vec![11, 6, 3] };
        assert!(matches!(ActorCritic::new(small.clone(), EncoderKind::Cnn, 0), Err(StudentError::Config(_))));
        let model = ActorCritic::new(small, EncoderKind::Mlp, 0).expect("model");
        let (logits, values) = model.forward(&model.input(&[2u8; 27]).expect("input")).expect("forward");
        assert_eq!((logits.dims(), values.dims()), (&[1, 7][..], &[1][..]));
    }

    #[test]
    fn same_seed_same_weights() {
        let a = ActorCritic::new(egocentric(), EncoderKind::Cnn, 5).expect("model");
        let b = ActorCritic::new(egocentric(), EncoderKind::Cnn, 5).expect("model");
        let c = ActorCritic::new(egocentric(), EncoderKind::Cnn, 6).expect("model");
        let flat = |m: &ActorCritic| -> Vec<f32> {
            m.parameters()
                .iter()
                .flat_map(|(_, v)| v.flatten_all().and_then(|t| t.to_vec1::<f32>()).unwrap_or_default())
                .collect()
        };
        assert_eq!(flat(&a), flat(&b));
        assert_ne!(flat(&a), flat(&c));
        // Linear rows have unit norm (rl-starter-files' init).
        let actor =
            a.parameters().iter().find(|(n, _)| n == "actor.fc1.weight").map(|(_, v)| v.clone()).expect("actor");
        let row: Vec<f32> = actor.get(0).and_then(|r| r.to_vec1()).expect("row");
        assert!((row.iter().map(|w| w * w).sum::<f32>() - 1.0).abs() < 1e-4);
    }

    fn historical_10x10() -> ObservationLayout {
        ObservationLayout {
            rows: 10,
            cols: 10,
            cardinalities: crate::student::encoding::HISTORICAL_CARDINALITIES.to_vec(),
        }
    }

    #[test]
    fn llm4teach_matches_its_shapes() {
        let model = ActorCritic::new(historical_10x10(), EncoderKind::Llm4Teach, 0).expect("model");
        // Convs 3x3 over 4 raw channels: 4*9*16+16, 16*9*32+32, 32*9*64+64; no pooling, so the
        // heads see 64 * 10 * 10 features: 6400*64+64 + 64*7+7, 6400*64+64 + 64+1.
        let convs = 4 * 9 * 16 + 16 + 16 * 9 * 32 + 32 + 32 * 9 * 64 + 64;
        let heads = 6400 * 64 + 64 + 64 * 7 + 7 + 6400 * 64 + 64 + 64 + 1;
        assert_eq!(model.parameter_count(), convs + heads);
        let input = model.input(&vec![4u8; 2 * 10 * 10 * 4]).expect("input");
        assert_eq!(input.dims(), &[2, 10, 10, 36]);
        let (logits, values) = model.forward(&input).expect("forward");
        assert_eq!(logits.dims(), &[2, 7]);
        assert_eq!(values.dims(), &[2]);
        // PyTorch's default Linear init: every head weight within ±1/sqrt(fan_in).
        let actor = model.parameters().iter().find(|(n, _)| n == "actor.fc1.weight").map(|(_, v)| v.clone());
        let weights: Vec<f32> = actor.expect("actor").flatten_all().and_then(|t| t.to_vec1()).expect("weights");
        assert!(weights.iter().all(|w| w.abs() <= 1.0 / 80.0));
    }

    #[test]
    fn padded_conv_3x3_matches_hand_computation() {
        // A 2x2 map [[1, 2], [3, 4]], one channel; the kernel weighs the centre 1 and the
        // right-hand neighbour 10 (rows ordered dy, dx), bias 0.5. Outside the map is 0.
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0], (1, 2, 2, 1), &Device::Cpu).expect("x");
        let mut kernel = [0.0f32; 9];
        kernel[4] = 1.0;
        kernel[5] = 10.0;
        let conv = Conv {
            weight: Tensor::from_slice(&kernel, (9, 1), &Device::Cpu).expect("w"),
            bias: Tensor::from_slice(&[0.5f32], 1, &Device::Cpu).expect("b"),
            kernel: 3,
            padding: 1,
        };
        let out = conv.forward(&x).expect("forward");
        assert_eq!(out.dims(), &[1, 2, 2, 1]);
        let out: Vec<f32> = out.flatten_all().and_then(|t| t.to_vec1()).expect("out");
        assert_eq!(out, vec![1.0 + 20.0 + 0.5, 2.0 + 0.5, 3.0 + 40.0 + 0.5, 4.0 + 0.5]);
    }

    #[test]
    fn llm4teach_patches_gathered_on_the_cpu_match_the_padded_convolution() {
        let layout = historical_10x10();
        let model = ActorCritic::new(layout.clone(), EncoderKind::Llm4Teach, 3).expect("model");
        let raw: Vec<u8> = (0..2 * layout.raw_len()).map(|i| (i * 7 % 11) as u8).collect();
        let values: Vec<f32> = raw.iter().map(|&v| f32::from(v)).collect();
        let maps = Tensor::from_vec(values, (2, 10, 10, 4), &Device::Cpu).expect("maps");
        let Encoder::Llm4Teach { convs } = &model.encoder else { panic!("llm4teach") };
        let direct: Vec<f32> =
            convs[0].forward(&maps).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).expect("d");
        let gathered: Vec<f32> = convs[0]
            .forward_patches(&model.input(&raw).expect("input"))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .expect("g");
        assert_eq!(direct.len(), 2 * 10 * 10 * 16);
        for (a, b) in direct.iter().zip(&gathered) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
