//! `duet train` with a teacher ends by printing the feedback its student has for the teacher.

use std::process::Command;

#[test]
fn train_with_the_oracle_prints_the_final_feedback() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("scene.ron"),
        "Scene(name: \"t\", seed: 3, env: Grid(level: \"DoorKey-5x5\", num_envs: 4),
               student: (frames_per_env: 32, minibatch: 32))",
    )
    .expect("scene");
    let run = |teacher: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_duet"))
            .args(["train", "--scene", "scene.ron", "--teacher", teacher, "--frames", "4096", "--out", teacher])
            .current_dir(dir.path())
            .output()
            .expect("run duet");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        stdout
    };
    let stdout = run("oracle");
    let (_, feedback) = stdout.split_once("feedback for the teacher (").expect(&stdout);
    let lines: Vec<&str> = feedback.lines().skip(1).collect();
    assert!(!lines.is_empty() && lines.iter().all(|line| line.starts_with("When ")), "{stdout}");
    assert!(!run("none").contains("feedback for the teacher"));
}
