//! Brief green/red flashes on env frames when an episode ends: the frame's border and a tint
//! over its image fade from the outcome's colour back to the frame's own colour.
//!
//! A frame's border is four thin edge nodes (`frame_edges`) rather than a `BorderColor`: Bevy
//! draws a border as a quad over the whole node, shaded fragment by fragment, which cost ~5 ms
//! of CPU per frame under software Vulkan for the focused view and the mosaic.

use bevy::prelude::*;

use super::theme;

/// The border colour a frame returns to (focused, hovered or plain).
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct FrameColor(pub Color);

/// A running flash on a frame; it counts wall time, so it fades even while paused.
#[derive(Component, Clone, Copy, Debug)]
pub struct Flash {
    pub color: Color,
    pub duration_secs: f32,
    pub remaining_secs: f32,
}

impl Flash {
    pub fn episode_ended(success: bool, duration_secs: f32) -> Flash {
        let color = if success { theme::SUCCESS } else { theme::FAILURE };
        Flash { color, duration_secs, remaining_secs: duration_secs }
    }

    /// 1 at the start, 0 when done; eased so the flash holds, then fades.
    fn strength(&self) -> f32 {
        let t = (self.remaining_secs / self.duration_secs.max(f32::EPSILON)).clamp(0.0, 1.0);
        t * t * (3.0 - 2.0 * t)
    }
}

/// One of a frame's four edges (children of the frame, over its border area).
#[derive(Component, Clone, Copy, Debug)]
pub struct FrameEdge;

/// The four edges of a frame whose `Node::border` is `width` on every side, in `color`: spawn
/// them as the frame's children. Absolute children are placed from the inside of the border,
/// hence the negative offsets.
pub fn frame_edges(width: f32, color: Color) -> [impl Bundle; 4] {
    let edge = |node: Node| (FrameEdge, Node { position_type: PositionType::Absolute, ..node }, BackgroundColor(color));
    let out = px(-width);
    [
        edge(Node { left: out, right: out, top: out, height: px(width), ..default() }),
        edge(Node { left: out, right: out, bottom: out, height: px(width), ..default() }),
        edge(Node { left: out, top: px(0), bottom: px(0), width: px(width), ..default() }),
        edge(Node { right: out, top: px(0), bottom: px(0), width: px(width), ..default() }),
    ]
}

/// The overlay child of a frame that carries the tint, and the tint's opacity at the start
/// of a flash.
#[derive(Component, Clone, Copy, Debug)]
pub struct FlashTint {
    pub max_alpha: f32,
}

/// A full-size overlay to put inside a frame.
pub fn tint_overlay(max_alpha: f32) -> impl Bundle {
    (
        FlashTint { max_alpha },
        Node { position_type: PositionType::Absolute, width: percent(100), height: percent(100), ..default() },
        BackgroundColor(Color::NONE),
    )
}

pub struct FlashPlugin;

impl Plugin for FlashPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(PostUpdate, paint_frames.before(bevy::ui::UiSystems::Prepare));
    }
}

/// Colours every frame from its base colour and its flash, and ends finished flashes.
fn paint_frames(
    mut commands: Commands,
    time: Res<Time<Real>>,
    mut frames: Query<(Entity, &FrameColor, Option<&mut Flash>, Option<&Children>)>,
    mut parts: Query<(Option<&FlashTint>, Has<FrameEdge>, &mut BackgroundColor)>,
) {
    for (entity, base, flash, children) in &mut frames {
        let (border_color, tint_color, strength) = match flash {
            Some(mut flash) => {
                flash.remaining_secs -= time.delta_secs();
                if flash.remaining_secs <= 0.0 {
                    commands.entity(entity).remove::<Flash>();
                }
                let strength = flash.strength();
                (base.0.mix(&flash.color, strength), flash.color, strength)
            }
            None => (base.0, Color::NONE, 0.0),
        };
        for child in children.into_iter().flatten() {
            let Ok((tint, is_edge, mut background)) = parts.get_mut(*child) else { continue };
            let wanted = match tint {
                Some(tint) if strength > 0.0 => tint_color.with_alpha(tint.max_alpha * strength),
                Some(_) => Color::NONE,
                None if is_edge => border_color,
                None => continue,
            };
            if background.0 != wanted {
                background.0 = wanted;
            }
        }
    }
}
