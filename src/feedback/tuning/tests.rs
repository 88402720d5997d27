//! Tuning on a tiny model the test writes itself: a synthetic advice task whose reward is 1
//! for one fixed option phrase, and GAE on a hand-made utterance.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::teacher::llm::llama::tests::write_tiny_qwen2;
use crate::teacher::llm::{LanguageModel, LoraConfig, ModelOptions};

/// A tiny random qwen2 model written and loaded (the directory must outlive the model's use).
fn tiny_model(seed: u64) -> (tempfile::TempDir, LanguageModel) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("tiny-qwen2.gguf");
    write_tiny_qwen2(&path, seed);
    let model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("load");
    (directory, model)
}

/// The synthetic task's four option phrases (two share a prefix) and the rewarded one.
fn synthetic_options() -> Vec<Vec<u32>> {
    vec![vec![3, 9, 2], vec![3, 9, 4], vec![6, 2], vec![7, 11]]
}
const REWARDED: usize = 1;

#[test]
fn gae_with_gamma_one_sums_the_rewards_to_go_minus_the_value() {
    let (advantages, returns) = generalized_advantages(&[0.0, -0.1, 1.0], &[0.2, 0.4, 0.5], 1.0, 1.0);
    // λ = 1: A_t = Σ_{k≥t} r_k − V_t.
    let expected = [0.9 - 0.2, 0.9 - 0.4, 1.0 - 0.5];
    for (found, expected) in advantages.iter().zip(expected) {
        assert!((found - expected).abs() < 1e-6, "{advantages:?}");
    }
    for (found, expected) in returns.iter().zip([0.9, 0.9, 1.0]) {
        assert!((found - expected).abs() < 1e-6, "{returns:?}");
    }
    // λ = 0.95 weights later TD errors down: δ = (0 + 0.4 − 0.2, −0.1 + 0.5 − 0.4, 1 − 0.5)
    // = (0.2, 0, 0.5), so A_0 = 0.2 + 0.95·0 + 0.95²·0.5.
    let (advantages, _) = generalized_advantages(&[0.0, -0.1, 1.0], &[0.2, 0.4, 0.5], 1.0, 0.95);
    assert!((advantages[0] - (0.2 + 0.95 * 0.95 * 0.5)).abs() < 1e-6, "{advantages:?}");
}

#[test]
fn the_option_policy_is_a_distribution_over_the_options() {
    let (_directory, model) = tiny_model(21);
    let policy =
        OptionPolicy::new(&model, vec![1, 17, 5], vec![vec![3, 9, 2], vec![3, 9, 4], vec![6, 2]]).expect("policy");
    let probabilities = policy.probabilities(None).expect("probabilities");
    assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{probabilities:?}");
    // Token 3 has no alternative after [3]: its log-prob is 0 there; 9 and 2 are the choices.
    let scores: Vec<f32> = policy.score(0, None).expect("score").log_probs.to_vec1().expect("values");
    assert_eq!(scores[1], 0.0);
    assert!(OptionPolicy::new(&model, vec![1], vec![vec![3], vec![3, 4]]).is_err(), "a prefix option is refused");
}

#[test]
fn ppo_raises_the_rewarded_option_on_a_synthetic_advice_task() {
    let (_directory, model) = tiny_model(22);
    let (options, rewarded) = (synthetic_options(), REWARDED);
    let policy = OptionPolicy::new(&model, vec![1, 17, 5, 30], options).expect("policy");
    let settings = PpoSettings { learning_rate: 1e-2, ..PpoSettings::default() };
    let lora = LoraConfig { rank: 4, ..LoraConfig::default() };
    let mut ppo = TokenPpo::new(model.config(), lora, settings, 5).expect("ppo");
    let start = policy.probabilities(Some(ppo.adapters())).expect("probabilities")[rewarded];
    assert!(start < 0.5, "the task must start hard: P = {start}");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut reached = None;
    for iteration in 0..40 {
        let batch: Vec<(&OptionPolicy, Rollout)> = (0..8)
            .map(|_| {
                let rollout = ppo
                    .collect(&policy, &mut rng, |option| if option == rewarded { 1.0 } else { 0.0 })
                    .expect("rollout");
                (&policy, rollout)
            })
            .collect();
        let stats = ppo.update(&batch).expect("update");
        assert!(stats.policy_loss.is_finite() && stats.value_loss.is_finite() && stats.kl.is_finite(), "{stats:?}");
        let now = policy.probabilities(Some(ppo.adapters())).expect("probabilities")[rewarded];
        if now > 0.9 {
            reached = Some(iteration + 1);
            break;
        }
    }
    let end = policy.probabilities(Some(ppo.adapters())).expect("probabilities")[rewarded];
    assert!(reached.is_some(), "P(rewarded option) went from {start:.3} to {end:.3} in 40 iterations");
    eprintln!("PPO: P(rewarded option) {start:.3} -> {end:.3} in {reached:?} iterations of 8 utterances");
    // The frozen base did not move.
    let base = policy.probabilities(None).expect("base")[rewarded];
    assert!((base - start).abs() < 1e-5, "fresh adapters equal the base: {base} vs {start}");
}

