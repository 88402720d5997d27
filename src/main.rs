//! The `duet` binary: opens the app by default, or runs a headless command.
//! Errors surface here as `anyhow` messages naming the file and the problem.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "duet", version, about = "An LLM teacher and an RL student learning from each other, live")]
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
    /// Frames to render before `--screenshot` captures.
    #[arg(long, value_name = "N", default_value_t = 60, requires = "screenshot")]
    frames: u32,
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
    /// Measure throughput; prints one JSON line.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
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
}

#[cfg(feature = "app")]
fn open_app(args: AppArgs) -> anyhow::Result<ExitCode> {
    let screenshot = args.screenshot.map(|path| duet::app::ScreenshotRequest { path, frames: args.frames });
    duet::app::run(duet::app::AppOptions { scene_path: args.scene, screenshot })
}

#[cfg(not(feature = "app"))]
fn open_app(_args: AppArgs) -> anyhow::Result<ExitCode> {
    Err(anyhow::anyhow!("this build has no app (built without the `app` feature); see `duet --help`"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Conformance { files, max_report }) => duet::cli::conformance(&files, max_report),
        Some(Command::Bench { what: BenchCommand::Env { scene, steps, threads, num_envs } }) => {
            duet::cli::bench_env(&scene, steps, threads, num_envs)
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
