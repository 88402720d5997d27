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
