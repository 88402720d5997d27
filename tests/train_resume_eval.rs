//! `duet train` checkpoints, `--resume` continues the run where it stopped (metrics appended,
//! frames and updates counted on), and `duet eval` plays the checkpointed student.

use std::path::Path;
use std::process::{Command, Output};

use duet::metrics::read_log;

fn duet(args: &[&str], dir: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_duet")).args(args).current_dir(dir).output().expect("run duet");
    assert!(
        output.status.success(),
        "duet {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn train_resume_and_eval() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("scene.ron"),
        "Scene(name: \"t\", seed: 3, env: Grid(level: \"DoorKey-5x5\", num_envs: 4),
               student: (frames_per_env: 16, minibatch: 32, distill: (anneal_frames: 1000)))",
    )
    .expect("scene");
    // 64 frames per update: 2 updates, then resume to 4.
    duet(&["train", "--scene", "scene.ron", "--teacher", "oracle", "--frames", "128", "--out", "run"], dir.path());
    let run = dir.path().join("run");
    assert!(run.join("checkpoint.ron").is_file() && run.join("student-000002.safetensors").is_file());
    let output = duet(&["train", "--out", "run", "--resume", "--frames", "256"], dir.path());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("resuming run at update 2, frame 128"));
    let records = read_log(run.join("metrics.jsonl")).expect("metrics");
    let updates: Vec<(u64, u64)> = records.iter().map(|r| (r.update, r.frames)).collect();
    assert_eq!(updates, vec![(1, 64), (2, 128), (3, 192), (4, 256)]);
    assert!(records.iter().all(|r| r.teacher_coverage == 1.0), "the resumed run keeps its oracle teacher");
    assert!(records[3].lambda < records[2].lambda, "λ goes on annealing from the saved frame count");

    let output = duet(&["eval", "--run", "run", "--episodes", "5", "--greedy"], dir.path());
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(line["episodes"], 5);
    assert_eq!(line["updates"], 4);
    assert!(line["success_rate"].as_f64().is_some_and(|s| (0.0..=1.0).contains(&s)));

    // Resuming with another teacher than the checkpoint's is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["train", "--out", "run", "--resume", "--teacher", "none", "--frames", "512"])
        .current_dir(dir.path())
        .output()
        .expect("run duet");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("teacher oracle"), "{refused:?}");
}

#[test]
fn ctrl_c_checkpoints_and_resume_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("scene.ron"),
        "Scene(name: \"t\", seed: 5, env: Grid(level: \"Empty-5x5\", num_envs: 4),
               student: (frames_per_env: 16, minibatch: 32))",
    )
    .expect("scene");
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["train", "--scene", "scene.ron", "--frames", "100000000", "--checkpoint-every", "0", "--out", "run"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn duet");
    // Drained as it comes: a full pipe would stall training before the signal.
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout_pipe, &mut text).map(|_| text)
    });
    let metrics = dir.path().join("run/metrics.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while read_log(&metrics).map_or(0, |records| records.len()) < 2 {
        assert!(std::time::Instant::now() < deadline, "no updates within two minutes");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(interrupted.success());
    let status = child.wait().expect("wait");
    let stdout = reader.join().expect("reader").expect("stdout");
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted at update"), "{stdout}");
    // The checkpoint is the last logged update, so the run resumes where the log stops.
    let records = read_log(&metrics).expect("metrics");
    let last = records.last().expect("records");
    let checkpoint = std::fs::read_to_string(dir.path().join("run/checkpoint.ron")).expect("checkpoint");
    assert!(checkpoint.contains(&format!("updates: {},", last.update)), "{checkpoint}");
    let target = (last.frames + 64).to_string();
    duet(&["train", "--out", "run", "--resume", "--frames", &target], dir.path());
    let resumed = read_log(&metrics).expect("metrics");
    assert_eq!(resumed.len(), records.len() + 1);
    assert_eq!(resumed.last().map(|r| r.frames), Some(last.frames + 64));
}
