//! `duet bench ui`: the app trains a scene at max speed for N seconds and reports its frame
//! times (p50/p95) as one JSON line, optionally with each render pass's GPU time; without a
//! display it runs itself under `xvfb-run`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

/// Set on the inner run under `xvfb-run`, so it does not look for a display again.
const INNER_RUN_VARIABLE: &str = "DUET_BENCH_UI_INNER";
/// The virtual screen: the app's default window size.
const XVFB_SCREEN: &str = "-screen 0 1280x800x24";

/// What `bench ui` measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UiBenchResult {
    pub bench: &'static str,
    pub scene: String,
    pub speed: &'static str,
    /// Wall seconds measured (after warm-up frames).
    pub seconds: f64,
    pub frames: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// PPO updates that finished during the measurement, and env frames trained.
    pub updates: u64,
    pub env_frames: u64,
    /// `WGPU_BACKEND` as set for the run ("default" when unset), and the display used.
    pub backend: String,
    pub display: String,
    /// The side panel's tab while measuring.
    pub tab: String,
    /// With `--passes`: each instrumented render pass's mean GPU time per frame (ms).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gpu_pass_ms: BTreeMap<String, f64>,
}

/// What `duet bench ui` was asked.
#[derive(Clone, Debug)]
pub struct UiBenchArgs {
    pub scene: PathBuf,
    pub seconds: f64,
    /// The side panel's tab; `None`: the app's default (teacher).
    pub tab: Option<String>,
    /// Time the render passes on the GPU too.
    pub passes: bool,
}

/// Frame-time percentiles of `intervals` (nearest rank); all zero for none.
pub fn frame_time_stats(intervals: &[Duration]) -> FrameTimeStats {
    let mut ms: Vec<f64> = intervals.iter().map(|interval| interval.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |q: f64| -> f64 {
        if ms.is_empty() {
            return 0.0;
        }
        let index = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[index]
    };
    let mean = if ms.is_empty() { 0.0 } else { ms.iter().sum::<f64>() / ms.len() as f64 };
    FrameTimeStats { p50_ms: rank(0.50), p95_ms: rank(0.95), p99_ms: rank(0.99), max_ms: rank(1.0), mean_ms: mean }
}

/// Percentiles of frame intervals in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameTimeStats {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// `duet bench ui --scene FILE --seconds N [--tab NAME] [--passes]`.
pub fn run(args: &UiBenchArgs) -> anyhow::Result<ExitCode> {
    let UiBenchArgs { scene, seconds, .. } = args;
    if !(seconds.is_finite() && *seconds > 0.0 && *seconds <= 3600.0) {
        bail!("--seconds must be between 0 and 3600 (got {seconds})");
    }
    if !scene.is_file() {
        bail!("{}: no such scene file", scene.display());
    }
    let has_display = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if std::env::var_os(INNER_RUN_VARIABLE).is_none() && !has_display {
        return run_under_xvfb(args);
    }
    run_here(args)
}

/// Runs this same command again inside `xvfb-run` (its JSON line goes straight to stdout).
fn run_under_xvfb(args: &UiBenchArgs) -> anyhow::Result<ExitCode> {
    let xvfb_run = find_on_path("xvfb-run")
        .context("no display and no xvfb-run on PATH: install xvfb (`make deps`) or run on a display")?;
    let exe = std::env::current_exe().context("finding the duet executable")?;
    let mut command = std::process::Command::new(xvfb_run);
    command
        .args(["-a", "-s", XVFB_SCREEN])
        .arg(exe)
        .args(["bench", "ui", "--scene"])
        .arg(&args.scene)
        .arg("--seconds")
        .arg(args.seconds.to_string())
        .env(INNER_RUN_VARIABLE, "xvfb");
    if let Some(tab) = &args.tab {
        command.args(["--tab", tab]);
    }
    if args.passes {
        command.arg("--passes");
    }
    // Software Vulkan (Mesa lavapipe) is what works under Xvfb.
    if std::env::var_os("WGPU_BACKEND").is_none() {
        command.env("WGPU_BACKEND", "vulkan");
    }
    let status = command.status().context("running xvfb-run")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.is_file())
}

#[cfg(feature = "app")]
fn run_here(args: &UiBenchArgs) -> anyhow::Result<ExitCode> {
    let display = match std::env::var(INNER_RUN_VARIABLE) {
        Ok(inner) => inner,
        Err(_) => "current".to_owned(),
    };
    crate::app::run(crate::app::AppOptions {
        scene_path: Some(args.scene.clone()),
        speed: Some("max".to_owned()),
        // The oracle, as the README's figures were measured (an LLM worker would take the
        // second core while it loads and answers).
        teacher: crate::training::TeacherKind::Oracle,
        bench: Some(crate::app::UiBenchRequest {
            seconds: args.seconds,
            scene_label: args.scene.display().to_string(),
            display,
            passes: args.passes,
        }),
        tab: args.tab.clone(),
        ..Default::default()
    })
}

#[cfg(not(feature = "app"))]
fn run_here(_args: &UiBenchArgs) -> anyhow::Result<ExitCode> {
    bail!("this build has no app (built without the `app` feature)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let intervals: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let stats = frame_time_stats(&intervals);
        assert_eq!((stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.max_ms), (50.0, 95.0, 99.0, 100.0));
        assert!((stats.mean_ms - 50.5).abs() < 1e-9);
        assert_eq!(frame_time_stats(&[]).p95_ms, 0.0);
    }
}
