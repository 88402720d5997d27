//! duet's Gemma 3 forward pass on the real Gemma 3 270M GGUF against llama.cpp on the same
//! file: perplexity of a plain English paragraph, next-token log-probs, greedy completions.
//!
//! The llama.cpp numbers come from `tools/llama_cpp_reference.py` (llama-cpp-python 0.3.16,
//! one thread, the same GGUF, its own tokenizer giving the same ids). The model file comes from `make model`,
//! which `make test` runs first: a missing model is a failure that says so, never a silent
//! skip. The tests share one loaded model and take turns (a lock), so printed timings are
//! not disturbed by each other.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use duet::teacher::llm::{GgufFile, GgufTokenizer, KvCache, LanguageModel, LogitPositions, ModelOptions};
use duet::teacher::model_path::existing_default_model_path;

/// llama.cpp's perplexity of tests/fixtures/text/paragraph.txt (223 tokens with <bos>).
/// This prose is harder for a 270M model than llama.cpp's own test text (about 10), so the
/// check is closeness to llama.cpp, which catches e.g. SiLU in place of GELU (2x).
const LLAMA_CPP_PARAGRAPH_PERPLEXITY: f64 = 20.219;
const PERPLEXITY_RELATIVE_TOLERANCE: f64 = 0.02;
/// llama.cpp on essay.txt, a newline and paragraph.txt (720 tokens): perplexity of all
/// targets, and of the targets from position 512 on, whose local layers see only a window.
const LLAMA_CPP_LONG_TEXT_PERPLEXITY: f64 = 20.4093;
const LLAMA_CPP_LONG_TEXT_PERPLEXITY_BEYOND_WINDOW: f64 = 19.1645;
/// llama.cpp's log-probs of the top next tokens after "<bos>The capital of France is".
const LLAMA_CPP_FRANCE_NEXT_TOKENS: [(&str, f32); 3] = [(" the", -1.72), (" a", -2.23), (" Paris", -2.40)];
/// llama.cpp multiplies with 8-bit activations, duet with f32 ones: log-probs differ a little.
const LOG_PROB_TOLERANCE: f32 = 0.15;
const SPEED_PROMPT_TOKENS: usize = 300;

struct Loaded {
    model: LanguageModel,
    tokenizer: GgufTokenizer,
}

fn model_path() -> PathBuf {
    existing_default_model_path().unwrap_or_else(|error| panic!("{error}"))
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let path = model_path();
        let started = Instant::now();
        let mut file = GgufFile::open(&path).unwrap_or_else(|error| panic!("{error}"));
        let model = LanguageModel::load(&mut file, &ModelOptions::default()).unwrap_or_else(|error| panic!("{error}"));
        let model_seconds = started.elapsed().as_secs_f64();
        let tokenizer = GgufTokenizer::from_gguf(&file).unwrap_or_else(|error| panic!("{error}"));
        eprintln!(
            "{}: model loaded (f32) in {model_seconds:.2}s, tokenizer built in {:.2}s, {} inference thread(s)",
            path.display(),
            started.elapsed().as_secs_f64() - model_seconds,
            model.threads()
        );
        Loaded { model, tokenizer }
    })
}

/// One test at a time: they share the model's single inference thread and report timings.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fixture_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn paragraph() -> String {
    fixture_text("paragraph.txt")
}

fn perplexity(log_probs: &[f32]) -> f64 {
    (-log_probs.iter().map(|&value| value as f64).sum::<f64>() / log_probs.len() as f64).exp()
}

fn assert_close_to_llama_cpp(what: &str, perplexity: f64, llama_cpp: f64) {
    let relative_difference = (perplexity - llama_cpp).abs() / llama_cpp;
    assert!(
        relative_difference < PERPLEXITY_RELATIVE_TOLERANCE,
        "{what}: perplexity {perplexity}, llama.cpp {llama_cpp}"
    );
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
}

