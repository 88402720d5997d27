//! The window's layout: a header, the focused env large on the left, the mosaic of all envs
//! and the learning curve under it beside it, a footer; the egui side panel on the right. Sizes are whole tiles of physical pixels, so grids stay crisp.

use bevy::prelude::*;
use bevy::window::PrimaryWindow;

use super::WINDOW_SIZE;
use super::panels::PANEL_WIDTH;
use super::race::RaceMode;
use super::simulation::TrainingSnapshot;

/// Space around everything (logical pixels, as are the other constants).
pub const MARGIN: f32 = 16.0;
pub const HEADER_HEIGHT: f32 = 58.0;
pub const FOOTER_HEIGHT: f32 = 24.0;
/// Between the focused env and the mosaic.
pub const COLUMN_GAP: f32 = 28.0;
/// The two lines above the focused env.
pub const FOCUS_INFO_HEIGHT: f32 = 52.0;
pub const FOCUS_BORDER: f32 = 3.0;
/// The line above the mosaic.
pub const MOSAIC_TITLE_HEIGHT: f32 = 52.0;
pub const THUMBNAIL_GAP: f32 = 8.0;
/// The learning curve's strip under the mosaic, and the space above it.
pub const CURVE_HEIGHT: f32 = 120.0;
pub const CURVE_GAP: f32 = 12.0;
pub const THUMBNAIL_BORDER: f32 = 2.0;
/// Envs beyond this many get no thumbnail (a scene may run thousands).
pub const MAX_THUMBNAILS: usize = 64;
/// The focused env takes at most this share of the width.
const FOCUS_WIDTH_SHARE: f32 = 0.6;
/// In the race view the two runs' focused envs share the width equally.
const RACE_FOCUS_WIDTH_SHARE: f32 = 0.5;

/// Sizes of everything that depends on the window and the grid.
#[derive(Resource, Clone, Copy, Debug, PartialEq)]
pub struct ViewLayout {
    /// Physical pixels per logical pixel.
    pub scale_factor: f32,
    /// Tile side of the focused env, in physical pixels.
    pub focus_tile_px: u32,
    /// The focused env's image, in logical pixels.
    pub focus_size: Vec2,
    pub thumbnail_tile_px: u32,
    /// One thumbnail's image (without its border), in logical pixels.
    pub thumbnail_size: Vec2,
    pub columns: u16,
    pub thumbnails: usize,
    /// The learning curve's strip, in logical pixels from the window's top left.
    pub curve: Rect,
    /// The race view's second focused env, in the mosaic's place: tile side in physical
    /// pixels (at most the focused env's) and image size in logical pixels.
    pub rival_tile_px: u32,
    pub rival_size: Vec2,
}

impl ViewLayout {
    /// Lays out a `grid` (width, height in cells) of `num_envs` envs in a `window` of that
    /// logical size.
    pub fn compute(window: Vec2, scale_factor: f32, grid: (usize, usize), num_envs: usize) -> ViewLayout {
        ViewLayout::compute_with_share(window, scale_factor, grid, num_envs, FOCUS_WIDTH_SHARE)
    }

    /// `compute` for the race view: both runs' focused envs about as large.
    pub fn compute_race(window: Vec2, scale_factor: f32, grid: (usize, usize), num_envs: usize) -> ViewLayout {
        ViewLayout::compute_with_share(window, scale_factor, grid, num_envs, RACE_FOCUS_WIDTH_SHARE)
    }

