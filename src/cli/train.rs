//! `duet train`, `duet eval`, `duet bench learn` and `duet bench train`: the student's
//! headless commands over `training::Trainer`, printing progress and one JSON line each.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::env::scene::Scene;
use crate::metrics::{MetricsLog, UpdateRecord};
use crate::training::checkpoint::{read_checkpoint_summary, write_file_atomically};
use crate::training::{TeacherKind, Trainer, TrainerConfig};

/// What `duet train` was asked to do.
#[derive(Clone, Debug)]
pub struct TrainArgs {
    /// Required unless resuming (then DIR/config.ron by default).
    pub scene: Option<PathBuf>,
    pub frames: u64,
    pub seed: Option<u64>,
    /// `none` or `oracle`; by default none, or the resumed run's.
    pub teacher: Option<String>,
    pub out: Option<PathBuf>,
    pub resume: bool,
    /// Updates between checkpoints (0: only at the end).
    pub checkpoint_every: u64,
    /// Updates between feedback refreshes of the teacher's prompt (0: never).
    pub feedback_every: u64,
    /// A prompt template for an LLM teacher in place of the scene's.
    pub prompt: Option<PathBuf>,
}

/// `duet train`: trains the scene's student, appending one JSON record per PPO update to
/// `DIR/metrics.jsonl` and printing one progress line per update. `DIR/config.ron` records
/// the run as a scene; checkpoints go to `DIR/checkpoint.ron` + safetensors.
pub fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    let resumed = match (&args.out, args.resume) {
        (Some(out), true) => Some(read_checkpoint_summary(out)?),
        (None, true) => bail!("--resume needs --out DIR (the run to continue)"),
        _ => None,
    };
    let scene_path = match (&args.scene, &args.out, args.resume) {
        (Some(path), _, _) => path.clone(),
        (None, Some(out), true) => out.join("config.ron"),
        _ => bail!("--scene FILE is required"),
    };
    let mut scene = Scene::load(&scene_path)?;
    if let Some(seed) = args.seed.or(resumed.map(|r| r.seed)) {
        scene.seed = seed;
    }
    if let Some(prompt) = &args.prompt {
        scene.teacher.prompt = Some(prompt.clone());
    }
    let teacher = match (&args.teacher, resumed) {
        (Some(name), _) => name.parse()?,
        (None, Some(summary)) => summary.teacher,
        (None, None) => TeacherKind::None,
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = scene_path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(format!("{stem}-{}-seed{}", teacher.name(), scene.seed))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let config = TrainerConfig::from_scene(&scene, teacher)?;
    let metrics_path = out.join("metrics.jsonl");
    let (mut trainer, mut log) = if args.resume {
        let trainer = Trainer::resume(config, &out)?;
        println!("resuming {} at update {}, frame {}", out.display(), trainer.updates(), trainer.frames());
        (trainer, MetricsLog::append_to(&metrics_path)?)
    } else {
        // The run's record is itself a scene (seed override and every student default
        // spelled out), so `duet train --scene DIR/config.ron` repeats it.
        let text = format!(
            "// duet train --scene {} --teacher {} --frames {} --seed {}\n{}\n",
            scene_path.display(),
            teacher.name(),
            args.frames,
            scene.seed,
            scene.to_ron_string_with_student()
        );
        let config_path = out.join("config.ron");
        write_file_atomically(&config_path, text.as_bytes())
            .with_context(|| format!("writing {}", config_path.display()))?;
        (Trainer::new(config)?, MetricsLog::create(&metrics_path)?)
    };
    trainer.set_feedback_every(args.feedback_every);
    let interrupted = interrupt_flag();
    let (started, start_frames) = (Instant::now(), trainer.frames());
    let progress = Progress::new(args.frames, trainer.frames());
    trainer.start_clock();
    while trainer.frames() < args.frames {
        if interrupted.load(Ordering::SeqCst) {
            let saved = trainer.save_checkpoint(&out)?;
            progress.finish();
            println!(
                "interrupted at update {}, frame {}: checkpoint {}; continue with `duet train --out {} --resume`",
                trainer.updates(),
                trainer.frames(),
                saved.display(),
                out.display()
            );
            // 128 + SIGINT, as shells report an interrupted command.
            return Ok(ExitCode::from(130));
        }
        let record = trainer.train_one_update()?;
        log.append(&record)?;
        progress.show(&record);
        if args.checkpoint_every > 0 && record.update % args.checkpoint_every == 0 {
            trainer.save_checkpoint(&out)?;
        }
    }
    trainer.save_checkpoint(&out)?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let frames = trainer.frames() - start_frames;
    println!(
        "trained {frames} frames in {seconds:.1} s ({:.0} frames/s); metrics in {}",
        frames as f64 / seconds.max(1e-9),
        metrics_path.display()
    );
    if teacher != TeacherKind::None {
        print_feedback(&trainer);
    }
    Ok(ExitCode::SUCCESS)
}

