//! `TeacherClient`: the trainer's side of the teacher. Looks advice up in its cache at once and
//! queues what is missing to worker threads; answers are collected without ever blocking.
//!
//! Missing advice waits in a bounded, de-duplicated queue that counts how often each state
//! was looked up; whenever a worker is free, the most asked-for state goes next (over a
//! crossbeam channel one request deep per worker), so a slow model spends its time on the
//! states the student is in most. A full queue forgets its least asked-for half.
//! Prompt edits bump the prompt version and go to every worker; advice from the previous
//! prompt keeps answering until the new prompt's advice for that state lands.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::teacher::advisor::{AdviceOrigin, AdviceRequest, TeacherAdvice, TeacherClientStats};
use crate::teacher::cache::AdviceCache;
use crate::teacher::prompt::PromptTemplate;
use crate::teacher::worker::{
    AdvisorFactory, Control, PromptSetting, RestartBackoff, WorkerEvent, WorkerSetup, spawn_worker,
};

/// How a client runs its workers.
#[derive(Clone, Debug)]
pub struct TeacherClientConfig {
    /// Names the model in the cache key and in the statistics until a worker reports its own.
    pub model_name: String,
    /// Worker threads, each with its own advisor (one is fastest on 2 cores).
    pub workers: usize,
    /// Distinct requests that may wait for a worker; when full, the least asked-for half is
    /// dropped (asked again the next time their states are seen).
    pub queue_capacity: usize,
    /// Advice kept in the cache.
    pub cache_capacity: usize,
    /// Computed advice the latency percentiles are taken over.
    pub latency_window: usize,
    /// Wait before reloading after a failed load, doubling up to `max_restart_backoff`.
    pub restart_backoff: Duration,
    pub max_restart_backoff: Duration,
}

impl TeacherClientConfig {
    pub fn new(model_name: impl Into<String>, workers: usize) -> TeacherClientConfig {
        TeacherClientConfig {
            model_name: model_name.into(),
            workers: workers.max(1),
            queue_capacity: 4096,
            cache_capacity: 100_000,
            latency_window: 256,
            restart_backoff: Duration::from_millis(500),
            max_restart_backoff: Duration::from_secs(30),
        }
    }
}

/// Whether the teacher can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientHealth {
    /// No worker has loaded its advisor yet, and none failed to.
    Loading,
    /// At least one worker answers.
    Ready,
    /// No worker answers, and the last attempt to load failed with this error (workers keep
    /// retrying).
    Failed(String),
}

/// Why `wait_until_ready` gave up.
#[derive(Debug, thiserror::Error)]
pub enum TeacherClientError {
    #[error("{0}")]
    LoadFailed(String),
    #[error("the teacher did not load within {0:?}")]
    Timeout(Duration),
    #[error("cannot start a teacher worker thread: {0}")]
    Spawn(std::io::Error),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum WorkerState {
    Loading,
    Ready,
    Failed(String),
}

/// The trainer's handle on the teacher's worker threads. Dropping it stops and joins them.
pub struct TeacherClient {
    config: TeacherClientConfig,
    factory: AdvisorFactory,
    /// `None` only while shutting down.
    jobs: Option<Sender<AdviceRequest>>,
    jobs_receiver: Receiver<AdviceRequest>,
    controls: Vec<Sender<Control>>,
    events: Receiver<WorkerEvent>,
    events_sender: Sender<WorkerEvent>,
    workers: Vec<Option<JoinHandle<()>>>,
    worker_states: Vec<WorkerState>,
    /// Requests waiting for a worker, with how often they were looked up since.
    waiting: HashMap<AdviceRequest, u64>,
    /// Requests handed to the workers and not yet answered.
    pending: HashSet<AdviceRequest>,
    /// Requests a worker failed or panicked on under the prompt in force: not asked again
    /// until the prompt changes, so a request that breaks the advisor cannot loop.
    refused: HashSet<AdviceRequest>,
    cache: AdviceCache,
    /// The newest prompt sent to the workers.
    prompt: PromptSetting,
    /// The newest prompt a worker has put in force: advice computed under it is current.
    applied: PromptSetting,
    stats: TeacherClientStats,
    latencies: VecDeque<Duration>,
    dropped_requests: u64,
}

impl TeacherClient {
    /// Starts `config.workers` threads that each build an advisor with `factory` and run it
    /// under `template` with `feedback` (prompt version 0). Returns at once: loading happens
    /// on the workers (see `health`, `wait_until_ready`).
    pub fn spawn(
        config: TeacherClientConfig,
        factory: AdvisorFactory,
        template: PromptTemplate,
        feedback: String,
    ) -> Result<TeacherClient, TeacherClientError> {
        // One request deep per worker: the choice of what to compute next stays here, made
        // when a worker is free, with the latest demand counts.
        let (jobs, jobs_receiver) = crossbeam_channel::bounded(config.workers.max(1));
        let (events_sender, events) = crossbeam_channel::unbounded();
        let prompt = PromptSetting { template, feedback, version: 0 };
        let stats = TeacherClientStats {
            model_name: config.model_name.clone(),
            workers: config.workers.max(1),
            ..TeacherClientStats::default()
        };
        let mut client = TeacherClient {
            cache: AdviceCache::new(config.cache_capacity),
            factory,
            jobs: Some(jobs),
            jobs_receiver,
            controls: Vec::new(),
            events,
            events_sender,
            workers: Vec::new(),
            worker_states: Vec::new(),
            waiting: HashMap::new(),
            pending: HashSet::new(),
            refused: HashSet::new(),
            applied: prompt.clone(),
            prompt,
            stats,
            latencies: VecDeque::new(),
            dropped_requests: 0,
            config,
        };
        for index in 0..client.stats.workers {
            let (control, handle) = client.start_worker(index)?;
            client.controls.push(control);
            client.workers.push(Some(handle));
            client.worker_states.push(WorkerState::Loading);
        }
        Ok(client)
    }

