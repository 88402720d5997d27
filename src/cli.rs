//! What the `duet` subcommands do, kept in the library so tests can call them directly.
//! Each returns the process exit code; output goes to stdout as the commands document.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::env::conformance::{self, ConformanceSummary};
use crate::env::scene::Scene;
use crate::env::vec_env::VecEnvConfig;

/// `duet conformance FILE...`: replays every trajectory, prints each failure, then
/// `N passed, M failed` (trajectories). Non-zero exit on any failure or unreadable file.
pub fn conformance(files: &[PathBuf], max_report: usize) -> anyhow::Result<ExitCode> {
    let mut summary = ConformanceSummary::default();
    let mut unreadable = 0;
    for path in files {
        let reports = match conformance::check_file(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                unreadable += 1;
                continue;
            }
        };
        for report in &reports {
            summary.add(report);
            if report.passed() {
                continue;
            }
            let seed = report.seed.map_or(String::new(), |s| format!(" seed {s}"));
            println!("FAIL {}:{} {}{seed}", path.display(), report.line, report.env_id);
            if let Some(e) = &report.setup_error {
                println!("  {e}");
            }
            for m in report.mismatches.iter().take(max_report) {
                println!("  {m}");
            }
            if report.mismatches.len() > max_report {
                println!("  ... and {} more", report.mismatches.len() - max_report);
            }
        }
    }
    println!(
        "conformance: {} trajectories, {} steps, {} levels",
        summary.passed + summary.failed,
        summary.steps,
        summary.levels.len()
    );
    println!("{} passed, {} failed", summary.passed, summary.failed + unreadable);
    Ok(if summary.failed == 0 && unreadable == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `duet bench env`: random-action throughput of a scene's envs (grid or embodied), as one JSON line.
pub fn bench_env(scene_path: &Path, steps: u64, threads: usize, num_envs: Option<usize>) -> anyhow::Result<ExitCode> {
    let scene = Scene::load(scene_path)?;
    let kind = scene.env_kind().map_err(|error| anyhow::anyhow!("{}: {error}", scene_path.display()))?;
    if threads == 0 || threads > 256 {
        bail!("--threads must be between 1 and 256 (got {threads})");
    }
    let num_envs = num_envs.unwrap_or(scene.env.num_envs());
    if num_envs == 0 || num_envs > 65_536 {
        bail!("--num-envs must be between 1 and 65536 (got {num_envs})");
    }
    let mut config = VecEnvConfig::of(kind, num_envs, scene.seed);
    config.max_steps = scene.env.max_steps();
    config.threads = threads;
    let result = crate::bench::env_throughput(config, steps);
    println!("{}", serde_json::to_string(&result).context("serialising the result")?);
    Ok(ExitCode::SUCCESS)
}

mod train;
pub use train::{BenchLearnArgs, EvalArgs, TrainArgs, bench_learn, bench_train, eval, train};

pub mod teacher;
pub mod tune;
