//! The shipped `scenes/*.ron` files: every one loads and validates, every preset level has
//! one, and errors in files on disk name the file.

use std::fs;
use std::path::{Path, PathBuf};

use duet::env::grid::Level;
use duet::env::scene::{self, Scene, SceneError};

fn scenes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenes")
}

/// Every shipped scene, loaded; fails naming each file that does not load.
fn shipped_scenes() -> Vec<(PathBuf, Scene)> {
    let listing = scene::list_scenes(scenes_dir()).unwrap_or_else(|err| panic!("{err}"));
    let mut scenes = Vec::new();
    let mut failures = Vec::new();
    for (path, loaded) in listing {
        match loaded {
            Ok(scene) => scenes.push((path, scene)),
            Err(err) => failures.push(err.to_string()),
        }
    }
    assert!(failures.is_empty(), "scene files that do not load:\n{}", failures.join("\n"));
    scenes
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn every_scene_file_loads_and_validates() {
    let scenes = shipped_scenes();
    assert!(scenes.len() > Level::presets().len(), "expected a scene per preset plus default.ron");
    for (path, scene) in &scenes {
        assert_eq!(scene.validate(), Ok(()), "{}", path.display());
        // Written out and read back, a shipped scene is unchanged.
        assert_eq!(Scene::parse(&scene.to_ron_string(), path).ok().as_ref(), Some(scene), "{}", path.display());
        // The commented-out max_steps each file shows is the level's (or the plan's) own limit.
        let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let own_limit = match (scene.grid(), scene.embodied()) {
            (Some(grid), _) => grid.level.default_max_steps(),
            (None, Some(embodied)) => embodied.setup().expect("the plan loads").plan.file.max_steps,
            (None, None) => unreachable!("a scene is grid or embodied"),
        };
        let shown = format!("// max_steps: {own_limit},");
        assert!(text.contains(&shown), "{}: expected the comment `{shown}`", path.display());
        assert!(text.starts_with("// "), "{}: expected a comment header", path.display());
    }
}

#[test]
fn embodied_scenes_ship_for_both_apartments_and_both_tasks() {
    let scenes = shipped_scenes();
    let mut shipped: Vec<(String, String)> = scenes
        .iter()
        .filter_map(|(_, scene)| scene.embodied())
        .map(|embodied| {
            let setup = embodied.setup().expect("the plan loads");
            let task = format!("{:?}", setup.plan.file.tasks[setup.task]);
            (setup.plan.file.name.clone(), task.split([' ', '(']).next().unwrap_or_default().to_owned())
        })
        .collect();
    shipped.sort();
    let expected = [
        ("Apartment 1", "ObjectNav"),
        ("Apartment 1", "PickPlace"),
        ("Apartment 2", "ObjectNav"),
        ("Apartment 2", "PickPlace"),
    ];
    assert_eq!(shipped, expected.map(|(plan, task)| (plan.to_owned(), task.to_owned())));
}

#[test]
fn embodied_scene_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenes/floorplans");
    let write = |name: &str, env: &str, student: &str| {
        let path = dir.path().join(name);
        let text = format!("Scene(\n    name: \"x\",\n    seed: 1,\n    env: {env},\n    student: ({student}),\n)\n");
        fs::write(&path, text).expect("write temp scene");
        path
    };
    let plan = |name: &str| plans.join(name).display().to_string();
    let good = write("good.ron", &format!("Embodied(plan: {:?}, task: 1)", plan("apartment-1.ron")), "encoder: Mlp");
    let scene = Scene::load(&good).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(scene.embodied().map(|embodied| embodied.task), Some(1));
    // A relative plan is found beside the scene file, and a run record names it absolutely.
    fs::copy(plans.join("apartment-2.ron"), dir.path().join("flat.ron")).expect("copy plan");
    let relative = write("relative.ron", "Embodied(plan: \"flat.ron\", task: 0)", "encoder: Mlp");
    let scene = Scene::load(&relative).unwrap_or_else(|err| panic!("{err}"));
    let record = scene.to_ron_string_with_student();
    assert!(record.contains(&dir.path().join("flat.ron").display().to_string()), "{record}");

    let message = |path: &Path| match Scene::load(path) {
        Ok(scene) => panic!("{} loaded: {scene:?}", path.display()),
        Err(err) => err.to_string(),
    };
    let missing = write("missing.ron", "Embodied(plan: \"nowhere.ron\", task: 0)", "encoder: Mlp");
    let text = message(&missing);
    assert!(text.starts_with(&format!("{}:4:10: floor plan: ", missing.display())), "{text}");
    assert!(text.contains("nowhere.ron"), "{text}");
    let no_task =
        write("no-task.ron", &format!("Embodied(plan: {:?}, task: 7)", plan("apartment-1.ron")), "encoder: Mlp");
    assert!(message(&no_task).contains("task 7 does not exist"), "{}", message(&no_task));
    let cnn = write("cnn.ron", &format!("Embodied(plan: {:?}, task: 0)", plan("apartment-1.ron")), "encoder: Cnn");
    assert!(message(&cnn).contains("embodied scenes need `encoder: Mlp`"), "{}", message(&cnn));
    fs::write(dir.path().join("broken.ron"), "FloorPlan(name: \"b\", rooms: [)").expect("write plan");
    let broken = write("broken-plan.ron", "Embodied(plan: \"broken.ron\", task: 0)", "encoder: Mlp");
    let text = message(&broken);
    assert!(text.contains("broken.ron:1:"), "the plan's own error names its file and place: {text}");
}

