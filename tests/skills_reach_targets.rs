//! Skills and the oracle on every preset level, seeds 0..500: each applicable skill reaches its
//! target condition planning from the agent's own fog of war, and the oracle's greedy rollout wins.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use duet::env::grid::planner::{Reachability, chokepoints};
use duet::env::grid::{Action, Cell, Color, DoorState, FogOfWar, GridWorld, Level, Pos};
use duet::skills::{
    Carryable, Item, SkillStep, Target, TeacherOption, TrueState, oracle_advice, oracle_needs_true_state, skill_action,
};

const SEEDS: u64 = 500;

/// Failures listed in full before the rest are only counted.
const FAILURES_SHOWN: usize = 5;

/// A world stepped by skills, with the fog of what its agent has seen (as the student's
/// historical observation tracks it).
struct Walker {
    world: GridWorld,
    fog: FogOfWar,
    steps: u32,
    skill_calls: u64,
    skill_time: Duration,
}

impl Walker {
    fn new(world: &GridWorld) -> Walker {
        Walker {
            fog: FogOfWar::for_world(world),
            world: world.clone(),
            steps: 0,
            skill_calls: 0,
            skill_time: Duration::ZERO,
        }
    }

    fn step(&mut self, action: Action) {
        self.world.step(action);
        self.fog.reveal(&self.world);
        self.steps += 1;
    }

    fn ask(&mut self, option: TeacherOption) -> SkillStep {
        self.skill_calls += 1;
        let timer = Instant::now();
        let step = skill_action(option, &self.world, &self.fog);
        self.skill_time += timer.elapsed();
        step
    }

    /// Whether the agent has seen something `option` acts on.
    fn sees_target_of(&self, option: TeacherOption) -> bool {
        let wanted = |cell: Cell| match option {
            TeacherOption::GoTo(target) => target.matches(cell),
            TeacherOption::PickUp(item) => item.matches(cell),
            TeacherOption::OpenDoor(color) => matches!(cell, Cell::Door { color: c, .. } if c == color),
            TeacherOption::OpenBox(color) => matches!(cell, Cell::Box { color: c, .. } if c == color),
            TeacherOption::Explore | TeacherOption::Drop => true,
            // Embodied options name nothing in a grid.
            TeacherOption::GoToPlace(_)
            | TeacherOption::GoToObject(_)
            | TeacherOption::PickUpObject(_)
            | TeacherOption::PlaceObject(_) => false,
        };
        let (width, height) = (self.world.width() as i32, self.world.height() as i32);
        (0..height)
            .any(|y| (0..width).any(|x| self.fog.is_seen(Pos::new(x, y)) && wanted(self.world.get(Pos::new(x, y)))))
    }

    /// Runs `option` until its skill reports done: first exploring until its target is seen,
    /// then exploring whenever the skill cannot act yet; fails past `bound` total steps or
    /// when stuck.
    fn run(&mut self, option: TeacherOption, bound: u32) -> Result<(), String> {
        while !self.sees_target_of(option) {
            match self.ask(TeacherOption::Explore) {
                SkillStep::Act(action) if self.steps < bound => self.step(action),
                _ => return Err(format!("{option}: target never seen")),
            }
        }
        loop {
            if self.steps >= bound {
                return Err(format!("{option}: not done within {bound} steps"));
            }
            match self.ask(option) {
                SkillStep::Done => return Ok(()),
                SkillStep::Act(action) => self.step(action),
                SkillStep::Impossible => match self.ask(TeacherOption::Explore) {
                    SkillStep::Act(action) => self.step(action),
                    _ => return Err(format!("{option}: impossible with nothing left to explore")),
                },
            }
        }
    }
}

/// One skill check: options run in order from the level's start, then a condition.
struct SkillCheck {
    options: Vec<TeacherOption>,
    holds: Box<dyn Fn(&Walker) -> bool>,
}

