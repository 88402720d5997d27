//! The egui side panel: a transport bar (pause, step, speed, teacher switch) over tabs for
//! the teacher, the curves, the prompt editor, the run (reset, checkpoints, scenes, screenshots)
//! and tuning the teacher's adapters.

mod curves;
mod feedback;
mod prompt;
mod run;
mod teacher;
mod tuning;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};

pub use curves::CurveChoice;
pub use feedback::FeedbackChoice;
pub use run::{SceneChoices, take_screenshot};

use super::control::{Control, Controls, RunFiles};
use super::prompt_editor::PromptEditor;
use super::race::RaceMode;
use super::simulation::{
    FocusedEnv, LambdaOverride, Speed, TeacherWhenOn, TrainingFault, TrainingSnapshot, WantedTeacher,
};
use super::teacher_view::TeacherView;
use super::theme::{self, egui_color};
use super::tuning::Tuning;
use super::update_history::UpdateHistory;

/// The panel's width in logical pixels; the views lay themselves out in what is left.
pub const PANEL_WIDTH: f32 = 420.0;

/// Which tab the panel shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tab {
    #[default]
    Teacher,
    Curves,
    Feedback,
    Prompt,
    Run,
    Tuning,
}

impl Tab {
    const ALL: [Tab; 6] = [Tab::Teacher, Tab::Curves, Tab::Feedback, Tab::Prompt, Tab::Run, Tab::Tuning];

    /// The tab named `name` in lower case (`--tab`).
    pub fn from_name(name: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|tab| tab.label().eq_ignore_ascii_case(name))
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Tab::Teacher => "Teacher",
            Tab::Curves => "Curves",
            Tab::Feedback => "Feedback",
            Tab::Prompt => "Prompt",
            Tab::Run => "Run",
            Tab::Tuning => "Tuning",
        }
    }
}

/// The panel's own state: the tab, the curves picked, the feedback tab's choices, whether the
/// help overlay is open.
#[derive(Resource, Clone, Debug)]
pub struct PanelState {
    pub tab: Tab,
    pub curves: CurveChoice,
    pub feedback: FeedbackChoice,
    pub help_open: bool,
}

impl Default for PanelState {
    fn default() -> PanelState {
        PanelState {
            tab: Tab::Teacher,
            curves: CurveChoice::default(),
            feedback: FeedbackChoice::default(),
            help_open: false,
        }
    }
}

/// Text size multiplier for egui (demo mode draws larger).
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub struct PanelZoom(pub f32);

pub struct PanelsPlugin;

impl Plugin for PanelsPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PanelState>()
            .init_resource::<SceneChoices>()
            .add_systems(EguiPrimaryContextPass, (style_once, draw_panel, draw_help).chain());
    }
}

/// The app's dark palette for egui, and demo mode's zoom.
fn style_once(mut contexts: EguiContexts, zoom: Option<Res<PanelZoom>>, mut done: Local<bool>) -> Result {
    let context = contexts.ctx_mut()?;
    if let Some(zoom) = &zoom
        && zoom.is_changed()
    {
        context.set_zoom_factor(zoom.0);
    }
    if *done {
        return Ok(());
    }
    let mut visuals = egui::Visuals::dark();
    visuals.panel_fill = egui_color(theme::PANEL);
    visuals.window_fill = egui_color(theme::PANEL);
    // Text boxes and plots stand out as lighter cards on the unfilled panel.
    visuals.extreme_bg_color = egui_color(theme::PANEL);
    visuals.selection.bg_fill = egui_color(theme::ACCENT).gamma_multiply(0.6);
    visuals.hyperlink_color = egui_color(theme::ACCENT);
    context.set_visuals(visuals);
    context.all_styles_mut(|style| {
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        style.spacing.button_padding = egui::vec2(8.0, 3.0);
    });
    *done = true;
    Ok(())
}

/// What the panel reads.
#[derive(SystemParam)]
struct PanelInputs<'w> {
    snapshot: Res<'w, TrainingSnapshot>,
    teacher_view: Res<'w, TeacherView>,
    history: Res<'w, UpdateHistory>,
    fault: Res<'w, TrainingFault>,
    focus: Res<'w, FocusedEnv>,
}