#[test]
fn paragraph_perplexity_matches_llama_cpp() {
    let _guard = exclusive();
    let Loaded { model, tokenizer } = loaded();
    let tokens = tokenizer.encode(&paragraph(), true).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(tokens.first(), tokenizer.bos_token_id().as_ref());

    let started = Instant::now();
    let mut cache = model.new_cache();
    model.forward(&tokens[..1], &mut cache, LogitPositions::Last).unwrap_or_else(|error| panic!("{error}"));
    let log_probs = model.continuation_log_probs(&mut cache, &tokens[1..]).unwrap_or_else(|error| panic!("{error}"));
    let perplexity = perplexity(&log_probs);
    eprintln!(
        "paragraph: {} tokens, perplexity {perplexity:.4} (llama.cpp {LLAMA_CPP_PARAGRAPH_PERPLEXITY}), scored in {:.2}s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );
    assert_close_to_llama_cpp("paragraph", perplexity, LLAMA_CPP_PARAGRAPH_PERPLEXITY);
}

#[test]
fn perplexity_beyond_the_sliding_window_matches_llama_cpp() {
    let _guard = exclusive();
    let Loaded { model, tokenizer } = loaded();
    let window = model.config().sliding_window.expect("Gemma 3 has sliding-window layers");
    let text = format!("{}\n{}", fixture_text("essay.txt"), paragraph());
    let tokens = tokenizer.encode(&text, true).unwrap_or_else(|error| panic!("{error}"));
    assert!(tokens.len() > window + 100, "{} tokens do not reach past the {window}-token window", tokens.len());

    let started = Instant::now();
    let mut cache = model.new_cache();
    model.forward(&tokens[..1], &mut cache, LogitPositions::Last).unwrap_or_else(|error| panic!("{error}"));
    let log_probs = model.continuation_log_probs(&mut cache, &tokens[1..]).unwrap_or_else(|error| panic!("{error}"));
    // log_probs[i] is the log-prob of token i + 1.
    let beyond_window = &log_probs[window - 1..];
    eprintln!(
        "essay + paragraph: {} tokens, perplexity {:.4} (llama.cpp {LLAMA_CPP_LONG_TEXT_PERPLEXITY}), \
         from position {window} on {:.4} (llama.cpp {LLAMA_CPP_LONG_TEXT_PERPLEXITY_BEYOND_WINDOW}), scored in {:.2}s",
        tokens.len(),
        perplexity(&log_probs),
        perplexity(beyond_window),
        started.elapsed().as_secs_f64()
    );
    assert_close_to_llama_cpp("essay + paragraph", perplexity(&log_probs), LLAMA_CPP_LONG_TEXT_PERPLEXITY);
    assert_close_to_llama_cpp(
        "beyond the window",
        perplexity(beyond_window),
        LLAMA_CPP_LONG_TEXT_PERPLEXITY_BEYOND_WINDOW,
    );
}

#[test]
fn next_token_log_probs_match_llama_cpp() {
    let _guard = exclusive();
    let Loaded { model, tokenizer } = loaded();
    let prompt = tokenizer.encode("The capital of France is", true).unwrap_or_else(|error| panic!("{error}"));
    let mut cache = model.new_cache();
    model
        .forward(&prompt[..prompt.len() - 1], &mut cache, LogitPositions::Last)
        .unwrap_or_else(|error| panic!("{error}"));
    let prefix = cache.snapshot();
    for (piece, llama_cpp_log_prob) in LLAMA_CPP_FRANCE_NEXT_TOKENS {
        let token = tokenizer.token_id(&piece.replace(' ', "\u{2581}")).unwrap_or_else(|| panic!("no token {piece:?}"));
        cache.restore(&prefix);
        let continuation = [prompt[prompt.len() - 1], token];
        let log_probs =
            model.continuation_log_probs(&mut cache, &continuation).unwrap_or_else(|error| panic!("{error}"));
        eprintln!("The capital of France is|{piece:?}: log-prob {:.3} (llama.cpp {llama_cpp_log_prob})", log_probs[1]);
        assert!((log_probs[1] - llama_cpp_log_prob).abs() < LOG_PROB_TOLERANCE, "{piece:?}: {}", log_probs[1]);
    }
}

#[test]
fn greedy_completions_name_paris() {
    let _guard = exclusive();
    let Loaded { model, tokenizer } = loaded();
    // Greedy after the bare "The capital of France is" is " the capital of the country of
    // France." in llama.cpp too (" Paris" comes third), so the prompts lead up to the name.
    for prompt_text in ["The capital of France is the city of", "Question: What is the capital of France?\nAnswer:"] {
        let prompt = tokenizer.encode(prompt_text, true).unwrap_or_else(|error| panic!("{error}"));
        let mut cache = model.new_cache();
        model.forward(&prompt, &mut cache, LogitPositions::Last).unwrap_or_else(|error| panic!("{error}"));
        let started = Instant::now();
        let generated = model
            .greedy_continuation(&mut cache, 8, &[tokenizer.eos_token_id()])
            .unwrap_or_else(|error| panic!("{error}"));
        let seconds = started.elapsed().as_secs_f64();
        let text = tokenizer.decode(&generated, true).unwrap_or_else(|error| panic!("{error}"));
        eprintln!("{prompt_text:?}|{text:?} ({:.1} generated tokens/s)", generated.len() as f64 / seconds);
        assert!(text.trim_start().starts_with("Paris"), "{prompt_text:?}: greedy continuation {text:?}");
    }
}

#[test]
fn prompt_processing_speed_is_reported_and_prefix_reuse_agrees() {
    let _guard = exclusive();
    let Loaded { model, tokenizer } = loaded();
    let paragraph_tokens = tokenizer.encode(&paragraph(), true).unwrap_or_else(|error| panic!("{error}"));
    // <bos>, then the paragraph's tokens over and over up to the prompt length.
    let prompt: Vec<u32> = tokenizer
        .bos_token_id()
        .into_iter()
        .chain(paragraph_tokens[1..].iter().copied().cycle())
        .take(SPEED_PROMPT_TOKENS)
        .collect();

    let wall = Instant::now();
    let cpu_before = process_cpu_seconds();
    let mut cache = model.new_cache();
    let last = model.forward(&prompt, &mut cache, LogitPositions::Last).unwrap_or_else(|error| panic!("{error}"));
    let wall_seconds = wall.elapsed().as_secs_f64();
    let cpu_seconds = cpu_before.zip(process_cpu_seconds()).map(|(before, after)| after - before);
    eprintln!(
        "prompt processing: {} tokens in {wall_seconds:.2}s wall = {:.0} tokens/s; CPU {} ({} thread(s))",
        prompt.len(),
        prompt.len() as f64 / wall_seconds,
        cpu_seconds.map_or("unavailable".to_string(), |cpu| format!(
            "{cpu:.2}s = {:.0} tokens per CPU-second",
            prompt.len() as f64 / cpu.max(1e-9)
        )),
        model.threads()
    );

    // The same prompt as a cached prefix plus a 20-token suffix gives the same last logits.
    let split = prompt.len() - 20;
    let mut prefix_cache: KvCache = model.new_cache();
    model.forward(&prompt[..split], &mut prefix_cache, LogitPositions::Last).unwrap_or_else(|error| panic!("{error}"));
    let snapshot = prefix_cache.snapshot();
    prefix_cache.restore(&snapshot);
    let resumed = model
        .forward(&prompt[split..], &mut prefix_cache, LogitPositions::Last)
        .unwrap_or_else(|error| panic!("{error}"));
    let difference = (last - resumed)
        .and_then(|difference| difference.abs())
        .and_then(|difference| difference.max(0))
        .and_then(|maximum| maximum.to_scalar::<f32>())
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(difference < 1e-3, "cached-prefix logits differ by {difference}");
}

#[test]
fn the_differentiable_path_gives_the_paragraph_perplexity_and_gradients_reach_every_layer() {
    use duet::teacher::llm::{LoraAdapters, LoraConfig, LoraTarget};
    let _turn = exclusive();
    let Loaded { model, tokenizer } = loaded();
    let tokens = tokenizer.encode(&paragraph(), true).expect("tokenize");
    // The first 64 tokens: the differentiable pass keeps every activation for the backward.
    let tokens = &tokens[..64];
    let mut cache = model.new_cache();
    model.extend(&tokens[..1], &mut cache).expect("<bos>");
    let inference = model.continuation_log_probs(&mut cache, &tokens[1..]).expect("inference log-probs");

    let adapters = LoraAdapters::new(model.config(), LoraConfig::default(), 0).expect("adapters");
    let started = Instant::now();
    let log_probs = model.differentiable_log_probs(&tokens[..1], &tokens[1..], Some(&adapters)).expect("forward");
    let forward_seconds = started.elapsed().as_secs_f64();
    let differentiable: Vec<f32> = log_probs.to_vec1().expect("values");
    let largest_difference =
        differentiable.iter().zip(&inference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(largest_difference < 1e-3, "differentiable and inference log-probs differ by {largest_difference}");

    let started = Instant::now();
    let gradients = log_probs.sum_all().and_then(|total| total.neg()).and_then(|loss| loss.backward()).expect("backward");
    let backward_seconds = started.elapsed().as_secs_f64();
    for layer in 0..model.config().layer_count {
        for target in LoraConfig::default().targets {
            let (_, up) = adapters.pair(layer, target).expect("adapter");
            let gradient = gradients.get(up.as_tensor()).expect("a gradient for every adapter");
            let largest = gradient.abs().and_then(|g| g.max_all()).and_then(|g| g.to_scalar::<f32>()).expect("max");
            assert!(largest > 0.0 && largest.is_finite(), "layer {layer} {target:?}: {largest}");
        }
    }
    assert!(adapters.pair(0, LoraTarget::Gate).is_none());
    eprintln!(
        "differentiable pass, 64 tokens, LoRA rank 8 on q/k/v/o of {} layers: forward {forward_seconds:.2}s, \
         backward {backward_seconds:.2}s, largest log-prob difference to inference {largest_difference:.2e}",
        model.config().layer_count
    );
}
