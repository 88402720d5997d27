//! The `duet` binary: opens the app by default, or runs a headless command.
//! Errors surface here as `anyhow` messages naming the file and the problem.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "duet",
    version,
    about = "An LLM teacher and an RL student learning from each other, live",
    long_about = "An LLM teacher and an RL student learning from each other, live.\n\nWithout a command, duet opens the app on --scene (default scenes/default.ron)."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    app: AppArgs,
}

/// Without a subcommand, `duet` opens the app.
#[derive(clap::Args, Debug)]
struct AppArgs {
    /// Scene file (RON) to open [default: scenes/default.ron, else the built-in default scene]
    #[arg(long, value_name = "FILE")]
    scene: Option<PathBuf>,
    /// Render `--frames` frames, save the window as a PNG here, then exit (for tests).
    #[arg(long, value_name = "PATH")]
    screenshot: Option<PathBuf>,
    /// Frames to render before `--screenshot` captures (also `--exit-after-frames`).
    #[arg(long, visible_alias = "exit-after-frames", value_name = "N", default_value_t = 60, requires = "screenshot")]
    frames: u32,
    /// With --screenshot: also wait for N PPO updates before capturing (for tests).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "screenshot", hide = true)]
    min_updates: u64,
    /// How fast training steps at first (+ / - change it).
    #[arg(long, value_parser = ["watch", "fast", "max"])]
    speed: Option<String>,
    /// Append one JSON record per PPO update to DIR/metrics.jsonl, as `duet train` does;
    /// checkpoints saved in the app go here too [default: runs/app].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// For an audience: fullscreen, larger text (`?` lists the keys).
    #[arg(long)]
    demo: bool,
    /// Who advises the student when the app opens (`T` toggles it off and on): the LLM
    /// (loads in the background; the app runs without advice until it answers), the
    /// scripted oracle, or none.
    #[arg(long, value_parser = ["llm", "oracle", "none"], default_value = "llm")]
    teacher: String,
    /// The side panel's tab when the app opens (for screenshots).
    #[arg(long, value_parser = ["teacher", "curves", "feedback", "prompt", "run", "tuning"])]
    tab: Option<String>,
    /// Race view: the scene also trains without a teacher beside the run (same seed), both
    /// success curves on one plot (the Run tab turns it on and off too).
    #[arg(long)]
    race: bool,
    /// Start with the distillation weight λ set to W instead of the scene's schedule (the Run
    /// tab's override: untick it there to go back to the schedule).
    #[arg(long, value_name = "W")]
    lambda: Option<f64>,
    /// Open with FILE's prompt template in the editor (the Prompt tab), not yet applied:
    /// Apply checks it and puts it in force mid-run.
    #[arg(long, value_name = "FILE")]
    prompt_draft: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay trajectories recorded from the real MiniGrid and report every mismatch.
    Conformance {
        /// Fixture files (.jsonl or .jsonl.gz), one trajectory per line.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print at most this many mismatches per trajectory.
        #[arg(long, default_value_t = 10)]
        max_report: usize,
    },
    /// Train the PPO student headless; writes DIR/metrics.jsonl, DIR/config.ron and
    /// checkpoints (DIR/checkpoint.ron + safetensors).
    Train {
        /// Scene file (RON): level, envs, seed and student hyper-parameters [with --resume:
        /// default DIR/config.ron].
        #[arg(long, value_name = "FILE", required_unless_present = "resume")]
        scene: Option<PathBuf>,
        /// Env frames to train for in all (over all envs, counting a resumed run's frames);
        /// stops at the first update past it.
        #[arg(long, value_name = "N", default_value_t = 1_000_000)]
        frames: u64,
        /// Overrides the scene's seed.
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// Who advises the student: `none`, `oracle` or `llm` [default: none, or the resumed run's].
        #[arg(long)]
        teacher: Option<String>,
        /// Output directory [default: runs/<scene file stem>-<teacher>-seed<S>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Continue the run checkpointed in --out DIR (metrics are appended).
        #[arg(long, requires = "out")]
        resume: bool,
        /// Checkpoint every N updates (and always at the end).
        #[arg(long, value_name = "N", default_value_t = 10)]
        checkpoint_every: u64,
        /// Put the student's feedback in the teacher's prompt every N updates, when it changed
        /// (0: never; LLM teacher only).
        #[arg(long, value_name = "N", default_value_t = duet::training::FEEDBACK_EVERY_UPDATES)]
        feedback_every: u64,
        /// A prompt template for the LLM teacher [default: the scene's, else the shipped one].
        #[arg(long, value_name = "FILE")]
        prompt: Option<PathBuf>,
    },
    /// Tune the LLM teacher's LoRA adapters from what its advice earns a frozen student:
    /// token-level PPO (the baseline), CORY or ArCHer. Writes DIR/metrics.jsonl (iteration 0:
    /// the base teacher) and DIR/adapters*.safetensors; prints one JSON line.
    Tune {
        /// Scene file (RON): the level, and the teacher's model (`teacher.model`).
        #[arg(long, value_name = "FILE")]
        scene: PathBuf,
        /// The tuning algorithm: ppo, cory or archer.
        #[arg(long, value_name = "ALGO", default_value = "ppo")]
        algo: duet::feedback::tuning::Algorithm,
        #[arg(long, value_name = "N", default_value_t = 10)]
        iterations: usize,
        /// Output directory [default: runs/tune-<scene>-<algo>].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// A `duet train` run on the same level whose student, frozen, judges the advice
        /// [default: a fresh untrained student].
        #[arg(long, value_name = "RUN")]
        student: Option<PathBuf>,
        /// Advice utterances per iteration (ArCHer: episodes).
        #[arg(long, value_name = "N", default_value_t = 8)]
        batch: usize,
        /// Distinct situations sampled from the level.
        #[arg(long, value_name = "N", default_value_t = 16)]
        situations: usize,
        /// Prompt template [default: assets/prompts/grid-tune.txt, instructions without examples].
        #[arg(long, value_name = "FILE")]
        prompt: Option<PathBuf>,
        /// A GGUF model (gemma3, llama or qwen2) [default: the scene's, else the default teacher].
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        /// Evaluate agreement and KL to the base every N iterations (and after the last).
        #[arg(long, value_name = "N", default_value_t = 5)]
        evaluate_every: usize,
        /// ArCHer: most advice turns of an episode.
        #[arg(long, value_name = "N", default_value_t = 3)]
        archer_turns: usize,
        /// ArCHer: the teacher advises until the episode ends, and an episode still on after
        /// --archer-turns earns 0, instead of the frozen student playing it out (which pays
        /// advice for handing over to a student that wins from anywhere).
        #[arg(long)]
        teacher_finishes: bool,
    },
    /// Play episodes with a trained student (no learning); prints one JSON line.
    Eval {
        /// A `duet train` output directory (config.ron + checkpoint).
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Episodes to play.
        #[arg(long, value_name = "N", default_value_t = 100)]
        episodes: usize,
        /// Take the most likely action instead of sampling.
        #[arg(long)]
        greedy: bool,
        /// Seeds the evaluation envs [default: derived from the run's seed].
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
    },
    /// Ask the LLM teacher about a state of a scene's level.
    Teacher {
        #[command(subcommand)]
        what: TeacherCommand,
    },
    /// Measure throughput; prints one JSON line.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum TeacherCommand {
    /// Print the description, the prompt, the teacher's distribution over the legal options,
    /// the rationale and the timings for one state.
    Ask {
        /// Scene file (RON): its level, seed and teacher section.
        #[arg(long, value_name = "FILE")]
        scene: PathBuf,
        /// Episode seed [default: the scene's].
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// Oracle steps into the episode before asking.
        #[arg(long, value_name = "K", default_value_t = 0)]
        steps: usize,
        #[command(flatten)]
        teacher: TeacherArgs,
    },
}

