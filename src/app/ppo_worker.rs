//! PPO updates off the main thread: a full rollout hands the `Trainer` to a dedicated worker
//! thread over a crossbeam channel; it comes back with the update's record, drained each frame.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use crossbeam_channel::{Receiver, Sender};

use super::control::{Controls, RunFiles};
use super::frame_times::FrameTimes;
use super::simulation::{LiveTrainer, TrainingFault, TrainingSnapshot};
use crate::metrics::{MetricsLog, UpdateRecord};
use crate::training::{Trainer, TrainingError};

/// What the worker sends back: the trainer, the update's outcome (an error, or the message
/// of a panic caught in the update) and how long it took.
struct FinishedUpdate {
    trainer: Box<Trainer>,
    result: Result<UpdateRecord, UpdateFailure>,
    took: Duration,
}

/// Why an update did not finish.
#[derive(Debug)]
enum UpdateFailure {
    Error(TrainingError),
    Panic(String),
}

impl std::fmt::Display for UpdateFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateFailure::Error(error) => write!(formatter, "the PPO update failed: {error}"),
            UpdateFailure::Panic(message) => write!(formatter, "the PPO update panicked: {message}"),
        }
    }
}

/// The text of a caught panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// The update worker thread and its two channels.
#[derive(Resource)]
pub struct UpdateWorker {
    jobs: Sender<Box<Trainer>>,
    finished: Receiver<FinishedUpdate>,
    thread: JoinHandle<()>,
}

/// Niceness of the update thread: below the drawing threads (0), so on a machine with fewer
/// cores than busy threads a frame is drawn first and the update takes the leftover time.
const UPDATE_THREAD_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority (Linux threads each have their own nice
/// value). Where it cannot, the thread keeps the normal priority: nothing else changes.
fn yield_to_drawing() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their arguments; they touch no memory of ours.
    unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, UPDATE_THREAD_NICENESS);
    }
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
                yield_to_drawing();
                for mut trainer in job_queue {
                    let started = Instant::now();
                    // A panic in the update must not take the run with it: the trainer comes
                    // back either way and the app reports the failure. (Its student may be
                    // half-updated then; the user decides whether to resume, reset or load.)
                    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| trainer.update())) {
                        Ok(Ok(record)) => Ok(record),
                        Ok(Err(error)) => Err(UpdateFailure::Error(error)),
                        Err(payload) => Err(UpdateFailure::Panic(panic_message(payload.as_ref()))),
                    };
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

    /// Updates that came back since the last call, without waiting: the trainer and the
    /// update's record, or why it failed (the race view's second run collects its own).
    pub fn try_finished(&self) -> impl Iterator<Item = (Box<Trainer>, Result<UpdateRecord, String>)> + '_ {
        self.finished.try_iter().map(|done| (done.trainer, done.result.map_err(|failure| failure.to_string())))
    }

    /// The worker thread has stopped (it panicked outside an update, or its channel closed).
    pub fn is_gone(&self) -> bool {
        self.thread.is_finished()
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

/// Where finished updates come back (`PreUpdate`); what reads `UpdateFinished` runs after it.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CollectUpdates;

impl Plugin for PpoWorkerPlugin {
    fn build(&self, app: &mut App) {
        // Before `FixedUpdate`, so a returned trainer steps again in the same frame.
        app.add_message::<UpdateFinished>().add_systems(PreUpdate, collect_finished_updates.in_set(CollectUpdates));
    }
}

/// What a finished update changes besides the trainer and the snapshot.
#[derive(SystemParam)]
struct UpdateOutputs<'w> {
    log: ResMut<'w, AppMetricsLog>,
    frame_times: ResMut<'w, FrameTimes>,
    finished: MessageWriter<'w, UpdateFinished>,
    fault: ResMut<'w, TrainingFault>,
    controls: ResMut<'w, Controls>,
    files: Res<'w, RunFiles>,
    virtual_time: ResMut<'w, Time<Virtual>>,
}

/// Takes finished updates back: the trainer returns to stepping, the record to the snapshot
/// and the log, and a requested checkpoint is saved (the rollout is empty just now). A failed
/// or panicked update pauses training and shows why; the app stays up.
fn collect_finished_updates(
    worker: Res<UpdateWorker>,
    mut live: ResMut<LiveTrainer>,
    mut snapshot: ResMut<TrainingSnapshot>,
    mut outputs: UpdateOutputs,
) {
    for FinishedUpdate { trainer, result, took } in worker.finished.try_iter() {
        match result {
            Ok(record) => {
                if let Some(metrics) = &mut outputs.log.0
                    && let Err(error) = metrics.append(&record)
                {
                    // Training goes on; only the file stops growing.
                    error!("{error}; metrics are no longer written");
                    outputs.log.0 = None;
                }
                info!(
                    "update {} took {:.0} ms; longest frame during updates so far {:.1} ms",
                    record.update,
                    took.as_secs_f64() * 1e3,
                    outputs.frame_times.longest_during_updates().as_secs_f64() * 1e3
                );
                snapshot.latest = Some(record.clone());
                outputs.finished.write(UpdateFinished(record));
                outputs.fault.message = None;
                if outputs.controls.save_pending {
                    outputs.controls.save_pending = false;
                    let dir = &outputs.files.out_dir;
                    let saved = std::fs::create_dir_all(dir)
                        .map_err(|error| format!("{}: {error}", dir.display()))
                        .and_then(|()| trainer.save_checkpoint(dir).map_err(|error| error.to_string()));
                    match saved {
                        Ok(path) => outputs.controls.tell(format!("checkpoint saved: {}", path.display()), false),
                        Err(error) => outputs.controls.tell(format!("checkpoint not saved: {error}"), true),
                    }
                }
            }
            Err(failure) => {
                outputs.fault.report(format!("{failure}; training is paused"));
                outputs.virtual_time.pause();
            }
        }
        outputs.frame_times.note_update(took);
        snapshot.publish(&trainer);
        snapshot.updating = false;
        live.put_back(trainer);
    }
    if snapshot.updating && worker.thread.is_finished() {
        outputs.fault.report("the PPO update thread stopped without returning the trainer".to_owned());
        snapshot.updating = false;
        outputs.virtual_time.pause();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value, from `/proc/thread-self/stat` (field 19).
    #[cfg(target_os = "linux")]
    fn own_niceness() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("proc stat");
        // The command name (field 2) may hold spaces; the fields after its ')' are plain.
        let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
        after_name.split(' ').nth(16).and_then(|field| field.parse().ok()).expect("the nice field")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_update_thread_runs_below_the_drawing_threads() {
        let before = own_niceness();
        let lowered = std::thread::spawn(|| {
            yield_to_drawing();
            own_niceness()
        })
        .join()
        .expect("thread");
        // An absolute value: a thread of an already nicer process stays where it was.
        assert_eq!(lowered, before.max(UPDATE_THREAD_NICENESS));
        assert_eq!(own_niceness(), before, "only the worker thread is lowered");
    }
}
