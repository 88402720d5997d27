//! Gemma 3 on a tiny random model written as GGUF by the tests: the real loader and forward
//! pass against a naive per-position reference, cache appends, snapshots and scoring.

use std::path::{Path, PathBuf};

use candle_core::DType;
use candle_core::quantized::gguf_file::Value;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::model::{LanguageModel, LogitPositions, ModelError, ModelOptions, TreeNormalization, log_softmax_at};
use super::super::test_support::{
    EPSILON, TOLERANCE, add_into, assert_rows_close, attend, check_differentiable_path, mat_vec, random_values,
    rms_norm, rope_halves, rows, write_gguf,
};
use super::*;

const VOCABULARY: usize = 40;
const HIDDEN: usize = 16;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 8;
const FEED_FORWARD: usize = 24;
const LAYERS: usize = 2;
const WINDOW: usize = 3;
/// Layer 0 sliding, layer 1 global.
const PATTERN: usize = 2;
const CONTEXT: usize = 64;
const GLOBAL_BASE: f64 = 1_000_000.0;

/// `[out][in]` row-major weights of one layer, as the GGUF holds them.
struct ReferenceLayer {
    attention_norm: Vec<f32>,
    query: Vec<f32>,
    key: Vec<f32>,
    value: Vec<f32>,
    query_norm: Vec<f32>,
    key_norm: Vec<f32>,
    attention_output: Vec<f32>,
    post_attention_norm: Vec<f32>,
    feed_forward_norm: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
    post_feed_forward_norm: Vec<f32>,
}

struct ReferenceModel {
    embedding: Vec<f32>,
    layers: Vec<ReferenceLayer>,
    output_norm: Vec<f32>,
}

impl ReferenceModel {
    fn random(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut matrix = |rows: usize, columns: usize| random_values(&mut rng, rows * columns, -0.4, 0.4);
        let embedding = matrix(VOCABULARY, HIDDEN);
        let mut layers = Vec::new();
        for _ in 0..LAYERS {
            let query = matrix(HEADS * HEAD_DIM, HIDDEN);
            let key = matrix(KV_HEADS * HEAD_DIM, HIDDEN);
            let value = matrix(KV_HEADS * HEAD_DIM, HIDDEN);
            let attention_output = matrix(HIDDEN, HEADS * HEAD_DIM);
            let gate = matrix(FEED_FORWARD, HIDDEN);
            let up = matrix(FEED_FORWARD, HIDDEN);
            let down = matrix(HIDDEN, FEED_FORWARD);
            layers.push(ReferenceLayer {
                query,
                key,
                value,
                attention_output,
                gate,
                up,
                down,
                attention_norm: Vec::new(),
                query_norm: Vec::new(),
                key_norm: Vec::new(),
                post_attention_norm: Vec::new(),
                feed_forward_norm: Vec::new(),
                post_feed_forward_norm: Vec::new(),
            });
        }
        let mut norm = |size: usize| random_values(&mut rng, size, 0.5, 1.5);
        for layer in &mut layers {
            layer.attention_norm = norm(HIDDEN);
            layer.query_norm = norm(HEAD_DIM);
            layer.key_norm = norm(HEAD_DIM);
            layer.post_attention_norm = norm(HIDDEN);
            layer.feed_forward_norm = norm(HIDDEN);
            layer.post_feed_forward_norm = norm(HIDDEN);
        }
        let output_norm = norm(HIDDEN);
        Self { embedding, layers, output_norm }
    }

