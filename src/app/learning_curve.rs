//! The learning curve under the mosaic: success rate over the last 100 episodes against env
//! frames, one point per PPO update, drawn with egui_plot in the layout's strip.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use egui_plot::{AxisHints, Line, Plot, PlotPoints, VLine};

use super::layout::ViewLayout;
use super::ppo_worker::UpdateFinished;
use super::prompt_editor::PromptEditor;
use super::race::Rival;
use super::simulation::TrainingSnapshot;
use super::theme::{self, egui_color};

/// Inside the strip's border.
const PADDING: f32 = 6.0;
/// The caption above the plot.
const CAPTION_SIZE: f32 = 12.0;
const CAPTION_HEIGHT: f32 = 18.0;
/// The frames axis spans at least this much, so an empty plot has a sensible scale.
const MIN_FRAMES_SHOWN: u64 = 1000;

/// `(frames, success %)` after each update that had finished episodes.
#[derive(Resource, Clone, Debug, Default)]
pub struct LearningCurve {
    points: Vec<[f64; 2]>,
}

impl LearningCurve {
    fn record(&mut self, frames: u64, success_rate: Option<f64>) {
        // Before the first episode ends there is no rate to plot.
        if let Some(rate) = success_rate {
            self.points.push([frames as f64, 100.0 * rate]);
        }
    }
}

pub struct LearningCurvePlugin;

impl Plugin for LearningCurvePlugin {
    fn build(&self, app: &mut App) {
        app.add_plugins(EguiPlugin::default())
            .init_resource::<LearningCurve>()
            // As the update history: before a Reset or Load can clear the curve.
            .add_systems(PreUpdate, extend_curve.after(super::ppo_worker::CollectUpdates))
            .add_systems(EguiPrimaryContextPass, draw_curve);
    }
}

fn extend_curve(mut finished: MessageReader<UpdateFinished>, mut curve: ResMut<LearningCurve>) {
    for UpdateFinished(record) in finished.read() {
        curve.record(record.frames, record.success_rate);
    }
}

/// A fixed, non-interactive plot: the strip is a read-out, and clicks belong to the views.
fn draw_curve(
    mut contexts: EguiContexts,
    curve: Res<LearningCurve>,
    snapshot: Res<TrainingSnapshot>,
    layout: Res<ViewLayout>,
    editor: Res<PromptEditor>,
    rival: Option<Res<Rival>>,
) -> Result {
    let context = contexts.ctx_mut()?;
    let strip = layout.curve;
    let plot_size = (strip.size() - 2.0 * PADDING - Vec2::new(2.0, 2.0 + CAPTION_HEIGHT)).max(Vec2::ONE);
    egui::Area::new(egui::Id::new("learning_curve"))
        .fixed_pos(egui::pos2(strip.min.x, strip.min.y))
        .order(egui::Order::Background)
        .interactable(false)
        .show(context, |ui| {
            egui::Frame::new()
                .fill(egui_color(theme::PANEL))
                .stroke(egui::Stroke::new(1.0, egui_color(theme::FRAME)))
                .corner_radius(4.0)
                .inner_margin(PADDING)
                .show(ui, |ui| {
                    ui.set_width(plot_size.x);
                    let frames_shown = rival.as_ref().map_or(0, |rival| rival.snapshot.frames).max(snapshot.frames);
                    let caption = |text: &str, color| egui::RichText::new(text).size(CAPTION_SIZE).color(color);
                    let dim = egui_color(theme::TEXT_DIM);
                    if rival.is_some() {
                        // The two lines' names in their colours: a legend would hide part of a curve.
                        ui.horizontal(|ui| {
                            ui.spacing_mut().item_spacing.x = 4.0;
                            ui.label(caption("success (last 100 episodes):", dim));
                            let teacher = format!("{} teacher", snapshot.teacher.name());
                            ui.label(caption(&teacher, egui_color(theme::SUCCESS)));
                            ui.label(caption("vs", dim));
                            ui.label(caption("none", egui_color(theme::WARNING)));
                        });
                    } else {
                        ui.label(caption("success rate (last 100 episodes) vs frames", dim));
                    }
                    let plot = Plot::new("success_curve")
                        .width(plot_size.x)
                        .height(plot_size.y)
                        .allow_drag(false)
                        .allow_zoom(false)
                        .allow_scroll(false)
                        .allow_boxed_zoom(false)
                        .allow_double_click_reset(false)
                        .show_background(false)
                        // The axis runs to the frames trained so far, so it grows live.
                        .include_x(0.0)
                        .include_x(frames_shown.max(MIN_FRAMES_SHOWN) as f64)
                        .include_y(0.0)
                        .include_y(100.0)
                        // Short labels ("64k") fit closer than egui_plot's default spacing allows.
                        .custom_x_axes(vec![
                            AxisHints::new_x().formatter(|mark, _| short_count(mark.value)).label_spacing(36.0..=48.0),
                        ])
                        .y_axis_formatter(|mark, _| format!("{:.0}%", mark.value));
                    plot.show(ui, |plot| {
                        let name = match &rival {
                            Some(_) => format!("{} teacher", snapshot.teacher.name()),
                            None => "success".to_owned(),
                        };
                        plot.line(
                            Line::new(name, PlotPoints::from(curve.points.clone()))
                                .color(egui_color(theme::SUCCESS))
                                .width(2.0),
                        );
                        if let Some(rival) = &rival {
                            let points: Vec<[f64; 2]> = rival
                                .records
                                .iter()
                                .filter_map(|r| r.success_rate.map(|rate| [r.frames as f64, 100.0 * rate]))
                                .collect();
                            plot.line(
                                Line::new("no teacher", PlotPoints::from(points))
                                    .color(egui_color(theme::WARNING))
                                    .width(2.0),
                            );
                        }
                        for frames in editor.marker_frames() {
                            plot.vline(
                                VLine::new("prompt applied", frames as f64)
                                    .color(egui_color(theme::WARNING))
                                    .style(egui_plot::LineStyle::dashed_loose()),
                            );
                        }
                    });
                });
        });
    Ok(())
}

/// 1500 -> "1.5k", 2_000_000 -> "2M": axis labels stay short.
pub fn short_count(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if magnitude >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

/// At most one decimal, none when whole.
fn trim(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_short() {
        assert_eq!(short_count(0.0), "0");
        assert_eq!(short_count(1500.0), "1.5k");
        assert_eq!(short_count(64_000.0), "64k");
        assert_eq!(short_count(2_000_000.0), "2M");
    }

    #[test]
    fn points_wait_for_a_success_rate() {
        let mut curve = LearningCurve::default();
        curve.record(2048, None);
        curve.record(4096, Some(0.25));
        assert_eq!(curve.points, vec![[4096.0, 25.0]]);
    }
}
