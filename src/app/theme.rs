//! The app's colours and text sizes in one place, so panels added later match.
//! A dark chrome around MiniGrid's own palette (which lives in `render_grid`).

use bevy::prelude::*;

/// Window background.
pub const BACKGROUND: Color = Color::srgb(0.059, 0.067, 0.082);
/// Cards on the background: text boxes, plots, the learning curve's strip.
pub const PANEL: Color = Color::srgb(0.090, 0.102, 0.125);
/// Borders of unfocused thumbnails.
pub const FRAME: Color = Color::srgb(0.180, 0.196, 0.231);
/// Borders of hovered thumbnails.
pub const FRAME_HOVERED: Color = Color::srgb(0.420, 0.447, 0.510);
/// The focused env's frame.
pub const ACCENT: Color = Color::srgb(0.361, 0.616, 1.0);
/// Main text.
pub const TEXT: Color = Color::srgb(0.902, 0.910, 0.925);
/// Secondary text.
pub const TEXT_DIM: Color = Color::srgb(0.545, 0.576, 0.631);
/// What the user must not miss (a PPO update in progress).
pub const WARNING: Color = Color::srgb(0.957, 0.702, 0.224);
/// Episode ended in success / in failure.
pub const SUCCESS: Color = Color::srgb(0.227, 0.839, 0.408);
pub const FAILURE: Color = Color::srgb(0.937, 0.286, 0.286);

pub const TITLE_SIZE: f32 = 22.0;
pub const BODY_SIZE: f32 = 15.0;
pub const SMALL_SIZE: f32 = 13.0;

/// A text style for `bevy_ui` text at `size` logical pixels.
pub fn font(size: f32) -> TextFont {
    TextFont::from_font_size(FontSize::Px(size))
}

/// The same colour for egui.
pub fn egui_color(color: Color) -> bevy_egui::egui::Color32 {
    let [red, green, blue, _] = color.to_srgba().to_u8_array();
    bevy_egui::egui::Color32::from_rgb(red, green, blue)
}