    /// Logits at every position of `tokens`, computed position by position with loops.
    fn logits(&self, tokens: &[u32]) -> Vec<Vec<f32>> {
        let scale = (HIDDEN as f32).sqrt();
        let mut hidden: Vec<Vec<f32>> = tokens
            .iter()
            .map(|&token| {
                self.embedding[token as usize * HIDDEN..][..HIDDEN].iter().map(|value| value * scale).collect()
            })
            .collect();
        for (layer_index, layer) in self.layers.iter().enumerate() {
            let sliding = (layer_index + 1) % PATTERN != 0;
            let base = if sliding { LOCAL_ROPE_BASE } else { GLOBAL_BASE };
            let mut queries = Vec::new();
            let mut keys = Vec::new();
            let mut values = Vec::new();
            for (position, state) in hidden.iter().enumerate() {
                let input = rms_norm(state, &layer.attention_norm);
                let heads = |weight: &[f32], count: usize, norm: Option<&[f32]>| -> Vec<Vec<f32>> {
                    let projected = mat_vec(weight, &input);
                    (0..count)
                        .map(|head| {
                            let slice = &projected[head * HEAD_DIM..][..HEAD_DIM];
                            match norm {
                                Some(norm) => rope_halves(&rms_norm(slice, norm), position, base),
                                None => slice.to_vec(),
                            }
                        })
                        .collect()
                };
                queries.push(heads(&layer.query, HEADS, Some(&layer.query_norm)));
                keys.push(heads(&layer.key, KV_HEADS, Some(&layer.key_norm)));
                values.push(heads(&layer.value, KV_HEADS, None));
            }
            for (position, state) in hidden.iter_mut().enumerate() {
                let mut merged = Vec::new();
                for (head, query) in queries[position].iter().enumerate() {
                    let kv_head = head / (HEADS / KV_HEADS);
                    let visible: Vec<usize> =
                        (0..=position).filter(|&key| !sliding || position - key < WINDOW).collect();
                    let visible_keys: Vec<&[f32]> = visible.iter().map(|&key| &keys[key][kv_head][..]).collect();
                    let visible_values: Vec<&[f32]> = visible.iter().map(|&key| &values[key][kv_head][..]).collect();
                    let output = attend(query, &visible_keys, &visible_values, 1.0 / (HEAD_DIM as f32).sqrt());
                    merged.extend(output);
                }
                let attended = rms_norm(&mat_vec(&layer.attention_output, &merged), &layer.post_attention_norm);
                add_into(state, &attended);
                let input = rms_norm(state, &layer.feed_forward_norm);
                let gate = mat_vec(&layer.gate, &input);
                let up = mat_vec(&layer.up, &input);
                let activated: Vec<f32> = gate.iter().zip(&up).map(|(&gate, &up)| gelu_tanh(gate) * up).collect();
                let fed_forward = rms_norm(&mat_vec(&layer.down, &activated), &layer.post_feed_forward_norm);
                add_into(state, &fed_forward);
            }
        }
        hidden.iter().map(|state| mat_vec(&self.embedding, &rms_norm(state, &self.output_norm))).collect()
    }

