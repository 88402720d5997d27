//! llama and Qwen2 on tiny random models written as GGUF by the tests: the real loader and
//! forward pass against a naive per-position reference (rope layouts, biases, GQA, tied and
//! separate output heads, Llama 3 frequency factors), and cached appends.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::model::{LanguageModel, LogitPositions, ModelOptions};
use super::super::test_support::{
    BYTE_LEVEL_VOCABULARY_SIZE, EPSILON, add_into, assert_rows_close, attend, byte_level_vocabulary,
    check_differentiable_path, mat_vec, random_values, rms_norm, rope_halves, rope_pairs, rows, write_gguf,
};
use super::super::tokenizer::GgufTokenizer;
use super::*;

const VOCABULARY: usize = 48;
const HIDDEN: usize = 16;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 4;
const FEED_FORWARD: usize = 20;
const LAYERS: usize = 2;
const CONTEXT: usize = 64;
const ROPE_BASE: f64 = 500.0;

/// `[out][in]` row-major weights of one layer, as the GGUF holds them.
struct ReferenceLayer {
    attention_norm: Vec<f32>,
    query: Vec<f32>,
    key: Vec<f32>,
    value: Vec<f32>,
    /// q, k, v biases (Qwen2).
    biases: Option<[Vec<f32>; 3]>,
    attention_output: Vec<f32>,
    feed_forward_norm: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
}

struct ReferenceModel {
    variant: LlamaVariant,
    vocabulary: usize,
    embedding: Vec<f32>,
    /// `None`: tied to the embeddings.
    output: Option<Vec<f32>>,
    layers: Vec<ReferenceLayer>,
    output_norm: Vec<f32>,
    /// Llama 3's per-frequency divisors.
    frequency_factors: Option<Vec<f32>>,
}

fn silu(value: f32) -> f32 {
    value / (1.0 + (-value).exp())
}

impl ReferenceModel {
    fn random(seed: u64, variant: LlamaVariant, tied: bool, frequency_factors: Option<Vec<f32>>) -> Self {
        Self::random_with_vocabulary(seed, variant, tied, frequency_factors, VOCABULARY)
    }

    fn random_with_vocabulary(
        seed: u64,
        variant: LlamaVariant,
        tied: bool,
        frequency_factors: Option<Vec<f32>>,
        vocabulary: usize,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut matrix = |rows: usize, columns: usize| random_values(&mut rng, rows * columns, -0.4, 0.4);
        let embedding = matrix(vocabulary, HIDDEN);
        let output = (!tied).then(|| matrix(vocabulary, HIDDEN));
        let mut layers = Vec::new();
        for _ in 0..LAYERS {
            layers.push(ReferenceLayer {
                attention_norm: Vec::new(),
                query: matrix(HEADS * HEAD_DIM, HIDDEN),
                key: matrix(KV_HEADS * HEAD_DIM, HIDDEN),
                value: matrix(KV_HEADS * HEAD_DIM, HIDDEN),
                biases: (variant == LlamaVariant::Qwen2).then(|| {
                    [matrix(1, HEADS * HEAD_DIM), matrix(1, KV_HEADS * HEAD_DIM), matrix(1, KV_HEADS * HEAD_DIM)]
                }),
                attention_output: matrix(HIDDEN, HEADS * HEAD_DIM),
                feed_forward_norm: Vec::new(),
                gate: matrix(FEED_FORWARD, HIDDEN),
                up: matrix(FEED_FORWARD, HIDDEN),
                down: matrix(HIDDEN, FEED_FORWARD),
            });
        }
        let mut norm = |size: usize| random_values(&mut rng, size, 0.5, 1.5);
        for layer in &mut layers {
            layer.attention_norm = norm(HIDDEN);
            layer.feed_forward_norm = norm(HIDDEN);
        }
        let output_norm = norm(HIDDEN);
        Self { variant, vocabulary, embedding, output, layers, output_norm, frequency_factors }
    }