    fn compute_with_share(
        window: Vec2,
        scale_factor: f32,
        grid: (usize, usize),
        num_envs: usize,
        focus_share: f32,
    ) -> ViewLayout {
        let scale_factor = if scale_factor > 0.0 { scale_factor } else { 1.0 };
        let cells = Vec2::new(grid.0.max(1) as f32, grid.1.max(1) as f32);
        let body = (window - Vec2::new(2.0 * MARGIN, 2.0 * MARGIN + HEADER_HEIGHT + FOOTER_HEIGHT)).max(Vec2::ONE);
        let focus_room = Vec2::new(body.x * focus_share, body.y - FOCUS_INFO_HEIGHT) - 2.0 * FOCUS_BORDER;
        let focus_tile_px = whole_tile(focus_room, cells, scale_factor);
        let focus_size = cells * focus_tile_px as f32 / scale_factor;

        let mosaic_room = Vec2::new(
            body.x - focus_size.x - 2.0 * FOCUS_BORDER - COLUMN_GAP,
            body.y - MOSAIC_TITLE_HEIGHT - CURVE_GAP - CURVE_HEIGHT,
        )
        .max(Vec2::ONE);

        let thumbnails = num_envs.clamp(1, MAX_THUMBNAILS);
        let (columns, thumbnail_tile_px) = (1..=thumbnails)
            .map(|columns| {
                let rows = thumbnails.div_ceil(columns);
                let per_thumbnail = Vec2::new(
                    (mosaic_room.x - (columns - 1) as f32 * THUMBNAIL_GAP) / columns as f32,
                    (mosaic_room.y - (rows - 1) as f32 * THUMBNAIL_GAP) / rows as f32,
                ) - 2.0 * THUMBNAIL_BORDER;
                (columns, whole_tile(per_thumbnail, cells, scale_factor))
            })
            // The largest tiles; among equals the fewest columns.
            .fold((1, 0), |best, next| if next.1 > best.1 { next } else { best });
        let thumbnail_size = cells * thumbnail_tile_px as f32 / scale_factor;
        // Under the thumbnails and as wide as their grid, just above the footer.
        let grid_width =
            columns as f32 * (thumbnail_size.x + 2.0 * THUMBNAIL_BORDER) + (columns - 1) as f32 * THUMBNAIL_GAP;
        let curve_min = Vec2::new(
            MARGIN + focus_size.x + 2.0 * FOCUS_BORDER + COLUMN_GAP,
            window.y - MARGIN - FOOTER_HEIGHT - CURVE_HEIGHT,
        );
        let curve_max = Vec2::new(curve_min.x + grid_width, window.y - MARGIN - FOOTER_HEIGHT).max(curve_min);
        let rival_tile_px = whole_tile(mosaic_room - 2.0 * FOCUS_BORDER, cells, scale_factor).min(focus_tile_px);
        let rival_size = cells * rival_tile_px as f32 / scale_factor;
        ViewLayout {
            scale_factor,
            focus_tile_px,
            focus_size,
            thumbnail_tile_px,
            thumbnail_size,
            columns: columns as u16,
            thumbnails,
            curve: Rect::from_corners(curve_min, curve_max),
            rival_tile_px,
            rival_size,
        }
    }

    /// The focused env's tile side in logical pixels.
    pub fn focus_tile(&self) -> f32 {
        self.focus_tile_px as f32 / self.scale_factor
    }
}

/// The largest whole physical tile that fits `cells` into `room` logical pixels (at least 1).
fn whole_tile(room: Vec2, cells: Vec2, scale_factor: f32) -> u32 {
    let tile = (room / cells).min_element() * scale_factor;
    if tile.is_finite() && tile >= 1.0 { tile.floor() as u32 } else { 1 }
}

/// The UI's fixed skeleton; each view spawns its content into one of these.
#[derive(Resource, Clone, Copy, Debug)]
pub struct ViewSlots {
    pub header: Entity,
    pub focus: Entity,
    pub mosaic: Entity,
    pub footer: Entity,
}

/// Runs first at startup: the skeleton exists before views fill it.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpawnSkeleton;

/// Keeps `ViewLayout` in step with the window.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpdateLayout;

pub struct LayoutPlugin;

