//! The app's schedule driven headlessly (MinimalPlugins + the simulation side, the PPO worker
//! on its thread): what the feedback tab, the followed-option overlay and the λ override read.

#![cfg(feature = "app")]

use std::time::{Duration, Instant};

use bevy::prelude::*;
use duet::app::headless::headless_app;
use duet::app::simulation::{FocusedEnv, LambdaOverride, Speed, TrainingSnapshot};
use duet::app::teacher_view::TeacherView;
use duet::app::update_history::UpdateHistory;
use duet::env::grid::Cell;
use duet::env::scene::Scene;
use duet::skills::TeacherOption;
use duet::training::TeacherKind;

/// However slow the machine, a test gives up after this long.
const WALL_LIMIT: Duration = Duration::from_secs(240);

/// A small DoorKey run whose rollouts fill quickly (4 envs x 32 frames).
fn small_scene() -> Scene {
    let text = "Scene(name: \"headless\", seed: 3, student: (encoder: Mlp, frames_per_env: 32, minibatch: 64), \
                env: Grid(level: \"DoorKey-5x5\", num_envs: 4, max_steps: 60))";
    Scene::parse(text, "headless.ron").expect("a valid scene")
}

/// At max speed one frame of 1/60 s is one fixed tick, which steps for up to 8 ms.
fn app(teacher: TeacherKind) -> App {
    headless_app(small_scene(), teacher, Speed::Max, Duration::from_secs_f64(1.0 / 60.0)).expect("headless app")
}

/// Runs frames until `done` holds; panics naming `what` after `WALL_LIMIT`.
fn run_until(app: &mut App, what: &str, done: impl Fn(&World) -> bool) {
    let started = Instant::now();
    while !done(app.world()) {
        assert!(started.elapsed() < WALL_LIMIT, "{what}: not reached within {WALL_LIMIT:?}");
        app.update();
    }
}

#[test]
fn feedback_rows_appear_with_the_oracle_teacher() {
    let mut app = app(TeacherKind::Oracle);
    run_until(&mut app, "settled feedback and two updates", |world| {
        let snapshot = world.resource::<TrainingSnapshot>();
        snapshot.feedback.segments >= 5 && snapshot.updates >= 2
    });
    let snapshot = app.world().resource::<TrainingSnapshot>();
    let feedback = &snapshot.feedback;
    assert!(feedback.recording);
    assert!(!feedback.situations.is_empty());
    // The rows count every settled segment once, and are ordered most followed first.
    let followed: u32 = feedback.situations.iter().map(|situation| situation.followed).sum();
    assert_eq!(u64::from(followed), feedback.segments, "{feedback:?}");
    assert!(feedback.situations.windows(2).all(|pair| pair[0].followed >= pair[1].followed));
    for situation in &feedback.situations {
        assert_eq!(situation.followed, situation.rows.iter().map(|row| row.counts.followed).sum::<u32>());
        assert!(situation.rows.iter().all(|row| row.state == situation.state && row.counts.won <= row.counts.followed));
        assert!(!situation.label.is_empty());
    }
    // DoorKey's oracle advises these options; the rows name only such.
    let doorkey = |option: &TeacherOption| {
        matches!(
            option,
            TeacherOption::PickUp(_) | TeacherOption::OpenDoor(_) | TeacherOption::GoTo(_) | TeacherOption::Explore
        )
    };
    assert!(feedback.situations.iter().flat_map(|s| &s.rows).all(|row| doorkey(&row.option)), "{feedback:?}");
    // Updates attach the student's advantage to the segments their rollouts began.
    let rows = || feedback.situations.iter().flat_map(|situation| &situation.rows);
    assert!(rows().any(|row| row.counts.mean_advantage().is_some()), "no advantage after two updates: {feedback:?}");
    // The oracle takes no feedback: nothing was sent, and the text it would get is shown.
    assert!(!feedback.teacher_takes_feedback);
    assert!(feedback.sent.is_none());
    assert!(feedback.current_text.starts_with(duet::feedback::recorder::FEEDBACK_HEADING), "{feedback:?}");
    // Agreement per update reaches the history the tab plots.
    let history = app.world().resource::<UpdateHistory>();
    assert!(history.records.iter().all(|record| record.teacher_agreement.is_some()), "the oracle always advises");
}

