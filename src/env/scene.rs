//! Scene files (`scenes/*.ron`): a whole run described in RON (name, seed, environment),
//! parsed and validated with `path:line:col` errors that point at the offending text.
//!
//! The format, with every field (see `scenes/default.ron`):
//!
//! ```ron
//! Scene(
//!     name: "DoorKey 8x8",
//!     seed: 1,
//!     env: Grid(
//!         level: "DoorKey-8x8",   // any `Level::from_name` name, e.g. "DoorKey-12x12"
//!         num_envs: 16,           // parallel envs, 1..=4096; optional, default 16
//!         max_steps: 640,         // optional; the level's own limit when left out
//!     ),
//!     // or an embodied apartment (scenes/pickplace-apartment-1.ron):
//!     // env: Embodied(
//!     //     plan: "floorplans/apartment-1.ron", // a floor plan, relative to this file
//!     //     task: 1,             // which of the plan's `tasks`, counting from 0
//!     //     num_envs: 16, max_steps: 300, // optional, as for grids
//!     //     shaping: 0.1,        // optional reward per metre closed on the goal; off by default
//!     //     goal_compass: true,  // optional: the student sees the goal's bearing and distance
//!     // ),                       // (embodied scenes need `encoder: Mlp` in `student`)
//!     student: (                  // optional, as is every field in it (defaults shown)
//!         observation: Egocentric, // Egocentric (view x view x 3) or Historical (LLM4Teach's W x H x 4)
//!         encoder: Cnn,           // Cnn (MiniGrid's 2x2 convs), Mlp or Llm4Teach (3x3 convs)
//!         lr: 0.001, gamma: 0.99, gae_lambda: 0.95, clip: 0.2, clip_value: true,
//!         epochs: 4, minibatch: 256, frames_per_env: 128,
//!         entropy_coef: 0.01, value_coef: 0.5, max_grad_norm: 0.5, adam_eps: 1e-8,
//!         normalize_advantages: true,
//!         distill: (lambda0: 1.0, schedule: Linear, anneal_frames: 200000), // or Exponential,
//!                                 // or Llm4Teach (per update: lambda0 - 0.005 * update, >= 0.1, 0 at 3000)
//!     ),
//! )
//! ```
//!
//! Unknown fields are errors everywhere, so a typo never silently falls back to a default.
//! `teacher: (...)` beside `student` sets the LLM teacher (see `TeacherSpec`).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use ron::extensions::Extensions;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use std::sync::Arc;

use super::embodied::FloorPlan;
use super::grid::Level;
use super::text::Detail;
use super::vec_env::{EmbodiedSetup, EnvKind, ObservationKind};

/// How many parallel environments a scene runs when it does not say.
pub const DEFAULT_NUM_ENVS: usize = 16;
/// The number of parallel environments a scene may ask for.
pub const NUM_ENVS_RANGE: RangeInclusive<usize> = 1..=4096;
/// The app's default scene, inside the scenes directory.
pub const DEFAULT_SCENE_FILE: &str = "default.ron";
/// The families `Level::from_name` accepts at any size, as a reader would write them.
const SIZED_FAMILIES: &str = "Empty-<N>x<N>, DoorKey-<N>x<N>, KeyCorridorS<room size>R<rows>, \
                              LavaCrossingS<N>N<crossings>, MultiRoom-N<rooms>-S<max room size>";

/// A whole run: what to call it, how to seed it, and the environment it trains in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Shown in the scene picker; never blank.
    #[serde(deserialize_with = "deserialize_name")]
    pub name: String,
    /// Seeds everything random in the run (level layouts included).
    pub seed: u64,
    pub env: EnvSpec,
    /// The PPO student's hyper-parameters; all defaults when the section is left out.
    #[serde(default, skip_serializing_if = "StudentSpec::is_default")]
    pub student: StudentSpec,
    /// The LLM teacher's model, prompt and scoring; all defaults when left out.
    #[serde(default, skip_serializing_if = "TeacherSpec::is_default")]
    pub teacher: TeacherSpec,
}

/// The environment a scene runs; written `Grid(...)` or `Embodied(...)` in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EnvSpec {
    /// A MiniGrid/BabyAI/LLM4Teach gridworld.
    Grid(GridSpec),
    /// A Habitat-like apartment on a floor plan.
    Embodied(EmbodiedSpec),
}

impl EnvSpec {
    /// Parallel environments.
    pub fn num_envs(&self) -> usize {
        match self {
            EnvSpec::Grid(grid) => grid.num_envs,
            EnvSpec::Embodied(embodied) => embodied.num_envs,
        }
    }

    /// The step-limit override, if any.
    pub fn max_steps(&self) -> Option<u32> {
        match self {
            EnvSpec::Grid(grid) => grid.max_steps,
            EnvSpec::Embodied(embodied) => embodied.max_steps,
        }
    }
}

/// An embodied environment: a floor plan file and which of its tasks to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbodiedSpec {
    /// The floor plan (RON), relative to the scene file's directory.
    pub plan: PathBuf,
    /// Which of the plan's `tasks`, counting from 0.
    pub task: usize,
    /// Parallel environments, within `NUM_ENVS_RANGE`.
    #[serde(default = "default_num_envs", deserialize_with = "deserialize_num_envs")]
    pub num_envs: usize,
    /// Overrides the plan's step limit; at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "deserialize_max_steps")]
    pub max_steps: Option<u32>,
    /// Reward per metre closed on the goal each step, on top of the success reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shaping: Option<f32>,
    /// Whether the student's observation gives the goal's bearing and straight-line distance
    /// (Habitat's GPS+compass); the rays alone otherwise.
    #[serde(default = "default_goal_compass")]
    pub goal_compass: bool,
    /// `plan` resolved against the scene file's directory (when parsed from a file).
    #[serde(skip)]
    pub plan_path: PathBuf,
}

fn default_goal_compass() -> bool {
    true
}

impl EmbodiedSpec {
    /// Loads the floor plan and checks the task exists: the setup envs are built from.
    pub fn setup(&self) -> Result<EmbodiedSetup, String> {
        let path = if self.plan_path.as_os_str().is_empty() { &self.plan } else { &self.plan_path };
        let plan = FloorPlan::load(path).map_err(|error| format!("floor plan: {error}"))?;
        if self.task >= plan.file.tasks.len() {
            return Err(format!(
                "task {} does not exist: {} has {} tasks (counting from 0)",
                self.task,
                path.display(),
                plan.file.tasks.len()
            ));
        }
        if let Some(shaping) = self.shaping.filter(|s| !s.is_finite() || *s < 0.0) {
            return Err(format!("shaping must be at least 0 (got {shaping})"));
        }
        Ok(EmbodiedSetup {
            plan_path: path.clone(),
            plan: Arc::new(plan),
            task: self.task,
            shaping: self.shaping,
            goal_compass: self.goal_compass,
        })
    }

