//! The LLM teacher as a `TeacherPolicy`: per env (grid or embodied) it asks the `TeacherClient`
//! for option advice on what the agent sees, and maps the options to primitive actions via the skills.
//!
//! The student never waits: a state the client has no advice for yet gets `None` (KL masked)
//! and is queued for the workers; its advice is used from the first step it is back.

use std::sync::Arc;
use std::time::Duration;

use crate::env::embodied::{self, EmbodiedEnv};
use crate::env::grid::{FogOfWar, GridWorld};
use crate::env::scene::TeacherSpec;
use crate::env::text::{Detail, describe_at};
use crate::env::vec_env::VecEnv;
use crate::skills::embodied::{EmbodiedSkillStep, embodied_skill_action};
use crate::skills::{Knowledge, SkillPlanner, SkillStep, TeacherOption, available_options};
use crate::student::teacher::EpisodeFogs;
use crate::student::{ActionDistribution, TeacherPolicy};
use crate::teacher::advice::{LlmAdvisor, LlmAdvisorSettings, template_for_spec};
use crate::teacher::advisor::{AdviceRequest, Advisor, TeacherAdvice, TeacherClientStats};
use crate::teacher::client::{TeacherClient, TeacherClientConfig, TeacherClientError};
use crate::teacher::prompt::{PromptError, PromptTemplate};
pub use crate::teacher::situations::embodied_advice_request;
use crate::teacher::worker::AdvisorFactory;

/// How long `duet train` waits for the teacher's model to load (seconds on an idle machine).
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a teacher that paces the student (`wait_for_advice`) waits for one step's advice
/// before letting the student go on without it.
pub const ADVICE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the LLM teacher could not start.
#[derive(Debug, thiserror::Error)]
pub enum LlmTeacherError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Client(#[from] TeacherClientError),
}

/// Starts the LLM teacher a scene's `teacher` section describes: `spec.workers` threads, each
/// loading the model (`spec.model`, else the default from `make model`) under the prompt
/// (`spec.prompt`, else the shipped one for the scoring mode). Returns once the prompt is
/// read, without waiting for the model: a missing or corrupt model shows up as
/// `client_stats().last_error` (and `ClientHealth::Failed`), naming the file and the fix.
pub fn start(spec: &TeacherSpec) -> Result<LlmTeacher, LlmTeacherError> {
    let template = template_for_spec(spec)?;
    let settings = LlmAdvisorSettings::from_spec(spec).map_err(|error| LlmTeacherError::Settings(error.to_string()))?;
    let model_name = settings
        .model_path
        .file_name()
        .map_or_else(|| settings.model_path.display().to_string(), |name| name.to_string_lossy().into_owned());
    let load_template = template.clone();
    let factory: AdvisorFactory = Arc::new(move || {
        LlmAdvisor::load(settings.clone(), &load_template).map(|advisor| Box::new(advisor) as Box<dyn Advisor>)
    });
    let config = TeacherClientConfig::new(model_name, spec.workers);
    let mut teacher =
        LlmTeacher::new(TeacherClient::spawn(config, factory, template, String::new())?, spec.description);
    teacher.set_wait_for_advice(spec.wait_for_advice);
    Ok(teacher)
}

/// Advice from a language model through a `TeacherClient`.
pub struct LlmTeacher {
    client: TeacherClient,
    fogs: EpisodeFogs,
    /// Per env, the option advice behind the last `advise` (for the teacher panel).
    advice: Vec<Option<Arc<TeacherAdvice>>>,
    /// How much of each state the questions describe.
    detail: Detail,
    /// Whether `advise` waits for the advice on situations not asked about before.
    wait_for_advice: bool,
}

impl LlmTeacher {
    /// A teacher asking `client` (whose workers may still be loading) about states described
    /// at `detail`.
    pub fn new(client: TeacherClient, detail: Detail) -> LlmTeacher {
        LlmTeacher { client, fogs: EpisodeFogs::default(), advice: Vec::new(), detail, wait_for_advice: false }
    }