#[test]
fn no_teacher_reports_no_feedback() {
    let mut app = app(TeacherKind::None);
    run_until(&mut app, "one update", |world| world.resource::<TrainingSnapshot>().updates >= 1);
    let snapshot = app.world().resource::<TrainingSnapshot>();
    assert!(snapshot.feedback.situations.is_empty() && snapshot.feedback.segments == 0);
    assert!(app.world().resource::<TeacherView>().followed.is_none(), "no teacher, no option to draw");
}

#[test]
fn the_followed_option_is_a_walk_from_the_agent_to_its_target() {
    // One trainer step every other frame: at max speed a whole rollout fills within a frame
    // and the trainer is nearly always updating when the test looks.
    let mut app = headless_app(small_scene(), TeacherKind::Oracle, Speed::Fast, Duration::from_secs_f64(1.0 / 60.0))
        .expect("headless app");
    let mut checked = 0;
    let mut targets = 0;
    let started = Instant::now();
    // Several different states of the focused env, one per frame.
    while checked < 40 {
        assert!(started.elapsed() < WALL_LIMIT, "only {checked} states checked");
        app.update();
        let view = app.world().resource::<TeacherView>();
        let focus = app.world().resource::<FocusedEnv>().0;
        let snapshot = app.world().resource::<TrainingSnapshot>();
        if snapshot.updating {
            continue;
        }
        assert_eq!(view.env, focus);
        let followed = view.followed.as_ref().expect("the oracle always advises an option");
        let world = snapshot.world(focus);
        // Each planned cell is a step from the one before, starting beside the agent.
        let mut at = world.agent_pos;
        for cell in &followed.path {
            assert_eq!((cell.x - at.x).abs() + (cell.y - at.y).abs(), 1, "{followed:?} from {:?}", world.agent_pos);
            assert!(world.in_bounds(*cell));
            at = *cell;
        }
        if let Some(target) = followed.target {
            targets += 1;
            let cell = world.get(target);
            match followed.option {
                TeacherOption::PickUp(_) => assert!(matches!(cell, Cell::Key(_)), "{followed:?}: {cell:?}"),
                TeacherOption::OpenDoor(_) => assert!(matches!(cell, Cell::Door { .. }), "{followed:?}: {cell:?}"),
                TeacherOption::GoTo(duet::skills::Target::Goal) => assert_eq!(cell, Cell::Goal, "{followed:?}"),
                _ => {}
            }
        }
        assert_eq!(followed.probability, 1.0, "the oracle is sure");
        checked += 1;
    }
    assert!(targets > 0, "no state had a target within reach");
}

#[test]
fn lambda_override_sets_the_weight_of_the_next_updates_and_goes_back_to_the_schedule() {
    let mut app = app(TeacherKind::Oracle);
    app.world_mut().resource_mut::<LambdaOverride>().0 = Some(0.25);
    run_until(&mut app, "one update", |world| world.resource::<TrainingSnapshot>().updates >= 1);
    {
        let snapshot = app.world().resource::<TrainingSnapshot>();
        assert_eq!(snapshot.lambda, 0.25);
        assert!(snapshot.lambda_overridden);
        let record = app.world().resource::<UpdateHistory>().records[0].clone();
        assert_eq!(record.lambda, 0.25, "{record:?}");
    }
    app.world_mut().resource_mut::<LambdaOverride>().0 = None;
    run_until(&mut app, "two more updates", |world| world.resource::<TrainingSnapshot>().updates >= 3);
    let scene = small_scene();
    let records = &app.world().resource::<UpdateHistory>().records;
    let last = records.last().expect("records");
    // The schedule's weight at that update (computed before the update counted itself).
    let scheduled = duet::student::distill_lambda(&scene.student.distill, last.frames, last.update - 1);
    assert_eq!(last.lambda, scheduled, "{last:?}");
    assert_ne!(last.lambda, 0.25);
    assert!(!app.world().resource::<TrainingSnapshot>().lambda_overridden);
}