    /// The checks `parse` applies besides loading the plan.
    pub fn validate(&self) -> Result<(), String> {
        check_num_envs(i64::try_from(self.num_envs).unwrap_or(i64::MAX))?;
        check_max_steps(self.max_steps.map(i64::from))?;
        Ok(())
    }
}

/// A grid environment, already resolved: the level name parsed and validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// Written by name ("DoorKey-8x8"), parsed with `Level::from_name`.
    #[serde(with = "level_by_name")]
    pub level: Level,
    /// Parallel environments, within `NUM_ENVS_RANGE`.
    #[serde(default = "default_num_envs", deserialize_with = "deserialize_num_envs")]
    pub num_envs: usize,
    /// Overrides the level's own step limit; at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "deserialize_max_steps")]
    pub max_steps: Option<u32>,
}

/// The student's network body over the observation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncoderKind {
    /// MiniGrid's standard CNN (rl-starter-files): 2x2 convs 16-32-64 with a max-pool.
    #[default]
    Cnn,
    /// Two tanh layers of 64 over the flattened one-hot observation.
    Mlp,
    /// LLM4Teach's student: 3x3 convs 16-32-64 with padding 1, no pooling, over the raw
    /// observation values, then 64-unit ReLU actor and critic heads.
    Llm4Teach,
}

/// How the teacher-distillation weight falls from `lambda0` to 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LambdaSchedule {
    /// Straight down to 0 at `anneal_frames`.
    #[default]
    Linear,
    /// Geometric decay to 1% of `lambda0` at `anneal_frames`, then 0.
    Exponential,
    /// LLM4Teach's kickstarting coefficient, counted in PPO updates, not frames: `lambda0`
    /// (10 in LLM4Teach) minus 0.005 per update, floored at 0.1, and 0 from update 3,000 on;
    /// `anneal_frames` is not used.
    Llm4Teach,
}

/// The teacher-KL term of the student's loss (LLM4Teach): weight λ(t) · KL(teacher ‖ student).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Distill")]
pub struct DistillSpec {
    /// λ at frame 0; 0 turns distillation off.
    #[serde(deserialize_with = "deserialize_lambda0")]
    pub lambda0: f64,
    pub schedule: LambdaSchedule,
    /// Frames (over all envs) after which λ is 0.
    #[serde(deserialize_with = "deserialize_anneal_frames")]
    pub anneal_frames: u64,
}

impl Default for DistillSpec {
    fn default() -> DistillSpec {
        DistillSpec { lambda0: 1.0, schedule: LambdaSchedule::Linear, anneal_frames: 200_000 }
    }
}

/// The PPO student's hyper-parameters; defaults are rl-starter-files' for MiniGrid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Student")]
pub struct StudentSpec {
    /// What the student sees: the egocentric view or LLM4Teach's historical whole grid.
    pub observation: ObservationKind,
    pub encoder: EncoderKind,
    #[serde(deserialize_with = "deserialize_lr")]
    pub lr: f64,
    #[serde(deserialize_with = "deserialize_gamma")]
    pub gamma: f64,
    #[serde(deserialize_with = "deserialize_gae_lambda")]
    pub gae_lambda: f64,
    /// PPO's ratio clip ε (also the value clip when `clip_value`).
    #[serde(deserialize_with = "deserialize_clip")]
    pub clip: f64,
    pub clip_value: bool,
    #[serde(deserialize_with = "deserialize_epochs")]
    pub epochs: usize,
    /// Samples per minibatch (the whole rollout when larger).
    #[serde(deserialize_with = "deserialize_minibatch")]
    pub minibatch: usize,
    /// Steps each env takes per update.
    #[serde(deserialize_with = "deserialize_frames_per_env")]
    pub frames_per_env: usize,
    #[serde(deserialize_with = "deserialize_entropy_coef")]
    pub entropy_coef: f64,
    #[serde(deserialize_with = "deserialize_value_coef")]
    pub value_coef: f64,
    #[serde(deserialize_with = "deserialize_max_grad_norm")]
    pub max_grad_norm: f64,
    #[serde(deserialize_with = "deserialize_adam_eps")]
    pub adam_eps: f64,
    pub normalize_advantages: bool,
    pub distill: DistillSpec,
}

impl Default for StudentSpec {
    fn default() -> StudentSpec {
        StudentSpec {
            observation: ObservationKind::Egocentric,
            encoder: EncoderKind::Cnn,
            lr: 1e-3,
            gamma: 0.99,
            gae_lambda: 0.95,
            clip: 0.2,
            clip_value: true,
            epochs: 4,
            minibatch: 256,
            frames_per_env: 128,
            entropy_coef: 0.01,
            value_coef: 0.5,
            max_grad_norm: 0.5,
            adam_eps: 1e-8,
            normalize_advantages: true,
            distill: DistillSpec::default(),
        }
    }
}

impl StudentSpec {
    fn is_default(&self) -> bool {
        *self == StudentSpec::default()
    }

    /// The checks `parse` applies to each field.
    pub fn validate(&self) -> Result<(), String> {
        check_positive("lr", self.lr)?;
        check_unit_interval("gamma", self.gamma)?;
        check_unit_interval("gae_lambda", self.gae_lambda)?;
        check_positive("clip", self.clip)?;
        check_count("epochs", self.epochs as i64, COUNT_RANGE_EPOCHS)?;
        check_count("minibatch", self.minibatch as i64, COUNT_RANGE_SAMPLES)?;
        check_count("frames_per_env", self.frames_per_env as i64, COUNT_RANGE_SAMPLES)?;
        check_non_negative("entropy_coef", self.entropy_coef)?;
        check_non_negative("value_coef", self.value_coef)?;
        check_positive("max_grad_norm", self.max_grad_norm)?;
        check_positive("adam_eps", self.adam_eps)?;
        check_non_negative("lambda0", self.distill.lambda0)?;
        check_count("anneal_frames", i64::try_from(self.distill.anneal_frames).unwrap_or(i64::MAX), 1..=i64::MAX)?;
        Ok(())
    }
}