/// The synthetic query: four options, the observer reading the query, a marker token (40)
/// and the pioneer's advice.
fn synthetic_cory_query(model: &LanguageModel) -> CoryQuery<'_> {
    let options = synthetic_options();
    let prompt = vec![1, 17, 5, 30];
    let observers = (0..options.len())
        .map(|pioneer| {
            let mut observer_prompt = prompt.clone();
            observer_prompt.push(40);
            observer_prompt.extend(&options[pioneer]);
            OptionPolicy::new(model, observer_prompt, options.clone()).expect("observer policy")
        })
        .collect();
    CoryQuery { pioneer: OptionPolicy::new(model, prompt, options).expect("policy"), observers }
}

#[test]
fn cory_shares_rewards_exchanges_roles_and_learns_the_synthetic_task() {
    let (_directory, model) = tiny_model(22);
    let rewarded = REWARDED;
    let settings = PpoSettings { learning_rate: 1e-2, ..PpoSettings::default() };
    let lora = LoraConfig { rank: 4, ..LoraConfig::default() };
    let mut cory = Cory::new(model.config(), lora, settings, 5).expect("cory");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let reward = |_query: usize, option: usize| if option == rewarded { 1.0 } else { 0.0 };
    // Four utterance pairs per iteration: the same query asked four times.
    let queries: Vec<CoryQuery> = (0..4).map(|_| synthetic_cory_query(&model)).collect();
    let probability = |cory: &Cory, agent: usize| {
        queries[0].pioneer.probabilities(Some(cory.agent(agent).adapters())).expect("probabilities")[rewarded]
    };
    let start = probability(&cory, 0);
    assert!(start < 0.5, "the task must start hard: P = {start}");
    let mut pioneers = Vec::new();
    let mut reached = None;
    for iteration in 1..=40 {
        let stats = cory.iteration(&queries, &mut rng, reward).expect("iteration");
        pioneers.push(stats.pioneer_agent);
        assert_eq!(stats.exchanged, iteration % ROLE_EXCHANGE_PERIOD == 0);
        for turn in &stats.turns {
            let own = (reward(0, turn.pioneer_option), reward(0, turn.observer_option));
            assert_eq!((turn.pioneer_reward, turn.observer_reward), own);
        }
        // Both roles' rollouts carried the shared reward, the sum of the two advices' rewards.
        let shared = stats.pioneer_reward + stats.observer_reward;
        assert!((stats.pioneer.task_reward - shared).abs() < 1e-6, "{stats:?}");
        assert!((stats.observer.task_reward - shared).abs() < 1e-6, "{stats:?}");
        assert!(stats.pioneer.kl.is_finite() && stats.observer.kl.is_finite());
        if iteration >= 11 && (0..2).all(|agent| probability(&cory, agent) > 0.7) {
            reached = Some(iteration);
            break;
        }
    }
    assert_eq!(&pioneers[..11], &[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0]);
    let end: Vec<f32> = (0..2).map(|agent| probability(&cory, agent)).collect();
    eprintln!(
        "CORY: P(rewarded option) as pioneer {start:.3} -> agent 0 {:.3}, agent 1 {:.3} after {reached:?} iterations",
        end[0], end[1]
    );
    assert!(reached.is_some(), "both agents learn to lead within 40 iterations: {start:.3} -> {end:?}");
}

#[test]
fn archer_critic_targets_and_advantage_follow_the_paper() {
    // Q_i → r + γ(1 − done)·V̄_i(s′) on a hand-made batch.
    let targets = q_targets(&[0.0, 1.0, 0.5], &[false, true, false], &[0.8, 9.0, -0.2], 0.9);
    let expected = [0.72, 1.0, 0.5 - 0.18];
    for (found, expected) in targets.iter().zip(expected) {
        assert!((found - expected).abs() < 1e-6, "{targets:?}");
    }
    // min(Q1, Q2) − min(V1, V2).
    assert!((advantage([0.7, 0.4], [0.1, 0.3]) - 0.3).abs() < 1e-6);
    assert!((advantage([-0.2, 0.5], [0.4, 0.0]) - -0.2).abs() < 1e-6);
}