/// The feedback the run's student has for its teacher (`feedback::FeedbackRecorder`), as the
/// teacher's prompt would get it; counted since this process started (a resumed run restarts).
fn print_feedback(trainer: &Trainer) {
    let Some(feedback) = trainer.feedback() else { return };
    let text = feedback.render(crate::training::FEEDBACK_LINES);
    if text.is_empty() {
        println!("feedback for the teacher: no followed advice has settled yet");
        return;
    }
    let in_prompt = trainer.feedback_sent() == feedback.prompt_text(crate::training::FEEDBACK_LINES);
    let sent = if in_prompt { ", as in the teacher's prompt" } else { "" };
    println!(
        "feedback for the teacher ({} segments of followed advice{sent}):
{text}",
        feedback.segments()
    );
}

/// Training progress: a bar (frames/s, success, return) on a terminal, one plain line per
/// update otherwise (logs, CI), so captured output stays readable.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(total_frames: u64, frames: u64) -> Progress {
        if !std::io::stdout().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new(total_frames).with_position(frames);
        let style = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30.cyan/blue}] {human_pos}/{human_len} frames, eta {eta} {msg}",
        )
        .map(|style| style.progress_chars("=> "));
        // The template is fixed and valid; fall back to the default style all the same.
        bar.set_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()));
        Progress { bar: Some(bar) }
    }

    fn show(&self, record: &UpdateRecord) {
        let Some(bar) = &self.bar else {
            println!("{}", progress_line(record));
            return;
        };
        let or_dash = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.2}"));
        bar.set_position(record.frames);
        bar.set_message(format!(
            "| {:.0} frames/s | success {} | return {} | update {}",
            record.fps,
            or_dash(record.success_rate),
            or_dash(record.return_mean),
            record.update
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Set by Ctrl-C (SIGINT): training stops after the update in progress and checkpoints.
/// Installing the handler can fail only when one is already installed (a second `train`
/// in one process): then Ctrl-C keeps its default meaning.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    if let Err(error) = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst)) {
        eprintln!("duet: Ctrl-C will not checkpoint ({error})");
    }
    flag
}

/// What `duet eval` was asked to do.
#[derive(Clone, Debug)]
pub struct EvalArgs {
    pub run: PathBuf,
    pub episodes: usize,
    pub greedy: bool,
    pub seed: Option<u64>,
}

/// Salt for evaluation envs' default seed, so they differ from the training envs'.
const EVALUATION_SEED_SALT: u64 = 0xE7A1_0000_0000_0001;

