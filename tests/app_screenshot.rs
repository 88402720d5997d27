//! The app end to end under Xvfb: `duet --screenshot` saves a PNG of the window that shows the
//! grid (agent red, goal green) and the side panel; the student trains live; bad scenes fail
//! early; the prompt editor refuses bad templates and keeps the one in force; `--race` draws
//! the second run beside the first; `duet bench ui` prints frame and render-pass times as JSON.

#![cfg(feature = "app")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bevy::asset::RenderAssetUsages;
use bevy::image::{CompressedImageFormats, Image, ImageSampler, ImageType};

/// The app's window, as `duet::app::WINDOW_SIZE` opens it.
const WINDOW: (u32, u32) = duet::app::WINDOW_SIZE;
/// The app's own limit inside Xvfb, and ours around Xvfb as a last resort.
const APP_TIMEOUT_SECS: u64 = 180;
const HARNESS_TIMEOUT: Duration = Duration::from_secs(APP_TIMEOUT_SECS + 60);

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `xvfb-run` from `PATH`, or a failure that says how to get it (`make deps` installs it).
fn xvfb_run() -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths).map(|dir| dir.join("xvfb-run")).find(|path| path.is_file()).unwrap_or_else(|| {
        panic!(
            "xvfb-run not found on PATH: the screenshot test needs a virtual X display. Install it \
             with `make deps` (apt packages xvfb, xauth, mesa-vulkan-drivers, libvulkan1)."
        )
    })
}

/// `duet` on the default scene inside a virtual X display of the window's size, with an inner
/// time limit; callers add their own flags.
fn app_under_xvfb(working_dir: &Path) -> Command {
    app_under_xvfb_on(working_dir, &manifest_path("scenes/default.ron"))
}

/// Like `app_under_xvfb`, on the scene file `scene`.
fn app_under_xvfb_on(working_dir: &Path, scene: &Path) -> Command {
    let mut command = Command::new(xvfb_run());
    command
        .args(["-a", "-s", &format!("-screen 0 {}x{}x24", WINDOW.0, WINDOW.1)])
        .arg("timeout")
        .arg(APP_TIMEOUT_SECS.to_string())
        .arg(env!("CARGO_BIN_EXE_duet"))
        .arg("--scene")
        .arg(scene)
        .current_dir(working_dir);
    // Software Vulkan (Mesa lavapipe) works under Xvfb; a caller may choose otherwise.
    if std::env::var_os("WGPU_BACKEND").is_none() {
        command.env("WGPU_BACKEND", "vulkan");
    }
    command
}

/// Runs `command`, killing it after `limit`; the output so far either way.
fn run_with_limit(mut command: Command, limit: Duration) -> (Option<std::process::ExitStatus>, Output) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                break None;
            }
        }
    };
    let output = child.wait_with_output().unwrap_or_else(|err| panic!("waiting for {command:?}: {err}"));
    (status, output)
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The PNG's size and RGBA pixels.
fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let image = Image::from_buffer(
        &bytes,
        ImageType::Extension("png"),
        CompressedImageFormats::NONE,
        true,
        ImageSampler::Default,
        RenderAssetUsages::default(),
    )
    .unwrap_or_else(|err| panic!("{}: not a PNG: {err}", path.display()));
    let pixels = image.data.clone().unwrap_or_default();
    assert_eq!(pixels.len(), (image.width() * image.height() * 4) as usize, "RGBA pixels expected");
    (image.width(), image.height(), pixels)
}

/// Runs `command` within the harness's limit and checks that it succeeded; its output and a
/// log of both streams' tails for messages. `what` names it in failures.
fn run_to_success(command: Command, what: &str) -> (Output, String) {
    let started = Instant::now();
    let (status, output) = run_with_limit(command, HARNESS_TIMEOUT);
    let log = format!("stdout:\n{}\nstderr:\n{}", tail(&output.stdout), tail(&output.stderr));
    let status = status.unwrap_or_else(|| panic!("{what} did not finish within {HARNESS_TIMEOUT:?}\n{log}"));
    assert!(status.success(), "{what} failed ({status}) after {:?}\n{log}", started.elapsed());
    (output, log)
}

/// The RGB pixels of a screenshot's side panel, right of its dividing line.
fn side_panel_pixels(width: u32, height: u32, pixels: &[u8]) -> Vec<[u8; 3]> {
    let panel_x = (WINDOW.0 - PANEL_WIDTH) as usize + 4;
    (0..height as usize)
        .flat_map(|y| (panel_x..width as usize).map(move |x| (x, y)))
        .map(|(x, y)| {
            let at = (y * width as usize + x) * 4;
            [pixels[at], pixels[at + 1], pixels[at + 2]]
        })
        .collect()
}

