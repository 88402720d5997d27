//! What the teacher reads about an embodied state: the task, the room, what is held, and the
//! objects and furniture in view with coarse directions and distances (never metres).
//!
//! The description is the teacher's cache key, so it is deliberately coarse: three directions
//! (left, ahead, right) and two distances (within reach, farther), so that states that call
//! for the same option read the same.

use std::fmt::Write as _;

use super::task::{EmbodiedEnv, Task};
use super::world::{Hit, ObjectPlace, RAY_RANGE, REACH, World};

/// What the agent can see now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InView {
    /// Indices into `world.objects`, nearest first.
    pub objects: Vec<usize>,
    /// Indices of receptacles (furniture that takes objects), nearest first.
    pub receptacles: Vec<usize>,
}

/// The objects and receptacles in the front half-plane, within `RAY_RANGE` and in line of
/// sight (an object on a table top is seen over the table, as the rays see it).
pub fn in_view(world: &World) -> InView {
    let (x, z) = (world.pose.x, world.pose.z);
    let (fx, fz) = world.pose.forward();
    let seen = |tx: f32, tz: f32, target: Hit, support: Option<usize>| {
        let (dx, dz) = (tx - x, tz - z);
        let distance = dx.hypot(dz);
        if distance < 1e-4 {
            return Some(0.0);
        }
        if distance > RAY_RANGE || dx * fx + dz * fz < 0.0 {
            return None;
        }
        let ray = world.cast(dx / distance, dz / distance);
        let blocked_before = ray.distance + 0.05 < distance - 0.3;
        let sees = ray.hit == target || support.is_some_and(|f| ray.hit == Hit::Furniture(f)) || !blocked_before;
        sees.then_some(distance)
    };
    let mut objects: Vec<(f32, usize)> = world
        .objects
        .iter()
        .enumerate()
        .filter_map(|(i, object)| {
            let support = match object.place {
                ObjectPlace::Held => return None,
                ObjectPlace::OnFurniture(f) => Some(f),
                ObjectPlace::Floor => None,
            };
            seen(object.x, object.z, Hit::Object(i), support).map(|d| (d, i))
        })
        .collect();
    let furniture = &world.plan().file.furniture;
    let mut receptacles: Vec<(f32, usize)> = furniture
        .iter()
        .enumerate()
        .filter(|(_, piece)| piece.receptacle)
        .filter_map(|(i, piece)| {
            let (nx, nz) = nearest_point(piece.rect, x, z);
            seen(nx, nz, Hit::Furniture(i), None).map(|d| (d, i))
        })
        .collect();
    objects.sort_by(|a, b| a.0.total_cmp(&b.0));
    receptacles.sort_by(|a, b| a.0.total_cmp(&b.0));
    InView {
        objects: objects.into_iter().map(|(_, i)| i).collect(),
        receptacles: receptacles.into_iter().map(|(_, i)| i).collect(),
    }
}

/// The point of `rect` nearest (x, z).
pub fn nearest_point(rect: super::plan::Rect, x: f32, z: f32) -> (f32, f32) {
    (x.clamp(rect.min.0, rect.max.0), z.clamp(rect.min.1, rect.max.1))
}

/// "find the mug", "put the apple on the kitchen table".
pub fn mission(env: &EmbodiedEnv) -> String {
    match env.task {
        Task::ObjectNav { object } => format!("find the {object}"),
        Task::PickPlace { object, receptacle } => {
            format!("put the {object} on the {}", env.world.plan().file.furniture[receptacle].name)
        }
    }
}

/// "left", "ahead" or "right" of the agent, for a point.
fn direction(world: &World, tx: f32, tz: f32) -> &'static str {
    let (dx, dz) = (tx - world.pose.x, tz - world.pose.z);
    let (fx, fz) = world.pose.forward();
    // Left of forward (fx, fz) is (fz, −fx) in (x, z) with yaw counter-clockwise from above.
    let (lx, lz) = (fz, -fx);
    let (ahead, left) = (dx * fx + dz * fz, dx * lx + dz * lz);
    let angle = left.atan2(ahead).to_degrees();
    if angle > 30.0 {
        "on the left"
    } else if angle < -30.0 {
        "on the right"
    } else {
        "ahead"
    }
}

