//! Shared by the decoders' tests: naive per-position reference maths (loops over plain
//! vectors, nothing from candle) and a writer for tiny GGUF models with chosen weights.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, IndexOp, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::lora::{LoraAdapters, LoraConfig, LoraTarget};
use super::model::{LanguageModel, LogitPositions};

/// RMSNorm epsilon of every tiny test model.
pub const EPSILON: f64 = 1e-6;

/// Largest difference allowed between a decoder's logits and the reference's.
pub const TOLERANCE: f32 = 1e-4;

pub fn random_values(rng: &mut ChaCha8Rng, count: usize, low: f32, high: f32) -> Vec<f32> {
    (0..count).map(|_| rng.random_range(low..high)).collect()
}

/// `matrix` `[out][in]` row-major times `vector`.
pub fn mat_vec(matrix: &[f32], vector: &[f32]) -> Vec<f32> {
    matrix.chunks(vector.len()).map(|row| dot(row, vector)).collect()
}

pub fn dot(left: &[f32], right: &[f32]) -> f32 {
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

pub fn add_into(target: &mut [f32], addition: &[f32]) {
    target.iter_mut().zip(addition).for_each(|(value, added)| *value += added);
}

pub fn rms_norm(values: &[f32], weight: &[f32]) -> Vec<f32> {
    let mean_square = values.iter().map(|value| value * value).sum::<f32>() / values.len() as f32;
    let scale = 1.0 / (mean_square + EPSILON as f32).sqrt();
    values.iter().zip(weight).map(|(value, weight)| value * scale * weight).collect()
}

/// The rotation angle of frequency `index` at `position`.
fn angle(position: usize, index: usize, head_dim: usize, base: f64) -> (f32, f32) {
    let angle = position as f64 * base.powf(-((2 * index) as f64) / head_dim as f64);
    (angle.sin() as f32, angle.cos() as f32)
}

/// Half-split rotation: dimension i pairs with i + head_dim / 2 (Gemma, Qwen2).
pub fn rope_halves(values: &[f32], position: usize, base: f64) -> Vec<f32> {
    let half = values.len() / 2;
    let mut rotated = values.to_vec();
    for index in 0..half {
        let (sin, cos) = angle(position, index, values.len(), base);
        rotated[index] = values[index] * cos - values[index + half] * sin;
        rotated[index + half] = values[index + half] * cos + values[index] * sin;
    }
    rotated
}

/// Adjacent-pair rotation: dimension 2i pairs with 2i + 1 (llama).
pub fn rope_pairs(values: &[f32], position: usize, base: f64) -> Vec<f32> {
    let mut rotated = values.to_vec();
    for index in 0..values.len() / 2 {
        let (sin, cos) = angle(position, index, values.len(), base);
        let (even, odd) = (values[2 * index], values[2 * index + 1]);
        rotated[2 * index] = even * cos - odd * sin;
        rotated[2 * index + 1] = odd * cos + even * sin;
    }
    rotated
}

/// One query head attending to `keys`/`values` (the visible ones), scores scaled by `scale`.
pub fn attend(query: &[f32], keys: &[&[f32]], values: &[&[f32]], scale: f32) -> Vec<f32> {
    let scores: Vec<f32> = keys.iter().map(|key| dot(query, key) * scale).collect();
    let maximum = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exponentials: Vec<f32> = scores.iter().map(|score| (score - maximum).exp()).collect();
    let total: f32 = exponentials.iter().sum();
    let mut output = vec![0.0; query.len()];
    for (value, weight) in values.iter().zip(&exponentials) {
        for (out, value) in output.iter_mut().zip(value.iter()) {
            *out += weight / total * value;
        }
    }
    output
}

/// Writes a GGUF file of f32 `tensors` (name, values, shape) and `metadata`.
pub fn write_gguf(path: &Path, metadata: &[(&str, Value)], tensors: &[(String, Vec<f32>, Vec<usize>)]) {
    let tensors: Vec<(&str, QTensor)> = tensors
        .iter()
        .map(|(name, values, shape)| {
            let tensor = Tensor::from_vec(values.clone(), shape.as_slice(), &Device::Cpu).expect("tensor");
            (name.as_str(), QTensor::quantize(&tensor, GgmlDType::F32).expect("f32 QTensor"))
        })
        .collect();
    let metadata_refs: Vec<(&str, &Value)> = metadata.iter().map(|(key, value)| (*key, value)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(name, tensor)| (*name, tensor)).collect();
    let mut file = std::fs::File::create(path).expect("create the tiny GGUF");
    candle_core::quantized::gguf_file::write(&mut file, &metadata_refs, &tensor_refs).expect("write the tiny GGUF");
}

pub fn assert_rows_close(found: &[Vec<f32>], expected: &[Vec<f32>], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: row count");
    for (position, (found_row, expected_row)) in found.iter().zip(expected).enumerate() {
        for (index, (a, b)) in found_row.iter().zip(expected_row).enumerate() {
            assert!((a - b).abs() < TOLERANCE, "{what}: position {position}, logit {index}: {a} vs {b}");
        }
    }
}

/// Tokens in [`byte_level_vocabulary`].
pub const BYTE_LEVEL_VOCABULARY_SIZE: usize = 265;

/// GPT-2's map from bytes to the printable characters byte-level pieces are spelled in.
fn byte_to_char() -> Vec<char> {
    let printable: Vec<u8> = (b'!'..=b'~').chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut extra = 0u32;
    (0..=255u8)
        .map(|byte| {
            if printable.contains(&byte) {
                char::from(byte)
            } else {
                extra += 1;
                char::from_u32(255 + extra).expect("a valid char")
            }
        })
        .collect()
}

/// Tokenizer metadata of a tiny byte-level ("gpt2") vocabulary with pre-tokenizer `pre`: the
/// 256 byte pieces (id = byte), then merges that make "Ġt" 256, "Ġth" 257, "Ġthe" 258, "Ġk" 259,
/// "Ġke" 260, "Ġkey" 261, "12" 262 and "123" 263, then `<|endoftext|>` 264 (control, eos and bos,
/// not added when encoding).
pub fn byte_level_vocabulary(pre: &str) -> Vec<(&'static str, Value)> {
    let chars = byte_to_char();
    let mut tokens: Vec<String> = chars.iter().map(char::to_string).collect();
    let space = chars[b' ' as usize];
    let merges = [
        format!("{space} t"),
        format!("{space}t h"),
        format!("{space}th e"),
        format!("{space} k"),
        format!("{space}k e"),
        format!("{space}ke y"),
        "1 2".to_string(),
        "12 3".to_string(),
    ];
    tokens.extend(merges.iter().map(|merge| merge.replace(' ', "")));
    tokens.push("<|endoftext|>".into());
    assert_eq!(tokens.len(), BYTE_LEVEL_VOCABULARY_SIZE);
    let mut types = vec![1i32; tokens.len()];
    types[BYTE_LEVEL_VOCABULARY_SIZE - 1] = 3;
    let end_of_text = (BYTE_LEVEL_VOCABULARY_SIZE - 1) as u32;
    vec![
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String(pre.into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.token_type", Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.merges", Value::Array(merges.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.eos_token_id", Value::U32(end_of_text)),
        ("tokenizer.ggml.bos_token_id", Value::U32(end_of_text)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ]
}

/// Rows of a `[positions, vocabulary]` logits tensor.
pub fn rows(logits: &Tensor) -> Vec<Vec<f32>> {
    logits.to_vec2().expect("logits rows")
}

/// Checks the differentiable path of `model` on `tokens` (at least 4): its logits equal the
/// inference forward's; fresh LoRA adapters on every projection change nothing; a loss's
/// gradient reaches every adapter's B (so it flows through every layer) and no A (B = 0 at
/// init) and matches a finite difference; adapters installed for inference give the
/// differentiable path's logits.
pub fn check_differentiable_path(model: &mut LanguageModel, tokens: &[u32]) {
    let spec = model.config().clone();
    let mut cache = model.new_cache();
    let inference = rows(&model.forward(tokens, &mut cache, LogitPositions::All).expect("forward"));
    let differentiable = rows(&model.differentiable_logits(tokens, None).expect("differentiable forward"));
    assert_rows_close(&differentiable, &inference, "differentiable against inference");

    let config = LoraConfig { rank: 2, alpha: 4.0, targets: LoraTarget::ALL.to_vec() };
    let adapters = LoraAdapters::new(&spec, config, 1).expect("adapters");
    let adapted = rows(&model.differentiable_logits(tokens, Some(&adapters)).expect("adapted forward"));
    assert_rows_close(&adapted, &inference, "fresh adapters");

    let (prompt, continuation) = tokens.split_at(tokens.len() / 2);
    let loss = |adapters: &LoraAdapters| -> Tensor {
        let log_probs = model.differentiable_log_probs(prompt, continuation, Some(adapters)).expect("log-probs");
        log_probs.sum_all().expect("sum").neg().expect("negate")
    };
    let gradients = loss(&adapters).backward().expect("backward");
    for layer in 0..spec.layer_count {
        for target in LoraTarget::ALL {
            let (down, up) = adapters.pair(layer, target).expect("an adapter on every projection");
            let largest = |var: &Var| -> f32 {
                gradients.get(var.as_tensor()).map_or(0.0, |gradient| {
                    gradient.abs().and_then(|g| g.max_all()).and_then(|g| g.to_scalar::<f32>()).expect("gradient")
                })
            };
            assert_eq!(largest(down), 0.0, "layer {layer} {target:?}: A's gradient while B is zero");
            let up_largest = largest(up);
            assert!(up_largest > 0.0 && up_largest.is_finite(), "layer {layer} {target:?}: B's gradient {up_largest}");
        }
    }

    // A finite difference on layer 0's query B[0][0]: the gradient crossed every layer above.
    let (_, up) = adapters.pair(0, LoraTarget::Query).expect("layer 0 query");
    let analytic: f32 =
        gradients.get(up.as_tensor()).expect("gradient").i((0, 0)).and_then(|g| g.to_scalar()).expect("entry");
    let step = 1e-2f32;
    let shifted = |delta: f32| -> f32 {
        let mut values: Vec<Vec<f32>> = up.as_tensor().to_vec2().expect("B");
        values[0][0] = delta;
        up.set(&Tensor::new(values, &Device::Cpu).expect("B")).expect("set B");
        loss(&adapters).to_scalar::<f32>().expect("loss")
    };
    let numeric = (shifted(step) - shifted(-step)) / (2.0 * step);
    shifted(0.0);
    assert!(
        (numeric - analytic).abs() <= 2e-2 * analytic.abs().max(1e-2),
        "finite difference {numeric} against gradient {analytic}"
    );

    // Non-zero adapters: the inference passes with them installed agree with the
    // differentiable path.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for var in adapters.vars() {
        let count = var.as_tensor().elem_count();
        let values = random_values(&mut rng, count, -0.3, 0.3);
        var.set(&Tensor::from_vec(values, var.as_tensor().shape(), &Device::Cpu).expect("values")).expect("set");
    }
    let adapted = rows(&model.differentiable_logits(tokens, Some(&adapters)).expect("adapted forward"));
    model.set_adapters(Some(std::sync::Arc::new(adapters))).expect("install the adapters");
    let mut cache = model.new_cache();
    let installed = rows(&model.forward(tokens, &mut cache, LogitPositions::All).expect("adapted inference"));
    assert_rows_close(&installed, &adapted, "installed adapters against the differentiable path");
    assert!(
        installed.iter().flatten().zip(inference.iter().flatten()).any(|(a, b)| (a - b).abs() > 1e-3),
        "non-zero adapters change the logits"
    );
    model.set_adapters(None).expect("remove the adapters");
}