/// The checks that apply to a start state: every target, item, door and box the agent can
/// reach without changing the grid, plus exploring and dropping.
fn checks_for(start: &GridWorld) -> Vec<SkillCheck> {
    let reach = Reachability::from_agent(start);
    let faceable = |p: Pos| reach.nearest_facing(p).is_some();
    let mut cells = BTreeSet::new();
    for y in 0..start.height() as i32 {
        for x in 0..start.width() as i32 {
            let p = Pos::new(x, y);
            if faceable(p) {
                cells.insert((Target::of_cell(start.get(p)), start.get(p).encode()));
            }
        }
    }
    let mut checks = vec![explore_check(start)];
    let mut first_item = None;
    for (target, [_, _, state]) in cells {
        let Some(target) = target else { continue };
        checks.push(go_to_check(target));
        match target {
            Target::Item(item) => {
                first_item.get_or_insert(item);
                checks.push(pick_up_check(item));
                if item.kind == Carryable::Box {
                    checks.push(open_box_check(start, item.color));
                }
            }
            Target::Door(color) if state == DoorState::Closed as u8 => checks.push(open_door_check(vec![], color)),
            Target::Door(color) if state == DoorState::Locked as u8 => {
                let key = Item::new(Carryable::Key, color);
                let key_faceable = start.find_all(|cell| key.matches(cell)).into_iter().any(faceable);
                if key_faceable {
                    checks.push(open_door_check(vec![TeacherOption::PickUp(key)], color));
                }
            }
            _ => {}
        }
    }
    checks.extend(first_item.map(drop_check));
    checks
}

/// Exploring ends with every cell beside a truly reachable pose seen.
fn explore_check(start: &GridWorld) -> SkillCheck {
    let reach = Reachability::from_agent(start);
    let mut fronts = Vec::new();
    for y in 0..start.height() as i32 {
        for x in 0..start.width() as i32 {
            for dir in 0..4u8 {
                let pose = duet::env::grid::planner::Pose::new(Pos::new(x, y), dir);
                if reach.distance(pose).is_some() && start.in_bounds(pose.front()) {
                    fronts.push(pose.front());
                }
            }
        }
    }
    SkillCheck {
        options: vec![TeacherOption::Explore],
        holds: Box::new(move |walker| fronts.iter().all(|&p| walker.fog.is_seen(p))),
    }
}

fn go_to_check(target: Target) -> SkillCheck {
    SkillCheck {
        options: vec![TeacherOption::GoTo(target)],
        holds: Box::new(move |walker| match target {
            Target::Goal => walker.world.get(walker.world.agent_pos) == Cell::Goal,
            _ => target.matches(walker.world.get(walker.world.front_pos())),
        }),
    }
}

fn pick_up_check(item: Item) -> SkillCheck {
    SkillCheck {
        options: vec![TeacherOption::PickUp(item)],
        holds: Box::new(move |walker| item.matches(walker.world.carrying)),
    }
}

fn open_door_check(before: Vec<TeacherOption>, color: Color) -> SkillCheck {
    let mut options = before;
    options.push(TeacherOption::OpenDoor(color));
    SkillCheck {
        options,
        holds: Box::new(move |walker| {
            !walker.world.find_all(|cell| cell == Cell::Door { color, state: DoorState::Open }).is_empty()
        }),
    }
}

fn open_box_check(start: &GridWorld, color: Color) -> SkillCheck {
    let is_box = move |cell: Cell| matches!(cell, Cell::Box { color: c, .. } if c == color);
    let boxes_before = start.find_all(is_box).len();
    SkillCheck {
        options: vec![TeacherOption::OpenBox(color)],
        holds: Box::new(move |walker| walker.world.find_all(is_box).len() < boxes_before),
    }
}

/// Picking up then dropping leaves the hands empty (where it lands is tallied separately).
fn drop_check(item: Item) -> SkillCheck {
    SkillCheck {
        options: vec![TeacherOption::PickUp(item), TeacherOption::Drop],
        holds: Box::new(|walker| walker.world.carrying.is_empty()),
    }
}

/// Skill outcomes over many start states.
#[derive(Default)]
struct SkillTally {
    checks: usize,
    steps: u64,
    calls: u64,
    call_time: Duration,
    drops: usize,
    drops_on_chokepoints: usize,
    failures: Vec<String>,
}

impl SkillTally {
    fn run(&mut self, seed: u64, start: &GridWorld) {
        let bound = 4 * (start.width() * start.height()) as u32;
        for check in checks_for(start) {
            let mut walker = Walker::new(start);
            let outcome = check.options.iter().try_for_each(|&option| walker.run(option, bound));
            let verdict = outcome
                .and_then(|()| if (check.holds)(&walker) { Ok(()) } else { Err("condition does not hold".into()) });
            self.checks += 1;
            self.steps += walker.steps as u64;
            self.calls += walker.skill_calls;
            self.call_time += walker.skill_time;
            if check.options.last() == Some(&TeacherOption::Drop) && verdict.is_ok() {
                let spot = walker.world.front_pos();
                self.drops += 1;
                self.drops_on_chokepoints +=
                    chokepoints(&walker.world)[spot.y as usize * walker.world.width() + spot.x as usize] as usize;
            }
            if let Err(why) = verdict {
                let names: Vec<String> = check.options.iter().map(TeacherOption::phrase).collect();
                self.failures.push(format!(
                    "seed {seed} [{}]: {why}\n{start}\nended at:\n{}",
                    names.join(", "),
                    walker.world
                ));
            }
        }
    }
}