/// Overrides of the scene's teacher section.
#[derive(clap::Args, Debug, Clone)]
struct TeacherArgs {
    /// A GGUF model [default: the scene's, else the default model (`make model`)].
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// A prompt template [default: the scene's, else the shipped one for the scoring mode and
    /// description detail, in assets/prompts/].
    #[arg(long, value_name = "FILE")]
    prompt: Option<PathBuf>,
    /// continuation, menu or sample-and-count [default: the scene's].
    #[arg(long)]
    scoring: Option<String>,
    /// How much of the state the teacher is told: coarse (held and seen objects) or detailed
    /// (also what is in front and where each object is) [default: the scene's].
    #[arg(long)]
    description: Option<String>,
    /// A text file for the prompt's {feedback} slot (e.g. a run's seed-S/feedback.txt).
    #[arg(long, value_name = "FILE")]
    feedback: Option<PathBuf>,
    /// Precision of the model's layer weights: f32 or f16 [default: the scene's, else f32].
    #[arg(long)]
    weights: Option<String>,
    /// LoRA adapters tuned by `duet tune` (a safetensors file) [default: the scene's, else none].
    #[arg(long, value_name = "FILE")]
    adapters: Option<PathBuf>,
    /// Also generate a short rationale.
    #[arg(long)]
    rationale: bool,
    /// Continuation scoring over the whole vocabulary (true log-likelihoods) instead of over
    /// the option tokens that compete at each point.
    #[arg(long)]
    full_vocabulary: bool,
}

