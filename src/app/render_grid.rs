//! CPU rasteriser for grid worlds in MiniGrid's look: each cell becomes a tile drawn from
//! simple shapes (3x supersampled), cached per tile kind and copied into RGBA8 images.
//!
//! Bevy-free on purpose: the same pixels serve the live view, thumbnails and unit tests, and
//! a few textures per frame cost far less on a software renderer than thousands of meshes.

use std::collections::HashMap;

use crate::env::grid::{Cell, Color, DoorState, GridWorld, Pos};

/// An sRGB colour without alpha.
pub type Rgb = [u8; 3];

/// MiniGrid's object colours (`minigrid.core.constants.COLORS`).
pub fn object_rgb(color: Color) -> Rgb {
    match color {
        Color::Red => [255, 0, 0],
        Color::Green => [0, 255, 0],
        Color::Blue => [0, 0, 255],
        Color::Purple => [112, 39, 195],
        Color::Yellow => [255, 255, 0],
        Color::Grey => [100, 100, 100],
    }
}

/// The agent's triangle.
pub const AGENT_RGB: Rgb = [255, 0, 0];
/// Empty floor: MiniGrid's black, lifted a touch so the grid reads as tiles.
pub const FLOOR_RGB: Rgb = [14, 15, 19];
/// The thin line on each tile's top and left edge.
pub const GRID_LINE_RGB: Rgb = [72, 76, 88];
const LAVA_RGB: Rgb = [255, 128, 0];
const BLACK: Rgb = [0, 0, 0];
/// How far visible cells move toward white (MiniGrid's highlight).
const HIGHLIGHT: f32 = 0.3;
/// Subpixels per pixel side; MiniGrid renders at 3x and downsamples too.
const SUPERSAMPLE: u32 = 3;

/// What a whole-world image shows besides the cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldStyle {
    /// Draw the agent's triangle into its tile (thumbnails); the live view overlays its own.
    pub draw_agent: bool,
    /// Lighten the cells the agent sees.
    pub highlight_view: bool,
}

/// One tile's look: everything that changes its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TileKey {
    cell: Cell,
    agent_dir: Option<u8>,
    highlighted: bool,
}

/// Paints worlds at a fixed tile size, remembering every tile it has drawn.
pub struct GridPainter {
    tile_px: u32,
    tiles: HashMap<TileKey, Vec<u8>>,
    /// Scratch mask of visible cells, reused between paints.
    visible: Vec<bool>,
}

impl GridPainter {
    /// `tile_px` is clamped to at least 1.
    pub fn new(tile_px: u32) -> GridPainter {
        GridPainter { tile_px: tile_px.max(1), tiles: HashMap::new(), visible: Vec::new() }
    }

    pub fn tile_px(&self) -> u32 {
        self.tile_px
    }

    /// Pixel size of `world`'s image at this tile size.
    pub fn image_size(&self, world: &GridWorld) -> (u32, u32) {
        (world.width() as u32 * self.tile_px, world.height() as u32 * self.tile_px)
    }

    /// Paints `world` into `out`: RGBA8, rows top to bottom, `image_size` pixels. A buffer
    /// of the wrong length is left alone (the caller resizes its image first).
    pub fn paint(&mut self, world: &GridWorld, style: WorldStyle, out: &mut [u8]) {
        let (width_px, height_px) = self.image_size(world);
        if out.len() != (width_px * height_px * 4) as usize {
            return;
        }
        let (width, height) = (world.width(), world.height());
        self.visible.clear();
        self.visible.resize(width * height, false);
        if style.highlight_view {
            for p in world.visible_positions() {
                self.visible[p.y as usize * width + p.x as usize] = true;
            }
        }
        let tile = self.tile_px as usize;
        let row_bytes = width_px as usize * 4;
        for y in 0..height {
            for x in 0..width {
                let pos = Pos::new(x as i32, y as i32);
                let agent_here = style.draw_agent && world.agent_pos == pos;
                let key = TileKey {
                    cell: world.get(pos),
                    agent_dir: agent_here.then_some(world.agent_dir & 3),
                    highlighted: self.visible[y * width + x],
                };
                let tile_px = self.tile_px;
                let pixels = self.tiles.entry(key).or_insert_with(|| render_tile(key, tile_px));
                for row in 0..tile {
                    let start = (y * tile + row) * row_bytes + x * tile * 4;
                    out[start..start + tile * 4].copy_from_slice(&pixels[row * tile * 4..(row + 1) * tile * 4]);
                }
            }
        }
    }
}