impl Plugin for LayoutPlugin {
    fn build(&self, app: &mut App) {
        let window = Vec2::new(WINDOW_SIZE.0 as f32, WINDOW_SIZE.1 as f32);
        let (grid, num_envs) = {
            let snapshot = app.world().resource::<TrainingSnapshot>();
            (snapshot.layout_cells(), snapshot.num_envs())
        };
        let race = app.world().get_resource::<RaceMode>().is_some_and(|race| race.0);
        let compute = if race { ViewLayout::compute_race } else { ViewLayout::compute };
        app.insert_resource(compute(views_area(window, 1.0), 1.0, grid, num_envs))
            .add_systems(Startup, spawn_skeleton.in_set(SpawnSkeleton))
            .add_systems(Update, follow_window.in_set(UpdateLayout));
    }
}

fn spawn_skeleton(mut commands: Commands) {
    // No multisampling: everything drawn is axis-aligned UI, pre-rasterised grid images and
    // egui's own anti-aliased meshes, so 4x MSAA (Bevy's default) bought nothing visible but
    // cost a multisampled target and its resolve every frame under software Vulkan.
    // The UI draws on this camera even where 3D cameras (embodied scenes) come after it.
    commands.spawn((Camera2d, Msaa::Off, IsDefaultUiCamera));
    let header = commands
        .spawn(Node {
            height: px(HEADER_HEIGHT),
            flex_shrink: 0.0,
            flex_direction: FlexDirection::Column,
            row_gap: px(6),
            ..default()
        })
        .id();
    let focus = commands.spawn(Node { flex_direction: FlexDirection::Column, flex_shrink: 0.0, ..default() }).id();
    let mosaic = commands.spawn(Node { flex_direction: FlexDirection::Column, flex_grow: 1.0, ..default() }).id();
    let body = commands
        .spawn(Node {
            flex_grow: 1.0,
            min_height: px(0),
            flex_direction: FlexDirection::Row,
            column_gap: px(COLUMN_GAP),
            align_items: AlignItems::FlexStart,
            ..default()
        })
        .add_children(&[focus, mosaic])
        .id();
    let footer = commands
        .spawn(Node { height: px(FOOTER_HEIGHT), flex_shrink: 0.0, align_items: AlignItems::FlexEnd, ..default() })
        .id();
    commands
        .spawn((
            Node {
                width: percent(100),
                height: percent(100),
                flex_direction: FlexDirection::Column,
                // The egui side panel covers the window's right edge.
                padding: UiRect { right: px(MARGIN + PANEL_WIDTH), ..UiRect::all(px(MARGIN)) },
                ..default()
            },
            // No background: the clear colour is the same, and a window-sized UI quad cost a
            // full screen of fragment shading per frame under software Vulkan.
        ))
        .add_children(&[header, body, footer]);
    commands.insert_resource(ViewSlots { header, focus, mosaic, footer });
}

/// The window's size in UI pixels (logical pixels over `UiScale`) less the side panel.
pub fn views_area(window: Vec2, ui_scale: f32) -> Vec2 {
    let ui_scale = if ui_scale > 0.0 { ui_scale } else { 1.0 };
    let window = window / ui_scale;
    Vec2::new((window.x - PANEL_WIDTH).max(1.0), window.y)
}

