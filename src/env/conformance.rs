//! Replays trajectories recorded from the real MiniGrid (JSONL, optionally gzipped) from
//! their recorded start state and reports every difference from duet's engine.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::grid::object::{Cell, Contents, Encoded};
use super::grid::task::RoomLayout;
use super::grid::{Action, Color, GridWorld, Level, ObjectType, Pos, Task};

/// One recorded trajectory, in the fixture format of `tests/fixtures/minigrid/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Trajectory {
    #[serde(default)]
    pub minigrid_version: String,
    pub env_id: String,
    #[serde(default)]
    pub seed: Option<i64>,
    pub width: usize,
    pub height: usize,
    /// `W*H` cells of `[type, color, state]`, index `x*H + y`.
    pub grid: Vec<[u8; 3]>,
    #[serde(default)]
    pub box_contents: BTreeMap<String, [u8; 3]>,
    pub agent_pos: [i32; 2],
    pub agent_dir: u8,
    pub max_steps: u32,
    pub mission: String,
    pub see_through_walls: bool,
    pub agent_view_size: usize,
    pub initial_obs: RecordedObs,
    pub steps: Vec<RecordedStep>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecordedObs {
    pub image: Vec<u8>,
    pub direction: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RecordedStep {
    pub action: usize,
    pub image: Vec<u8>,
    pub direction: u8,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub carrying: Option<[u8; 3]>,
    pub agent_pos: [i32; 2],
    pub agent_dir: u8,
}

/// Why a fixture could not be replayed at all (as opposed to replaying with mismatches).
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: not a trajectory: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
}

/// One difference between the recording and duet.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// `None` for the initial observation, else the step index (0-based).
    pub step: Option<usize>,
    pub field: &'static str,
    pub expected: String,
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            None => write!(f, "initial {}: expected {}, got {}", self.field, self.expected, self.actual),
            Some(s) => write!(f, "step {s} {}: expected {}, got {}", self.field, self.expected, self.actual),
        }
    }
}

/// The verdict on one trajectory.
#[derive(Debug, Clone)]
pub struct TrajectoryReport {
    pub line: usize,
    pub env_id: String,
    pub seed: Option<i64>,
    pub steps: usize,
    /// Setup problems (unknown env id, malformed grid); the trajectory fails without replay.
    pub setup_error: Option<String>,
    pub mismatches: Vec<Mismatch>,
}

impl TrajectoryReport {
    pub fn passed(&self) -> bool {
        self.setup_error.is_none() && self.mismatches.is_empty()
    }
}

/// Reads every trajectory of a `.jsonl` or `.jsonl.gz` file (blank lines skipped).
pub fn read_fixture(path: &Path) -> Result<Vec<(usize, Trajectory)>, FixtureError> {
    let io = |source| FixtureError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let trajectory = serde_json::from_str(&line).map_err(|e| FixtureError::Parse {
            path: path.to_path_buf(),
            line: index + 1,
            message: e.to_string(),
        })?;
        out.push((index + 1, trajectory));
    }
    Ok(out)
}