/// What `paint_icon` draws on a transparent background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icon {
    /// The agent's triangle, pointing right (rotate the image for other directions).
    Agent,
    /// An object as it looks on the grid (a carried key, say).
    Object(Cell),
}

/// A `px` x `px` RGBA8 image of `icon` with a transparent background.
pub fn paint_icon(icon: Icon, px: u32) -> Vec<u8> {
    let mut canvas = Canvas::new(px.max(1), None);
    match icon {
        Icon::Agent => draw_agent(&mut canvas, 0),
        Icon::Object(cell) => draw_cell(&mut canvas, cell),
    }
    canvas.downsample(false)
}

fn render_tile(key: TileKey, tile_px: u32) -> Vec<u8> {
    let mut canvas = Canvas::new(tile_px, Some(FLOOR_RGB));
    // Grid lines first: walls and other filled cells cover them, as in MiniGrid.
    canvas.fill(Shape::rect(0.0, 0.031, 0.0, 1.0), GRID_LINE_RGB);
    canvas.fill(Shape::rect(0.0, 1.0, 0.0, 0.031), GRID_LINE_RGB);
    draw_cell(&mut canvas, key.cell);
    if let Some(dir) = key.agent_dir {
        draw_agent(&mut canvas, dir);
    }
    canvas.downsample(key.highlighted)
}

/// MiniGrid's `WorldObj.render` for each object, in unit tile coordinates (x right, y down).
fn draw_cell(canvas: &mut Canvas, cell: Cell) {
    match cell {
        Cell::Empty => {}
        Cell::Wall(color) => canvas.fill(Shape::rect(0.0, 1.0, 0.0, 1.0), object_rgb(color)),
        Cell::Floor(color) => canvas.fill(Shape::rect(0.031, 1.0, 0.031, 1.0), object_rgb(color).map(|c| c / 2)),
        Cell::Goal => canvas.fill(Shape::rect(0.0, 1.0, 0.0, 1.0), object_rgb(Color::Green)),
        Cell::Lava => {
            canvas.fill(Shape::rect(0.0, 1.0, 0.0, 1.0), LAVA_RGB);
            for i in 0..3 {
                let low = 0.3 + 0.2 * i as f32;
                let high = 0.48 + 0.2 * i as f32;
                for (x0, y0, x1, y1) in
                    [(0.1, low, 0.3, high), (0.3, high, 0.5, low), (0.5, low, 0.7, high), (0.7, high, 0.9, low)]
                {
                    canvas.fill(Shape::Segment { from: (x0, y0), to: (x1, y1), radius: 0.03 }, BLACK);
                }
            }
        }
        Cell::Door { color, state } => draw_door(canvas, object_rgb(color), state),
        Cell::Key(color) => {
            let rgb = object_rgb(color);
            // Shaft, two teeth, then the ring with its hole.
            canvas.fill(Shape::rect(0.50, 0.63, 0.31, 0.88), rgb);
            canvas.fill(Shape::rect(0.38, 0.50, 0.59, 0.66), rgb);
            canvas.fill(Shape::rect(0.38, 0.50, 0.81, 0.88), rgb);
            canvas.fill(Shape::Circle { center: (0.56, 0.28), radius: 0.190 }, rgb);
            canvas.clear(Shape::Circle { center: (0.56, 0.28), radius: 0.064 });
        }
        Cell::Ball(color) => canvas.fill(Shape::Circle { center: (0.5, 0.5), radius: 0.31 }, object_rgb(color)),
        Cell::Box { color, .. } => {
            let rgb = object_rgb(color);
            canvas.fill(Shape::rect(0.12, 0.88, 0.12, 0.88), rgb);
            canvas.clear(Shape::rect(0.18, 0.82, 0.18, 0.82));
            canvas.fill(Shape::rect(0.16, 0.84, 0.47, 0.53), rgb);
        }
    }
}