#[test]
fn archer_learns_a_two_turn_task_with_a_delayed_reward() {
    let (_directory, model) = tiny_model(22);
    let (options, rewarded) = (synthetic_options(), REWARDED);
    // Two turns per episode; the second turn's state tells whether the first advice was the
    // rewarded one (2) or not (1); the reward comes only at the end: the share of the two
    // advices that were the rewarded one.
    let states = vec![
        OptionPolicy::new(&model, vec![1, 17, 5, 30], options.clone()).expect("turn 1"),
        OptionPolicy::new(&model, vec![1, 17, 5, 31], options.clone()).expect("turn 2 after other advice"),
        OptionPolicy::new(&model, vec![1, 17, 5, 32], options).expect("turn 2 after the rewarded advice"),
    ];
    let settings = ArcherSettings {
        actor_learning_rate: 1e-2,
        critic_learning_rate: 1e-2,
        critic_hidden: 32,
        ..ArcherSettings::default()
    };
    let lora = LoraConfig { rank: 4, ..LoraConfig::default() };
    let mut archer = Archer::new(&model, &states, lora, settings, 7).expect("archer");
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let probability = |archer: &Archer, state: usize| {
        states[state].probabilities(Some(archer.adapters())).expect("probabilities")[rewarded]
    };
    let all = |archer: &Archer| [probability(archer, 0), probability(archer, 1), probability(archer, 2)];
    let start = all(&archer);
    let mut warmup_seen = false;
    let mut reached = None;
    for iteration in 1..=40 {
        for _ in 0..8 {
            let first = archer.act(&states, 0, &mut rng).expect("turn 1");
            let second_state = if first == rewarded { 2 } else { 1 };
            let second = archer.act(&states, second_state, &mut rng).expect("turn 2");
            let reward = [first, second].iter().filter(|&&advice| advice == rewarded).count() as f32 / 2.0;
            archer.remember(&[
                Transition { state: 0, advice: first, reward: 0.0, next_state: Some(second_state) },
                Transition { state: second_state, advice: second, reward, next_state: None },
            ]);
        }
        let stats = archer.train(&states, &mut rng).expect("train");
        assert!(stats.q_loss.is_finite() && stats.v_loss.is_finite() && stats.actor_loss.is_finite(), "{stats:?}");
        if !stats.actor_updated {
            warmup_seen = true;
            assert_eq!(all(&archer), start, "the warm-up trains the critic only");
        }
        if all(&archer).iter().all(|&p| p > 0.8) {
            reached = Some(iteration);
            break;
        }
    }
    assert!(warmup_seen);
    let end = all(&archer);
    eprintln!("ArCHer: P(rewarded option) {start:?} -> {end:?} after {reached:?} iterations of 8 episodes");
    assert!(reached.is_some(), "P(rewarded option) went from {start:?} to {end:?} in 40 iterations");
    // The critic learned that the rewarded advice is worth more at the first turn (delayed).
    let (good, _) = archer.critic_values(0, rewarded).expect("values");
    let (bad, _) = archer.critic_values(0, 2).expect("values");
    assert!(good[0].min(good[1]) > bad[0].min(bad[1]), "Q(s0, rewarded) {good:?} vs Q(s0, other) {bad:?}");
}

/// A tiny model with a tokenizer, a prompt, DoorKey-5x5 and a fresh student to judge with.
struct TinyTuning {
    _directory: tempfile::TempDir,
    model: LanguageModel,
    tokenizer: crate::teacher::llm::GgufTokenizer,
    template: crate::teacher::prompt::PromptTemplate,
    level: crate::env::grid::Level,
    env_config: crate::env::vec_env::VecEnvConfig,
    student: crate::student::Student,
}

fn tiny_tuning() -> TinyTuning {
    use crate::env::grid::Level;
    use crate::env::scene::StudentSpec;
    use crate::env::vec_env::{ObservationKind, VecEnv, VecEnvConfig};
    use crate::student::{ObservationLayout, Student};
    use crate::teacher::llm::GgufTokenizer;
    use crate::teacher::llm::llama::tests::write_tiny_qwen2_with_tokenizer;
    use crate::teacher::prompt::PromptTemplate;

    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("tiny-qwen2-chat.gguf");
    write_tiny_qwen2_with_tokenizer(&path, 31);
    let model = LanguageModel::load_path(&path, &ModelOptions::default()).expect("load");
    let tokenizer = GgufTokenizer::from_gguf_path(&path).expect("tokenizer");
    let template = PromptTemplate::parse("{mission}\n{observation}\nAnswer:", "tune.txt").expect("template");
    let level = Level::DoorKey { size: 5 };
    let env_config = VecEnvConfig::new(level.clone(), 1, 3);
    let env = VecEnv::new(env_config.clone());
    let student =
        Student::new(ObservationLayout::for_env(ObservationKind::default(), env.world(0)), StudentSpec::default(), 3)
            .expect("student");
    TinyTuning { _directory: directory, model, tokenizer, template, level, env_config, student }
}