#[test]
fn loading_a_checkpoint_puts_its_hand_set_lambda_back_in_force() {
    use duet::app::control::{Control, Controls};
    use duet::training::{Trainer, TrainerConfig};
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TrainerConfig::from_scene(&small_scene(), TeacherKind::Oracle).expect("config");
    let mut trainer = Trainer::new(config).expect("trainer");
    trainer.set_lambda_override(Some(0.7));
    trainer.train_one_update().expect("update");
    trainer.save_checkpoint(dir.path()).expect("save");
    let mut app = app(TeacherKind::Oracle);
    app.update();
    assert_eq!(app.world().resource::<LambdaOverride>().0, None);
    app.world_mut().resource_mut::<Controls>().request(Control::LoadCheckpoint(dir.path().to_owned()));
    run_until(&mut app, "the checkpoint loaded", |world| world.resource::<LambdaOverride>().0.is_some());
    assert_eq!(app.world().resource::<LambdaOverride>().0, Some(0.7));
    let snapshot = app.world().resource::<TrainingSnapshot>();
    assert!(
        snapshot.lambda_overridden && snapshot.lambda == 0.7,
        "{:?}",
        (snapshot.lambda, snapshot.lambda_overridden)
    );
    run_until(&mut app, "an update after loading", |world| !world.resource::<UpdateHistory>().records.is_empty());
    assert_eq!(app.world().resource::<UpdateHistory>().records.last().map(|record| record.lambda), Some(0.7));
}

#[test]
fn the_race_trains_the_scene_a_second_time_without_a_teacher() {
    use duet::app::race::{RaceMode, Rival};
    let mut app = app(TeacherKind::Oracle);
    app.update();
    assert!(app.world().get_resource::<Rival>().is_none(), "no race until asked");
    app.world_mut().resource_mut::<RaceMode>().0 = true;
    run_until(&mut app, "two updates of each run", |world| {
        world.resource::<TrainingSnapshot>().updates >= 2
            && world.get_resource::<Rival>().is_some_and(|rival| rival.records.len() >= 2)
    });
    let rival = app.world().resource::<Rival>();
    assert!(rival.fault.is_none(), "{:?}", rival.fault);
    // Same scene: as many envs and frames per update; no teacher: no advice at all.
    let first = &rival.records[0];
    assert_eq!(first.frames, 4 * 32, "{first:?}");
    assert!(rival.records.iter().all(|record| record.teacher_coverage == 0.0 && record.teacher_agreement.is_none()));
    assert_eq!(rival.snapshot.num_envs(), 4);
    assert_eq!(rival.snapshot.teacher, TeacherKind::None);
    let history = app.world().resource::<UpdateHistory>();
    assert!(history.records.iter().all(|record| record.teacher_coverage == 1.0), "the first run keeps the oracle");
    // Off again: the second run is dropped.
    app.world_mut().resource_mut::<RaceMode>().0 = false;
    app.update();
    app.update();
    assert!(app.world().get_resource::<Rival>().is_none());
}