/// Builds the recorded start state, with the level's success rule.
pub fn start_state(t: &Trajectory) -> Result<GridWorld, String> {
    if t.width < 3 || t.height < 3 || t.grid.len() != t.width * t.height {
        return Err(format!("grid has {} cells, expected {}x{}", t.grid.len(), t.width, t.height));
    }
    let mut world = GridWorld::new(t.width, t.height);
    for x in 0..t.width {
        for y in 0..t.height {
            let encoded = t.grid[x * t.height + y];
            let cell = Cell::decode(encoded).ok_or_else(|| format!("bad cell {encoded:?} at ({x}, {y})"))?;
            world.set(Pos::new(x as i32, y as i32), cell);
        }
    }
    for (key, contents) in &t.box_contents {
        let pos = parse_pos_key(key).ok_or_else(|| format!("bad box position {key:?}"))?;
        match world.get(pos) {
            Cell::Box { color, .. } => {
                Cell::decode(*contents).ok_or_else(|| format!("bad box contents {contents:?}"))?;
                world.set(pos, Cell::Box { color, contents: Some(Contents(*contents)) });
            }
            other => return Err(format!("box contents given for {key} which holds {other:?}")),
        }
    }
    world.agent_pos = Pos::new(t.agent_pos[0], t.agent_pos[1]);
    world.agent_dir = t.agent_dir & 3;
    world.max_steps = t.max_steps;
    world.mission = t.mission.clone();
    world.see_through_walls = t.see_through_walls;
    if !(3..=super::grid::observation::MAX_VIEW).contains(&t.agent_view_size) || t.agent_view_size.is_multiple_of(2) {
        return Err(format!("unsupported agent_view_size {}", t.agent_view_size));
    }
    world.agent_view_size = t.agent_view_size;
    world.task = task_for_recording(&t.env_id, &world)?;
    Ok(world)
}

/// The success rule MiniGrid applies for `env_id`, rebuilt from the recorded start state:
/// duet's own level when it has one, else from the env family and the mission string. Envs
/// whose rules draw randomness or hidden state during steps (moving obstacles, Memory) are
/// refused rather than replayed wrongly.
pub fn task_for_recording(env_id: &str, world: &GridWorld) -> Result<Task, String> {
    let mission = world.mission.as_str();
    let unsupported = |why: &str| Err(format!("cannot replay {env_id}: {why}"));
    if let Some(level) = Level::from_name(env_id) {
        return level.task_for(world).ok_or_else(|| format!("cannot derive the task from mission {mission:?}"));
    }
    if env_id.starts_with("BabyAI-") {
        let rooms = infer_room_layout(world);
        return Task::babyai_from_mission(mission, world, &rooms)
            .map_or_else(|| unsupported(&format!("unsupported BabyAI mission {mission:?}")), Ok);
    }
    let family = env_id.strip_prefix("MiniGrid-").unwrap_or(env_id);
    let named = |text: &str| -> Option<(Color, ObjectType)> {
        let mut words = text.split_whitespace().rev();
        let object_type = ObjectType::from_name(words.next()?)?;
        Some((Color::from_name(words.next()?)?, object_type))
    };
    let first = |object_type: ObjectType, color: Color| {
        world.find_all(|c| c.object_type() == object_type && c.color() == Some(color)).first().copied()
    };
    if family.starts_with("Dynamic-Obstacles") || family.starts_with("Memory") || family.starts_with("Playground") {
        return unsupported("its rules move objects or hide the outcome during steps");
    }
    if family.starts_with("Fetch") {
        let (color, object_type) = named(mission).ok_or_else(|| format!("unexpected Fetch mission {mission:?}"))?;
        return Ok(Task::Fetch { object_type, color });
    }
    if family.starts_with("GoToDoor") || family.starts_with("GoToObject") {
        let target = named(mission)
            .and_then(|(color, object_type)| first(object_type, color))
            .ok_or_else(|| format!("no target for mission {mission:?}"))?;
        return Ok(Task::DoneNextTo { target });
    }
    if family.starts_with("RedBlueDoors") {
        let red = first(ObjectType::Door, Color::Red).ok_or("no red door")?;
        let blue = first(ObjectType::Door, Color::Blue).ok_or("no blue door")?;
        return Ok(Task::RedThenBlue { red, blue });
    }
    if family.starts_with("PutNear") {
        let (moved, fixed) = mission
            .strip_prefix("put the ")
            .and_then(|rest| rest.split_once(" near the "))
            .ok_or_else(|| format!("unexpected PutNear mission {mission:?}"))?;
        let (color, object_type) = named(moved).ok_or_else(|| format!("unexpected PutNear mission {mission:?}"))?;
        let target =
            named(fixed).and_then(|(c, t)| first(t, c)).ok_or_else(|| format!("no target for mission {mission:?}"))?;
        return Ok(Task::PutNear { object_type, color, target });
    }
    if family.starts_with("Unlock-") {
        return Ok(Task::OpenDoor);
    }
    if let Some((color, object_type)) = mission.strip_prefix("pick up the ").and_then(named) {
        // KeyCorridor, UnlockPickup, ObstructedMaze: `carrying == self.obj` after a pickup.
        return Ok(Task::pick_up_target(world, object_type, color));
    }
    // Goal and lava rules only: Empty, DoorKey, Crossing, LavaGap, DistShift, LockedRoom, ...
    Ok(Task::Navigate)
}