#[test]
fn every_applicable_skill_reaches_its_target() {
    let started = Instant::now();
    let mut all_failures = Vec::new();
    let (mut total_calls, mut total_call_time) = (0u64, Duration::ZERO);
    for level in Level::presets() {
        let timer = Instant::now();
        let mut tally = SkillTally::default();
        for seed in 0..SEEDS {
            tally.run(seed, &level.generate(seed));
        }
        total_calls += tally.calls;
        total_call_time += tally.call_time;
        println!(
            "{:<20} {:>5} checks, {:>3} failed, {:>6.1} steps/check, drops on chokepoints {:>2}/{:>3}, {:>5.1} us/skill call, {:.2}s",
            level.name(),
            tally.checks,
            tally.failures.len(),
            tally.steps as f64 / tally.checks.max(1) as f64,
            tally.drops_on_chokepoints,
            tally.drops,
            tally.call_time.as_secs_f64() * 1e6 / tally.calls.max(1) as f64,
            timer.elapsed().as_secs_f64()
        );
        all_failures.extend(tally.failures.into_iter().map(|f| format!("{}: {f}", level.name())));
    }
    println!(
        "skills: {total_calls} skill_action calls, ~{:.0} calls/s on one thread; whole test {:.2}s",
        total_calls as f64 / total_call_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let shown: Vec<&str> = all_failures.iter().take(FAILURES_SHOWN).map(String::as_str).collect();
    assert!(all_failures.is_empty(), "{} skill checks failed\n{}", all_failures.len(), shown.join("\n\n"));
}

/// How one greedy oracle rollout ended.
struct Rollout {
    success: bool,
    steps: u32,
    calls: u64,
    call_time: Duration,
    end: GridWorld,
}

/// Follows the oracle's most likely action on the real engine until the episode ends.
fn roll_out(start: &GridWorld, all_seeing: bool) -> Rollout {
    let mut world = start.clone();
    let mut fog = FogOfWar::for_world(&world);
    let (mut calls, mut call_time) = (0, Duration::ZERO);
    loop {
        calls += 1;
        let timer = Instant::now();
        let advice = if all_seeing { oracle_advice(&world, &TrueState) } else { oracle_advice(&world, &fog) };
        call_time += timer.elapsed();
        let outcome = world.step(advice.best_action());
        if outcome.done() {
            let success = outcome.terminated && outcome.reward > 0.0;
            return Rollout { success, steps: world.step_count, calls, call_time, end: world };
        }
        fog.reveal(&world);
    }
}

#[test]
fn greedy_oracle_rollouts_succeed() {
    let started = Instant::now();
    let mut all_failures = Vec::new();
    let (mut total_calls, mut total_call_time) = (0u64, Duration::ZERO);
    for level in Level::presets() {
        let asserted = oracle_needs_true_state(&level);
        let mut summary = Vec::new();
        for all_seeing in [false, true] {
            let (mut wins, mut steps, mut calls, mut call_time) = (0u64, 0u64, 0u64, Duration::ZERO);
            for seed in 0..SEEDS {
                let start = level.generate(seed);
                let rollout = roll_out(&start, all_seeing);
                calls += rollout.calls;
                call_time += rollout.call_time;
                if rollout.success {
                    wins += 1;
                    steps += rollout.steps as u64;
                } else if all_seeing == asserted {
                    all_failures.push(format!("{} seed {seed}:\n{start}\nended at:\n{}", level.name(), rollout.end));
                }
            }
            total_calls += calls;
            total_call_time += call_time;
            let mode = if all_seeing { "true state" } else { "seen only " };
            let marker = if all_seeing == asserted { "*" } else { " " };
            summary.push(format!(
                "{marker}{mode} {:>5.1}% won, {:>5.1} steps, {:>5.1} us/call",
                100.0 * wins as f64 / SEEDS as f64,
                steps as f64 / wins.max(1) as f64,
                call_time.as_secs_f64() * 1e6 / calls.max(1) as f64
            ));
        }
        println!("{:<20} {}", level.name(), summary.join(" |"));
    }
    println!(
        "oracle (* = asserted): {total_calls} oracle_advice calls, ~{:.0} calls/s on one thread; whole test {:.2}s",
        total_calls as f64 / total_call_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let shown: Vec<&str> = all_failures.iter().take(FAILURES_SHOWN).map(String::as_str).collect();
    assert!(all_failures.is_empty(), "{} oracle rollouts failed\n{}", all_failures.len(), shown.join("\n\n"));
}
