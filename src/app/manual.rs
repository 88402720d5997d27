//! Manual control: `M` takes over a copy of the focused env's episode, drawn in its place
//! (arrows turn and walk, P picks up, D drops, Enter toggles); `M` again hands it back.
//!
//! The copy is the user's own: the student keeps training on the real env meanwhile (the
//! trainer steps all envs together), and handing back shows the real env again.

use bevy::prelude::*;
use bevy_egui::input::EguiWantsInput;

use super::control::Controls;
use super::simulation::{AgentMotion, FocusedEnv, TrainingSnapshot, typing_in_ui};
use crate::env::grid::Action;

pub struct ManualPlugin;

impl Plugin for ManualPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Update, manual_keys);
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
    mut snapshot: ResMut<TrainingSnapshot>,
    mut motion: ResMut<AgentMotion>,
    mut controls: ResMut<Controls>,
) {
    if typing_in_ui(&egui_input) {
        return;
    }
    if keys.just_pressed(KeyCode::KeyM) {
        if snapshot.manual_env().is_some() {
            snapshot.hand_back();
            controls.tell("manual control handed back to the student", false);
        } else {
            snapshot.take_over(focus.0);
            controls.tell(format!("manual control of a copy of env {}", focus.0 + 1), false);
        }
    }
    let Some(env) = snapshot.manual_env() else {
        return;
    };
    if focus.0 != env {
        // Focusing another env hands the copy back: only the focused env is drawn large.
        snapshot.hand_back();
        return;
    }
    let Some(action) = action_for(&keys) else {
        return;
    };
    if let Some(outcome) = snapshot.manual_step(action) {
        let verdict = if outcome.reward > 0.0 { "success" } else { "failure" };
        controls.tell(format!("manual episode over: {verdict}, reward {:.2}; M hands back", outcome.reward), false);
    }
    *motion = AgentMotion::snap(env, snapshot.world(env));
}
