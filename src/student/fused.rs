//! A hand-fused forward and backward pass of the actor-critic (MiniGrid's CNN or the MLP, tanh
//! heads) and of the PPO loss, over flat f32 parameters: updates without candle's per-op cost.
//!
//! The candle model in `model.rs` stays the reference and the parameter store: this path reads
//! the same parameters (flattened in the model's order), computes what candle's autograd would
//! (its tie rules included: ReLU passes the gradient at 0, every maximum of a max-pool window
//! gets it, a `minimum`/`maximum` tie splits it in halves), and the tests check it against
//! candle. The one-hot input is kept sparse (one index per cell and raw channel), so the first
//! layer adds weight rows instead of multiplying mostly-zero patches.

use candle_core::{Tensor, Var};

use super::encoding::ObservationLayout;
use super::{NUM_ACTIONS, StudentError};
use crate::env::scene::EncoderKind;
use crate::numerics::fast_tanh;

/// Width of the heads' hidden layer and of the MLP encoder (as in `model.rs`).
const HIDDEN: usize = 64;
/// Output channels of the CNN's three convolutions (as in `model.rs`).
const CONV1: usize = 16;
const CONV2: usize = 32;
const CONV3: usize = 64;
/// Marks a raw value outside its channel's range: it encodes as all zeros.
const NO_CHANNEL: u16 = u16::MAX;
/// Most distinct cells for which conv 1 builds its table (MiniGrid's egocentric view has
/// 12 x 7 x 4 = 336 with "out of range"; the table costs kinds x 4 taps x 16 floats).
const MAX_CELL_KINDS: usize = 4096;