impl TeacherArgs {
    fn overrides(self) -> duet::cli::teacher::TeacherOverrides {
        duet::cli::teacher::TeacherOverrides {
            model: self.model,
            prompt: self.prompt,
            scoring: self.scoring,
            description: self.description,
            feedback: self.feedback,
            weights: self.weights,
            adapters: self.adapters,
            rationale: self.rationale,
            full_vocabulary: self.full_vocabulary,
        }
    }
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// The LLM teacher over states from oracle and random rollouts: latency (cold and with
    /// the prompt prefix cached), prompt speed, agreement with the oracle; one JSON line.
    Teacher {
        /// Scene file (RON): its level, seed and teacher section.
        #[arg(long, value_name = "FILE")]
        scene: PathBuf,
        /// Distinct states to ask about.
        #[arg(long, value_name = "N", default_value_t = 40)]
        states: usize,
        /// First episode seed [default: the scene's].
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// States also measured cold (caches dropped first).
        #[arg(long, value_name = "N", default_value_t = 4)]
        cold: usize,
        /// Write every state's prompt as JSON lines (for tools/llama_cpp_peer.py).
        #[arg(long, value_name = "FILE")]
        dump_prompts: Option<PathBuf>,
        /// Write every state's description, the oracle's option and the teacher's answer as JSON lines.
        #[arg(long, value_name = "FILE")]
        answers: Option<PathBuf>,
        #[command(flatten)]
        teacher: TeacherArgs,
    },
    /// Step a scene's environments with uniformly random actions (observations and
    /// auto-reset included).
    Env {
        /// Scene file (RON); its level, seed and number of envs are used.
        #[arg(long, default_value = "scenes/default.ron")]
        scene: PathBuf,
        /// Env steps to take in total (over all envs).
        #[arg(long, default_value_t = 2_000_000)]
        steps: u64,
        /// Worker threads stepping the envs.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Overrides the scene's number of parallel envs.
        #[arg(long)]
        num_envs: Option<usize>,
    },
    /// Train one student per seed (seed, seed+1, ...) for a frame budget; prints JSON with,
    /// per seed, the frames to reach 0.9 success over 100 episodes and the final success.
    Learn {
        /// Scene file (RON): level, envs, seed and student hyper-parameters.
        #[arg(long, value_name = "FILE")]
        scene: PathBuf,
        /// Env frames per seed (over all envs).
        #[arg(long, value_name = "N", default_value_t = 500_000)]
        frames: u64,
        /// Seeds to run, one after the other.
        #[arg(long, value_name = "K", default_value_t = 3)]
        seeds: u64,
        /// First seed [default: the scene's].
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// Who advises the student: `none`, `oracle` or `llm`.
        #[arg(long, default_value = "none")]
        teacher: String,
        /// Write each seed's metrics (DIR/seed-S/metrics.jsonl) and DIR/learn.json here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also play N episodes with the teacher alone (its own success).
        #[arg(long, value_name = "N", default_value_t = 0)]
        teacher_episodes: usize,
        /// The student waits for the LLM teacher's advice on each situation it has not been
        /// advised on yet (LLM4Teach's way; the scene's `teacher.wait_for_advice`).
        #[arg(long)]
        wait_for_advice: bool,
        /// Updates between refreshes of the feedback in the teacher's prompt (0: no feedback);
        /// each seed's last feedback goes to DIR/seed-S/feedback.txt.
        #[arg(long, value_name = "N", default_value_t = duet::training::FEEDBACK_EVERY_UPDATES)]
        feedback_every: u64,
        /// A prompt template for the LLM teacher [default: the scene's, else the shipped one].
        #[arg(long, value_name = "FILE")]
        prompt: Option<PathBuf>,
    },
    /// Run the app at max speed and report frame times (p50/p95, ms); without a display it
    /// runs under xvfb-run (Mesa's software Vulkan).
    Ui {
        /// Scene file (RON) to train while measuring.
        #[arg(long, default_value = "scenes/default.ron")]
        scene: PathBuf,
        /// Seconds to measure (after a short warm-up).
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// The side panel's tab while measuring: teacher (the default), curves, feedback,
        /// prompt, run or tuning.
        #[arg(long, value_name = "NAME")]
        tab: Option<String>,
        /// Also report each render pass's mean GPU time (timestamp queries; egui's pass is
        /// not instrumented), as `gpu_pass_ms` in the JSON.
        #[arg(long)]
        passes: bool,
    },
    /// Train a fresh student on a scene: frames/s with the PPO updates included.
    Train {
        /// Scene file (RON): level, envs, seed and student hyper-parameters.
        #[arg(long, default_value = "scenes/doorkey-8x8.ron")]
        scene: PathBuf,
        /// Env frames to train for (whole updates, over all envs).
        #[arg(long, value_name = "N", default_value_t = 100_000)]
        frames: u64,
        /// Who advises the student: `none`, `oracle` or `llm`.
        #[arg(long, default_value = "none")]
        teacher: String,
    },
}