    /// Rotates one head at `position`, in the variant's layout, with the frequency factors
    /// applied by stretching the position per frequency pair.
    fn rope(&self, values: &[f32], position: usize) -> Vec<f32> {
        let rotate = |values: &[f32], position: usize| match self.variant {
            LlamaVariant::Llama => rope_pairs(values, position, ROPE_BASE),
            LlamaVariant::Qwen2 => rope_halves(values, position, ROPE_BASE),
        };
        let Some(factors) = &self.frequency_factors else { return rotate(values, position) };
        // A factor f divides frequency i: rotate pair i alone, as the table computes it.
        let half = values.len() / 2;
        let mut rotated = values.to_vec();
        for (index, factor) in factors.iter().enumerate() {
            let angle = position as f64 * ROPE_BASE.powf(-((2 * index) as f64) / values.len() as f64) / *factor as f64;
            let (sin, cos) = (angle.sin() as f32, angle.cos() as f32);
            let (a, b) = match self.variant {
                LlamaVariant::Llama => (2 * index, 2 * index + 1),
                LlamaVariant::Qwen2 => (index, index + half),
            };
            rotated[a] = values[a] * cos - values[b] * sin;
            rotated[b] = values[b] * cos + values[a] * sin;
        }
        rotated
    }

    /// Logits at every position of `tokens`, computed position by position with loops.
    fn logits(&self, tokens: &[u32]) -> Vec<Vec<f32>> {
        let mut hidden: Vec<Vec<f32>> =
            tokens.iter().map(|&token| self.embedding[token as usize * HIDDEN..][..HIDDEN].to_vec()).collect();
        for layer in &self.layers {
            let mut queries = Vec::new();
            let mut keys = Vec::new();
            let mut values = Vec::new();
            for (position, state) in hidden.iter().enumerate() {
                let input = rms_norm(state, &layer.attention_norm);
                let heads = |weight: &[f32], bias: Option<&Vec<f32>>, count: usize, rotate: bool| -> Vec<Vec<f32>> {
                    let mut projected = mat_vec(weight, &input);
                    if let Some(bias) = bias {
                        add_into(&mut projected, bias);
                    }
                    (0..count)
                        .map(|head| {
                            let slice = &projected[head * HEAD_DIM..][..HEAD_DIM];
                            if rotate { self.rope(slice, position) } else { slice.to_vec() }
                        })
                        .collect()
                };
                let bias = |index: usize| layer.biases.as_ref().map(|biases| &biases[index]);
                queries.push(heads(&layer.query, bias(0), HEADS, true));
                keys.push(heads(&layer.key, bias(1), KV_HEADS, true));
                values.push(heads(&layer.value, bias(2), KV_HEADS, false));
            }
            for (position, state) in hidden.iter_mut().enumerate() {
                let mut merged = Vec::new();
                for (head, query) in queries[position].iter().enumerate() {
                    let kv_head = head / (HEADS / KV_HEADS);
                    let visible_keys: Vec<&[f32]> = (0..=position).map(|key| &keys[key][kv_head][..]).collect();
                    let visible_values: Vec<&[f32]> = (0..=position).map(|key| &values[key][kv_head][..]).collect();
                    merged.extend(attend(query, &visible_keys, &visible_values, 1.0 / (HEAD_DIM as f32).sqrt()));
                }
                add_into(state, &mat_vec(&layer.attention_output, &merged));
                let input = rms_norm(state, &layer.feed_forward_norm);
                let gate = mat_vec(&layer.gate, &input);
                let up = mat_vec(&layer.up, &input);
                let activated: Vec<f32> = gate.iter().zip(&up).map(|(&gate, &up)| silu(gate) * up).collect();
                add_into(state, &mat_vec(&layer.down, &activated));
            }
        }
        let head = self.output.as_ref().unwrap_or(&self.embedding);
        hidden.iter().map(|state| mat_vec(head, &rms_norm(state, &self.output_norm))).collect()
    }

