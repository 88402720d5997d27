//! One teacher worker thread: builds its `Advisor` with the client's factory, answers queued
//! requests one at a time, and rebuilds the advisor after a panic or a failed load.
//!
//! Every call into the advisor (and the factory) runs under `catch_unwind`, so a faulty back
//! end costs one request and a reload, never the thread, the student or the app.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, select};

use crate::teacher::advisor::{AdviceRequest, Advisor, AdvisorError, TeacherAdvice};
use crate::teacher::prompt::PromptTemplate;

/// Builds a worker's advisor; called again to reload it after a panic or a failed load.
pub type AdvisorFactory = Arc<dyn Fn() -> Result<Box<dyn Advisor>, AdvisorError> + Send + Sync>;

/// The prompt a worker's advisor should run under.
#[derive(Clone, Debug)]
pub struct PromptSetting {
    pub template: PromptTemplate,
    pub feedback: String,
    pub version: u64,
}

/// Client -> worker, besides requests.
#[derive(Clone, Debug)]
pub enum Control {
    SetPrompt(PromptSetting),
}

/// Worker -> client.
#[derive(Debug)]
pub enum WorkerEvent {
    /// The advisor is built and runs under prompt `prompt_version`.
    Loaded {
        worker: usize,
        model_name: String,
        prompt_version: u64,
        load_time: Duration,
    },
    /// Building the advisor (or putting the prompt in force) failed; the worker retries later.
    LoadFailed {
        worker: usize,
        error: String,
    },
    /// The worker is about to rebuild its advisor after a panic or a failed load.
    Restarting {
        worker: usize,
    },
    /// A prompt edit is in force from now on.
    PromptApplied {
        worker: usize,
        version: u64,
    },
    /// The advisor refused a prompt edit; it keeps the prompt it had.
    PromptRejected {
        worker: usize,
        version: u64,
        error: String,
    },
    Answered {
        worker: usize,
        request: AdviceRequest,
        advice: TeacherAdvice,
        latency: Duration,
    },
    /// The advisor returned an error for this request.
    Failed {
        worker: usize,
        request: AdviceRequest,
        error: String,
    },
    /// The advisor panicked on this request; the worker rebuilds it.
    Panicked {
        worker: usize,
        request: AdviceRequest,
        message: String,
    },
}

/// How long a worker waits before reloading after failed loads: doubling from `first`.
#[derive(Clone, Copy, Debug)]
pub struct RestartBackoff {
    pub first: Duration,
    pub max: Duration,
}

/// The channels and settings a worker thread starts with.
pub struct WorkerSetup {
    pub index: usize,
    pub factory: AdvisorFactory,
    pub prompt: PromptSetting,
    pub jobs: Receiver<AdviceRequest>,
    pub control: Receiver<Control>,
    pub events: Sender<WorkerEvent>,
    pub backoff: RestartBackoff,
}

/// Starts the worker thread `duet-teacher-<index>`.
pub fn spawn_worker(setup: WorkerSetup) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(format!("duet-teacher-{}", setup.index)).spawn(move || run_worker(setup))
}

/// Why a worker's serving loop ended.
enum Exit {
    /// The client is gone: stop.
    Shutdown,
    /// The advisor panicked: rebuild it.
    Restart,
}

