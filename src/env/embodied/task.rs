//! Embodied episodes: ObjectNav and PickPlace tasks on a world, their success checks, step
//! limits and rewards, the student's flat observation vector, and a steps-per-second probe.

use std::sync::Arc;
use std::time::Instant;

use super::plan::{FloorPlan, FurnitureKind, ObjectKind, TaskSpec};
use super::world::{Action, ObjectPlace, Outcome, RAY_COUNT, RAY_RANGE, SemanticClass, World};

/// A task with its receptacle resolved to a furniture index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    ObjectNav { object: ObjectKind },
    PickPlace { object: ObjectKind, receptacle: usize },
}

/// The observation's parts, in order (all f32):
/// - rays: for each of `RAY_COUNT` rays, left (+90°) to right (−90°): distance / `RAY_RANGE`
///   in [0, 1], then a one-hot over `SemanticClass::COUNT` classes (nothing, wall, furniture
///   kinds in `FurnitureKind::ALL` order, object kinds in `ObjectKind::ALL` order);
/// - held: one-hot over 1 + object kinds (index 0: nothing held);
/// - goal object: one-hot over object kinds;
/// - goal receptacle: one-hot over 1 + furniture kinds (index 0: the task has none);
/// - task: one-hot [ObjectNav, PickPlace];
/// - time: steps taken / max steps.
pub mod layout {
    use super::*;
    pub const RAY_STRIDE: usize = 1 + SemanticClass::COUNT;
    pub const RAYS: usize = 0;
    pub const HELD: usize = RAYS + RAY_COUNT * RAY_STRIDE;
    pub const GOAL_OBJECT: usize = HELD + 1 + ObjectKind::ALL.len();
    pub const GOAL_RECEPTACLE: usize = GOAL_OBJECT + ObjectKind::ALL.len();
    pub const TASK: usize = GOAL_RECEPTACLE + 1 + FurnitureKind::ALL.len();
    pub const TIME: usize = TASK + 2;
    pub const LEN: usize = TIME + 1;
}

/// What one step returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepResult {
    pub outcome: Outcome,
    pub reward: f32,
    /// The episode ended (success, Stop, or the step limit).
    pub done: bool,
    pub success: bool,
    /// Ended by the step limit rather than by the agent.
    pub truncated: bool,
}

/// One embodied environment running one of its plan's tasks.
#[derive(Debug, Clone)]
pub struct EmbodiedEnv {
    pub world: World,
    pub task: Task,
    pub max_steps: u32,
    pub steps: u32,
    /// Optional distance shaping: each step adds `scale × (previous − current)` goal distance
    /// (`goal_distance`), so closing in pays a little before the success reward. Off (None)
    /// by default, as in the grid.
    pub shaping: Option<f32>,
    done: bool,
    /// Rooms the agent has stood in this episode, one bit per room index (explore's memory).
    rooms_visited: u64,
}

impl EmbodiedEnv {
    /// An environment for the plan's task number `task_index` (counting from 0).
    pub fn new(plan: Arc<FloorPlan>, task_index: usize) -> Result<EmbodiedEnv, String> {
        let spec = plan.file.tasks.get(task_index).ok_or_else(|| {
            format!("task {task_index} does not exist; `{}` has {} tasks", plan.file.name, plan.file.tasks.len())
        })?;
        let task = match spec {
            TaskSpec::ObjectNav { object } => Task::ObjectNav { object: *object },
            TaskSpec::PickPlace { object, receptacle } => {
                let index = plan
                    .file
                    .furniture
                    .iter()
                    .position(|piece| &piece.name == receptacle)
                    .ok_or_else(|| format!("receptacle `{receptacle}` is not in `{}`", plan.file.name))?;
                Task::PickPlace { object: *object, receptacle: index }
            }
        };
        let max_steps = plan.file.max_steps;
        Ok(EmbodiedEnv {
            world: World::new(plan),
            task,
            max_steps,
            steps: 0,
            shaping: None,
            done: false,
            rooms_visited: 0,
        })
    }

    /// Starts a new episode laid out by `seed`.
    pub fn reset(&mut self, seed: u64) {
        let avoid = match self.task {
            Task::PickPlace { object, receptacle } => Some((object, receptacle)),
            Task::ObjectNav { .. } => None,
        };
        self.world.reset(seed, avoid);
        self.steps = 0;
        self.done = false;
        self.rooms_visited = 0;
        self.note_room();
    }

    /// Marks the room the agent stands in as visited.
    fn note_room(&mut self) {
        if let Some(room) = self.world.plan().room_index_at(self.world.pose.x, self.world.pose.z) {
            self.rooms_visited |= 1 << room.min(63);
        }
    }

    /// Whether the agent has stood in room `room` (an index into the plan's rooms) this episode.
    pub fn has_visited(&self, room: usize) -> bool {
        room < 64 && self.rooms_visited & (1 << room) != 0
    }

