//! PPO updates off the main thread: a full rollout hands the `Trainer` to a dedicated worker
//! thread over a crossbeam channel; it comes back with the update's record, drained each frame.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use super::frame_times::FrameTimes;
use super::simulation::{LiveTrainer, TrainingSnapshot};
use crate::metrics::{MetricsLog, UpdateRecord};
use crate::training::{Trainer, TrainingError};

/// What the worker sends back: the trainer, the update's outcome and how long it took.
struct FinishedUpdate {
    trainer: Box<Trainer>,
    result: Result<UpdateRecord, TrainingError>,
    took: Duration,
}

/// The update worker thread and its two channels.
#[derive(Resource)]
pub struct UpdateWorker {
    jobs: Sender<Box<Trainer>>,
    finished: Receiver<FinishedUpdate>,
    thread: JoinHandle<()>,
}

impl UpdateWorker {
    /// Starts the worker thread; it lives until the app drops its end of the channels.
    pub fn spawn() -> anyhow::Result<UpdateWorker> {
        // One update in flight at most: the trainer itself is the job.
        let (jobs, job_queue) = crossbeam_channel::bounded::<Box<Trainer>>(1);
        let (finished_sender, finished) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("ppo-update".into())
            .spawn(move || {
                for mut trainer in job_queue {
                    let started = Instant::now();
                    let result = trainer.update();
                    let done = FinishedUpdate { trainer, result, took: started.elapsed() };
                    if finished_sender.send(done).is_err() {
                        break; // the app has closed
                    }
                }
            })
            .context("starting the PPO update thread")?;
        Ok(UpdateWorker { jobs, finished, thread })
    }

    /// Hands `trainer` over for one update; gives it back if the worker is gone.
    pub fn start_update(&self, trainer: Box<Trainer>) -> Result<(), Box<Trainer>> {
        self.jobs.send(trainer).map_err(|error| error.0)
    }
}

/// A PPO update came back from the worker (the record it logged).
#[derive(Message, Clone, Debug)]
pub struct UpdateFinished(pub UpdateRecord);

/// Where the app appends its update records (`--out DIR`), if anywhere.
#[derive(Resource)]
pub struct AppMetricsLog(pub Option<MetricsLog>);

impl AppMetricsLog {
    /// `DIR/metrics.jsonl`, the file `duet train` writes, created afresh.
    pub fn create_in(dir: Option<&Path>) -> anyhow::Result<AppMetricsLog> {
        let Some(dir) = dir else {
            return Ok(AppMetricsLog(None));
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(AppMetricsLog(Some(MetricsLog::create(dir.join("metrics.jsonl"))?)))
    }
}

pub struct PpoWorkerPlugin;

impl Plugin for PpoWorkerPlugin {
    fn build(&self, app: &mut App) {
        // Before `FixedUpdate`, so a returned trainer steps again in the same frame.
        app.add_message::<UpdateFinished>().add_systems(PreUpdate, collect_finished_updates);
    }
}

/// Takes finished updates back: the trainer returns to stepping, the record to the snapshot
/// and the log. A worker that died (a panic in the update) ends the app with an error.
fn collect_finished_updates(
    worker: Res<UpdateWorker>,
    mut live: ResMut<LiveTrainer>,
    mut snapshot: ResMut<TrainingSnapshot>,
    mut log: ResMut<AppMetricsLog>,
    mut frame_times: ResMut<FrameTimes>,
    mut finished: MessageWriter<UpdateFinished>,
    mut exit: MessageWriter<AppExit>,
) {
    for FinishedUpdate { trainer, result, took } in worker.finished.try_iter() {
        match result {
            Ok(record) => {
                if let Some(metrics) = &mut log.0
                    && let Err(error) = metrics.append(&record)
                {
                    // Training goes on; only the file stops growing.
                    error!("{error}; metrics are no longer written");
                    log.0 = None;
                }
                info!(
                    "update {} took {:.0} ms; longest frame during updates so far {:.1} ms",
                    record.update,
                    took.as_secs_f64() * 1e3,
                    frame_times.longest_during_updates().as_secs_f64() * 1e3
                );
                snapshot.latest = Some(record.clone());
                finished.write(UpdateFinished(record));
            }
            Err(error) => {
                error!("PPO update failed: {error}");
                exit.write(AppExit::error());
            }
        }
        frame_times.note_update(took);
        snapshot.publish(&trainer);
        snapshot.updating = false;
        live.put_back(trainer);
    }
    if snapshot.updating && worker.thread.is_finished() {
        error!("the PPO update thread stopped without returning the trainer");
        snapshot.updating = false;
        exit.write(AppExit::error());
    }
}
