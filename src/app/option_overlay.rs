//! The teacher's top option drawn on the focused env: dots along the cells its skill would
//! walk, a ring on its target, and the option's phrase beside it (from `TeacherView`).

use bevy::prelude::*;

use super::focus_view::{FocusFrame, spawn_focus_view};
use super::layout::{UpdateLayout, ViewLayout};
use super::simulation::{FocusedEnv, TrainingSnapshot};
use super::teacher_view::TeacherView;
use super::theme;
use crate::env::grid::Pos;

/// Dots spawned once and reused; a walk longer than this shows its first cells.
const MAX_DOTS: usize = 64;
/// A dot's side as a share of a tile (at least `MIN_DOT_PX`).
const DOT_SHARE: f32 = 0.2;
const MIN_DOT_PX: f32 = 4.0;
/// The target ring's line width.
const RING_WIDTH: f32 = 3.0;
/// Between the label and its cell.
const LABEL_GAP: f32 = 3.0;
/// The label's height at `theme::SMALL_SIZE` with its padding, to place it above a cell.
const LABEL_HEIGHT: f32 = 22.0;
/// Amber, like other things the user must not miss, a little see-through over the grid.
const PATH_COLOR: Color = Color::srgba(0.957, 0.702, 0.224, 0.85);
const LABEL_BACKGROUND: Color = Color::srgba(0.059, 0.067, 0.082, 0.88);

#[derive(Component)]
struct PathDot(usize);

#[derive(Component)]
struct TargetRing;

#[derive(Component)]
struct OptionLabel;

#[derive(Component)]
struct OptionLabelText;

pub struct OptionOverlayPlugin;

impl Plugin for OptionOverlayPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_overlay.after(spawn_focus_view))
            .add_systems(Update, draw_followed_option.after(UpdateLayout));
    }
}

fn spawn_overlay(mut commands: Commands, frame: Single<Entity, With<FocusFrame>>) {
    let hidden = |node: Node| Node { position_type: PositionType::Absolute, display: Display::None, ..node };
    let mut children: Vec<Entity> = (0..MAX_DOTS)
        .map(|index| {
            commands
                .spawn((
                    PathDot(index),
                    hidden(Node { border_radius: BorderRadius::MAX, ..default() }),
                    BackgroundColor(PATH_COLOR),
                ))
                .id()
        })
        .collect();
    children.push(
        commands
            .spawn((
                TargetRing,
                hidden(Node {
                    border: UiRect::all(px(RING_WIDTH)),
                    border_radius: BorderRadius::all(px(6)),
                    ..default()
                }),
                BorderColor::all(PATH_COLOR),
            ))
            .id(),
    );
    children.push(
        commands
            .spawn((
                OptionLabel,
                hidden(Node {
                    padding: UiRect::axes(px(6), px(2)),
                    border: UiRect::all(px(1)),
                    border_radius: BorderRadius::all(px(4)),
                    ..default()
                }),
                BackgroundColor(LABEL_BACKGROUND),
                BorderColor::all(PATH_COLOR),
                children![(
                    OptionLabelText,
                    Text::new(""),
                    theme::font(theme::SMALL_SIZE),
                    TextColor(theme::WARNING),
                    TextLayout::no_wrap(),
                )],
            ))
            .id(),
    );
    // After the flash tint (child 0), under the agent's triangle.
    commands.entity(*frame).insert_children(1, &children);
}

/// Places the dots, ring and label for the focused env's followed option; everything hides
/// when there is none, under manual control, or while the view describes another env. Runs
/// its loop only when the teacher view, the layout or the focus changed.
fn draw_followed_option(
    view: Res<TeacherView>,
    layout: Res<ViewLayout>,
    focus: Res<FocusedEnv>,
    snapshot: Res<TrainingSnapshot>,
    mut dots: Query<(&PathDot, &mut Node), (Without<TargetRing>, Without<OptionLabel>)>,
    mut ring: Single<&mut Node, (With<TargetRing>, Without<PathDot>, Without<OptionLabel>)>,
    mut label: Single<&mut Node, (With<OptionLabel>, Without<PathDot>, Without<TargetRing>)>,
    mut label_text: Single<&mut Text, With<OptionLabelText>>,
) {
    if !(view.is_changed() || layout.is_changed() || focus.is_changed() || snapshot.is_changed()) {
        return;
    }
    let manual = snapshot.manual_env() == Some(focus.0);
    let followed = view.followed.as_ref().filter(|_| view.env == focus.0 && !manual);
    let tile = layout.focus_tile();
    let path: &[Pos] = followed.map_or(&[], |followed| &followed.path);
    let dot = (tile * DOT_SHARE).max(MIN_DOT_PX);
    for (PathDot(index), mut node) in &mut dots {
        let wanted = match path.get(*index) {
            Some(cell) => Node {
                display: Display::Flex,
                left: px(cell_origin(cell.x, tile) + (tile - dot) / 2.0),
                top: px(cell_origin(cell.y, tile) + (tile - dot) / 2.0),
                width: px(dot),
                height: px(dot),
                ..(*node).clone()
            },
            None => Node { display: Display::None, ..(*node).clone() },
        };
        node.set_if_neq(wanted);
    }
    let target = followed.and_then(|followed| followed.target);
    let wanted_ring = match target {
        Some(cell) => Node {
            display: Display::Flex,
            left: px(cell_origin(cell.x, tile)),
            top: px(cell_origin(cell.y, tile)),
            width: px(tile),
            height: px(tile),
            ..(**ring).clone()
        },
        None => Node { display: Display::None, ..(**ring).clone() },
    };
    ring.set_if_neq(wanted_ring);

    let Some(followed) = followed else {
        if label.display != Display::None {
            label.display = Display::None;
        }
        return;
    };
    let text = format!("{}  {:.0}%", followed.option, 100.0 * followed.probability);
    if label_text.0 != text {
        label_text.0 = text;
    }
    // By the target, else where the walk ends, else by the agent.
    let world = snapshot.world(focus.0);
    let anchor = target.or_else(|| followed.path.last().copied()).unwrap_or(world.agent_pos);
    let width = layout.focus_size.x;
    // Above the cell, unless that leaves the frame or covers the agent (a few cells wide).
    let above = cell_origin(anchor.y, tile) - LABEL_HEIGHT - LABEL_GAP;
    let agent = world.agent_pos;
    let agent_in_the_way = agent.y == anchor.y - 1 && (agent.x - anchor.x).abs() <= 3;
    let below_fits = anchor.y + 1 < world.height() as i32;
    let top = if above >= 0.0 && !(agent_in_the_way && below_fits) {
        above
    } else {
        cell_origin(anchor.y + 1, tile) + LABEL_GAP
    };
    // Grows away from the nearer side edge, so it stays inside the frame.
    let (left, right) = if cell_origin(anchor.x, tile) + tile / 2.0 <= width / 2.0 {
        (px(cell_origin(anchor.x, tile)), Val::Auto)
    } else {
        (Val::Auto, px(width - cell_origin(anchor.x + 1, tile)))
    };
    let wanted_label = Node { display: Display::Flex, left, right, top: px(top), ..(**label).clone() };
    label.set_if_neq(wanted_label);
}

/// A cell's top or left edge in the focused view, in logical pixels.
fn cell_origin(cell: i32, tile: f32) -> f32 {
    cell as f32 * tile
}
