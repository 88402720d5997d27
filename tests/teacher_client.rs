//! The teacher client's threads with a scripted advisor: de-duplication, caching, prompt
//! versions, restarts after a panic or a failed load, and a clean shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use duet::skills::TeacherOption;
use duet::teacher::advisor::{AdviceOrigin, AdviceRequest, Advisor, AdvisorError, TeacherAdvice};
use duet::teacher::client::{ClientHealth, TeacherClient, TeacherClientConfig};
use duet::teacher::prompt::PromptTemplate;
use duet::teacher::worker::AdvisorFactory;

/// What the scripted advisors did, shared with the test.
#[derive(Default)]
struct Record {
    built: AtomicUsize,
    advised: AtomicUsize,
    dropped: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

/// A test double: puts probability 0.9 on the first option under a prompt whose text says
/// "first" and on the last option otherwise; panics on a description that says "panic";
/// fails on one that says "fail"; waits for a permit when a gate is given.
struct ScriptedAdvisor {
    record: Arc<Record>,
    gate: Option<Receiver<()>>,
    prefers_first: bool,
    version: u64,
}

impl Advisor for ScriptedAdvisor {
    fn model_name(&self) -> &str {
        "scripted"
    }

    fn set_prompt(&mut self, template: &PromptTemplate, _feedback: &str, version: u64) -> Result<(), AdvisorError> {
        if template.text().contains("refuse") {
            return Err(AdvisorError::Model("this prompt is refused".into()));
        }
        self.prefers_first = template.text().contains("first");
        self.version = version;
        Ok(())
    }

