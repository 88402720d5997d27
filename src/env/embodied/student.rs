//! What the PPO student sees and does in an embodied env: a compact byte observation (ray
//! readings binned, the task, what is held, optionally a compass to the goal) and its actions.
//!
//! The student network one-hot encodes byte observations laid out as cells of equal channels
//! (`student::ObservationLayout`), the grid's format. Here each cell has two channels, a
//! binned magnitude and a class, so embodied scenes go through the same PPO and the same
//! fused MLP as the grid; the continuous `EmbodiedEnv::observe` vector stays for other uses.

use std::f32::consts::PI;

use super::plan::{FurnitureKind, ObjectKind};
use super::task::{EmbodiedEnv, Task};
use super::world::{Action, RAY_COUNT, RAY_RANGE, SemanticClass};

/// Magnitude bins (distances, compass sectors, elapsed time); `UNKNOWN` is one past them.
pub const BINS: usize = 16;
/// The magnitude channel's value when there is nothing to measure (no goal compass).
pub const UNKNOWN: u8 = BINS as u8;
/// Values of the first channel: `BINS` bins plus `UNKNOWN`.
pub const MAGNITUDE_VALUES: usize = BINS + 1;
/// Values of the second channel: the semantic classes rays report (the widest class set).
pub const CLASS_VALUES: usize = SemanticClass::COUNT;
/// One cell per ray, then four cells of task state (see `write_observation`).
pub const CELLS: usize = RAY_COUNT + 4;
/// Bytes of one observation.
pub const OBSERVATION_LEN: usize = CELLS * 2;

/// The student's action indices, as the grid's (`grid::Action`: left, right, forward, pickup,
/// drop, toggle, done), so one actor head and one action history serve both kinds of scene.
/// Toggle, which Habitat has no use for, picks up as MiniGrid's pickup does.
pub const ACTIONS: [Action; 7] =
    [Action::TurnLeft, Action::TurnRight, Action::MoveForward, Action::Pick, Action::Place, Action::Pick, Action::Stop];

/// The embodied action of student action `index` (None past the action set).
pub fn action_of_index(index: usize) -> Option<Action> {
    ACTIONS.get(index).copied()
}

/// The student action index that takes `action` (the first, for Pick).
pub fn index_of_action(action: Action) -> usize {
    ACTIONS.iter().position(|&a| a == action).unwrap_or(ACTIONS.len() - 1)
}

/// Spreads probabilities over `Action::ALL` onto the student's action indices.
pub fn student_probabilities(probabilities: &[f32; 6]) -> [f32; 7] {
    let mut out = [0.0; 7];
    for (action, &p) in Action::ALL.iter().zip(probabilities) {
        out[index_of_action(*action)] += p;
    }
    out
}

/// A distance binned so that near readings are fine (0.03 m at the agent, 0.5 m at 8 m).
fn distance_bin(distance: f32) -> u8 {
    let fraction = (distance / RAY_RANGE).clamp(0.0, 1.0).sqrt();
    ((fraction * BINS as f32) as usize).min(BINS - 1) as u8
}

/// Where the task wants the agent now: the nearest goal object not yet in place, or, once
/// it is held, the goal receptacle's centre. None when nothing is left to reach.
pub fn goal_point(env: &EmbodiedEnv) -> Option<(f32, f32)> {
    let world = &env.world;
    let nearest = |kind: ObjectKind, skip_on: Option<usize>| {
        world.nearest_object(kind, skip_on).map(|index| (world.objects[index].x, world.objects[index].z))
    };
    match env.task {
        Task::ObjectNav { object } => nearest(object, None),
        Task::PickPlace { object, receptacle } => match world.held {
            Some(held) if world.objects[held].kind == object => {
                let rect = world.plan().file.furniture[receptacle].rect;
                Some(((rect.min.0 + rect.max.0) / 2.0, (rect.min.1 + rect.max.1) / 2.0))
            }
            _ => nearest(object, Some(receptacle)),
        },
    }
}