    fn start_worker(&self, index: usize) -> Result<(Sender<Control>, JoinHandle<()>), TeacherClientError> {
        let (control, control_receiver) = crossbeam_channel::unbounded();
        let setup = WorkerSetup {
            index,
            factory: Arc::clone(&self.factory),
            prompt: self.prompt.clone(),
            jobs: self.jobs_receiver.clone(),
            control: control_receiver,
            events: self.events_sender.clone(),
            backoff: RestartBackoff { first: self.config.restart_backoff, max: self.config.max_restart_backoff },
        };
        let handle = spawn_worker(setup).map_err(TeacherClientError::Spawn)?;
        Ok((control, handle))
    }

    /// The advice for `request`, if the cache has one (possibly from the previous prompt);
    /// otherwise, or when it is from an older prompt, the request is queued. Never blocks.
    /// Collects the workers' answers first.
    pub fn lookup(&mut self, request: &AdviceRequest) -> Option<Arc<TeacherAdvice>> {
        self.poll();
        self.stats.lookups += 1;
        match self.cache.get(&self.config.model_name, request, self.applied.version) {
            Some(found) => {
                if found.advice.origin == AdviceOrigin::Cache {
                    self.stats.cache_hits += 1;
                }
                if !found.current {
                    self.queue(request);
                }
                Some(found.advice)
            }
            None => {
                self.queue(request);
                None
            }
        }
    }

    fn queue(&mut self, request: &AdviceRequest) {
        if self.pending.contains(request) || self.refused.contains(request) {
            return;
        }
        if let Some(count) = self.waiting.get_mut(request) {
            *count += 1;
            return;
        }
        if self.waiting.len() >= self.config.queue_capacity.max(1) {
            self.forget_least_asked_for();
        }
        self.waiting.insert(request.clone(), 1);
    }

    /// Drops the least asked-for half of the waiting requests (they are asked again the
    /// next time their states are seen).
    fn forget_least_asked_for(&mut self) {
        let mut counts: Vec<u64> = self.waiting.values().copied().collect();
        let middle = counts.len() / 2;
        let (_, &mut median, _) = counts.select_nth_unstable(middle);
        let before = self.waiting.len();
        self.waiting.retain(|_, &mut count| count > median);
        if self.waiting.len() == before {
            // Every count equal: drop any half.
            let keep: Vec<AdviceRequest> = self.waiting.keys().take(middle).cloned().collect();
            self.waiting.retain(|request, _| keep.contains(request));
        }
        self.dropped_requests += (before - self.waiting.len()) as u64;
    }