#[test]
fn every_preset_level_has_its_scene_file() {
    let scenes = shipped_scenes();
    for level in Level::presets() {
        let expected = scene::scene_file_name(&level);
        let found = scenes.iter().find(|(path, _)| file_name(path) == expected);
        let (path, scene) = found.unwrap_or_else(|| panic!("no scenes/{expected} for {level}"));
        assert_eq!(scene.grid_level(), Some(&level), "{}", path.display());
    }
}

#[test]
fn default_scene_file_is_the_built_in_default() {
    let path = scenes_dir().join(scene::DEFAULT_SCENE_FILE);
    let scene = Scene::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(scene, Scene::default());
    assert_eq!(scene.grid_level(), Some(&Level::DoorKey { size: 8 }));
}

#[test]
fn errors_in_files_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, text).expect("write temp scene");
        path
    };
    let bad_level =
        write("bad-level.ron", b"Scene(\n    name: \"x\",\n    seed: 1,\n    env: Grid(level: \"Maze-9x9\"),\n)\n");
    let bad_field = write("bad-field.ron", b"Scene(\n    name: \"x\",\n    sed: 1,\n)\n");
    let bad_utf8 = write("bad-utf8.ron", b"Scene(\n    name: \"\xff\",\n)\n");
    let good = write("good.ron", Scene::default().to_ron_string().as_bytes());
    write("notes.txt", b"not a scene");
    assert_eq!(Scene::load(&good).ok(), Some(Scene::default()));

    let message = |path: &Path| match Scene::load(path) {
        Ok(scene) => panic!("{} loaded: {scene:?}", path.display()),
        Err(err) => err.to_string(),
    };
    let prefix = |path: &Path, rest: &str| format!("{}{rest}", path.display());
    assert!(
        message(&bad_level).starts_with(&prefix(&bad_level, ":4:22: unknown level \"Maze-9x9\"; expected a preset"))
    );
    assert_eq!(
        message(&bad_field),
        prefix(
            &bad_field,
            ":3:5: unknown field `sed` in `Scene`; expected one of `name`, `seed`, `env`, `student`, `teacher`"
        )
    );
    assert_eq!(message(&bad_utf8), prefix(&bad_utf8, ":2:12: invalid UTF-8"));
    let missing = dir.path().join("missing.ron");
    let err = Scene::load(&missing).expect_err("missing file");
    assert!(matches!(err, SceneError::Read { .. }));
    assert!(err.to_string().starts_with(&prefix(&missing, ": cannot read: ")), "{err}");
    assert_eq!(err.path(), missing);

    // The listing holds the .ron files only, sorted, each loaded or with its error.
    let listing = scene::list_scenes(dir.path()).expect("readable dir");
    let names: Vec<String> = listing.iter().map(|(path, _)| file_name(path)).collect();
    assert_eq!(names, ["bad-field.ron", "bad-level.ron", "bad-utf8.ron", "good.ron"]);
    for (path, loaded) in &listing {
        match loaded {
            Ok(scene) => assert_eq!((file_name(path).as_str(), scene), ("good.ron", &Scene::default())),
            Err(err) => assert_eq!(err.path(), path),
        }
    }
    let missing_dir = dir.path().join("nowhere");
    let err = scene::list_scenes(&missing_dir).expect_err("missing dir");
    assert!(err.to_string().starts_with(&prefix(&missing_dir, ": cannot read: ")), "{err}");
}
