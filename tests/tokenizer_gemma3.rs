//! The tokenizer rebuilt from the real Gemma 3 270M GGUF against the official tokenizer.json:
//! exact ids and decodes on every string of tests/fixtures/tokenizer/gemma3.jsonl.
//!
//! The fixture comes from tools/make_tokenizer_fixture.py (official Gemma 3 tokenizer.json,
//! Python `tokenizers`, `add_special_tokens=True` so every id list starts with <bos> = 2).
//! The model file comes from `make model`, which `make test` runs first: a missing model is a
//! failure that says so, never a silent skip.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use candle_core::Device;
use duet::teacher::llm::tokenizer::TokenType;
use duet::teacher::llm::{GgufFile, GgufTokenizer, GgufVocabulary};
use duet::teacher::model_path::existing_default_model_path;

const MINIMUM_FIXTURE_STRINGS: usize = 300;

struct FixtureCase {
    line_number: usize,
    text: String,
    ids: Vec<u32>,
    decoded: String,
}

struct Loaded {
    vocabulary: GgufVocabulary,
    tokenizer: GgufTokenizer,
}

fn model_path() -> PathBuf {
    existing_default_model_path().unwrap_or_else(|error| panic!("{error}"))
}

/// Built once per test binary: reading 262,144 pieces and deriving 514,906 merges takes a while.
fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let path = model_path();
        let started = Instant::now();
        let file = GgufFile::open(&path).unwrap_or_else(|error| panic!("{error}"));
        let vocabulary = GgufVocabulary::from_gguf(&file).unwrap_or_else(|error| panic!("{error}"));
        let read = started.elapsed();
        let tokenizer = GgufTokenizer::from_vocabulary(&vocabulary).unwrap_or_else(|error| panic!("{error}"));
        eprintln!(
            "tokenizer from {}: metadata read in {:.2}s, built in {:.2}s",
            path.display(),
            read.as_secs_f64(),
            (started.elapsed() - read).as_secs_f64()
        );
        Loaded { vocabulary, tokenizer }
    })
}

fn fixture() -> Vec<FixtureCase> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer/gemma3.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut cases = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line_number = index + 1;
        if line.is_empty() {
            continue;
        }
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{}:{line_number}: {error}", path.display()));
        if record.get("meta").is_some() {
            continue;
        }
        let field =
            |name: &str| record.get(name).unwrap_or_else(|| panic!("{}:{line_number}: no `{name}`", path.display()));
        let case = FixtureCase {
            line_number,
            text: field("text").as_str().expect("text is a string").to_string(),
            ids: serde_json::from_value(field("ids").clone()).expect("ids are integers"),
            decoded: field("decoded").as_str().expect("decoded is a string").to_string(),
        };
        cases.push(case);
    }
    assert!(cases.len() >= MINIMUM_FIXTURE_STRINGS, "{}: only {} strings", path.display(), cases.len());
    cases
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    format!("{short:?}")
}

#[test]
fn the_real_model_file_reads_as_gemma3() {
    let mut file = GgufFile::open(model_path()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(file.format_version(), 3);
    assert_eq!(file.architecture().expect("architecture"), "gemma3");
    assert_eq!(file.u32("gemma3.embedding_length").expect("embedding length"), 640);
    assert_eq!(file.u32("gemma3.block_count").expect("block count"), 18);
    assert_eq!(file.tensor_infos().len(), 236);
    let norm = file.tensor("output_norm.weight", &Device::Cpu).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(norm.shape().dims(), [640]);
}

#[test]
fn the_vocabulary_is_gemma3s() {
    let Loaded { vocabulary, tokenizer } = loaded();
    assert_eq!(vocabulary.tokens.len(), 262_144);
    assert_eq!(tokenizer.vocabulary_size(), 262_144);
    assert_eq!((tokenizer.bos_token_id(), tokenizer.eos_token_id()), (Some(2), 1));
    assert_eq!(tokenizer.token_piece(2).as_deref(), Some("<bos>"));
    assert_eq!(tokenizer.token_id("<start_of_turn>"), Some(105));
}

#[test]
fn fixture_ids_match_the_official_tokenizer_exactly() {
    let Loaded { tokenizer, .. } = loaded();
    let cases = fixture();
    let started = Instant::now();
    let mut mismatches = Vec::new();
    let mut total_ids = 0;
    for case in &cases {
        let ids = tokenizer.encode(&case.text, true).unwrap_or_else(|error| panic!("{error}"));
        total_ids += ids.len();
        if ids != case.ids {
            let first_difference = ids.iter().zip(&case.ids).take_while(|(a, b)| a == b).count();
            mismatches.push(format!(
                "line {}: {}: ids differ from position {first_difference}: got {:?}, expected {:?}",
                case.line_number,
                shorten(&case.text),
                &ids[first_difference..ids.len().min(first_difference + 8)],
                &case.ids[first_difference..case.ids.len().min(first_difference + 8)],
            ));
        }
    }
    eprintln!("encoded {} strings ({total_ids} ids) in {:.3}s", cases.len(), started.elapsed().as_secs_f64());
    assert!(
        mismatches.is_empty(),
        "{} of {} strings tokenize differently:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn fixture_ids_decode_as_the_official_tokenizer_decodes_them() {
    let Loaded { vocabulary, tokenizer } = loaded();
    let mut mismatches = Vec::new();
    let mut round_trips = 0;
    for case in fixture() {
        let decoded = tokenizer.decode(&case.ids, false).unwrap_or_else(|error| panic!("{error}"));
        if decoded != case.decoded {
            mismatches.push(format!(
                "line {}: decode(ids, keep special) gave {}, expected {}",
                case.line_number,
                shorten(&decoded),
                shorten(&case.decoded)
            ));
        }
        // Text round-trips when it holds no literal '▁' (decoded as a space, officially too)
        // and no control-token text (skipped when decoding without special tokens).
        let has_control_token =
            case.ids[1..].iter().any(|&id| vocabulary.token_types.get(id as usize) == Some(&TokenType::Control));
        if !case.text.contains('\u{2581}') && !has_control_token {
            round_trips += 1;
            let text = tokenizer.decode(&case.ids, true).unwrap_or_else(|error| panic!("{error}"));
            if text != case.text {
                mismatches.push(format!(
                    "line {}: decode(ids, skip special) gave {}, expected the text {}",
                    case.line_number,
                    shorten(&text),
                    shorten(&case.text)
                ));
            }
        }
    }
    assert!(round_trips >= MINIMUM_FIXTURE_STRINGS - 30, "only {round_trips} round-trip checks");
    assert!(mismatches.is_empty(), "{} decode mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}