fn run_worker(setup: WorkerSetup) {
    let WorkerSetup { index, factory, mut prompt, jobs, control, events, backoff } = setup;
    let mut wait = backoff.first;
    let mut first_life = true;
    loop {
        if !first_life && events.send(WorkerEvent::Restarting { worker: index }).is_err() {
            return;
        }
        first_life = false;
        let started = Instant::now();
        match load(&factory, &prompt) {
            Ok(advisor) => {
                wait = backoff.first;
                let loaded = WorkerEvent::Loaded {
                    worker: index,
                    model_name: advisor.model_name().to_owned(),
                    prompt_version: prompt.version,
                    load_time: started.elapsed(),
                };
                if events.send(loaded).is_err() {
                    return;
                }
                match serve(index, advisor, &mut prompt, &jobs, &control, &events) {
                    Exit::Shutdown => return,
                    Exit::Restart => continue,
                }
            }
            Err(error) => {
                if events.send(WorkerEvent::LoadFailed { worker: index, error }).is_err() {
                    return;
                }
                // Wait before reloading, still taking prompt edits and noticing shutdown.
                let deadline = Instant::now() + wait;
                loop {
                    match control.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(Control::SetPrompt(setting)) => prompt = setting,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                wait = (wait * 2).min(backoff.max);
            }
        }
    }
}

/// Builds the advisor and puts the prompt in force; panics count as failures.
fn load(factory: &AdvisorFactory, prompt: &PromptSetting) -> Result<Box<dyn Advisor>, String> {
    let built = catch_unwind(AssertUnwindSafe(|| factory()))
        .map_err(|payload| format!("loading the teacher panicked: {}", panic_message(&*payload)))?;
    let mut advisor = built.map_err(|error| error.to_string())?;
    let applied =
        catch_unwind(AssertUnwindSafe(|| advisor.set_prompt(&prompt.template, &prompt.feedback, prompt.version)))
            .map_err(|payload| format!("setting the prompt panicked: {}", panic_message(&*payload)))?;
    applied.map_err(|error| format!("{}: {error}", prompt.template.source()))?;
    Ok(advisor)
}

/// Answers requests until the client goes away or the advisor panics.
fn serve(
    index: usize,
    mut advisor: Box<dyn Advisor>,
    prompt: &mut PromptSetting,
    jobs: &Receiver<AdviceRequest>,
    control: &Receiver<Control>,
    events: &Sender<WorkerEvent>,
) -> Exit {
    loop {
        // Prompt edits go before queued requests, so answers follow the newest prompt.
        loop {
            match control.try_recv() {
                Ok(Control::SetPrompt(setting)) => {
                    if let Some(exit) = apply_prompt(index, &mut *advisor, prompt, setting, events) {
                        return exit;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Exit::Shutdown,
            }
        }
        let request = select! {
            recv(control) -> message => match message {
                Ok(Control::SetPrompt(setting)) => {
                    if let Some(exit) = apply_prompt(index, &mut *advisor, prompt, setting, events) {
                        return exit;
                    }
                    continue;
                }
                Err(_) => return Exit::Shutdown,
            },
            recv(jobs) -> job => match job {
                Ok(request) => request,
                Err(_) => return Exit::Shutdown,
            },
        };
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| advisor.advise(&request)));
        let latency = started.elapsed();
        let event = match outcome {
            Ok(Ok(advice)) => WorkerEvent::Answered { worker: index, request, advice, latency },
            Ok(Err(error)) => WorkerEvent::Failed { worker: index, request, error: error.to_string() },
            Err(payload) => {
                let message = panic_message(&*payload);
                // The advisor may be half-updated: drop it and build a new one.
                drop(advisor);
                return if events.send(WorkerEvent::Panicked { worker: index, request, message }).is_err() {
                    Exit::Shutdown
                } else {
                    Exit::Restart
                };
            }
        };
        if events.send(event).is_err() {
            return Exit::Shutdown;
        }
    }
}

/// Puts a prompt edit in force, or keeps the old prompt when the advisor refuses it. Returns
/// an exit when the advisor panicked or the client is gone.
fn apply_prompt(
    index: usize,
    advisor: &mut dyn Advisor,
    prompt: &mut PromptSetting,
    setting: PromptSetting,
    events: &Sender<WorkerEvent>,
) -> Option<Exit> {
    let outcome =
        catch_unwind(AssertUnwindSafe(|| advisor.set_prompt(&setting.template, &setting.feedback, setting.version)));
    let event = match outcome {
        Ok(Ok(())) => {
            let version = setting.version;
            *prompt = setting;
            WorkerEvent::PromptApplied { worker: index, version }
        }
        Ok(Err(error)) => {
            WorkerEvent::PromptRejected { worker: index, version: setting.version, error: error.to_string() }
        }
        Err(payload) => {
            let error = format!("setting the prompt panicked: {}", panic_message(&*payload));
            let rejected = WorkerEvent::PromptRejected { worker: index, version: setting.version, error };
            return Some(if events.send(rejected).is_err() { Exit::Shutdown } else { Exit::Restart });
        }
    };
    if events.send(event).is_err() { Some(Exit::Shutdown) } else { None }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
