//! Manual control: `M` hands the focused env to the keyboard (arrows turn and walk, P picks
//! up, D drops, Enter toggles); `M` again, or focusing another env, hands it back.
//!
//! The env is the real one: the trainer steps it with the user's actions only, and while no
//! key is pressed it waits, while the other envs train on. Its steps stay out of the PPO loss
//! and its episodes out of the student's metrics (`Trainer::set_manual_control`). While
//! training is paused a key also steps once (every env, as `.` does), so the user can play
//! with the run stopped.

use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;

use super::control::{Control, Controls};
use super::simulation::{FocusedEnv, ManualControl, typing_in_ui};
use crate::env::grid::Action;

pub struct ManualPlugin;

impl Plugin for ManualPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, (manual_keys, tell_manual_episodes));
    }
}

/// The action a key asks for in manual control.
fn action_for(keys: &ButtonInput<KeyCode>) -> Option<Action> {
    [
        (KeyCode::ArrowLeft, Action::Left),
        (KeyCode::ArrowRight, Action::Right),
        (KeyCode::ArrowUp, Action::Forward),
        (KeyCode::KeyP, Action::Pickup),
        (KeyCode::KeyD, Action::Drop),
        (KeyCode::Enter, Action::Toggle),
    ]
    .into_iter()
    .find_map(|(key, action)| keys.just_pressed(key).then_some(action))
}

fn manual_keys(
    keys: Res<ButtonInput<KeyCode>>,
    egui_input: Option<Res<EguiWantsInput>>,
    focus: Res<FocusedEnv>,
    virtual_time: Res<Time<Virtual>>,
    mut manual: ResMut<ManualControl>,
    mut controls: ResMut<Controls>,
) {
    if typing_in_ui(&egui_input) {
        return;
    }
    if keys.just_pressed(KeyCode::KeyM) {
        if manual.env.is_some() {
            hand_back(&mut manual);
            controls.tell("manual control handed back to the student", false);
        } else {
            manual.env = Some(focus.0);
            controls.tell(format!("manual control of env {}: it waits for your keys", focus.0 + 1), false);
        }
    }
    let Some(env) = manual.env else {
        return;
    };
    if focus.0 != env {
        // Focusing another env hands this one back: only the focused env is drawn large.
        hand_back(&mut manual);
        controls.tell("manual control handed back to the student", false);
        return;
    }
    let Some(action) = action_for(&keys) else {
        return;
    };
    manual.keys.push(action);
    if virtual_time.is_paused() {
        controls.request(Control::Step);
    }
}

fn hand_back(manual: &mut ManualControl) {
    manual.env = None;
    manual.keys.clear();
}

/// "manual episode over: success, reward 0.91".
fn tell_manual_episodes(mut manual: ResMut<ManualControl>, mut controls: ResMut<Controls>) {
    if manual.finished.is_empty() {
        return;
    }
    for episode in std::mem::take(&mut manual.finished) {
        let verdict = if episode.success { "success" } else { "failure" };
        controls.tell(
            format!("manual episode over: {verdict}, reward {:.2} in {} steps", episode.episode_return, episode.length),
            false,
        );
    }
}
