//! What the teacher panel shows about the focused env, copied from the trainer as it steps:
//! the env's description text, the teacher's option advice, its worker statistics and prompt,
//! and the cells the teacher's top option would walk (drawn on the focused env).

use bevy::prelude::*;

use crate::env::grid::{FogOfWar, GridWorld, Pos};
use crate::env::text::describe_at;
use crate::skills::{SkillStep, Target, TeacherOption, TrueState, skill_action};
use crate::teacher::advisor::{TeacherAdvice, TeacherClientStats};
use crate::training::Trainer;

/// Steps a planned walk may take: enough to cross the largest grids' rooms, few enough that
/// planning stays well under a millisecond.
const MAX_PLANNED_STEPS: usize = 64;

/// The teacher's side of the focused env, as of the trainer's last step.
#[derive(Resource, Clone, Debug, Default)]
pub struct TeacherView {
    /// The teacher in force ("none", "oracle", ...).
    pub teacher_name: &'static str,
    /// The env this describes.
    pub env: usize,
    /// `env::text::describe_at` of what the focused agent has seen, at the teacher's detail.
    pub description: String,
    /// The teacher's options and their probabilities for that state (`None`: no advice).
    pub advice: Option<TeacherAdvice>,
    /// Worker statistics, for teachers that have workers.
    pub stats: Option<TeacherClientStats>,
    /// The prompt template in force, for teachers that take one.
    pub prompt: Option<String>,
    /// The teacher's top option and where its skill would lead (`None`: no option advice).
    pub followed: Option<FollowedOption>,
    /// For teachers with a model: which weights advise, "base" or the tuned adapters' file name.
    pub adapters: Option<String>,
    /// What the focused env's agent has seen this episode, for envs that do not track it
    /// themselves: the skills plan over it as the teachers do.
    seen: Option<(usize, FogOfWar)>,
}

/// The teacher's most probable option for the focused env, and the walk its skill plans.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowedOption {
    pub option: TeacherOption,
    pub probability: f32,
    /// The cells the agent would step onto, in order, following the skill from where it stands
    /// (at most `MAX_PLANNED_STEPS` steps).
    pub path: Vec<Pos>,
    /// The cell the skill ends at: what it acts on (the key picked up, the door opened) or the
    /// goal stood on. `None` when it gets nowhere within the planned steps, or for options
    /// without a place (explore, drop).
    pub target: Option<Pos>,
}

impl TeacherView {
    pub fn of(trainer: &Trainer, env: usize) -> TeacherView {
        let mut view = TeacherView::default();
        view.capture(trainer, env);
        view
    }

    /// Copies the teacher's view of env `env` (clamped to the envs there are).
    pub fn capture(&mut self, trainer: &Trainer, env: usize) {
        let envs = trainer.env();
        let env = env.min(envs.num_envs().saturating_sub(1));
        let teacher = trainer.teacher();
        self.teacher_name = teacher.name();
        self.env = env;
        let detail = trainer.config().teacher_settings.description;
        if let Some(embodied) = envs.embodied(env) {
            // An apartment: its own description; the followed option is drawn by the 3D view.
            self.description = crate::env::embodied::text::describe(embodied);
            self.capture_advice(trainer, env);
            self.followed = self.top_option().map(|(option, probability)| FollowedOption {
                option,
                probability,
                path: Vec::new(),
                target: None,
            });
            return;
        }
        let world = envs.world(env);
        // What the teacher is asked: the same detail and the same record of what was seen.
        self.description = match envs.fog(env) {
            Some(fog) => describe_at(detail, world, Some(fog)),
            None => {
                let seen = self.seen_in(env, world);
                describe_at(detail, world, Some(seen))
            }
        };
        self.capture_advice(trainer, env);
        let top = self.top_option();
        let followed = match top {
            Some((option, probability)) => {
                let seen = match envs.fog(env) {
                    Some(fog) => fog,
                    None => self.seen_in(env, world),
                };
                let (path, target) = plan_walk(option, world, Some(seen));
                Some(FollowedOption { option, probability, path, target })
            }
            None => None,
        };
        self.followed = followed;
    }