    /// Writes the model with `metadata_overrides` (which may add a tokenizer).
    fn write_gguf(&self, path: &Path, metadata_overrides: &[(&str, Value)]) {
        let architecture = self.variant.architecture();
        let tensor = |name: String, values: &[f32], shape: &[usize]| (name, values.to_vec(), shape.to_vec());
        let mut tensors = vec![
            tensor("token_embd.weight".into(), &self.embedding, &[self.vocabulary, HIDDEN]),
            tensor("output_norm.weight".into(), &self.output_norm, &[HIDDEN]),
        ];
        if let Some(output) = &self.output {
            tensors.push(tensor("output.weight".into(), output, &[self.vocabulary, HIDDEN]));
        }
        if let Some(factors) = &self.frequency_factors {
            tensors.push(tensor("rope_freqs.weight".into(), factors, &[HEAD_DIM / 2]));
        }
        for (index, layer) in self.layers.iter().enumerate() {
            let name = |suffix: &str| format!("blk.{index}.{suffix}");
            tensors.extend([
                tensor(name("attn_norm.weight"), &layer.attention_norm, &[HIDDEN]),
                tensor(name("attn_q.weight"), &layer.query, &[HEADS * HEAD_DIM, HIDDEN]),
                tensor(name("attn_k.weight"), &layer.key, &[KV_HEADS * HEAD_DIM, HIDDEN]),
                tensor(name("attn_v.weight"), &layer.value, &[KV_HEADS * HEAD_DIM, HIDDEN]),
                tensor(name("attn_output.weight"), &layer.attention_output, &[HIDDEN, HEADS * HEAD_DIM]),
                tensor(name("ffn_norm.weight"), &layer.feed_forward_norm, &[HIDDEN]),
                tensor(name("ffn_gate.weight"), &layer.gate, &[FEED_FORWARD, HIDDEN]),
                tensor(name("ffn_up.weight"), &layer.up, &[FEED_FORWARD, HIDDEN]),
                tensor(name("ffn_down.weight"), &layer.down, &[HIDDEN, FEED_FORWARD]),
            ]);
            if let Some([query, key, value]) = &layer.biases {
                tensors.extend([
                    tensor(name("attn_q.bias"), query, &[HEADS * HEAD_DIM]),
                    tensor(name("attn_k.bias"), key, &[KV_HEADS * HEAD_DIM]),
                    tensor(name("attn_v.bias"), value, &[KV_HEADS * HEAD_DIM]),
                ]);
            }
        }
        let key = |name: &str| format!("{architecture}.{name}");
        let keys: Vec<String> = [
            "context_length",
            "embedding_length",
            "block_count",
            "feed_forward_length",
            "attention.head_count",
            "attention.head_count_kv",
            "attention.layer_norm_rms_epsilon",
            "rope.freq_base",
            "rope.dimension_count",
        ]
        .iter()
        .map(|name| key(name))
        .collect();
        let mut metadata: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::String(architecture.into())),
            (&keys[0], Value::U32(CONTEXT as u32)),
            (&keys[1], Value::U32(HIDDEN as u32)),
            (&keys[2], Value::U32(LAYERS as u32)),
            (&keys[3], Value::U32(FEED_FORWARD as u32)),
            (&keys[4], Value::U32(HEADS as u32)),
            (&keys[5], Value::U32(KV_HEADS as u32)),
            (&keys[6], Value::F32(EPSILON as f32)),
            (&keys[7], Value::F32(ROPE_BASE as f32)),
            (&keys[8], Value::U32(HEAD_DIM as u32)),
        ];
        for (key, value) in metadata_overrides {
            metadata.retain(|(existing, _)| existing != key);
            metadata.push((key, value.clone()));
        }
        write_gguf(path, &metadata, &tensors);
    }
}

/// A token sequence with repeats.
const TOKENS: [u32; 10] = [1, 17, 5, 47, 11, 11, 0, 23, 8, 30];

/// Writes `reference`, loads it through the real loader and checks every position's logits.
fn check_forward(reference: &ReferenceModel, name: &str) -> LanguageModel {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join(name);
    reference.write_gguf(&path, &[]);
    let model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("load the tiny model");
    assert_eq!(model.config().architecture, reference.variant.architecture());
    let mut cache = model.new_cache();
    let logits = rows(&model.forward(&TOKENS, &mut cache, LogitPositions::All).expect("forward"));
    assert_rows_close(&logits, &reference.logits(&TOKENS), name);
    model
}

#[test]
fn llama_with_a_separate_output_head_matches_the_naive_reference() {
    check_forward(&ReferenceModel::random(3, LlamaVariant::Llama, false, None), "tiny-llama.gguf");
}

#[test]
fn llama_with_tied_embeddings_and_llama3_frequency_factors_matches_the_reference() {
    let factors = vec![1.0, 4.0];
    check_forward(&ReferenceModel::random(4, LlamaVariant::Llama, true, Some(factors)), "tiny-llama3.gguf");
}

