//! The `llm4teach` student preset (scenes/*-llm4teach.ron): its scene carries LLM4Teach's
//! hyper-parameters, and a trainer built from it learns on the historical view and resumes.

use std::path::Path;

use duet::env::scene::{EncoderKind, LambdaSchedule, Scene};
use duet::env::vec_env::ObservationKind;
use duet::training::{TeacherKind, Trainer, TrainerConfig};

fn preset(name: &str) -> Scene {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenes").join(name);
    Scene::load(&path).unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn preset_scenes_hold_llm4teach_hyper_parameters() {
    for name in ["simpledoorkey-llm4teach.ron", "lavadoorkey-llm4teach.ron"] {
        let student = preset(name).student;
        assert_eq!((student.observation, student.encoder), (ObservationKind::Historical, EncoderKind::Llm4Teach));
        assert_eq!(
            (student.lr, student.adam_eps, student.gamma, student.gae_lambda),
            (1e-3, 1e-8, 0.99, 1.0),
            "{name}"
        );
        assert_eq!(
            (student.clip, student.clip_value, student.epochs, student.minibatch),
            (0.2, true, 3, 128),
            "{name}"
        );
        assert_eq!((student.entropy_coef, student.value_coef, student.max_grad_norm), (0.001, 0.5, 0.5), "{name}");
        assert_eq!((student.distill.lambda0, student.distill.schedule), (10.0, LambdaSchedule::Llm4Teach), "{name}");
    }
}

#[test]
fn trainer_from_the_preset_uses_the_historical_view_and_resumes() {
    let mut scene = preset("simpledoorkey-llm4teach.ron");
    // Small updates keep the test quick; the network and schedule are the preset's.
    scene.student.frames_per_env = 8;
    scene.student.minibatch = 40;
    let config = TrainerConfig::from_scene(&scene, TeacherKind::Oracle).expect("config");
    assert_eq!(config.observation, ObservationKind::Historical);
    let mut trainer = Trainer::new(config.clone()).expect("trainer");
    let world = trainer.env().world(0);
    assert_eq!(trainer.env().observation_len(), world.width() * world.height() * 4);
    let first = trainer.train_one_update().expect("update 1");
    let second = trainer.train_one_update().expect("update 2");
    assert_eq!((first.frames, second.frames), (80, 160));
    // λ steps per update (10, then 9.995), not per frame.
    assert_eq!(first.lambda, 10.0);
    assert!((second.lambda - 9.995).abs() < 1e-12, "{}", second.lambda);
    assert!(first.teacher_coverage > 0.0 && first.policy_loss.is_finite() && first.grad_norm.is_finite());

    let dir = tempfile::tempdir().expect("temp dir");
    trainer.save_checkpoint(dir.path()).expect("save");
    let mut resumed = Trainer::resume(config, dir.path()).expect("resume");
    assert_eq!(resumed.student().state().tensors.len(), trainer.student().state().tensors.len());
    let after_resume = resumed.train_one_update().expect("update 3");
    let straight = trainer.train_one_update().expect("update 3");
    assert_eq!(after_resume.update, 3);
    assert!((after_resume.lambda - 9.99).abs() < 1e-12);
    assert_eq!(after_resume.frames, straight.frames);
}