/// How the LLM teacher turns the model's text into a distribution over the legal options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoringMode {
    /// Softmax over each option phrase's log-likelihood as a continuation of the prompt.
    #[default]
    Continuation,
    /// Options listed under letters; one next-token distribution over the letters.
    Menu,
    /// LLM4Teach's way: sample several answers and count the legal options they name.
    SampleAndCount,
}

/// What the teacher's decoder-layer weights are dequantized to at load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightPrecision {
    /// f32 (~1.1 GB for Gemma 3 270M): prompt passes at llama.cpp's speed.
    #[default]
    F32,
    /// f16: half the memory and half the bytes read per pass.
    F16,
}

/// The teacher's default softmax temperature over option scores.
pub const DEFAULT_TEACHER_TEMPERATURE: f64 = 0.25;

/// The LLM teacher's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename = "Teacher")]
pub struct TeacherSpec {
    /// A GGUF file; the default model (`make model`) when left out.
    pub model: Option<PathBuf>,
    /// A prompt template file; `assets/prompts/grid.txt` when left out.
    pub prompt: Option<PathBuf>,
    /// Inference worker threads (one is fastest on 2 cores).
    #[serde(deserialize_with = "deserialize_workers")]
    pub workers: usize,
    pub scoring: ScoringMode,
    /// Softmax temperature over option scores (and of sampling in sample-and-count mode).
    /// Below 1 sharpens the advice, which the student distills better: on SimpleDoorKey the
    /// default 0.25 took the LLM-taught student to 0.9 success sooner than 1.0 (README).
    #[serde(deserialize_with = "deserialize_temperature")]
    pub temperature: f64,
    /// Divide each option's log-likelihood by its token count before the softmax.
    pub length_normalized: bool,
    /// Generate a short rationale with each advice (for display).
    pub rationale: bool,
    /// How much of the state the description given to the teacher tells (`Coarse`: held and
    /// seen objects; `Detailed`: also what is in front and where each object is).
    pub description: Detail,
    /// Headless runs: the student waits for the teacher's advice on each situation it has not
    /// been advised on yet (LLM4Teach's way), so every frame of it counts with advice; the app
    /// never waits.
    pub wait_for_advice: bool,
    /// Precision of the model's layer weights (`F32` or `F16`).
    pub weights: WeightPrecision,
    /// LoRA adapters tuned by `duet tune` (safetensors), put beside the model's weights.
    pub adapters: Option<PathBuf>,
}

impl Default for TeacherSpec {
    fn default() -> TeacherSpec {
        TeacherSpec {
            model: None,
            prompt: None,
            workers: 1,
            scoring: ScoringMode::default(),
            temperature: DEFAULT_TEACHER_TEMPERATURE,
            length_normalized: false,
            rationale: false,
            description: Detail::Coarse,
            wait_for_advice: false,
            weights: WeightPrecision::F32,
            adapters: None,
        }
    }
}

impl TeacherSpec {
    fn is_default(&self) -> bool {
        *self == TeacherSpec::default()
    }

    /// The checks `parse` applies to each field.
    pub fn validate(&self) -> Result<(), String> {
        check_count("workers", self.workers as i64, COUNT_RANGE_WORKERS)?;
        check_positive("temperature", self.temperature)?;
        Ok(())
    }
}

const COUNT_RANGE_EPOCHS: RangeInclusive<i64> = 1..=1000;
const COUNT_RANGE_WORKERS: RangeInclusive<i64> = 1..=16;
const COUNT_RANGE_SAMPLES: RangeInclusive<i64> = 1..=1_000_000;

fn check_positive(field: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(format!("{field} must be positive (got {value})")) }
}

fn check_non_negative(field: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 { Ok(value) } else { Err(format!("{field} must be at least 0 (got {value})")) }
}

fn check_unit_interval(field: &str, value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(format!("{field} must be between 0 and 1 (got {value})")) }
}

fn check_count(field: &str, value: i64, range: RangeInclusive<i64>) -> Result<i64, String> {
    if range.contains(&value) {
        Ok(value)
    } else if *range.end() == i64::MAX {
        Err(format!("{field} must be at least {} (got {value})", range.start()))
    } else {
        Err(format!("{field} must be between {} and {} (got {value})", range.start(), range.end()))
    }
}

/// One deserializer per checked field, so the message names the field and ron points at
/// the value.
macro_rules! checked_float {
    ($name:ident, $field:literal, $check:ident) => {
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
            $check($field, f64::deserialize(deserializer)?).map_err(D::Error::custom)
        }
    };
}
checked_float!(deserialize_lr, "lr", check_positive);
checked_float!(deserialize_gamma, "gamma", check_unit_interval);
checked_float!(deserialize_gae_lambda, "gae_lambda", check_unit_interval);
checked_float!(deserialize_clip, "clip", check_positive);
checked_float!(deserialize_entropy_coef, "entropy_coef", check_non_negative);
checked_float!(deserialize_value_coef, "value_coef", check_non_negative);
checked_float!(deserialize_max_grad_norm, "max_grad_norm", check_positive);
checked_float!(deserialize_adam_eps, "adam_eps", check_positive);
checked_float!(deserialize_lambda0, "lambda0", check_non_negative);
checked_float!(deserialize_temperature, "temperature", check_positive);

macro_rules! checked_count {
    ($name:ident, $field:literal, $range:expr, $ty:ty) => {
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
            let value = check_count($field, i64::deserialize(deserializer)?, $range).map_err(D::Error::custom)?;
            <$ty>::try_from(value).map_err(|_| D::Error::custom(format!("{} is too large (got {value})", $field)))
        }
    };
}
checked_count!(deserialize_epochs, "epochs", COUNT_RANGE_EPOCHS, usize);
checked_count!(deserialize_minibatch, "minibatch", COUNT_RANGE_SAMPLES, usize);
checked_count!(deserialize_frames_per_env, "frames_per_env", COUNT_RANGE_SAMPLES, usize);
checked_count!(deserialize_workers, "workers", COUNT_RANGE_WORKERS, usize);
checked_count!(deserialize_anneal_frames, "anneal_frames", 1..=i64::MAX, u64);

/// Why a scene could not be loaded. Lines and columns count from 1; columns count characters.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The file (or scenes directory) could not be read at all.
    #[error("{}: cannot read: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// The text is not a valid scene; `line:col` points at the offending text.
    #[error("{}:{line}:{col}: {message}", path.display())]
    Invalid { path: PathBuf, line: usize, col: usize, message: String },
}

impl SceneError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SceneError::Read { path, .. } | SceneError::Invalid { path, .. } => path,
        }
    }
}

