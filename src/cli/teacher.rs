//! `duet teacher ask` and `duet bench teacher`: the LLM teacher from the command line, on
//! states built from a scene (its level and seed), with the scene's teacher settings.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::bench::teacher::{self as teacher_bench, TeacherState};
use crate::env::scene::{Scene, ScoringMode, TeacherSpec, WeightPrecision};
use crate::env::text::Detail;
use crate::env::vec_env::EnvKind;
use crate::skills::TeacherOption;
use crate::teacher::advice::{LlmAdvisor, LlmAdvisorSettings, template_for_spec};
use crate::teacher::advisor::Advisor;
use crate::teacher::llm::TreeNormalization;

/// Reads a scoring mode's command-line name.
pub fn parse_scoring(name: &str) -> anyhow::Result<ScoringMode> {
    match name.to_ascii_lowercase().as_str() {
        "continuation" => Ok(ScoringMode::Continuation),
        "menu" => Ok(ScoringMode::Menu),
        "sample" | "sample-and-count" | "sampleandcount" => Ok(ScoringMode::SampleAndCount),
        other => bail!("unknown scoring mode {other:?}; the modes are continuation, menu, sample-and-count"),
    }
}

/// `coarse` or `detailed` (`--description`).
pub fn parse_detail(name: &str) -> anyhow::Result<Detail> {
    match name.to_ascii_lowercase().as_str() {
        "coarse" => Ok(Detail::Coarse),
        "detailed" => Ok(Detail::Detailed),
        other => bail!("unknown description detail {other:?}; the choices are coarse, detailed"),
    }
}

/// Overrides of a scene's teacher section from the command line.
#[derive(Clone, Debug, Default)]
pub struct TeacherOverrides {
    pub model: Option<PathBuf>,
    pub prompt: Option<PathBuf>,
    pub scoring: Option<String>,
    pub description: Option<String>,
    /// A file whose text goes in the prompt's `{feedback}` slot (e.g. a run's feedback.txt).
    pub feedback: Option<PathBuf>,
    /// `f32` or `f16` layer weights.
    pub weights: Option<String>,
    /// LoRA adapters from `duet tune`.
    pub adapters: Option<PathBuf>,
    pub rationale: bool,
    /// Continuation scoring over the whole vocabulary (true log-likelihoods) instead of over
    /// the competing option tokens.
    pub full_vocabulary: bool,
}

/// The scene's environment and seed and its teacher section (the embodied prompt by default
/// in apartments) with `overrides` applied.
fn scene_teacher(scene_path: &Path, overrides: &TeacherOverrides) -> anyhow::Result<(EnvKind, u64, TeacherSpec)> {
    let scene = Scene::load(scene_path)?;
    let env = scene.env_kind().map_err(|error| anyhow::anyhow!("{}: {error}", scene_path.display()))?;
    let mut spec = crate::training::teacher_settings_for(&scene);
    if let Some(model) = &overrides.model {
        spec.model = Some(model.clone());
    }
    if let Some(prompt) = &overrides.prompt {
        spec.prompt = Some(prompt.clone());
    }
    if let Some(scoring) = &overrides.scoring {
        spec.scoring = parse_scoring(scoring)?;
    }
    if let Some(weights) = &overrides.weights {
        spec.weights = match weights.to_ascii_lowercase().as_str() {
            "f32" => WeightPrecision::F32,
            "f16" => WeightPrecision::F16,
            other => bail!("unknown weight precision {other:?}; the choices are f32, f16"),
        };
    }
    if let Some(adapters) = &overrides.adapters {
        spec.adapters = Some(adapters.clone());
    }
    if let Some(detail) = &overrides.description {
        spec.description = parse_detail(detail)?;
    }
    spec.rationale |= overrides.rationale;
    Ok((env, scene.seed, spec))
}

fn load_advisor(spec: &TeacherSpec, overrides: &TeacherOverrides) -> anyhow::Result<(LlmAdvisor, String)> {
    let template = template_for_spec(spec)?;
    let mut settings = LlmAdvisorSettings::from_spec(spec)?;
    if overrides.full_vocabulary {
        settings.normalization = TreeNormalization::Vocabulary;
    }
    let mut advisor = LlmAdvisor::load(settings, &template)?;
    if let Some(path) = &overrides.feedback {
        let feedback = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the feedback text", path.display()))?;
        advisor
            .set_prompt(&template, &feedback, 1)
            .with_context(|| format!("{}: the prompt with this feedback was refused", path.display()))?;
    }
    Ok((advisor, template.source().to_string()))
}

