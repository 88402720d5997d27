//! The curves tab: any of the update records' series against env frames, one small plot
//! each with a shared frames axis, hover read-outs and a vertical marker at every prompt Apply.

use bevy_egui::egui;
use egui_plot::{HLine, Line, Plot, PlotPoints, VLine};

use super::super::learning_curve::{frames_axis, frames_grid_spacer, short_count};
use super::super::prompt_editor::PromptEditor;
use super::super::theme::{self, egui_color};
use super::super::update_history::UpdateHistory;
use crate::metrics::UpdateRecord;

/// One curve the tab can draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    SuccessRate,
    Return,
    EpisodeLength,
    PolicyLoss,
    ValueLoss,
    Entropy,
    TeacherKl,
    Agreement,
    Lambda,
    Fps,
}

impl Series {
    pub const ALL: [Series; 10] = [
        Series::SuccessRate,
        Series::Return,
        Series::EpisodeLength,
        Series::PolicyLoss,
        Series::ValueLoss,
        Series::Entropy,
        Series::TeacherKl,
        Series::Agreement,
        Series::Lambda,
        Series::Fps,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Series::SuccessRate => "success %",
            Series::Return => "return",
            Series::EpisodeLength => "episode length",
            Series::PolicyLoss => "policy loss",
            Series::ValueLoss => "value loss",
            Series::Entropy => "entropy",
            Series::TeacherKl => "KL to teacher",
            Series::Agreement => "agreement %",
            Series::Lambda => "λ",
            Series::Fps => "frames/s",
        }
    }

    /// The series' value in `record` (`None` where the record has none, e.g. no episode yet).
    pub fn value(self, record: &UpdateRecord) -> Option<f64> {
        match self {
            Series::SuccessRate => record.success_rate.map(|rate| 100.0 * rate),
            Series::Return => record.return_mean,
            Series::EpisodeLength => record.episode_length,
            Series::PolicyLoss => Some(record.policy_loss),
            Series::ValueLoss => Some(record.value_loss),
            Series::Entropy => Some(record.entropy),
            Series::TeacherKl => record.teacher_kl,
            Series::Agreement => record.teacher_agreement.map(|rate| 100.0 * rate),
            Series::Lambda => Some(record.lambda),
            // The first update has no interval to measure over.
            Series::Fps => (record.fps > 0.0).then_some(record.fps),
        }
    }

    fn color(self) -> egui::Color32 {
        match self {
            Series::SuccessRate => egui_color(theme::SUCCESS),
            Series::Return => egui::Color32::from_rgb(120, 200, 255),
            Series::EpisodeLength => egui::Color32::from_rgb(200, 170, 255),
            Series::PolicyLoss => egui::Color32::from_rgb(255, 150, 120),
            Series::ValueLoss => egui::Color32::from_rgb(255, 200, 110),
            Series::Entropy => egui::Color32::from_rgb(150, 230, 200),
            Series::TeacherKl => egui::Color32::from_rgb(255, 120, 200),
            Series::Agreement => egui::Color32::from_rgb(92, 157, 255),
            Series::Lambda => egui::Color32::from_rgb(220, 220, 150),
            Series::Fps => egui::Color32::from_rgb(180, 180, 190),
        }
    }
}

/// Which series are drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveChoice {
    pub shown: Vec<Series>,
}

impl Default for CurveChoice {
    fn default() -> CurveChoice {
        CurveChoice { shown: vec![Series::SuccessRate, Series::Return, Series::TeacherKl, Series::Entropy] }
    }
}

/// The points of `series`, one per update that has a value.
pub fn points(series: Series, records: &[UpdateRecord]) -> Vec<[f64; 2]> {
    records.iter().filter_map(|record| series.value(record).map(|value| [record.frames as f64, value])).collect()
}

/// `lambda_override`: the Run tab's hand-set λ, drawn across the λ curve while in force.
pub fn show(
    ui: &mut egui::Ui,
    choice: &mut CurveChoice,
    history: &UpdateHistory,
    editor: &PromptEditor,
    lambda_override: Option<f64>,
) {
    ui.horizontal_wrapped(|ui| {
        for series in Series::ALL {
            let mut on = choice.shown.contains(&series);
            if ui.toggle_value(&mut on, series.label()).changed() {
                if on {
                    choice.shown.push(series);
                    // Keep the panel's order whatever the order of clicks.
                    choice.shown.sort_by_key(|shown| Series::ALL.iter().position(|s| s == shown));
                } else {
                    choice.shown.retain(|&shown| shown != series);
                }
            }
        }
    });
    let dim = egui_color(theme::TEXT_DIM);
    ui.label(
        egui::RichText::new(format!(
            "{} updates; x: env frames; dashed lines: prompt versions applied",
            history.records.len()
        ))
        .small()
        .color(dim),
    );
    if choice.shown.is_empty() {
        ui.label(egui::RichText::new("Pick a curve above.").color(dim));
        return;
    }
    let markers: Vec<u64> = editor.marker_frames().collect();
    let last_frames = history.records.last().map_or(1000.0, |record| record.frames as f64);
    let height = ((ui.available_height() - 8.0) / choice.shown.len() as f32 - 26.0).clamp(90.0, 190.0);
    let width = ui.available_width();
    for &series in &choice.shown {
        ui.label(egui::RichText::new(series.label()).color(series.color()).strong());
        Plot::new(("curve", series.label()))
            .height(height)
            .link_axis("curves_x", [true, false])
            .link_cursor("curves_x", [true, false])
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            // No card behind each plot: under software Vulkan a blended pixel costs about
            // 10 ns a frame, so four cards were ~1.7 ms; the grid lines frame the plots enough.
            .show_background(false)
            .include_x(0.0)
            .include_x(last_frames)
            .custom_x_axes(vec![frames_axis()])
            .x_grid_spacer(frames_grid_spacer(width))
            .y_axis_min_width(36.0)
            .label_formatter(move |position| match position {
                egui_plot::HoverPosition::NearDataPoint { position, .. } => {
                    Some(format!("{}\nframes {}", format_value(position.y), short_count(position.x)))
                }
                _ => None,
            })
            .show(ui, |plot| {
                plot.line(
                    Line::new(series.label(), PlotPoints::from(points(series, &history.records)))
                        .color(series.color())
                        .width(1.8),
                );
                if series == Series::Lambda
                    && let Some(lambda) = lambda_override
                {
                    plot.hline(
                        HLine::new(format!("λ set to {lambda:.3}"), lambda)
                            .color(series.color())
                            .style(egui_plot::LineStyle::dashed_dense())
                            .width(1.0),
                    );
                }
                for (index, &frames) in markers.iter().enumerate() {
                    plot.vline(
                        VLine::new(format!("prompt {}", index + 1), frames as f64)
                            .color(egui_color(theme::WARNING))
                            .style(egui_plot::LineStyle::dashed_loose())
                            .width(1.2),
                    );
                }
            });
    }
}

/// A read-out with as many digits as the value's size deserves.
fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_skip_updates_without_a_value() {
        let record =
            |frames: u64, success: Option<f64>| UpdateRecord { frames, success_rate: success, ..Default::default() };
        let records = [record(2048, None), record(4096, Some(0.5))];
        assert_eq!(points(Series::SuccessRate, &records), vec![[4096.0, 50.0]]);
        assert_eq!(points(Series::Lambda, &records).len(), 2);
    }
}
