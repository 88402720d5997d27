//! `--screenshot PATH --frames N [--min-updates K]`: render N frames (and wait for K PPO
//! updates), save the window to a PNG with Bevy's `Screenshot` + `save_to_disk`, then exit.

use std::path::PathBuf;

use anyhow::Context;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};

use super::simulation::TrainingSnapshot;

/// Frames to wait for the capture before giving up.
const CAPTURE_TIMEOUT_FRAMES: u32 = 600;

/// Where and when to take the screenshot.
#[derive(Clone, Debug)]
pub struct ScreenshotRequest {
    pub path: PathBuf,
    /// Frames rendered before the capture (at least 1).
    pub frames: u32,
    /// PPO updates finished before the capture, however many frames that takes (tests that
    /// need the student to have learned once, on machines of any speed).
    pub min_updates: u64,
}

impl ScreenshotRequest {
    /// Removes a stale file at the path, so that success means a fresh screenshot.
    pub fn prepare(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).with_context(|| format!("{}: cannot replace", self.path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Resource)]
struct ScreenshotProgress {
    request: ScreenshotRequest,
    frames_rendered: u32,
    /// The frame the capture was asked for.
    requested_at: Option<u32>,
}

pub struct ScreenshotPlugin {
    pub request: ScreenshotRequest,
}

impl Plugin for ScreenshotPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ScreenshotProgress {
            request: self.request.clone(),
            frames_rendered: 0,
            requested_at: None,
        })
        .add_systems(Last, capture_after_frames);
    }
}

fn capture_after_frames(
    mut commands: Commands,
    mut progress: ResMut<ScreenshotProgress>,
    snapshot: Res<TrainingSnapshot>,
    mut exit: MessageWriter<AppExit>,
) {
    progress.frames_rendered += 1;
    let frames = progress.request.frames.max(1);
    let ready = progress.frames_rendered >= frames && snapshot.updates >= progress.request.min_updates;
    match progress.requested_at {
        None if ready => {
            progress.requested_at = Some(progress.frames_rendered);
            let path = progress.request.path.clone();
            commands.spawn(Screenshot::primary_window()).observe(save_then_exit(path));
        }
        Some(requested_at) if progress.frames_rendered >= requested_at + CAPTURE_TIMEOUT_FRAMES => {
            error!("no screenshot captured after {CAPTURE_TIMEOUT_FRAMES} more frames");
            exit.write(AppExit::error());
        }
        _ => {}
    }
}

/// Saves with Bevy's `save_to_disk`, then exits: success only if the file is there.
fn save_then_exit(path: PathBuf) -> impl FnMut(On<ScreenshotCaptured>, MessageWriter<AppExit>) {
    let mut save = save_to_disk(path.clone());
    move |captured, mut exit| {
        save(captured);
        if path.is_file() {
            exit.write(AppExit::Success);
        } else {
            error!("screenshot not written to {}", path.display());
            exit.write(AppExit::error());
        }
    }
}
