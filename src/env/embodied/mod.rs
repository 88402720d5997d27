//! Embodied scenes: Habitat-like apartments on a RON floor plan, with a continuous agent pose,
//! discrete actions, ObjectNav and PickPlace tasks and ray-cast observations (no rendering).

pub mod occupancy;
pub mod plan;
pub mod student;
pub mod task;
pub mod text;
pub mod world;

pub use plan::{FloorPlan, FloorPlanError, FurnitureKind, ObjectKind, Place, PlaceName, Rect, TaskSpec};
pub use task::{EmbodiedEnv, StepResult, Task, layout, measure_steps_per_second};
pub use world::{Action, Hit, ObjectPlace, Outcome, Pose, RayHit, SemanticClass, World};

#[cfg(test)]
mod tests;

/// The shipped floor plan `scenes/floorplans/{file}` (e.g. "apartment-1.ron"), for tests.
#[cfg(test)]
pub(crate) fn shipped_plan(file: &str) -> std::sync::Arc<FloorPlan> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenes/floorplans").join(file);
    std::sync::Arc::new(FloorPlan::load(&path).unwrap_or_else(|err| panic!("{err}")))
}

/// An env of the shipped plan `file` on its task `task`, reset with `seed`, for tests.
#[cfg(test)]
pub(crate) fn shipped_env(file: &str, task: usize, seed: u64) -> EmbodiedEnv {
    let mut env = EmbodiedEnv::new(shipped_plan(file), task).unwrap_or_else(|err| panic!("{err}"));
    env.reset(seed);
    env
}