/// Open: a bar at the tile's edge. Closed: an outline with a handle. Locked: filled darker
/// with a keyhole. The three read apart even in small thumbnails.
fn draw_door(canvas: &mut Canvas, rgb: Rgb, state: DoorState) {
    match state {
        DoorState::Open => {
            canvas.fill(Shape::rect(0.88, 1.0, 0.0, 1.0), rgb);
            canvas.clear(Shape::rect(0.92, 0.96, 0.04, 0.96));
        }
        DoorState::Closed => {
            canvas.fill(Shape::rect(0.0, 1.0, 0.0, 1.0), rgb);
            canvas.clear(Shape::rect(0.04, 0.96, 0.04, 0.96));
            canvas.fill(Shape::rect(0.08, 0.92, 0.08, 0.92), rgb);
            canvas.clear(Shape::rect(0.12, 0.88, 0.12, 0.88));
            canvas.fill(Shape::Circle { center: (0.75, 0.5), radius: 0.08 }, rgb);
        }
        DoorState::Locked => {
            canvas.fill(Shape::rect(0.0, 1.0, 0.0, 1.0), rgb);
            canvas.fill(Shape::rect(0.06, 0.94, 0.06, 0.94), rgb.map(|c| (c as f32 * 0.45) as u8));
            canvas.fill(Shape::rect(0.52, 0.75, 0.50, 0.56), rgb);
        }
    }
}

/// MiniGrid's agent triangle, turned clockwise by `dir` quarter turns (0 right, 1 down).
fn draw_agent(canvas: &mut Canvas, dir: u8) {
    let triangle = Shape::Triangle { a: (0.12, 0.19), b: (0.87, 0.50), c: (0.12, 0.81) };
    canvas.fill(triangle.turned(dir), AGENT_RGB);
}

/// A region of the unit tile.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Rect {
        x: (f32, f32),
        y: (f32, f32),
    },
    Circle {
        center: (f32, f32),
        radius: f32,
    },
    /// A segment thickened by `radius`.
    Segment {
        from: (f32, f32),
        to: (f32, f32),
        radius: f32,
    },
    Triangle {
        a: (f32, f32),
        b: (f32, f32),
        c: (f32, f32),
    },
}

impl Shape {
    const fn rect(x0: f32, x1: f32, y0: f32, y1: f32) -> Shape {
        Shape::Rect { x: (x0, x1), y: (y0, y1) }
    }

    /// The shape turned clockwise on screen about the tile centre (only triangles turn).
    fn turned(self, quarter_turns: u8) -> Shape {
        match self {
            Shape::Triangle { a, b, c } => {
                let turn = |(x, y): (f32, f32)| rotate_quarter((x, y), quarter_turns);
                Shape::Triangle { a: turn(a), b: turn(b), c: turn(c) }
            }
            other => other,
        }
    }

    fn contains(&self, (x, y): (f32, f32)) -> bool {
        match *self {
            Shape::Rect { x: (x0, x1), y: (y0, y1) } => x >= x0 && x <= x1 && y >= y0 && y <= y1,
            Shape::Circle { center: (cx, cy), radius } => (x - cx).powi(2) + (y - cy).powi(2) <= radius * radius,
            Shape::Segment { from: (x0, y0), to: (x1, y1), radius } => {
                let (dx, dy) = (x1 - x0, y1 - y0);
                let length_sq = dx * dx + dy * dy;
                let t =
                    if length_sq > 0.0 { (((x - x0) * dx + (y - y0) * dy) / length_sq).clamp(0.0, 1.0) } else { 0.0 };
                let (px, py) = (x0 + t * dx, y0 + t * dy);
                (x - px).powi(2) + (y - py).powi(2) <= radius * radius
            }
            Shape::Triangle { a, b, c } => {
                let side = |p: (f32, f32), q: (f32, f32)| (q.0 - p.0) * (y - p.1) - (q.1 - p.1) * (x - p.0);
                let (d1, d2, d3) = (side(a, b), side(b, c), side(c, a));
                let has_negative = d1 < 0.0 || d2 < 0.0 || d3 < 0.0;
                let has_positive = d1 > 0.0 || d2 > 0.0 || d3 > 0.0;
                !(has_negative && has_positive)
            }
        }
    }
}