    /// The teacher's advice, statistics, adapters and prompt for env `env`.
    fn capture_advice(&mut self, trainer: &Trainer, env: usize) {
        let teacher = trainer.teacher();
        self.advice = teacher.option_advice(env).cloned();
        self.stats = teacher.client_stats();
        self.adapters = self.stats.as_ref().map(|_| {
            trainer.config().teacher_settings.adapters.as_deref().map_or("base".to_owned(), |path| {
                path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
            })
        });
        let prompt = teacher.prompt().map(|template| template.text());
        if self.prompt.as_deref() != prompt {
            self.prompt = prompt.map(str::to_owned);
        }
    }

    /// The advice's most likely option and its probability.
    fn top_option(&self) -> Option<(TeacherOption, f32)> {
        self.advice.as_ref().and_then(|advice| {
            let option = advice.top_option()?;
            let index = advice.options.iter().position(|&candidate| candidate == option)?;
            Some((option, advice.probabilities.get(index).copied().unwrap_or(0.0)))
        })
    }

    /// Call after every step of the trainer with the focused env: keeps what its agent has
    /// seen this episode (the skills plan over it), one 7x7 view's work per step.
    pub fn follow_step(&mut self, trainer: &Trainer, env: usize) {
        let envs = trainer.env();
        if env >= envs.num_envs() || envs.is_embodied() || envs.fog(env).is_some() {
            return;
        }
        let world = envs.world(env);
        match &mut self.seen {
            Some((tracked, fog)) if *tracked == env => {
                if world.step_count == 0 {
                    fog.reset(world);
                } else {
                    fog.reveal(world);
                }
            }
            _ => self.seen = Some((env, FogOfWar::for_world(world))),
        }
    }

    /// What env `env`'s agent has seen as far as this view followed it (what it sees now, at
    /// least).
    fn seen_in(&mut self, env: usize, world: &GridWorld) -> &FogOfWar {
        let tracked = matches!(&self.seen, Some((tracked, _)) if *tracked == env);
        if !tracked {
            self.seen = Some((env, FogOfWar::for_world(world)));
        }
        let (_, fog) = self.seen.get_or_insert_with(|| (env, FogOfWar::for_world(world)));
        fog.reveal(world);
        fog
    }
}

/// Plays `option`'s skill forward on a copy of `world` (revealing a copy of `seen` as the
/// agent looks around; the true state when `None`) until it is done, impossible, the episode
/// ends or `MAX_PLANNED_STEPS` pass. Returns the cells stepped onto and the skill's target.
pub fn plan_walk(option: TeacherOption, world: &GridWorld, seen: Option<&FogOfWar>) -> (Vec<Pos>, Option<Pos>) {
    let mut world = world.clone();
    let mut seen = seen.cloned();
    let mut path = Vec::new();
    for _ in 0..MAX_PLANNED_STEPS {
        let step = match &seen {
            Some(fog) => skill_action(option, &world, fog),
            None => skill_action(option, &world, &TrueState),
        };
        match step {
            SkillStep::Act(action) => {
                let before = world.agent_pos;
                let outcome = world.step(action);
                if world.agent_pos != before {
                    path.push(world.agent_pos);
                }
                if let Some(fog) = &mut seen {
                    fog.reveal(&world);
                }
                if outcome.terminated || outcome.truncated {
                    // Won on the goal, or stepped into lava / ran out of time.
                    let won = outcome.terminated && outcome.reward > 0.0;
                    return (path, won.then_some(world.agent_pos));
                }
            }
            SkillStep::Done => return (path, target_when_done(option, &world)),
            SkillStep::Impossible => return (path, None),
        }
    }
    (path, None)
}

/// Where a finished skill's target is: the goal under the agent, else the cell it faces.
fn target_when_done(option: TeacherOption, world: &GridWorld) -> Option<Pos> {
    match option {
        TeacherOption::GoTo(Target::Goal) => Some(world.agent_pos),
        TeacherOption::Explore | TeacherOption::Drop => None,
        _ => Some(world.front_pos()),
    }
}
