//! What the teacher panel shows about the focused env, copied from the trainer as it steps:
//! the env's description text, the teacher's option advice, its worker statistics and prompt.

use bevy::prelude::*;

use crate::env::text::describe;
use crate::teacher::advisor::{TeacherAdvice, TeacherClientStats};
use crate::training::Trainer;

/// The teacher's side of the focused env, as of the trainer's last step.
#[derive(Resource, Clone, Debug, Default)]
pub struct TeacherView {
    /// The teacher in force ("none", "oracle", ...).
    pub teacher_name: &'static str,
    /// The env this describes.
    pub env: usize,
    /// `env::text::describe` of what the focused agent knows.
    pub description: String,
    /// The teacher's options and their probabilities for that state (`None`: no advice).
    pub advice: Option<TeacherAdvice>,
    /// Worker statistics, for teachers that have workers.
    pub stats: Option<TeacherClientStats>,
    /// The prompt template in force, for teachers that take one.
    pub prompt: Option<String>,
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
        self.description = describe(envs.world(env), envs.fog(env));
        self.advice = teacher.option_advice(env).cloned();
        self.stats = teacher.client_stats();
        let prompt = teacher.prompt().map(|template| template.text());
        if self.prompt.as_deref() != prompt {
            self.prompt = prompt.map(str::to_owned);
        }
    }
}