#[test]
fn screenshot_of_the_default_scene_shows_the_grid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shot = dir.path().join("shot.png");
    let mut command = app_under_xvfb(dir.path());
    command.arg("--screenshot").arg(&shot).args(["--frames", "60"]);
    let (_, log) = run_to_success(command, "duet --screenshot");
    assert!(shot.is_file(), "no screenshot at {}\n{log}", shot.display());

    let (width, height, pixels) = read_png(&shot);
    assert_eq!((width, height), WINDOW, "screenshot has the window's size");
    let rgb: Vec<[u8; 3]> = pixels.chunks_exact(4).map(|p| [p[0], p[1], p[2]]).collect();
    let count = |pred: fn(&[u8; 3]) -> bool| rgb.iter().filter(|p| pred(p)).count();
    // The agent's red triangles (MiniGrid red, 255/0/0) and the goal's green (0/255/0, lit
    // toward white where the agent sees it).
    let agent_red = count(|&[r, g, b]| r > 200 && g < 60 && b < 60);
    let goal_green = count(|&[r, g, b]| g > 200 && r < 100 && b < 100);
    assert!(agent_red >= 200, "too little agent red: {agent_red} pixels\n{log}");
    assert!(goal_green >= 1000, "too little goal green: {goal_green} pixels\n{log}");
    // Every thumbnail shows its goal: green in the mosaic's column below its first row too
    // (a broken grid layout once left one row of four, cut off by the panel).
    let mosaic_green = (220..height as usize)
        .flat_map(|y| (540..(WINDOW.0 - PANEL_WIDTH) as usize).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let [r, g, b] = rgb[y * width as usize + x];
            g > 200 && r < 100 && b < 100
        })
        .count();
    assert!(mosaic_green >= 400, "thumbnails missing below the mosaic's first row: {mosaic_green} green pixels\n{log}");
    let mut distinct = rgb.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 50, "only {} distinct colours: blank or broken render", distinct.len());
    let background = rgb.iter().filter(|&&p| p == rgb[0]).count();
    assert!(background < rgb.len() * 9 / 10, "{background} of {} pixels share one colour", rgb.len());

    // The side panel holds the window's right edge: a dividing line (theme::FRAME, 46/50/59)
    // down its left side, the description of the state on a card (theme::PANEL, 23/26/32),
    // text and bars.
    let near =
        |[r, g, b]: [u8; 3], [r2, g2, b2]: [u8; 3]| r.abs_diff(r2) <= 2 && g.abs_diff(g2) <= 2 && b.abs_diff(b2) <= 2;
    let divider = ((WINDOW.0 - PANEL_WIDTH) as usize..(WINDOW.0 - PANEL_WIDTH) as usize + 4)
        .map(|x| (0..height as usize).filter(|&y| near(rgb[y * width as usize + x], [46, 50, 59])).count())
        .max()
        .unwrap_or(0);
    assert!(divider > height as usize * 9 / 10, "no line divides the side panel: {divider} of {height} rows");
    let panel = side_panel_pixels(width, height, &pixels);
    let card = panel.iter().filter(|&&pixel| near(pixel, [23, 26, 32])).count();
    assert!(card > 10_000, "no card for the state's description: {card} pixels of theme::PANEL");
    let bright_text = panel.iter().filter(|&&[r, g, b]| r > 180 && g > 180 && b > 180).count();
    assert!(bright_text > 500, "only {bright_text} bright (text) pixels in the side panel");
}

#[test]
fn a_missing_teacher_model_leaves_the_app_running_with_a_banner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = dir.path().join("missing-model.ron");
    let model = dir.path().join("no-such-model.gguf");
    std::fs::write(
        &scene,
        format!(
            "Scene(name: \"missing model\", seed: 1, env: Grid(level: \"DoorKey-5x5\"), teacher: Teacher(model: {:?}))",
            model.display().to_string()
        ),
    )
    .expect("write scene");
    let shot = dir.path().join("shot.png");
    let mut command = app_under_xvfb_on(dir.path(), &scene);
    command.arg("--screenshot").arg(&shot).args(["--frames", "90"]);
    let (_, log) = run_to_success(command, "the app without its teacher model");
    let (width, height, pixels) = read_png(&shot);
    // The banner's border and tint (theme::FAILURE, 239/73/73) in the side panel; nothing
    // else there is red (the agents' red triangles are left of it).
    let red =
        side_panel_pixels(width, height, &pixels).iter().filter(|&&[r, g, b]| r > 200 && g < 110 && b < 110).count();
    assert!(red >= 300, "no error banner in the side panel ({red} red pixels)\n{log}");
}

