//! `--screenshot PATH --frames N`: render N frames, save the window to a PNG with Bevy's
//! `Screenshot` + `save_to_disk`, then exit (non-zero when no file was written).

use std::path::PathBuf;

use anyhow::Context;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};

/// Frames to wait for the capture before giving up.
const CAPTURE_TIMEOUT_FRAMES: u32 = 600;

/// Where and when to take the screenshot.
#[derive(Clone, Debug)]
pub struct ScreenshotRequest {
    pub path: PathBuf,
    /// Frames rendered before the capture (at least 1).
    pub frames: u32,
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
    requested: bool,
}

pub struct ScreenshotPlugin {
    pub request: ScreenshotRequest,
}

impl Plugin for ScreenshotPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ScreenshotProgress { request: self.request.clone(), frames_rendered: 0, requested: false })
            .add_systems(Last, capture_after_frames);
    }
}

fn capture_after_frames(
    mut commands: Commands,
    mut progress: ResMut<ScreenshotProgress>,
    mut exit: MessageWriter<AppExit>,
) {
    progress.frames_rendered += 1;
    let frames = progress.request.frames.max(1);
    if !progress.requested && progress.frames_rendered >= frames {
        progress.requested = true;
        let path = progress.request.path.clone();
        commands.spawn(Screenshot::primary_window()).observe(save_then_exit(path));
    } else if progress.requested && progress.frames_rendered >= frames + CAPTURE_TIMEOUT_FRAMES {
        error!("no screenshot captured after {CAPTURE_TIMEOUT_FRAMES} more frames");
        exit.write(AppExit::error());
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