/// Writes env's observation into `out` (`OBSERVATION_LEN` bytes), cell by cell (magnitude,
/// class):
/// - cells 0..RAY_COUNT, one per ray left to right: distance bin, semantic class hit;
/// - time: elapsed fraction of the step limit in bins, held object (0: none, 1 + kind);
/// - task: 0 ObjectNav or 1 PickPlace, the goal object's kind;
/// - compass: the goal's bearing from the heading in `BINS` sectors (`UNKNOWN` unless
///   `goal_compass`), the goal receptacle (0: none, 1 + furniture kind);
/// - range: the goal's straight-line distance bin (`UNKNOWN` unless `goal_compass`), the
///   room the agent stands in (its index in the plan, 0 in a doorway gap).
pub fn write_observation(env: &EmbodiedEnv, goal_compass: bool, out: &mut [u8]) {
    let out = &mut out[..OBSERVATION_LEN];
    let world = &env.world;
    for (cell, ray) in out.chunks_exact_mut(2).zip(world.cast_rays().iter()) {
        cell[0] = distance_bin(ray.distance);
        cell[1] = world.class_of(ray.hit) as u8;
    }
    let mut cell = |index: usize, magnitude: u8, class: usize| {
        out[2 * index] = magnitude;
        out[2 * index + 1] = class.min(CLASS_VALUES - 1) as u8;
    };
    let elapsed = ((env.steps as usize * BINS) / env.max_steps.max(1) as usize).min(BINS - 1) as u8;
    let held = world.held.map_or(0, |i| 1 + world.objects[i].kind.index());
    cell(RAY_COUNT, elapsed, held);
    let (task, object, receptacle) = match env.task {
        Task::ObjectNav { object } => (0, object, 0),
        Task::PickPlace { object, receptacle } => (1, object, 1 + world.plan().file.furniture[receptacle].kind.index()),
    };
    cell(RAY_COUNT + 1, task, object.index());
    let (x, z) = (world.pose.x, world.pose.z);
    let (bearing, range) = match goal_point(env).filter(|_| goal_compass) {
        Some((gx, gz)) => {
            // Bevy's convention: yaw grows counter-clockwise seen from above, forward is
            // (cos yaw, −sin yaw); the goal's yaw from the agent, relative to the heading.
            let relative = (-(gz - z)).atan2(gx - x) - world.pose.yaw();
            let sector = (relative.rem_euclid(2.0 * PI) / (2.0 * PI) * BINS as f32).round() as usize % BINS;
            (sector as u8, distance_bin((gx - x).hypot(gz - z)))
        }
        None => (UNKNOWN, UNKNOWN),
    };
    cell(RAY_COUNT + 2, bearing, receptacle);
    let room = world.plan().file.rooms.iter().position(|room| room.rect.contains(x, z)).unwrap_or(0);
    cell(RAY_COUNT + 3, range, room);
}

/// The one-hot widths of the two channels, for the student's layout.
pub const CARDINALITIES: [usize; 2] = [MAGNITUDE_VALUES, CLASS_VALUES];

// The class channel also carries held objects, goal receptacles and rooms: they must fit.
const _: () = assert!(ObjectKind::ALL.len() < CLASS_VALUES && FurnitureKind::ALL.len() < CLASS_VALUES);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::embodied::world::Pose;

    fn env(task: usize) -> EmbodiedEnv {
        crate::env::embodied::shipped_env("apartment-1.ron", task, 3)
    }

    #[test]
    fn actions_map_both_ways_and_probabilities_keep_their_mass() {
        for action in Action::ALL {
            assert_eq!(action_of_index(index_of_action(action)), Some(action));
        }
        assert_eq!(action_of_index(5), Some(Action::Pick), "toggle picks up");
        assert_eq!(action_of_index(7), None);
        let spread = student_probabilities(&[0.5, 0.25, 0.25, 0.0, 0.0, 0.0]);
        assert_eq!(spread[2], 0.5, "forward");
        assert_eq!((spread[0], spread[1]), (0.25, 0.25), "left, right");
        assert_eq!(spread.iter().sum::<f32>(), 1.0);
    }

    #[test]
    fn every_value_fits_its_channel_and_rays_match_the_world() {
        let mut env = env(1);
        let mut out = [0u8; OBSERVATION_LEN];
        for step in 0..200 {
            write_observation(&env, true, &mut out);
            for cell in out.chunks_exact(2) {
                assert!((cell[0] as usize) < MAGNITUDE_VALUES && (cell[1] as usize) < CLASS_VALUES, "{cell:?}");
            }
            let rays = env.world.cast_rays();
            assert_eq!(out[1] as usize, env.world.class_of(rays[0].hit), "the leftmost ray's class");
            env.step(Action::ALL[(step * 7) % 3]);
        }
    }

    #[test]
    fn the_compass_points_at_the_goal_and_only_when_revealed() {
        let mut env = env(0);
        let (gx, gz) = goal_point(&env).expect("a mug to find");
        // Stand 2 m from the goal on its −x side, facing +x (heading 0): the goal is dead ahead.
        env.world.pose = Pose { x: gx - 2.0, z: gz, heading: 0 };
        let mut out = [0u8; OBSERVATION_LEN];
        write_observation(&env, true, &mut out);
        assert_eq!(out[2 * (RAY_COUNT + 2)], 0, "ahead is sector 0");
        assert_eq!(out[2 * (RAY_COUNT + 3)], distance_bin(2.0));
        // Turned left by 90° (3 headings), the goal is on the right: a quarter turn clockwise.
        env.world.pose.heading = 3;
        write_observation(&env, true, &mut out);
        assert_eq!(out[2 * (RAY_COUNT + 2)], (3 * BINS / 4) as u8);
        write_observation(&env, false, &mut out);
        assert_eq!((out[2 * (RAY_COUNT + 2)], out[2 * (RAY_COUNT + 3)]), (UNKNOWN, UNKNOWN));
    }

    #[test]
    fn near_distances_get_finer_bins_than_far_ones() {
        assert_eq!(distance_bin(0.0), 0);
        assert_eq!(distance_bin(RAY_RANGE), (BINS - 1) as u8);
        assert!(distance_bin(1.0) - distance_bin(0.5) >= 1);
        assert_eq!(distance_bin(7.6), distance_bin(7.9), "far readings share a bin");
    }
}
