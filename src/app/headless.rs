//! The app's simulation without a window or renderer: the same trainer, stepping, PPO worker,
//! controls and published snapshots, driven frame by frame (tests of what the panels read).

use std::path::Path;
use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;

use super::frame_times::FrameTimes;
use super::learning_curve::LearningCurve;
use super::simulation::{SimulationPlugin, Speed};
use super::{control, ppo_worker, race, tuning, update_history};
use crate::env::scene::Scene;
use crate::training::{TeacherKind, TeacherLoading, Trainer, TrainerConfig};

/// An `App` with `MinimalPlugins` and the app's simulation side on `scene`: each `update()`
/// is one frame `frame_time` long (virtual time, so a test sees the same ticks however slow
/// the machine); PPO updates run on their worker thread as in the app. `RaceMode(true)`
/// starts the race's second run.
pub fn headless_app(scene: Scene, teacher: TeacherKind, speed: Speed, frame_time: Duration) -> anyhow::Result<App> {
    let config = TrainerConfig::from_scene(&scene, teacher)?;
    let trainer = Trainer::with_teacher_loading(config, TeacherLoading::Background)?;
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, bevy::input::InputPlugin))
        .insert_resource(TimeUpdateStrategy::ManualDuration(frame_time));
    super::insert_run(&mut app, trainer, scene, None, Path::new(super::DEFAULT_SCENE_DIR))?;
    app.init_resource::<FrameTimes>()
        .init_resource::<LearningCurve>()
        .add_plugins((
            SimulationPlugin { speed },
            ppo_worker::PpoWorkerPlugin,
            update_history::UpdateHistoryPlugin,
            race::RaceSimPlugin,
            tuning::TuningPlugin,
        ))
        .add_systems(Update, control::run_controls);
    Ok(app)
}
