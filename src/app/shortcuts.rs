//! Keyboard shortcuts beyond pause, speed and teacher (which `simulation` handles): `.` one
//! step, `F` focus the next env, `S` screenshot, `F11` fullscreen, `?` the help overlay.

use bevy::input::keyboard::Key;
use bevy::prelude::*;
use bevy::window::{MonitorSelection, PrimaryWindow, WindowMode};
use bevy_egui::input::EguiWantsInput;

use super::control::{Control, Controls, RunFiles};
use super::panels::{PanelState, take_screenshot};
use super::simulation::{FocusedEnv, TrainingSnapshot, typing_in_ui};

pub struct ShortcutsPlugin;

impl Plugin for ShortcutsPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, shortcut_keys);
    }
}

fn shortcut_keys(
    mut commands: Commands,
    keys: Res<ButtonInput<KeyCode>>,
    characters: Res<ButtonInput<Key>>,
    egui_input: Option<Res<EguiWantsInput>>,
    virtual_time: Res<Time<Virtual>>,
    snapshot: Res<TrainingSnapshot>,
    files: Res<RunFiles>,
    mut controls: ResMut<Controls>,
    mut focus: ResMut<FocusedEnv>,
    mut panels: ResMut<PanelState>,
    mut window: Single<&mut Window, With<PrimaryWindow>>,
) {
    if typing_in_ui(&egui_input) {
        return;
    }
    let typed = |text: &str| characters.just_pressed(Key::Character(text.into()));
    if (typed(".") || keys.just_pressed(KeyCode::Period)) && virtual_time.is_paused() {
        controls.request(Control::Step);
    }
    if keys.just_pressed(KeyCode::KeyF) {
        let shown = snapshot.num_envs().clamp(1, super::layout::MAX_THUMBNAILS);
        focus.0 = (focus.0 + 1) % shown;
    }
    if keys.just_pressed(KeyCode::KeyS) {
        match take_screenshot(&mut commands, &files.screenshot_dir, snapshot.frames) {
            Ok(path) => controls.tell(format!("screenshot: {}", path.display()), false),
            Err(error) => controls.tell(format!("screenshot failed: {error}"), true),
        }
    }
    if keys.just_pressed(KeyCode::F11) {
        window.mode = match window.mode {
            WindowMode::Windowed => WindowMode::BorderlessFullscreen(MonitorSelection::Current),
            _ => WindowMode::Windowed,
        };
    }
    if typed("?") || (keys.just_pressed(KeyCode::Slash) && keys.pressed(KeyCode::ShiftLeft)) {
        panels.help_open = !panels.help_open;
    }
    if keys.just_pressed(KeyCode::Escape) {
        panels.help_open = false;
    }
}