    /// Straight-line metres still to cover (walls ignored). ObjectNav: to the nearest goal
    /// object. PickPlace: holding a goal object, to the receptacle's edge; otherwise to the
    /// nearest goal object plus its way to the receptacle, so picking one up keeps the sum.
    pub fn goal_distance(&self) -> f32 {
        let (x, z) = (self.world.pose.x, self.world.pose.z);
        let objects = &self.world.objects;
        match self.task {
            Task::ObjectNav { object } => objects
                .iter()
                .filter(|o| o.kind == object)
                .map(|o| (o.x - x).hypot(o.z - z))
                .fold(f32::INFINITY, f32::min),
            Task::PickPlace { object, receptacle } => {
                let rect = self.world.plan().file.furniture[receptacle].rect;
                match self.world.held {
                    Some(held) if objects[held].kind == object => rect.distance_squared(x, z).sqrt(),
                    _ => objects
                        .iter()
                        .filter(|o| o.kind == object && o.place != ObjectPlace::OnFurniture(receptacle))
                        .map(|o| (o.x - x).hypot(o.z - z) + rect.distance_squared(o.x, o.z).sqrt())
                        .fold(f32::INFINITY, f32::min),
                }
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// ObjectNav: an object of the goal kind is within reach, in front and in sight.
    /// PickPlace: an object of the goal kind rests on the goal receptacle.
    pub fn is_success(&self) -> bool {
        match self.task {
            Task::ObjectNav { object } => self.world.nearest_reachable(Some(object)).is_some(),
            Task::PickPlace { object, receptacle } => {
                self.world.objects.iter().any(|o| o.kind == object && o.place == ObjectPlace::OnFurniture(receptacle))
            }
        }
    }

    /// Applies one action. After the episode ends, steps do nothing until `reset`.
    pub fn step(&mut self, action: Action) -> StepResult {
        if self.done {
            return StepResult { outcome: Outcome::Failed, reward: 0.0, done: true, success: false, truncated: false };
        }
        self.steps += 1;
        let before = self.shaping.map(|_| self.goal_distance());
        let outcome = self.world.act(action);
        self.note_room();
        let success = match (self.task, outcome) {
            (Task::ObjectNav { .. }, Outcome::Stopped) => self.is_success(),
            (Task::PickPlace { .. }, Outcome::Placed { .. }) => self.is_success(),
            _ => false,
        };
        let truncated = !success && outcome != Outcome::Stopped && self.steps >= self.max_steps;
        self.done = success || outcome == Outcome::Stopped || truncated;
        // As in the grid: 1 − 0.9 · t / T on success, nothing otherwise.
        let mut reward = if success { 1.0 - 0.9 * self.steps as f32 / self.max_steps as f32 } else { 0.0 };
        if let (Some(scale), Some(before)) = (self.shaping, before) {
            let after = self.goal_distance();
            // A success removes the goal (a placed object); the success reward covers it.
            if before.is_finite() && after.is_finite() {
                reward += scale * (before - after);
            }
        }
        StepResult { outcome, reward, done: self.done, success, truncated }
    }

    /// Writes the observation (see `layout`) into `out`, which must hold `layout::LEN` values.
    pub fn observe(&self, out: &mut [f32]) {
        let out = &mut out[..layout::LEN];
        out.fill(0.0);
        for (i, ray) in self.world.cast_rays().iter().enumerate() {
            let base = layout::RAYS + i * layout::RAY_STRIDE;
            out[base] = ray.distance / RAY_RANGE;
            out[base + 1 + self.world.class_of(ray.hit)] = 1.0;
        }
        let held = self.world.held.map_or(0, |i| 1 + self.world.objects[i].kind.index());
        out[layout::HELD + held] = 1.0;
        let (object, receptacle, task) = match self.task {
            Task::ObjectNav { object } => (object, 0, 0),
            Task::PickPlace { object, receptacle } => {
                (object, 1 + self.world.plan().file.furniture[receptacle].kind.index(), 1)
            }
        };
        out[layout::GOAL_OBJECT + object.index()] = 1.0;
        out[layout::GOAL_RECEPTACLE + receptacle] = 1.0;
        out[layout::TASK + task] = 1.0;
        out[layout::TIME] = self.steps as f32 / self.max_steps as f32;
    }
}

/// Steps one environment `steps` times single-threaded with a fixed pseudo-random action
/// stream (mostly moves and turns, as a learning student's), observing after every step and
/// resetting when an episode ends; returns steps per second.
pub fn measure_steps_per_second(plan: Arc<FloorPlan>, task_index: usize, steps: u64, seed: u64) -> Result<f64, String> {
    let mut env = EmbodiedEnv::new(plan, task_index)?;
    let mut episode_seed = seed;
    env.reset(episode_seed);
    let mut observation = vec![0.0; layout::LEN];
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let started = Instant::now();
    for _ in 0..steps {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Stop is rare so episodes last; the other five share the rest.
        let draw = (state >> 33) % 100;
        let action = match draw {
            0..=39 => Action::MoveForward,
            40..=59 => Action::TurnLeft,
            60..=79 => Action::TurnRight,
            80..=89 => Action::Pick,
            90..=98 => Action::Place,
            _ => Action::Stop,
        };
        if env.step(action).done {
            episode_seed += 1;
            env.reset(episode_seed);
        }
        env.observe(&mut observation);
    }
    std::hint::black_box(&observation);
    Ok(steps as f64 / started.elapsed().as_secs_f64())
}