    fn write_gguf(&self, path: &Path, metadata_overrides: &[(&str, Value)], attn_q_rows: usize) {
        let tensor = |name: String, values: &[f32], shape: &[usize]| (name, values.to_vec(), shape.to_vec());
        let mut tensors = vec![
            tensor("token_embd.weight".into(), &self.embedding, &[VOCABULARY, HIDDEN]),
            tensor("output_norm.weight".into(), &self.output_norm, &[HIDDEN]),
        ];
        for (index, layer) in self.layers.iter().enumerate() {
            let name = |suffix: &str| format!("blk.{index}.{suffix}.weight");
            let query = &layer.query[..attn_q_rows * HIDDEN];
            tensors.extend([
                tensor(name("attn_norm"), &layer.attention_norm, &[HIDDEN]),
                tensor(name("attn_q"), query, &[attn_q_rows, HIDDEN]),
                tensor(name("attn_k"), &layer.key, &[KV_HEADS * HEAD_DIM, HIDDEN]),
                tensor(name("attn_v"), &layer.value, &[KV_HEADS * HEAD_DIM, HIDDEN]),
                tensor(name("attn_q_norm"), &layer.query_norm, &[HEAD_DIM]),
                tensor(name("attn_k_norm"), &layer.key_norm, &[HEAD_DIM]),
                tensor(name("attn_output"), &layer.attention_output, &[HIDDEN, HEADS * HEAD_DIM]),
                tensor(name("post_attention_norm"), &layer.post_attention_norm, &[HIDDEN]),
                tensor(name("ffn_norm"), &layer.feed_forward_norm, &[HIDDEN]),
                tensor(name("ffn_gate"), &layer.gate, &[FEED_FORWARD, HIDDEN]),
                tensor(name("ffn_up"), &layer.up, &[FEED_FORWARD, HIDDEN]),
                tensor(name("ffn_down"), &layer.down, &[HIDDEN, FEED_FORWARD]),
                tensor(name("post_ffw_norm"), &layer.post_feed_forward_norm, &[HIDDEN]),
            ]);
        }
        let mut metadata: Vec<(&str, Value)> = vec![
            ("general.architecture", Value::String("gemma3".into())),
            ("gemma3.context_length", Value::U32(CONTEXT as u32)),
            ("gemma3.embedding_length", Value::U32(HIDDEN as u32)),
            ("gemma3.block_count", Value::U32(LAYERS as u32)),
            ("gemma3.feed_forward_length", Value::U32(FEED_FORWARD as u32)),
            ("gemma3.attention.head_count", Value::U32(HEADS as u32)),
            ("gemma3.attention.head_count_kv", Value::U32(KV_HEADS as u32)),
            ("gemma3.attention.key_length", Value::U32(HEAD_DIM as u32)),
            ("gemma3.attention.value_length", Value::U32(HEAD_DIM as u32)),
            ("gemma3.attention.layer_norm_rms_epsilon", Value::F32(EPSILON as f32)),
            ("gemma3.rope.freq_base", Value::F32(GLOBAL_BASE as f32)),
            ("gemma3.attention.sliding_window", Value::U32(WINDOW as u32)),
            ("gemma3.attention.sliding_window_pattern", Value::U32(PATTERN as u32)),
        ];
        for (key, value) in metadata_overrides {
            metadata.retain(|(existing, _)| existing != key);
            metadata.push((key, value.clone()));
        }
        write_gguf(path, &metadata, &tensors);
    }
}

fn gelu_tanh(value: f32) -> f32 {
    let inner = (2.0 / std::f32::consts::PI).sqrt() * (value + 0.044715 * value * value * value);
    0.5 * value * (1.0 + inner.tanh())
}

fn log_softmax(row: &[f32], target: u32) -> f32 {
    log_softmax_at(row, target as usize)
}

struct Fixture {
    _directory: tempfile::TempDir,
    path: PathBuf,
    reference: ReferenceModel,
    model: LanguageModel,
}

fn fixture() -> Fixture {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("tiny-gemma3.gguf");
    let reference = ReferenceModel::random(7);
    reference.write_gguf(&path, &[], HEADS * HEAD_DIM);
    let model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("load the tiny model");
    Fixture { _directory: directory, path, reference, model }
}

/// A token sequence longer than the window, several times over.
const TOKENS: [u32; 12] = [2, 17, 5, 39, 11, 11, 0, 23, 8, 30, 14, 1];

#[test]
fn reads_the_hyper_parameters_and_the_layer_pattern() {
    let Fixture { _directory, model, path, .. } = fixture();
    let config = Gemma3Config::from_gguf(&GgufFile::open(&path).expect("open")).expect("gemma3 config");
    assert_eq!(
        (config.vocabulary_size, config.hidden_size, config.head_count, config.kv_head_count, config.head_dim),
        (VOCABULARY, HIDDEN, HEADS, KV_HEADS, HEAD_DIM)
    );
    assert_eq!(config.sliding_window, Some(WINDOW));
    assert!(config.is_sliding_layer(0) && !config.is_sliding_layer(1));
    assert_eq!((config.global_rope_base, config.local_rope_base), (GLOBAL_BASE, LOCAL_ROPE_BASE));
    assert!((config.attention_scale - (HEAD_DIM as f64).powf(-0.5)).abs() < 1e-12);
    assert_eq!(config.final_logit_softcapping, None);
    assert_eq!(model.threads(), 1);
    let spec = model.config();
    assert_eq!((spec.architecture.as_str(), spec.sliding_window, spec.layer_count), ("gemma3", Some(WINDOW), LAYERS));
}

