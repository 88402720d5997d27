//! The focused env drawn large: the world as a crisp image (visible cells lit), the agent as
//! a triangle overlay that slides and turns between steps, and a line about the episode.

use std::f32::consts::FRAC_PI_2;

use bevy::prelude::*;

use super::flash::{Flash, FrameColor, frame_edges, tint_overlay};
use super::layout::{FOCUS_BORDER, FOCUS_INFO_HEIGHT, SpawnSkeleton, UpdateLayout, ViewLayout, ViewSlots};
use super::render_grid::{GridPainter, Icon, WorldStyle, paint_icon};
use super::simulation::{AgentMotion, AgentPose, EpisodeEnded, FocusedEnv, Speed, TrainingSnapshot};
use super::theme;
use super::world_image::{blank_image, image_from_pixels, repaint};
use crate::env::grid::Cell;

/// Side of the agent's icon image; large, so it stays sharp scaled down and turning.
const AGENT_ICON_PX: u32 = 128;
/// Side of the carried object's icon image (drawn at `CARRIED_ICON_SIZE`).
const CARRIED_ICON_PX: u32 = 40;
/// The big view flashes more softly than thumbnails: it fills much of the window.
const FOCUS_TINT_ALPHA: f32 = 0.18;
/// The carried object's icon beside the info line, in logical pixels.
const CARRIED_ICON_SIZE: f32 = 20.0;

/// The bordered frame holding the focused world's image.
#[derive(Component)]
pub struct FocusFrame;

/// The agent's triangle over the focused world.
#[derive(Component)]
struct AgentOverlay;

/// The lines above the frame; as wide as the frame, so long text never pushes the mosaic.
#[derive(Component)]
struct FocusInfo;

#[derive(Component)]
struct EpisodeLine;

#[derive(Component)]
struct MissionLine;

#[derive(Component)]
struct CarriedIcon;

/// What the agent holds, after its icon.
#[derive(Component)]
struct CarriedLine;

/// What the focused view draws with, and what it drew last.
#[derive(Resource)]
struct FocusCanvas {
    world_image: Handle<Image>,
    carried_image: Handle<Image>,
    painter: GridPainter,
    /// `(generation, env)` of the picture in `world_image`.
    drawn: Option<(u64, usize)>,
    carried_drawn: Option<Cell>,
}

pub struct FocusViewPlugin;

impl Plugin for FocusViewPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_focus_view.after(SpawnSkeleton)).add_systems(
            Update,
            (apply_layout, redraw_world, move_agent, update_episode_lines, flash_on_episode_end)
                .chain()
                .after(UpdateLayout),
        );
    }
}

pub fn spawn_focus_view(
    mut commands: Commands,
    slots: Res<ViewSlots>,
    layout: Res<ViewLayout>,
    mut images: ResMut<Assets<Image>>,
) {
    let world_image = images.add(blank_image(1, 1));
    let carried_image = images.add(blank_image(1, 1));
    let agent_image =
        images.add(image_from_pixels(AGENT_ICON_PX, AGENT_ICON_PX, paint_icon(Icon::Agent, AGENT_ICON_PX)));
    commands.insert_resource(FocusCanvas {
        world_image: world_image.clone(),
        carried_image: carried_image.clone(),
        painter: GridPainter::new(layout.focus_tile_px),
        drawn: None,
        carried_drawn: None,
    });

    let info = commands
        .spawn((
            FocusInfo,
            Node {
                height: px(FOCUS_INFO_HEIGHT),
                flex_direction: FlexDirection::Column,
                justify_content: JustifyContent::Center,
                row_gap: px(4),
                overflow: Overflow::clip(),
                ..default()
            },
        ))
        .with_children(|info| {
            info.spawn(Node {
                flex_direction: FlexDirection::Row,
                align_items: AlignItems::Center,
                column_gap: px(8),
                ..default()
            })
            .with_children(|row| {
                row.spawn((
                    EpisodeLine,
                    Text::new(""),
                    theme::font(theme::BODY_SIZE),
                    TextColor(theme::TEXT),
                    TextLayout::no_wrap(),
                ));
                // The icon sits between "carrying" and the object's name, so a long line clips
                // text at its end rather than the icon.
                row.spawn((
                    CarriedIcon,
                    ImageNode::new(carried_image),
                    Node { width: px(CARRIED_ICON_SIZE), height: px(CARRIED_ICON_SIZE), flex_shrink: 0.0, ..default() },
                ));
                row.spawn((
                    CarriedLine,
                    Text::new(""),
                    theme::font(theme::BODY_SIZE),
                    TextColor(theme::TEXT),
                    TextLayout::no_wrap(),
                ));
            });
            info.spawn((
                MissionLine,
                Text::new(""),
                theme::font(theme::SMALL_SIZE),
                TextColor(theme::TEXT_DIM),
                TextLayout::no_wrap(),
            ));
        })
        .id();
    let frame = commands
        .spawn((
            FocusFrame,
            ImageNode::new(world_image),
            Node { border: UiRect::all(px(FOCUS_BORDER)), ..default() },
            FrameColor(theme::ACCENT),
            // No background: the opaque world image covers the frame's inside, and each UI
            // quad costs its whole area in fragment shading under software Vulkan.
        ))
        .with_children(|frame| {
            frame.spawn(tint_overlay(FOCUS_TINT_ALPHA));
            for edge in frame_edges(FOCUS_BORDER, theme::ACCENT) {
                frame.spawn(edge);
            }
            frame.spawn((
                AgentOverlay,
                ImageNode::new(agent_image),
                Node { position_type: PositionType::Absolute, left: px(0), top: px(0), ..default() },
                UiTransform::default(),
            ));
        })
        .id();
    commands.entity(slots.focus).add_children(&[info, frame]);
}

