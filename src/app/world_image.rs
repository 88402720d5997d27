//! Bevy images that show grid worlds: created blank, then repainted in place by a
//! `GridPainter` whenever the world changes (resized first when the grid's size differs).

use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};

use super::render_grid::{GridPainter, WorldStyle};
use crate::env::grid::GridWorld;

/// A transparent RGBA8 (sRGB) image kept on the CPU too, so it can be repainted.
pub fn blank_image(width: u32, height: u32) -> Image {
    Image::new_fill(
        Extent3d { width: width.max(1), height: height.max(1), depth_or_array_layers: 1 },
        TextureDimension::D2,
        &[0, 0, 0, 0],
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::default(),
    )
}

/// An image holding `pixels` (RGBA8, `width` x `height`), e.g. an icon.
pub fn image_from_pixels(width: u32, height: u32, pixels: Vec<u8>) -> Image {
    let mut image = blank_image(width, height);
    if pixels.len() == (width * height * 4) as usize {
        image.data = Some(pixels);
    }
    image
}

/// Repaints `handle`'s image with `world`, resizing it to the painter's size first.
pub fn repaint(
    images: &mut Assets<Image>,
    handle: &Handle<Image>,
    painter: &mut GridPainter,
    world: &GridWorld,
    style: WorldStyle,
) {
    let (width, height) = painter.image_size(world);
    let Some(mut image) = images.get_mut(handle) else {
        return;
    };
    if image.width() != width || image.height() != height || image.data.is_none() {
        *image = blank_image(width, height);
    }
    if let Some(pixels) = image.data.as_mut() {
        painter.paint(world, style, pixels);
    }
}
