//! Every parallel env as a small thumbnail beside the focused one: click one to focus it;
//! its frame flashes green or red when its episode ends.

use bevy::prelude::*;

use super::flash::{Flash, FrameColor, frame_edges, tint_overlay};
use super::layout::{
    MAX_THUMBNAILS, SpawnSkeleton, THUMBNAIL_BORDER, THUMBNAIL_GAP, UpdateLayout, ViewLayout, ViewSlots,
};
use super::race::{MosaicContent, RaceMode};
use super::render_grid::{GridPainter, WorldStyle};
use super::simulation::{EpisodeEnded, FocusedEnv, Speed, TrainingSnapshot};
use super::theme;
use super::world_image::{blank_image, repaint};

/// How strongly a thumbnail's image is tinted at the start of a flash.
const THUMBNAIL_TINT_ALPHA: f32 = 0.35;

/// A thumbnail button showing env `.0`.
#[derive(Component, Clone, Copy, Debug)]
struct Thumbnail(usize);

/// The grid container of thumbnails.
#[derive(Component)]
struct ThumbnailGrid;

/// The line above the thumbnails.
#[derive(Component)]
struct MosaicTitle;

/// The thumbnails' images and painter, and the generation they show.
#[derive(Resource)]
struct MosaicCanvas {
    images: Vec<Handle<Image>>,
    buttons: Vec<Entity>,
    painter: GridPainter,
    drawn: Option<u64>,
}

pub struct MosaicPlugin;

impl Plugin for MosaicPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_mosaic.after(SpawnSkeleton)).add_systems(
            Update,
            (respawn_for_new_runs, apply_layout, redraw_thumbnails, focus_on_click, frame_colors, flash_on_episode_end)
                .chain()
                .after(UpdateLayout),
        );
    }
}

fn spawn_mosaic(
    mut commands: Commands,
    slots: Res<ViewSlots>,
    layout: Res<ViewLayout>,
    snapshot: Res<TrainingSnapshot>,
    mut images: ResMut<Assets<Image>>,
) {
    let num_envs = snapshot.num_envs();
    let title = commands
        .spawn((
            MosaicContent(Display::Flex),
            Node { height: px(super::layout::MOSAIC_TITLE_HEIGHT), align_items: AlignItems::Center, ..default() },
            children![(
                MosaicTitle,
                Text::new(mosaic_title(num_envs)),
                theme::font(theme::BODY_SIZE),
                TextColor(theme::TEXT_DIM)
            )],
        ))
        .id();
    let grid = commands
        .spawn((
            ThumbnailGrid,
            MosaicContent(Display::Grid),
            Node { display: Display::Grid, row_gap: px(THUMBNAIL_GAP), column_gap: px(THUMBNAIL_GAP), ..default() },
        ))
        .id();
    let (handles, buttons) = spawn_thumbnails(&mut commands, grid, num_envs, &mut images);
    commands.entity(slots.mosaic).add_children(&[title, grid]);
    commands.insert_resource(MosaicCanvas {
        images: handles,
        buttons,
        painter: GridPainter::new(layout.thumbnail_tile_px),
        drawn: None,
    });
}

fn mosaic_title(num_envs: usize) -> String {
    let shown = num_envs.min(MAX_THUMBNAILS);
    if shown < num_envs {
        format!("{num_envs} envs (first {shown} shown) - click one to focus it")
    } else {
        format!("{num_envs} envs - click one to focus it")
    }
}

/// One thumbnail button per env (up to `MAX_THUMBNAILS`) in `grid`.
fn spawn_thumbnails(
    commands: &mut Commands,
    grid: Entity,
    num_envs: usize,
    images: &mut Assets<Image>,
) -> (Vec<Handle<Image>>, Vec<Entity>) {
    let shown = num_envs.min(MAX_THUMBNAILS);
    let mut handles = Vec::with_capacity(shown);
    let mut buttons = Vec::with_capacity(shown);
    for env in 0..shown {
        let image = images.add(blank_image(1, 1));
        let button = commands
            .spawn((
                Thumbnail(env),
                Button,
                ImageNode::new(image.clone()),
                Node { border: UiRect::all(px(THUMBNAIL_BORDER)), ..default() },
                FrameColor(theme::FRAME),
                // No background under the opaque image (as the focused view).
                children![tint_overlay(THUMBNAIL_TINT_ALPHA)],
            ))
            .with_children(|frame| {
                for edge in frame_edges(THUMBNAIL_BORDER, theme::FRAME) {
                    frame.spawn(edge);
                }
            })
            .id();
        commands.entity(grid).add_child(button);
        handles.push(image);
        buttons.push(button);
    }
    (handles, buttons)
}

