//! The learning curve under the mosaic: success rate over the last 100 episodes against env
//! frames, one point per PPO update, drawn with egui_plot in the layout's strip.

use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use egui_plot::{AxisHints, GridInput, GridMark, Line, Plot, PlotPoints, VLine, uniform_grid_spacer};

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
/// Frames-axis labels this far apart (logical pixels) or more; closer ones fade out.
const FRAME_LABEL_SPACING: std::ops::RangeInclusive<f32> = 36.0..=48.0;

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
                        // One line, whatever the strip's width: a wrapped caption pushed the plot
                        // over the footer in the apartments' narrower strip.
                        ui.add(egui::Label::new(caption("success rate (last 100 episodes) vs frames", dim)).truncate());
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
                        .custom_x_axes(vec![frames_axis()])
                        .x_grid_spacer(frames_grid_spacer(plot_size.x))
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

/// An env-frames x axis: short labels ("64k"), which fit closer than egui_plot's default
/// spacing allows.
pub fn frames_axis() -> AxisHints<'static> {
    AxisHints::new_x().formatter(|mark, _| short_count(mark.value)).label_spacing(FRAME_LABEL_SPACING)
}

/// Grid lines for an env-frames axis about `width` logical pixels wide: labelled steps of 1, 2
/// or 5 x 10^k at least a label's spacing apart, with unlabelled lines halfway. egui_plot's
/// default (powers of ten) left an 80k-frame strip with the single label "0".
pub fn frames_grid_spacer(width: f32) -> impl Fn(GridInput) -> Vec<GridMark> {
    let width = f64::from(width.max(1.0));
    uniform_grid_spacer(move |input: GridInput| {
        let frames_per_point = (input.bounds.1 - input.bounds.0).abs() / width;
        let step = nice_step(frames_per_point * f64::from(*FRAME_LABEL_SPACING.end()));
        [step / 2.0, step, step * 10.0]
    })
}

/// The least of 1, 2 or 5 x 10^k that is at least `least` (1 for nothing positive).
fn nice_step(least: f64) -> f64 {
    if !(least.is_finite() && least > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(least.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|multiple| multiple * power)
        .find(|&step| step >= least)
        .unwrap_or(10.0 * power)
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
    fn frame_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(9_000.0), 10_000.0);
        assert_eq!(nice_step(10_000.0), 10_000.0);
        assert_eq!(nice_step(12_000.0), 20_000.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(0.0), 1.0);
        // 85k frames over a 220-point strip: labelled every 20k (52 points apart), lines
        // every 10k; egui_plot's powers of ten would label 0 alone.
        let marks = frames_grid_spacer(220.0)(GridInput { bounds: (0.0, 85_000.0), base_step_size: 1.0 });
        let labelled: Vec<f64> =
            marks.iter().filter(|mark| mark.step_size >= 20_000.0).map(|mark| mark.value).collect();
        assert_eq!(labelled, vec![0.0, 20_000.0, 40_000.0, 60_000.0, 80_000.0]);
        assert!(marks.iter().any(|mark| mark.value == 10_000.0 && mark.step_size == 10_000.0));
    }

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
