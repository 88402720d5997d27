//! The trainer's feedback recorder on real runs: with the oracle on DoorKey-5x5 it records
//! segments and renders lines naming the oracle's options, and recording changes no metric.

use std::collections::BTreeSet;

use duet::env::grid::Level;
use duet::env::scene::{EncoderKind, StudentSpec, TeacherSpec};
use duet::env::vec_env::{EnvKind, ObservationKind};
use duet::metrics::UpdateRecord;
use duet::skills::TeacherOption;
use duet::training::{TeacherKind, Trainer, TrainerConfig};

fn config(teacher: TeacherKind) -> TrainerConfig {
    TrainerConfig {
        env: EnvKind::Grid(Level::DoorKey { size: 5 }),
        num_envs: 4,
        max_steps: None,
        observation: ObservationKind::Egocentric,
        seed: 5,
        student: StudentSpec { encoder: EncoderKind::Mlp, frames_per_env: 32, minibatch: 32, ..StudentSpec::default() },
        teacher,
        teacher_settings: TeacherSpec::default(),
    }
}

fn run(teacher: TeacherKind, recording: bool, updates: usize) -> Vec<UpdateRecord> {
    let mut trainer = Trainer::new(config(teacher)).expect("trainer");
    trainer.set_feedback_recording(recording);
    assert_eq!(trainer.feedback().is_some(), recording);
    (0..updates)
        .map(|_| {
            let mut record = trainer.train_one_update().expect("update");
            record.fps = 0.0; // wall time is the one thing that may differ
            record
        })
        .collect()
}

#[test]
fn recording_feedback_changes_no_metric() {
    for teacher in [TeacherKind::Oracle, TeacherKind::None] {
        assert_eq!(run(teacher, true, 3), run(teacher, false, 3), "{teacher:?}");
    }
}

#[test]
fn oracle_run_records_followed_advice_and_renders_its_options() {
    let mut trainer = Trainer::new(config(TeacherKind::Oracle)).expect("trainer");
    trainer.set_feedback_every(1);
    let mut advised = BTreeSet::new();
    for _ in 0..6 {
        while !trainer.step().expect("step") {
            for index in 0..trainer.env().num_envs() {
                let top = trainer.teacher().option_advice(index).and_then(|advice| advice.top_option());
                advised.extend(top);
            }
        }
        trainer.update().expect("update");
    }
    let feedback = trainer.feedback().expect("recording is on by default");
    assert!(feedback.segments() > 0, "no segment settled in {} episodes", trainer.episodes());
    // Every recorded option is one the oracle gave, and counts are consistent.
    for (&(_, option), counts) in feedback.counts() {
        assert!(advised.contains(&option), "{option} was never advised: {advised:?}");
        assert!(counts.reached <= counts.followed && counts.won <= counts.followed);
    }
    let text = feedback.render(4);
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty() && lines.len() <= 4, "{text}");
    for line in &lines {
        assert!(line.starts_with("When ") && line.ends_with('.'), "{line}");
        let named: Vec<TeacherOption> =
            advised.iter().copied().filter(|option| line.contains(&format!("'{option}'"))).collect();
        assert!(!named.is_empty(), "{line} names none of {advised:?}");
    }
    // The oracle takes no prompt, so nothing was sent.
    assert_eq!(trainer.feedback_sent(), "");
}