    /// Hands the most asked-for waiting requests to free workers.
    fn dispatch(&mut self) {
        let Some(jobs) = self.jobs.clone() else { return };
        while !jobs.is_full() {
            let Some(request) =
                self.waiting.iter().max_by_key(|&(_, &count)| count).map(|(request, _)| request.clone())
            else {
                return;
            };
            self.waiting.remove(&request);
            self.pending.insert(request.clone());
            if let Err(TrySendError::Full(request) | TrySendError::Disconnected(request)) = jobs.try_send(request) {
                self.pending.remove(&request);
                self.waiting.insert(request, 1);
                return;
            }
        }
    }

    /// Collects what the workers reported, without blocking; restarts a worker thread that
    /// ended on its own.
    pub fn poll(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.handle(event);
        }
        self.restart_ended_workers();
        self.dispatch();
    }

    fn handle(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Loaded { worker, model_name, prompt_version, .. } => {
                self.set_state(worker, WorkerState::Ready);
                self.stats.model_name = model_name;
                self.note_applied(prompt_version);
            }
            WorkerEvent::LoadFailed { worker, error } => {
                self.set_state(worker, WorkerState::Failed(error.clone()));
                self.record_failure(format!("teacher worker {worker}: {error}"));
            }
            WorkerEvent::Restarting { .. } => self.stats.restarts += 1,
            WorkerEvent::PromptApplied { version, .. } => self.note_applied(version),
            WorkerEvent::PromptRejected { worker, version, error } => {
                // The workers keep the prompt they had; so does the client.
                if version == self.prompt.version {
                    self.prompt = PromptSetting { version, ..self.applied.clone() };
                }
                self.record_failure(format!("teacher worker {worker} refused the prompt: {error}"));
            }
            WorkerEvent::Answered { request, advice, latency, .. } => {
                self.pending.remove(&request);
                self.stats.computed += 1;
                if self.latencies.len() >= self.config.latency_window.max(1) {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(latency);
                self.cache.insert(&self.config.model_name, request, advice);
            }
            WorkerEvent::Failed { worker, request, error } => {
                self.pending.remove(&request);
                self.refused.insert(request);
                self.record_failure(format!("teacher worker {worker}: {error}"));
            }
            WorkerEvent::Panicked { worker, request, message } => {
                self.pending.remove(&request);
                self.refused.insert(request);
                self.set_state(worker, WorkerState::Loading);
                self.record_failure(format!("teacher worker {worker} panicked: {message}"));
            }
        }
    }

    fn set_state(&mut self, worker: usize, state: WorkerState) {
        if let Some(slot) = self.worker_states.get_mut(worker) {
            *slot = state;
        }
    }

    fn note_applied(&mut self, version: u64) {
        if version > self.applied.version && version <= self.prompt.version {
            self.applied = if version == self.prompt.version {
                self.prompt.clone()
            } else {
                // An intermediate edit: its text is gone, only its version matters here.
                PromptSetting { version, ..self.applied.clone() }
            };
        }
    }

    fn record_failure(&mut self, error: String) {
        self.stats.failures += 1;
        self.stats.last_error = Some(error);
    }

    fn restart_ended_workers(&mut self) {
        if self.jobs.is_none() {
            return;
        }
        for index in 0..self.workers.len() {
            if !self.workers[index].as_ref().is_some_and(JoinHandle::is_finished) {
                continue;
            }
            if let Some(handle) = self.workers[index].take() {
                let _ = handle.join();
            }
            // Whatever it was computing is lost: let those requests be asked again.
            self.pending.clear();
            self.stats.restarts += 1;
            match self.start_worker(index) {
                Ok((control, handle)) => {
                    self.controls[index] = control;
                    self.workers[index] = Some(handle);
                    self.set_state(index, WorkerState::Loading);
                }
                Err(error) => {
                    self.set_state(index, WorkerState::Failed(error.to_string()));
                    self.record_failure(error.to_string());
                }
            }
        }
    }

    /// Puts `template` (with `feedback` in its `{feedback}` slot) in force on every worker and
    /// returns the new prompt version. Advice from the previous prompt keeps answering until
    /// the new one's arrives; if the workers refuse the prompt they keep the old one and
    /// `last_error` says why.
    pub fn set_prompt(&mut self, template: PromptTemplate, feedback: String) -> u64 {
        let version = self.prompt.version + 1;
        self.prompt = PromptSetting { template, feedback, version };
        for control in &self.controls {
            // A worker that is gone is restarted with the newest prompt by `poll`.
            let _ = control.send(Control::SetPrompt(self.prompt.clone()));
        }
        self.refused.clear();
        version
    }

