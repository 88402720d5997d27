//! Runs `duet conformance` on the fixtures recorded from the real MiniGrid 3.0.0, and checks
//! that the command catches a tampered recording.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Recordings of duet's own levels (`minigrid`) or of other MiniGrid/BabyAI families whose
/// rules the replayer derives from the env id and mission (`minigrid-extra`).
fn fixtures_in(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    files
}

fn fixtures() -> Vec<PathBuf> {
    fixtures_in("minigrid")
}

fn run(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_duet")).arg("conformance").args(files).output().expect("run duet");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_recorded_minigrid_trajectory_replays_exactly() {
    let files = fixtures();
    assert!(files.len() >= 10, "expected fixtures for at least 10 levels, found {}", files.len());
    let (ok, stdout) = run(&files);
    assert!(ok, "conformance failed:\n{stdout}");
    let summary = stdout.lines().find(|l| l.starts_with("conformance:")).expect("summary line");
    // "conformance: T trajectories, S steps, L levels"
    let numbers: Vec<usize> = summary.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let (steps, levels) = (numbers[1], numbers[2]);
    assert!(steps >= 5_000, "only {steps} steps replayed");
    assert!(levels >= 10, "only {levels} levels replayed");
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
}

#[test]
fn other_minigrid_and_babyai_families_replay_exactly() {
    let files = fixtures_in("minigrid-extra");
    assert!(files.len() >= 20, "expected at least 20 extra families, found {}", files.len());
    let (ok, stdout) = run(&files);
    assert!(ok, "conformance failed:\n{stdout}");
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
}

#[test]
fn a_tampered_recording_is_reported_and_fails() {
    let files = fixtures();
    let door_key = files.iter().find(|p| p.to_string_lossy().contains("DoorKey-8x8")).expect("DoorKey-8x8 fixture");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(std::fs::File::open(door_key).unwrap()), &mut text)
        .unwrap();
    let first = text.lines().next().unwrap();
    let mut trajectory: serde_json::Value = serde_json::from_str(first).unwrap();
    // Flip sight rules: MiniGrid DoorKey has see_through_walls off, so views must now differ.
    trajectory["see_through_walls"] = serde_json::Value::Bool(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tampered.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "{first}").unwrap();
    writeln!(file, "{trajectory}").unwrap();
    let (ok, stdout) = run(&[path]);
    assert!(!ok, "a tampered fixture must fail:\n{stdout}");
    assert!(stdout.contains("image"), "the mismatching field is named:\n{stdout}");
    assert!(stdout.trim_end().ends_with("1 passed, 1 failed"), "{stdout}");
}

#[test]
fn an_unreadable_fixture_is_an_error_naming_the_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_duet")).args(["conformance", "no/such/file.jsonl"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.jsonl: cannot read"));
}
