//! `duet tune` refuses bad input with the file and the problem named, before any model loads.

use std::path::Path;
use std::process::{Command, Output};

fn duet(directory: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_duet")).args(args).current_dir(directory).output().expect("run duet")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn tune_names_the_student_run_or_the_prompt_that_does_not_fit() {
    let directory = tempfile::tempdir().expect("temp dir");
    let scene = |name: &str, level: &str| {
        std::fs::write(
            directory.path().join(name),
            format!(
                "Scene(name: \"t\", seed: 3, env: Grid(level: \"{level}\", num_envs: 4),
                   student: (frames_per_env: 32, minibatch: 32))"
            ),
        )
        .expect("scene");
    };
    scene("dk5.ron", "DoorKey-5x5");
    scene("dk6.ron", "DoorKey-6x6");
    let trained = duet(directory.path(), &["train", "--scene", "dk6.ron", "--frames", "256", "--out", "dk6-run"]);
    assert!(trained.status.success(), "{}", stderr(&trained));

    let other_level = duet(directory.path(), &["tune", "--scene", "dk5.ron", "--student", "dk6-run"]);
    assert!(!other_level.status.success());
    let message = stderr(&other_level);
    assert!(message.contains("dk6-run") && message.contains("dk5.ron") && message.contains("DoorKey"), "{message}");

    let missing_prompt =
        duet(directory.path(), &["tune", "--scene", "dk6.ron", "--student", "dk6-run", "--prompt", "absent.txt"]);
    assert!(!missing_prompt.status.success());
    assert!(stderr(&missing_prompt).contains("absent.txt"), "{}", stderr(&missing_prompt));

    let no_iterations = duet(directory.path(), &["tune", "--scene", "dk6.ron", "--iterations", "0"]);
    assert!(!no_iterations.status.success());
    assert!(stderr(&no_iterations).contains("--iterations"), "{}", stderr(&no_iterations));

    let bad_algorithm = duet(directory.path(), &["tune", "--scene", "dk6.ron", "--algo", "dpo"]);
    assert!(!bad_algorithm.status.success());
    assert!(stderr(&bad_algorithm).contains("ppo, cory or archer"), "{}", stderr(&bad_algorithm));
}