    /// How much of each state the questions describe.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// Makes `advise` wait (up to `ADVICE_TIMEOUT`) for the advice on situations the teacher
    /// has no answer for yet, as LLM4Teach's student waits for its LLM: every frame of a new
    /// situation is then advised, and the LLM's calls are what a run costs beyond frames.
    /// Headless runs only; the app must never wait.
    pub fn set_wait_for_advice(&mut self, wait: bool) {
        self.wait_for_advice = wait;
    }

    pub fn client(&self) -> &TeacherClient {
        &self.client
    }

    pub fn client_mut(&mut self) -> &mut TeacherClient {
        &mut self.client
    }

    /// Puts `feedback` in the prompt's `{feedback}` slot (a new prompt version).
    pub fn set_feedback(&mut self, feedback: String) -> u64 {
        let template = self.client.prompt().clone();
        self.client.set_prompt(template, feedback)
    }
}

/// The question for the state `world` shows, given what the agent has seen, described at `detail`.
pub fn advice_request(world: &GridWorld, seen: &FogOfWar, detail: Detail) -> AdviceRequest {
    AdviceRequest {
        mission: world.mission.clone(),
        description: describe_at(detail, world, Some(seen)),
        options: available_options(world, seen),
    }
}

/// `action_distribution` for an embodied env, through the embodied skills, on the student's
/// action indices (`embodied::student::ACTIONS`).
pub fn embodied_action_distribution(advice: &TeacherAdvice, env: &EmbodiedEnv) -> Option<ActionDistribution> {
    distribution_through(advice, |option| match embodied_skill_action(option, env) {
        EmbodiedSkillStep::Act(action) => Some(embodied::student::index_of_action(action)),
        EmbodiedSkillStep::Done | EmbodiedSkillStep::Impossible => None,
    })
}

/// The teacher's action distribution: each option's probability goes to the primitive action
/// its skill takes now; options whose skill cannot act now (done or impossible) are dropped
/// and the rest renormalised. `None` when no option with probability can act.
pub fn action_distribution(
    advice: &TeacherAdvice,
    world: &GridWorld,
    known: &impl Knowledge,
) -> Option<ActionDistribution> {
    // One planner for all options: they share the known map and the search from the agent.
    let planner = SkillPlanner::new(world, known);
    distribution_through(advice, |option| match planner.action(option) {
        SkillStep::Act(action) => Some(action as usize),
        SkillStep::Done | SkillStep::Impossible => None,
    })
}

/// Each option's probability on the student action `action_of` gives it (None: the option's
/// skill cannot act now, and its mass is dropped), renormalised; None when nothing is left.
fn distribution_through(
    advice: &TeacherAdvice,
    action_of: impl Fn(TeacherOption) -> Option<usize>,
) -> Option<ActionDistribution> {
    let mut distribution: ActionDistribution = Default::default();
    let mut total = 0.0f32;
    for (&option, &probability) in advice.options.iter().zip(&advice.probabilities) {
        if !probability.is_finite() || probability <= 0.0 {
            continue;
        }
        if let Some(index) = action_of(option) {
            distribution[index] += probability;
            total += probability;
        }
    }
    if total <= 0.0 {
        return None;
    }
    for p in &mut distribution {
        *p /= total;
    }
    Some(distribution)
}

impl LlmTeacher {
    /// The question for env `index` now: the grid's, given what its agent has seen, or the
    /// embodied one.
    fn request_for(&mut self, env: &VecEnv, index: usize) -> AdviceRequest {
        match env.embodied(index) {
            Some(embodied_env) => embodied_advice_request(embodied_env),
            None => advice_request(env.world(index), self.fogs.observe(env, index), self.detail),
        }
    }

