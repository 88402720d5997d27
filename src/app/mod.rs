//! The desktop app (Bevy + UI): a live MiniGrid viewer of a scene's parallel envs.
//! Thin systems over the layers below; all simulation goes through `VecEnv`.
//!
//! Modules: `simulation` steps the envs in `FixedUpdate`; `layout` sizes the view from the
//! window; `focus_view`, `mosaic`, `hud` and `flash` draw; `render_grid` rasterises worlds
//! (`world_image` puts them in Bevy images); `scripted_policy` is the stand-in policy;
//! `screenshot` serves `--screenshot`.

// Bevy system signatures name their queries in full; splitting them into aliases hides more
// than it shows.
#![allow(clippy::type_complexity)]

mod flash;
mod focus_view;
mod hud;
mod layout;
mod mosaic;
mod render_grid;
mod run_stats;
mod screenshot;
pub mod scripted_policy;
mod simulation;
mod theme;
mod world_image;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bevy::prelude::*;
use bevy::window::{PresentMode, WindowResizeConstraints, WindowResolution};

pub use screenshot::ScreenshotRequest;

use crate::env::scene::{DEFAULT_SCENE_FILE, Scene};
use crate::env::vec_env::VecEnvConfig;

/// The window's size in logical pixels.
pub const WINDOW_SIZE: (u32, u32) = (1280, 800);
/// Where `duet` looks for its scene when `--scene` is not given.
pub const DEFAULT_SCENE_DIR: &str = "scenes";

/// The smallest window the layout is meant for.
const MIN_WINDOW_SIZE: (f32, f32) = (720.0, 480.0);

/// How the app was asked to run.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// The scene file; `None` means `scenes/default.ron`, else the built-in default scene.
    pub scene_path: Option<PathBuf>,
    /// Render this many frames, save a screenshot and exit (for tests).
    pub screenshot: Option<ScreenshotRequest>,
}

/// What the app shows about the loaded scene.
#[derive(Resource, Clone, Debug)]
pub struct SceneInfo {
    pub name: String,
    pub level: String,
    pub num_envs: usize,
}

/// Loads the scene (errors name `path:line:col`) and runs the app until its window closes.
pub fn run(options: AppOptions) -> anyhow::Result<ExitCode> {
    let (scene, source) = load_scene(options.scene_path.as_deref())?;
    let Some(grid) = scene.grid() else {
        anyhow::bail!("{source}: the app shows grid scenes only");
    };
    let mut config = VecEnvConfig::new(grid.level.clone(), grid.num_envs, scene.seed);
    config.max_steps = grid.max_steps;
    let info = SceneInfo { name: scene.name.clone(), level: grid.level.name(), num_envs: grid.num_envs };

    let screenshot_mode = options.screenshot.is_some();
    let mut resolution = WindowResolution::new(WINDOW_SIZE.0, WINDOW_SIZE.1);
    if screenshot_mode {
        // Screenshots must have exactly the window size, whatever the display's scaling.
        resolution = resolution.with_scale_factor_override(1.0);
    }
    let window = Window {
        title: format!("duet - {}", info.name),
        resolution,
        resize_constraints: WindowResizeConstraints {
            min_width: MIN_WINDOW_SIZE.0,
            min_height: MIN_WINDOW_SIZE.1,
            ..default()
        },
        present_mode: if screenshot_mode { PresentMode::AutoNoVsync } else { PresentMode::AutoVsync },
        ..default()
    };

    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin { primary_window: Some(window), ..default() }))
        .insert_resource(ClearColor(theme::BACKGROUND))
        .insert_resource(info)
        .add_plugins((
            simulation::SimulationPlugin { config, seed: scene.seed },
            layout::LayoutPlugin,
            hud::HudPlugin,
            focus_view::FocusViewPlugin,
            mosaic::MosaicPlugin,
            flash::FlashPlugin,
        ));
    if let Some(request) = options.screenshot {
        request.prepare()?;
        app.add_plugins(screenshot::ScreenshotPlugin { request });
    }
    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    })
}

/// The scene to show and a name for where it came from. Without `--scene`, the default file
/// when present (so edits to it count), else the same scene built in.
fn load_scene(path: Option<&Path>) -> anyhow::Result<(Scene, String)> {
    if let Some(path) = path {
        let scene = Scene::load(path)?;
        return Ok((scene, path.display().to_string()));
    }
    let default_path = Path::new(DEFAULT_SCENE_DIR).join(DEFAULT_SCENE_FILE);
    if default_path.is_file() {
        let scene = Scene::load(&default_path).context("loading the default scene")?;
        return Ok((scene, default_path.display().to_string()));
    }
    Ok((Scene::default(), "built-in default scene".to_owned()))
}