#[test]
fn full_forward_matches_the_naive_reference_beyond_the_window() {
    let Fixture { model, reference, .. } = fixture();
    let mut cache = model.new_cache();
    let logits = model.forward(&TOKENS, &mut cache, LogitPositions::All).expect("forward");
    assert_eq!(logits.dims(), [TOKENS.len(), VOCABULARY]);
    assert_eq!(cache.len(), TOKENS.len());
    assert_rows_close(&rows(&logits), &reference.logits(&TOKENS), "full forward");

    let mut cache = model.new_cache();
    let last = model.forward(&TOKENS, &mut cache, LogitPositions::Last).expect("forward, last position");
    let expected_last = reference.logits(&TOKENS).pop().expect("a last row");
    assert_rows_close(&[last.to_vec1().expect("last row")], &[expected_last], "last position");
}

#[test]
fn f16_weights_stay_close_to_the_f32_reference() {
    // Keep the whole fixture: its temporary directory holds the file.
    let fixture = fixture();
    let (path, reference) = (&fixture.path, &fixture.reference);
    let options = ModelOptions { weights: DType::F16, ..ModelOptions::default() };
    let model = LanguageModel::load_path(path, &options).expect("load with f16 weights");
    let mut cache = model.new_cache();
    let logits = rows(&model.forward(&TOKENS, &mut cache, LogitPositions::All).expect("forward"));
    let expected = reference.logits(&TOKENS);
    let worst =
        logits.iter().flatten().zip(expected.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    // f16 keeps ~3 significant digits of each weight and rounded input.
    assert!(worst < 0.05, "largest logit difference {worst}");
    let bf16 = ModelOptions { weights: DType::BF16, ..ModelOptions::default() };
    assert!(LanguageModel::load_path(path, &bf16).expect_err("bf16 is refused").to_string().contains("f32 or f16"));
}

#[test]
fn appending_several_tokens_at_once_equals_one_at_a_time() {
    let Fixture { model, reference, .. } = fixture();
    let expected = reference.logits(&TOKENS);

    let mut one_at_a_time = model.new_cache();
    let mut single_rows = Vec::new();
    for token in TOKENS {
        let logits = model.forward(&[token], &mut one_at_a_time, LogitPositions::Last).expect("one token");
        single_rows.push(logits.to_vec1::<f32>().expect("row"));
    }
    assert_rows_close(&single_rows, &expected, "one at a time");

    // Chunks that start inside, at and beyond the window, of lengths 2, 5, 1 and 4.
    let mut in_chunks = model.new_cache();
    let mut chunk_rows = Vec::new();
    for range in [0..2, 2..7, 7..8, 8..12] {
        let logits = model.forward(&TOKENS[range], &mut in_chunks, LogitPositions::All).expect("chunk");
        chunk_rows.extend(rows(&logits));
    }
    assert_rows_close(&chunk_rows, &single_rows, "chunks vs one at a time");
    assert_eq!(in_chunks.len(), one_at_a_time.len());
}

#[test]
fn cached_prefix_scoring_equals_full_forward_scoring() {
    let Fixture { model, .. } = fixture();
    let prefix = &TOKENS[..5];
    let mut cache = model.new_cache();
    model.forward(prefix, &mut cache, LogitPositions::Last).expect("prefix");
    let prefix_snapshot = cache.snapshot();

    // The long suffix spans more than one output-head chunk.
    let long_suffix: Vec<u32> = (0..40).map(|index| (index * 7 + 3) % VOCABULARY as u32).collect();
    for suffix in [&TOKENS[5..], &[3u32, 9, 9][..], &[21u32][..], &long_suffix[..]] {
        cache.restore(&prefix_snapshot);
        let scores = model.continuation_log_probs(&mut cache, suffix).expect("score the suffix");
        assert_eq!(cache.len(), prefix.len() + suffix.len());

        let whole: Vec<u32> = prefix.iter().chain(suffix).copied().collect();
        let mut fresh = model.new_cache();
        let all_rows = rows(&model.forward(&whole, &mut fresh, LogitPositions::All).expect("full forward"));
        let expected: Vec<f32> = suffix
            .iter()
            .enumerate()
            .map(|(index, &token)| log_softmax(&all_rows[prefix.len() - 1 + index], token))
            .collect();
        assert_eq!(scores.len(), expected.len());
        for (found, expected) in scores.iter().zip(&expected) {
            assert!(*found <= 0.0 && (found - expected).abs() < TOLERANCE, "{scores:?} vs {expected:?}");
        }
    }
    assert_eq!(prefix_snapshot.len(), prefix.len(), "the snapshot is untouched by later appends");
}

#[test]
fn greedy_continuation_takes_the_most_likely_tokens() {
    let Fixture { model, reference, .. } = fixture();
    let mut cache = model.new_cache();
    model.forward(&TOKENS[..3], &mut cache, LogitPositions::Last).expect("prompt");
    let generated = model.greedy_continuation(&mut cache, 4, &[]).expect("generate");
    assert_eq!(generated.len(), 4);
    assert_eq!(cache.len(), 3 + 4, "the cache holds the generated tokens");
    let mut sequence = TOKENS[..3].to_vec();
    for &token in &generated {
        let last = reference.logits(&sequence).pop().expect("a row");
        let best =
            last.iter().enumerate().fold(0, |best, (index, value)| if *value > last[best] { index } else { best });
        assert_eq!(token as usize, best, "after {sequence:?}");
        sequence.push(token);
    }
}

#[test]
fn bad_inputs_are_errors_and_leave_the_cache_alone() {
    let Fixture { model, .. } = fixture();
    let mut cache = model.new_cache();
    assert!(matches!(model.continuation_log_probs(&mut cache, &[3]), Err(ModelError::EmptyCache)));
    assert!(matches!(model.forward(&[], &mut cache, LogitPositions::Last), Err(ModelError::NoTokens)));
    model.forward(&TOKENS[..2], &mut cache, LogitPositions::Last).expect("two tokens");
    let error = model.forward(&[3, VOCABULARY as u32], &mut cache, LogitPositions::Last).expect_err("out of range");
    assert!(matches!(error, ModelError::TokenOutOfRange { token_id: 40, .. }), "{error}");
    let too_long = vec![3u32; CONTEXT];
    let error = model.forward(&too_long, &mut cache, LogitPositions::Last).expect_err("past the context");
    assert!(matches!(error, ModelError::ContextOverflow { needed: 66, context_length: 64 }), "{error}");
    assert_eq!(cache.len(), 2);
    let mut foreign = KvCache::new(LAYERS + 1);
    assert!(matches!(model.forward(&[3], &mut foreign, LogitPositions::Last), Err(ModelError::CacheMismatch { .. })));
}

#[test]
fn load_errors_name_the_file_and_the_problem() {
    let Fixture { _directory: directory, reference, path, .. } = fixture();

    let wrong_architecture = directory.path().join("mamba.gguf");
    reference.write_gguf(
        &wrong_architecture,
        &[("general.architecture", Value::String("mamba".into()))],
        HEADS * HEAD_DIM,
    );
    let message =
        LanguageModel::load_path(&wrong_architecture, &ModelOptions::default()).expect_err("mamba").to_string();
    assert!(
        message.contains("mamba.gguf")
            && message.contains("\"mamba\" is not supported (duet runs gemma3, llama, qwen2)"),
        "{message}"
    );

    let wrong_shape = directory.path().join("short-query.gguf");
    reference.write_gguf(&wrong_shape, &[], HEAD_DIM);
    let message = LanguageModel::load_path(&wrong_shape, &ModelOptions::default()).expect_err("shape").to_string();
    assert!(
        message.contains("short-query.gguf") && message.contains("`blk.0.attn_q.weight` has shape [8, 16]"),
        "{message}"
    );

    let uneven_heads = directory.path().join("uneven.gguf");
    reference.write_gguf(&uneven_heads, &[("gemma3.attention.head_count_kv", Value::U32(3))], HEADS * HEAD_DIM);
    let message = LanguageModel::load_path(&uneven_heads, &ModelOptions::default()).expect_err("heads").to_string();
    assert!(message.contains("uneven.gguf") && message.contains("kv heads"), "{message}");

    assert!(LanguageModel::load_path(&path, &ModelOptions { threads: 2, ..ModelOptions::default() }).is_ok());
}

#[test]
fn batched_tree_scoring_equals_one_continuation_at_a_time() {
    let Fixture { model, .. } = fixture();
    // A prefix past the window, so sliding layers mask old cached keys for deeper nodes.
    let mut cache = model.new_cache();
    model.forward(&TOKENS[..6], &mut cache, LogitPositions::Last).expect("prefix");
    let long: Vec<u32> = (0..9).map(|index| (index * 5 + 2) % VOCABULARY as u32).collect();
    // Shared first tokens, a continuation that is a prefix of another, a repeat, an empty one.
    let continuations: Vec<&[u32]> =
        vec![&[3, 9, 9], &[3, 9, 12], &[3], &[21, 4], &[], &[3, 9, 9], &long[..], &[3, 9, 12, 7, 7]];
    let batched = model.score_continuations(&cache, &continuations).expect("batched scores");
    assert_eq!(cache.len(), 6, "the cache is left as it was");
    assert_eq!(batched.len(), continuations.len());
    for (continuation, scores) in continuations.iter().zip(&batched) {
        let mut one = cache.snapshot();
        let expected = model.continuation_log_probs(&mut one, continuation).expect("one at a time");
        assert_eq!(scores.len(), expected.len(), "{continuation:?}");
        for (found, expected) in scores.iter().zip(&expected) {
            assert!((found - expected).abs() < TOLERANCE, "{continuation:?}: {scores:?} vs {expected:?}");
        }
    }
    // And against the naive full-sequence reference.
    let Fixture { reference, .. } = fixture();
    for (continuation, scores) in continuations.iter().zip(&batched) {
        let whole: Vec<u32> = TOKENS[..6].iter().chain(continuation.iter()).copied().collect();
        let all_rows = reference.logits(&whole);
        for (index, &token) in continuation.iter().enumerate() {
            let expected = log_softmax(&all_rows[5 + index], token);
            assert!((scores[index] - expected).abs() < TOLERANCE, "{continuation:?} token {index}");
        }
    }
}

#[test]
fn menu_logits_are_the_full_rows_entries() {
    let Fixture { model, .. } = fixture();
    let mut cache = model.new_cache();
    let full = model.forward(&TOKENS[..4], &mut cache, LogitPositions::Last).expect("prefix");
    let full: Vec<f32> = full.to_vec1().expect("row");
    let picked = model.next_token_logits_for(&cache, &[5, 0, 39]).expect("picked");
    for (value, token) in picked.iter().zip([5usize, 0, 39]) {
        assert!((value - full[token]).abs() < TOLERANCE);
    }
    let again = model.next_token_logits(&cache).expect("whole row");
    assert_eq!(again.len(), VOCABULARY);
    assert!((again[7] - full[7]).abs() < TOLERANCE);
    assert!(matches!(model.next_token_logits_for(&cache, &[40]), Err(ModelError::TokenOutOfRange { .. })));
}

#[test]
fn one_pass_over_state_and_forks_equals_two_passes() {
    let Fixture { model, .. } = fixture();
    let mut prefix = model.new_cache();
    model.forward(&TOKENS[..4], &mut prefix, LogitPositions::Last).expect("prefix");
    let continuations: Vec<&[u32]> = vec![&[3, 9, 9], &[3, 9, 12], &[3, 14], &[21, 4]];
    let state = &TOKENS[4..9];
    let mut separate = prefix.clone();
    model.extend(state, &mut separate).expect("state");
    let expected =
        model.score_continuation_tree(&separate, &continuations, TreeNormalization::Siblings).expect("two passes");
    let mut combined = prefix.clone();
    let found = model.extend_and_score_siblings(state, &mut combined, &continuations).expect("one pass");
    for (found, expected) in found.iter().zip(&expected) {
        assert_eq!(found.len(), expected.len());
        for (a, b) in found.iter().zip(expected) {
            assert!((a - b).abs() < TOLERANCE, "{found:?} vs {expected:?}");
        }
    }
    // The cache holds the state alone and goes on as the two-pass one does (past the window).
    assert_eq!(combined.len(), separate.len());
    let next_separate = model.forward(&TOKENS[9..], &mut separate, LogitPositions::All).expect("after two passes");
    let next_combined = model.forward(&TOKENS[9..], &mut combined, LogitPositions::All).expect("after one pass");
    assert_rows_close(&rows(&next_combined), &rows(&next_separate), "after the state");
}

#[test]
fn sibling_normalised_tree_scores_are_constrained_decoding_probabilities() {
    let Fixture { model, .. } = fixture();
    let mut cache = model.new_cache();
    model.forward(&TOKENS[..6], &mut cache, LogitPositions::Last).expect("prefix");
    let continuations: Vec<&[u32]> = vec![&[3, 9, 9], &[3, 9, 12], &[3, 14], &[21, 4]];
    let scores =
        model.score_continuation_tree(&cache, &continuations, TreeNormalization::Siblings).expect("constrained scores");
    let full = model.score_continuations(&cache, &continuations).expect("full scores");
    // Expected by hand from full-vocabulary log-probs: at each node, renormalise over the
    // tokens that continue some continuation there.
    let probability = |path: &[f32]| path.iter().map(|value| value.exp() as f64).product::<f64>();
    let first = |index: usize| full[index][0].exp() as f64;
    let first_total = first(0) + first(3); // tokens 3 and 21
    let after_3 = full[0][1].exp() as f64 + full[2][1].exp() as f64; // tokens 9 and 14
    let after_3_9 = full[0][2].exp() as f64 + full[1][2].exp() as f64; // tokens 9 and 12
    let expected = [
        first(0) / first_total * (full[0][1].exp() as f64 / after_3) * (full[0][2].exp() as f64 / after_3_9),
        first(0) / first_total * (full[1][1].exp() as f64 / after_3) * (full[1][2].exp() as f64 / after_3_9),
        first(0) / first_total * (full[2][1].exp() as f64 / after_3),
        first(3) / first_total,
    ];
    for (path, expected) in scores.iter().zip(expected) {
        assert!((probability(path) - expected).abs() < 1e-4, "{scores:?} vs {expected}");
    }
    // [21, 4]: token 4 has no alternative after 21, so it scores log 1 = 0.
    assert_eq!(scores[3][1], 0.0);
    // Only where continuations part is run: 3 (parts into 9 / 14) and 3-9 (into 9 / 12), not
    // the leaves nor 21 (one child).
    assert_eq!(super::super::model::sibling_scoring_tokens(&continuations), 2);
    assert_eq!(
        super::super::model::sibling_scoring_tokens(&[&[5, 6, 7], &[8, 9]]),
        0,
        "parting at the root runs nothing"
    );
    let total: f64 = scores.iter().map(|path| probability(path)).sum();
    assert!((total - 1.0).abs() < 1e-5, "{total}");
}

#[test]
fn the_differentiable_path_and_lora_adapters_work_on_gemma3() {
    let Fixture { _directory, mut model, .. } = fixture();
    check_differentiable_path(&mut model, &TOKENS);
}