    /// What `advice` means in primitive actions for env `index` now.
    fn distribution_for(&mut self, env: &VecEnv, index: usize, advice: &TeacherAdvice) -> Option<ActionDistribution> {
        match env.embodied(index) {
            Some(embodied_env) => embodied_action_distribution(advice, embodied_env),
            None => action_distribution(advice, env.world(index), self.fogs.observe(env, index)),
        }
    }
}

impl TeacherPolicy for LlmTeacher {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn advise(&mut self, env: &VecEnv, advice: &mut [Option<ActionDistribution>]) {
        self.client.poll();
        self.fogs.begin(env);
        self.advice.resize(env.num_envs(), None);
        let mut unanswered = Vec::new();
        for (index, slot) in advice.iter_mut().enumerate().take(env.num_envs()) {
            let request = self.request_for(env, index);
            let found = self.client.lookup(&request);
            if found.is_none() && self.wait_for_advice {
                unanswered.push((index, request));
                continue;
            }
            *slot = found.as_deref().and_then(|option_advice| self.distribution_for(env, index, option_advice));
            self.advice[index] = found;
        }
        if unanswered.is_empty() {
            return;
        }
        let requests: Vec<AdviceRequest> = unanswered.iter().map(|(_, request)| request.clone()).collect();
        let answers = self.client.wait_for(&requests, ADVICE_TIMEOUT);
        for ((index, _), found) in unanswered.into_iter().zip(answers) {
            // Observing again in the same step changes nothing (reveal and reset are idempotent).
            advice[index] = found.as_deref().and_then(|option_advice| self.distribution_for(env, index, option_advice));
            self.advice[index] = found;
        }
    }

    fn option_advice(&self, index: usize) -> Option<&TeacherAdvice> {
        self.advice.get(index).and_then(Option::as_deref)
    }

    fn client_stats(&self) -> Option<TeacherClientStats> {
        Some(self.client.stats())
    }

    fn prompt(&self) -> Option<&PromptTemplate> {
        Some(self.client.prompt())
    }

    /// The template was checked when parsed (its slots); it goes to the workers with the
    /// feedback in force. A worker that refuses it keeps the old one and says why in
    /// `client_stats().last_error`.
    fn set_prompt(&mut self, template: PromptTemplate) -> Result<u64, String> {
        let feedback = self.client.feedback().to_owned();
        Ok(self.client.set_prompt(template, feedback))
    }

    fn set_feedback(&mut self, text: &str) -> Result<u64, String> {
        Ok(LlmTeacher::set_feedback(self, text.to_owned()))
    }
}

/// Stands in for the LLM teacher when it could not even start (say its prompt file is
/// broken): never advises, and reports why in `client_stats().last_error` so the app can
/// show it.
#[derive(Clone, Debug)]
pub struct UnavailableTeacher {
    error: String,
}

impl UnavailableTeacher {
    pub fn new(error: impl Into<String>) -> UnavailableTeacher {
        UnavailableTeacher { error: error.into() }
    }

    pub fn error(&self) -> &str {
        &self.error
    }
}

impl TeacherPolicy for UnavailableTeacher {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn advise(&mut self, _env: &VecEnv, advice: &mut [Option<ActionDistribution>]) {
        advice.fill(None);
    }