#[test]
fn manual_control_drives_the_real_env_while_the_others_train() {
    use duet::app::simulation::{ManualControl, TrainingFault};
    use duet::env::grid::Action;
    let mut app = app(TeacherKind::None);
    app.world_mut().resource_mut::<ManualControl>().env = Some(1);
    run_until(&mut app, "the trainer to take the key", |world| {
        world.resource::<TrainingSnapshot>().manual_env() == Some(1)
    });
    let (frames, world) = {
        let snapshot = app.world().resource::<TrainingSnapshot>();
        (snapshot.frames, snapshot.world(1).clone())
    };
    // No key: env 1 waits while training goes on, through an update.
    run_until(&mut app, "an update with env 1 waiting", |world| {
        let snapshot = world.resource::<TrainingSnapshot>();
        snapshot.updates >= 1 && snapshot.frames > frames + 4 * 32 && !snapshot.updating
    });
    assert_eq!(app.world().resource::<TrainingSnapshot>().world(1), &world, "env 1 moved without a key");
    let record = app.world().resource::<UpdateHistory>().records[0].clone();
    assert!(record.policy_loss.is_finite() && record.value_loss.is_finite(), "{record:?}");
    // Keys: each one step of the real env, as the world would take it.
    let mut expected = world.clone();
    for action in [Action::Left, Action::Left, Action::Forward] {
        expected.step(action);
        app.world_mut().resource_mut::<ManualControl>().keys.push(action);
    }
    let steps_before = world.step_count;
    run_until(&mut app, "the keys taken", |world| {
        world.resource::<TrainingSnapshot>().world(1).step_count >= steps_before + 3
            || world.resource::<TrainingSnapshot>().world(1).step_count == 0
    });
    let now = app.world().resource::<TrainingSnapshot>().world(1).clone();
    if now.step_count != 0 {
        assert_eq!(now, expected, "the user's three actions, nothing else");
    }
    assert!(app.world().resource::<TrainingFault>().message.is_none());
    // Handing back: the student drives env 1 again.
    app.world_mut().resource_mut::<ManualControl>().env = None;
    let frames = app.world().resource::<TrainingSnapshot>().frames;
    run_until(&mut app, "the student moving env 1 again", |world| {
        let snapshot = world.resource::<TrainingSnapshot>();
        snapshot.manual_env().is_none() && snapshot.frames > frames + 40 && snapshot.world(1) != &now
    });
}

/// Whether the race's two runs stand at the same frame with the same worlds.
fn runs_side_by_side(world: &World) -> Option<(u64, u64)> {
    let rival = &world.get_resource::<duet::app::race::Rival>()?.snapshot;
    let first = world.resource::<TrainingSnapshot>();
    let same_worlds = (0..first.num_envs()).all(|env| first.world(env) == rival.world(env));
    same_worlds.then_some((first.frames, rival.frames))
}

#[test]
fn reset_and_load_restart_both_runs_of_the_race_from_one_start() {
    use duet::app::control::{Control, Controls};
    use duet::app::race::{RaceMode, Rival};
    use duet::training::{Trainer, TrainerConfig};
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TrainerConfig::from_scene(&small_scene(), TeacherKind::Oracle).expect("config");
    let mut checkpointed = Trainer::new(config).expect("trainer");
    checkpointed.train_one_update().expect("update");
    checkpointed.train_one_update().expect("update");
    checkpointed.save_checkpoint(dir.path()).expect("save");
    let saved_frames = checkpointed.frames();

    let mut app = app(TeacherKind::Oracle);
    app.world_mut().resource_mut::<RaceMode>().0 = true;
    run_until(&mut app, "an update of each run", |world| {
        world.get_resource::<Rival>().is_some_and(|rival| !rival.records.is_empty())
    });
    // Paused, nothing steps: what a restart leaves is what the test sees.
    app.world_mut().resource_mut::<Time<Virtual>>().pause();
    let request = |app: &mut App, control: Control| app.world_mut().resource_mut::<Controls>().request(control);

    request(&mut app, Control::Reset);
    run_until(&mut app, "both runs reset", |world| {
        world.resource::<TrainingSnapshot>().frames == 0
            && world.get_resource::<Rival>().is_some_and(|rival| rival.records.is_empty())
    });
    app.update();
    assert_eq!(runs_side_by_side(app.world()), Some((0, 0)), "both runs fresh, on the same envs");

    request(&mut app, Control::LoadCheckpoint(dir.path().to_owned()));
    run_until(&mut app, "both runs loaded", |world| {
        world.resource::<TrainingSnapshot>().frames == saved_frames
            && world.get_resource::<Rival>().is_some_and(|rival| rival.snapshot.frames == saved_frames)
    });
    assert_eq!(runs_side_by_side(app.world()), Some((saved_frames, saved_frames)), "both from the checkpoint");
    let rival = app.world().resource::<Rival>();
    assert_eq!((rival.snapshot.teacher, rival.snapshot.updates), (TeacherKind::None, 2));
    assert!(rival.records.is_empty() && rival.fault.is_none(), "{:?}", rival.fault);
    assert_eq!(app.world().resource::<TrainingSnapshot>().teacher, TeacherKind::Oracle);
    // Resumed, they go on at one pace from there.
    app.world_mut().resource_mut::<Time<Virtual>>().unpause();
    run_until(&mut app, "an update of each run after the load", |world| {
        !world.resource::<UpdateHistory>().records.is_empty()
            && world.get_resource::<Rival>().is_some_and(|rival| !rival.records.is_empty())
    });
    let first = app.world().resource::<UpdateHistory>().records[0].clone();
    let second = app.world().resource::<Rival>().records[0].clone();
    assert_eq!((first.update, first.frames), (3, saved_frames + 4 * 32));
    assert_eq!((second.update, second.frames), (3, saved_frames + 4 * 32));
    assert_eq!(second.teacher_coverage, 0.0);
}