#[test]
fn a_tuning_run_judges_advice_with_a_frozen_student_for_each_algorithm() {
    let TinyTuning { model, tokenizer, template, level, env_config, student, .. } = tiny_tuning();
    for algorithm in [Algorithm::Ppo, Algorithm::Cory, Algorithm::Archer] {
        let mut judge = AdviceJudge::new(&student, env_config.clone(), 64, 5).expect("judge");
        let config = TuneConfig {
            iterations: 2,
            batch: 3,
            situations: 6,
            evaluate_every: 1,
            lora: LoraConfig { rank: 2, ..LoraConfig::default() },
            archer: ArcherSettings {
                warmup_iterations: 1,
                critic_steps: 2,
                batch_size: 4,
                ..ArcherSettings::default()
            },
            ..TuneConfig::new(level.clone(), algorithm)
        };
        let run = TuneRun::new(&model, &tokenizer, &template, config).expect("run");
        assert!(run.situation_count() >= 2);
        let mut seen = Vec::new();
        let (records, adapters) = run
            .run(&mut judge, |record, adapters| {
                seen.push((record.iteration, adapters.len()));
                true
            })
            .expect("tuning");
        let agents = if algorithm == Algorithm::Cory { 2 } else { 1 };
        assert_eq!(seen, [(1, agents), (2, agents)], "{algorithm:?}: each record comes with the adapters so far");
        assert_eq!(adapters.len(), agents);
        for record in &records {
            assert!(
                (0.0..=1.0).contains(&record.task_reward) && (0.0..=1.0).contains(&record.success_rate),
                "{record:?}"
            );
            let agreement = record.agreement.expect("evaluated every iteration");
            assert!((0.0..=1.0).contains(&agreement));
            assert!(record.kl_to_base.expect("evaluated") >= -1e-6, "{record:?}");
        }
        match algorithm {
            Algorithm::Cory => assert!(records.iter().all(|record| record.pioneer_agent.is_some())),
            Algorithm::Archer => {
                assert_eq!(
                    records.iter().map(|record| record.actor_updated).collect::<Vec<_>>(),
                    [Some(false), Some(true)]
                );
            }
            Algorithm::Ppo => assert!(records.iter().all(|record| record.q_loss.is_none())),
        }
        // Returning false from the callback stops the run after that iteration.
        let (stopped, _) = run.run(&mut judge, |_, _| false).expect("stopped run");
        assert_eq!(stopped.len(), 1, "{algorithm:?}");
    }
}

#[test]
fn archer_with_the_teacher_finishing_pays_nothing_for_an_episode_it_left_unfinished() {
    let TinyTuning { model, tokenizer, template, level, env_config, student, .. } = tiny_tuning();
    let mut played_out = Vec::new();
    for teacher_finishes in [false, true] {
        let mut judge = AdviceJudge::new(&student, env_config.clone(), 64, 5).expect("judge");
        let config = TuneConfig {
            iterations: 1,
            batch: 6,
            situations: 6,
            archer_turns: 1,
            archer_teacher_finishes: teacher_finishes,
            lora: LoraConfig { rank: 2, ..LoraConfig::default() },
            archer: ArcherSettings {
                warmup_iterations: 1,
                critic_steps: 1,
                batch_size: 4,
                ..ArcherSettings::default()
            },
            ..TuneConfig::new(level.clone(), Algorithm::Archer)
        };
        let run = TuneRun::new(&model, &tokenizer, &template, config).expect("run");
        let (records, _) = run.run(&mut judge, |_, _| true).expect("tuning");
        assert_eq!(records.len(), 1);
        played_out.push(judge.played_out());
    }
    // One turn each: handing over, every episode the advice did not end is played out by the
    // student; with the teacher finishing, only those whose next state the teacher cannot be
    // asked about are.
    assert!(played_out[0] > 0, "{played_out:?}");
    assert!(played_out[1] < played_out[0], "{played_out:?}");
}
