//! The prompt tab: the live template in a multi-line editor; Apply checks it and swaps it in
//! without pausing training (errors inline, the old template stays); Revert; the versions applied.

use bevy_egui::egui;

use super::super::control::{Control, Controls};
use super::super::prompt_editor::PromptEditor;
use super::super::theme::{self, egui_color};

/// Height kept under the editor for its buttons, an error and a few versions (logical pixels).
const EDITOR_ROOM_BELOW: f32 = 220.0;
/// The editor's least height, however small the window.
const EDITOR_MIN_HEIGHT: f32 = 160.0;

pub fn show(ui: &mut egui::Ui, editor: &mut PromptEditor, controls: &mut Controls, teacher_name: &str) {
    let dim = egui_color(theme::TEXT_DIM);
    match &editor.in_force {
        Some(_) => ui.label(
            egui::RichText::new(
                "The template in force. Slots: {mission} {observation} {options} {feedback} {examples}.",
            )
            .color(dim),
        ),
        None => ui.label(
            egui::RichText::new(format!(
                "The {teacher_name} teacher takes no prompt: Apply works once an LLM teacher is in force."
            ))
            .color(dim),
        ),
    };
    // A long template scrolls inside the editor, so Apply, Revert and the versions stay in view.
    let editor_height = (ui.available_height() - EDITOR_ROOM_BELOW).max(EDITOR_MIN_HEIGHT);
    let editor_response = egui::ScrollArea::vertical()
        .id_salt("prompt_editor")
        .max_height(editor_height)
        .show(ui, |ui| {
            ui.add(
                egui::TextEdit::multiline(&mut editor.draft)
                    .code_editor()
                    .desired_rows(14)
                    .desired_width(f32::INFINITY)
                    .hint_text("the teacher's prompt template"),
            )
        })
        .inner;
    if editor_response.changed() {
        editor.edited = true;
    }
    ui.horizontal(|ui| {
        let waiting = controls.waiting() > 0;
        if ui.add_enabled(!waiting, egui::Button::new("Apply")).on_hover_text("check and put in force").clicked() {
            controls.request(Control::ApplyPrompt);
        }
        if ui.button("Revert").on_hover_text("back to the template in force").clicked() {
            editor.revert();
        }
        if editor.edited {
            ui.label(egui::RichText::new("edited, not applied").color(egui_color(theme::WARNING)));
        }
    });
    if let Some(error) = &editor.error {
        ui.label(egui::RichText::new(error).color(egui_color(theme::FAILURE)));
    }
    ui.add_space(8.0);
    ui.label(egui::RichText::new("Versions applied").strong());
    if editor.history.is_empty() {
        ui.label(egui::RichText::new("none yet").color(dim));
        return;
    }
    let mut load: Option<String> = None;
    egui::Grid::new("prompt_versions").num_columns(4).spacing([14.0, 4.0]).striped(true).show(ui, |ui| {
        for version in editor.history.iter().rev() {
            ui.label(format!("v{}", version.version));
            ui.label(&version.applied_at);
            ui.label(format!("at {} frames", version.frames));
            if ui.small_button("edit").on_hover_text("copy into the editor").clicked() {
                load = Some(version.text.clone());
            }
            ui.end_row();
        }
    });
    if let Some(text) = load {
        editor.draft = text;
        editor.edited = true;
    }
}