/// What the panel changes.
#[derive(SystemParam)]
struct PanelOutputs<'w> {
    state: ResMut<'w, PanelState>,
    controls: ResMut<'w, Controls>,
    editor: ResMut<'w, PromptEditor>,
    files: ResMut<'w, RunFiles>,
    scenes: ResMut<'w, SceneChoices>,
    speed: ResMut<'w, Speed>,
    wanted: ResMut<'w, WantedTeacher>,
    lambda: ResMut<'w, LambdaOverride>,
    race: ResMut<'w, RaceMode>,
    virtual_time: ResMut<'w, Time<Virtual>>,
    tuning: ResMut<'w, Tuning>,
    when_on: ResMut<'w, TeacherWhenOn>,
}

fn draw_panel(
    mut commands: Commands,
    mut contexts: EguiContexts,
    inputs: PanelInputs,
    mut outputs: PanelOutputs,
) -> Result {
    let context = contexts.ctx_mut()?.clone();
    outputs.editor.sync(inputs.teacher_view.prompt.as_deref());
    let mut root = egui::Ui::new(
        context.clone(),
        "panels".into(),
        egui::UiBuilder::new().layer_id(egui::LayerId::background()).max_rect(context.viewport_rect()),
    );
    // No fill: the window's background shows through and a line divides the panel from the
    // views. Under software Vulkan every blended layer costs its whole area each frame, and
    // filling the panel's 420 x 800 pixels cost ~4 ms of a ~26 ms frame (`duet bench ui`).
    let frame = egui::Frame::new()
        .stroke(egui::Stroke::new(1.0, egui_color(theme::FRAME)))
        .inner_margin(egui::Margin::symmetric(14, 12));
    // The frame's stroke is the one dividing line (egui's own separator would double it).
    let panel = egui::Panel::right("side_panel").exact_size(PANEL_WIDTH).resizable(false).show_separator_line(false);
    panel.frame(frame).show(&mut root, |ui| {
        transport_bar(ui, &inputs, &mut outputs);
        if let Some(message) = &inputs.fault.message {
            fault_banner(ui, message);
        }
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            // Six tabs fit the panel's width only this tightly packed.
            ui.spacing_mut().item_spacing.x = 2.0;
            ui.spacing_mut().button_padding.x = 5.0;
            for tab in Tab::ALL {
                let label = egui::RichText::new(tab.label()).size(15.0);
                ui.selectable_value(&mut outputs.state.tab, tab, label);
            }
        });
        ui.separator();
        let tab = outputs.state.tab;
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| match tab {
            Tab::Teacher => teacher::show(ui, &inputs.teacher_view, &inputs.snapshot),
            Tab::Curves => {
                curves::show(ui, &mut outputs.state.curves, &inputs.history, &outputs.editor, outputs.lambda.0)
            }
            Tab::Feedback => feedback::show(
                ui,
                &mut outputs.state.feedback,
                &inputs.snapshot,
                &inputs.history,
                inputs.teacher_view.teacher_name,
            ),
            Tab::Prompt => {
                prompt::show(ui, &mut outputs.editor, &mut outputs.controls, inputs.teacher_view.teacher_name)
            }
            Tab::Run => {
                run::race_switch(ui, &mut outputs.race, inputs.snapshot.teacher);
                run::lambda_override(ui, &mut outputs.lambda, &inputs.snapshot);
                run::show(
                    ui,
                    &mut commands,
                    &mut outputs.controls,
                    &mut outputs.files,
                    &mut outputs.scenes,
                    &inputs.snapshot,
                )
            }
            Tab::Tuning => {
                let teacher = tuning::LiveTeacher {
                    files: &mut outputs.files,
                    controls: &mut outputs.controls,
                    wanted: &mut outputs.wanted,
                    when_on: &mut outputs.when_on,
                };
                tuning::show(ui, &mut outputs.tuning, teacher)
            }
        });
    });
    Ok(())
}