/// The followed option is planned once per step of the focused env: it must stay cheap on
/// the default grid and the largest presets (DoorKey-16x16, KeyCorridorS3R3), for every option the
/// oracle advises along its own episodes and for exploring from the start.
#[test]
fn planning_the_followed_option_stays_cheap_on_large_grids() {
    use duet::app::teacher_view::plan_walk;
    use duet::env::grid::{Action, FogOfWar};
    use duet::env::vec_env::{VecEnv, VecEnvConfig};
    use duet::student::{OracleTeacher, TeacherPolicy};
    for level in ["DoorKey-8x8", "DoorKey-16x16", "KeyCorridorS3R3"] {
        let level = duet::env::grid::Level::from_name(level).expect("a level name");
        let mut env = VecEnv::new(VecEnvConfig::new(level.clone(), 1, 5));
        let mut oracle = OracleTeacher::new(&duet::env::vec_env::EnvKind::Grid(level.clone()));
        let mut advice = vec![None];
        let mut fog = FogOfWar::for_world(env.world(0));
        let (mut plans, mut longest, mut total) = (0u32, Duration::ZERO, Duration::ZERO);
        for _ in 0..300 {
            oracle.advise(&env, &mut advice);
            let world = env.world(0);
            fog.reveal(world);
            let option = oracle.option_advice(0).and_then(|advice| advice.top_option()).expect("an option");
            for (option, seen) in [(option, Some(&fog)), (TeacherOption::Explore, Some(&fog)), (option, None)] {
                let started = Instant::now();
                let (path, _) = plan_walk(option, world, seen);
                let took = started.elapsed();
                assert!(path.len() <= 64);
                longest = longest.max(took);
                total += took;
                plans += 1;
            }
            let probs = advice[0].expect("the oracle advises");
            let best = (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap_or(0);
            env.step(&[Action::from_index(best).expect("an action")]);
            if env.world(0).step_count == 0 {
                fog = FogOfWar::for_world(env.world(0));
            }
        }
        let mean = total / plans;
        println!("{level:?}: {plans} plans, mean {mean:?}, longest {longest:?}");
        // Well under a frame (60-100 ms here), with room for a loaded machine running tests in parallel.
        assert!(mean < Duration::from_millis(5), "{level:?}: mean {mean:?} per plan");
    }
}

/// The tuning tab's run with a model file that is not there: Start copies the student, the
/// thread fails naming the file, the tab shows it, and a second Start tries again.
#[test]
fn tuning_with_a_missing_model_fails_with_the_file_named_and_can_start_again() {
    use duet::app::tuning::{Tuning, TuningStatus};
    let directory = tempfile::tempdir().expect("temp dir");
    let missing = directory.path().join("absent-model.gguf");
    let text = format!(
        "Scene(name: \"headless\", seed: 3, student: (encoder: Mlp, frames_per_env: 32, minibatch: 64), \
         teacher: (model: \"{}\"), env: Grid(level: \"DoorKey-5x5\", num_envs: 4, max_steps: 60))",
        missing.display()
    );
    let scene = Scene::parse(&text, "headless.ron").expect("a valid scene");
    let mut app = headless_app(scene, TeacherKind::Oracle, Speed::Max, Duration::from_secs_f64(1.0 / 60.0))
        .expect("headless app");
    app.update();
    assert_eq!(app.world().resource::<Tuning>().status, TuningStatus::Idle);
    for attempt in 0..2 {
        app.world_mut().resource_mut::<Tuning>().start();
        assert!(app.world().resource::<Tuning>().status.is_busy());
        run_until(&mut app, "the tuning run's end", |world| !world.resource::<Tuning>().status.is_busy());
        let tuning = app.world().resource::<Tuning>();
        match &tuning.status {
            TuningStatus::Failed(message) => {
                assert!(message.contains("absent-model.gguf"), "attempt {attempt}: {message}")
            }
            other => panic!("attempt {attempt}: expected a failure, got {other:?}"),
        }
        assert!(tuning.records.is_empty());
    }
    // Training went on meanwhile.
    run_until(&mut app, "an update after the failures", |world| world.resource::<TrainingSnapshot>().updates >= 1);
}

/// Stop before the trainer is home calls the start off; Stop with nothing running changes nothing.
#[test]
fn tuning_stop_calls_off_a_start_still_waiting() {
    use duet::app::tuning::{Tuning, TuningStatus};
    let mut tuning = Tuning::default();
    tuning.stop();
    assert_eq!(tuning.status, TuningStatus::Idle);
    tuning.start();
    assert_eq!(tuning.status, TuningStatus::WaitingForStudent);
    tuning.stop();
    assert_eq!(tuning.status, TuningStatus::Idle);
    // The app's systems then start nothing.
    let mut app = app(TeacherKind::None);
    *app.world_mut().resource_mut::<Tuning>() = tuning;
    for _ in 0..5 {
        app.update();
    }
    assert_eq!(app.world().resource::<Tuning>().status, TuningStatus::Idle);
}

/// The tuning tab on the real default model (skipped, saying so, when `make model` has not
/// run): PPO from the live student, Stop after the first iteration, the adapters saved to the
/// run's folder. Minutes of CPU: iteration 0 evaluates the base teacher on 16 situations.
#[test]
fn tuning_on_the_real_model_stops_when_asked_and_saves_the_adapters() {
    use duet::app::control::RunFiles;
    use duet::app::tuning::{Tuning, TuningStatus};
    if let Err(error) = duet::teacher::model_path::existing_default_model_path() {
        eprintln!("skipped: {error}");
        return;
    }
    let directory = tempfile::tempdir().expect("temp dir");
    // Watch speed: the student trains alongside without taking the cores from the tuning.
    let mut app = headless_app(small_scene(), TeacherKind::Oracle, Speed::Watch, Duration::from_secs_f64(1.0 / 60.0))
        .expect("headless app");
    app.world_mut().resource_mut::<RunFiles>().out_dir = directory.path().join("run");
    {
        let mut tuning = app.world_mut().resource_mut::<Tuning>();
        tuning.iterations = 3;
        tuning.batch = 1;
        tuning.start();
    }
    let limit = Duration::from_secs(900);
    let started = Instant::now();
    let wait = |app: &mut App, what: &str, done: &dyn Fn(&Tuning) -> bool| {
        while !done(app.world().resource::<Tuning>()) {
            assert!(started.elapsed() < limit, "{what}: not reached within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
            app.update();
        }
    };
    wait(&mut app, "the first iteration", &|tuning| {
        tuning.records.len() >= 2 || matches!(tuning.status, TuningStatus::Failed(_))
    });
    app.world_mut().resource_mut::<Tuning>().stop();
    wait(&mut app, "the run's end", &|tuning| !tuning.status.is_busy());
    let tuning = app.world().resource::<Tuning>();
    eprintln!("{:?} after {:?}; records {:?}", tuning.status, started.elapsed(), tuning.records);
    let TuningStatus::Finished { iterations, stopped, adapters } = &tuning.status else {
        panic!("expected a stopped run, got {:?}", tuning.status);
    };
    assert!(*stopped && *iterations < 3, "{:?}", tuning.status);
    let base = &tuning.records[0];
    assert_eq!((base.iteration, base.kl_to_base), (0, Some(0.0)));
    assert!(base.agreement.is_some_and(|agreement| (0.0..=1.0).contains(&agreement)));
    assert_eq!(adapters, &vec![directory.path().join("run").join("tuned-ppo.safetensors")]);
    assert!(adapters[0].is_file());
}

/// "Use" on tuned adapters rebuilds the LLM teacher with them (a Reset), and the teacher tab
/// names them; "Use the base teacher" takes them off. The adapters file is not there (the
/// teacher's worker reports that), so only the settings in force are checked, not advice.
#[test]
fn using_tuned_adapters_rebuilds_the_teacher_and_the_teacher_tab_names_them() {
    use duet::app::control::{Controls, RunFiles};
    use duet::app::simulation::{TeacherWhenOn, WantedTeacher};
    use duet::app::tuning::use_adapters;
    let mut app = app(TeacherKind::Oracle);
    app.update();
    assert_eq!(app.world().resource::<TeacherView>().adapters, None, "the oracle has no weights");
    let choose = |app: &mut App, adapters: Option<&str>| {
        let world = app.world_mut();
        let mut files = world.remove_resource::<RunFiles>().expect("run files");
        let mut controls = world.remove_resource::<Controls>().expect("controls");
        let mut wanted = world.remove_resource::<WantedTeacher>().expect("wanted teacher");
        let mut when_on = world.remove_resource::<TeacherWhenOn>().expect("teacher when on");
        use_adapters(adapters.map(Into::into), &mut files, &mut controls, &mut wanted, &mut when_on);
        world.insert_resource(files);
        world.insert_resource(controls);
        world.insert_resource(wanted);
        world.insert_resource(when_on);
    };
    choose(&mut app, Some("runs/app/tuned-ppo.safetensors"));
    run_until(&mut app, "the tuned teacher", |world| {
        world.resource::<TeacherView>().adapters.as_deref() == Some("tuned-ppo.safetensors")
    });
    assert_eq!(app.world().resource::<TrainingSnapshot>().teacher, TeacherKind::Llm);
    choose(&mut app, None);
    run_until(&mut app, "the base teacher", |world| {
        world.resource::<TeacherView>().adapters.as_deref() == Some("base")
    });
}

#[test]
fn an_embodied_scene_trains_headlessly_and_the_teacher_view_reads_the_apartment() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenes/pickplace-apartment-1.ron");
    let mut scene = Scene::load(path).expect("the shipped scene loads");
    scene.student.frames_per_env = 32;
    scene.student.minibatch = 64;
    let mut app = headless_app(scene, TeacherKind::Oracle, Speed::Max, Duration::from_secs_f64(1.0 / 60.0))
        .expect("headless app");
    run_until(&mut app, "two PPO updates", |world| world.resource::<TrainingSnapshot>().updates >= 2);
    let snapshot = app.world().resource::<TrainingSnapshot>();
    assert!(snapshot.is_embodied() && snapshot.num_envs() == 16);
    assert!(snapshot.embodied(0).is_some_and(|env| env.steps > 0 || env.world.held.is_some() || snapshot.frames > 0));
    let teacher = app.world().resource::<TeacherView>();
    assert!(teacher.description.starts_with("Mission: put the apple on the kitchen table."), "{}", teacher.description);
    let followed = teacher.followed.as_ref().expect("the oracle always advises");
    assert!(
        matches!(
            followed.option,
            TeacherOption::PickUpObject(_) | TeacherOption::GoToPlace(_) | TeacherOption::PlaceObject(_)
        ),
        "{:?}",
        followed.option
    );
}