#[test]
fn the_app_opens_with_a_prompt_draft_in_the_editor_not_yet_applied() {
    let dir = tempfile::tempdir().expect("temp dir");
    let draft = dir.path().join("draft.txt");
    std::fs::write(&draft, "Mission: {mission}\nYou see: {observation}\nOptions: {options}\nPick the next step.\n")
        .expect("write draft");
    let shot = dir.path().join("shot.png");
    let mut command = app_under_xvfb(dir.path());
    command.args(["--teacher", "oracle", "--prompt-draft"]).arg(&draft).arg("--screenshot").arg(&shot);
    let (_, log) = run_to_success(command, "duet --prompt-draft");
    // The Prompt tab is open and says "edited, not applied" in theme::WARNING (244/179/57);
    // nothing else in the side panel has that colour.
    let (width, height, pixels) = read_png(&shot);
    let warning = side_panel_pixels(width, height, &pixels)
        .iter()
        .filter(|&&[r, g, b]| r > 200 && (140..215).contains(&g) && b < 110)
        .count();
    assert!(warning >= 100, "no \"edited, not applied\" in the side panel ({warning} pixels)\n{log}");

    // A draft that cannot be read stops the app before its window, naming the file.
    let missing = dir.path().join("no-such-draft.txt");
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    command
        .arg("--scene")
        .arg(manifest_path("scenes/default.ron"))
        .arg("--prompt-draft")
        .arg(&missing)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    let (status, output) = run_with_limit(command, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.expect("duet exits at once").success(), "a missing draft must fail:\n{stderr}");
    let expected = format!("{}: cannot read the prompt draft", missing.display());
    assert!(stderr.contains(&expected), "expected {expected:?} in stderr:\n{stderr}");
}

/// The side panel's width in logical pixels (`app::panels::PANEL_WIDTH`).
const PANEL_WIDTH: u32 = 420;

/// A teacher that takes a prompt, as LLM teachers do: enough to drive the editor's Apply
/// against the real template checks.
struct PromptedTeacher {
    template: duet::teacher::prompt::PromptTemplate,
    version: u64,
}

impl duet::student::TeacherPolicy for PromptedTeacher {
    fn name(&self) -> &'static str {
        "prompted"
    }
    fn advise(&mut self, _env: &duet::env::vec_env::VecEnv, advice: &mut [Option<duet::student::ActionDistribution>]) {
        advice.fill(None);
    }
    fn prompt(&self) -> Option<&duet::teacher::prompt::PromptTemplate> {
        Some(&self.template)
    }
    fn set_prompt(&mut self, template: duet::teacher::prompt::PromptTemplate) -> Result<u64, String> {
        self.template = template;
        self.version += 1;
        Ok(self.version)
    }
}

#[test]
fn prompt_editor_refuses_a_bad_template_and_keeps_the_old_one() {
    use duet::app::prompt_editor::PromptEditor;
    use duet::student::TeacherPolicy;
    let original = "Mission: {mission}\nYou see: {observation}\nChoose one of: {options}\n";
    let template = duet::teacher::prompt::PromptTemplate::parse(original, "test").expect("a valid template");
    let mut teacher = PromptedTeacher { template, version: 1 };
    let mut editor = PromptEditor::default();
    editor.sync(teacher.prompt().map(|template| template.text()));
    assert_eq!(editor.draft, original, "an untouched editor shows the template in force");

    // An unknown slot on line 2: refused with its position; nothing changes on the teacher.
    editor.draft = "Mission: {mission}\nYou see: {observaton}\nChoose one of: {options}\n".to_owned();
    editor.edited = true;
    let error = editor.apply(&mut teacher, 4096).expect_err("a misspelt slot is refused");
    assert!(error.starts_with("the editor:2:"), "error names the editor and line: {error}");
    assert_eq!(teacher.prompt().map(|template| template.text()), Some(original));
    assert_eq!(teacher.version, 1);
    assert_eq!(editor.error.as_deref(), Some(error.as_str()), "the error is shown inline");
    assert!(editor.history.is_empty());
    assert_eq!(editor.marker_frames().count(), 0, "no marker for a refused template");

    // Revert brings back the template in force; a good edit is applied and marks the curves.
    editor.revert();
    assert_eq!((editor.draft.as_str(), editor.error.as_ref()), (original, None));
    let edited = format!("{original}Answer with one option.\n");
    editor.draft = edited.clone();
    editor.edited = true;
    assert_eq!(editor.apply(&mut teacher, 8192), Ok(2));
    assert_eq!(teacher.prompt().map(|template| template.text()), Some(edited.as_str()));
    assert_eq!(editor.in_force.as_deref(), Some(edited.as_str()));
    assert_eq!(editor.marker_frames().collect::<Vec<_>>(), vec![8192]);
    assert_eq!(editor.history[0].version, 2);
    assert_eq!(editor.history[0].applied_at.len(), "HH:MM:SS".len());
}

