//! Every preset level is solvable: for seeds 0..1000 the planner finds a winning action
//! sequence, replayed on a fresh copy to confirm the engine itself ends it in success.

use std::path::Path;
use std::time::Instant;

use duet::env::conformance::{read_fixture, start_state};
use duet::env::grid::planner::{SolveBudget, solve_with_report};
use duet::env::grid::{Action, GridWorld, Level};

const SEEDS: u64 = 1000;

/// Failures listed in full before the rest are only counted.
const FAILURES_SHOWN: usize = 5;

/// Replays `plan` from `world`: only the last step may end the episode, and it must succeed.
fn replay_wins(world: &GridWorld, plan: &[Action]) -> Result<(), String> {
    let mut replay = world.clone();
    let Some((last, walk)) = plan.split_last() else { return Err("empty plan".into()) };
    for (i, &action) in walk.iter().enumerate() {
        let outcome = replay.step(action);
        if outcome.done() {
            return Err(format!("step {i} ({}) ended the episode: {outcome:?}", action.name()));
        }
    }
    let outcome = replay.step(*last);
    if outcome.terminated && outcome.reward > 0.0 {
        Ok(())
    } else {
        Err(format!("the last step ({}) did not succeed: {outcome:?}", last.name()))
    }
}

/// Solve statistics over many start states.
#[derive(Default)]
struct Tally {
    solved: usize,
    total_plan_len: usize,
    longest_plan: usize,
    most_expanded: usize,
    failures: Vec<String>,
}

impl Tally {
    fn check(&mut self, label: &str, world: &GridWorld) {
        let report = solve_with_report(world, SolveBudget::default());
        self.most_expanded = self.most_expanded.max(report.expanded);
        let verdict = match report.plan {
            None => Err(format!("no plan within {} expansions", report.expanded)),
            Some(plan) => replay_wins(world, &plan).map(|()| plan.len()),
        };
        match verdict {
            Ok(len) => {
                self.solved += 1;
                self.total_plan_len += len;
                self.longest_plan = self.longest_plan.max(len);
            }
            Err(why) => self.failures.push(format!("{label}: {why}\n{world}")),
        }
    }

    fn summary(&self, name: &str, seconds: f64) -> String {
        let mean = self.total_plan_len as f64 / self.solved.max(1) as f64;
        format!(
            "{name}: {} solved, {} failed, mean plan {mean:.1} steps, longest {}, max expanded {}, {seconds:.2}s",
            self.solved,
            self.failures.len(),
            self.longest_plan,
            self.most_expanded
        )
    }

    fn assert_all_solved(&self, name: &str) {
        if self.failures.is_empty() {
            return;
        }
        let shown: Vec<&str> = self.failures.iter().take(FAILURES_SHOWN).map(String::as_str).collect();
        panic!("{name}: {} unsolved\n{}", self.failures.len(), shown.join("\n\n"));
    }
}

fn check_level(level: Level) {
    let name = level.name();
    let clock = Instant::now();
    let mut tally = Tally::default();
    for seed in 0..SEEDS {
        tally.check(&format!("seed {seed}"), &level.generate(seed));
    }
    println!("{}", tally.summary(&name, clock.elapsed().as_secs_f64()));
    tally.assert_all_solved(&name);
}

/// One test per preset, so each level passes or fails on its own.
macro_rules! solvable_levels {
    ($($test:ident => $level:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_level($level);
            }
        )*

        #[test]
        fn every_preset_has_a_test() {
            let mut tested: Vec<String> = vec![$($level.name()),*];
            let mut presets: Vec<String> = Level::presets().iter().map(Level::name).collect();
            tested.sort();
            presets.sort();
            assert_eq!(tested, presets, "add a line to solvable_levels! for each new preset");
        }
    };
}

solvable_levels! {
    empty_5x5 => Level::Empty { size: 5 },
    empty_8x8 => Level::Empty { size: 8 },
    empty_16x16 => Level::Empty { size: 16 },
    door_key_5x5 => Level::DoorKey { size: 5 },
    door_key_6x6 => Level::DoorKey { size: 6 },
    door_key_8x8 => Level::DoorKey { size: 8 },
    door_key_16x16 => Level::DoorKey { size: 16 },
    simple_door_key => Level::SimpleDoorKey,
    lava_door_key => Level::LavaDoorKey,
    colored_door_key => Level::ColoredDoorKey,
    two_door => Level::TwoDoor,
    key_corridor_s3r1 => Level::KeyCorridor { num_rows: 1, room_size: 3 },
    key_corridor_s3r2 => Level::KeyCorridor { num_rows: 2, room_size: 3 },
    key_corridor_s3r3 => Level::KeyCorridor { num_rows: 3, room_size: 3 },
    unlock_pickup => Level::UnlockPickup,
    blocked_unlock_pickup => Level::BlockedUnlockPickup,
    four_rooms => Level::FourRooms,
    lava_crossing_s9n1 => Level::LavaCrossing { size: 9, num_crossings: 1 },
    multi_room_n2_s4 => Level::MultiRoom { num_rooms: 2, max_room_size: 4 },
    go_to_red_ball_no_dists => Level::GoToRedBallNoDists,
    go_to_obj => Level::GoToObj,
    pickup_loc => Level::PickupLoc,
    open_door => Level::OpenDoor,
}

/// Start states recorded from the real MiniGrid 3.0 are solvable too (independent of our
/// generators). Only those whose recorded episode succeeded count: some fixtures start from
/// deliberately odd states that no plan can win.
#[test]
fn recorded_minigrid_start_states_are_solvable() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minigrid");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut failed = Vec::new();
    for path in paths {
        let clock = Instant::now();
        let mut tally = Tally::default();
        let trajectories = read_fixture(&path).unwrap_or_else(|e| panic!("{e}"));
        let won = trajectories.iter().filter(|(_, t)| t.steps.last().is_some_and(|s| s.terminated && s.reward > 0.0));
        for (line, trajectory) in won {
            match start_state(trajectory) {
                Ok(world) => tally.check(&format!("{} line {line}", path.display()), &world),
                Err(why) => tally.failures.push(format!("{} line {line}: {why}", path.display())),
            }
        }
        let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        println!("{}", tally.summary(&name, clock.elapsed().as_secs_f64()));
        failed.extend(tally.failures);
    }
    let shown: Vec<&str> = failed.iter().take(FAILURES_SHOWN).map(String::as_str).collect();
    assert!(failed.is_empty(), "{} recorded start states unsolved\n{}", failed.len(), shown.join("\n\n"));
}