impl Default for Scene {
    /// The app's default scene; `scenes/default.ron` holds exactly this.
    fn default() -> Scene {
        Scene {
            name: "Default: DoorKey 8x8".into(),
            seed: 1,
            env: EnvSpec::Grid(GridSpec {
                level: Level::DoorKey { size: 8 },
                num_envs: DEFAULT_NUM_ENVS,
                max_steps: None,
            }),
            student: StudentSpec::default(),
            teacher: TeacherSpec::default(),
        }
    }
}

impl Scene {
    /// Reads and parses a scene file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scene, SceneError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|error| SceneError::Read { path: path.to_owned(), error })?;
        match String::from_utf8(bytes) {
            Ok(text) => Scene::parse(&text, path),
            Err(err) => {
                // Point at the first bad byte, counted as ron counts positions.
                let valid = String::from_utf8_lossy(&err.as_bytes()[..err.utf8_error().valid_up_to()]);
                let (line, col) = end_position(&valid);
                Err(SceneError::Invalid { path: path.to_owned(), line, col, message: "invalid UTF-8".into() })
            }
        }
    }

    /// Parses a scene from `text`; `path` names the source in error messages, and an
    /// embodied scene's plan is found relative to its directory (and loaded, to check it).
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Scene, SceneError> {
        let path = path.as_ref();
        // Editors count no column for a byte-order mark, so drop it before ron counts one.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut scene: Scene = ron_options().from_str(text).map_err(|err| {
            let (line, col) = error_position(text, &err);
            SceneError::Invalid { path: path.to_owned(), line, col, message: describe(&err.code) }
        })?;
        if let EnvSpec::Embodied(embodied) = &mut scene.env {
            let dir = path.parent().unwrap_or(Path::new(""));
            embodied.plan_path = dir.join(&embodied.plan);
        }
        // Checks across sections, and the plan file: pointed at the `Embodied` section.
        if let Err(message) = scene.check_env() {
            let (line, col) = text.find("Embodied").map_or((1, 1), |at| end_position(&text[..at]));
            return Err(SceneError::Invalid { path: path.to_owned(), line, col, message });
        }
        Ok(scene)
    }

    /// The environment as envs are built from it: the grid level, or the embodied plan loaded.
    pub fn env_kind(&self) -> Result<EnvKind, String> {
        match &self.env {
            EnvSpec::Grid(grid) => Ok(EnvKind::Grid(grid.level.clone())),
            EnvSpec::Embodied(embodied) => embodied.setup().map(EnvKind::Embodied),
        }
    }

    /// An embodied scene's plan loads and has the task, and its student can read its
    /// observation (a row of ray readings: the MLP encoder, the egocentric kind).
    fn check_env(&self) -> Result<(), String> {
        if let EnvSpec::Embodied(embodied) = &self.env {
            embodied.setup()?;
            if self.student.encoder != EncoderKind::Mlp {
                return Err(format!(
                    "embodied scenes need `encoder: Mlp` in `student` (got {:?}): their observation is a row \
                     of ray readings, not an image",
                    self.student.encoder
                ));
            }
            if self.student.observation != ObservationKind::Egocentric {
                return Err("embodied scenes have no historical view: leave `observation` out".into());
            }
        }
        Ok(())
    }

    /// The scene as RON that `parse` reads back to an equal scene (comments are not kept).
    pub fn to_ron_string(&self) -> String {
        let pretty = ron::ser::PrettyConfig::new().struct_names(true);
        match ron_options().to_string_pretty(self, pretty) {
            Ok(text) => text,
            // Only strings and integers under fixed struct names: ron cannot reject these.
            Err(err) => unreachable!("a scene always serialises to RON: {err}"),
        }
    }

    /// Like `to_ron_string`, but always with the `student` section, defaults spelled out, and
    /// an embodied plan named by its absolute path (for run records, which must not change
    /// meaning when defaults do, and load from the run's directory).
    pub fn to_ron_string_with_student(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename = "Scene")]
        struct Explicit<'a> {
            name: &'a str,
            seed: u64,
            env: &'a EnvSpec,
            student: &'a StudentSpec,
            teacher: &'a TeacherSpec,
        }
        let mut env = self.env.clone();
        if let EnvSpec::Embodied(embodied) = &mut env {
            let resolved = if embodied.plan_path.as_os_str().is_empty() { &embodied.plan } else { &embodied.plan_path };
            embodied.plan = std::path::absolute(resolved).unwrap_or_else(|_| resolved.clone());
        }
        let explicit =
            Explicit { name: &self.name, seed: self.seed, env: &env, student: &self.student, teacher: &self.teacher };
        let pretty = ron::ser::PrettyConfig::new().struct_names(true);
        match ron_options().to_string_pretty(&explicit, pretty) {
            Ok(text) => text,
            Err(err) => unreachable!("a scene always serialises to RON: {err}"),
        }
    }

    /// The grid environment, if the scene runs one.
    pub fn grid(&self) -> Option<&GridSpec> {
        match &self.env {
            EnvSpec::Grid(grid) => Some(grid),
            EnvSpec::Embodied(_) => None,
        }
    }

    /// The grid environment, mutably (for scenes edited in code).
    pub fn grid_mut(&mut self) -> Option<&mut GridSpec> {
        match &mut self.env {
            EnvSpec::Grid(grid) => Some(grid),
            EnvSpec::Embodied(_) => None,
        }
    }

    /// The embodied environment, if the scene runs one.
    pub fn embodied(&self) -> Option<&EmbodiedSpec> {
        match &self.env {
            EnvSpec::Grid(_) => None,
            EnvSpec::Embodied(embodied) => Some(embodied),
        }
    }

    /// The grid level, if the scene runs a grid environment.
    pub fn grid_level(&self) -> Option<&Level> {
        self.grid().map(|grid| &grid.level)
    }

    /// Checks a scene built in code by the rules `parse` enforces, so that `to_ron_string`
    /// writes a file that loads.
    pub fn validate(&self) -> Result<(), String> {
        check_name(&self.name)?;
        match &self.env {
            EnvSpec::Grid(grid) => grid.validate()?,
            EnvSpec::Embodied(embodied) => embodied.validate()?,
        }
        self.check_env()?;
        self.student.validate()?;
        self.teacher.validate()
    }
}

impl GridSpec {
    /// The step limit an episode gets: the override, else the level's own. Expects a
    /// validated level (huge sizes would overflow the level's formula).
    pub fn max_steps_or_default(&self) -> u32 {
        self.max_steps.unwrap_or_else(|| self.level.default_max_steps())
    }