#[cfg(feature = "app")]
fn open_app(args: AppArgs) -> anyhow::Result<ExitCode> {
    let screenshot = args.screenshot.map(|path| duet::app::ScreenshotRequest {
        path,
        frames: args.frames,
        min_updates: args.min_updates,
    });
    duet::app::run(duet::app::AppOptions {
        scene_path: args.scene,
        screenshot,
        speed: args.speed,
        out: args.out,
        demo: args.demo,
        teacher: args.teacher.parse()?,
        bench: None,
        tab: args.tab,
        race: args.race,
        lambda: args.lambda,
        prompt_draft: args.prompt_draft,
    })
}

#[cfg(not(feature = "app"))]
fn open_app(_args: AppArgs) -> anyhow::Result<ExitCode> {
    Err(anyhow::anyhow!("this build has no app (built without the `app` feature); see `duet --help`"))
}

/// The student's networks are tiny: candle's worker threads (one per core, spinning) cost
/// more than they save, so training defaults to one unless RAYON_NUM_THREADS says otherwise.
/// Results are the same with any count.
fn single_threaded_candle_by_default() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: called first thing in `main`, before any thread exists to read the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
}

/// Rasteriser threads for Mesa's software Vulkan (lavapipe) when the user sets none: finer
/// tiles on more threads than cores took the app's p95 frame time at max speed from 52 to
/// 44 ms on 2 cores (README, The app). Other drivers do not read it.
const SOFTWARE_RASTERISER_THREADS: &str = "8";