#[test]
fn qwen2_with_biases_and_half_split_rope_matches_the_naive_reference() {
    let model = check_forward(&ReferenceModel::random(5, LlamaVariant::Qwen2, true, None), "tiny-qwen2.gguf");
    assert_eq!(model.config().sliding_window, None);
}

#[test]
fn appending_in_chunks_and_scoring_from_the_cache_equal_the_full_forward() {
    let reference = ReferenceModel::random(6, LlamaVariant::Qwen2, false, None);
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("tiny-qwen2.gguf");
    reference.write_gguf(&path, &[]);
    let model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("load");
    let expected = reference.logits(&TOKENS);

    let mut cache = model.new_cache();
    let mut found = Vec::new();
    for range in [0..3, 3..4, 4..10] {
        found.extend(rows(&model.forward(&TOKENS[range], &mut cache, LogitPositions::All).expect("chunk")));
    }
    assert_rows_close(&found, &expected, "appended in chunks");

    // Two continuations scored as a tree after a cached prefix: the reference's log-softmax.
    let mut prefix = model.new_cache();
    model.extend(&TOKENS[..6], &mut prefix).expect("prefix");
    let continuations: [&[u32]; 2] = [&TOKENS[6..9], &[0, 9]];
    let scores = model.score_continuations(&prefix, &continuations).expect("tree scores");
    for (continuation, scores) in continuations.iter().zip(&scores) {
        let tokens: Vec<u32> = TOKENS[..6].iter().chain(continuation.iter()).copied().collect();
        let logits = reference.logits(&tokens);
        for (offset, (&token, &score)) in continuation.iter().zip(scores).enumerate() {
            let row = &logits[5 + offset];
            let maximum = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_total = row.iter().map(|logit| (logit - maximum).exp()).sum::<f32>().ln() + maximum;
            assert!((score - (row[token as usize] - log_total)).abs() < 1e-4, "token {token}: {score}");
        }
    }
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let reference = ReferenceModel::random(7, LlamaVariant::Qwen2, true, None);

    // A qwen2 file must carry its biases.
    let mut no_biases = ReferenceModel::random(7, LlamaVariant::Qwen2, true, None);
    no_biases.layers.iter_mut().for_each(|layer| layer.biases = None);
    let path = directory.path().join("qwen2-without-biases.gguf");
    no_biases.write_gguf(&path, &[]);
    let message = LanguageModel::load_path(&path, &ModelOptions::default()).expect_err("no biases").to_string();
    assert!(message.contains("qwen2-without-biases.gguf") && message.contains("blk.0.attn_q.bias"), "{message}");

    let path = directory.path().join("partial-rope.gguf");
    reference.write_gguf(&path, &[("qwen2.rope.dimension_count", Value::U32(2))]);
    let message = LanguageModel::load_path(&path, &ModelOptions::default()).expect_err("partial rope").to_string();
    assert!(message.contains("partial-rope.gguf") && message.contains("rope over 2 of 4 head dimensions"), "{message}");

    let path = directory.path().join("uneven.gguf");
    reference.write_gguf(&path, &[("qwen2.attention.head_count_kv", Value::U32(3))]);
    let message = LanguageModel::load_path(&path, &ModelOptions::default()).expect_err("uneven").to_string();
    assert!(message.contains("uneven.gguf") && message.contains("qwen2 hyper-parameters"), "{message}");
}

