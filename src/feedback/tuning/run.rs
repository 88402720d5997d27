//! A tuning run on a level: situations sampled from the level, the teacher's prompt and legal
//! option phrases for each, advice judged by a frozen student, and iterations of PPO, CORY or
//! ArCHer, each reported as a record (reward, KL to the base, agreement with the oracle).

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::archer::{Archer, ArcherSettings, Transition};
use super::cory::{Cory, CoryQuery};
use super::policy::OptionPolicy;
use super::ppo::{PpoSettings, Rollout, TokenPpo};
use super::task::AdviceJudge;
use crate::env::grid::Level;
use crate::env::text::Detail;
use crate::teacher::llm::{GgufTokenizer, LanguageModel, LoraAdapters, LoraConfig, ModelError};
use crate::teacher::prompt::{PromptTemplate, SlotValues};
use crate::teacher::situations::{Situation, teacher_state};

/// The tuning algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Algorithm {
    /// Single-adapter token-level PPO with a KL penalty (the baseline).
    Ppo,
    Cory,
    Archer,
}

impl Algorithm {
    /// The name `--algo` takes ("ppo", "cory", "archer").
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ppo => "ppo",
            Algorithm::Cory => "cory",
            Algorithm::Archer => "archer",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [Algorithm::Ppo, Algorithm::Cory, Algorithm::Archer]
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
            .ok_or_else(|| format!("unknown tuning algorithm {name:?} (ppo, cory or archer)"))
    }
}

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct TuneConfig {
    pub level: Level,
    pub detail: Detail,
    pub algorithm: Algorithm,
    pub iterations: usize,
    /// Advice utterances per iteration (ArCHer: episodes).
    pub batch: usize,
    /// Distinct situations sampled from the level.
    pub situations: usize,
    pub seed: u64,
    pub lora: LoraConfig,
    pub ppo: PpoSettings,
    pub archer: ArcherSettings,
    /// Most advice turns of an ArCHer episode before the student finishes it.
    pub archer_turns: usize,
    /// ArCHer: an episode still on after `archer_turns` earns 0 instead of being played out by
    /// the student, so the teacher is paid for finishing the task, not for handing over to a
    /// student that wins from anywhere. (A next state outside the sampled situations, which
    /// the teacher cannot be asked about here, is still handed to the student.)
    pub archer_teacher_finishes: bool,
    /// Evaluate agreement with the oracle every this many iterations (and after the last).
    pub evaluate_every: usize,
}

impl TuneConfig {
    pub fn new(level: Level, algorithm: Algorithm) -> Self {
        Self {
            level,
            detail: Detail::Coarse,
            algorithm,
            iterations: 10,
            batch: 8,
            situations: 16,
            seed: 1,
            lora: LoraConfig::default(),
            ppo: PpoSettings::default(),
            archer: ArcherSettings::default(),
            archer_turns: 3,
            archer_teacher_finishes: false,
            evaluate_every: 5,
        }
    }
}

/// One iteration's figures (a line of the run's metrics JSONL).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TuneRecord {
    pub iteration: usize,
    /// Mean return of the judged advice (CORY: both roles' advice; ArCHer: the episodes').
    pub task_reward: f32,
    pub success_rate: f32,
    /// Fraction of situations whose most likely option under the adapters is the oracle's,
    /// and the mean KL(tuned ‖ base) of the option distributions over the situations (None
    /// when not evaluated this iteration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl_to_base: Option<f32>,
    pub seconds: f64,
    /// CORY: which agent led, the two roles' own rewards, whether roles were exchanged after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pioneer_agent: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pioneer_reward: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observer_reward: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchanged: Option<bool>,
    /// ArCHer: critic losses, the actor's mean advantage, whether the actor was updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_loss: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v_loss: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advantage: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_updated: Option<bool>,
}

/// A situation as the teacher reads it: its prompt and legal option phrases, tokenized.
struct Query {
    situation: Situation,
    prompt: Vec<u32>,
    options: Vec<Vec<u32>>,
    /// The oracle's option among the legal ones (None when it is not one of them).
    oracle: Option<usize>,
}

/// What went wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Student(#[from] crate::student::StudentError),
    #[error("{0}")]
    Setup(String),
}

/// A run: the model, its tokenizer and prompt, the judge and the situations.
pub struct TuneRun<'m> {
    model: &'m LanguageModel,
    tokenizer: &'m GgufTokenizer,
    template: &'m PromptTemplate,
    config: TuneConfig,
    queries: Vec<Query>,
    /// The base model's option distribution per situation (computed on first use).
    base: std::sync::OnceLock<Vec<Vec<f32>>>,
}

