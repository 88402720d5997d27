//! `duet bench ui`'s measurement inside the app: every frame interval after a warm-up (and,
//! with `--passes`, the render passes' GPU times), then one JSON line with p50/p95 on stdout
//! and exit once the requested seconds have passed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bevy::diagnostic::{DiagnosticsStore, FrameCount};
use bevy::prelude::*;
use bevy::render::diagnostic::RenderDiagnosticsPlugin;

use super::panels::PanelState;
use super::simulation::TrainingSnapshot;
use crate::bench::ui::{UiBenchResult, frame_time_stats};

/// Frames skipped at the start (window, pipelines and first textures being set up).
const WARMUP_FRAMES: u32 = 30;

/// What `bench ui` asked for.
#[derive(Clone, Debug)]
pub struct UiBenchRequest {
    pub seconds: f64,
    /// The scene as named on the command line.
    pub scene_label: String,
    /// "xvfb" or "current".
    pub display: String,
    /// Time each render pass on the GPU (timestamp queries) too.
    pub passes: bool,
}

#[derive(Resource)]
struct UiBench {
    request: UiBenchRequest,
    started: Option<(Instant, u64, u64)>,
    intervals: Vec<Duration>,
    /// Per render pass: the sum of its GPU times over the measured frames, and their count.
    gpu_passes: BTreeMap<String, (f64, usize)>,
}

/// Where Bevy's render diagnostics keep a pass's GPU time: `render/<pass>/elapsed_gpu`.
const GPU_TIME_SUFFIX: &str = "/elapsed_gpu";

pub struct UiBenchPlugin {
    pub request: UiBenchRequest,
}

impl Plugin for UiBenchPlugin {
    fn build(&self, app: &mut App) {
        if self.request.passes {
            app.add_plugins(RenderDiagnosticsPlugin);
        }
        app.insert_resource(UiBench {
            request: self.request.clone(),
            started: None,
            intervals: Vec::new(),
            gpu_passes: BTreeMap::new(),
        })
        .add_systems(Last, measure);
    }
}

fn measure(
    real_time: Res<Time<Real>>,
    frame: Res<FrameCount>,
    snapshot: Res<TrainingSnapshot>,
    panel: Res<PanelState>,
    diagnostics: Option<Res<DiagnosticsStore>>,
    mut bench: ResMut<UiBench>,
    mut exit: MessageWriter<AppExit>,
) {
    if frame.0 < WARMUP_FRAMES {
        return;
    }
    let Some((started, updates, env_frames)) = bench.started else {
        bench.started = Some((Instant::now(), snapshot.updates, snapshot.frames));
        return;
    };
    bench.intervals.push(real_time.delta());
    if bench.request.passes
        && let Some(diagnostics) = &diagnostics
    {
        record_gpu_passes(diagnostics, &mut bench.gpu_passes);
    }
    let elapsed = started.elapsed();
    if elapsed.as_secs_f64() < bench.request.seconds {
        return;
    }
    let stats = frame_time_stats(&bench.intervals);
    let result = UiBenchResult {
        bench: "ui",
        scene: bench.request.scene_label.clone(),
        speed: "max",
        seconds: elapsed.as_secs_f64(),
        frames: bench.intervals.len(),
        p50_ms: stats.p50_ms,
        p95_ms: stats.p95_ms,
        p99_ms: stats.p99_ms,
        max_ms: stats.max_ms,
        mean_ms: stats.mean_ms,
        updates: snapshot.updates.saturating_sub(updates),
        env_frames: snapshot.frames.saturating_sub(env_frames),
        backend: std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "default".to_owned()),
        display: bench.request.display.clone(),
        tab: panel.tab.label().to_ascii_lowercase(),
        gpu_pass_ms: bench
            .gpu_passes
            .iter()
            .map(|(pass, &(sum, count))| (pass.clone(), sum / count.max(1) as f64))
            .collect(),
    };
    match serde_json::to_string(&result) {
        Ok(line) => {
            println!("{line}");
            exit.write(AppExit::Success);
        }
        Err(error) => {
            error!("serialising the result: {error}");
            exit.write(AppExit::error());
        }
    }
    bench.started = None;
    bench.request.seconds = f64::INFINITY; // report once
}

/// Adds each render pass's latest GPU time (ms) to `sums`.
fn record_gpu_passes(diagnostics: &DiagnosticsStore, sums: &mut BTreeMap<String, (f64, usize)>) {
    for diagnostic in diagnostics.iter() {
        let path = diagnostic.path().as_str();
        let Some(pass) = path.strip_prefix("render/").and_then(|rest| rest.strip_suffix(GPU_TIME_SUFFIX)) else {
            continue;
        };
        if let Some(ms) = diagnostic.value() {
            let (sum, count) = sums.entry(pass.to_owned()).or_default();
            *sum += ms;
            *count += 1;
        }
    }
}
