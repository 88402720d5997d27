//! The desktop app (Bevy + UI): the scene's PPO student training live, its parallel envs drawn
//! as they step. Thin systems over the layers below; all learning goes through `Trainer`.
//!
//! Modules: `simulation` steps the trainer in `FixedUpdate` and publishes a snapshot (and
//! `teacher_view` the teacher's side of the focused env); `ppo_worker` runs PPO updates on
//! their own thread; `control` carries out what the panels and keys ask of the run;
//! `layout` sizes the view from the window; `focus_view`, `mosaic`, `hud`, `learning_curve`
//! and `flash` draw; `panels` is the egui side panel (teacher, curves, prompt editor, run),
//! `prompt_editor` its editor's state, `update_history` its curves' data, `feedback_view` the
//! feedback tab's copy of the student's feedback; `option_overlay` draws the teacher's top
//! option on the focused env; `race` runs and draws the race view's second run (no teacher);
//! `headless` builds the simulation side alone for tests; `shortcuts` and
//! `manual` handle keys; `tuning` tunes the teacher's adapters on a thread (the Tuning tab);
//! `render_grid` rasterises worlds (`world_image` puts them in Bevy images); `frame_times`
//! measures frames during updates; `screenshot` serves `--screenshot`, `bench_ui` serves
//! `duet bench ui`.

// Bevy system signatures name their queries in full; splitting them into aliases hides more
// than it shows.
#![allow(clippy::type_complexity)]
// A Bevy system takes each resource and query it reads as an argument; bundling them into
// `SystemParam`s only to satisfy the count would hide what a system touches.
#![allow(clippy::too_many_arguments)]

mod bench_ui;
pub mod control;
pub mod embodied_view;
pub mod feedback_view;
mod flash;
mod focus_view;
mod frame_times;
pub mod headless;
mod hud;
mod layout;
mod learning_curve;
mod manual;
mod mosaic;
mod option_overlay;
mod panels;
mod ppo_worker;
pub mod prompt_editor;
pub mod race;
mod render_grid;
mod screenshot;
mod shortcuts;
pub mod simulation;
pub mod teacher_view;
mod theme;
pub mod tuning;
pub mod update_history;
mod world_image;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bevy::prelude::*;
use bevy::window::{MonitorSelection, PresentMode, WindowMode, WindowResizeConstraints, WindowResolution};

pub use bench_ui::UiBenchRequest;
pub use screenshot::ScreenshotRequest;

use crate::env::scene::{DEFAULT_SCENE_FILE, Scene};
use crate::training::{TeacherKind, TeacherLoading, Trainer, TrainerConfig};

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
    /// `watch`, `fast` or `max`; `None` starts at `watch`.
    pub speed: Option<String>,
    /// Append one JSON record per PPO update to `DIR/metrics.jsonl`, as `duet train` does;
    /// checkpoints saved from the app go there too (else to `runs/app`).
    pub out: Option<PathBuf>,
    /// Fullscreen, larger text: for an audience.
    pub demo: bool,
    /// Who advises when the app opens (`T` toggles between it and none).
    pub teacher: TeacherKind,
    /// Measure frame times for `duet bench ui`, print them and exit.
    pub bench: Option<UiBenchRequest>,
    /// The side panel's tab at start (`teacher`, `curves`, `feedback`, `prompt`, `run`, `tuning`);
    /// `None`: the teacher tab.
    pub tab: Option<String>,
    /// Open in the race view: the scene also trains without a teacher, side by side.
    pub race: bool,
    /// Start with λ overridden to this weight (the Run tab's override).
    pub lambda: Option<f64>,
    /// A prompt template to open in the editor as a draft, not yet applied (the Prompt tab
    /// opens unless `tab` says otherwise).
    pub prompt_draft: Option<PathBuf>,
}

/// Demo mode draws text and panels larger on large screens: the scale is the window's width
/// over this many pixels, within `DEMO_SCALE_RANGE` (a 1920-pixel screen gets 1.25).
const DEMO_REFERENCE_WIDTH: f32 = 1536.0;
const DEMO_SCALE_RANGE: (f32, f32) = (1.0, 1.5);

/// Follows the window's size in demo mode (fullscreen sizes are known only once it is open).
fn scale_for_demo(
    window: Single<&Window, With<bevy::window::PrimaryWindow>>,
    mut ui_scale: ResMut<UiScale>,
    mut zoom: ResMut<panels::PanelZoom>,
) {
    let scale = (window.width() / DEMO_REFERENCE_WIDTH).clamp(DEMO_SCALE_RANGE.0, DEMO_SCALE_RANGE.1);
    if ui_scale.0 != scale {
        ui_scale.0 = scale;
    }
    zoom.set_if_neq(panels::PanelZoom(scale));
}

/// What the app shows about the loaded scene.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct SceneInfo {
    pub name: String,
    pub level: String,
    pub num_envs: usize,
}

impl SceneInfo {
    /// The scene's name, level and envs (a non-grid scene shows no level).
    pub fn of(scene: &Scene) -> SceneInfo {
        let level = match (scene.grid(), scene.embodied()) {
            (Some(grid), _) => grid.level.name(),
            (None, Some(embodied)) => embodied.plan.display().to_string(),
            (None, None) => String::new(),
        };
        let num_envs = scene.env.num_envs();
        SceneInfo { name: scene.name.clone(), level, num_envs }
    }
}