impl<'m> TuneRun<'m> {
    /// Samples the situations and tokenizes their prompts and options.
    pub fn new(
        model: &'m LanguageModel,
        tokenizer: &'m GgufTokenizer,
        template: &'m PromptTemplate,
        config: TuneConfig,
    ) -> Result<Self, TuneError> {
        let situations =
            crate::teacher::situations::sample_situations(&config.level, config.seed, config.situations, config.detail);
        let mut queries = Vec::new();
        for situation in situations {
            // One legal option gives nothing to choose.
            if situation.state.request.options.len() < 2 {
                continue;
            }
            let query = Self::query(tokenizer, template, situation)?;
            queries.push(query);
        }
        if queries.is_empty() {
            return Err(TuneError::Setup(format!("no situation with a choice in {:?}", config.level)));
        }
        Ok(Self { model, tokenizer, template, config, queries, base: std::sync::OnceLock::new() })
    }

    fn query(tokenizer: &GgufTokenizer, template: &PromptTemplate, situation: Situation) -> Result<Query, TuneError> {
        let request = &situation.state.request;
        let text = template
            .render(&SlotValues {
                mission: &request.mission,
                observation: &request.description,
                options: "",
                feedback: "",
                examples: "",
            })
            .full();
        let encode_error = |error: crate::teacher::llm::TokenizerError| TuneError::Setup(error.to_string());
        let prompt = tokenizer.encode(&text, true).map_err(encode_error)?;
        let options = request
            .options
            .iter()
            .map(|option| tokenizer.encode_continuation(&format!(" {}\n", option.phrase())).map_err(encode_error))
            .collect::<Result<Vec<_>, _>>()?;
        let oracle = request.options.iter().position(|&option| option == situation.state.oracle_option);
        Ok(Query { situation, prompt, options, oracle })
    }

    /// Situations with a choice.
    pub fn situation_count(&self) -> usize {
        self.queries.len()
    }