#[test]
fn prompt_editor_says_when_the_teacher_takes_no_prompt() {
    use duet::app::prompt_editor::PromptEditor;
    use duet::student::TeacherPolicy;
    let level = duet::env::scene::Scene::default().grid_level().cloned().expect("the default scene is a grid scene");
    let mut oracle = duet::student::OracleTeacher::new(&duet::env::vec_env::EnvKind::Grid(level.clone()));
    let mut editor = PromptEditor::default();
    editor.sync(oracle.prompt().map(|template| template.text()));
    assert_eq!(editor.in_force, None);
    editor.draft = "{observation} {options}".to_owned();
    let error = editor.apply(&mut oracle, 0).expect_err("the oracle takes no prompt");
    assert!(error.contains("takes no prompt"), "{error}");
    assert!(editor.history.is_empty());
}

#[test]
fn bad_scene_fails_before_opening_a_window() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = dir.path().join("bad.ron");
    std::fs::write(&scene, "Scene(\n    name: \"t\"\n    seed: 1,\n)\n").expect("write scene");
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    command.arg("--scene").arg(&scene).env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    let (status, output) = run_with_limit(command, Duration::from_secs(60));
    let status = status.expect("duet exits at once on a bad scene");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "a bad scene must fail; stderr:\n{stderr}");
    let expected = format!("{}:3:5: expected comma", scene.display());
    assert!(stderr.contains(&expected), "expected {expected:?} in stderr:\n{stderr}");
}

#[test]
fn the_app_trains_the_student_live() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shot = dir.path().join("training.png");
    let out = dir.path().join("run");
    let mut command = app_under_xvfb(dir.path());
    command
        .args(["--speed", "max", "--teacher", "oracle", "--out"])
        .arg(&out)
        .arg("--screenshot")
        .arg(&shot)
        // However slow the machine, the capture waits for the first PPO update to come back.
        .args(["--frames", "30", "--min-updates", "1"]);
    let (output, log) = run_to_success(command, "duet --speed max --out");
    assert!(shot.is_file(), "no screenshot at {}\n{log}", shot.display());

    // The record the HUD shows is the one the app logs: at least one full rollout's worth.
    let records = duet::metrics::read_log(out.join("metrics.jsonl")).unwrap_or_else(|err| panic!("{err}\n{log}"));
    let first = records.first().unwrap_or_else(|| panic!("no update record in metrics.jsonl\n{log}"));
    assert_eq!(first.update, 1, "{first:?}");
    assert_eq!(first.frames, 16 * 128, "16 envs x 128 frames per env: {first:?}");
    assert_eq!(first.teacher_coverage, 1.0, "with --teacher oracle every sample is advised: {first:?}");
    let all_output = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(all_output.contains("update 1 took"), "the update came back from the worker thread\n{log}");
}