    /// The newest prompt template sent to the workers.
    pub fn prompt(&self) -> &PromptTemplate {
        &self.prompt.template
    }

    /// The feedback text in the newest prompt.
    pub fn feedback(&self) -> &str {
        &self.prompt.feedback
    }

    /// The newest prompt version, and the one advice is current under (a worker put it in force).
    pub fn prompt_versions(&self) -> (u64, u64) {
        (self.prompt.version, self.applied.version)
    }

    pub fn health(&self) -> ClientHealth {
        if self.worker_states.contains(&WorkerState::Ready) {
            return ClientHealth::Ready;
        }
        let failed: Vec<&String> = self
            .worker_states
            .iter()
            .filter_map(|state| match state {
                WorkerState::Failed(error) => Some(error),
                _ => None,
            })
            .collect();
        if !failed.is_empty() && failed.len() == self.worker_states.len() {
            ClientHealth::Failed(failed[0].clone())
        } else {
            ClientHealth::Loading
        }
    }

    /// Blocks until a worker has loaded its advisor (Ok) or every worker failed to (the first
    /// error), at most `timeout`. For the CLI, which should stop with a clear error rather
    /// than train without the teacher it was asked for.
    pub fn wait_until_ready(&mut self, timeout: Duration) -> Result<(), TeacherClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll();
            match self.health() {
                ClientHealth::Ready => return Ok(()),
                ClientHealth::Failed(error) => return Err(TeacherClientError::LoadFailed(error)),
                ClientHealth::Loading => {}
            }
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => return Err(TeacherClientError::Timeout(timeout)),
                // Cannot happen while the client holds a sender; treat it as a timeout.
                Err(RecvTimeoutError::Disconnected) => return Err(TeacherClientError::Timeout(timeout)),
            }
        }
    }

    /// Blocks until every one of `requests` has advice in the cache (from any prompt version)
    /// or was refused by a worker, at most `timeout`, and returns each one's advice (None:
    /// refused, or time ran out, or every worker failed). Queues the requests that are not
    /// waiting yet. Not counted as lookups. For headless runs that pace the student by the
    /// teacher (LLM4Teach's way), never for the app.
    pub fn wait_for(&mut self, requests: &[AdviceRequest], timeout: Duration) -> Vec<Option<Arc<TeacherAdvice>>> {
        let deadline = Instant::now() + timeout;
        for request in requests {
            if self.cache.get(&self.config.model_name, request, self.applied.version).is_none() {
                self.queue(request);
            }
        }
        loop {
            self.poll();
            let answered = |client: &mut TeacherClient, request: &AdviceRequest| {
                client.refused.contains(request)
                    || client.cache.get(&client.config.model_name, request, client.applied.version).is_some()
            };
            if requests.iter().all(|request| answered(self, request))
                || matches!(self.health(), ClientHealth::Failed(_))
            {
                break;
            }
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        requests
            .iter()
            .map(|request| {
                self.cache.get(&self.config.model_name, request, self.applied.version).map(|found| found.advice)
            })
            .collect()
    }

    /// Waiting requests dropped because the queue was full.
    pub fn dropped_requests(&self) -> u64 {
        self.dropped_requests
    }

    /// Advice held in the cache.
    pub fn cached_advice(&self) -> usize {
        self.cache.len()
    }

    /// Live statistics (what `poll` has collected so far).
    pub fn stats(&self) -> TeacherClientStats {
        let mut stats = self.stats.clone();
        stats.prompt_version = self.applied.version;
        stats.queue_depth = self.waiting.len() + self.jobs.as_ref().map_or(0, Sender::len);
        let mut sorted: Vec<Duration> = self.latencies.iter().copied().collect();
        sorted.sort_unstable();
        stats.latency_p50 = percentile(&sorted, 0.50);
        stats.latency_p95 = percentile(&sorted, 0.95);
        stats
    }
}

/// Nearest-rank percentile of sorted durations (zero for none).
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Drop for TeacherClient {
    /// Closes the queues, so every worker leaves its loop once its current request is done,
    /// and joins them.
    fn drop(&mut self) {
        self.jobs = None;
        self.controls.clear();
        for handle in self.workers.iter_mut().filter_map(Option::take) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), ms(10));
        assert_eq!(percentile(&sorted, 0.95), ms(19));
        assert_eq!(percentile(&[ms(7)], 0.95), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