fn software_rasteriser_threads_by_default() {
    if std::env::var_os("LP_NUM_THREADS").is_none() {
        // SAFETY: called first thing in `main`, before any thread exists to read the environment.
        unsafe { std::env::set_var("LP_NUM_THREADS", SOFTWARE_RASTERISER_THREADS) };
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, None | Some(Command::Bench { what: BenchCommand::Ui { .. } })) {
        software_rasteriser_threads_by_default();
    }
    // The app too: its updates share two cores with drawing.
    if matches!(
        cli.command,
        None | Some(Command::Train { .. } | Command::Eval { .. } | Command::Tune { .. })
            | Some(Command::Bench {
                what: BenchCommand::Learn { .. } | BenchCommand::Train { .. } | BenchCommand::Ui { .. },
            })
    ) {
        single_threaded_candle_by_default();
    }
    let result = match cli.command {
        Some(Command::Conformance { files, max_report }) => duet::cli::conformance(&files, max_report),
        Some(Command::Teacher { what: TeacherCommand::Ask { scene, seed, steps, teacher } }) => {
            duet::cli::teacher::ask(&scene, seed, steps, &teacher.overrides())
        }
        Some(Command::Bench {
            what: BenchCommand::Teacher { scene, states, seed, cold, dump_prompts, answers, teacher },
        }) => duet::cli::teacher::bench_teacher(&duet::cli::teacher::BenchTeacherArgs {
            scene,
            states,
            seed,
            cold,
            overrides: teacher.overrides(),
            dump_prompts,
            answers,
        }),
        Some(Command::Bench { what: BenchCommand::Env { scene, steps, threads, num_envs } }) => {
            duet::cli::bench_env(&scene, steps, threads, num_envs)
        }
        Some(Command::Bench { what: BenchCommand::Train { scene, frames, teacher } }) => {
            duet::cli::bench_train(&scene, frames, &teacher)
        }
        Some(Command::Bench {
            what:
                BenchCommand::Learn {
                    scene,
                    frames,
                    seeds,
                    seed,
                    teacher,
                    out,
                    teacher_episodes,
                    wait_for_advice,
                    feedback_every,
                    prompt,
                },
        }) => duet::cli::bench_learn(&duet::cli::BenchLearnArgs {
            scene,
            frames,
            seeds,
            seed,
            teacher,
            out,
            teacher_episodes,
            wait_for_advice,
            feedback_every,
            prompt,
        }),
        Some(Command::Bench { what: BenchCommand::Ui { scene, seconds, tab, passes } }) => {
            duet::bench::ui::run(&duet::bench::ui::UiBenchArgs { scene, seconds, tab, passes })
        }
        Some(Command::Train {
            scene,
            frames,
            seed,
            teacher,
            out,
            resume,
            checkpoint_every,
            feedback_every,
            prompt,
        }) => {
            let args = duet::cli::TrainArgs {
                scene,
                frames,
                seed,
                teacher,
                out,
                resume,
                checkpoint_every,
                feedback_every,
                prompt,
            };
            duet::cli::train(&args)
        }
        Some(Command::Tune {
            scene,
            algo,
            iterations,
            out,
            student,
            batch,
            situations,
            prompt,
            model,
            evaluate_every,
            archer_turns,
            teacher_finishes,
        }) => duet::cli::tune::tune(&duet::cli::tune::TuneArgs {
            scene,
            algorithm: algo,
            iterations,
            out,
            student,
            batch,
            situations,
            prompt,
            model,
            evaluate_every,
            archer_turns,
            teacher_finishes,
        }),
        Some(Command::Eval { run, episodes, greedy, seed }) => {
            duet::cli::eval(&duet::cli::EvalArgs { run, episodes, greedy, seed })
        }
        None => open_app(cli.app),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("duet: {e:#}");
            ExitCode::from(2)
        }
    }
}
