//! The teacher tab: what the focused agent knows (the teacher's input text), the option
//! distribution as horizontal bars, the rationale, where the advice came from, worker statistics.

use bevy_egui::egui;

use super::super::simulation::TrainingSnapshot;
use super::super::teacher_view::TeacherView;
use super::super::theme::{self, egui_color};
use crate::teacher::advisor::AdviceOrigin;

pub fn show(ui: &mut egui::Ui, view: &TeacherView, snapshot: &TrainingSnapshot) {
    let dim = egui_color(theme::TEXT_DIM);
    // A teacher whose workers never answered and keep failing (no model, a corrupt file):
    // say so first, in full, with how to fix it; training goes on without advice.
    if let Some(stats) = view.stats.as_ref().filter(|stats| stats.computed == 0)
        && let Some(error) = &stats.last_error
    {
        ui.add_space(6.0);
        super::failure_banner(
            ui,
            "The teacher is not running",
            error,
            "The student trains without advice meanwhile; the worker keeps retrying.",
        );
    }
    section(ui, &format!("Env {} as the teacher reads it", view.env + 1));
    super::text_card(ui, &view.description, 12.5);

    section(ui, &format!("Advice from the {} teacher", view.teacher_name));
    match &view.advice {
        None => {
            let why = if view.teacher_name == "none" {
                "The teacher is off: the student learns from reward alone."
            } else {
                "No advice for this state yet."
            };
            ui.label(egui::RichText::new(why).color(dim));
        }
        Some(advice) => {
            let mut ranked: Vec<(String, f32)> = advice
                .options
                .iter()
                .map(|option| option.to_string())
                .zip(advice.probabilities.iter().copied())
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let best = ranked.first().map_or(0.0, |entry| entry.1);
            egui::Grid::new("option_bars").num_columns(2).spacing([10.0, 5.0]).show(ui, |ui| {
                for (option, probability) in &ranked {
                    ui.label(option);
                    let color = if *probability >= best { theme::ACCENT } else { theme::FRAME_HOVERED };
                    ui.add(
                        egui::ProgressBar::new(probability.clamp(0.0, 1.0))
                            .desired_width(150.0)
                            .fill(egui_color(color))
                            .text(format!("{:.0}%", 100.0 * probability)),
                    );
                    ui.end_row();
                }
            });
            ui.add_space(4.0);
            match (&advice.rationale, &view.stats) {
                (Some(rationale), _) => {
                    ui.label(egui::RichText::new(format!("Why: {rationale}")).italics());
                }
                // A model teacher generates one only when asked: it costs more than the advice.
                (None, Some(_)) => {
                    ui.label(
                        egui::RichText::new(
                            "Why: rationales are off (about 0.7 s of the model's time each); \
                             `rationale: true` in the scene's teacher turns them on",
                        )
                        .italics()
                        .color(dim),
                    );
                }
                (None, None) => {
                    ui.label(
                        egui::RichText::new(format!("Why: the {} teacher gives no rationale", view.teacher_name))
                            .italics()
                            .color(dim),
                    );
                }
            }
            let origin = match advice.origin {
                AdviceOrigin::Cache => "from the cache",
                AdviceOrigin::Fresh => "computed fresh",
            };
            let weights = view.adapters.as_ref().map_or(String::new(), |adapters| format!(", adapters: {adapters}"));
            ui.label(
                egui::RichText::new(format!(
                    "{origin}, {:.1} ms, prompt version {}{weights}",
                    advice.latency.as_secs_f64() * 1e3,
                    advice.prompt_version
                ))
                .color(dim),
            );
        }
    }

    section(ui, "Teacher and student");
    egui::Grid::new("teacher_stats").num_columns(2).spacing([16.0, 4.0]).striped(true).show(ui, |ui| {
        let mut row = |name: &str, value: String| {
            ui.label(egui::RichText::new(name).color(dim));
            ui.label(value);
            ui.end_row();
        };
        let latest = snapshot.latest.as_ref();
        let percent = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{:.0}%", 100.0 * v));
        row("distillation weight λ", format!("{:.3}", snapshot.lambda));
        row("agreement (last update)", percent(latest.and_then(|record| record.teacher_agreement)));
        row(
            "KL to the teacher",
            latest.and_then(|record| record.teacher_kl).map_or("-".into(), |kl| format!("{kl:.3}")),
        );
        row("advised samples", latest.map_or("-".into(), |record| format!("{:.0}%", 100.0 * record.teacher_coverage)));
        match &view.stats {
            Some(stats) => {
                row("model", stats.model_name.clone());
                row("adapters", view.adapters.clone().unwrap_or_else(|| "base".to_owned()));
                row("prompt version", stats.prompt_version.to_string());
                row("workers", stats.workers.to_string());
                row("queue depth", stats.queue_depth.to_string());
                row("cache hit rate", format!("{:.0}% of {}", 100.0 * stats.cache_hit_rate(), stats.lookups));
                row(
                    "latency p50 / p95",
                    format!(
                        "{:.0} / {:.0} ms",
                        stats.latency_p50.as_secs_f64() * 1e3,
                        stats.latency_p95.as_secs_f64() * 1e3
                    ),
                );
                row("failures / restarts", format!("{} / {}", stats.failures, stats.restarts));
            }
            None => row("model", format!("none: the {} teacher runs no workers", view.teacher_name)),
        }
    });
    // Below the grid, where a long message can wrap (the banner above shows it when the
    // teacher never answered at all).
    if let Some(error) = view.stats.as_ref().filter(|stats| stats.computed > 0).and_then(|s| s.last_error.as_ref()) {
        ui.add_space(4.0);
        ui.label(egui::RichText::new(format!("last error: {error}")).color(egui_color(theme::WARNING)));
    }
}

/// A small heading with space above it.
fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(8.0);
    ui.label(egui::RichText::new(title).strong().size(14.5).color(egui_color(theme::TEXT)));
    ui.add_space(2.0);
}
