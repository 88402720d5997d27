//! The run tab: reset, save and load checkpoints, pick a scene from `scenes/` (files that do
//! not load are listed with their error), take a screenshot into a chosen folder.

use std::path::{Path, PathBuf};

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy_egui::egui;

use super::super::control::{Control, Controls, RunFiles};
use super::super::race::RaceMode;
use super::super::simulation::{LambdaOverride, TrainingSnapshot};
use super::super::theme::{self, egui_color};
use crate::env::scene::list_scenes;
use crate::training::TeacherKind;

/// The scene files found in the scene folder, each with its name or its load error.
#[derive(Resource, Clone, Debug, Default)]
pub struct SceneChoices {
    /// `None` until the tab first lists the folder (and after Refresh).
    pub listing: Option<Result<Vec<SceneChoice>, String>>,
    pub selected: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct SceneChoice {
    pub path: PathBuf,
    /// "DoorKey-8x8 (16 envs)", or why the file does not load.
    pub summary: Result<String, String>,
}

impl SceneChoices {
    fn refresh(&mut self, dir: &Path) {
        self.listing = Some(match list_scenes(dir) {
            Ok(scenes) => Ok(scenes
                .into_iter()
                .map(|(path, scene)| SceneChoice {
                    path,
                    summary: match scene {
                        Ok(scene) => match scene.grid() {
                            Some(grid) => Ok(format!("{} ({} envs)", grid.level.name(), grid.num_envs)),
                            None => Err("not a grid scene".to_owned()),
                        },
                        Err(error) => Err(error.to_string()),
                    },
                })
                .collect()),
            Err(error) => Err(error.to_string()),
        });
    }
}

/// Saves the window to `dir/duet-<frames>.png` with Bevy's screenshot; returns the path.
pub fn take_screenshot(commands: &mut Commands, dir: &str, frames: u64) -> Result<PathBuf, String> {
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let path = dir.join(format!("duet-{frames:09}.png"));
    commands.spawn(Screenshot::primary_window()).observe(save_to_disk(path.clone()));
    Ok(path)
}

/// The race view on or off: the scene trained a second time without a teacher, side by side.
pub fn race_switch(ui: &mut egui::Ui, race: &mut RaceMode, teacher: TeacherKind) {
    heading(ui, "Race");
    let mut on = race.0;
    let label = format!("race: {} teacher vs the same without one", teacher.name());
    if ui
        .checkbox(&mut on, label)
        .on_hover_text("the same scene and seed train a second time without a teacher; both success curves")
        .changed()
    {
        race.0 = on;
    }
}

/// The largest weight the slider offers: LLM4Teach's schedule starts at 10.
const LAMBDA_SLIDER_MAX: f64 = 10.0;

/// "override λ" and a slider: a hand-set distillation weight from the next update on, in
/// place of the scene's schedule; unticked, the schedule again. While the override is off the
/// slider follows the schedule's weight, so ticking it starts from there.
pub fn lambda_override(ui: &mut egui::Ui, lambda: &mut LambdaOverride, snapshot: &TrainingSnapshot) {
    heading(ui, "Distillation weight λ");
    // The slider shows the override in force (set here or by --lambda), else the schedule's.
    let mut value = lambda.0.unwrap_or(snapshot.lambda).clamp(0.0, LAMBDA_SLIDER_MAX);
    let mut on = lambda.0.is_some();
    ui.horizontal(|ui| {
        let toggled = ui
            .checkbox(&mut on, "override")
            .on_hover_text("use this weight for the KL-to-teacher term from the next update on")
            .changed();
        let moved = ui
            .add_enabled(on, egui::Slider::new(&mut value, 0.0..=LAMBDA_SLIDER_MAX).logarithmic(true).max_decimals(3))
            .changed();
        if toggled || moved {
            let wanted = LambdaOverride(on.then_some(value));
            if *lambda != wanted {
                *lambda = wanted;
            }
        }
    });
    let source = if snapshot.lambda_overridden { "set by hand" } else { "from the scene's schedule" };
    ui.label(
        egui::RichText::new(format!("next update: λ = {:.3}, {source}", snapshot.lambda))
            .small()
            .color(egui_color(theme::TEXT_DIM)),
    );
}

pub fn show(
    ui: &mut egui::Ui,
    commands: &mut Commands,
    controls: &mut Controls,
    files: &mut RunFiles,
    scenes: &mut SceneChoices,
    snapshot: &TrainingSnapshot,
) {
    let dim = egui_color(theme::TEXT_DIM);
    heading(ui, "Run");
    ui.horizontal(|ui| {
        if ui.button("Reset").on_hover_text("a fresh student on this scene").clicked() {
            controls.request(Control::Reset);
        }
        let save = ui.add_enabled(!controls.save_pending, egui::Button::new("Save checkpoint"));
        if save.on_hover_text("written when the current rollout's update finishes").clicked() {
            controls.save_pending = true;
        }
    });
    ui.label(egui::RichText::new(format!("checkpoints go to {}", files.out_dir.display())).small().color(dim));
    if controls.save_pending {
        ui.label(
            egui::RichText::new("saving after the update in progress / next update").color(egui_color(theme::WARNING)),
        );
    }
    ui.horizontal(|ui| {
        ui.label("load from");
        ui.add(egui::TextEdit::singleline(&mut files.load_dir).desired_width(190.0));
        if ui.button("Load").clicked() {
            controls.request(Control::LoadCheckpoint(PathBuf::from(files.load_dir.trim())));
        }
    });

    heading(ui, "Scene");
    if scenes.listing.is_none() {
        scenes.refresh(&files.scene_dir);
    }
    let mut refresh = false;
    match &scenes.listing {
        Some(Err(error)) => {
            ui.label(egui::RichText::new(error).color(egui_color(theme::FAILURE)));
        }
        Some(Ok(choices)) => {
            let selected_name = scenes
                .selected
                .as_deref()
                .and_then(Path::file_name)
                .map_or("pick a scene".to_owned(), |name| name.to_string_lossy().into_owned());
            let mut selected = scenes.selected.clone();
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("scene_picker").width(230.0).selected_text(selected_name).show_ui(
                    ui,
                    |ui| {
                        for choice in choices {
                            let name = choice.path.file_name().map_or(String::new(), |n| n.to_string_lossy().into());
                            match &choice.summary {
                                Ok(summary) => {
                                    ui.selectable_value(
                                        &mut selected,
                                        Some(choice.path.clone()),
                                        format!("{name}  {summary}"),
                                    );
                                }
                                Err(_) => {
                                    ui.add_enabled(false, egui::Button::new(format!("{name}  (does not load)")));
                                }
                            }
                        }
                    },
                );
                let can_load = selected.is_some();
                if ui.add_enabled(can_load, egui::Button::new("Train on it")).clicked()
                    && let Some(path) = &selected
                {
                    controls.request(Control::LoadScene(path.clone()));
                }
                refresh = ui.small_button("Refresh").clicked();
            });
            scenes.selected = selected;
            for choice in choices {
                if let Err(error) = &choice.summary {
                    ui.label(egui::RichText::new(error).small().color(egui_color(theme::FAILURE)));
                }
            }
        }
        None => {}
    }
    if refresh {
        scenes.refresh(&files.scene_dir);
    }

    heading(ui, "Screenshot");
    ui.horizontal(|ui| {
        ui.label("folder");
        ui.add(egui::TextEdit::singleline(&mut files.screenshot_dir).desired_width(190.0));
        if ui.button("Save PNG").on_hover_text("S").clicked() {
            match take_screenshot(commands, &files.screenshot_dir, snapshot.frames) {
                Ok(path) => controls.tell(format!("screenshot: {}", path.display()), false),
                Err(error) => controls.tell(format!("screenshot failed: {error}"), true),
            }
        }
    });

    if !controls.messages.is_empty() {
        heading(ui, "Messages");
        for message in controls.messages.iter().rev() {
            let color = if message.is_error { theme::FAILURE } else { theme::TEXT_DIM };
            ui.label(egui::RichText::new(&message.text).color(egui_color(color)));
        }
    }
}

fn heading(ui: &mut egui::Ui, title: &str) {
    ui.add_space(8.0);
    ui.label(egui::RichText::new(title).strong().size(14.5));
}