/// Turns a unit-tile point clockwise on screen (y points down) about the centre.
fn rotate_quarter((x, y): (f32, f32), quarter_turns: u8) -> (f32, f32) {
    let (mut dx, mut dy) = (x - 0.5, y - 0.5);
    for _ in 0..quarter_turns % 4 {
        (dx, dy) = (-dy, dx);
    }
    (0.5 + dx, 0.5 + dy)
}

/// A supersampled RGBA tile being drawn.
struct Canvas {
    px: u32,
    /// `px * SUPERSAMPLE` squared subpixels.
    subpixels: Vec<[u8; 4]>,
    background: [u8; 4],
}

impl Canvas {
    /// `background: None` starts transparent.
    fn new(px: u32, background: Option<Rgb>) -> Canvas {
        let background = background.map_or([0, 0, 0, 0], |[r, g, b]| [r, g, b, 255]);
        let side = (px * SUPERSAMPLE) as usize;
        Canvas { px, subpixels: vec![background; side * side], background }
    }

    fn fill(&mut self, shape: Shape, [r, g, b]: Rgb) {
        self.paint(shape, [r, g, b, 255]);
    }

    /// MiniGrid's black cut-outs: floor on tiles; opaque black on transparent icons, so a
    /// carried key keeps its ring.
    fn clear(&mut self, shape: Shape) {
        let cut_out = if self.background[3] == 0 { [0, 0, 0, 255] } else { self.background };
        self.paint(shape, cut_out);
    }

    fn paint(&mut self, shape: Shape, rgba: [u8; 4]) {
        let side = (self.px * SUPERSAMPLE) as usize;
        let scale = 1.0 / side as f32;
        for sy in 0..side {
            let y = (sy as f32 + 0.5) * scale;
            for sx in 0..side {
                if shape.contains(((sx as f32 + 0.5) * scale, y)) {
                    self.subpixels[sy * side + sx] = rgba;
                }
            }
        }
    }