    /// The checks `parse` applies to each field.
    pub fn validate(&self) -> Result<(), String> {
        self.level.validate().map_err(|err| format!("impossible level {err}"))?;
        check_num_envs(i64::try_from(self.num_envs).unwrap_or(i64::MAX))?;
        check_max_steps(self.max_steps.map(i64::from))?;
        Ok(())
    }
}

/// The file name a preset level's scene has in `scenes/`: the level name in lowercase with
/// a dash before its parameters ("doorkey-8x8.ron", "keycorridor-s3r1.ron").
pub fn scene_file_name(level: &Level) -> String {
    let stem = match level {
        Level::KeyCorridor { num_rows, room_size } => format!("keycorridor-s{room_size}r{num_rows}"),
        Level::LavaCrossing { size, num_crossings } => format!("lavacrossing-s{size}n{num_crossings}"),
        other => other.name().to_lowercase(),
    };
    format!("{stem}.ron")
}

/// Each scene file with what loading it gave.
pub type SceneListing = Vec<(PathBuf, Result<Scene, SceneError>)>;

/// Every `*.ron` file in `dir`, sorted by path, each loaded or with the reason it did not
/// load (for a scene picker, which shows both). Errs only when `dir` itself is unreadable.
pub fn list_scenes(dir: impl AsRef<Path>) -> Result<SceneListing, SceneError> {
    let dir = dir.as_ref();
    let unreadable = |error| SceneError::Read { path: dir.to_owned(), error };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|ext| ext == "ron") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let scene = Scene::load(&path);
            (path, scene)
        })
        .collect())
}

/// RON with two extensions on by default, so files read naturally: `Grid(level: ..)` rather
/// than `Grid((level: ..))`, and `max_steps: 640` rather than `max_steps: Some(640)`.
fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(Extensions::UNWRAP_VARIANT_NEWTYPES | Extensions::IMPLICIT_SOME)
}

fn default_num_envs() -> usize {
    DEFAULT_NUM_ENVS
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() { Err("name must not be blank".into()) } else { Ok(()) }
}

/// Takes a signed count so that `-1` gets the range message rather than ron's bare
/// "integer is out of bounds".
fn check_num_envs(num_envs: i64) -> Result<usize, String> {
    let (lo, hi) = (*NUM_ENVS_RANGE.start(), *NUM_ENVS_RANGE.end());
    match usize::try_from(num_envs) {
        Ok(n) if NUM_ENVS_RANGE.contains(&n) => Ok(n),
        _ => Err(format!("num_envs must be between {lo} and {hi} (got {num_envs})")),
    }
}

fn check_max_steps(max_steps: Option<i64>) -> Result<Option<u32>, String> {
    match max_steps {
        None => Ok(None),
        Some(steps) => match u32::try_from(steps) {
            Ok(0) => Err("max_steps must be at least 1; leave it out to use the level's own limit".into()),
            Ok(steps) => Ok(Some(steps)),
            Err(_) => Err(format!("max_steps must be between 1 and {} (got {steps})", u32::MAX)),
        },
    }
}

/// Parses and validates a level name, explaining what names exist when it is unknown.
fn resolve_level(name: &str) -> Result<Level, String> {
    let Some(level) = Level::from_name(name) else {
        let mut message = format!("unknown level {name:?}");
        // Near misses: wrong case, or a scene file's name where the level's belongs.
        let wanted = name.trim().to_lowercase();
        let near = Level::presets()
            .into_iter()
            .find(|level| level.name().to_lowercase() == wanted || scene_file_name(level) == format!("{wanted}.ron"));
        if let Some(level) = near {
            let _ = write!(message, " (did you mean {:?}?)", level.name());
        }
        let presets: Vec<String> = Level::presets().iter().map(Level::name).collect();
        let _ = write!(message, "; expected a preset ({}) or a sized family ({SIZED_FAMILIES})", presets.join(", "));
        return Err(message);
    };
    level.validate().map_err(|err| format!("impossible level {err}"))?;
    Ok(level)
}

fn deserialize_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    check_name(&name).map_err(D::Error::custom)?;
    Ok(name)
}

fn deserialize_num_envs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    check_num_envs(i64::deserialize(deserializer)?).map_err(D::Error::custom)
}

fn deserialize_max_steps<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    // Checked inside the option, so that in `Some(0)` ron's span is still at the `0`.
    struct Checked(u32);
    impl<'de> Deserialize<'de> for Checked {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
            match check_max_steps(Some(i64::deserialize(deserializer)?)) {
                Ok(Some(steps)) => Ok(Checked(steps)),
                Ok(None) => Err(D::Error::custom("max_steps is missing")),
                Err(message) => Err(D::Error::custom(message)),
            }
        }
    }
    Ok(Option::<Checked>::deserialize(deserializer)?.map(|Checked(steps)| steps))
}

/// Levels travel by name. Checking inside deserialisation lets ron attach the position of
/// the name itself to the error.
mod level_by_name {
    use super::*;