    fn advise(&mut self, request: &AdviceRequest) -> Result<TeacherAdvice, AdvisorError> {
        if let Some(gate) = &self.gate {
            gate.recv().map_err(|_| AdvisorError::Model("gate closed".into()))?;
        }
        self.record.advised.fetch_add(1, Ordering::SeqCst);
        self.record.requests.lock().expect("record").push(request.description.clone());
        if request.description.contains("panic") {
            panic!("scripted panic on {}", request.description);
        }
        if request.description.contains("fail") {
            return Err(AdvisorError::Model("scripted failure".into()));
        }
        let count = request.options.len();
        let favourite = if self.prefers_first { 0 } else { count - 1 };
        let rest = if count > 1 { 0.1 / (count - 1) as f32 } else { 0.0 };
        let probabilities =
            (0..count).map(|i| if i == favourite { if count > 1 { 0.9 } else { 1.0 } } else { rest }).collect();
        Ok(TeacherAdvice {
            options: request.options.clone(),
            probabilities,
            rationale: None,
            prompt_version: self.version,
            origin: AdviceOrigin::Fresh,
            latency: Duration::from_millis(1),
        })
    }
}

impl Drop for ScriptedAdvisor {
    fn drop(&mut self) {
        self.record.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A factory for scripted advisors that fails its first `failing_loads` calls.
fn factory(record: &Arc<Record>, gate: Option<Receiver<()>>, failing_loads: usize) -> AdvisorFactory {
    let record = Arc::clone(record);
    Arc::new(move || {
        let attempt = record.built.fetch_add(1, Ordering::SeqCst);
        if attempt < failing_loads {
            return Err(AdvisorError::Model(format!("scripted load failure {attempt}")));
        }
        Ok(Box::new(ScriptedAdvisor {
            record: Arc::clone(&record),
            gate: gate.clone(),
            prefers_first: false,
            version: 0,
        }) as Box<dyn Advisor>)
    })
}

fn template(text: &str) -> PromptTemplate {
    PromptTemplate::parse(text, "the test").expect("valid template")
}

fn request(description: &str) -> AdviceRequest {
    AdviceRequest {
        mission: "get to the goal".into(),
        description: description.into(),
        options: vec![TeacherOption::Explore, TeacherOption::Drop],
    }
}

fn client(record: &Arc<Record>, gate: Option<Receiver<()>>, failing_loads: usize, workers: usize) -> TeacherClient {
    let mut config = TeacherClientConfig::new("scripted", workers);
    config.restart_backoff = Duration::from_millis(20);
    TeacherClient::spawn(
        config,
        factory(record, gate, failing_loads),
        template("{observation} {options}"),
        String::new(),
    )
    .expect("spawn")
}

/// Polls until `done` holds, failing the test after 10 s.
fn wait_for(client: &mut TeacherClient, what: &str, mut done: impl FnMut(&mut TeacherClient) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(client) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", client.stats());
        client.poll();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Looks `request` up until advice computed under `version` arrives.
fn advice_under(client: &mut TeacherClient, request: &AdviceRequest, version: u64) -> Arc<TeacherAdvice> {
    let mut found = None;
    wait_for(client, "advice", |c| {
        found = c.lookup(request).filter(|advice| advice.prompt_version == version);
        found.is_some()
    });
    found.expect("waited for it")
}

#[test]
fn identical_pending_requests_are_sent_once_and_lookups_never_block() {
    let record = Arc::new(Record::default());
    let (permits, gate): (Sender<()>, Receiver<()>) = crossbeam_channel::unbounded();
    let mut client = client(&record, Some(gate), 0, 1);
    client.wait_until_ready(Duration::from_secs(10)).expect("loads");
    let started = Instant::now();
    for _ in 0..5 {
        assert!(client.lookup(&request("a key ahead")).is_none());
        assert!(client.lookup(&request("a door ahead")).is_none());
    }
    assert!(started.elapsed() < Duration::from_millis(200), "lookups waited for the busy worker");
    // The worker holds "a key ahead" at its gate; "a door ahead" waits in the queue once.
    wait_for(&mut client, "the worker to take the first request", |c| c.stats().queue_depth == 1);
    for _ in 0..3 {
        permits.send(()).expect("gate open");
    }
    wait_for(&mut client, "both answers", |c| c.stats().computed == 2);
    let first = client.lookup(&request("a key ahead")).expect("answered");
    assert_eq!(first.origin, AdviceOrigin::Fresh, "the first hand-out answers the queued lookup");
    assert_eq!(first.probabilities, vec![0.1, 0.9]);
    let again = client.lookup(&request("a key ahead")).expect("cached");
    assert_eq!(again.origin, AdviceOrigin::Cache);
    let stats = client.stats();
    assert_eq!(record.advised.load(Ordering::SeqCst), 2, "each request computed once");
    assert_eq!((stats.lookups, stats.cache_hits, stats.computed, stats.failures), (12, 1, 2, 0));
    assert_eq!(stats.model_name, "scripted");
    assert_eq!(client.health(), ClientHealth::Ready);
}

#[test]
fn a_prompt_edit_keeps_old_advice_until_the_new_one_lands() {
    let record = Arc::new(Record::default());
    let (permits, gate) = crossbeam_channel::unbounded();
    let mut client = client(&record, Some(gate), 0, 1);
    let state = request("a key ahead");
    assert!(client.lookup(&state).is_none());
    permits.send(()).expect("gate open");
    let old = advice_under(&mut client, &state, 0);
    assert_eq!(old.top_option(), Some(TeacherOption::Drop));

    let version = client.set_prompt(template("choose the first: {observation} {options}"), String::new());
    assert_eq!(version, 1);
    // The worker has not answered under the new prompt yet (its gate is shut): the old advice
    // keeps answering, and the request is queued again under the new prompt.
    wait_for(&mut client, "the new prompt in force", |c| c.prompt_versions() == (1, 1));
    for _ in 0..3 {
        let still = client.lookup(&state).expect("old advice still usable");
        assert_eq!((still.prompt_version, still.top_option()), (0, Some(TeacherOption::Drop)));
    }
    permits.send(()).expect("gate open");
    let new = advice_under(&mut client, &state, 1);
    assert_eq!(new.top_option(), Some(TeacherOption::Explore));
    assert_eq!(record.advised.load(Ordering::SeqCst), 2, "recomputed once under the new prompt");
    assert_eq!(client.stats().prompt_version, 1);

    // A prompt the advisor refuses: the old one stays in force and the error is shown.
    client.set_prompt(template("refuse {observation} {options}"), String::new());
    wait_for(&mut client, "the refusal", |c| c.stats().last_error.is_some());
    assert!(client.stats().last_error.expect("error").contains("this prompt is refused"));
    assert!(client.prompt().text().contains("choose the first"), "the template in force stays");
    assert_eq!(client.lookup(&state).expect("cached").top_option(), Some(TeacherOption::Explore));
    assert_eq!(client.stats().queue_depth, 0, "advice under the prompt in force is current");
}

#[test]
fn a_panicking_advisor_is_reported_and_rebuilt() {
    let record = Arc::new(Record::default());
    let mut client = client(&record, None, 0, 1);
    assert!(client.lookup(&request("panic here")).is_none());
    wait_for(&mut client, "the panic report", |c| c.stats().restarts == 1);
    let stats = client.stats();
    assert_eq!(stats.failures, 1);
    let error = stats.last_error.expect("reported");
    assert!(error.contains("panicked") && error.contains("scripted panic on panic here"), "{error}");
    // The poisonous request is not asked again under this prompt.
    assert!(client.lookup(&request("panic here")).is_none());
    let fine = advice_under(&mut client, &request("a key ahead"), 0);
    assert_eq!(fine.top_option(), Some(TeacherOption::Drop));
    assert_eq!(record.built.load(Ordering::SeqCst), 2, "the advisor was rebuilt");
    assert_eq!(record.requests.lock().expect("record").iter().filter(|d| d.contains("panic")).count(), 1);
    // A plain error costs the request, not the advisor.
    assert!(client.lookup(&request("fail here")).is_none());
    wait_for(&mut client, "the failure report", |c| c.stats().failures == 2);
    assert_eq!(client.stats().restarts, 1);
    assert!(client.stats().last_error.expect("reported").contains("scripted failure"));
    assert_eq!(client.health(), ClientHealth::Ready);
}

#[test]
fn a_failed_load_is_reported_and_retried() {
    let record = Arc::new(Record::default());
    let mut client = client(&record, None, 2, 1);
    let error = client.wait_until_ready(Duration::from_secs(10)).expect_err("the first load fails");
    assert!(error.to_string().contains("scripted load failure 0"), "{error}");
    assert!(matches!(client.health(), ClientHealth::Failed(_)));
    assert!(client.lookup(&request("a key ahead")).is_none(), "the student goes on without advice");
    // Retried after the backoff: the third load succeeds and the queued request is answered.
    let advice = advice_under(&mut client, &request("a key ahead"), 0);
    assert_eq!(advice.top_option(), Some(TeacherOption::Drop));
    let stats = client.stats();
    assert_eq!((stats.restarts, stats.failures), (2, 2));
    assert_eq!(record.built.load(Ordering::SeqCst), 3);
    assert_eq!(client.health(), ClientHealth::Ready);
}

#[test]
fn dropping_the_client_stops_and_joins_every_worker() {
    let record = Arc::new(Record::default());
    let mut client = client(&record, None, 0, 3);
    client.wait_until_ready(Duration::from_secs(10)).expect("loads");
    wait_for(&mut client, "all three workers", |_| record.built.load(Ordering::SeqCst) == 3);
    for index in 0..20 {
        client.lookup(&request(&format!("state {index}")));
    }
    let started = Instant::now();
    drop(client);
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown hung");
    // Joined: every worker has dropped its advisor by the time drop returns.
    assert_eq!(record.dropped.load(Ordering::SeqCst), 3);
}

#[test]
fn a_free_worker_takes_the_most_asked_for_state_next() {
    let record = Arc::new(Record::default());
    let (permits, gate) = crossbeam_channel::unbounded();
    let mut client = client(&record, Some(gate), 0, 1);
    client.wait_until_ready(Duration::from_secs(10)).expect("loads");
    // The worker takes "first" and waits at its gate; "second" fills the one-deep channel.
    client.lookup(&request("first"));
    wait_for(&mut client, "the worker to take the first request", |c| c.stats().queue_depth == 0);
    client.lookup(&request("second"));
    client.poll();
    // Then demand decides: "often" is looked up 5 times, "sometimes" 3, "once" once.
    for (description, times) in [("once", 1), ("sometimes", 3), ("often", 5)] {
        for _ in 0..times {
            assert!(client.lookup(&request(description)).is_none());
        }
    }
    assert_eq!(client.stats().queue_depth, 4);
    for _ in 0..5 {
        permits.send(()).expect("gate open");
    }
    wait_for(&mut client, "all answers", |c| c.stats().computed == 5);
    let order = record.requests.lock().expect("record").clone();
    assert_eq!(order, vec!["first", "second", "often", "sometimes", "once"]);
}