    fn client_stats(&self) -> Option<TeacherClientStats> {
        Some(TeacherClientStats { failures: 1, last_error: Some(self.error.clone()), ..TeacherClientStats::default() })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::env::grid::{Action, Level};
    use crate::env::vec_env::VecEnvConfig;
    use crate::skills::{TeacherOption, skill_action};
    use crate::student::NUM_ACTIONS;
    use crate::teacher::advisor::{AdviceOrigin, Advisor, AdvisorError};
    use crate::teacher::client::TeacherClientConfig;
    use crate::teacher::worker::AdvisorFactory;

    /// A test double: weight 3 on picking something up, 2 on opening a door, 1 on the rest,
    /// normalised; every answer costs a few milliseconds, like a (very fast) model.
    struct PreferencesAdvisor;

    impl Advisor for PreferencesAdvisor {
        fn model_name(&self) -> &str {
            "preferences"
        }

        fn set_prompt(&mut self, _: &PromptTemplate, _: &str, _: u64) -> Result<(), AdvisorError> {
            Ok(())
        }

        fn advise(&mut self, request: &AdviceRequest) -> Result<TeacherAdvice, AdvisorError> {
            std::thread::sleep(Duration::from_millis(2));
            let weights: Vec<f32> = request
                .options
                .iter()
                .map(|option| match option {
                    TeacherOption::PickUp(_) => 3.0,
                    TeacherOption::OpenDoor(_) => 2.0,
                    _ => 1.0,
                })
                .collect();
            let total: f32 = weights.iter().sum();
            Ok(TeacherAdvice {
                options: request.options.clone(),
                probabilities: weights.iter().map(|w| w / total).collect(),
                rationale: None,
                prompt_version: 0,
                origin: AdviceOrigin::Fresh,
                latency: Duration::from_millis(2),
            })
        }
    }

    fn teacher() -> LlmTeacher {
        let factory: AdvisorFactory = Arc::new(|| Ok(Box::new(PreferencesAdvisor) as Box<dyn Advisor>));
        let template = PromptTemplate::parse("{observation}\n{options}", "the test").expect("valid");
        let client = TeacherClient::spawn(TeacherClientConfig::new("preferences", 1), factory, template, String::new())
            .expect("spawn");
        LlmTeacher::new(client, Detail::Detailed)
    }

    /// What the skills say, option by option (not through the shared planner).
    fn expected(advice: &TeacherAdvice, world: &GridWorld, seen: &FogOfWar) -> Option<ActionDistribution> {
        let mut distribution = [0.0f32; NUM_ACTIONS];
        for (&option, &p) in advice.options.iter().zip(&advice.probabilities) {
            if let SkillStep::Act(action) = skill_action(option, world, seen) {
                distribution[action as usize] += p;
            }
        }
        let total: f32 = distribution.iter().sum();
        (total > 0.0).then(|| distribution.map(|p| p / total))
    }

    #[test]
    fn a_pacing_teacher_answers_every_env_at_once() {
        let level = Level::DoorKey { size: 5 };
        let mut env = VecEnv::new(VecEnvConfig::new(level, 4, 3));
        let mut teacher = teacher();
        teacher.set_wait_for_advice(true);
        let mut advice = vec![None; 4];
        for step in 0..30usize {
            teacher.advise(&env, &mut advice);
            for (i, advised) in advice.iter().enumerate() {
                assert!(advised.is_some() || teacher.option_advice(i).is_some(), "step {step} env {i} unanswered");
            }
            let actions: Vec<Action> = (0..4).map(|i| Action::from_index((step + i) % 3).expect("action")).collect();
            env.step(&actions);
        }
        let stats = teacher.client_stats().expect("stats");
        assert!(stats.computed >= 1 && stats.cache_hits > 0, "{stats:?}");
    }

    #[test]
    fn advice_arrives_after_the_worker_answers_and_matches_the_skills() {
        let level = Level::DoorKey { size: 5 };
        let mut env = VecEnv::new(VecEnvConfig::new(level, 4, 3));
        let mut teacher = teacher();
        let mut advice = vec![None; 4];
        teacher.advise(&env, &mut advice);
        assert!(advice.iter().all(Option::is_none), "nothing is answered before the worker runs");
        assert!(teacher.option_advice(0).is_none());

        // Same states again once the worker has answered: advice for every env.
        let deadline = Instant::now() + Duration::from_secs(10);
        while teacher.client_stats().expect("stats").computed < 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            teacher.client_mut().poll();
        }
        teacher.advise(&env, &mut advice);
        assert!(advice.iter().all(Option::is_some), "{:?}", teacher.client_stats());

        // Walk the envs at random; wherever there is advice it is what the skills say, and
        // our own fog of war matches one tracked alongside.
        let mut fogs: Vec<FogOfWar> = (0..4).map(|i| FogOfWar::for_world(env.world(i))).collect();
        let (mut advised, mut checked_pickup) = (0, false);
        for step in 0..400u32 {
            let actions: Vec<Action> = (0..4)
                .map(|i| Action::from_index((step as usize * 7 + i * 3 + step as usize / 5) % 5).expect("action"))
                .collect();
            env.step(&actions);
            // The student's own step takes time too; meanwhile the worker answers.
            std::thread::sleep(Duration::from_millis(3));
            for (i, fog) in fogs.iter_mut().enumerate() {
                if env.terminated()[i] || env.truncated()[i] {
                    fog.reset(env.world(i));
                } else {
                    fog.reveal(env.world(i));
                }
            }
            teacher.advise(&env, &mut advice);
            for i in 0..4 {
                let world = env.world(i);
                let Some(options) = teacher.option_advice(i) else {
                    assert!(advice[i].is_none());
                    continue;
                };
                assert_eq!(options.options, available_options(world, &fogs[i]));
                let want = expected(options, world, &fogs[i]);
                assert_eq!(advice[i].is_some(), want.is_some());
                if let (Some(got), Some(want)) = (advice[i], want) {
                    advised += 1;
                    for a in 0..NUM_ACTIONS {
                        assert!((got[a] - want[a]).abs() < 1e-6, "{got:?} vs {want:?}");
                    }
                    assert!((got.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                    // Facing the key with free hands: picking it up gets the most mass.
                    if options.options.iter().any(|o| matches!(o, TeacherOption::PickUp(_)))
                        && world.carrying.is_empty()
                        && crate::skills::Item::of_cell(world.get(world.front_pos())).is_some()
                    {
                        let best = (0..NUM_ACTIONS).fold(0, |b, a| if got[a] > got[b] { a } else { b });
                        assert_eq!(best, Action::Pickup as usize, "{options:?} -> {got:?}");
                        checked_pickup = true;
                    }
                }
            }
        }
        let stats = teacher.client_stats().expect("stats");
        assert!(advised > 800, "advised {advised} of 1600 samples: {stats:?}");
        assert!(checked_pickup, "never faced the key");
        assert!(stats.cache_hits > 0 && stats.computed > 4 && stats.failures == 0, "{stats:?}");
        assert_eq!(stats.lookups, 4 * 402);
    }

    #[test]
    fn prompt_edits_bump_the_version_and_an_unavailable_teacher_says_why() {
        let mut teacher = teacher();
        assert_eq!(teacher.prompt().expect("a prompt").text(), "{observation}\n{options}");
        let edited = PromptTemplate::parse("State: {observation}\nOptions: {options}", "the editor").expect("valid");
        assert_eq!(teacher.set_prompt(edited), Ok(1));
        assert!(teacher.prompt().expect("a prompt").text().starts_with("State:"));
        assert_eq!(teacher.set_feedback("opening the door first failed".into()), 2);
        // Through the trait too (what the trainer calls), into the client's prompt.
        assert_eq!(TeacherPolicy::set_feedback(&mut teacher, "picking up the key first worked"), Ok(3));
        assert_eq!(teacher.client().feedback(), "picking up the key first worked");

        let mut unavailable = UnavailableTeacher::new("grid.txt: cannot read the template");
        let env = VecEnv::new(VecEnvConfig::new(Level::DoorKey { size: 5 }, 2, 1));
        let mut advice = vec![Some([0.0; NUM_ACTIONS]); 2];
        unavailable.advise(&env, &mut advice);
        assert_eq!(advice, vec![None, None]);
        let stats = unavailable.client_stats().expect("stats");
        assert_eq!(stats.last_error.as_deref(), Some("grid.txt: cannot read the template"));
    }
}