    /// Averages each pixel's subpixels (alpha-weighted, so transparent edges do not darken),
    /// optionally lightening toward white like MiniGrid's highlight.
    fn downsample(&self, highlighted: bool) -> Vec<u8> {
        let px = self.px as usize;
        let s = SUPERSAMPLE as usize;
        let side = px * s;
        let mut out = vec![0u8; px * px * 4];
        for y in 0..px {
            for x in 0..px {
                let mut sum = [0f32; 4];
                for sy in 0..s {
                    for sx in 0..s {
                        let [r, g, b, a] = self.subpixels[(y * s + sy) * side + x * s + sx];
                        let weight = a as f32;
                        sum[0] += r as f32 * weight;
                        sum[1] += g as f32 * weight;
                        sum[2] += b as f32 * weight;
                        sum[3] += weight;
                    }
                }
                let pixel = &mut out[(y * px + x) * 4..(y * px + x + 1) * 4];
                if sum[3] > 0.0 {
                    for channel in 0..3 {
                        let mut value = sum[channel] / sum[3];
                        if highlighted {
                            value += HIGHLIGHT * (255.0 - value);
                        }
                        pixel[channel] = value.round().clamp(0.0, 255.0) as u8;
                    }
                    pixel[3] = (sum[3] / (s * s) as f32).round() as u8;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::Level;

    /// The RGBA of pixel `(x, y)` of a `width`-pixel-wide image.
    fn pixel(image: &[u8], width: u32, x: u32, y: u32) -> [u8; 4] {
        let at = ((y * width + x) * 4) as usize;
        [image[at], image[at + 1], image[at + 2], image[at + 3]]
    }

    fn tile(cell: Cell, agent_dir: Option<u8>) -> Vec<u8> {
        render_tile(TileKey { cell, agent_dir, highlighted: false }, 30)
    }

    #[test]
    fn world_image_has_the_grid_size_and_shows_walls_goal_and_agent() {
        let world = Level::Empty { size: 5 }.generate(0);
        let mut painter = GridPainter::new(10);
        let (width, height) = painter.image_size(&world);
        assert_eq!((width, height), (50, 50));
        let mut image = vec![0; (width * height * 4) as usize];
        painter.paint(&world, WorldStyle { draw_agent: true, highlight_view: false }, &mut image);
        // Corner wall, goal at (3, 3), agent at (1, 1) facing right.
        assert_eq!(pixel(&image, width, 5, 5), [100, 100, 100, 255]);
        assert_eq!(pixel(&image, width, 35, 35), [0, 255, 0, 255]);
        assert_eq!(pixel(&image, width, 15, 15), [255, 0, 0, 255]);
        // A floor tile away from its grid lines.
        assert_eq!(pixel(&image, width, 25, 15), [14, 15, 19, 255]);
    }

    #[test]
    fn highlight_lightens_exactly_the_visible_cells() {
        let world = Level::Empty { size: 8 }.generate(0);
        let mut painter = GridPainter::new(6);
        let (width, height) = painter.image_size(&world);
        let mut plain = vec![0; (width * height * 4) as usize];
        let mut lit = plain.clone();
        painter.paint(&world, WorldStyle { draw_agent: false, highlight_view: false }, &mut plain);
        painter.paint(&world, WorldStyle { draw_agent: false, highlight_view: true }, &mut lit);
        let visible = world.visible_positions();
        for y in 0..world.height() as i32 {
            for x in 0..world.width() as i32 {
                let (px, py) = (x as u32 * 6 + 3, y as u32 * 6 + 3);
                let changed = pixel(&plain, width, px, py) != pixel(&lit, width, px, py);
                assert_eq!(changed, visible.contains(&Pos::new(x, y)), "cell ({x}, {y})");
            }
        }
    }

    #[test]
    fn agent_points_where_it_faces() {
        // Tip of the triangle: right of centre facing right, below it facing down.
        let right = tile(Cell::Empty, Some(0));
        let down = tile(Cell::Empty, Some(1));
        assert_eq!(pixel(&right, 30, 22, 15), [255, 0, 0, 255]);
        assert_ne!(pixel(&right, 30, 15, 22), [255, 0, 0, 255]);
        assert_eq!(pixel(&down, 30, 15, 22), [255, 0, 0, 255]);
        assert_ne!(pixel(&down, 30, 22, 15), [255, 0, 0, 255]);
    }

    #[test]
    fn door_states_look_different() {
        let door = |state| tile(Cell::Door { color: Color::Yellow, state }, None);
        let (open, closed, locked) = (door(DoorState::Open), door(DoorState::Closed), door(DoorState::Locked));
        assert_ne!(open, closed);
        assert_ne!(closed, locked);
        assert_ne!(open, locked);
        // Centre: floor when open or closed (outlined), dark yellow when locked.
        assert_eq!(pixel(&open, 30, 15, 10), [14, 15, 19, 255]);
        assert_eq!(pixel(&closed, 30, 15, 10), [14, 15, 19, 255]);
        assert_eq!(pixel(&locked, 30, 15, 10), [114, 114, 0, 255]);
    }

    #[test]
    fn icons_have_transparent_backgrounds() {
        let key = paint_icon(Icon::Object(Cell::Key(Color::Blue)), 30);
        assert_eq!(pixel(&key, 30, 1, 1)[3], 0, "corner is transparent");
        assert_eq!(pixel(&key, 30, 17, 20), [0, 0, 255, 255], "shaft is blue");
        let agent = paint_icon(Icon::Agent, 30);
        assert_eq!(pixel(&agent, 30, 22, 15), [255, 0, 0, 255]);
    }

    #[test]
    fn wrong_buffer_length_is_ignored() {
        let world = Level::Empty { size: 5 }.generate(0);
        let mut buffer = vec![7u8; 12];
        GridPainter::new(4).paint(&world, WorldStyle { draw_agent: true, highlight_view: true }, &mut buffer);
        assert_eq!(buffer, vec![7u8; 12]);
    }
}