/// "within reach" or "farther away".
fn distance(world: &World, tx: f32, tz: f32) -> &'static str {
    if (tx - world.pose.x).hypot(tz - world.pose.z) <= REACH { "within reach" } else { "farther away" }
}

/// The teacher's view of the state, in the prompt's format:
///
/// ```text
/// Mission: put the apple on the kitchen table.
/// You are in the living room, carrying nothing.
/// You see: an apple on the coffee table, ahead, farther away; the coffee table, ahead, farther away.
/// ```
pub fn describe(env: &EmbodiedEnv) -> String {
    describe_in_view(env, &in_view(&env.world))
}

/// `describe` with what is in view already worked out (`in_view`), for callers that also
/// build the option menu from it.
pub fn describe_in_view(env: &EmbodiedEnv, view: &InView) -> String {
    let world = &env.world;
    let plan = world.plan();
    let mut text = format!("Mission: {}.\n", mission(env));
    let room = plan.room_at(world.pose.x, world.pose.z).unwrap_or("a doorway");
    let held = match world.held {
        Some(index) => format!("carrying {}", with_article(world.objects[index].kind.name())),
        None => "carrying nothing".to_owned(),
    };
    let _ = writeln!(text, "You are in the {room}, {held}.");
    let mut parts = Vec::new();
    for &index in &view.objects {
        let object = &world.objects[index];
        let place = match object.place {
            ObjectPlace::OnFurniture(f) => format!(" on the {}", plan.file.furniture[f].name),
            _ => " on the floor".to_owned(),
        };
        let (dir, dist) = (direction(world, object.x, object.z), distance(world, object.x, object.z));
        parts.push(format!("{}{place}, {dir}, {dist}", with_article(object.kind.name())));
    }
    for &index in &view.receptacles {
        let piece = &plan.file.furniture[index];
        let (nx, nz) = nearest_point(piece.rect, world.pose.x, world.pose.z);
        parts.push(format!("the {}, {}, {}", piece.name, direction(world, nx, nz), distance(world, nx, nz)));
    }
    if parts.is_empty() {
        text.push_str("You see: nothing of interest.");
    } else {
        let _ = write!(text, "You see: {}.", parts.join("; "));
    }
    text
}

fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {noun}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::embodied::world::Pose;

    fn env(task: usize) -> EmbodiedEnv {
        crate::env::embodied::shipped_env("apartment-1.ron", task, 1)
    }

    #[test]
    fn the_text_names_the_task_room_hands_and_what_is_in_view() {
        let mut env = env(1);
        // In the kitchen (0..4 x 0..4), facing the kitchen table (x 1.2..2.4, z 1.8..2.8) from its
        // east side at 0.6 m: heading 6 faces −x.
        env.world.pose = Pose { x: 3.0, z: 2.3, heading: 6 };
        let text = describe(&env);
        assert!(
            text.starts_with(
                "Mission: put the apple on the kitchen table.\nYou are in the kitchen, carrying nothing.\n"
            ),
            "{text}"
        );
        assert!(text.contains("the kitchen table, ahead, within reach"), "{text}");
        assert!(!text.contains("sofa"), "the sofa is in another room behind a wall: {text}");
        // Turned around (facing +x), the table is behind: out of view.
        env.world.pose.heading = 0;
        assert!(!describe(&env).contains("kitchen table,"), "{}", describe(&env));
        assert_eq!(mission(&self::env(0)), "find the mug");
    }

    #[test]
    fn nearby_states_read_the_same() {
        let mut env = env(1);
        env.world.pose = Pose { x: 3.0, z: 2.3, heading: 6 };
        let here = describe(&env);
        env.world.pose.z = 2.35;
        assert_eq!(describe(&env), here, "5 cm changes nothing the teacher reads");
    }
}
