//! The tuning tab: choose PPO, CORY or ArCHer, iterations and batch, start and stop tuning the
//! teacher's LoRA adapters in the background, and follow reward, agreement and KL per iteration.

use bevy_egui::egui;
use egui_plot::{Line, Plot, PlotPoints, Points};

use super::super::control::{Controls, RunFiles};
use super::super::simulation::{TeacherWhenOn, WantedTeacher};
use super::super::theme::{self, egui_color};
use super::super::tuning::{Tuning, TuningStatus, use_adapters};
use crate::feedback::tuning::{Algorithm, TuneRecord};

/// What "Use" changes to put tuned adapters in the live teacher: the scene's teacher settings,
/// then a Reset (the way a new scene rebuilds the teacher), with the LLM teacher on.
pub struct LiveTeacher<'a> {
    pub files: &'a mut RunFiles,
    pub controls: &'a mut Controls,
    pub wanted: &'a mut WantedTeacher,
    pub when_on: &'a mut TeacherWhenOn,
}

/// The curves shown, each with how to read it off a record (None: not measured that iteration;
/// iteration 0, the base teacher, has no reward: it is not sampled).
/// The last number is the least top of the y axis, so a flat start still shows a scale.
fn curves() -> [(&'static str, fn(&TuneRecord) -> Option<f32>, egui::Color32, f64); 3] {
    [
        ("task reward", |record| (record.iteration > 0).then_some(record.task_reward), egui_color(theme::SUCCESS), 1.0),
        ("agreement with the oracle", |record| record.agreement, egui_color(theme::ACCENT), 1.0),
        ("KL to the base", |record| record.kl_to_base, egui_color(theme::WARNING), 0.1),
    ]
}

pub fn show(ui: &mut egui::Ui, tuning: &mut Tuning, teacher: LiveTeacher) {
    let dim = egui_color(theme::TEXT_DIM);
    ui.label(
        egui::RichText::new(
            "Tunes LoRA adapters on a copy of the teacher's model from what its advice earns a frozen \
             copy of the student (as duet tune). The live teacher and training go on meanwhile.",
        )
        .small()
        .color(dim),
    );
    let busy = tuning.status.is_busy();
    ui.add_enabled_ui(!busy, |ui| {
        ui.horizontal(|ui| {
            ui.label("algorithm");
            for (algorithm, label) in
                [(Algorithm::Ppo, "PPO"), (Algorithm::Cory, "CORY"), (Algorithm::Archer, "ArCHer")]
            {
                ui.selectable_value(&mut tuning.algorithm, algorithm, label);
            }
        });
        ui.horizontal(|ui| {
            ui.label("iterations");
            ui.add(egui::DragValue::new(&mut tuning.iterations).range(1..=200));
            ui.label("batch");
            ui.add(egui::DragValue::new(&mut tuning.batch).range(1..=64))
                .on_hover_text("advice utterances per iteration (ArCHer: episodes)");
        });
    });
    ui.horizontal(|ui| {
        if ui.add_enabled(!busy, egui::Button::new("Start")).clicked() {
            tuning.start();
        }
        let can_stop = busy && !tuning.stopping;
        if ui
            .add_enabled(can_stop, egui::Button::new("Stop"))
            .on_hover_text("after the iteration under way; the adapters so far are saved")
            .clicked()
        {
            tuning.stop();
        }
    });
    status_line(ui, tuning);
    adapters_choice(ui, tuning, teacher);
    ui.add_space(4.0);
    if tuning.records.is_empty() {
        ui.label(egui::RichText::new("Curves appear from iteration 0 (the base teacher) on.").color(dim));
        return;
    }
    let last_iteration = tuning.records.last().map_or(1, |record| record.iteration).max(1) as f64;
    for (label, value, color, least_top) in curves() {
        let points: Vec<[f64; 2]> = tuning
            .records
            .iter()
            .filter_map(|record| value(record).map(|value| [record.iteration as f64, f64::from(value)]))
            .collect();
        let latest = points.last().map_or("-".to_owned(), |point| format!("{:.3}", point[1]));
        ui.label(egui::RichText::new(format!("{label}: {latest}")).color(color).strong());
        Plot::new(("tuning", label))
            .height(110.0)
            .link_axis("tuning_x", [true, false])
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .include_x(0.0)
            .include_x(last_iteration)
            .include_y(0.0)
            .include_y(least_top)
            .y_axis_min_width(36.0)
            .label_formatter(|position| match position {
                egui_plot::HoverPosition::NearDataPoint { position, .. } => {
                    Some(format!("iteration {:.0}\n{:.3}", position.x, position.y))
                }
                _ => None,
            })
            .show(ui, |plot| {
                // Points too: agreement and KL are measured only every few iterations.
                plot.points(Points::new(label, PlotPoints::from(points.clone())).color(color).radius(2.5));
                plot.line(Line::new(label, PlotPoints::from(points)).color(color).width(1.8));
            });
    }
    ui.label(
        egui::RichText::new(
            "x: iteration (0 = the base teacher); agreement and KL are measured every 5 iterations and at the last",
        )
        .small()
        .color(dim),
    );
}

fn status_line(ui: &mut egui::Ui, tuning: &Tuning) {
    let text = match &tuning.status {
        TuningStatus::Idle => "not started".to_owned(),
        TuningStatus::WaitingForStudent => "waiting for the PPO update to copy the student".to_owned(),
        TuningStatus::LoadingModel => "loading the model".to_owned(),
        TuningStatus::EvaluatingBase => "evaluating the base teacher (iteration 0)".to_owned(),
        TuningStatus::Running { iteration, of } if iteration >= of => "saving the adapters".to_owned(),
        TuningStatus::Running { iteration, of } => format!("iteration {} of {of} under way", iteration + 1),
        TuningStatus::Finished { iterations, stopped, adapters } => {
            let how = if *stopped { "stopped" } else { "finished" };
            let iterations_text =
                format!("{how} after {iterations} iteration{}", if *iterations == 1 { "" } else { "s" });
            if adapters.is_empty() {
                format!("{iterations_text}; no adapters to save")
            } else {
                let paths: Vec<String> = adapters.iter().map(|path| path.display().to_string()).collect();
                format!("{iterations_text}; adapters saved to {}", paths.join(", "))
            }
        }
        TuningStatus::Failed(message) => {
            super::failure_banner(ui, "Tuning failed", message, "Start tries again.");
            return;
        }
    };
    let text = if tuning.stopping { format!("{text} (stopping after it)") } else { text };
    ui.label(egui::RichText::new(text).strong());
}

/// A button per saved adapters file to run the live teacher with it, and one back to the base.
/// The teacher is rebuilt as a new scene rebuilds it, so the run starts over with a fresh
/// student: what the student then learns is the tuned teacher's doing.
fn adapters_choice(ui: &mut egui::Ui, tuning: &Tuning, teacher: LiveTeacher) {
    let in_force = teacher.files.scene.teacher.adapters.clone();
    let mut chosen = None;
    if let TuningStatus::Finished { adapters, .. } = &tuning.status {
        for path in adapters {
            let name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let using = in_force.as_deref() == Some(path.as_path());
            let button = egui::Button::new(format!("Use {name}"));
            if ui
                .add_enabled(!using, button)
                .on_hover_text("the LLM teacher with these adapters; the run starts over with a fresh student")
                .clicked()
            {
                chosen = Some(Some(path.clone()));
            }
        }
    }
    if let Some(path) = &in_force {
        ui.label(format!("the teacher runs with {}", path.display()));
        if ui.button("Use the base teacher").on_hover_text("no adapters; the run starts over").clicked() {
            chosen = Some(None);
        }
    }
    if let Some(adapters) = chosen {
        use_adapters(adapters, teacher.files, teacher.controls, teacher.wanted, teacher.when_on);
    }
}