/// BabyAI's room grid, read off the walls: the smallest room size whose dividing lines are
/// all walls or doors (a single room when none fits).
pub fn infer_room_layout(world: &GridWorld) -> RoomLayout {
    let (w, h) = (world.width() as i32, world.height() as i32);
    let divides = |size: i32| {
        let step = size - 1;
        if (w - 1) % step != 0 || (h - 1) % step != 0 {
            return false;
        }
        let solid = |p: Pos| matches!(world.get(p), Cell::Wall(_) | Cell::Door { .. });
        (0..w).step_by(step as usize).all(|x| (0..h).all(|y| solid(Pos::new(x, y))))
            && (0..h).step_by(step as usize).all(|y| (0..w).all(|x| solid(Pos::new(x, y))))
    };
    let room_size = (3..=w.max(h)).find(|&s| divides(s)).unwrap_or(w.max(h));
    RoomLayout { room_size, num_cols: ((w - 1) / (room_size - 1)).max(1), num_rows: ((h - 1) / (room_size - 1)).max(1) }
}

fn parse_pos_key(key: &str) -> Option<Pos> {
    let (x, y) = key.split_once(',')?;
    Some(Pos::new(x.trim().parse().ok()?, y.trim().parse().ok()?))
}

/// Replays one trajectory and lists every field that differs, step by step.
pub fn replay(line: usize, t: &Trajectory) -> TrajectoryReport {
    let mut report = TrajectoryReport {
        line,
        env_id: t.env_id.clone(),
        seed: t.seed,
        steps: t.steps.len(),
        setup_error: None,
        mismatches: Vec::new(),
    };
    let mut world = match start_state(t) {
        Ok(w) => w,
        Err(e) => {
            report.setup_error = Some(e);
            return report;
        }
    };
    let mut push = |step, field, expected: String, actual: String| {
        report.mismatches.push(Mismatch { step, field, expected, actual });
    };
    let obs = world.observation();
    if obs != t.initial_obs.image {
        push(None, "image", image_diff(&t.initial_obs.image, &obs, t.agent_view_size), String::new());
    }
    if world.agent_dir != t.initial_obs.direction {
        push(None, "direction", t.initial_obs.direction.to_string(), world.agent_dir.to_string());
    }
    for (i, s) in t.steps.iter().enumerate() {
        let Some(action) = Action::from_index(s.action) else {
            push(Some(i), "action", "0..=6".into(), s.action.to_string());
            break;
        };
        let out = world.step(action);
        let obs = world.observation();
        if obs != s.image {
            push(Some(i), "image", image_diff(&s.image, &obs, t.agent_view_size), String::new());
        }
        if world.agent_dir != s.direction {
            push(Some(i), "direction", s.direction.to_string(), world.agent_dir.to_string());
        }
        if (out.reward as f64 - s.reward).abs() > 1e-5 {
            push(Some(i), "reward", s.reward.to_string(), out.reward.to_string());
        }
        if out.terminated != s.terminated {
            push(Some(i), "terminated", s.terminated.to_string(), out.terminated.to_string());
        }
        if out.truncated != s.truncated {
            push(Some(i), "truncated", s.truncated.to_string(), out.truncated.to_string());
        }
        let carrying: Option<Encoded> = (!world.carrying.is_empty()).then(|| world.carrying.encode());
        if carrying != s.carrying {
            push(Some(i), "carrying", format!("{:?}", s.carrying), format!("{carrying:?}"));
        }
        let pos = [world.agent_pos.x, world.agent_pos.y];
        if pos != s.agent_pos {
            push(Some(i), "agent_pos", format!("{:?}", s.agent_pos), format!("{pos:?}"));
        }
        if world.agent_dir != s.agent_dir {
            push(Some(i), "agent_dir", s.agent_dir.to_string(), world.agent_dir.to_string());
        }
    }
    report
}