/// Pause / step / speed / teacher, always in view.
fn transport_bar(ui: &mut egui::Ui, inputs: &PanelInputs, outputs: &mut PanelOutputs) {
    ui.horizontal(|ui| {
        let paused = outputs.virtual_time.is_paused();
        let pause_label = if paused { "Resume" } else { "Pause" };
        if ui.button(pause_label).on_hover_text("Space").clicked() {
            if paused {
                outputs.virtual_time.unpause();
            } else {
                outputs.virtual_time.pause();
            }
        }
        if ui.add_enabled(paused, egui::Button::new("Step")).on_hover_text("one env step of every env (.)").clicked() {
            outputs.controls.request(Control::Step);
        }
        ui.separator();
        let mut speed = *outputs.speed;
        for (choice, label) in [(Speed::Watch, "watch"), (Speed::Fast, "fast"), (Speed::Max, "max")] {
            ui.selectable_value(&mut speed, choice, label).on_hover_text("+ / -");
        }
        outputs.speed.set_if_neq(speed);
    });
    ui.horizontal(|ui| {
        let mut teacher_on = outputs.wanted.0 != crate::training::TeacherKind::None;
        let label = format!("teacher: {}", outputs.when_on.0.name());
        if ui.checkbox(&mut teacher_on, label).on_hover_text("T").changed() {
            outputs.wanted.toggle(*outputs.when_on);
        }
        if outputs.wanted.0 != inputs.snapshot.teacher {
            ui.label(egui::RichText::new("(switches at the next step)").color(egui_color(theme::TEXT_DIM)));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(egui::RichText::new(format!("env {}", inputs.focus.0 + 1)).color(egui_color(theme::TEXT_DIM)));
        });
    });
}

fn fault_banner(ui: &mut egui::Ui, message: &str) {
    failure_banner(ui, "Training stopped", message, "Resume retries; Run > Reset or Load starts over.");
}

/// `text` in monospace on a card the panel's width (what the teacher reads, what it is sent).
fn text_card(ui: &mut egui::Ui, text: &str, size: f32) {
    egui::Frame::new().fill(egui_color(theme::PANEL)).corner_radius(4.0).inner_margin(8.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(egui::RichText::new(text).monospace().size(size));
    });
}

/// A red-framed notice: a title, the whole message (wrapped) and what to do about it.
fn failure_banner(ui: &mut egui::Ui, title: &str, message: &str, hint: &str) {
    egui::Frame::new()
        .fill(egui_color(theme::FAILURE).gamma_multiply(0.25))
        .stroke(egui::Stroke::new(1.0, egui_color(theme::FAILURE)))
        .corner_radius(4.0)
        .inner_margin(8.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.label(egui::RichText::new(title).strong().color(egui_color(theme::FAILURE)));
            ui.label(message);
            ui.label(egui::RichText::new(hint).small().color(egui_color(theme::TEXT_DIM)));
        });
}

/// The shortcuts, as `?` shows them.
pub const SHORTCUTS: [(&str, &str); 13] = [
    ("Space", "pause / resume"),
    (".", "one step (while paused)"),
    ("+ / -", "speed: watch, fast, max"),
    ("F", "focus the next env"),
    ("S", "screenshot (Run tab: folder)"),
    ("T", "teacher on / off"),
    ("M", "take over the focused env / hand it back"),
    ("arrows", "manual: turn left / right, forward"),
    ("P / D", "manual: pick up / drop"),
    ("Enter", "manual: toggle (open a door)"),
    ("F11", "fullscreen"),
    ("?", "this help"),
    ("click", "a thumbnail focuses its env"),
];

fn draw_help(mut contexts: EguiContexts, mut state: ResMut<PanelState>) -> Result {
    if !state.help_open {
        return Ok(());
    }
    let context = contexts.ctx_mut()?;
    let mut open = true;
    egui::Window::new("Keyboard shortcuts")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::vec2(0.0, 0.0))
        .show(context, |ui| {
            egui::Grid::new("shortcuts").num_columns(2).spacing([24.0, 6.0]).show(ui, |ui| {
                for (keys, what) in SHORTCUTS {
                    ui.label(egui::RichText::new(keys).monospace().strong());
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
    state.help_open = open;
    Ok(())
}