    fn policy(&self, query: &Query) -> Result<OptionPolicy<'m>, ModelError> {
        OptionPolicy::new(self.model, query.prompt.clone(), query.options.clone())
    }

    /// Agreement with the oracle under `adapters` (None: the base), over the situations whose
    /// oracle option is legal, and the mean KL of the adapted option distributions to the base's.
    pub fn evaluate(&self, adapters: Option<&LoraAdapters>) -> Result<(f32, f32), ModelError> {
        let base = match self.base.get() {
            Some(base) => base,
            None => {
                let computed = self
                    .queries
                    .iter()
                    .map(|query| self.policy(query)?.probabilities(None))
                    .collect::<Result<Vec<_>, ModelError>>()?;
                self.base.get_or_init(|| computed)
            }
        };
        let (mut agreeing, mut counted, mut kl) = (0usize, 0usize, 0.0f64);
        for (query, base) in self.queries.iter().zip(base) {
            let probabilities = self.policy(query)?.probabilities(adapters)?;
            kl += probabilities
                .iter()
                .zip(base)
                .filter(|(p, _)| **p > 0.0)
                .map(|(&p, &q)| p as f64 * (p as f64 / (q as f64).max(1e-12)).ln())
                .sum::<f64>();
            let Some(oracle) = query.oracle else { continue };
            let best = probabilities.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(index, _)| index);
            agreeing += usize::from(best == oracle);
            counted += 1;
        }
        Ok((agreeing as f32 / counted.max(1) as f32, (kl / self.queries.len().max(1) as f64) as f32))
    }

    /// `evaluate` on the iterations that evaluate (every `evaluate_every`, and the last).
    fn evaluate_at(&self, iteration: usize, adapters: &LoraAdapters) -> Result<(Option<f32>, Option<f32>), ModelError> {
        let due = iteration == self.config.iterations || iteration.is_multiple_of(self.config.evaluate_every.max(1));
        if !due {
            return Ok((None, None));
        }
        let (agreement, kl) = self.evaluate(Some(adapters))?;
        Ok((Some(agreement), Some(kl)))
    }

    /// Runs the iterations, calling `on_record` after each with the record and the adapters
    /// as they are now (CORY: both agents'), so a caller can save them as it goes; it returns
    /// false to stop early, e.g. when the user stops tuning. Returns the records and the
    /// trained adapters (CORY: both agents').
    pub fn run(
        &self,
        judge: &mut AdviceJudge,
        mut on_record: impl FnMut(&TuneRecord, &[&LoraAdapters]) -> bool,
    ) -> Result<(Vec<TuneRecord>, Vec<LoraAdapters>), TuneError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ 0x7u64);
        let spec = self.model.config();
        let mut records = Vec::with_capacity(self.config.iterations);
        match self.config.algorithm {
            Algorithm::Ppo => {
                let mut ppo = TokenPpo::new(spec, self.config.lora.clone(), self.config.ppo.clone(), self.config.seed)?;
                for iteration in 1..=self.config.iterations {
                    let started = Instant::now();
                    let policies = self.sampled_policies(&mut rng)?;
                    let mut batch: Vec<(&OptionPolicy, Rollout)> = Vec::with_capacity(policies.len());
                    let mut successes = 0usize;
                    for (query, policy) in &policies {
                        let sampled = ppo.sample(policy, &mut rng)?;
                        let option = query.situation.state.request.options[sampled.option];
                        let judgement = judge.judge(&query.situation, option)?;
                        successes += usize::from(judgement.success);
                        batch.push((policy, ppo.rollout(policy, sampled, judgement.reward)?));
                    }
                    let stats = ppo.update(&batch)?;
                    let (agreement, kl_to_base) = self.evaluate_at(iteration, ppo.adapters())?;
                    let record = TuneRecord {
                        iteration,
                        task_reward: stats.task_reward,
                        success_rate: successes as f32 / batch.len().max(1) as f32,
                        agreement,
                        kl_to_base,
                        seconds: started.elapsed().as_secs_f64(),
                        ..TuneRecord::default()
                    };
                    let go_on = on_record(&record, &[ppo.adapters()]);
                    records.push(record);
                    if !go_on {
                        break;
                    }
                }
                Ok((records, vec![ppo.adapters().clone()]))
            }
            Algorithm::Cory => {
                let mut cory = Cory::new(spec, self.config.lora.clone(), self.config.ppo.clone(), self.config.seed)?;
                for iteration in 1..=self.config.iterations {
                    let started = Instant::now();
                    let chosen: Vec<&Query> = (0..self.config.batch)
                        .map(|_| &self.queries[rng.random_range(0..self.queries.len())])
                        .collect();
                    let cory_queries =
                        chosen.iter().map(|query| self.cory_query(query)).collect::<Result<Vec<_>, ModelError>>()?;
                    let mut judged = Vec::new();
                    let mut failure = None;
                    let stats = cory.iteration(&cory_queries, &mut rng, |index, option| {
                        let query = chosen[index];
                        match judge.judge(&query.situation, query.situation.state.request.options[option]) {
                            Ok(judgement) => {
                                judged.push(judgement.success);
                                judgement.reward
                            }
                            Err(error) => {
                                failure.get_or_insert(error);
                                0.0
                            }
                        }
                    })?;
                    if let Some(error) = failure {
                        return Err(error.into());
                    }
                    let leader = stats.pioneer_agent;
                    let (agreement, kl_to_base) = self.evaluate_at(iteration, cory.agent(leader).adapters())?;
                    let record = TuneRecord {
                        iteration,
                        task_reward: (stats.pioneer_reward + stats.observer_reward) / 2.0,
                        success_rate: judged.iter().filter(|&&success| success).count() as f32
                            / judged.len().max(1) as f32,
                        agreement,
                        kl_to_base,
                        seconds: started.elapsed().as_secs_f64(),
                        pioneer_agent: Some(leader),
                        pioneer_reward: Some(stats.pioneer_reward),
                        observer_reward: Some(stats.observer_reward),
                        exchanged: Some(stats.exchanged),
                        ..TuneRecord::default()
                    };
                    let go_on = on_record(&record, &[cory.agent(0).adapters(), cory.agent(1).adapters()]);
                    records.push(record);
                    if !go_on {
                        break;
                    }
                }
                Ok((records, vec![cory.agent(0).adapters().clone(), cory.agent(1).adapters().clone()]))
            }
            Algorithm::Archer => self.run_archer(judge, &mut rng, &mut on_record, records),
        }
    }

    /// `batch` situations drawn at random with their policies.
    fn sampled_policies(&self, rng: &mut impl Rng) -> Result<Vec<(&Query, OptionPolicy<'m>)>, ModelError> {
        (0..self.config.batch)
            .map(|_| {
                let query = &self.queries[rng.random_range(0..self.queries.len())];
                Ok((query, self.policy(query)?))
            })
            .collect()
    }

    /// The pioneer's policy and, per pioneer option, the observer's: the prompt, the
    /// pioneer's answer and a request for a second answer.
    fn cory_query(&self, query: &Query) -> Result<CoryQuery<'m>, ModelError> {
        let second = self
            .tokenizer
            .encode_continuation("A second teacher reads that answer and answers:")
            .map_err(|error| ModelError::Unsupported(error.to_string()))?;
        let observers = query
            .options
            .iter()
            .map(|pioneer| {
                let prompt: Vec<u32> = query.prompt.iter().chain(pioneer).chain(&second).copied().collect();
                OptionPolicy::new(self.model, prompt, query.options.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CoryQuery { pioneer: self.policy(query)?, observers })
    }

    /// ArCHer: episodes of up to `archer_turns` advice turns, each option followed from where
    /// the last one left the agent while that is one of the sampled situations; the student
    /// finishes the episode and its return comes at the end.
    fn run_archer(
        &self,
        judge: &mut AdviceJudge,
        rng: &mut ChaCha8Rng,
        on_record: &mut impl FnMut(&TuneRecord, &[&LoraAdapters]) -> bool,
        mut records: Vec<TuneRecord>,
    ) -> Result<(Vec<TuneRecord>, Vec<LoraAdapters>), TuneError> {
        let policies = self.queries.iter().map(|query| self.policy(query)).collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<(String, Vec<crate::skills::TeacherOption>)> = self
            .queries
            .iter()
            .map(|query| {
                (query.situation.state.request.description.clone(), query.situation.state.request.options.clone())
            })
            .collect();
        let mut archer =
            Archer::new(self.model, &policies, self.config.lora.clone(), self.config.archer.clone(), self.config.seed)?;
        for iteration in 1..=self.config.iterations {
            let started = Instant::now();
            let (mut rewards, mut successes) = (Vec::new(), 0usize);
            for _ in 0..self.config.batch {
                let mut state = rng.random_range(0..self.queries.len());
                let mut world = self.queries[state].situation.world.clone();
                let mut fog = self.queries[state].situation.fog.clone();
                let mut transitions = Vec::new();
                for turn in 0..self.config.archer_turns.max(1) {
                    let advice = archer.act(&policies, state, rng)?;
                    let option = self.queries[state].situation.state.request.options[advice];
                    let followed = judge.follow(&world, &fog, option);
                    if let Some((reward, success)) = followed.ended {
                        transitions.push(Transition { state, advice, reward, next_state: None });
                        rewards.push(reward);
                        successes += usize::from(success);
                        break;
                    }
                    let next = teacher_state(&self.config.level, &followed.world, &followed.fog, self.config.detail);
                    let next_state = keys.iter().position(|(description, options)| {
                        *description == next.request.description && *options == next.request.options
                    });
                    match next_state {
                        Some(next_state) if turn + 1 < self.config.archer_turns => {
                            transitions.push(Transition { state, advice, reward: 0.0, next_state: Some(next_state) });
                            (state, world, fog) = (next_state, followed.world, followed.fog);
                        }
                        Some(_) if self.config.archer_teacher_finishes => {
                            // Out of turns with the episode still on: the teacher did not finish it.
                            transitions.push(Transition { state, advice, reward: 0.0, next_state: None });
                            rewards.push(0.0);
                            break;
                        }
                        _ => {
                            let (reward, success) = judge.finish(followed.world)?;
                            transitions.push(Transition { state, advice, reward, next_state: None });
                            rewards.push(reward);
                            successes += usize::from(success);
                            break;
                        }
                    }
                }
                archer.remember(&transitions);
            }
            let stats = archer.train(&policies, rng)?;
            let (agreement, kl_to_base) = self.evaluate_at(iteration, archer.adapters())?;
            let record = TuneRecord {
                iteration,
                task_reward: rewards.iter().sum::<f32>() / rewards.len().max(1) as f32,
                success_rate: successes as f32 / rewards.len().max(1) as f32,
                agreement,
                kl_to_base,
                seconds: started.elapsed().as_secs_f64(),
                q_loss: Some(stats.q_loss),
                v_loss: Some(stats.v_loss),
                advantage: Some(stats.advantage),
                actor_updated: Some(stats.actor_updated),
                ..TuneRecord::default()
            };
            let go_on = on_record(&record, &[archer.adapters()]);
            records.push(record);
            if !go_on {
                break;
            }
        }
        Ok((records, vec![archer.adapters().clone()]))
    }

    pub fn template(&self) -> &PromptTemplate {
        self.template
    }
}