#[test]
fn the_llm_advisor_runs_on_a_qwen2_model_with_a_byte_level_vocabulary() {
    use crate::env::grid::Color;
    use crate::skills::{Carryable, Item, TeacherOption};
    use crate::teacher::advice::{LlmAdvisor, LlmAdvisorSettings};
    use crate::teacher::advisor::{AdviceRequest, Advisor};
    use crate::teacher::prompt::PromptTemplate;

    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("tiny-qwen2-chat.gguf");
    let reference =
        ReferenceModel::random_with_vocabulary(8, LlamaVariant::Qwen2, true, None, BYTE_LEVEL_VOCABULARY_SIZE);
    reference.write_gguf(&path, &byte_level_vocabulary("qwen2"));
    let template =
        PromptTemplate::parse("Advice for a grid world.\n{observation}\nAnswer:", "tiny.txt").expect("valid");
    let mut advisor = LlmAdvisor::load(LlmAdvisorSettings::new(&path), &template).expect("load the advisor");
    let options = vec![TeacherOption::Explore, TeacherOption::PickUp(Item::new(Carryable::Key, Color::Red))];
    let request = AdviceRequest { mission: "get the key".into(), description: "the key".into(), options };
    let advice = advisor.advise(&request).expect("advice");
    assert_eq!(advice.probabilities.len(), 2);
    assert!((advice.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    // The prefix has no <bos> (qwen2 adds none) and is byte-level: one token per byte but
    // for the merged words; the request's state part ran after it.
    let timing = advisor.last_timing().clone();
    assert_eq!(timing.prefix_tokens, 0, "the prefix ran when the prompt was set");
    assert!(timing.state_tokens > 0 && timing.option_tokens > 0, "{timing:?}");
    // Same request, same advice (from the previous state's cache: a shorter pass, so equal
    // up to rounding).
    let again = advisor.advise(&request).expect("again");
    for (a, b) in again.probabilities.iter().zip(&advice.probabilities) {
        assert!((a - b).abs() < 1e-5, "{:?} vs {:?}", again.probabilities, advice.probabilities);
    }
}

/// The tiny models whose logits llama.cpp computed (`tools/llama_cpp_tiny_reference.py`,
/// committed in tests/fixtures/llama_cpp/tiny.json): llama with a separate output head and
/// Llama 3 frequency factors, and qwen2 with biases and tied embeddings.
fn llama_cpp_models() -> Vec<(&'static str, ReferenceModel)> {
    let vocabulary = BYTE_LEVEL_VOCABULARY_SIZE;
    vec![
        (
            "tiny-llama.gguf",
            ReferenceModel::random_with_vocabulary(11, LlamaVariant::Llama, false, Some(vec![1.0, 4.0]), vocabulary),
        ),
        ("tiny-qwen2.gguf", ReferenceModel::random_with_vocabulary(12, LlamaVariant::Qwen2, true, None, vocabulary)),
    ]
}

/// Token ids both implementations run (within the byte-level vocabulary).
const LLAMA_CPP_TOKENS: [u32; 12] = [72, 258, 261, 32, 49, 263, 10, 101, 101, 264, 0, 200];

#[test]
fn tiny_llama_and_qwen2_models_match_llama_cpp() {
    // DUET_TINY_GGUF_DIR keeps the files, for the tool that recomputes the fixture.
    let temporary = tempfile::tempdir().expect("temporary directory");
    let directory = std::env::var_os("DUET_TINY_GGUF_DIR").map_or(temporary.path().to_path_buf(), Into::into);
    let models = llama_cpp_models();
    for (name, reference) in &models {
        reference.write_gguf(&directory.join(name), &byte_level_vocabulary("qwen2"));
    }
    let fixture_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama_cpp/tiny.json");
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&fixture_path).unwrap_or_else(|error| panic!("{}: {error}", fixture_path.display())),
    )
    .expect("fixture JSON");
    let fixture_tokens: Vec<u32> = serde_json::from_value(fixture["tokens"].clone()).expect("tokens");
    assert_eq!(fixture_tokens, LLAMA_CPP_TOKENS, "the fixture was computed for other tokens");
    for (name, reference) in &models {
        let model = LanguageModel::load_path(&directory.join(name), &ModelOptions::default()).expect("load");
        let mut cache = model.new_cache();
        let logits = rows(&model.forward(&LLAMA_CPP_TOKENS, &mut cache, LogitPositions::All).expect("forward"));
        let expected: Vec<Vec<f32>> =
            serde_json::from_value(fixture["models"][*name].clone()).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_rows_close(&logits, &expected, &format!("{name} against llama.cpp"));
        // And the naive reference agrees with both.
        assert_rows_close(&reference.logits(&LLAMA_CPP_TOKENS), &expected, &format!("{name}: reference"));
    }
    // llama.cpp's tokenizer on the same byte-level vocabulary (Qwen2's split).
    let tokenizer = GgufTokenizer::from_gguf_path(&directory.join("tiny-qwen2.gguf")).expect("tokenizer");
    let tokenized: std::collections::BTreeMap<String, Vec<u32>> =
        serde_json::from_value(fixture["tokenized"].clone()).expect("tokenized texts");
    assert!(tokenized.len() >= 6);
    for (text, expected) in &tokenized {
        assert_eq!(&tokenizer.encode(text, true).expect("encode"), expected, "{text:?}");
        assert_eq!(&tokenizer.decode(expected, false).expect("decode"), text);
    }
}

