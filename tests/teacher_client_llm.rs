//! The trainer with the LLM teacher (`TeacherKind::Llm`): a missing or corrupt model stops
//! `Trainer::new` with one clear error and leaves a toggled-on teacher silent with the reason
//! in its statistics; on the real default model, advice reaches the trainer and a toggle keeps
//! the loaded model.
//!
//! The real-model test is skipped, with the reason printed, only when the model file is
//! absent (`make model`).

use std::path::Path;
use std::time::{Duration, Instant};

use duet::env::grid::Level;
use duet::env::scene::{EncoderKind, StudentSpec, TeacherSpec};
use duet::env::vec_env::{EnvKind, ObservationKind};
use duet::teacher::model_path::existing_default_model_path;
use duet::training::{TeacherKind, TeacherLoading, Trainer, TrainerConfig};

fn config(teacher: TeacherKind, model: Option<&Path>) -> TrainerConfig {
    TrainerConfig {
        env: EnvKind::Grid(Level::DoorKey { size: 5 }),
        num_envs: 4,
        max_steps: None,
        observation: ObservationKind::Egocentric,
        seed: 5,
        student: StudentSpec { encoder: EncoderKind::Mlp, frames_per_env: 16, minibatch: 32, ..StudentSpec::default() },
        teacher,
        teacher_settings: TeacherSpec { model: model.map(Path::to_path_buf), ..TeacherSpec::default() },
    }
}

fn error_of(config: TrainerConfig) -> String {
    match Trainer::new(config) {
        Ok(_) => panic!("the trainer started without its model"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_missing_or_corrupt_model_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let absent = dir.path().join("absent.gguf");
    let message = error_of(config(TeacherKind::Llm, Some(&absent)));
    assert!(message.contains(&absent.display().to_string()) && message.contains("make model"), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");

    let corrupt = dir.path().join("corrupt.gguf");
    std::fs::write(&corrupt, b"GGUF but not really a model").expect("write");
    let message = error_of(config(TeacherKind::Llm, Some(&corrupt)));
    // (candle appends a backtrace to its errors when RUST_BACKTRACE is set: only the first
    // line is checked for the file.)
    let first_line = message.lines().next().unwrap_or_default();
    assert!(first_line.contains(&corrupt.display().to_string()), "{message}");
    assert!(message.contains("make model"), "{message}");
}

#[test]
fn toggling_on_a_teacher_whose_model_is_missing_leaves_it_silent_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let absent = dir.path().join("absent.gguf");
    let mut trainer = Trainer::new(config(TeacherKind::None, Some(&absent))).expect("no teacher needs no model");
    trainer.set_teacher(TeacherKind::Llm);
    assert_eq!(trainer.config().teacher, TeacherKind::Llm);
    let deadline = Instant::now() + Duration::from_secs(30);
    let error = loop {
        trainer.step().expect("the student goes on");
        assert!(trainer.advice().iter().all(Option::is_none));
        if let Some(error) = trainer.teacher().client_stats().and_then(|stats| stats.last_error) {
            break error;
        }
        assert!(Instant::now() < deadline, "no load error reported");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(error.contains("make model") && error.contains("absent.gguf"), "{error}");
    trainer.set_teacher(TeacherKind::None);
    trainer.step().expect("step");
}

#[test]
fn a_trainer_loading_its_teacher_in_the_background_starts_without_the_model() {
    // What the app builds (start-up, Reset, a scene switch): it must not wait for the model,
    // nor fail when it is missing; the reason shows in the teacher's statistics.
    let dir = tempfile::tempdir().expect("temp dir");
    let absent = dir.path().join("absent.gguf");
    let mut trainer =
        Trainer::with_teacher_loading(config(TeacherKind::Llm, Some(&absent)), TeacherLoading::Background)
            .expect("a background teacher never stops the trainer from starting");
    assert_eq!(trainer.config().teacher, TeacherKind::Llm);
    let deadline = Instant::now() + Duration::from_secs(30);
    let error = loop {
        trainer.step().expect("the student goes on");
        if let Some(error) = trainer.teacher().client_stats().and_then(|stats| stats.last_error) {
            break error;
        }
        assert!(Instant::now() < deadline, "no load error reported");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(error.contains("make model") && error.contains("absent.gguf"), "{error}");
}

#[test]
fn real_model_advice_reaches_the_trainer_and_a_toggle_keeps_the_model() {
    let model = match existing_default_model_path() {
        Ok(path) => path,
        Err(error) => {
            eprintln!("SKIPPED: {error}");
            return;
        }
    };
    let started = Instant::now();
    let mut trainer = Trainer::new(config(TeacherKind::Llm, Some(&model))).expect("the model loads");
    eprintln!("trainer with the LLM teacher ready in {:.1} s", started.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(300);
    while trainer.advice().iter().all(Option::is_none) {
        assert!(Instant::now() < deadline, "no advice: {:?}", trainer.teacher().client_stats());
        // Train slowly: the worker answers meanwhile, and abstract states come back.
        std::thread::sleep(Duration::from_millis(20));
        if trainer.step().expect("step") {
            trainer.update().expect("update");
        }
    }
    let stats = trainer.teacher().client_stats().expect("stats");
    assert!(stats.computed >= 1 && stats.failures == 0, "{stats:?}");
    let index = trainer.advice().iter().position(Option::is_some).expect("advised");
    let option_advice = trainer.teacher().option_advice(index).expect("option advice").clone();
    assert!((option_advice.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{option_advice:?}");

    // Off and on again: the same teacher, model loaded and cache warm.
    trainer.set_teacher(TeacherKind::None);
    trainer.step().expect("step");
    trainer.set_teacher(TeacherKind::Llm);
    let after = trainer.teacher().client_stats().expect("stats");
    assert!(after.computed >= stats.computed && after.restarts == 0, "{after:?}");
    assert!(after.lookups > stats.lookups);
}
