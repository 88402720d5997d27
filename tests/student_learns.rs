//! Whole-flow check of `duet train`: PPO without a teacher solves Empty-5x5 (rolling success
//! of at least 0.9) within a bounded number of frames, and the run leaves its record behind.

use std::process::Command;

use duet::env::scene::Scene;
use duet::metrics::read_log;

/// Seed 1 gets there in about 14k frames; the budget leaves room for other seeds' luck.
const FRAME_BUDGET: u64 = 60_000;

#[test]
fn ppo_solves_empty_5x5() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene_path = dir.path().join("empty.ron");
    std::fs::write(&scene_path, "Scene(name: \"Empty 5x5\", seed: 1, env: Grid(level: \"Empty-5x5\", num_envs: 16))")
        .expect("scene");
    let out = dir.path().join("run");
    let output = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["train", "--teacher", "none", "--frames", &FRAME_BUDGET.to_string()])
        .arg("--scene")
        .arg(&scene_path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run duet train");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().filter(|l| l.starts_with("update ")).count() >= 2, "one progress line per update");

    let records = read_log(out.join("metrics.jsonl")).expect("metrics");
    assert_eq!(records.first().map(|r| r.update), Some(1));
    let solved = records.iter().find(|r| r.success_rate.is_some_and(|s| s >= 0.9) && r.episodes >= 100);
    let curve: Vec<String> = records.iter().map(|r| format!("{}:{:?}", r.frames, r.success_rate)).collect();
    assert!(solved.is_some(), "never reached 0.9 within {FRAME_BUDGET} frames: {curve:?}");
    assert!(records.iter().all(|r| r.teacher_coverage == 0.0 && r.teacher_kl.is_none()));

    // The record is a scene that repeats the run.
    let config = Scene::load(out.join("config.ron")).expect("config.ron is a scene");
    assert_eq!(config.seed, 1);
    assert_eq!(config.student, duet::env::scene::StudentSpec::default());
}
