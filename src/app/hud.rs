//! The header (scene, level, who learns and who teaches, where training stands from the
//! trainer's snapshot and latest update record, speed) and the footer with the controls.

use bevy::prelude::*;

use super::layout::{SpawnSkeleton, ViewSlots};
use super::simulation::{Speed, TrainingSnapshot, WantedTeacher};
use super::{SceneInfo, theme};
use crate::env::scene::EncoderKind;
use crate::training::TeacherKind;

const CONTROLS: &str = "Space pause   . step   +/- speed   T teacher   F next env   M manual   S screenshot   ? keys";

/// The badge naming the teacher.
#[derive(Component)]
struct RolesLine;

/// The scene's name, and the span after it (level, envs, student).
#[derive(Component)]
struct TitleLine;

#[derive(Component)]
struct TitleSpan;

/// The header's statistics line.
#[derive(Component)]
struct StatsLine;

/// The speed / paused span at the end of the statistics line.
#[derive(Component)]
struct RunStateSpan;

/// "updating..." after the speed while a PPO update runs (stepping waits for it).
#[derive(Component)]
struct UpdatingSpan;

pub struct HudPlugin;

impl Plugin for HudPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_hud.after(SpawnSkeleton))
            .add_systems(Update, (update_title, update_roles, update_stats));
    }
}

fn spawn_hud(mut commands: Commands, slots: Res<ViewSlots>, info: Res<SceneInfo>) {
    // In a narrow window the title gives way (clipped) and the roles badge stays whole.
    let title = commands
        .spawn(Node { flex_shrink: 1.0, min_width: px(0), overflow: Overflow::clip(), ..default() })
        .with_children(|title| {
            title
                .spawn((
                    TitleLine,
                    Text::new(info.name.clone()),
                    theme::font(theme::TITLE_SIZE),
                    TextColor(theme::TEXT),
                    TextLayout::no_wrap(),
                ))
                .with_child((
                    TitleSpan,
                    TextSpan::new(title_span(&info)),
                    theme::font(theme::BODY_SIZE),
                    TextColor(theme::TEXT_DIM),
                ));
        })
        .id();
    let roles = commands
        .spawn((
            Node {
                flex_shrink: 0.0,
                padding: UiRect::axes(px(10), px(4)),
                border: UiRect::all(px(1)),
                border_radius: BorderRadius::all(px(4)),
                ..default()
            },
            BorderColor::all(theme::ACCENT),
            children![(
                RolesLine,
                Text::new(""),
                theme::font(theme::SMALL_SIZE),
                TextColor(theme::TEXT),
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
        .add_children(&[title, roles])
        .id();
    let stats = commands
        .spawn((StatsLine, Text::new(""), theme::font(theme::BODY_SIZE), TextColor(theme::TEXT), TextLayout::no_wrap()))
        .with_child((RunStateSpan, TextSpan::new(""), theme::font(theme::BODY_SIZE), TextColor(theme::ACCENT)))
        .with_child((UpdatingSpan, TextSpan::new(""), theme::font(theme::BODY_SIZE), TextColor(theme::WARNING)))
        .id();
    commands.entity(slots.header).add_children(&[title_row, stats]);
    let controls = commands
        .spawn((Text::new(CONTROLS), theme::font(theme::SMALL_SIZE), TextColor(theme::TEXT_DIM), TextLayout::no_wrap()))
        .id();
    commands.entity(slots.footer).add_child(controls);
}

/// "   DoorKey-8x8   16 envs   PPO (CNN)" after the scene's name.
fn title_span(info: &SceneInfo) -> String {
    format!("   {}, {} envs", info.level, info.num_envs)
}

/// Follows a scene picked in the run tab.
fn update_title(
    info: Res<SceneInfo>,
    mut title: Single<&mut Text, With<TitleLine>>,
    mut span: Single<&mut TextSpan, With<TitleSpan>>,
) {
    if info.is_changed() {
        title.0 = info.name.clone();
        span.0 = title_span(&info);
    }
}

/// "PPO (CNN)  <-  oracle, lambda 0.83"; a toggle not applied yet (the trainer is paused or
/// updating) says so.
fn update_roles(
    snapshot: Res<TrainingSnapshot>,
    wanted: Res<WantedTeacher>,
    mut line: Single<&mut Text, With<RolesLine>>,
) {
    let encoder = match snapshot.encoder {
        EncoderKind::Cnn => "CNN",
        EncoderKind::Mlp => "MLP",
        EncoderKind::Llm4Teach => "LLM4Teach CNN",
    };
    let teacher = if snapshot.teacher == TeacherKind::None {
        "no teacher".to_owned()
    } else {
        let set = if snapshot.lambda_overridden { " (set)" } else { "" };
        format!("{} teacher, lambda {:.2}{set}", snapshot.teacher.name(), snapshot.lambda)
    };
    let pending = if wanted.0 == snapshot.teacher { String::new() } else { format!(" ({} next)", wanted.0.name()) };
    let text = format!("PPO ({encoder})  {teacher}{pending}");
    if line.0 != text {
        line.0 = text;
    }
}

fn update_stats(
    snapshot: Res<TrainingSnapshot>,
    speed: Res<Speed>,
    virtual_time: Res<Time<Virtual>>,
    mut line: Single<&mut Text, With<StatsLine>>,
    mut state: Single<&mut TextSpan, (With<RunStateSpan>, Without<UpdatingSpan>)>,
    mut updating: Single<&mut TextSpan, (With<UpdatingSpan>, Without<RunStateSpan>)>,
) {
    let success = match snapshot.success_rate {
        Some(rate) => format!("{:.0}% of {}", 100.0 * rate, snapshot.window_episodes),
        None => "-".to_owned(),
    };
    // Sized to fit beside the side panel in a 1280-pixel window with the speed and
    // "updating" after it; agreement and fps are in the panel.
    let text = format!(
        "frames {}  updates {}  success {success}  return {}  ",
        thousands(snapshot.frames),
        snapshot.updates,
        snapshot.return_mean.map_or("-".to_owned(), |v| format!("{v:.2}")),
    );
    if line.0 != text {
        line.0 = text;
    }
    let run_state = if virtual_time.is_paused() { "paused".to_owned() } else { format!("speed {}", speed.label()) };
    if state.0 != run_state {
        state.0 = run_state;
    }
    let updating_text = if snapshot.updating { "  updating" } else { "" };
    if updating.0 != updating_text {
        updating.0 = updating_text.to_owned();
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
