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
        let grid = scene.grid().unwrap_or_else(|| panic!("{}: not a grid scene", path.display()));
        // Written out and read back, a shipped scene is unchanged.
        assert_eq!(Scene::parse(&scene.to_ron_string(), path).ok().as_ref(), Some(scene), "{}", path.display());
        // The commented-out max_steps each file shows is the level's own limit.
        let text = fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let shown = format!("// max_steps: {},", grid.level.default_max_steps());
        assert!(text.contains(&shown), "{}: expected the comment `{shown}`", path.display());
        assert!(text.starts_with("// "), "{}: expected a comment header", path.display());
    }
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
        prefix(&bad_field, ":3:5: unknown field `sed` in `Scene`; expected one of `name`, `seed`, `env`, `student`, `teacher`")
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
