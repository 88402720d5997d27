//! The `duet` binary: opens the app by default, or runs a headless command.
//! Errors surface here as `anyhow` messages naming the file and the problem.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "duet", version, about = "An LLM teacher and an RL student learning from each other, live")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Conformance { files, max_report }) => duet::cli::conformance(&files, max_report),
        Some(Command::Bench { what: BenchCommand::Env { scene, steps, threads, num_envs } }) => {
            duet::cli::bench_env(&scene, steps, threads, num_envs)
        }
        None => Err(anyhow::anyhow!("the app is not built yet; see `duet --help`")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("duet: {e:#}");
            ExitCode::from(2)
        }
    }
}