fn follow_window(
    window: Single<&Window, With<PrimaryWindow>>,
    ui_scale: Res<UiScale>,
    snapshot: Res<TrainingSnapshot>,
    race: Option<Res<RaceMode>>,
    mut layout: ResMut<ViewLayout>,
) {
    let compute = if race.is_some_and(|race| race.0) { ViewLayout::compute_race } else { ViewLayout::compute };
    let computed = compute(
        views_area(window.resolution.size(), ui_scale.0),
        window.resolution.scale_factor() * ui_scale.0,
        snapshot.layout_cells(),
        snapshot.num_envs(),
    );
    layout.set_if_neq(computed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_window_fits_focus_and_mosaic() {
        let window = Vec2::new(1280.0, 800.0);
        let layout = ViewLayout::compute(window, 1.0, (8, 8), 16);
        assert_eq!(layout.columns, 4);
        assert!(layout.focus_tile_px >= 70, "{layout:?}");
        assert!(layout.thumbnail_tile_px >= 14, "{layout:?}");
        let mosaic_width = 4.0 * (layout.thumbnail_size.x + 2.0 * THUMBNAIL_BORDER) + 3.0 * THUMBNAIL_GAP;
        let used = 2.0 * MARGIN + layout.focus_size.x + 2.0 * FOCUS_BORDER + COLUMN_GAP + mosaic_width;
        assert!(used <= window.x, "{used} > {}", window.x);
        let focus_height = HEADER_HEIGHT + FOOTER_HEIGHT + 2.0 * MARGIN + FOCUS_INFO_HEIGHT + layout.focus_size.y;
        assert!(focus_height + 2.0 * FOCUS_BORDER <= window.y);
        // The curve sits under the thumbnails, as wide as the mosaic's column.
        let thumbnails_bottom = HEADER_HEIGHT
            + MARGIN
            + MOSAIC_TITLE_HEIGHT
            + 4.0 * (layout.thumbnail_size.y + 2.0 * THUMBNAIL_BORDER)
            + 3.0 * THUMBNAIL_GAP;
        assert!(layout.curve.min.y >= thumbnails_bottom + CURVE_GAP, "{layout:?}");
        assert_eq!(layout.curve.width(), mosaic_width, "{layout:?}");
    }

    #[test]
    fn beside_the_side_panel_the_default_window_still_reads_well() {
        let area = views_area(Vec2::new(1280.0, 800.0), 1.0);
        assert_eq!(area, Vec2::new(1280.0 - PANEL_WIDTH, 800.0));
        let layout = ViewLayout::compute(area, 1.0, (8, 8), 16);
        assert!(layout.focus_tile_px >= 56, "{layout:?}");
        assert!(layout.thumbnail_tile_px >= 8, "{layout:?}");
        assert!(layout.curve.max.x <= area.x - MARGIN, "the curve stays left of the panel: {layout:?}");
        // Demo mode's larger UI scale lays out in fewer UI pixels.
        assert_eq!(views_area(Vec2::new(1600.0, 1000.0), 1.25), Vec2::new(1280.0 - PANEL_WIDTH, 800.0));
    }

    #[test]
    fn the_race_view_gives_both_runs_about_the_same_size() {
        let area = views_area(Vec2::new(1280.0, 800.0), 1.0);
        let normal = ViewLayout::compute(area, 1.0, (8, 8), 16);
        let race = ViewLayout::compute_race(area, 1.0, (8, 8), 16);
        assert!(race.focus_tile_px < normal.focus_tile_px, "{race:?}");
        assert!(race.rival_tile_px <= race.focus_tile_px && race.rival_tile_px * 10 >= race.focus_tile_px * 8);
        let used = 2.0 * MARGIN + race.focus_size.x + race.rival_size.x + 4.0 * FOCUS_BORDER + COLUMN_GAP;
        assert!(used <= area.x, "{used} > {}: {race:?}", area.x);
        let rival_height = HEADER_HEIGHT + 2.0 * MARGIN + MOSAIC_TITLE_HEIGHT + race.rival_size.y + 2.0 * FOCUS_BORDER;
        assert!(rival_height <= race.curve.min.y + MARGIN, "the second run's view ends above the curve: {race:?}");
    }

    #[test]
    fn tiles_are_whole_physical_pixels_at_any_scale() {
        let layout = ViewLayout::compute(Vec2::new(1280.0, 800.0), 1.5, (19, 19), 3);
        assert_eq!(layout.focus_size * 1.5, Vec2::splat(19.0 * layout.focus_tile_px as f32));
        assert!(layout.columns <= 3);
    }

    #[test]
    fn tiny_windows_and_many_envs_still_give_a_layout() {
        let layout = ViewLayout::compute(Vec2::new(10.0, 10.0), 1.0, (25, 25), 4096);
        assert_eq!((layout.focus_tile_px, layout.thumbnail_tile_px), (1, 1));
        assert_eq!(layout.thumbnails, MAX_THUMBNAILS);
        let wide = ViewLayout::compute(Vec2::new(1280.0, 800.0), 1.0, (16, 16), 64);
        assert!(wide.thumbnail_tile_px >= 2, "{wide:?}");
    }
}