/// A matrix view for `matmul`: element (row, col) is `data[row * row_stride + col * col_stride]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    fn rows(data: &'a [f32], cols: usize) -> View<'a> {
        View { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(data: &'a [f32], cols: usize) -> View<'a> {
        View { data, row_stride: 1, col_stride: cols }
    }

    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst[m x n]` (row-major) = `a[m x k] x b[k x n]`, added to `dst` when `accumulate`.
fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: View, b: View, accumulate: bool) {
    // The pointer arithmetic below relies on these: they are cheap next to the product.
    assert!(dst.len() >= m * n && a.fits(m, k) && b.fits(k, n), "matmul {m}x{k}x{n} out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if n.is_multiple_of(16) && std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the bounds were checked above.
        unsafe { avx512::matmul(m, n, k, dst, a, b, accumulate) };
        return;
    }
    // SAFETY: every index gemm touches is within the slices (checked above), `dst` does not
    // alias `a` or `b` (a `&mut` and two `&`), and one thread runs it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// (row, col) of each cell of a `rows x cols` map in row-major order, without a division per cell.
#[inline(always)]
fn map_cells(rows: usize, cols: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows).flat_map(move |row| (0..cols).map(move |col| (row, col)))
}

/// A register-blocked product for outputs a multiple of 16 wide: gemm 0.19 has AVX-512
/// kernels only on nightly Rust, and its AVX2 kernel was a third of an update.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::View;

    /// `dst[m x n] (+)= a[m x k] x b[k x n]` for `n` a multiple of 16.
    ///
    /// # Safety
    /// The CPU has AVX-512F, and `dst`, `a` and `b` hold every element of those shapes
    /// (`matmul` checks it).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: View, b: View, accumulate: bool) {
        // The kernel reads rows of `b` as vectors: a strided `b` (a transposed weight) is
        // copied into rows first; it is small next to the product.
        let packed: Vec<f32>;
        let b_rows: &[f32] = if b.col_stride == 1 && b.row_stride == n {
            b.data
        } else {
            let mut rows = vec![0.0f32; k * n];
            for (col, column) in (0..n).map(|col| (col, &b.data[col * b.col_stride..])) {
                for (row, out) in rows.chunks_exact_mut(n).enumerate() {
                    out[col] = column[row * b.row_stride];
                }
            }
            packed = rows;
            &packed
        };
        let mut col = 0;
        while col < n {
            let vectors = ((n - col) / 16).min(4);
            // SAFETY: as for this function; `col + 16 * vectors <= n`.
            unsafe {
                match vectors {
                    4 => panel::<6, 4>(m, n, k, dst, a, b_rows, col, accumulate),
                    3 => panel::<8, 3>(m, n, k, dst, a, b_rows, col, accumulate),
                    2 => panel::<12, 2>(m, n, k, dst, a, b_rows, col, accumulate),
                    _ => panel::<12, 1>(m, n, k, dst, a, b_rows, col, accumulate),
                }
            }
            col += vectors * 16;
        }
    }

    /// Columns `col..col + 16 J` of the product, `R` rows at a time.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn panel<const R: usize, const J: usize>(
        m: usize,
        n: usize,
        k: usize,
        dst: &mut [f32],
        a: View,
        b_rows: &[f32],
        col: usize,
        accumulate: bool,
    ) {
        let mut row = 0;
        while row + R <= m {
            // SAFETY: rows `row..row + R` and these columns are in bounds.
            unsafe { block::<R, J>(row, col, n, k, dst, a, b_rows, accumulate) };
            row += R;
        }
        while row < m {
            // SAFETY: as above, one row.
            unsafe { block::<1, J>(row, col, n, k, dst, a, b_rows, accumulate) };
            row += 1;
        }
    }

    /// An `R x 16 J` block of `dst` held in registers over the whole inner dimension.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const J: usize>(
        row: usize,
        col: usize,
        n: usize,
        k: usize,
        dst: &mut [f32],
        a: View,
        b_rows: &[f32],
        accumulate: bool,
    ) {
        let out = dst.as_mut_ptr();
        let (a_data, b_data) = (a.data.as_ptr(), b_rows.as_ptr());
        // SAFETY (every access below): indices stay within the shapes `matmul` checked.
        unsafe {
            let mut sums: [[__m512; J]; R] = [[_mm512_setzero_ps(); J]; R];
            if accumulate {
                for (r, sums) in sums.iter_mut().enumerate() {
                    for (j, sum) in sums.iter_mut().enumerate() {
                        *sum = _mm512_loadu_ps(out.add((row + r) * n + col + 16 * j));
                    }
                }
            }
            for p in 0..k {
                let mut b_vectors: [__m512; J] = [_mm512_setzero_ps(); J];
                for (j, vector) in b_vectors.iter_mut().enumerate() {
                    *vector = _mm512_loadu_ps(b_data.add(p * n + col + 16 * j));
                }
                for (r, sums) in sums.iter_mut().enumerate() {
                    let a_value = _mm512_set1_ps(*a_data.add((row + r) * a.row_stride + p * a.col_stride));
                    for (sum, vector) in sums.iter_mut().zip(&b_vectors) {
                        *sum = _mm512_fmadd_ps(a_value, *vector, *sum);
                    }
                }
            }
            for (r, sums) in sums.iter().enumerate() {
                for (j, sum) in sums.iter().enumerate() {
                    _mm512_storeu_ps(out.add((row + r) * n + col + 16 * j), *sum);
                }
            }
        }
    }
}

/// Adds each row of `matrix` (`cols` wide) into `sums`.
#[inline(always)]
fn add_column_sums(matrix: &[f32], cols: usize, sums: &mut [f32]) {
    for row in matrix.chunks_exact(cols) {
        for (sum, value) in sums.iter_mut().zip(row) {
            *sum += value;
        }
    }
}

/// Sets every row of `matrix` (`bias.len()` wide) to `bias`.
#[inline(always)]
fn fill_rows(matrix: &mut [f32], bias: &[f32]) {
    for row in matrix.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// 2x2 patches of `maps` (`[batch, rows, cols, channels]`) in (dy, dx, channel) order:
/// `[batch, rows - 1, cols - 1, 4 * channels]`.
#[inline(always)]
fn gather_patches(maps: &[f32], batch: usize, rows: usize, cols: usize, channels: usize, out: &mut Vec<f32>) {
    out.clear();
    for map in maps.chunks_exact(rows * cols * channels).take(batch) {
        for row in 0..rows - 1 {
            for col in 0..cols - 1 {
                for dy in 0..2 {
                    let start = ((row + dy) * cols + col) * channels;
                    out.extend_from_slice(&map[start..start + 2 * channels]);
                }
            }
        }
    }
}

/// The backward of `gather_patches`: adds each patch's gradient back onto its cells.
#[inline(always)]
fn scatter_patches(patches: &[f32], batch: usize, rows: usize, cols: usize, channels: usize, maps: &mut [f32]) {
    maps[..batch * rows * cols * channels].fill(0.0);
    let patch_len = 4 * channels;
    let per_map = (rows - 1) * (cols - 1) * patch_len;
    for (map, patches) in maps.chunks_exact_mut(rows * cols * channels).zip(patches.chunks_exact(per_map)) {
        for ((row, col), patch) in map_cells(rows - 1, cols - 1).zip(patches.chunks_exact(patch_len)) {
            for dy in 0..2 {
                let start = ((row + dy) * cols + col) * channels;
                for (cell, grad) in map[start..start + 2 * channels].iter_mut().zip(&patch[dy * 2 * channels..]) {
                    *cell += grad;
                }
            }
        }
    }
}

#[inline(always)]
fn relu_in_place(values: &mut [f32]) {
    for value in values {
        *value = value.max(0.0);
    }
}

/// Gradient through a ReLU whose input was `pre`: candle passes it where `pre >= 0`.
#[inline(always)]
fn relu_backward(grad: &mut [f32], pre: &[f32]) {
    for (g, &p) in grad.iter_mut().zip(pre) {
        if p < 0.0 || p.is_nan() {
            *g = 0.0;
        }
    }
}

#[inline(always)]
fn tanh_in_place(values: &mut [f32]) {
    for value in values {
        *value = fast_tanh(*value);
    }
}

/// Gradient through a tanh whose output was `out`.
#[inline(always)]
fn tanh_backward(grad: &mut [f32], out: &[f32]) {
    for (g, &y) in grad.iter_mut().zip(out) {
        *g *= 1.0 - y * y;
    }
}

/// `backward`'s inputs: sparse inputs, samples, parameters, gradients of logits and values.
type BackwardArguments<'a> = (&'a [u16], &'a [u32], &'a [f32], &'a [f32], &'a [f32]);

/// The one-hot channels of a cell kind (`NO_CHANNEL` for "out of range"), into `out`: the
/// inverse of the kinds `FusedNetwork::sparse_inputs` computes.
fn decode_kind(channel_offsets: &[(u16, u16)], kind: usize, out: &mut [u16]) {
    let mut rest = kind;
    for (slot, &(start, count)) in out.iter_mut().zip(channel_offsets).rev() {
        let radix = usize::from(count) + 1;
        let digit = (rest % radix) as u16;
        rest /= radix;
        *slot = if digit == count { NO_CHANNEL } else { start + digit };
    }
}

/// The encoder's shapes.
#[derive(Clone, Debug)]
enum Body {
    /// Map sides after each layer: conv1 (`rows - 1`), pool (halved), conv2, conv3.
    Cnn {
        conv1: (usize, usize),
        pooled: (usize, usize),
        conv2: (usize, usize),
        conv3: (usize, usize),
    },
    Mlp,
}

/// Where each parameter lives in the flat vector (the model's order).
#[derive(Clone, Debug)]
struct Offsets {
    /// Encoder weights and biases: conv1-3 (CNN) or fc1-2 (MLP), weight then bias.
    encoder: Vec<usize>,
    actor: [usize; 4],
    critic: [usize; 4],
}

/// The network's shapes and parameter offsets, for running it on flat parameters.
#[derive(Clone, Debug)]
pub struct FusedNetwork {
    rows: usize,
    cols: usize,
    /// Raw bytes per cell, and for each the first one-hot channel and its cardinality.
    channel_offsets: Vec<(u16, u16)>,
    /// One-hot channels per cell.
    channels: usize,
    /// Distinct cells (every raw channel's value or "out of range") when few enough for conv 1
    /// to run on a table of each cell kind's weight sum per tap; None: it adds weight rows.
    cell_kinds: Option<usize>,
    /// Each cell kind's one-hot channels (`NO_CHANNEL` for "out of range"), raw channels per kind.
    kind_channels: Vec<u16>,
    body: Body,
    /// Width of the encoder's output.
    embedding: usize,
    offsets: Offsets,
    /// Each parameter's shape, in the model's order.
    shapes: Vec<Vec<usize>>,
    total: usize,
}

/// Activations of one forward pass, kept for the backward, and the backward's scratch space.
#[derive(Default)]
pub struct Workspace {
    batch: usize,
    conv1: Vec<f32>,
    pooled: Vec<f32>,
    patches2: Vec<f32>,
    conv2: Vec<f32>,
    patches3: Vec<f32>,
    conv3: Vec<f32>,
    /// CNN with few cell kinds: conv 1's table of row sums per tap and kind, and its gradient.
    table: Vec<f32>,
    table_grad: Vec<f32>,
    /// The version of the parameters the next `forward` reads, if the caller keeps count
    /// (acting does: the table is rebuilt only when the parameters changed); None: every
    /// forward rebuilds it (updates, whose parameters change at every minibatch).
    pub parameters_version: Option<u64>,
    /// The version the table was built from.
    table_version: Option<u64>,
    /// MLP: the first tanh layer; the transposed first weight and its gradient.
    hidden1: Vec<f32>,
    transposed: Vec<f32>,
    embedding: Vec<f32>,
    actor_hidden: Vec<f32>,
    critic_hidden: Vec<f32>,
    /// `[batch, NUM_ACTIONS]`.
    pub logits: Vec<f32>,
    /// `[batch]`.
    pub values: Vec<f32>,
    grad_a: Vec<f32>,
    grad_b: Vec<f32>,
    grad_embedding: Vec<f32>,
}

impl FusedNetwork {
    /// The fused network for a model built by `ActorCritic::new`, or None for an encoder it
    /// does not cover (LLM4Teach's, which stays on candle).
    pub fn new(
        layout: &ObservationLayout,
        kind: EncoderKind,
        parameters: &[(String, Var)],
    ) -> Result<Option<FusedNetwork>, StudentError> {
        let (rows, cols) = (layout.rows, layout.cols);
        if layout.cardinalities.is_empty() {
            return Err(StudentError::Config("an observation layout needs at least one channel".into()));
        }
        let (body, embedding, encoder_shapes): (Body, usize, Vec<(&str, Vec<usize>)>) = match kind {
            EncoderKind::Llm4Teach => return Ok(None),
            EncoderKind::Cnn => {
                let conv1 = (rows.saturating_sub(1), cols.saturating_sub(1));
                let pooled = (conv1.0 / 2, conv1.1 / 2);
                let conv2 = (pooled.0.saturating_sub(1), pooled.1.saturating_sub(1));
                let conv3 = (conv2.0.saturating_sub(1), conv2.1.saturating_sub(1));
                let shapes = vec![
                    ("encoder.conv1.weight", vec![4 * layout.channels(), CONV1]),
                    ("encoder.conv1.bias", vec![CONV1]),
                    ("encoder.conv2.weight", vec![4 * CONV1, CONV2]),
                    ("encoder.conv2.bias", vec![CONV2]),
                    ("encoder.conv3.weight", vec![4 * CONV2, CONV3]),
                    ("encoder.conv3.bias", vec![CONV3]),
                ];
                (Body::Cnn { conv1, pooled, conv2, conv3 }, CONV3 * conv3.0 * conv3.1, shapes)
            }
            EncoderKind::Mlp => {
                let shapes = vec![
                    ("encoder.fc1.weight", vec![HIDDEN, layout.encoded_len()]),
                    ("encoder.fc1.bias", vec![HIDDEN]),
                    ("encoder.fc2.weight", vec![HIDDEN, HIDDEN]),
                    ("encoder.fc2.bias", vec![HIDDEN]),
                ];
                (Body::Mlp, HIDDEN, shapes)
            }
        };
        let head = |name: &'static str, outputs: usize| {
            [
                (format!("{name}.fc1.weight"), vec![HIDDEN, embedding]),
                (format!("{name}.fc1.bias"), vec![HIDDEN]),
                (format!("{name}.fc2.weight"), vec![outputs, HIDDEN]),
                (format!("{name}.fc2.bias"), vec![outputs]),
            ]
        };
        let expected: Vec<(String, Vec<usize>)> = encoder_shapes
            .into_iter()
            .map(|(name, shape)| (name.to_owned(), shape))
            .chain(head("actor", NUM_ACTIONS))
            .chain(head("critic", 1))
            .collect();
        if expected.len() != parameters.len() {
            return Err(StudentError::Config(format!(
                "the fused network expects {} parameters, the model has {}",
                expected.len(),
                parameters.len()
            )));
        }
        let (mut offsets, mut shapes, mut total) = (Vec::new(), Vec::new(), 0);
        for ((name, shape), (actual_name, var)) in expected.iter().zip(parameters) {
            if name != actual_name || shape.as_slice() != var.dims() {
                return Err(StudentError::Config(format!(
                    "the fused network expects {name} {shape:?}, the model has {actual_name} {:?}",
                    var.dims()
                )));
            }
            offsets.push(total);
            shapes.push(shape.clone());
            total += shape.iter().product::<usize>();
        }
        let encoder_count = offsets.len() - 8;
        let heads = &offsets[encoder_count..];
        let offsets = Offsets {
            encoder: offsets[..encoder_count].to_vec(),
            actor: [heads[0], heads[1], heads[2], heads[3]],
            critic: [heads[4], heads[5], heads[6], heads[7]],
        };
        let mut channel_offsets = Vec::new();
        let mut first = 0usize;
        for &cardinality in &layout.cardinalities {
            let (Ok(start), Ok(count)) = (u16::try_from(first), u16::try_from(cardinality)) else {
                return Err(StudentError::Config("too many one-hot channels for the fused network".into()));
            };
            channel_offsets.push((start, count));
            first += cardinality;
        }
        if first >= usize::from(NO_CHANNEL) {
            return Err(StudentError::Config("too many one-hot channels for the fused network".into()));
        }
        let kinds = layout.cardinalities.iter().try_fold(1usize, |product, &c| product.checked_mul(c + 1));
        let cell_kinds = kinds.filter(|&k| k <= MAX_CELL_KINDS && matches!(body, Body::Cnn { .. }));
        let mut kind_channels = vec![NO_CHANNEL; cell_kinds.unwrap_or(0) * channel_offsets.len()];
        for (kind, channels) in kind_channels.chunks_exact_mut(channel_offsets.len().max(1)).enumerate() {
            decode_kind(&channel_offsets, kind, channels);
        }
        Ok(Some(FusedNetwork {
            rows,
            cols,
            channel_offsets,
            channels: layout.channels(),
            cell_kinds,
            kind_channels,
            body,
            embedding,
            offsets,
            shapes,
            total,
        }))
    }

    /// Scalars in the flat parameter vector.
    pub fn parameter_len(&self) -> usize {
        self.total
    }

    /// The parameters' current values, concatenated in the model's order.
    pub fn flatten(&self, parameters: &[(String, Var)]) -> Result<Vec<f32>, StudentError> {
        let mut flat = Vec::with_capacity(self.total);
        for (_, var) in parameters {
            flat.extend(var.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(flat)
    }

    /// Writes flat values back into the parameters.
    pub fn write_back(&self, flat: &[f32], parameters: &[(String, Var)]) -> Result<(), StudentError> {
        let mut offset = 0;
        for ((_, var), shape) in parameters.iter().zip(&self.shapes) {
            let len = shape.iter().product::<usize>();
            var.set(&Tensor::from_slice(&flat[offset..offset + len], shape.as_slice(), &candle_core::Device::Cpu)?)?;
            offset += len;
        }
        Ok(())
    }

    /// Raw bytes of one observation.
    fn raw_len(&self) -> usize {
        self.rows * self.cols * self.channel_offsets.len()
    }

    /// The network's input for the observations in `raw` (a whole number of them): with conv
    /// 1's table, each cell's kind; otherwise each cell's one-hot channel per raw channel
    /// (`NO_CHANNEL` where the value is out of range).
    pub fn sparse_inputs(&self, raw: &[u8]) -> Vec<u16> {
        let raw_len = self.raw_len().max(1);
        let whole = raw.len() / raw_len * raw_len;
        let cells = raw[..whole].chunks_exact(self.channel_offsets.len());
        if self.cell_kinds.is_some() {
            // Mixed radix over the raw channels, "out of range" as each channel's last digit.
            return cells
                .map(|cell| {
                    let mut kind = 0u16;
                    for (&value, &(_, count)) in cell.iter().zip(&self.channel_offsets) {
                        kind = kind * (count + 1) + u16::from(value).min(count);
                    }
                    kind
                })
                .collect();
        }
        let mut out = Vec::with_capacity(whole);
        for cell in cells {
            for (&value, &(start, count)) in cell.iter().zip(&self.channel_offsets) {
                out.push(if u16::from(value) < count { start + u16::from(value) } else { NO_CHANNEL });
            }
        }
        out
    }

    /// Entries of `sparse_inputs` per observation.
    fn input_len(&self) -> usize {
        let cells = self.rows * self.cols;
        if self.cell_kinds.is_some() { cells } else { cells * self.channel_offsets.len() }
    }

    /// Logits and values (into `workspace.logits` / `.values`) of the observations `samples`
    /// picks from `inputs` (from `sparse_inputs`), keeping what the backward needs.
    pub fn forward(&self, inputs: &[u16], samples: &[u32], parameters: &[f32], workspace: &mut Workspace) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has the features the function is compiled for.
                return unsafe { self.forward_avx512(inputs, samples, parameters, workspace) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.forward_avx2(inputs, samples, parameters, workspace) };
            }
        }
        self.forward_portable(inputs, samples, parameters, workspace)
    }

    /// `forward` with 512-bit vectors (its loops are elementwise, so the results are the same).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn forward_avx512(&self, inputs: &[u16], samples: &[u32], parameters: &[f32], workspace: &mut Workspace) {
        self.forward_portable(inputs, samples, parameters, workspace)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_avx2(&self, inputs: &[u16], samples: &[u32], parameters: &[f32], workspace: &mut Workspace) {
        self.forward_portable(inputs, samples, parameters, workspace)
    }

    #[inline(always)]
    fn forward_portable(&self, inputs: &[u16], samples: &[u32], parameters: &[f32], workspace: &mut Workspace) {
        let batch = samples.len();
        workspace.batch = batch;
        let per_observation = self.input_len();
        let observation = |sample: u32| &inputs[sample as usize * per_observation..][..per_observation];
        let ws = workspace;
        match self.body {
            Body::Cnn { conv1, pooled, conv2, conv3 } => {
                let [w1, b1, w2, b2, w3, b3] = [0, 1, 2, 3, 4, 5].map(|i| self.offsets.encoder[i]);
                // Conv 1 over the sparse one-hot input: each active channel adds one weight row,
                // or with few cell kinds, each tap adds its cell kind's precomputed row sum.
                let weight1 = &parameters[w1..b1];
                let bias1: &[f32; CONV1] = parameters[b1..b1 + CONV1].try_into().expect("conv1 bias");
                ws.conv1.resize(batch * conv1.0 * conv1.1 * CONV1, 0.0);
                let raw_channels = self.channel_offsets.len();
                let map_len = conv1.0 * conv1.1 * CONV1;
                if let Some(kinds) = self.cell_kinds {
                    // Acting reuses the table while the parameters stay the same.
                    let current = ws.parameters_version.is_some() && ws.table_version == ws.parameters_version;
                    ws.table_version = ws.parameters_version;
                    if !current {
                        ws.table.clear();
                        ws.table.resize(4 * kinds * CONV1, 0.0);
                        for (kind, channels) in self.kind_channels.chunks_exact(raw_channels).enumerate() {
                            for tap in 0..4 {
                                let row = &mut ws.table[(tap * kinds + kind) * CONV1..][..CONV1];
                                for &channel in channels.iter().filter(|&&c| c != NO_CHANNEL) {
                                    let start = (tap * self.channels + usize::from(channel)) * CONV1;
                                    for (t, w) in row.iter_mut().zip(&weight1[start..start + CONV1]) {
                                        *t += w;
                                    }
                                }
                            }
                        }
                    }
                    for (&sample, out) in samples.iter().zip(ws.conv1.chunks_exact_mut(map_len)) {
                        let cell_kinds = observation(sample);
                        for ((row, col), out) in map_cells(conv1.0, conv1.1).zip(out.chunks_exact_mut(CONV1)) {
                            let mut sum = *bias1;
                            for tap in 0..4 {
                                let kind = usize::from(cell_kinds[(row + tap / 2) * self.cols + col + tap % 2]);
                                let start = (tap * kinds + kind) * CONV1;
                                let sums: &[f32; CONV1] = ws.table[start..start + CONV1].try_into().expect("row");
                                for (s, w) in sum.iter_mut().zip(sums) {
                                    *s += w;
                                }
                            }
                            out.copy_from_slice(&sum);
                        }
                    }
                } else {
                    for (&sample, out) in samples.iter().zip(ws.conv1.chunks_exact_mut(map_len)) {
                        let cells = observation(sample);
                        for ((row, col), out) in map_cells(conv1.0, conv1.1).zip(out.chunks_exact_mut(CONV1)) {
                            let mut sum = *bias1;
                            for tap in 0..4 {
                                let cell = (row + tap / 2) * self.cols + col + tap % 2;
                                for &channel in &cells[cell * raw_channels..(cell + 1) * raw_channels] {
                                    if channel != NO_CHANNEL {
                                        let start = (tap * self.channels + usize::from(channel)) * CONV1;
                                        let weights: &[f32; CONV1] =
                                            weight1[start..start + CONV1].try_into().expect("conv1 row");
                                        for (s, w) in sum.iter_mut().zip(weights) {
                                            *s += w;
                                        }
                                    }
                                }
                            }
                            out.copy_from_slice(&sum);
                        }
                    }
                }
                // ReLU then 2x2 max-pool (odd last row/column dropped), as max(0, window max).
                ws.pooled.resize(batch * pooled.0 * pooled.1 * CONV1, 0.0);
                for (maps, out) in ws
                    .conv1
                    .chunks_exact(conv1.0 * conv1.1 * CONV1)
                    .zip(ws.pooled.chunks_exact_mut(pooled.0 * pooled.1 * CONV1))
                {
                    for ((row, col), out) in map_cells(pooled.0, pooled.1).zip(out.chunks_exact_mut(CONV1)) {
                        let (row, col) = (row * 2, col * 2);
                        out.fill(0.0);
                        for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let start = ((row + dy) * conv1.1 + col + dx) * CONV1;
                            for (o, &v) in out.iter_mut().zip(&maps[start..start + CONV1]) {
                                *o = o.max(v);
                            }
                        }
                    }
                }
                gather_patches(&ws.pooled, batch, pooled.0, pooled.1, CONV1, &mut ws.patches2);
                let positions2 = batch * conv2.0 * conv2.1;
                ws.conv2.resize(positions2 * CONV2, 0.0);
                fill_rows(&mut ws.conv2, &parameters[b2..b2 + CONV2]);
                let weight2 = View::rows(&parameters[w2..b2], CONV2);
                matmul(positions2, CONV2, 4 * CONV1, &mut ws.conv2, View::rows(&ws.patches2, 4 * CONV1), weight2, true);
                // Conv 3 reads the ReLU of conv 2; the pre-activations stay for the backward.
                ws.embedding.clear();
                ws.embedding.extend(ws.conv2.iter().map(|v| v.max(0.0)));
                gather_patches(&ws.embedding, batch, conv2.0, conv2.1, CONV2, &mut ws.patches3);
                let positions3 = batch * conv3.0 * conv3.1;
                ws.conv3.resize(positions3 * CONV3, 0.0);
                fill_rows(&mut ws.conv3, &parameters[b3..b3 + CONV3]);
                let weight3 = View::rows(&parameters[w3..b3], CONV3);
                matmul(positions3, CONV3, 4 * CONV2, &mut ws.conv3, View::rows(&ws.patches3, 4 * CONV2), weight3, true);
                ws.embedding.clear();
                ws.embedding.extend_from_slice(&ws.conv3);
                relu_in_place(&mut ws.embedding);
            }
            Body::Mlp => {
                let [w1, b1, w2, b2] = [0, 1, 2, 3].map(|i| self.offsets.encoder[i]);
                let inputs_len = self.rows * self.cols * self.channels;
                // fc1's weight is [HIDDEN, inputs]; its rows per input make the sparse sum contiguous.
                ws.transposed.resize(inputs_len * HIDDEN, 0.0);
                for (output, row) in parameters[w1..b1].chunks_exact(inputs_len).enumerate() {
                    for (input, &w) in row.iter().enumerate() {
                        ws.transposed[input * HIDDEN + output] = w;
                    }
                }
                let bias1: &[f32; HIDDEN] = parameters[b1..b1 + HIDDEN].try_into().expect("fc1 bias");
                ws.hidden1.resize(batch * HIDDEN, 0.0);
                let raw_channels = self.channel_offsets.len();
                for (&sample, out) in samples.iter().zip(ws.hidden1.chunks_exact_mut(HIDDEN)) {
                    let mut sum = *bias1;
                    for (index, &channel) in observation(sample).iter().enumerate() {
                        if channel != NO_CHANNEL {
                            let input = index / raw_channels * self.channels + usize::from(channel);
                            let weights: &[f32; HIDDEN] =
                                ws.transposed[input * HIDDEN..(input + 1) * HIDDEN].try_into().expect("fc1 row");
                            for (s, w) in sum.iter_mut().zip(weights) {
                                *s += w;
                            }
                        }
                    }
                    for (o, s) in out.iter_mut().zip(sum) {
                        *o = fast_tanh(s);
                    }
                }
                ws.embedding.resize(batch * HIDDEN, 0.0);
                fill_rows(&mut ws.embedding, &parameters[b2..b2 + HIDDEN]);
                let weight2 = View::transposed(&parameters[w2..b2], HIDDEN);
                matmul(batch, HIDDEN, HIDDEN, &mut ws.embedding, View::rows(&ws.hidden1, HIDDEN), weight2, true);
                tanh_in_place(&mut ws.embedding);
            }
        }
        // Heads: Linear weights are [outputs, inputs], so each product reads them transposed.
        let embedding = self.embedding;
        let heads = [
            (self.offsets.actor, NUM_ACTIONS, &mut ws.actor_hidden, &mut ws.logits),
            (self.offsets.critic, 1, &mut ws.critic_hidden, &mut ws.values),
        ];
        for ([w1, b1, w2, b2], outputs, hidden, out) in heads {
            hidden.resize(batch * HIDDEN, 0.0);
            fill_rows(hidden, &parameters[b1..b1 + HIDDEN]);
            let weight1 = View::transposed(&parameters[w1..b1], embedding);
            matmul(batch, HIDDEN, embedding, hidden, View::rows(&ws.embedding, embedding), weight1, true);
            tanh_in_place(hidden);
            out.resize(batch * outputs, 0.0);
            fill_rows(out, &parameters[b2..b2 + outputs]);
            let weight2 = View::transposed(&parameters[w2..b2], HIDDEN);
            matmul(batch, outputs, HIDDEN, out, View::rows(hidden, HIDDEN), weight2, true);
        }
    }

    /// Gradients of the loss with respect to every parameter (into `grads`, flat, in the
    /// model's order), given its gradients with respect to the logits `[batch, 7]` and values
    /// `[batch]` of the last `forward` (same `inputs`, `samples` and `parameters`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        inputs: &[u16],
        samples: &[u32],
        parameters: &[f32],
        grad_logits: &[f32],
        grad_values: &[f32],
        workspace: &mut Workspace,
        grads: &mut [f32],
    ) {
        let arguments = (inputs, samples, parameters, grad_logits, grad_values);
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has the features the function is compiled for.
                return unsafe { self.backward_avx512(arguments, workspace, grads) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.backward_avx2(arguments, workspace, grads) };
            }
        }
        self.backward_portable(arguments, workspace, grads)
    }

    /// `backward` with 512-bit vectors (elementwise loops: the same results).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn backward_avx512(&self, arguments: BackwardArguments, workspace: &mut Workspace, grads: &mut [f32]) {
        self.backward_portable(arguments, workspace, grads)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn backward_avx2(&self, arguments: BackwardArguments, workspace: &mut Workspace, grads: &mut [f32]) {
        self.backward_portable(arguments, workspace, grads)
    }

    #[inline(always)]
    fn backward_portable(&self, arguments: BackwardArguments, workspace: &mut Workspace, grads: &mut [f32]) {
        let (inputs, samples, parameters, grad_logits, grad_values) = arguments;
        let batch = samples.len();
        assert_eq!(batch, workspace.batch, "backward after a forward of another batch");
        assert_eq!(grads.len(), self.total, "gradient vector of the wrong length");
        let ws = workspace;
        let embedding = self.embedding;
        ws.grad_embedding.resize(batch * embedding, 0.0);
        let heads = [
            (self.offsets.actor, NUM_ACTIONS, &ws.actor_hidden, grad_logits),
            (self.offsets.critic, 1, &ws.critic_hidden, grad_values),
        ];
        for (head, ([w1, b1, w2, b2], outputs, hidden, grad_out)) in heads.into_iter().enumerate() {
            // fc2: dW = dout^T h, db = sum dout, dh = dout W.
            matmul(
                outputs,
                HIDDEN,
                batch,
                &mut grads[w2..b2],
                View::transposed(grad_out, outputs),
                View::rows(hidden, HIDDEN),
                false,
            );
            grads[b2..b2 + outputs].fill(0.0);
            add_column_sums(grad_out, outputs, &mut grads[b2..b2 + outputs]);
            ws.grad_a.resize(batch * HIDDEN, 0.0);
            matmul(
                batch,
                HIDDEN,
                outputs,
                &mut ws.grad_a,
                View::rows(grad_out, outputs),
                View::rows(&parameters[w2..b2], HIDDEN),
                false,
            );
            tanh_backward(&mut ws.grad_a, hidden);
            // fc1: dW = dpre^T embedding, db = sum dpre, d embedding += dpre W.
            matmul(
                HIDDEN,
                embedding,
                batch,
                &mut grads[w1..b1],
                View::transposed(&ws.grad_a, HIDDEN),
                View::rows(&ws.embedding, embedding),
                false,
            );
            grads[b1..b1 + HIDDEN].fill(0.0);
            add_column_sums(&ws.grad_a, HIDDEN, &mut grads[b1..b1 + HIDDEN]);
            matmul(
                batch,
                embedding,
                HIDDEN,
                &mut ws.grad_embedding,
                View::rows(&ws.grad_a, HIDDEN),
                View::rows(&parameters[w1..b1], embedding),
                head > 0,
            );
        }
        let per_observation = self.input_len();
        let observation = |sample: u32| &inputs[sample as usize * per_observation..][..per_observation];
        match self.body {
            Body::Cnn { conv1, pooled, conv2, conv3 } => {
                let [w1, b1, w2, b2, w3, b3] = [0, 1, 2, 3, 4, 5].map(|i| self.offsets.encoder[i]);
                // Conv 3 (its ReLU first).
                relu_backward(&mut ws.grad_embedding, &ws.conv3);
                let positions3 = batch * conv3.0 * conv3.1;
                let grad3 = &ws.grad_embedding;
                matmul(
                    4 * CONV2,
                    CONV3,
                    positions3,
                    &mut grads[w3..b3],
                    View::transposed(&ws.patches3, 4 * CONV2),
                    View::rows(grad3, CONV3),
                    false,
                );
                grads[b3..b3 + CONV3].fill(0.0);
                add_column_sums(grad3, CONV3, &mut grads[b3..b3 + CONV3]);
                ws.grad_a.resize(positions3 * 4 * CONV2, 0.0);
                matmul(
                    positions3,
                    4 * CONV2,
                    CONV3,
                    &mut ws.grad_a,
                    View::rows(grad3, CONV3),
                    View::transposed(&parameters[w3..b3], CONV3),
                    false,
                );
                let positions2 = batch * conv2.0 * conv2.1;
                ws.grad_b.resize(positions2 * CONV2, 0.0);
                scatter_patches(&ws.grad_a, batch, conv2.0, conv2.1, CONV2, &mut ws.grad_b);
                relu_backward(&mut ws.grad_b, &ws.conv2);
                // Conv 2.
                matmul(
                    4 * CONV1,
                    CONV2,
                    positions2,
                    &mut grads[w2..b2],
                    View::transposed(&ws.patches2, 4 * CONV1),
                    View::rows(&ws.grad_b, CONV2),
                    false,
                );
                grads[b2..b2 + CONV2].fill(0.0);
                add_column_sums(&ws.grad_b, CONV2, &mut grads[b2..b2 + CONV2]);
                ws.grad_a.resize(positions2 * 4 * CONV1, 0.0);
                matmul(
                    positions2,
                    4 * CONV1,
                    CONV2,
                    &mut ws.grad_a,
                    View::rows(&ws.grad_b, CONV2),
                    View::transposed(&parameters[w2..b2], CONV2),
                    false,
                );
                let pooled_len = pooled.0 * pooled.1 * CONV1;
                ws.grad_b.resize(batch * pooled_len, 0.0);
                scatter_patches(&ws.grad_a, batch, pooled.0, pooled.1, CONV1, &mut ws.grad_b);
                // Max-pool and ReLU, then conv 1: each conv-1 cell in a pool window gets the
                // window's gradient where it equals the window's maximum and is >= 0.
                grads[w1..b1 + CONV1].fill(0.0);
                let raw_channels = self.channel_offsets.len();
                let conv1_len = conv1.0 * conv1.1 * CONV1;
                if let Some(kinds) = self.cell_kinds {
                    ws.table_grad.clear();
                    ws.table_grad.resize(4 * kinds * CONV1, 0.0);
                }
                let mut bias_grad = [0.0f32; CONV1];
                for (index, &sample) in samples.iter().enumerate() {
                    let cells = observation(sample);
                    let maps = &ws.conv1[index * conv1_len..(index + 1) * conv1_len];
                    let maxima = &ws.pooled[index * pooled_len..(index + 1) * pooled_len];
                    let grad_pooled = &ws.grad_b[index * pooled_len..(index + 1) * pooled_len];
                    for (cell, (row, col)) in map_cells(pooled.0, pooled.1).enumerate() {
                        let (row, col) = (row * 2, col * 2);
                        let maximum = &maxima[cell * CONV1..(cell + 1) * CONV1];
                        let grad_cell = &grad_pooled[cell * CONV1..(cell + 1) * CONV1];
                        for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let (r, c) = (row + dy, col + dx);
                            let pre = &maps[(r * conv1.1 + c) * CONV1..][..CONV1];
                            let mut grad = [0.0f32; CONV1];
                            for channel in 0..CONV1 {
                                let passes = pre[channel] >= 0.0 && pre[channel] == maximum[channel];
                                grad[channel] = if passes { grad_cell[channel] } else { 0.0 };
                            }
                            if grad.iter().all(|&g| g == 0.0) {
                                continue;
                            }
                            for (b, g) in bias_grad.iter_mut().zip(&grad) {
                                *b += g;
                            }
                            for tap in 0..4 {
                                let input_cell = (r + tap / 2) * self.cols + c + tap % 2;
                                if let Some(kinds) = self.cell_kinds {
                                    let kind = usize::from(cells[input_cell]);
                                    let start = (tap * kinds + kind) * CONV1;
                                    for (t, g) in ws.table_grad[start..start + CONV1].iter_mut().zip(&grad) {
                                        *t += g;
                                    }
                                    continue;
                                }
                                for &channel in &cells[input_cell * raw_channels..(input_cell + 1) * raw_channels] {
                                    if channel != NO_CHANNEL {
                                        let start = w1 + (tap * self.channels + usize::from(channel)) * CONV1;
                                        for (w, g) in grads[start..start + CONV1].iter_mut().zip(&grad) {
                                            *w += g;
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                // With the table: each cell kind's gradient goes to the weight rows it summed.
                if let Some(kinds) = self.cell_kinds {
                    for (kind, channels) in self.kind_channels.chunks_exact(raw_channels).enumerate() {
                        for tap in 0..4 {
                            let sums = &ws.table_grad[(tap * kinds + kind) * CONV1..][..CONV1];
                            if sums.iter().all(|&g| g == 0.0) {
                                continue;
                            }
                            for &channel in channels.iter().filter(|&&c| c != NO_CHANNEL) {
                                let start = w1 + (tap * self.channels + usize::from(channel)) * CONV1;
                                for (w, g) in grads[start..start + CONV1].iter_mut().zip(sums) {
                                    *w += g;
                                }
                            }
                        }
                    }
                }
                grads[b1..b1 + CONV1].copy_from_slice(&bias_grad);
            }
            Body::Mlp => {
                let [w1, b1, w2, b2] = [0, 1, 2, 3].map(|i| self.offsets.encoder[i]);
                tanh_backward(&mut ws.grad_embedding, &ws.embedding);
                matmul(
                    HIDDEN,
                    HIDDEN,
                    batch,
                    &mut grads[w2..b2],
                    View::transposed(&ws.grad_embedding, HIDDEN),
                    View::rows(&ws.hidden1, HIDDEN),
                    false,
                );
                grads[b2..b2 + HIDDEN].fill(0.0);
                add_column_sums(&ws.grad_embedding, HIDDEN, &mut grads[b2..b2 + HIDDEN]);
                ws.grad_a.resize(batch * HIDDEN, 0.0);
                matmul(
                    batch,
                    HIDDEN,
                    HIDDEN,
                    &mut ws.grad_a,
                    View::rows(&ws.grad_embedding, HIDDEN),
                    View::rows(&parameters[w2..b2], HIDDEN),
                    false,
                );
                tanh_backward(&mut ws.grad_a, &ws.hidden1);
                // fc1: gradient rows per active input, transposed back into [HIDDEN, inputs].
                let inputs_len = self.rows * self.cols * self.channels;
                ws.transposed.resize(inputs_len * HIDDEN, 0.0);
                ws.transposed.fill(0.0);
                let raw_channels = self.channel_offsets.len();
                let mut bias_grad = [0.0f32; HIDDEN];
                for (&sample, grad) in samples.iter().zip(ws.grad_a.chunks_exact(HIDDEN)) {
                    for (b, g) in bias_grad.iter_mut().zip(grad) {
                        *b += g;
                    }
                    for (index, &channel) in observation(sample).iter().enumerate() {
                        if channel != NO_CHANNEL {
                            let input = index / raw_channels * self.channels + usize::from(channel);
                            for (w, g) in ws.transposed[input * HIDDEN..(input + 1) * HIDDEN].iter_mut().zip(grad) {
                                *w += g;
                            }
                        }
                    }
                }
                for (output, row) in grads[w1..b1].chunks_exact_mut(inputs_len).enumerate() {
                    for (input, w) in row.iter_mut().enumerate() {
                        *w = ws.transposed[input * HIDDEN + output];
                    }
                }
                grads[b1..b1 + HIDDEN].copy_from_slice(&bias_grad);
            }
        }
    }
}

/// Hyper-parameters of the PPO loss.
#[derive(Clone, Copy, Debug)]
pub struct LossCoefficients {
    pub clip: f32,
    /// Clip range of the value loss; None for the plain squared error.
    pub value_clip: Option<f32>,
    pub entropy: f32,
    pub value: f32,
    /// Weight of KL(teacher ‖ student); the term is left out at 0.
    pub distill_lambda: f32,
}

/// One minibatch's targets, indexed like the forward's samples.
pub struct LossTargets<'a> {
    pub actions: &'a [u32],
    pub old_log_probs: &'a [f32],
    pub advantages: &'a [f32],
    pub old_values: &'a [f32],
    pub returns: &'a [f32],
    /// `[batch, NUM_ACTIONS]`.
    pub teacher_probs: &'a [f32],
    pub teacher_mask: &'a [bool],
}

/// The loss terms of one minibatch (the statistics `UpdateStats` averages).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinibatchLoss {
    pub policy: f32,
    pub value: f32,
    pub entropy: f32,
    pub approx_kl: f32,
    pub clip_fraction: f32,
    /// KL(teacher ‖ student) over the advised samples; None when none was advised.
    pub teacher_kl: Option<f32>,
}

/// How much of a gradient passes a `clamp(x, low, high)` (candle: `maximum` then `minimum`,
/// a tie at a bound passes half).
fn clamp_pass(x: f32, low: f32, high: f32) -> f32 {
    if x > low && x < high {
        1.0
    } else if x == low || x == high {
        0.5
    } else {
        0.0
    }
}

/// Shares of a gradient that reach the two sides of `minimum(a, b)` / `maximum(a, b)`
/// (`want_smaller` for the minimum): the chosen side gets it all, a tie splits it.
fn choice_shares(a: f32, b: f32, want_smaller: bool) -> (f32, f32) {
    if a == b {
        (0.5, 0.5)
    } else if (a < b) == want_smaller {
        (1.0, 0.0)
    } else {
        (0.0, 1.0)
    }
}

/// PPO's loss (clipped surrogate - entropy bonus + value loss + λ · masked KL to the teacher)
/// on `logits` `[batch, 7]` and `values` `[batch]`: its terms, and its gradient with respect
/// to both (into `grad_logits`, `grad_values`), as candle's autograd of `ppo.rs`'s loss gives it.
pub fn ppo_loss_gradient(
    logits: &[f32],
    values: &[f32],
    targets: &LossTargets,
    coefficients: &LossCoefficients,
    grad_logits: &mut Vec<f32>,
    grad_values: &mut Vec<f32>,
) -> MinibatchLoss {
    let batch = values.len();
    grad_logits.clear();
    grad_logits.resize(batch * NUM_ACTIONS, 0.0);
    grad_values.clear();
    grad_values.resize(batch, 0.0);
    let per_sample = 1.0 / batch as f32;
    let advised = targets.teacher_mask.iter().filter(|&&m| m).count();
    let distill = advised > 0 && coefficients.distill_lambda > 0.0;
    let kl_weight = coefficients.distill_lambda / advised.max(1) as f32;
    let (low, high) = (1.0 - coefficients.clip, 1.0 + coefficients.clip);
    let mut sums = [0.0f32; 6]; // policy, value, entropy, approx-KL, clipped, teacher KL
    for sample in 0..batch {
        let z = &logits[sample * NUM_ACTIONS..(sample + 1) * NUM_ACTIONS];
        let maximum = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum_exp: f32 = z.iter().map(|&v| (v - maximum).exp()).sum();
        let log_sum = sum_exp.ln();
        let mut log_probs = [0.0f32; NUM_ACTIONS];
        let mut probs = [0.0f32; NUM_ACTIONS];
        for action in 0..NUM_ACTIONS {
            log_probs[action] = (z[action] - maximum) - log_sum;
            probs[action] = log_probs[action].exp();
        }
        // Gradient with respect to the log-probabilities first.
        let mut grad = [0.0f32; NUM_ACTIONS];
        // Entropy: the loss has -c_e * mean(-sum p log p).
        let mut plogp = 0.0f32;
        for action in 0..NUM_ACTIONS {
            plogp += probs[action] * log_probs[action];
            grad[action] += coefficients.entropy * per_sample * probs[action] * (log_probs[action] + 1.0);
        }
        sums[2] -= plogp;
        // Clipped surrogate.
        let action = targets.actions[sample] as usize;
        let log_ratio = log_probs[action] - targets.old_log_probs[sample];
        let ratio = log_ratio.exp();
        let advantage = targets.advantages[sample];
        let unclipped = ratio * advantage;
        let clipped = ratio.clamp(low, high) * advantage;
        sums[0] += unclipped.min(clipped);
        let (to_unclipped, to_clipped) = choice_shares(unclipped, clipped, true);
        let share = to_unclipped + to_clipped * clamp_pass(ratio, low, high);
        grad[action] -= per_sample * advantage * share * ratio;
        sums[3] += (ratio - 1.0) - log_ratio;
        if (ratio - 1.0).abs() > coefficients.clip {
            sums[4] += 1.0;
        }
        // KL(teacher ‖ student) on advised samples.
        if targets.teacher_mask[sample] {
            let teacher = &targets.teacher_probs[sample * NUM_ACTIONS..(sample + 1) * NUM_ACTIONS];
            let mut kl = 0.0f32;
            for a in 0..NUM_ACTIONS {
                kl += teacher[a] * (teacher[a].clamp(1e-12, 1.0).ln() - log_probs[a]);
                if distill {
                    grad[a] -= kl_weight * teacher[a];
                }
            }
            sums[5] += kl;
        }
        // Through the log-softmax: dz = g - softmax * sum(g).
        let grad_sum: f32 = grad.iter().sum();
        for a in 0..NUM_ACTIONS {
            grad_logits[sample * NUM_ACTIONS + a] = grad[a] - probs[a] * grad_sum;
        }
        // Value loss.
        let value = values[sample];
        let target = targets.returns[sample];
        let error = value - target;
        let squared = error * error;
        let value_grad = match coefficients.value_clip {
            None => {
                sums[1] += squared;
                2.0 * error
            }
            Some(clip) => {
                let old = targets.old_values[sample];
                let change = value - old;
                let clipped_error = (old + change.clamp(-clip, clip)) - target;
                let clipped_squared = clipped_error * clipped_error;
                sums[1] += squared.max(clipped_squared);
                let (to_unclipped, to_clipped) = choice_shares(squared, clipped_squared, false);
                to_unclipped * 2.0 * error + to_clipped * 2.0 * clipped_error * clamp_pass(change, -clip, clip)
            }
        };
        grad_values[sample] = coefficients.value * per_sample * value_grad;
    }
    MinibatchLoss {
        policy: -sums[0] * per_sample,
        value: sums[1] * per_sample,
        entropy: sums[2] * per_sample,
        approx_kl: sums[3] * per_sample,
        clip_fraction: sums[4] * per_sample,
        teacher_kl: (advised > 0).then(|| sums[5] / advised as f32),
    }
}

/// Log-probabilities of each row of `logits` (`[batch, 7]`), as `ppo_loss_gradient` computes them.
pub fn log_softmax_rows(logits: &[f32]) -> Vec<[f32; NUM_ACTIONS]> {
    logits
        .chunks_exact(NUM_ACTIONS)
        .map(|z| {
            let maximum = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let log_sum = z.iter().map(|&v| (v - maximum).exp()).sum::<f32>().ln();
            std::array::from_fn(|a| (z[a] - maximum) - log_sum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::env::scene::StudentSpec;
    use crate::student::buffer::RolloutBuffer;
    use crate::student::model::ActorCritic;
    use crate::student::ppo::{MinibatchColumns, Student, candle_minibatch_loss};

    fn egocentric() -> ObservationLayout {
        ObservationLayout { rows: 7, cols: 7, cardinalities: vec![11, 6, 3] }
    }

    /// Observations with every channel in range but one value in 50 out of range (all zeros).
    fn random_observations(layout: &ObservationLayout, count: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let cells = count * layout.rows * layout.cols;
        let mut raw = Vec::with_capacity(cells * layout.cardinalities.len());
        for _ in 0..cells {
            for &cardinality in &layout.cardinalities {
                let value = if rng.random_range(0..50) == 0 { 200 } else { rng.random_range(0..cardinality) as u8 };
                raw.push(value);
            }
        }
        raw
    }

    fn normal(rng: &mut ChaCha8Rng) -> f32 {
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// Targets around the model's own outputs so that ratios fall on both sides of the clip
    /// range and value changes on both sides of the value clip; every third sample advised,
    /// some teacher probabilities exactly 0.
    fn random_targets(log_probs: &[[f32; NUM_ACTIONS]], values: &[f32], rng: &mut ChaCha8Rng) -> MinibatchColumns {
        let mut batch = MinibatchColumns::default();
        for (sample, (row, &value)) in log_probs.iter().zip(values).enumerate() {
            let action = rng.random_range(0..NUM_ACTIONS);
            batch.actions.push(action as u32);
            batch.old_log_probs.push(row[action] + 0.3 * normal(rng));
            batch.advantages.push(normal(rng));
            batch.old_values.push(value + 0.3 * normal(rng));
            batch.returns.push(value + normal(rng));
            let mut teacher: [f32; NUM_ACTIONS] =
                std::array::from_fn(|_| if rng.random_range(0..3) == 0 { 0.0 } else { rng.random::<f32>() });
            teacher[rng.random_range(0..NUM_ACTIONS)] += 0.5;
            let total: f32 = teacher.iter().sum();
            batch.teacher_probs.extend(teacher.iter().map(|p| p / total));
            batch.teacher_mask.push(sample % 3 == 0);
        }
        batch
    }

    fn flat_gradient(model: &ActorCritic, grads: &candle_core::backprop::GradStore) -> Vec<Vec<f32>> {
        model
            .parameters()
            .iter()
            .map(|(_, var)| {
                grads
                    .get(var.as_tensor())
                    .map(|g| g.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("grad"))
                    .unwrap_or_else(|| vec![0.0; var.elem_count()])
            })
            .collect()
    }

    /// Quantises conv 1's weights and bias to multiples of 1/4 so that, over one-hot inputs,
    /// its outputs are exact: many are exactly 0 (ReLU at 0) and pool windows tie.
    fn quantize_first_layer(model: &ActorCritic, rng: &mut ChaCha8Rng) {
        for (name, var) in model.parameters() {
            if name.starts_with("encoder.conv1") {
                let values: Vec<f32> =
                    (0..var.elem_count()).map(|_| rng.random_range(-2i32..=2) as f32 * 0.25).collect();
                var.set(&Tensor::from_vec(values, var.dims(), &Device::Cpu).expect("values")).expect("set");
            }
        }
    }

    /// Fused gradients against candle's autograd of `ppo.rs`'s loss on one random minibatch;
    /// returns the fused workspace for checks on what the batch exercised.
    /// `table`: conv 1 on its table of cell kinds (else weight row by weight row).
    fn compare_with_candle(
        kind: EncoderKind,
        spec: StudentSpec,
        lambda: f64,
        seed: u64,
        quantize: bool,
        table: bool,
    ) -> Workspace {
        compare_with_candle_scaled(egocentric(), kind, spec, lambda, seed, quantize, table, 1.0)
    }

    /// `logit_scale` multiplies the actor's last layer: large values make the policy nearly
    /// deterministic (log-probabilities far below 0, entropy near 0), as late in training.
    #[allow(clippy::too_many_arguments)]
    fn compare_with_candle_scaled(
        layout: ObservationLayout,
        kind: EncoderKind,
        spec: StudentSpec,
        lambda: f64,
        seed: u64,
        quantize: bool,
        table: bool,
        logit_scale: f32,
    ) -> Workspace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let model = ActorCritic::new(layout.clone(), kind, seed).expect("model");
        if quantize {
            quantize_first_layer(&model, &mut rng);
        }
        for (name, var) in model.parameters() {
            if name == "actor.fc2.weight" {
                var.set(&(var.as_tensor() * f64::from(logit_scale)).expect("scaled")).expect("set");
            }
        }
        let mut network = FusedNetwork::new(&layout, kind, model.parameters()).expect("fused").expect("covered");
        let kinds: usize = layout.cardinalities.iter().map(|c| c + 1).product();
        let expected_kinds = (kind == EncoderKind::Cnn).then_some(kinds);
        assert_eq!(network.cell_kinds, expected_kinds);
        if !table {
            network.cell_kinds = None;
        }
        let batch_size = 96;
        let raw = random_observations(&layout, batch_size, &mut rng);
        let parameters = network.flatten(model.parameters()).expect("flatten");
        let inputs = network.sparse_inputs(&raw);
        let samples: Vec<u32> = (0..batch_size as u32).collect();
        let mut workspace = Workspace::default();
        network.forward(&inputs, &samples, &parameters, &mut workspace);

        // The forward pass agrees with candle's.
        let (logits, values) = model.forward(&model.input(&raw).expect("input")).expect("forward");
        let candle_logits: Vec<f32> = logits.flatten_all().and_then(|t| t.to_vec1()).expect("logits");
        let candle_values: Vec<f32> = values.to_vec1().expect("values");
        assert_close("logits", &workspace.logits, &candle_logits, 1e-4);
        assert_close("values", &workspace.values, &candle_values, 1e-4);

        let batch = random_targets(&log_softmax_rows(&candle_logits), &candle_values, &mut rng);
        let candle = candle_minibatch_loss(&model, &model.input(&raw).expect("input"), &batch, &spec, lambda)
            .expect("candle loss");
        let expected = flat_gradient(&model, &candle.loss.backward().expect("backward"));

        let coefficients = LossCoefficients {
            clip: spec.clip as f32,
            value_clip: spec.clip_value.then_some(spec.clip as f32),
            entropy: spec.entropy_coef as f32,
            value: spec.value_coef as f32,
            distill_lambda: lambda as f32,
        };
        let targets = batch.targets();
        let (mut grad_logits, mut grad_values) = (Vec::new(), Vec::new());
        let loss = ppo_loss_gradient(
            &workspace.logits,
            &workspace.values,
            &targets,
            &coefficients,
            &mut grad_logits,
            &mut grad_values,
        );
        let stats = candle.stats;
        for (name, ours, theirs) in [
            ("policy", loss.policy, stats.policy),
            ("value", loss.value, stats.value),
            ("entropy", loss.entropy, stats.entropy),
            ("approx_kl", loss.approx_kl, stats.approx_kl),
            ("clip_fraction", loss.clip_fraction, stats.clip_fraction),
        ] {
            assert!((ours - theirs).abs() <= 1e-4 * theirs.abs().max(1e-2), "{name}: {ours} vs {theirs}");
        }
        if logit_scale == 1.0 {
            assert!(stats.clip_fraction > 0.1 && stats.clip_fraction < 0.9, "ratios on both sides: {stats:?}");
        }
        let (ours, theirs) = (loss.teacher_kl.expect("advised"), candle.teacher_kl.expect("advised"));
        assert!((ours - theirs).abs() <= 1e-4 * theirs.abs(), "teacher KL {ours} vs {theirs}");

        let mut grads = vec![f32::NAN; network.parameter_len()];
        network.backward(&inputs, &samples, &parameters, &grad_logits, &grad_values, &mut workspace, &mut grads);
        let mut offset = 0;
        for ((name, _), expected) in model.parameters().iter().zip(&expected) {
            let ours = &grads[offset..offset + expected.len()];
            assert_close(name, ours, expected, 1e-4);
            offset += expected.len();
        }
        assert_eq!(offset, grads.len());
        workspace
    }

    /// `max |a - b| <= tolerance * max |b|` (relative to the tensor's scale).
    fn assert_close(name: &str, ours: &[f32], theirs: &[f32], tolerance: f32) {
        assert_eq!(ours.len(), theirs.len(), "{name}: lengths");
        let scale = theirs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{name}: all zero");
        let worst = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= tolerance * scale, "{name}: max difference {worst} at scale {scale}");
    }

    #[test]
    fn cnn_gradients_match_candle_autograd() {
        let spec = StudentSpec::default();
        compare_with_candle(EncoderKind::Cnn, spec.clone(), 0.7, 11, false, true);
        compare_with_candle(EncoderKind::Cnn, spec.clone(), 0.7, 11, false, false);
        // λ = 0: the KL term is reported but adds no gradient.
        compare_with_candle(EncoderKind::Cnn, StudentSpec { clip_value: false, ..spec }, 0.0, 12, false, true);
    }

    #[test]
    fn cnn_gradients_match_candle_with_relu_at_zero_and_pool_ties() {
        compare_with_candle(EncoderKind::Cnn, StudentSpec::default(), 2.0, 13, true, false);
        let workspace = compare_with_candle(EncoderKind::Cnn, StudentSpec::default(), 2.0, 13, true, true);
        // The batch did exercise both rules: exact zeros before the ReLU, tied maxima in windows.
        let zeros = workspace.conv1.iter().filter(|&&v| v == 0.0).count();
        assert!(zeros > 100, "only {zeros} pre-activations at exactly 0");
        let mut ties = 0;
        for (maps, maxima) in workspace.conv1.chunks_exact(6 * 6 * CONV1).zip(workspace.pooled.chunks_exact(9 * CONV1))
        {
            for (cell, maximum) in maxima.chunks_exact(CONV1).enumerate() {
                let (row, col) = (cell / 3 * 2, cell % 3 * 2);
                for (channel, &m) in maximum.iter().enumerate() {
                    let hits = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .filter(|(dy, dx)| maps[((row + dy) * 6 + col + dx) * CONV1 + channel] == m && m > 0.0)
                        .count();
                    ties += usize::from(hits > 1);
                }
            }
        }
        assert!(ties > 100, "only {ties} tied positive maxima");
    }

    #[test]
    fn gradients_match_candle_for_a_nearly_deterministic_policy() {
        let spec = StudentSpec::default();
        let workspace =
            compare_with_candle_scaled(egocentric(), EncoderKind::Cnn, spec.clone(), 0.5, 31, false, true, 400.0);
        let log_probs = log_softmax_rows(&workspace.logits);
        let entropy: f32 =
            log_probs.iter().map(|row| -row.iter().map(|lp| lp.exp() * lp).sum::<f32>()).sum::<f32>() / 96.0;
        assert!(entropy < 0.2, "the scaled policy is not nearly deterministic: entropy {entropy}");
        compare_with_candle_scaled(
            egocentric(),
            EncoderKind::Mlp,
            StudentSpec { encoder: EncoderKind::Mlp, ..spec },
            0.5,
            32,
            false,
            true,
            400.0,
        );
    }

    #[test]
    fn cnn_gradients_match_candle_on_the_historical_10x10_view() {
        // 4 raw channels (2,016 cell kinds), a 9x9 conv-1 map whose last row and column the
        // pool drops, and a 2x2 conv-3 map (embedding 256).
        let layout = ObservationLayout {
            rows: 10,
            cols: 10,
            cardinalities: crate::student::encoding::HISTORICAL_CARDINALITIES.to_vec(),
        };
        for table in [true, false] {
            let spec = StudentSpec::default();
            compare_with_candle_scaled(layout.clone(), EncoderKind::Cnn, spec, 0.3, 41, false, table, 1.0);
        }
    }

    #[test]
    fn mlp_gradients_match_candle_autograd() {
        let spec = StudentSpec { encoder: EncoderKind::Mlp, ..StudentSpec::default() };
        compare_with_candle(EncoderKind::Mlp, spec.clone(), 0.5, 21, false, true);
        compare_with_candle(EncoderKind::Mlp, StudentSpec { clip_value: false, ..spec }, 0.0, 22, false, true);
    }

    #[test]
    fn matmul_matches_a_plain_triple_loop() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // Widths on and off the 16-float kernel, row counts with remainders, plain and
        // transposed operands, with and without accumulation.
        for (m, n, k) in [(13, 64, 9), (7, 48, 33), (25, 32, 5), (3, 16, 70), (30, 128, 17), (9, 7, 12), (5, 1, 64)] {
            for (a_transposed, b_transposed, accumulate) in
                [(false, false, false), (true, false, true), (false, true, false), (true, true, true)]
            {
                let a_data: Vec<f32> = (0..m * k).map(|_| normal(&mut rng)).collect();
                let b_data: Vec<f32> = (0..k * n).map(|_| normal(&mut rng)).collect();
                let a = if a_transposed { View::transposed(&a_data, m) } else { View::rows(&a_data, k) };
                let b = if b_transposed { View::transposed(&b_data, k) } else { View::rows(&b_data, n) };
                let start: Vec<f32> = (0..m * n).map(|_| normal(&mut rng)).collect();
                let mut dst = start.clone();
                matmul(m, n, k, &mut dst, a, b, accumulate);
                for i in 0..m {
                    for j in 0..n {
                        let mut expected = if accumulate { f64::from(start[i * n + j]) } else { 0.0 };
                        for p in 0..k {
                            let x = a.data[i * a.row_stride + p * a.col_stride];
                            let y = b.data[p * b.row_stride + j * b.col_stride];
                            expected += f64::from(x) * f64::from(y);
                        }
                        let got = f64::from(dst[i * n + j]);
                        assert!((got - expected).abs() < 1e-4 * (1.0 + expected.abs()), "{m}x{n}x{k} ({i},{j})");
                    }
                }
            }
        }
    }

    #[test]
    fn llm4teach_stays_on_candle() {
        let layout = egocentric();
        let model = ActorCritic::new(layout.clone(), EncoderKind::Llm4Teach, 0).expect("model");
        assert!(FusedNetwork::new(&layout, EncoderKind::Llm4Teach, model.parameters()).expect("new").is_none());
    }

    /// A rollout of random observations with random rewards, done flags and advice.
    fn random_rollout(layout: &ObservationLayout, envs: usize, steps: usize, seed: u64) -> (RolloutBuffer, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rollout = RolloutBuffer::new(envs, steps, layout.raw_len());
        let mut student = Student::new_on_candle(layout.clone(), StudentSpec::default(), seed).expect("student");
        for _ in 0..steps {
            let raw = random_observations(layout, envs, &mut rng);
            let step = student.act(&raw).expect("act");
            let advice: Vec<Option<[f32; NUM_ACTIONS]>> = (0..envs)
                .map(|_| {
                    (rng.random_range(0..2) == 0).then(|| {
                        let mut p = [0.0f32; NUM_ACTIONS];
                        p[rng.random_range(0..NUM_ACTIONS)] = 1.0;
                        p
                    })
                })
                .collect();
            rollout.push_decision(&raw, &step.actions, &step.log_probs, &step.values, &advice);
            let rewards: Vec<f32> =
                (0..envs).map(|_| if rng.random_range(0..8) == 0 { rng.random() } else { 0.0 }).collect();
            let dones: Vec<bool> = rewards.iter().map(|&r| r > 0.0).collect();
            rollout.push_outcome(&rewards, &dones);
        }
        let last = (0..envs).map(|_| normal(&mut rng) * 0.1).collect();
        (rollout, last)
    }

    fn flat_parameters(student: &Student) -> Vec<f32> {
        student
            .model()
            .parameters()
            .iter()
            .flat_map(|(_, var)| var.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("values"))
            .collect()
    }

    #[test]
    fn a_fused_update_matches_the_candle_update() {
        for encoder in [EncoderKind::Cnn, EncoderKind::Mlp] {
            let layout = egocentric();
            // Two epochs of two minibatches: four Adam steps on each side.
            let spec = StudentSpec { encoder, epochs: 2, minibatch: 64, ..StudentSpec::default() };
            let (rollout, last) = random_rollout(&layout, 8, 16, 5);
            let mut fused = Student::new(layout.clone(), spec.clone(), 9).expect("student");
            let mut reference = Student::new_on_candle(layout.clone(), spec, 9).expect("student");
            assert!(fused.is_fused() && !reference.is_fused());
            let before = flat_parameters(&fused);
            assert_eq!(before, flat_parameters(&reference));
            // Acting once first leaves a table of the old parameters in the acting workspace.
            let raw = &rollout.observations[..8 * layout.raw_len()];
            let (a, b) = (fused.act(raw).expect("act"), reference.act(raw).expect("act"));
            assert_close("values before the update", &a.values, &b.values, 1e-4);
            let before_values = a.values.clone();
            let ours = fused.update(&rollout, &last, 0.5).expect("fused update");
            let theirs = reference.update(&rollout, &last, 0.5).expect("candle update");
            for (name, a, b) in [
                ("policy", ours.policy_loss, theirs.policy_loss),
                ("value", ours.value_loss, theirs.value_loss),
                ("entropy", ours.entropy, theirs.entropy),
                ("approx_kl", ours.approx_kl, theirs.approx_kl),
                ("grad_norm", ours.grad_norm, theirs.grad_norm),
                ("teacher_kl", ours.teacher_kl.expect("kl"), theirs.teacher_kl.expect("kl")),
            ] {
                assert!((a - b).abs() <= 1e-3 * b.abs().max(1e-3), "{encoder:?} {name}: {a} vs {b}");
            }
            let (after, expected) = (flat_parameters(&fused), flat_parameters(&reference));
            // Each Adam step moves a weight by at most about lr; they agree to a small part of it.
            let worst = after.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let moved = after.iter().zip(&before).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(moved > 1e-3, "{encoder:?}: the update moved nothing");
            assert!(worst <= 2e-5, "{encoder:?}: parameters differ by up to {worst}");
            // Acting reads the updated parameters: both students now agree on values.
            let (a, b) = (fused.values(raw).expect("values"), reference.values(raw).expect("values"));
            assert_close("values after the update", &a, &b, 1e-4);
            let (a, b) = (fused.act(raw).expect("act"), reference.act(raw).expect("act"));
            assert_close("acting values after the update", &a.values, &b.values, 1e-4);
            let changed = a.values.iter().zip(&before_values).any(|(x, y)| (x - y).abs() > 1e-3);
            assert!(changed, "acting still sees the old parameters");
            // Checkpointed moments have the parameters' shapes and agree too.
            let (state, reference_state) = (fused.state(), reference.state());
            for (key, tensor) in &state.tensors {
                let other = &reference_state.tensors[key];
                assert_eq!(tensor.dims(), other.dims(), "{key}");
                let a: Vec<f32> = tensor.flatten_all().and_then(|t| t.to_vec1()).expect("a");
                let b: Vec<f32> = other.flatten_all().and_then(|t| t.to_vec1()).expect("b");
                if b.iter().any(|v| *v != 0.0) {
                    assert_close(key, &a, &b, 1e-3);
                }
            }
        }
    }
}