#[test]
fn the_differentiable_path_and_lora_adapters_work_on_llama_and_qwen2() {
    let directory = tempfile::tempdir().expect("temporary directory");
    for (name, reference) in llama_cpp_models() {
        let path = directory.path().join(name);
        reference.write_gguf(&path, &[]);
        let mut model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("load");
        check_differentiable_path(&mut model, &LLAMA_CPP_TOKENS);
    }
}

/// Writes a tiny random qwen2 model (48-token vocabulary, no tokenizer) for other modules' tests.
pub(crate) fn write_tiny_qwen2(path: &Path, seed: u64) {
    ReferenceModel::random(seed, LlamaVariant::Qwen2, true, None).write_gguf(path, &[]);
}

/// Writes a tiny random qwen2 model with the byte-level test vocabulary (a tokenizer that
/// reads text, one token per byte mostly, hence a 1024-token context), for other modules' tests.
pub(crate) fn write_tiny_qwen2_with_tokenizer(path: &Path, seed: u64) {
    let mut metadata = byte_level_vocabulary("qwen2");
    metadata.push(("qwen2.context_length", Value::U32(1024)));
    ReferenceModel::random_with_vocabulary(seed, LlamaVariant::Qwen2, true, None, BYTE_LEVEL_VOCABULARY_SIZE)
        .write_gguf(path, &metadata);
}

#[test]
fn the_llm_advisor_loads_tuned_adapters_and_refuses_foreign_ones() {
    use crate::env::grid::Color;
    use crate::skills::{Carryable, Item, TeacherOption};
    use crate::teacher::advice::{LlmAdvisor, LlmAdvisorSettings};
    use crate::teacher::advisor::{AdviceRequest, Advisor};
    use crate::teacher::llm::{LoraAdapters, LoraConfig};
    use crate::teacher::prompt::PromptTemplate;

    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("tiny-qwen2-chat.gguf");
    write_tiny_qwen2_with_tokenizer(&path, 9);
    let template = PromptTemplate::parse("Advice.\n{observation}\nAnswer:", "tiny.txt").expect("valid");
    let options = vec![TeacherOption::Explore, TeacherOption::PickUp(Item::new(Carryable::Key, Color::Red))];
    let request = AdviceRequest { mission: "get the key".into(), description: "the key".into(), options };
    let base =
        LlmAdvisor::load(LlmAdvisorSettings::new(&path), &template).expect("base").advise(&request).expect("advice");

    // Tuned adapters (non-zero B) change the advice.
    let model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("model");
    let adapters = LoraAdapters::new(model.config(), LoraConfig::default(), 4).expect("adapters");
    for var in adapters.vars() {
        let shape = var.as_tensor().shape().clone();
        var.set(&candle_core::Tensor::full(0.05f32, shape, &candle_core::Device::Cpu).expect("values")).expect("set");
    }
    let adapters_path = directory.path().join("adapters.safetensors");
    adapters.save(&adapters_path).expect("save");
    let settings = LlmAdvisorSettings { adapters: Some(adapters_path), ..LlmAdvisorSettings::new(&path) };
    let tuned = LlmAdvisor::load(settings, &template).expect("tuned").advise(&request).expect("advice");
    assert!(
        (tuned.probabilities[0] - base.probabilities[0]).abs() > 1e-4,
        "{:?} vs {:?}",
        tuned.probabilities,
        base.probabilities
    );

    // Adapters of another model are refused with their file named.
    let other = ModelSpec { hidden_size: 32, ..model.config().clone() };
    let foreign_path = directory.path().join("foreign.safetensors");
    LoraAdapters::new(&other, LoraConfig::default(), 0).expect("adapters").save(&foreign_path).expect("save");
    let settings = LlmAdvisorSettings { adapters: Some(foreign_path), ..LlmAdvisorSettings::new(&path) };
    let message = LlmAdvisor::load(settings, &template).expect_err("foreign adapters").to_string();
    assert!(message.contains("foreign.safetensors") && message.contains("do not fit"), "{message}");
}