/// Names the view cells that differ: "(vx,vy) expected [5,4,0] got [1,0,0]; …".
fn image_diff(expected: &[u8], actual: &[u8], view: usize) -> String {
    if expected.len() != actual.len() {
        return format!("{} values (got {})", expected.len(), actual.len());
    }
    let mut parts = Vec::new();
    for vx in 0..view {
        for vy in 0..view {
            let at = (vx * view + vy) * 3;
            if expected[at..at + 3] != actual[at..at + 3] {
                parts.push(format!("({vx},{vy}) {:?} vs {:?}", &expected[at..at + 3], &actual[at..at + 3]));
            }
        }
    }
    format!("cells (expected vs got): {}", parts.join("; "))
}

/// Totals over one or more fixture files.
#[derive(Debug, Default, Clone)]
pub struct ConformanceSummary {
    pub passed: usize,
    pub failed: usize,
    pub steps: usize,
    pub levels: std::collections::BTreeSet<String>,
}

impl ConformanceSummary {
    pub fn add(&mut self, report: &TrajectoryReport) {
        if report.passed() {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        self.steps += report.steps;
        self.levels.insert(report.env_id.clone());
    }
}

/// Replays every trajectory in `path`, returning one report per trajectory.
pub fn check_file(path: &Path) -> Result<Vec<TrajectoryReport>, FixtureError> {
    Ok(read_fixture(path)?.iter().map(|(line, t)| replay(*line, t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_fixture() -> String {
        // A 3x3 walled room is too small to move in; a 4x3 room lets the agent step onto a goal.
        let mut grid = Vec::new();
        for x in 0..4 {
            for y in 0..3 {
                let border = x == 0 || y == 0 || x == 3 || y == 2;
                grid.push(if border {
                    [2, 5, 0]
                } else if x == 2 {
                    [8, 1, 0]
                } else {
                    [1, 0, 0]
                });
            }
        }
        let world = {
            let mut w = GridWorld::new(4, 3);
            for x in 0..4 {
                for y in 0..3 {
                    w.set(Pos::new(x, y), Cell::decode(grid[(x * 3 + y) as usize]).unwrap());
                }
            }
            w.agent_pos = Pos::new(1, 1);
            w.max_steps = 10;
            w
        };
        let initial = world.observation();
        let mut after = world.clone();
        after.step(Action::Forward);
        let image = after.observation();
        serde_json::json!({
            "minigrid_version": "3.0.0", "env_id": "MiniGrid-Empty-5x5-v0", "seed": 0,
            "width": 4, "height": 3, "grid": grid, "box_contents": {},
            "agent_pos": [1, 1], "agent_dir": 0, "max_steps": 10, "mission": "get to the green goal square",
            "see_through_walls": false, "agent_view_size": 7,
            "initial_obs": {"image": initial, "direction": 0},
            "steps": [{"action": 2, "image": image, "direction": 0, "reward": 0.91,
                       "terminated": true, "truncated": false, "carrying": null,
                       "agent_pos": [2, 1], "agent_dir": 0}]
        })
        .to_string()
    }

    #[test]
    fn a_faithful_recording_passes_and_a_tampered_one_fails() {
        let line = tiny_fixture();
        let t: Trajectory = serde_json::from_str(&line).unwrap();
        let report = replay(1, &t);
        assert!(report.passed(), "{:?}", report.mismatches);

        let mut bad = t.clone();
        bad.steps[0].reward = 0.5;
        bad.steps[0].agent_pos = [1, 1];
        let report = replay(1, &bad);
        let fields: Vec<_> = report.mismatches.iter().map(|m| m.field).collect();
        assert_eq!(fields, vec!["reward", "agent_pos"]);
    }

    #[test]
    fn room_layouts_are_read_off_the_walls() {
        for level in [Level::OpenDoor, Level::GoToObj, Level::PickupLoc] {
            let world = level.generate(5);
            assert_eq!(Some(infer_room_layout(&world)), level.room_layout(world.width(), world.height()), "{level}");
        }
    }

    #[test]
    fn unknown_env_ids_get_their_family_rules() {
        let mut world = GridWorld::new(6, 6);
        world.wall_rect(0, 0, 6, 6);
        world.set(Pos::new(3, 3), Cell::Key(Color::Red));
        world.set(Pos::new(4, 1), Cell::Door { color: Color::Red, state: crate::env::grid::DoorState::Closed });
        world.set(Pos::new(1, 4), Cell::Door { color: Color::Blue, state: crate::env::grid::DoorState::Closed });
        world.mission = "fetch a red key".into();
        assert_eq!(
            task_for_recording("MiniGrid-Fetch-5x5-N2-v0", &world),
            Ok(Task::Fetch { object_type: ObjectType::Key, color: Color::Red })
        );
        world.mission = "go to the red door".into();
        assert_eq!(
            task_for_recording("MiniGrid-GoToDoor-5x5-v0", &world),
            Ok(Task::DoneNextTo { target: Pos::new(4, 1) })
        );
        assert_eq!(
            task_for_recording("MiniGrid-RedBlueDoors-6x6-v0", &world),
            Ok(Task::RedThenBlue { red: Pos::new(4, 1), blue: Pos::new(1, 4) })
        );
        world.mission = "get to the green goal square".into();
        assert_eq!(task_for_recording("MiniGrid-LavaGapS5-v0", &world), Ok(Task::Navigate));
        assert!(task_for_recording("MiniGrid-Dynamic-Obstacles-5x5-v0", &world).is_err());
    }

    #[test]
    fn fetch_and_done_next_to_rules_behave_like_minigrid() {
        let mut world = GridWorld::new(5, 5);
        world.wall_rect(0, 0, 5, 5);
        world.max_steps = 20;
        world.agent_pos = Pos::new(1, 1);
        world.set(Pos::new(2, 1), Cell::Ball(Color::Blue));
        world.task = Task::Fetch { object_type: ObjectType::Key, color: Color::Red };
        let out = world.step(Action::Pickup);
        assert!(out.terminated && out.reward == 0.0, "the wrong object ends the episode without reward");
        let mut world = GridWorld::new(5, 5);
        world.wall_rect(0, 0, 5, 5);
        world.max_steps = 20;
        world.agent_pos = Pos::new(1, 1);
        world.task = Task::DoneNextTo { target: Pos::new(1, 2) };
        let out = world.step(Action::Done);
        assert!(out.terminated && out.reward > 0.0);
    }

    #[test]
    fn reads_plain_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, format!("{}\n\n{}\n", tiny_fixture(), tiny_fixture())).unwrap();
        assert_eq!(read_fixture(&plain).unwrap().len(), 2);
        let gz = dir.path().join("a.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, tiny_fixture().as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_fixture(&gz).unwrap().len(), 1);
        let broken = dir.path().join("b.jsonl");
        std::fs::write(&broken, "{not json}\n").unwrap();
        let err = read_fixture(&broken).unwrap_err().to_string();
        assert!(err.contains("b.jsonl:1:"), "{err}");
    }
}
