//! Tests for embodied scenes: scene files and their errors, collisions, rays, pick and place,
//! tasks and determinism, on the shipped apartments and small hand-made plans.

use std::sync::Arc;

use super::plan::{FloorPlan, ObjectKind};
use super::task::{EmbodiedEnv, Task, layout, measure_steps_per_second};
use super::world::{AGENT_RADIUS, Action, Hit, Object, ObjectPlace, Outcome, Pose, SemanticClass, World};

fn apartment(name: &str) -> Arc<FloorPlan> {
    super::shipped_plan(name)
}

/// A 6 m x 6 m room; `extra` adds walls/doors/furniture entries, `objects` the object rules.
fn room_plan(walls: &str, doors: &str, furniture: &str, objects: &str, tasks: &str) -> String {
    format!(
        r#"FloorPlan(
            name: "test", rooms: [(name: "hall", rect: (min: (0.0, 0.0), max: (6.0, 6.0)))],
            walls: [{walls}], doors: [{doors}], furniture: [{furniture}], objects: [{objects}],
            tasks: [{tasks}], max_steps: 50)"#
    )
}

fn parse(text: &str) -> Arc<FloorPlan> {
    Arc::new(FloorPlan::parse(text, "test.ron").unwrap_or_else(|err| panic!("{err}")))
}

fn parse_error(text: &str) -> String {
    match FloorPlan::parse(text, "bad.ron") {
        Ok(_) => panic!("the plan should have been rejected"),
        Err(err) => err.to_string(),
    }
}

const TABLE: &str = r#"(name: "table", kind: Table, rect: (min: (3.0, 2.5), max: (4.0, 3.5)), height: 0.75)"#;
const APPLE_ON_TABLE: &str = r#"(kind: Apple, on: [Furniture("table")])"#;
const NAV_APPLE: &str = "ObjectNav(object: Apple)";

fn world_with(plan: &Arc<FloorPlan>, x: f32, z: f32, heading: u8) -> World {
    let mut world = World::new(Arc::clone(plan));
    world.reset(0, None);
    world.pose = Pose { x, z, heading };
    world
}

#[test]
fn shipped_apartments_load_and_place_objects_by_their_rules() {
    for name in ["apartment-1.ron", "apartment-2.ron"] {
        let plan = apartment(name);
        for task_index in 0..plan.file.tasks.len() {
            let mut env = EmbodiedEnv::new(Arc::clone(&plan), task_index).expect("task exists");
            for seed in 0..200 {
                env.reset(seed);
                assert!(env.world.is_free(env.world.pose.x, env.world.pose.z), "{name} seed {seed}: start blocked");
                for (rule, object) in plan.file.objects.iter().zip(&env.world.objects) {
                    assert_eq!(rule.kind, object.kind);
                    match object.place {
                        ObjectPlace::OnFurniture(f) => {
                            let piece = &plan.file.furniture[f];
                            assert!(rule.on.contains(&super::plan::Support::Furniture(piece.name.clone())));
                            assert!(piece.rect.contains(object.x, object.z), "{name}: object off its receptacle");
                        }
                        ObjectPlace::Floor => {
                            let room = plan.room_at(object.x, object.z).expect("object on the floor of a room");
                            assert!(rule.on.contains(&super::plan::Support::Floor(room.to_owned())));
                        }
                        ObjectPlace::Held => panic!("nothing is held at reset"),
                    }
                }
                if matches!(env.task, Task::PickPlace { .. }) {
                    assert!(!env.is_success(), "{name} seed {seed}: task {task_index} done at reset");
                }
            }
        }
    }
}

