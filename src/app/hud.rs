//! The header (scene, level, episodes, success rate, steps/s, speed, the policy's honest
//! label) and the footer with the controls.

use bevy::prelude::*;

use super::layout::{SpawnSkeleton, ViewSlots};
use super::run_stats::SUCCESS_WINDOW;
use super::simulation::{Simulation, Speed};
use super::{SceneInfo, theme};

/// What drives the agents, said plainly until the student trains.
pub const POLICY_LABEL: &str = "policy: scripted planner (student not trained yet)";
const CONTROLS: &str = "Space  pause / resume     + / -  speed: watch, fast, max     click a thumbnail to focus it";

/// The header's statistics line.
#[derive(Component)]
struct StatsLine;

/// The speed / paused span at the end of the statistics line.
#[derive(Component)]
struct RunStateSpan;

pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_hud.after(SpawnSkeleton)).add_systems(Update, update_stats);
    }
}

fn spawn_hud(mut commands: Commands, slots: Res<ViewSlots>, info: Res<SceneInfo>) {
    // In a narrow window the title gives way (clipped) and the policy label stays whole.
    let title = commands
        .spawn(Node { flex_shrink: 1.0, min_width: px(0), overflow: Overflow::clip(), ..default() })
        .with_children(|title| {
            title
                .spawn((
                    Text::new(info.name.clone()),
                    theme::font(theme::TITLE_SIZE),
                    TextColor(theme::TEXT),
                    TextLayout::no_wrap(),
                ))
                .with_child((
                    TextSpan::new(format!("    level {}    {} envs", info.level, info.num_envs)),
                    theme::font(theme::BODY_SIZE),
                    TextColor(theme::TEXT_DIM),
                ));
        })
        .id();
    let policy = commands
        .spawn((
            Node {
                flex_shrink: 0.0,
                padding: UiRect::axes(px(10), px(4)),
                border: UiRect::all(px(1)),
                border_radius: BorderRadius::all(px(4)),
                ..default()
            },
            BorderColor::all(theme::WARNING),
            children![(
                Text::new(POLICY_LABEL),
                theme::font(theme::BODY_SIZE),
                TextColor(theme::WARNING),
                TextLayout::no_wrap()
            )],
        ))
        .id();
    let title_row = commands
        .spawn(Node {
            flex_direction: FlexDirection::Row,
            justify_content: JustifyContent::SpaceBetween,
            align_items: AlignItems::Center,
            column_gap: px(16),
            ..default()
        })
        .add_children(&[title, policy])
        .id();
    let stats = commands
        .spawn((StatsLine, Text::new(""), theme::font(theme::BODY_SIZE), TextColor(theme::TEXT), TextLayout::no_wrap()))
        .with_child((RunStateSpan, TextSpan::new(""), theme::font(theme::BODY_SIZE), TextColor(theme::ACCENT)))
        .id();
    commands.entity(slots.header).add_children(&[title_row, stats]);
    let controls =
        commands.spawn((Text::new(CONTROLS), theme::font(theme::SMALL_SIZE), TextColor(theme::TEXT_DIM))).id();
    commands.entity(slots.footer).add_child(controls);
}

fn update_stats(
    simulation: Res<Simulation>,
    speed: Res<Speed>,
    virtual_time: Res<Time<Virtual>>,
    real_time: Res<Time<Real>>,
    mut line: Single<&mut Text, With<StatsLine>>,
    mut state: Single<&mut TextSpan, With<RunStateSpan>>,
) {
    let stats = &simulation.stats;
    let (successes, recent) = stats.recent_success();
    let success = if recent == 0 {
        "success -".to_owned()
    } else {
        format!("success {:.0}% of last {}", 100.0 * successes as f64 / recent as f64, recent.min(SUCCESS_WINDOW))
    };
    let steps_per_sec = stats.steps_per_sec(real_time.elapsed_secs_f64()).round() as u64;
    let text = format!(
        "episodes {}    {success}    {} env steps/s    ",
        thousands(stats.episodes()),
        thousands(steps_per_sec)
    );
    if line.0 != text {
        line.0 = text;
    }
    let run_state = if virtual_time.is_paused() { "paused".to_owned() } else { format!("speed: {}", speed.label()) };
    if state.0 != run_state {
        state.0 = run_state;
    }
}

/// 1234567 -> "1,234,567".
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(211_936), "211,936");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