/// Loads the scene (errors name `path:line:col`) and runs the app until its window closes.
pub fn run(options: AppOptions) -> anyhow::Result<ExitCode> {
    let (scene, source) = load_scene(options.scene_path.as_deref())?;
    let embodied = scene.embodied().is_some();
    if embodied && options.race {
        anyhow::bail!("{source}: the race view shows grid scenes only");
    }
    let info = SceneInfo::of(&scene);
    let prompt_draft = match &options.prompt_draft {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the prompt draft", path.display()))?,
        ),
    };
    let tab = match options.tab.as_deref() {
        None if prompt_draft.is_some() => panels::Tab::Prompt,
        None => panels::Tab::default(),
        Some(name) => panels::Tab::from_name(name).with_context(|| {
            format!("unknown tab {name:?}; expected teacher, curves, feedback, prompt, run or tuning")
        })?,
    };
    if let Some(lambda) = options.lambda
        && !(lambda.is_finite() && lambda >= 0.0)
    {
        anyhow::bail!("--lambda {lambda}: the distillation weight must be a finite number >= 0");
    }
    let speed = match options.speed.as_deref() {
        None => simulation::Speed::default(),
        Some(name) => simulation::Speed::from_name(name)
            .with_context(|| format!("unknown speed {name:?}; expected watch, fast or max"))?,
    };
    // Built as `duet train` builds it, so the app and headless runs train the same way, but
    // an LLM loads on its worker threads while the window opens (its load errors show in
    // the teacher panel).
    let config = TrainerConfig::from_scene(&scene, options.teacher)?;
    let trainer = Trainer::with_teacher_loading(config, TeacherLoading::Background)
        .with_context(|| format!("{source}: building the trainer"))?;
    let scene_dir = options
        .scene_path
        .as_deref()
        .and_then(Path::parent)
        .filter(|dir| dir.is_dir())
        .map_or_else(|| PathBuf::from(DEFAULT_SCENE_DIR), Path::to_owned);

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
        // Benchmarks measure the app's own frame time, not the display's refresh.
        present_mode: if screenshot_mode || options.bench.is_some() {
            PresentMode::AutoNoVsync
        } else {
            PresentMode::AutoVsync
        },
        mode: if options.demo {
            WindowMode::BorderlessFullscreen(MonitorSelection::Primary)
        } else {
            WindowMode::Windowed
        },
        ..default()
    };

    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin { primary_window: Some(window), ..default() }))
        .insert_resource(ClearColor(theme::BACKGROUND));
    insert_run(&mut app, trainer, scene, options.out.as_deref(), &scene_dir)?;
    if let Some(draft) = prompt_draft {
        app.insert_resource(prompt_editor::PromptEditor::with_draft(draft));
    }
    app.insert_resource(panels::PanelState { tab, ..default() })
        .insert_resource(race::RaceMode(options.race))
        .insert_resource(simulation::LambdaOverride(options.lambda));
    app.add_plugins((
        simulation::SimulationPlugin { speed },
        ppo_worker::PpoWorkerPlugin,
        frame_times::FrameTimesPlugin,
        layout::LayoutPlugin,
        hud::HudPlugin,
        flash::FlashPlugin,
        learning_curve::LearningCurvePlugin,
        update_history::UpdateHistoryPlugin,
        panels::PanelsPlugin,
        shortcuts::ShortcutsPlugin,
    ))
    // The race's run state and messages (the panels' race switch reads them in every scene).
    .add_plugins((race::RaceSimPlugin, tuning::TuningPlugin));
    if embodied {
        app.add_plugins(embodied_view::EmbodiedViewPlugin);
    } else {
        // The grid's views: the focused grid, the mosaic, the followed option's walk, the
        // keyboard take-over and the race.
        app.add_plugins((
            focus_view::FocusViewPlugin,
            mosaic::MosaicPlugin,
            manual::ManualPlugin,
            option_overlay::OptionOverlayPlugin,
            race::RaceViewPlugin,
        ));
    }
    app
        // After finished updates are collected (PreUpdate), before the views draw.
        .add_systems(Update, control::run_controls.before(layout::UpdateLayout));
    if options.demo {
        app.insert_resource(panels::PanelZoom(1.0)).add_systems(PreUpdate, scale_for_demo);
    }
    if let Some(request) = options.bench {
        app.add_plugins(bench_ui::UiBenchPlugin { request });
    }
    if let Some(request) = options.screenshot {
        request.prepare()?;
        app.add_plugins(screenshot::ScreenshotPlugin { request });
    }
    Ok(match app.run() {
        AppExit::Success => ExitCode::SUCCESS,
        AppExit::Error(code) => ExitCode::from(code.get()),
    })
}

/// Puts the run's resources in `app`: the trainer (its clock started), its snapshots, the
/// PPO worker, the metrics log (`out`), the run's files and the controls' state. Before the
/// app's plugins, which read them.
fn insert_run(
    app: &mut App,
    mut trainer: Trainer,
    scene: Scene,
    out: Option<&Path>,
    scene_dir: &Path,
) -> anyhow::Result<()> {
    let metrics_log = ppo_worker::AppMetricsLog::create_in(out)?;
    let worker = ppo_worker::UpdateWorker::spawn()?;
    trainer.start_clock();
    app.insert_resource(control::RunOrigin { config: trainer.config().clone(), checkpoint: None })
        .insert_resource(SceneInfo::of(&scene))
        .insert_resource(simulation::TrainingSnapshot::of(&trainer))
        .insert_resource(teacher_view::TeacherView::of(&trainer, 0))
        .insert_resource(simulation::LiveTrainer::new(trainer))
        .insert_resource(worker)
        .insert_resource(metrics_log)
        .insert_resource(control::RunFiles::new(scene, out, scene_dir))
        .init_resource::<control::Controls>()
        .init_resource::<prompt_editor::PromptEditor>();
    Ok(())
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