#[test]
fn bench_ui_reports_frame_times_and_render_pass_times_as_json() {
    // Without a display, `duet bench ui` runs itself under xvfb-run.
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    command
        .args(["bench", "ui", "--seconds", "2", "--tab", "curves", "--passes", "--scene"])
        .arg(manifest_path("scenes/doorkey-5x5.ron"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    let (output, log) = run_to_success(command, "duet bench ui");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|line| line.starts_with('{')).unwrap_or_else(|| panic!("no JSON line\n{log}"));
    let result: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
    let ms = |key: &str| result[key].as_f64().unwrap_or_else(|| panic!("no {key} in {line}"));
    assert!(result["frames"].as_u64().is_some_and(|frames| frames > 0), "{line}");
    assert!(0.0 < ms("p50_ms") && ms("p50_ms") <= ms("p95_ms") && ms("p95_ms") <= ms("max_ms"), "{line}");
    assert_eq!(result["tab"], "curves", "{line}");
    assert_eq!(result["display"], "xvfb", "{line}");
    // Bevy's UI pass and the blit to the window are timed on lavapipe (timestamp queries).
    for pass in ["ui", "upscaling"] {
        let gpu = result["gpu_pass_ms"][pass].as_f64().unwrap_or_else(|| panic!("no GPU time for {pass}: {line}"));
        assert!(gpu > 0.0, "{pass}: {gpu} ms\n{line}");
    }
}

#[test]
fn the_race_view_shows_the_second_run_beside_the_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shot = dir.path().join("race.png");
    let mut command = app_under_xvfb(dir.path());
    command.args(["--teacher", "oracle", "--speed", "max", "--race", "--screenshot"]).arg(&shot).args([
        "--frames",
        "30",
        "--min-updates",
        "1",
    ]);
    let (_, log) = run_to_success(command, "duet --race");
    let (width, height, pixels) = read_png(&shot);
    let amber = |x: usize, y: usize| {
        let p = &pixels[(y * width as usize + x) * 4..][..3];
        // theme::WARNING (244, 179, 57): the second run's frame.
        p[0].abs_diff(244) <= 12 && p[1].abs_diff(179) <= 12 && p[2].abs_diff(57) <= 12
    };
    // Between the first run's view (the left half of the views) and the side panel.
    let views_width = (WINDOW.0 - PANEL_WIDTH) as usize;
    let count = |xs: std::ops::Range<usize>| {
        (0..height as usize).flat_map(|y| xs.clone().map(move |x| (x, y))).filter(|&(x, y)| amber(x, y)).count()
    };
    let second_run = count(views_width / 2..views_width);
    assert!(second_run >= 3000, "no amber frame of the second run: {second_run} pixels\n{log}");
    // Only the teacher's option on the first run's view is amber there (a few dozen pixels);
    // without --race the right half has none at all.
    assert!(count(0..views_width / 2) < 1000, "the first run's view should not be framed in amber\n{log}");
}

#[test]
fn screenshot_of_an_embodied_scene_shows_the_apartment_in_3d_and_the_panel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shot = dir.path().join("embodied.png");
    let mut command = app_under_xvfb_on(dir.path(), &manifest_path("scenes/pickplace-apartment-1.ron"));
    command.args(["--teacher", "oracle"]).arg("--screenshot").arg(&shot).args(["--frames", "90"]);
    let (_, log) = run_to_success(command, "duet --screenshot");
    let (width, height, pixels) = read_png(&shot);
    assert_eq!((width, height), WINDOW, "screenshot has the window's size");
    let rgb: Vec<[u8; 3]> = pixels.chunks_exact(4).map(|p| [p[0], p[1], p[2]]).collect();
    let at = |x: usize, y: usize| rgb[y * width as usize + x];
    // The 3D view (left of the mosaic, under the header): lit, shaded surfaces in many
    // colours, and none of the magenta a failed material draws.
    let view: Vec<[u8; 3]> = (150..480).flat_map(|y| (30..480).map(move |x| (x, y))).map(|(x, y)| at(x, y)).collect();
    let mut distinct = view.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 200, "only {} colours in the 3D view: not rendered", distinct.len());
    let magenta = view.iter().filter(|&&[r, g, b]| r > 200 && g < 60 && b > 200).count();
    assert!(magenta < 50, "{magenta} magenta pixels in the 3D view: a material failed\n{log}");
    // Pale floors and walls (the apartment), and the furniture's browns.
    let pale = view.iter().filter(|&&[r, g, b]| r > 150 && g > 150 && b > 150).count();
    let brown = view.iter().filter(|&&[r, g, b]| r > g && g > b && r > 80 && r - b > 40).count();
    assert!(pale > view.len() / 10, "too few floor and wall pixels: {pale}\n{log}");
    assert!(brown > 1000, "too little furniture: {brown}\n{log}");
    // The side panel is there with text on it.
    let bright_text =
        side_panel_pixels(width, height, &pixels).iter().filter(|rgb| rgb.iter().all(|&c| c > 180)).count();
    assert!(bright_text > 500, "only {bright_text} bright (text) pixels in the side panel");
}

#[test]
fn the_window_refuses_to_switch_between_grid_and_embodied_scenes_and_bad_plans_fail_early() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scene = dir.path().join("broken.ron");
    std::fs::write(
        &scene,
        "Scene(name: \"x\", seed: 1, env: Embodied(plan: \"missing.ron\", task: 0), student: (encoder: Mlp))",
    )
    .expect("write scene");
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    command.arg("--scene").arg(&scene).current_dir(dir.path());
    let (status, output) = run_with_limit(command, HARNESS_TIMEOUT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.expect("finished").success());
    assert!(stderr.contains("broken.ron") && stderr.contains("missing.ron"), "{stderr}");
}