/// A run on another scene may have another number of envs: the thumbnails follow.
fn respawn_for_new_runs(
    mut commands: Commands,
    snapshot: Res<TrainingSnapshot>,
    mut canvas: ResMut<MosaicCanvas>,
    mut images: ResMut<Assets<Image>>,
    grid: Single<Entity, With<ThumbnailGrid>>,
    mut title: Single<&mut Text, With<MosaicTitle>>,
    mut layout: ResMut<ViewLayout>,
) {
    let num_envs = snapshot.num_envs();
    if canvas.images.len() == num_envs.min(MAX_THUMBNAILS) {
        return;
    }
    let grid = *grid;
    for button in canvas.buttons.drain(..) {
        commands.entity(button).despawn();
    }
    let (handles, buttons) = spawn_thumbnails(&mut commands, grid, num_envs, &mut images);
    canvas.images = handles;
    canvas.buttons = buttons;
    canvas.drawn = None;
    title.0 = mosaic_title(num_envs);
    // New buttons need their sizes even if the layout itself did not change.
    layout.set_changed();
}

fn apply_layout(
    layout: Res<ViewLayout>,
    mut canvas: ResMut<MosaicCanvas>,
    mut grid: Single<&mut Node, (With<ThumbnailGrid>, Without<Thumbnail>)>,
    mut thumbnails: Query<&mut Node, With<Thumbnail>>,
) {
    if !layout.is_changed() {
        return;
    }
    let outer = layout.thumbnail_size + 2.0 * THUMBNAIL_BORDER;
    grid.grid_template_columns = vec![RepeatedGridTrack::px(layout.columns, outer.x)];
    for mut node in &mut thumbnails {
        node.width = px(outer.x);
        node.height = px(outer.y);
    }
    if canvas.painter.tile_px() != layout.thumbnail_tile_px {
        canvas.painter = GridPainter::new(layout.thumbnail_tile_px);
        canvas.drawn = None;
    }
}

fn redraw_thumbnails(
    snapshot: Res<TrainingSnapshot>,
    race: Res<RaceMode>,
    mut canvas: ResMut<MosaicCanvas>,
    mut images: ResMut<Assets<Image>>,
) {
    // Hidden in a race: drawn again when it shows.
    if race.0 {
        canvas.drawn = None;
        return;
    }
    if canvas.drawn == Some(snapshot.generation) {
        return;
    }
    let canvas = &mut *canvas;
    let style = WorldStyle { draw_agent: true, highlight_view: true };
    for (env, handle) in canvas.images.iter().enumerate() {
        repaint(&mut images, handle, &mut canvas.painter, snapshot.world(env), style);
    }
    canvas.drawn = Some(snapshot.generation);
}

fn focus_on_click(clicked: Query<(&Interaction, &Thumbnail), Changed<Interaction>>, mut focus: ResMut<FocusedEnv>) {
    for (interaction, thumbnail) in &clicked {
        if *interaction == Interaction::Pressed {
            focus.set_if_neq(FocusedEnv(thumbnail.0));
        }
    }
}

/// Focused: the accent colour; hovered: lighter; otherwise a quiet frame.
fn frame_colors(focus: Res<FocusedEnv>, mut thumbnails: Query<(&Thumbnail, &Interaction, &mut FrameColor)>) {
    for (thumbnail, interaction, mut frame) in &mut thumbnails {
        let color = if thumbnail.0 == focus.0 {
            theme::ACCENT
        } else if *interaction != Interaction::None {
            theme::FRAME_HOVERED
        } else {
            theme::FRAME
        };
        frame.set_if_neq(FrameColor(color));
    }
}

fn flash_on_episode_end(
    mut commands: Commands,
    mut ended: MessageReader<EpisodeEnded>,
    canvas: Res<MosaicCanvas>,
    speed: Res<Speed>,
) {
    for episode in ended.read() {
        // At max speed some episode ends in almost every frame: flashes would tint the whole
        // mosaic at once and say nothing. The success curve shows the outcomes there.
        if *speed == Speed::Max {
            continue;
        }
        if let Some(&button) = canvas.buttons.get(episode.env) {
            commands.entity(button).insert(Flash::episode_ended(episode.success, speed.flash_secs()));
        }
    }
}