/// `duet eval`: plays episodes with a run's checkpointed student; prints one JSON line.
pub fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    if args.episodes == 0 || args.episodes > 1_000_000 {
        bail!("--episodes must be between 1 and 1000000 (got {})", args.episodes);
    }
    let summary = read_checkpoint_summary(&args.run)?;
    let mut scene = Scene::load(args.run.join("config.ron"))?;
    scene.seed = summary.seed;
    let mut trainer = Trainer::resume(TrainerConfig::from_scene(&scene, summary.teacher)?, &args.run)?;
    let seed = args.seed.unwrap_or(summary.seed ^ EVALUATION_SEED_SALT);
    let result = trainer.evaluate(args.episodes, args.greedy, seed)?;
    let line = serde_json::json!({
        "run": args.run.display().to_string(),
        "frames": summary.frames,
        "updates": summary.updates,
        "greedy": args.greedy,
        "seed": seed,
        "episodes": result.episodes,
        "success_rate": result.success_rate,
        "return_mean": result.return_mean,
        "length_mean": result.length_mean,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// One line per update: where training stands and how fast it goes.
fn progress_line(record: &UpdateRecord) -> String {
    let or_dash = |value: Option<f64>, digits: usize| value.map_or("-".into(), |v| format!("{v:.digits$}"));
    let mut line = format!(
        "update {:>5} | frames {:>9} | fps {:>6.0} | episodes {:>6} | return {} | success {} | length {} | \
         entropy {:.3} | value loss {:.4} | approx kl {:.4}",
        record.update,
        record.frames,
        record.fps,
        record.episodes,
        or_dash(record.return_mean, 3),
        or_dash(record.success_rate, 2),
        or_dash(record.episode_length, 1),
        record.entropy,
        record.value_loss,
        record.approx_kl,
    );
    if record.teacher_coverage > 0.0 {
        line.push_str(&format!(
            " | teacher kl {} | agreement {} | lambda {:.3}",
            or_dash(record.teacher_kl, 3),
            or_dash(record.teacher_agreement, 2),
            record.lambda
        ));
    }
    line
}

/// What `duet bench learn` was asked to do.
#[derive(Clone, Debug)]
pub struct BenchLearnArgs {
    pub scene: PathBuf,
    pub frames: u64,
    pub seeds: u64,
    /// First seed [default: the scene's].
    pub seed: Option<u64>,
    /// `none`, `oracle`, or any teacher `TeacherKind` parses.
    pub teacher: String,
    pub out: Option<PathBuf>,
    pub teacher_episodes: usize,
    /// The student waits for an LLM teacher's advice on each new situation.
    pub wait_for_advice: bool,
    /// Updates between feedback refreshes of the teacher's prompt (0: never).
    pub feedback_every: u64,
    /// A prompt template for an LLM teacher in place of the scene's.
    pub prompt: Option<PathBuf>,
}

/// `duet bench learn`: trains one student per seed, prints a progress line per update to
/// stderr and the result as one JSON object on stdout.
pub fn bench_learn(args: &BenchLearnArgs) -> anyhow::Result<ExitCode> {
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if args.seeds == 0 || args.seeds > 1000 {
        bail!("--seeds must be between 1 and 1000 (got {})", args.seeds);
    }
    let mut scene = Scene::load(&args.scene)?;
    if let Some(seed) = args.seed {
        scene.seed = seed;
    }
    scene.teacher.wait_for_advice |= args.wait_for_advice;
    if let Some(prompt) = &args.prompt {
        scene.teacher.prompt = Some(prompt.clone());
    }
    let teacher: TeacherKind = args.teacher.parse()?;
    let config = TrainerConfig::from_scene(&scene, teacher)
        .with_context(|| format!("{}: cannot train on this scene", args.scene.display()))?;
    let bench = crate::bench::learn::LearnBenchConfig {
        config,
        frames: args.frames,
        seeds: args.seeds,
        out: args.out.clone(),
        teacher_episodes: args.teacher_episodes,
        feedback_every: args.feedback_every,
    };
    let result = crate::bench::learn::learn(&bench, &mut |seed, record| {
        eprintln!("seed {seed} | {}", progress_line(record));
    })?;
    println!("{}", serde_json::to_string(&result).context("serialising the result")?);
    Ok(ExitCode::SUCCESS)
}

/// `duet bench train`: the student's training throughput on a scene, as one JSON line.
pub fn bench_train(scene_path: &std::path::Path, frames: u64, teacher: &str) -> anyhow::Result<ExitCode> {
    if frames == 0 {
        bail!("--frames must be at least 1");
    }
    let scene = Scene::load(scene_path)?;
    let teacher: TeacherKind = teacher.parse()?;
    let config = TrainerConfig::from_scene(&scene, teacher)
        .with_context(|| format!("{}: cannot train on this scene", scene_path.display()))?;
    let result = crate::bench::train::train_throughput(config, frames)?;
    println!("{}", serde_json::to_string(&result).context("serialising the result")?);
    Ok(ExitCode::SUCCESS)
}
