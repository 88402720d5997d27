//! `duet bench ui`'s measurement inside the app: every frame interval after a warm-up, then
//! one JSON line with p50/p95 on stdout and exit once the requested seconds have passed.

use std::time::{Duration, Instant};

use bevy::diagnostic::FrameCount;
use bevy::prelude::*;

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
}

#[derive(Resource)]
struct UiBench {
    request: UiBenchRequest,
    started: Option<(Instant, u64, u64)>,
    intervals: Vec<Duration>,
}

pub struct UiBenchPlugin {
    pub request: UiBenchRequest,
}

impl Plugin for UiBenchPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(UiBench { request: self.request.clone(), started: None, intervals: Vec::new() })
            .add_systems(Last, measure);
    }
}

fn measure(
    real_time: Res<Time<Real>>,
    frame: Res<FrameCount>,
    snapshot: Res<TrainingSnapshot>,
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
