use std::sync::Arc;

use super::*;
use crate::env::embodied::ObjectPlace;
use crate::env::embodied::world::Pose;

fn plan(name: &str) -> Arc<FloorPlan> {
    crate::env::embodied::shipped_plan(&format!("{name}.ron"))
}

fn env(plan: &Arc<FloorPlan>, task: usize, seed: u64) -> EmbodiedEnv {
    let mut env = EmbodiedEnv::new(Arc::clone(plan), task).expect("task");
    env.reset(seed);
    env
}

/// Runs the oracle for one episode; returns (success, steps).
fn oracle_episode(env: &mut EmbodiedEnv) -> (bool, u32) {
    loop {
        let action = embodied_oracle_advice(env).action();
        let result = env.step(action);
        if result.done {
            return (result.success, env.steps);
        }
    }
}

#[test]
fn the_oracle_solves_both_tasks_in_both_apartments() {
    for name in ["apartment-1", "apartment-2"] {
        let plan = plan(name);
        for task in 0..plan.file.tasks.len() {
            let (mut wins, mut steps) = (0, 0);
            let mut failures = Vec::new();
            for seed in 0..500 {
                let mut env = env(&plan, task, seed);
                let (success, length) = oracle_episode(&mut env);
                if success {
                    wins += 1;
                    steps += length;
                } else if failures.len() < 5 {
                    failures.push(seed);
                }
            }
            let rate = wins as f64 / 500.0;
            eprintln!(
                "{name} task {task}: oracle success {rate:.3}, mean length {:.1}",
                steps as f64 / wins.max(1) as f64
            );
            assert!(rate >= 0.98, "{name} task {task}: oracle success {rate} (failed seeds {failures:?})");
        }
    }
}

/// Follows `option` until its skill says done (true) or gives up (false), at most `limit` steps.
fn follow_until_done(env: &mut EmbodiedEnv, option: TeacherOption, limit: usize) -> bool {
    for _ in 0..limit {
        match embodied_skill_action(option, env) {
            EmbodiedSkillStep::Done => return true,
            EmbodiedSkillStep::Impossible => return false,
            EmbodiedSkillStep::Act(action) => {
                env.step(action);
            }
        }
    }
    false
}

#[test]
fn skills_reach_rooms_furniture_and_objects_on_500_seeds() {
    for name in ["apartment-1", "apartment-2"] {
        let plan = plan(name);
        let receptacles: Vec<usize> =
            (0..plan.file.furniture.len()).filter(|&i| plan.file.furniture[i].receptacle).collect();
        let mut failures = Vec::new();
        for seed in 0..500u64 {
            let room = PlaceName::new(&plan.file.rooms[seed as usize % plan.file.rooms.len()].name).expect("name");
            let receptacle = receptacles[seed as usize % receptacles.len()];
            let furniture = PlaceName::new(&plan.file.furniture[receptacle].name).expect("name");
            let kind = plan.file.objects[seed as usize % plan.file.objects.len()].kind;
            // Each skill from a fresh episode, with a generous limit (the plan allows 500 steps).
            for option in
                [TeacherOption::GoToPlace(room), TeacherOption::GoToPlace(furniture), TeacherOption::GoToObject(kind)]
            {
                let mut env = env(&plan, 0, seed);
                env.max_steps = 10_000;
                if !follow_until_done(&mut env, option, 400) {
                    failures.push(format!("seed {seed}: {option}"));
                }
            }
            // Pick up, carry to the receptacle, place.
            let mut env = env(&plan, 0, seed);
            env.max_steps = 10_000;
            let carried = follow_until_done(&mut env, TeacherOption::PickUpObject(kind), 400)
                && follow_until_done(&mut env, TeacherOption::GoToPlace(furniture), 400)
                && follow_until_done(&mut env, TeacherOption::PlaceObject(kind), 5);
            if !carried {
                failures.push(format!("seed {seed}: carry the {kind} to the {furniture}"));
            } else {
                assert!(env.world.held.is_none());
                assert!(
                    env.world.objects.iter().any(|o| o.kind == kind && o.place == ObjectPlace::OnFurniture(receptacle))
                );
            }
        }
        eprintln!("{name}: {} of 2000 skill runs failed", failures.len());
        assert!(
            failures.len() <= 30,
            "{name}: {} of 2000 skill runs failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(10)]
        );
    }
}

#[test]
fn explore_visits_every_room() {
    let plan = plan("apartment-1");
    for seed in 0..50 {
        let mut env = env(&plan, 0, seed);
        env.max_steps = 10_000;
        assert!(follow_until_done(&mut env, TeacherOption::Explore, 2000), "seed {seed}");
        assert!((0..plan.file.rooms.len()).all(|room| env.has_visited(room)));
    }
}

#[test]
fn the_menu_lists_what_is_in_view_and_the_other_rooms() {
    let plan = plan("apartment-1");
    let mut env = env(&plan, 1, 1);
    // In the kitchen, facing the kitchen table from its east side.
    env.world.pose = Pose { x: 3.0, z: 2.3, heading: 6 };
    let menu = embodied_options(&env);
    let phrases: Vec<String> = menu.iter().map(TeacherOption::phrase).collect();
    for expected in
        ["explore", "go to the living room", "go to the bedroom", "go to the study", "go to the kitchen table"]
    {
        assert!(phrases.contains(&expected.to_owned()), "{expected} missing from {phrases:?}");
    }
    assert!(!phrases.contains(&"go to the kitchen".to_owned()), "the room the agent is in: {phrases:?}");
    assert!(!phrases.iter().any(|p| p.starts_with("place")), "nothing held: {phrases:?}");
    // Every phrase reads back as its option.
    for option in menu {
        assert_eq!(TeacherOption::parse(&option.phrase()), Ok(option));
    }
    for phrase in ["go to the apple", "pick up the mug", "place the book", "go to the coffee table"] {
        assert_eq!(TeacherOption::parse(phrase).map(|o| o.phrase()).as_deref(), Ok(phrase));
    }
}
