//! MiniGrid/BabyAI gridworlds with Farama MiniGrid 3.0's exact semantics: objects, step rules,
//! observations, task success checks and seeded level generators.

pub mod levels;
pub mod object;
pub mod observation;
pub mod planner;
pub mod task;
pub mod world;

pub use levels::Level;
pub use object::{Cell, Color, DoorState, ObjectType};
pub use observation::FogOfWar;
pub use task::Task;
pub use world::{Action, GridWorld, Pos, StepOutcome};