#[test]
fn scene_file_errors_name_the_file_and_the_problem() {
    let overlapping =
        format!("{TABLE}, {}", r#"(name: "chair", kind: Desk, rect: (min: (3.5, 3.0), max: (4.5, 4.0)), height: 0.5)"#);
    let err = parse_error(&room_plan("", "", &overlapping, APPLE_ON_TABLE, NAV_APPLE));
    assert!(err.starts_with("bad.ron: ") && err.contains("`table` and `chair` overlap"), "{err}");

    let unknown = r#"(kind: Apple, on: [Furniture("fridge")])"#;
    let err = parse_error(&room_plan("", "", TABLE, unknown, NAV_APPLE));
    assert!(err.contains("unknown receptacle `fridge`") && err.contains("table"), "{err}");

    let wall = "(from: (3.0, 0.0), to: (3.0, 6.0))";
    let err = parse_error(&room_plan(wall, "(at: (2.0, 2.0), width: 0.9)", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    assert!(err.contains("door at (2.0, 2.0) is not on any wall"), "{err}");
    let err = parse_error(&room_plan(wall, "(at: (3.0, 0.2), width: 0.9)", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    assert!(err.contains("does not fit inside wall 1"), "{err}");

    let diagonal = "(from: (0.0, 0.0), to: (3.0, 3.0))";
    let err = parse_error(&room_plan(diagonal, "", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    assert!(err.contains("wall 1") && err.contains("axis-aligned"), "{err}");

    let err = parse_error(&room_plan("", "", TABLE, APPLE_ON_TABLE, "ObjectNav(object: Mug)"));
    assert!(err.contains("task names Mug, but no object rule places one"), "{err}");

    let err =
        parse_error(&room_plan("", "", TABLE, APPLE_ON_TABLE, r#"PickPlace(object: Apple, receptacle: "table")"#));
    assert!(err.contains("can start only on `table`"), "{err}");

    let err = parse_error(&room_plan("", "", TABLE, r#"(kind: Apple, on: [Floor("attic")])"#, NAV_APPLE));
    assert!(err.contains("unknown room `attic`"), "{err}");

    // Unknown fields and variants are caught by the parser with a position.
    let err =
        parse_error(&room_plan("", "", TABLE, r#"(kind: Apple, on: [Furniture("table")], colour: 1)"#, NAV_APPLE));
    assert!(err.starts_with("bad.ron:3:") && err.contains("colour"), "{err}");
    let err = parse_error(&room_plan("", "", TABLE, r#"(kind: Banana, on: [Furniture("table")])"#, NAV_APPLE));
    assert!(err.contains("Banana"), "{err}");

    // A file that cannot be read names itself too.
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere.ron");
    let err = FloorPlan::load(&missing).expect_err("missing file").to_string();
    assert!(err.contains("nowhere.ron") && err.contains("cannot read"), "{err}");
    let file = dir.path().join("overlap.ron");
    std::fs::write(&file, room_plan("", "", &overlapping, APPLE_ON_TABLE, NAV_APPLE)).expect("write");
    let err = FloorPlan::load(&file).expect_err("overlap").to_string();
    assert!(err.contains("overlap.ron") && err.contains("overlap"), "{err}");
}

#[test]
fn moves_never_tunnel_through_a_thin_wall_at_any_heading() {
    // A 0.1 m wall at x = 3 splits the room with no door.
    let plan = parse(&room_plan("(from: (3.0, 0.0), to: (3.0, 6.0))", "", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    let limit = 3.0 - 0.05 - AGENT_RADIUS;
    for heading in 0..12 {
        for start in 0..20 {
            let x = 1.5 + start as f32 * 0.06;
            let mut world = world_with(&plan, x, 0.5 + start as f32 * 0.25, heading);
            assert!(world.is_free(x, world.pose.z));
            for _ in 0..60 {
                world.act(Action::MoveForward);
                assert!(world.pose.x <= limit + 1e-4, "heading {heading}: crossed to x = {}", world.pose.x);
                assert!(world.is_free(world.pose.x, world.pose.z));
            }
            // One long move cannot jump the wall either.
            world.move_forward(5.0);
            assert!(world.pose.x <= limit + 1e-4, "heading {heading}: long move crossed");
        }
    }
}

#[test]
fn moving_into_a_wall_at_an_angle_slides_along_it_and_head_on_stops() {
    let plan = parse(&room_plan(
        "(from: (3.0, 0.0), to: (3.0, 6.0))",
        "",
        "",
        r#"(kind: Apple, on: [Floor("hall")])"#,
        NAV_APPLE,
    ));
    let limit = 3.0 - 0.05 - AGENT_RADIUS;
    // Heading 11 is yaw −30°: forward is (0.866, 0.5), towards the wall and south.
    let mut world = world_with(&plan, 2.5, 1.0, 11);
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(world.act(Action::MoveForward));
    }
    assert!(outcomes.contains(&Outcome::Blocked));
    assert!((world.pose.x - limit).abs() < 0.06, "pressed against the wall, x = {}", world.pose.x);
    // Eight moves of 0.25 m at 30° give 1 m of z: the slide keeps the move's part along the
    // wall. Stopping at the wall would have left z near 1.16.
    assert!((world.pose.z - 2.0).abs() < 1e-3, "slid along the wall to z = {}", world.pose.z);

    let mut world = world_with(&plan, 2.5, 3.0, 0);
    world.act(Action::MoveForward);
    assert_eq!(world.act(Action::MoveForward), Outcome::Blocked);
    let stopped_at = world.pose;
    assert_eq!(world.act(Action::MoveForward), Outcome::Blocked);
    assert_eq!(world.pose, stopped_at, "head-on, the agent stays put");
    assert!((world.pose.z - 3.0).abs() < 1e-5);
}

#[test]
fn moves_pass_through_a_door_opening() {
    let plan = parse(&room_plan(
        "(from: (3.0, 0.0), to: (3.0, 6.0))",
        "(at: (3.0, 3.0), width: 0.9)",
        "",
        r#"(kind: Apple, on: [Floor("hall")])"#,
        NAV_APPLE,
    ));
    let mut world = world_with(&plan, 1.0, 3.0, 0);
    for _ in 0..16 {
        world.act(Action::MoveForward);
    }
    assert!(world.pose.x > 4.5, "went through the door to x = {}", world.pose.x);
}

#[test]
fn rays_report_distances_and_classes_against_hand_made_geometry() {
    let plan = parse(&room_plan("", "", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    let mut world = world_with(&plan, 1.0, 3.0, 0);
    world.objects.clear();
    // Straight east: the table's west face at x = 3.
    let ray = world.cast(1.0, 1e-9);
    assert_eq!(ray.hit, Hit::Furniture(0));
    assert!((ray.distance - 2.0).abs() < 1e-4, "{ray:?}");
    assert_eq!(world.class_of(ray.hit), SemanticClass::furniture(super::plan::FurnitureKind::Table));
    // North (−z): the border wall at z = 0, 3 m away.
    let ray = world.cast(1e-9, -1.0);
    assert_eq!(ray.hit, Hit::Wall);
    assert!((ray.distance - 3.0).abs() < 1e-4, "{ray:?}");
    // The rays fan from left (−z at heading 0) to right (+z).
    let rays = world.cast_rays();
    assert_eq!(rays[0].hit, Hit::Wall);
    assert!((rays[0].distance - 3.0).abs() < 1e-3 && (rays[31].distance - 3.0).abs() < 1e-3);
    // An object on the table is seen over it; one on the floor behind the table is hidden.
    world.objects.push(Object { kind: ObjectKind::Mug, x: 3.5, z: 3.0, place: ObjectPlace::OnFurniture(0) });
    world.objects.push(Object { kind: ObjectKind::Book, x: 4.5, z: 3.0, place: ObjectPlace::Floor });
    let ray = world.cast(1.0, 1e-9);
    assert_eq!(ray.hit, Hit::Object(0));
    assert!((ray.distance - 2.44).abs() < 1e-4, "{ray:?}");
    assert_eq!(world.class_of(ray.hit), SemanticClass::object(ObjectKind::Mug));
    world.objects[0].place = ObjectPlace::Held;
    assert_eq!(world.cast(1.0, 1e-9).hit, Hit::Furniture(0), "a held object is not seen");
    // Beyond the range, rays see nothing.
    let far = parse(
        r#"FloorPlan(name: "far", rooms: [(name: "hall", rect: (min: (0.0, 0.0), max: (12.0, 2.0)))], walls: [],
        furniture: [], objects: [(kind: Apple, on: [Floor("hall")])], tasks: [ObjectNav(object: Apple)], max_steps: 5)"#,
    );
    let mut world = world_with(&far, 1.0, 1.0, 0);
    world.objects.clear();
    let ray = world.cast(1.0, 1e-9);
    assert_eq!((ray.hit, ray.distance), (Hit::Nothing, super::world::RAY_RANGE));
}

#[test]
fn pick_and_place_follow_reach_facing_and_walls() {
    let desk = r#"(name: "desk", kind: Desk, rect: (min: (0.5, 0.5), max: (1.5, 1.0)), height: 0.75)"#;
    let shelf =
        r#"(name: "shelf", kind: Shelf, rect: (min: (5.0, 5.0), max: (5.8, 5.8)), height: 1.8, receptacle: false)"#;
    let plan = parse(&room_plan(
        "(from: (2.0, 4.0), to: (6.0, 4.0))",
        "",
        &format!("{TABLE}, {desk}, {shelf}"),
        APPLE_ON_TABLE,
        NAV_APPLE,
    ));
    let apple_at = |world: &mut World, x: f32, z: f32, place: ObjectPlace| {
        world.objects = vec![Object { kind: ObjectKind::Apple, x, z, place }];
        world.held = None;
    };
    // Facing the table from 0.8 m: picks. Turned away, or 1.3 m off: fails.
    let mut world = world_with(&plan, 2.7, 3.0, 0);
    apple_at(&mut world, 3.5, 3.0, ObjectPlace::OnFurniture(0));
    assert_eq!(world.act(Action::Pick), Outcome::Picked(0));
    assert_eq!((world.held, world.objects[0].place), (Some(0), ObjectPlace::Held));
    assert_eq!(world.act(Action::Pick), Outcome::Failed, "one object at a time");
    let mut world = world_with(&plan, 2.7, 3.0, 6);
    apple_at(&mut world, 3.5, 3.0, ObjectPlace::OnFurniture(0));
    assert_eq!(world.act(Action::Pick), Outcome::Failed, "behind the agent");
    let mut world = world_with(&plan, 2.2, 3.0, 0);
    apple_at(&mut world, 3.5, 3.0, ObjectPlace::OnFurniture(0));
    assert_eq!(world.act(Action::Pick), Outcome::Failed, "1.3 m away");
    // 0.6 m away but behind the wall at z = 4 (heading 9 faces +z).
    let mut world = world_with(&plan, 4.5, 3.7, 9);
    apple_at(&mut world, 4.5, 4.3, ObjectPlace::Floor);
    assert_eq!(world.act(Action::Pick), Outcome::Failed, "through a wall");
    apple_at(&mut world, 4.5, 3.89, ObjectPlace::Floor);
    assert_eq!(world.act(Action::Pick), Outcome::Picked(0), "same side of the wall");

    // Place: on the table ahead within reach, landing on its top.
    let mut world = world_with(&plan, 2.5, 3.0, 0);
    apple_at(&mut world, 2.5, 3.0, ObjectPlace::Held);
    world.held = Some(0);
    assert_eq!(world.act(Action::Place), Outcome::Placed { object: 0, furniture: 0 });
    let apple = world.objects[0];
    assert_eq!(apple.place, ObjectPlace::OnFurniture(0));
    assert!(plan.file.furniture[0].rect.contains(apple.x, apple.z), "{apple:?}");
    assert_eq!(world.act(Action::Place), Outcome::Failed, "nothing held");
    // Not at a wall, not out of reach, not on a non-receptacle.
    let mut world = world_with(&plan, 1.0, 3.0, 6);
    apple_at(&mut world, 1.0, 3.0, ObjectPlace::Held);
    world.held = Some(0);
    assert_eq!(world.act(Action::Place), Outcome::Failed, "facing a wall");
    world.pose = Pose { x: 1.5, z: 3.0, heading: 0 };
    assert_eq!(world.act(Action::Place), Outcome::Failed, "table 1.5 m away");
    world.pose = Pose { x: 4.5, z: 5.4, heading: 0 };
    assert_eq!(world.act(Action::Place), Outcome::Failed, "the shelf is no receptacle");
    world.pose = Pose { x: 1.0, z: 1.5, heading: 3 };
    assert_eq!(world.act(Action::Place), Outcome::Placed { object: 0, furniture: 1 }, "the desk, north");
}

#[test]
fn object_nav_succeeds_only_stopping_near_and_facing_the_goal() {
    let plan = parse(&room_plan("", "", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    let mut env = EmbodiedEnv::new(Arc::clone(&plan), 0).expect("task 0");
    assert_eq!(env.task, Task::ObjectNav { object: ObjectKind::Apple });
    env.reset(3);
    env.world.objects[0] = Object { kind: ObjectKind::Apple, x: 3.5, z: 3.0, place: ObjectPlace::OnFurniture(0) };
    env.world.pose = Pose { x: 2.05, z: 3.0, heading: 0 };
    let result = env.step(Action::MoveForward);
    assert!(!result.done && result.reward == 0.0);
    let result = env.step(Action::MoveForward);
    assert!(!result.done);
    let result = env.step(Action::Stop);
    assert!(result.done && result.success && !result.truncated);
    assert!((result.reward - (1.0 - 0.9 * 3.0 / 50.0)).abs() < 1e-6, "{result:?}");
    assert!(env.step(Action::MoveForward).done, "a finished episode stays finished");

    // Stopping while facing away fails and ends the episode.
    env.reset(3);
    env.world.objects[0] = Object { kind: ObjectKind::Apple, x: 3.5, z: 3.0, place: ObjectPlace::OnFurniture(0) };
    env.world.pose = Pose { x: 2.6, z: 3.0, heading: 6 };
    let result = env.step(Action::Stop);
    assert!(result.done && !result.success && result.reward == 0.0);

    // The step limit truncates.
    env.reset(4);
    let mut last = None;
    for _ in 0..50 {
        last = Some(env.step(Action::TurnLeft));
    }
    let last = last.expect("50 steps");
    assert!(last.done && last.truncated && !last.success && last.reward == 0.0);
}

#[test]
fn pick_place_succeeds_when_the_object_lands_on_the_goal_receptacle() {
    let desk = r#"(name: "desk", kind: Desk, rect: (min: (0.5, 0.5), max: (1.5, 1.0)), height: 0.75)"#;
    let plan = parse(&room_plan(
        "",
        "",
        &format!("{TABLE}, {desk}"),
        r#"(kind: Apple, on: [Furniture("table"), Furniture("desk")])"#,
        r#"PickPlace(object: Apple, receptacle: "table")"#,
    ));
    let mut env = EmbodiedEnv::new(Arc::clone(&plan), 0).expect("task 0");
    for seed in 0..50 {
        env.reset(seed);
        assert_eq!(env.world.objects[0].place, ObjectPlace::OnFurniture(1), "never starts on the goal");
    }
    env.world.pose = Pose { x: 1.0, z: 1.5, heading: 3 };
    assert_eq!(env.step(Action::Pick).outcome, Outcome::Picked(0));
    // Putting it back on the desk is no success.
    let result = env.step(Action::Place);
    assert!(matches!(result.outcome, Outcome::Placed { furniture: 1, .. }) && !result.done);
    assert_eq!(env.step(Action::Pick).outcome, Outcome::Picked(0));
    env.world.pose = Pose { x: 2.5, z: 3.0, heading: 0 };
    let result = env.step(Action::Place);
    assert!(result.done && result.success, "{result:?}");
    assert!((result.reward - (1.0 - 0.9 * 4.0 / 50.0)).abs() < 1e-6);
}

#[test]
fn observations_follow_the_layout_and_episodes_are_deterministic_per_seed() {
    let plan = apartment("apartment-1.ron");
    let run = |seed: u64| -> Vec<f32> {
        let mut env = EmbodiedEnv::new(Arc::clone(&plan), 1).expect("task 1");
        env.reset(seed);
        let mut trace = Vec::new();
        let mut observation = vec![0.0; layout::LEN];
        let mut state = seed;
        for _ in 0..300 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let action = Action::ALL[((state >> 33) % 5) as usize];
            let result = env.step(action);
            env.observe(&mut observation);
            trace.extend_from_slice(&observation);
            trace.push(result.reward);
            if result.done {
                env.reset(seed + 1000);
            }
        }
        trace
    };
    let first = run(7);
    assert_eq!(first, run(7), "same seed, same episode");
    assert_ne!(first, run(8), "another seed, another layout");

    let mut env = EmbodiedEnv::new(Arc::clone(&plan), 1).expect("task 1");
    env.reset(5);
    let mut observation = vec![0.0; layout::LEN];
    env.observe(&mut observation);
    for ray in 0..super::world::RAY_COUNT {
        let base = ray * layout::RAY_STRIDE;
        assert!((0.0..=1.0).contains(&observation[base]));
        let classes = &observation[base + 1..base + layout::RAY_STRIDE];
        assert_eq!(classes.iter().sum::<f32>(), 1.0, "one class per ray");
    }
    assert_eq!(observation[layout::HELD], 1.0, "nothing held");
    assert_eq!(observation[layout::GOAL_OBJECT + ObjectKind::Apple.index()], 1.0);
    let table = 1 + super::plan::FurnitureKind::Table.index();
    assert_eq!(observation[layout::GOAL_RECEPTACLE + table], 1.0);
    assert_eq!(observation[layout::TASK + 1], 1.0);
    let ones = observation[layout::HELD..layout::TIME].iter().filter(|v| **v == 1.0).count();
    assert_eq!((ones, observation[layout::TIME]), (4, 0.0), "four one-hots, no time spent yet");
}

#[test]
fn steps_per_second_probe_runs_both_apartments() {
    for name in ["apartment-1.ron", "apartment-2.ron"] {
        let plan = apartment(name);
        for task in 0..plan.file.tasks.len() {
            let rate = measure_steps_per_second(Arc::clone(&plan), task, 20_000, 1).expect("task exists");
            println!("{name} task {task}: {rate:.0} steps/s");
            assert!(rate.is_finite() && rate > 1_000.0, "{name}: {rate} steps/s");
        }
    }
}

#[test]
fn distance_shaping_pays_for_closing_in_only_when_switched_on() {
    let plan = parse(&room_plan("", "", TABLE, APPLE_ON_TABLE, NAV_APPLE));
    let mut env = EmbodiedEnv::new(Arc::clone(&plan), 0).expect("task 0");
    env.reset(1);
    env.world.objects[0] = Object { kind: ObjectKind::Apple, x: 3.5, z: 3.0, place: ObjectPlace::OnFurniture(0) };
    env.world.pose = Pose { x: 1.0, z: 3.0, heading: 0 };
    assert_eq!(env.step(Action::MoveForward).reward, 0.0, "off by default");
    env.shaping = Some(0.1);
    let closer = env.step(Action::MoveForward).reward;
    assert!((closer - 0.1 * 0.25).abs() < 1e-5, "{closer}");
    env.step(Action::TurnLeft);
    env.step(Action::TurnLeft);
    env.step(Action::TurnLeft);
    env.step(Action::TurnLeft);
    env.step(Action::TurnLeft);
    assert_eq!(env.step(Action::TurnLeft).reward, 0.0, "turning covers no distance");
    let away = env.step(Action::MoveForward).reward;
    assert!((away + 0.1 * 0.25).abs() < 1e-5, "{away}");

    // PickPlace: picking up keeps the distance; carrying towards the receptacle pays.
    let desk = r#"(name: "desk", kind: Desk, rect: (min: (0.5, 0.5), max: (1.5, 1.0)), height: 0.75)"#;
    let plan = parse(&room_plan(
        "",
        "",
        &format!("{TABLE}, {desk}"),
        r#"(kind: Apple, on: [Furniture("desk")])"#,
        r#"PickPlace(object: Apple, receptacle: "table")"#,
    ));
    let mut env = EmbodiedEnv::new(Arc::clone(&plan), 0).expect("task 0");
    env.reset(2);
    env.shaping = Some(1.0);
    env.world.pose = Pose { x: 1.0, z: 1.5, heading: 3 };
    let before = env.goal_distance();
    let pick = env.step(Action::Pick);
    assert_eq!(pick.outcome, Outcome::Picked(0));
    // By the triangle inequality a pick never costs, and pays at most twice the reach.
    assert!(pick.reward >= -1e-5 && pick.reward <= 2.0 * super::world::REACH, "{}", pick.reward);
    assert!((before - env.goal_distance() - pick.reward).abs() < 1e-5);
    env.world.pose = Pose { x: 1.6, z: 3.0, heading: 0 };
    let before = env.goal_distance();
    let carry = env.step(Action::MoveForward).reward;
    assert!((carry - 0.25).abs() < 1e-5 && (before - env.goal_distance() - 0.25).abs() < 1e-5, "{carry}");
}

#[test]
fn every_object_in_the_apartments_can_be_reached_from_some_free_pose() {
    for name in ["apartment-1.ron", "apartment-2.ron"] {
        let plan = apartment(name);
        let mut world = World::new(Arc::clone(&plan));
        for seed in 0..40 {
            world.reset(seed, None);
            for index in 0..world.objects.len() {
                let object = world.objects[index];
                let reachable = (0..21 * 21 * 12).any(|i| {
                    let x = object.x - 1.0 + (i / 12 % 21) as f32 * 0.1;
                    let z = object.z - 1.0 + (i / 12 / 21) as f32 * 0.1;
                    world.pose = Pose { x, z, heading: (i % 12) as u8 };
                    world.is_free(x, z) && world.is_reachable(index)
                });
                assert!(reachable, "{name} seed {seed}: {:?} at ({}, {}) unreachable", object.kind, object.x, object.z);
            }
        }
    }
}