/// Sizes the frame, the lines above it and the agent to the layout; a new tile size means a
/// new painter.
fn apply_layout(
    layout: Res<ViewLayout>,
    mut canvas: ResMut<FocusCanvas>,
    mut nodes: Query<
        (&mut Node, Has<FocusFrame>, Has<FocusInfo>),
        Or<(With<FocusFrame>, With<FocusInfo>, With<AgentOverlay>)>,
    >,
) {
    if !layout.is_changed() {
        return;
    }
    let outer = layout.focus_size + 2.0 * FOCUS_BORDER;
    for (mut node, is_frame, is_info) in &mut nodes {
        if is_frame {
            node.width = px(outer.x);
            node.height = px(outer.y);
        } else if is_info {
            node.width = px(outer.x);
        } else {
            node.width = px(layout.focus_tile());
            node.height = px(layout.focus_tile());
        }
    }
    if canvas.painter.tile_px() != layout.focus_tile_px {
        canvas.painter = GridPainter::new(layout.focus_tile_px);
        canvas.drawn = None;
    }
}

fn redraw_world(
    snapshot: Res<TrainingSnapshot>,
    focus: Res<FocusedEnv>,
    mut canvas: ResMut<FocusCanvas>,
    mut images: ResMut<Assets<Image>>,
) {
    let env = focus.0.min(snapshot.num_envs() - 1);
    let wanted = (snapshot.generation, env);
    if canvas.drawn == Some(wanted) {
        return;
    }
    let canvas = &mut *canvas;
    let style = WorldStyle { draw_agent: false, highlight_view: true };
    repaint(&mut images, &canvas.world_image, &mut canvas.painter, snapshot.world(env), style);
    canvas.drawn = Some(wanted);
}

/// Places the triangle between the last two poses by the fixed step's overstep fraction.
fn move_agent(
    motion: Res<AgentMotion>,
    focus: Res<FocusedEnv>,
    snapshot: Res<TrainingSnapshot>,
    fixed_time: Res<Time<Fixed>>,
    layout: Res<ViewLayout>,
    mut agent: Single<&mut UiTransform, With<AgentOverlay>>,
) {
    let pose = if motion.env == focus.0 {
        motion.from.lerp(motion.to, fixed_time.overstep_fraction().clamp(0.0, 1.0))
    } else {
        AgentPose::of(snapshot.world(focus.0))
    };
    let corner = pose.pos * layout.focus_tile();
    let wanted = UiTransform {
        translation: Val2::px(corner.x, corner.y),
        rotation: Rot2::radians(pose.quarter_turns * FRAC_PI_2),
        ..default()
    };
    if **agent != wanted {
        **agent = wanted;
    }
}

/// "env 3/16   step 12/640   carrying [icon] yellow key" and the mission below it (the
/// teacher's advice is in the side panel).
fn update_episode_lines(
    snapshot: Res<TrainingSnapshot>,
    focus: Res<FocusedEnv>,
    mut canvas: ResMut<FocusCanvas>,
    mut images: ResMut<Assets<Image>>,
    mut episode: Single<&mut Text, (With<EpisodeLine>, Without<MissionLine>, Without<CarriedLine>)>,
    mut mission: Single<&mut Text, (With<MissionLine>, Without<EpisodeLine>, Without<CarriedLine>)>,
    mut carried: Single<&mut Text, (With<CarriedLine>, Without<EpisodeLine>, Without<MissionLine>)>,
    mut carried_icon: Single<&mut Node, With<CarriedIcon>>,
) {
    let env = focus.0.min(snapshot.num_envs() - 1);
    let world = snapshot.world(env);
    let carrying = if world.carrying.is_empty() { "nothing".to_owned() } else { world.carrying.describe() };
    // Under manual control the line says whose the env is, since it stands still between keys.
    let manual = if snapshot.manual_env() == Some(env) { "  [manual]" } else { "" };
    let line = format!(
        "env {}/{}{manual}  step {}/{}  carrying",
        env + 1,
        snapshot.num_envs(),
        world.step_count,
        world.max_steps
    );
    if episode.0 != line {
        episode.0 = line;
    }
    if carried.0 != carrying {
        carried.0 = carrying;
    }
    let mission_line = format!("mission: {}", world.mission);
    if mission.0 != mission_line {
        mission.0 = mission_line;
    }
    if canvas.carried_drawn != Some(world.carrying) {
        if !world.carrying.is_empty() {
            let pixels = paint_icon(Icon::Object(world.carrying), CARRIED_ICON_PX);
            // Replacing the asset keeps the handle the icon node holds.
            let _ = images.insert(&canvas.carried_image, image_from_pixels(CARRIED_ICON_PX, CARRIED_ICON_PX, pixels));
        }
        canvas.carried_drawn = Some(world.carrying);
    }
    // Taken out of the row when nothing is held, so "carrying nothing" has no gap.
    let display = if world.carrying.is_empty() { Display::None } else { Display::Flex };
    if carried_icon.display != display {
        carried_icon.display = display;
    }
}

fn flash_on_episode_end(
    mut commands: Commands,
    mut ended: MessageReader<EpisodeEnded>,
    focus: Res<FocusedEnv>,
    speed: Res<Speed>,
    frame: Single<Entity, With<FocusFrame>>,
) {
    // As in the mosaic, max speed ends episodes too often for flashes to mean anything.
    let last = ended.read().filter(|episode| episode.env == focus.0).last();
    if *speed != Speed::Max
        && let Some(last) = last
    {
        commands.entity(*frame).insert(Flash::episode_ended(last.success, speed.flash_secs()));
    }
}