/// `duet teacher ask`: the state after `steps` oracle steps of the scene's episode `seed`;
/// prints the description, the prompt, the distribution, the rationale and the timings.
pub fn ask(
    scene_path: &Path,
    seed: Option<u64>,
    steps: usize,
    overrides: &TeacherOverrides,
) -> anyhow::Result<ExitCode> {
    let (env, scene_seed, spec) = scene_teacher(scene_path, overrides)?;
    let Some(level) = env.level().cloned() else {
        bail!(
            "{}: `teacher ask` walks a grid episode; for apartments use `bench teacher --answers FILE`",
            scene_path.display()
        );
    };
    let seed = seed.unwrap_or(scene_seed);
    let (world, fog) = teacher_bench::state_after_oracle_steps(&level, seed, steps);
    let state = teacher_bench::teacher_state(&level, &world, &fog, spec.description);
    let load_started = std::time::Instant::now();
    let (mut advisor, prompt_source) = load_advisor(&spec, overrides)?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    println!("== state ({}, seed {seed}, {steps} oracle steps)\n{}", level.name(), state.request.description);
    println!("\n== prompt ({prompt_source})\n{}", advisor.prompt_text(&state.request));
    let advice = advisor.advise(&state.request).context("the teacher could not advise")?;
    println!("\n== advice ({:?} scoring, model {})", spec.scoring, advisor.model_name());
    let mut ranked: Vec<(TeacherOption, f32)> =
        advice.options.iter().copied().zip(advice.probabilities.iter().copied()).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (option, probability) in &ranked {
        let oracle = if *option == state.oracle_option { "   <- the oracle's option" } else { "" };
        println!("{probability:>7.3}  {}{oracle}", option.phrase());
    }
    if let Some(rationale) = &advice.rationale {
        println!("rationale: {rationale}");
    }
    let timing = advisor.last_timing();
    println!(
        "\n== timings\nmodel load and prompt prefix {load_seconds:.2}s; this advice {:.0} ms with the prefix \
         cached: state {} tokens in {:.0} ms, scoring {:.0} ms ({} option tokens), rationale {:.0} ms",
        timing.total_seconds * 1e3,
        timing.state_tokens,
        timing.state_seconds * 1e3,
        timing.scoring_seconds * 1e3,
        timing.option_tokens,
        timing.rationale_seconds * 1e3,
    );
    // Again from nothing: what a request costs right after the prompt changed.
    advisor.forget_caches();
    advisor.advise(&state.request)?;
    let cold = advisor.last_timing().clone();
    println!(
        "cold (prefix recomputed): {:.0} ms, of which prefix {} tokens in {:.0} ms",
        cold.total_seconds * 1e3,
        cold.prefix_tokens,
        cold.prefix_seconds * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

/// What `duet bench teacher` was asked to do.
#[derive(Clone, Debug)]
pub struct BenchTeacherArgs {
    pub scene: PathBuf,
    pub states: usize,
    pub seed: Option<u64>,
    pub cold: usize,
    pub overrides: TeacherOverrides,
    /// Also write every state's prompt as JSON lines (tools/llama_cpp_peer.py reads them).
    pub dump_prompts: Option<PathBuf>,
    /// Also write every state's description, oracle option and the teacher's answer as JSON lines.
    pub answers: Option<PathBuf>,
}

/// `duet bench teacher`: one JSON line (see `bench::teacher::TeacherBenchResult`).
pub fn bench_teacher(args: &BenchTeacherArgs) -> anyhow::Result<ExitCode> {
    let (env, scene_seed, spec) = scene_teacher(&args.scene, &args.overrides)?;
    let seed = args.seed.unwrap_or(scene_seed);
    let states: Vec<TeacherState> = match &env {
        EnvKind::Grid(level) => teacher_bench::sample_states(level, seed, args.states, spec.description),
        EnvKind::Embodied(setup) => teacher_bench::sample_embodied_states(setup, seed, args.states)
            .map_err(|error| anyhow::anyhow!("{}: {error}", args.scene.display()))?,
    };
    if states.is_empty() {
        bail!("{}: no states to ask about", args.scene.display());
    }
    let (mut advisor, prompt_source) = load_advisor(&spec, &args.overrides)?;
    if let Some(path) = &args.dump_prompts {
        teacher_bench::dump_prompts(&advisor, &states, path)
            .with_context(|| format!("{}: cannot write the prompts", path.display()))?;
    }
    let result = teacher_bench::bench_teacher(&mut advisor, &env.name(), &prompt_source, &states, args.cold)?;
    if let Some(path) = &args.answers {
        let mut text = String::new();
        for answer in &result.answers {
            text.push_str(&serde_json::to_string(answer)?);
            text.push('\n');
        }
        crate::training::checkpoint::write_file_atomically(path, text.as_bytes())
            .with_context(|| format!("{}: cannot write the answers", path.display()))?;
    }
    println!("{}", serde_json::to_string(&result)?);
    Ok(ExitCode::SUCCESS)
}