    pub fn serialize<S: serde::Serializer>(level: &Level, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&level.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Level, D::Error> {
        let name = String::deserialize(deserializer)?;
        resolve_level(&name).map_err(D::Error::custom)
    }
}

/// One message style for all errors: lowercase, naming the field and what was expected.
fn describe(code: &ron::Error) -> String {
    use ron::Error as E;
    let within = |outer: &Option<String>| outer.as_ref().map(|o| format!(" in `{o}`")).unwrap_or_default();
    match code {
        E::NoSuchStructField { expected, found, outer } => {
            format!("unknown field `{found}`{}; expected {}", within(outer), one_of(expected, "no fields"))
        }
        E::MissingStructField { field, outer } => format!("missing field `{field}`{}", within(outer)),
        E::DuplicateStructField { field, outer } => format!("duplicate field `{field}`{}", within(outer)),
        E::NoSuchEnumVariant { expected, found, .. } => {
            format!("unknown variant `{found}`; expected {}", one_of(expected, "no variants"))
        }
        E::InvalidValueForType { expected, found } => format!("expected {expected}, found {found}"),
        // Our own checks, already worded.
        E::Message(message) => message.clone(),
        other => lowercase_first(&other.to_string()),
    }
}

fn one_of(names: &[&str], none: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => none.to_owned(),
        [only] => only.clone(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// "Expected comma" -> "expected comma", leaving acronyms ("RON ...") alone.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text.to_owned(),
    }
}

/// Where to point for a ron error: the first character of the offending value or token.
/// When ron's parser rejects a token, its span starts at the whitespace before it, so step
/// over that whitespace towards the span's end.
fn error_position(text: &str, err: &ron::error::SpannedError) -> (usize, usize) {
    let start = (err.span.start.line, err.span.start.col);
    let end = (err.span.end.line, err.span.end.col);
    if matches!(err.code, ron::Error::Message(_)) {
        // Our checks' spans start just inside a string's quote or after a number's sign;
        // point at the value as written instead.
        let before = char_index(text, start).and_then(|i| i.checked_sub(1)).and_then(|i| text.chars().nth(i));
        return match before {
            Some('"' | '-' | '+') if start.1 > 1 => (start.0, start.1 - 1),
            _ => start,
        };
    }
    let Some(start_index) = char_index(text, start) else { return start };
    let mut position = start;
    for ch in text.chars().skip(start_index) {
        if !ch.is_whitespace() || position >= end {
            break;
        }
        position = if ch == '\n' { (position.0 + 1, 1) } else { (position.0, position.1 + 1) };
    }
    position
}

/// The char index of a 1-based line and column, if the text has that position.
fn char_index(text: &str, (line, col): (usize, usize)) -> Option<usize> {
    let (mut current_line, mut current_col) = (1, 1);
    for (index, ch) in text.chars().enumerate() {
        if (current_line, current_col) == (line, col) {
            return Some(index);
        }
        if ch == '\n' {
            current_line += 1;
            current_col = 1;
        } else {
            current_col += 1;
        }
    }
    None
}

/// The 1-based line and column just past the end of `text`, as ron counts them.
fn end_position(text: &str) -> (usize, usize) {
    let line = 1 + text.chars().filter(|&c| c == '\n').count();
    let col = 1 + text.chars().rev().take_while(|&c| c != '\n').count();
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message `parse` gives for `text`, with its `path:line:col` prefix.
    fn error_of(text: &str) -> String {
        match Scene::parse(text, "t.ron") {
            Ok(scene) => panic!("expected an error, parsed {scene:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// A scene whose `env` body is `grid`, so each test writes only the line it is about.
    fn with_grid(grid: &str) -> String {
        format!("Scene(\n    name: \"t\",\n    seed: 1,\n    env: Grid(\n{grid}\n    ),\n)\n")
    }

    #[test]
    fn parses_the_documented_format() {
        let text = r#"
// A comment header.
Scene(
    name: "DoorKey 8x8",
    seed: 7,
    env: Grid(
        level: "DoorKey-8x8",
        num_envs: 32,
        max_steps: 640,
    ),
)
"#;
        let scene = Scene::parse(text, "t.ron").expect("valid scene");
        assert_eq!(scene.name, "DoorKey 8x8");
        assert_eq!(scene.seed, 7);
        let grid = scene.grid().expect("grid scene");
        assert_eq!(grid.level, Level::DoorKey { size: 8 });
        assert_eq!(grid.num_envs, 32);
        assert_eq!(grid.max_steps, Some(640));
        assert_eq!(grid.max_steps_or_default(), 640);
        assert_eq!(scene.grid_level(), Some(&Level::DoorKey { size: 8 }));
    }

    #[test]
    fn defaults_and_alternative_spellings() {
        // No struct name, no num_envs, no max_steps; a Gym id for the level; `Some(..)`.
        let scene = Scene::parse(r#"(name: "x", seed: 0, env: Grid(level: "MiniGrid-DoorKey-12x12-v0"))"#, "t")
            .expect("valid scene");
        let grid = scene.grid().expect("grid scene");
        assert_eq!(grid.level, Level::DoorKey { size: 12 });
        assert_eq!(grid.num_envs, DEFAULT_NUM_ENVS);
        assert_eq!(grid.max_steps, None);
        assert_eq!(grid.max_steps_or_default(), Level::DoorKey { size: 12 }.default_max_steps());
        let scene = Scene::parse(&with_grid("level: \"KeyCorridorS3R1\", max_steps: Some(5)"), "t").expect("valid");
        assert_eq!(scene.grid().and_then(|g| g.max_steps), Some(5));
        let scene = Scene::parse(&with_grid("level: \"KeyCorridorS3R1\", max_steps: None"), "t").expect("valid");
        assert_eq!(scene.grid().and_then(|g| g.max_steps), None);
        // A byte-order mark is not part of the text.
        assert!(Scene::parse("\u{feff}(name: \"x\", seed: 0, env: Grid(level: \"FourRooms\"))", "t").is_ok());
    }

    #[test]
    fn round_trips_through_ron() {
        let mut scenes = vec![Scene::default()];
        for level in Level::presets() {
            scenes.push(Scene {
                name: format!("{level} \"quoted\" \\ ünïcode"),
                seed: u64::MAX,
                env: EnvSpec::Grid(GridSpec { level, num_envs: 4096, max_steps: Some(1) }),
                student: StudentSpec::default(),
                teacher: TeacherSpec::default(),
            });
        }
        let mut tuned = Scene::default();
        tuned.student.encoder = EncoderKind::Mlp;
        tuned.student.observation = ObservationKind::Historical;
        tuned.student.lr = 2.5e-4;
        tuned.student.clip_value = false;
        tuned.student.distill = DistillSpec { lambda0: 0.5, schedule: LambdaSchedule::Exponential, anneal_frames: 7 };
        scenes.push(tuned);
        for scene in scenes {
            assert_eq!(scene.validate(), Ok(()));
            let text = scene.to_ron_string();
            assert_eq!(Scene::parse(&text, "t").ok(), Some(scene.clone()), "{text}");
        }
        let explicit = Scene::default().to_ron_string_with_student();
        assert!(explicit.contains("student: Student(") && explicit.contains("distill: Distill("), "{explicit}");
        assert_eq!(Scene::parse(&explicit, "t").ok(), Some(Scene::default()));
        let text = Scene::default().to_ron_string();
        assert_eq!(
            text,
            "Scene(\n    name: \"Default: DoorKey 8x8\",\n    seed: 1,\n    env: Grid(\n        \
             level: \"DoorKey-8x8\",\n        num_envs: 16,\n    ),\n)"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_text() {
        // Line 3 lacks its comma: ron notices at the next field.
        assert_eq!(error_of("Scene(\n    name: \"t\"\n    seed: 1,\n)"), "t.ron:3:5: expected comma");
        assert_eq!(error_of("Scene(\n    name: \"t"), "t.ron:2:11: expected end of string");
        assert_eq!(error_of(""), "t.ron:1:1: expected opening `(` for struct `Scene`");
        assert_eq!(
            error_of("Scene(name: \"t\", seed: 1, env: Grid(level: \"FourRooms\"))\n  junk"),
            "t.ron:2:3: non-whitespace trailing characters"
        );
        assert_eq!(error_of("Scne(name: \"t\")"), "t.ron:1:1: expected struct `Scene` but found `Scne`");
    }

    #[test]
    fn unknown_fields_name_the_field_and_the_expected_ones() {
        assert_eq!(
            error_of(&with_grid("        level: \"DoorKey-8x8\",\n        nm_envs: 3,")),
            "t.ron:6:9: unknown field `nm_envs` in `Grid`; expected one of `level`, `num_envs`, `max_steps`"
        );
        assert_eq!(
            error_of("Scene(\n    name: \"t\",\n    seed: 1,\n    critic: (),\n)"),
            "t.ron:4:5: unknown field `critic` in `Scene`; expected one of `name`, `seed`, `env`, `student`, `teacher`"
        );
        assert_eq!(
            error_of("Scene(\n    name: \"t\",\n    seed: 1,\n    env: Maze(level: \"FourRooms\"),\n)"),
            "t.ron:4:10: unknown variant `Maze`; expected one of `Grid`, `Embodied`"
        );
        assert_eq!(
            error_of(&with_grid("        level: \"FourRooms\",\n        level: \"FourRooms\",")),
            "t.ron:6:9: duplicate field `level` in `Grid`"
        );
    }

    #[test]
    fn missing_fields_point_at_the_closing_paren() {
        assert_eq!(error_of(&with_grid("        num_envs: 3,")), "t.ron:6:5: missing field `level` in `Grid`");
        assert_eq!(
            error_of("Scene(\n    name: \"t\",\n    env: Grid(level: \"FourRooms\"),\n)"),
            "t.ron:4:1: missing field `seed` in `Scene`"
        );
    }

    #[test]
    fn wrong_types_point_at_the_value() {
        assert_eq!(error_of("Scene(\n    name: \"t\",\n    seed: \"one\",\n)"), "t.ron:3:11: expected integer");
        assert_eq!(error_of(&with_grid("        level: 8,")), "t.ron:5:16: expected string");
        assert_eq!(
            error_of(&with_grid("        level: \"FourRooms\",\n        num_envs: \"16\",")),
            "t.ron:6:19: expected integer"
        );
        assert_eq!(error_of("Scene(\n    name: \"t\",\n    seed: -1,\n)"), "t.ron:3:12: integer is out of bounds");
        assert_eq!(
            error_of("Scene(\n    name: \"t\",\n    seed: 1,\n    env: Grid,\n)"),
            "t.ron:4:14: expected opening `(`"
        );
    }

    #[test]
    fn unknown_levels_list_what_exists() {
        let message = error_of(&with_grid("        level: \"DorKey-8x8\","));
        // The column is the name's opening quote.
        assert!(
            message.starts_with("t.ron:5:16: unknown level \"DorKey-8x8\"; expected a preset (Empty-5x5, "),
            "{message}"
        );
        assert!(message.contains("OpenDoor) or a sized family (Empty-<N>x<N>, DoorKey-<N>x<N>, "), "{message}");
        let message = error_of(&with_grid("        level: \"keycorridor-s3r1\","));
        assert!(
            message.starts_with("t.ron:5:16: unknown level \"keycorridor-s3r1\" (did you mean \"KeyCorridorS3R1\"?); "),
            "{message}"
        );
        let message = error_of(&with_grid("        level: \"doorkey-8x8\","));
        assert!(message.contains("(did you mean \"DoorKey-8x8\"?)"), "{message}");
    }

    #[test]
    fn impossible_sizes_come_from_level_validate() {
        assert_eq!(
            error_of(&with_grid("        level: \"DoorKey-3x3\",")),
            "t.ron:5:16: impossible level DoorKey-3x3: size must be between 5 and 64"
        );
        assert_eq!(
            error_of(&with_grid("        level: \"LavaCrossingS8N1\",")),
            "t.ron:5:16: impossible level LavaCrossingS8N1: size must be odd and between 5 and 64 (got 8, 1 crossings)"
        );
        // Sizes that would overflow the step-limit formula never get past validation.
        assert!(error_of(&with_grid("        level: \"Empty-100000x100000\",")).contains("impossible level"));
    }

    #[test]
    fn num_envs_must_be_in_range() {
        for value in ["0", "4097", "-1", "+0"] {
            let got = value.trim_start_matches('+');
            assert_eq!(
                error_of(&with_grid(&format!("        level: \"FourRooms\",\n        num_envs: {value},"))),
                format!("t.ron:6:19: num_envs must be between 1 and 4096 (got {got})")
            );
        }
    }

    #[test]
    fn max_steps_must_be_positive() {
        assert_eq!(
            error_of(&with_grid("        level: \"FourRooms\",\n        max_steps: 0,")),
            "t.ron:6:20: max_steps must be at least 1; leave it out to use the level's own limit"
        );
        assert_eq!(
            error_of(&with_grid("        level: \"FourRooms\",\n        max_steps: Some(0),")),
            "t.ron:6:25: max_steps must be at least 1; leave it out to use the level's own limit"
        );
        assert_eq!(
            error_of(&with_grid("        level: \"FourRooms\",\n        max_steps: 4294967296,")),
            "t.ron:6:20: max_steps must be between 1 and 4294967295 (got 4294967296)"
        );
        assert_eq!(
            error_of(&with_grid("        level: \"FourRooms\",\n        max_steps: -5,")),
            "t.ron:6:20: max_steps must be between 1 and 4294967295 (got -5)"
        );
    }

    /// A DoorKey scene whose `student` body is `student`.
    fn with_student(student: &str) -> String {
        format!(
            "Scene(\n    name: \"t\",\n    seed: 1,\n    env: Grid(level: \"DoorKey-5x5\"),\n    student: (\n{student}\n    ),\n)\n"
        )
    }

    #[test]
    fn student_section_is_optional_and_partial() {
        let scene = Scene::parse(&with_grid("        level: \"FourRooms\","), "t").expect("valid");
        assert_eq!(scene.student, StudentSpec::default());
        let scene = Scene::parse(
            &with_student(
                "        observation: Historical,\n        encoder: Mlp,\n        lr: 3e-4,\n        epochs: 8,\n        \
                 distill: (lambda0: 2, schedule: Exponential),",
            ),
            "t",
        )
        .expect("valid");
        assert_eq!(scene.student.observation, ObservationKind::Historical);
        assert_eq!(scene.student.encoder, EncoderKind::Mlp);
        assert_eq!(scene.student.lr, 3e-4);
        assert_eq!(scene.student.epochs, 8);
        assert_eq!(scene.student.gamma, 0.99, "unnamed fields keep their defaults");
        assert_eq!(scene.student.distill.lambda0, 2.0);
        assert_eq!(scene.student.distill.schedule, LambdaSchedule::Exponential);
        assert_eq!(scene.student.distill.anneal_frames, DistillSpec::default().anneal_frames);
        assert_eq!(Scene::parse(&with_student(""), "t").map(|s| s.student).ok(), Some(StudentSpec::default()));
    }

    #[test]
    fn student_errors_point_at_the_value() {
        assert_eq!(error_of(&with_student("        lr: 0,")), "t.ron:6:13: lr must be positive (got 0)");
        assert_eq!(
            error_of(&with_student("        gamma: 1.5,")),
            "t.ron:6:16: gamma must be between 0 and 1 (got 1.5)"
        );
        assert_eq!(
            error_of(&with_student("        epochs: 0,")),
            "t.ron:6:17: epochs must be between 1 and 1000 (got 0)"
        );
        assert_eq!(
            error_of(&with_student("        minibatch: -3,")),
            "t.ron:6:20: minibatch must be between 1 and 1000000 (got -3)"
        );
        assert_eq!(
            error_of(&with_student("        entropy_coef: -0.1,")),
            "t.ron:6:23: entropy_coef must be at least 0 (got -0.1)"
        );
        assert_eq!(
            error_of(&with_student("        distill: (anneal_frames: 0),")),
            "t.ron:6:34: anneal_frames must be at least 1 (got 0)"
        );
        assert_eq!(
            error_of(&with_student("        encoder: Transformer,")),
            "t.ron:6:18: unknown variant `Transformer`; expected one of `Cnn`, `Mlp`, `Llm4Teach`"
        );
        let message = error_of(&with_student("        learning_rate: 0.1,"));
        assert!(
            message.starts_with(
                "t.ron:6:9: unknown field `learning_rate` in `Student`; expected one of `observation`, `encoder`, `lr`, "
            ),
            "{message}"
        );
        let message = error_of(&with_student("        distill: (lambda: 1),"));
        assert!(message.starts_with("t.ron:6:19: unknown field `lambda`"), "{message}");
        let mut scene = Scene::default();
        scene.student.gae_lambda = -1.0;
        assert!(scene.validate().is_err_and(|e| e.starts_with("gae_lambda")));
    }

    #[test]
    fn blank_names_are_rejected() {
        assert_eq!(error_of("Scene(name: \"  \", seed: 1)"), "t.ron:1:13: name must not be blank");
    }

    #[test]
    fn validate_catches_scenes_built_in_code() {
        let mut scene = Scene::default();
        scene.grid_mut().expect("grid scene").num_envs = 0;
        assert!(scene.validate().is_err_and(|e| e.starts_with("num_envs")));
        scene = Scene::default();
        scene.grid_mut().expect("grid scene").level = Level::DoorKey { size: 2 };
        assert!(scene.validate().is_err_and(|e| e.starts_with("impossible level")));
    }

    #[test]
    fn teacher_section_round_trips_and_checks_its_fields() {
        let text = "Scene(name: \"t\", seed: 1, env: Grid(level: \"DoorKey-5x5\"),\n  teacher: Teacher(model: \"m.gguf\", workers: 2, scoring: Menu, temperature: 0.5))";
        let scene = Scene::parse(text, "t.ron").expect("valid");
        assert_eq!(scene.teacher.model.as_deref(), Some(Path::new("m.gguf")));
        assert_eq!(
            (scene.teacher.workers, scene.teacher.scoring, scene.teacher.temperature),
            (2, ScoringMode::Menu, 0.5)
        );
        assert_eq!(Scene::parse(&scene.to_ron_string(), "again.ron").expect("round trip"), scene);
        let zero = Scene::parse(&text.replace("workers: 2", "workers: 0"), "t.ron").unwrap_err();
        assert!(zero.to_string().starts_with("t.ron:2:"), "{zero}");
        assert!(zero.to_string().contains("workers must be between 1 and 16 (got 0)"), "{zero}");
        let cold = Scene::parse(&text.replace("temperature: 0.5", "temperature: 0.0"), "t.ron").unwrap_err();
        assert!(cold.to_string().contains("temperature must be positive"), "{cold}");
        let mut built = Scene::default();
        built.teacher.workers = 99;
        assert!(built.validate().is_err_and(|e| e.starts_with("workers")));
    }

    #[test]
    fn file_names_follow_the_level_names() {
        assert_eq!(scene_file_name(&Level::DoorKey { size: 8 }), "doorkey-8x8.ron");
        assert_eq!(scene_file_name(&Level::KeyCorridor { num_rows: 1, room_size: 3 }), "keycorridor-s3r1.ron");
        assert_eq!(scene_file_name(&Level::LavaCrossing { size: 9, num_crossings: 1 }), "lavacrossing-s9n1.ron");
        assert_eq!(scene_file_name(&Level::MultiRoom { num_rooms: 2, max_room_size: 4 }), "multiroom-n2-s4.ron");
        assert_eq!(scene_file_name(&Level::GoToRedBallNoDists), "gotoredballnodists.ron");
    }

    #[test]
    fn no_input_panics() {
        // Truncations of a valid scene hit every "unexpected end" path; odd bytes the rest.
        let text = Scene::default().to_ron_string();
        for end in 0..=text.len() {
            if text.is_char_boundary(end) {
                let _ = Scene::parse(&text[..end], "t");
            }
        }
        for text in [
            "\"",
            "(",
            ")",
            "Scene(((((((((",
            "[[[[[[[[[[[[[[[[[[[[",
            "Scene(name: r#\"",
            "/*",
            "#![enable(",
            "\u{0}",
            "é:é",
        ] {
            let _ = Scene::parse(text, "t");
        }
        // Every character of a valid scene swapped for each of a few troublemakers.
        let chars: Vec<char> = text.chars().collect();
        for index in 0..chars.len() {
            for swap in ['"', '(', ')', ',', ':', '-', '0', '9', ' ', '\n', 'é', '/', '#', 'r'] {
                let mut mutated = chars.clone();
                mutated[index] = swap;
                let mutated: String = mutated.into_iter().collect();
                let _ = Scene::parse(&mutated, "t");
            }
        }
        let deep = format!("Scene(name: {}", "[".repeat(100_000));
        assert!(Scene::parse(&deep, "t").is_err());
    }
}
