//! Exploration: walk to the nearest pose from which the agent would see a cell it does not
//! know yet (turning on the spot first when that is enough), done when no such pose is left.

use super::known_map::KnownMap;
use super::skill::Plan;
use crate::env::grid::observation::MAX_VIEW;
use crate::env::grid::planner::Pose;
use crate::env::grid::world::DIR_TO_VEC;
use crate::env::grid::{GridWorld, Pos};

/// The next step towards the nearest lookout: a reachable pose whose view shows an unknown
/// cell. Sight is judged on the walled-off planning grid, where unknown cells are opaque, so
/// a lookout's reveal is certain (the true view can only show more) and needs no hidden facts.
pub(crate) fn explore(map: &KnownMap) -> Plan {
    if !map.has_unknown() {
        return Plan::Done;
    }
    let unknown = UnknownCounts::new(map);
    let mut candidates = lookout_candidates(map, &unknown);
    candidates.sort_unstable_by_key(|&(distance, order, _)| (distance, order));
    let mut lookout = map.planning.clone();
    for (_, _, pose) in candidates {
        if reveals_unknown(map, &mut lookout, pose)
            && let Some(action) = map.first_step_to(pose)
        {
            return Plan::Walk { action, aim: None };
        }
    }
    Plan::Done
}

/// Reachable poses other than the agent's whose view square holds an unknown cell (a cheap
/// filter before the exact sight check), with their distance and a stable order.
fn lookout_candidates(map: &KnownMap, unknown: &UnknownCounts) -> Vec<(u32, u32, Pose)> {
    let view = map.world.agent_view_size.min(MAX_VIEW) as i32;
    let (width, height) = (map.world.width() as i32, map.world.height() as i32);
    let mut out = Vec::new();
    for y in 0..height {
        for x in 0..width {
            for dir in 0..4u8 {
                let pose = Pose::new(Pos::new(x, y), dir);
                let Some(distance) = map.reach.distance(pose).filter(|&d| d > 0) else { continue };
                let (low, high) = view_square(pose, view);
                if unknown.any_in(low, high) {
                    out.push((distance, ((y * width + x) * 4 + dir as i32) as u32, pose));
                }
            }
        }
    }
    out
}

/// The corners (inclusive) of the square a pose sees: `view` cells ahead, `view / 2` aside.
fn view_square(pose: Pose, view: i32) -> (Pos, Pos) {
    let (dx, dy) = DIR_TO_VEC[pose.dir as usize];
    let (rx, ry) = (-dy, dx);
    let half = view / 2;
    let corner = |ahead: i32, aside: i32| pose.pos.offset((dx * ahead + rx * aside, dy * ahead + ry * aside));
    let (a, b) = (corner(0, -half), corner(view - 1, half));
    (Pos::new(a.x.min(b.x), a.y.min(b.y)), Pos::new(a.x.max(b.x), a.y.max(b.y)))
}

/// Whether the agent at `pose` would see an unknown cell, by MiniGrid's own visibility rules
/// on the planning grid (`lookout` is that grid, moved about).
fn reveals_unknown(map: &KnownMap, lookout: &mut GridWorld, pose: Pose) -> bool {
    lookout.agent_pos = pose.pos;
    lookout.agent_dir = pose.dir;
    let view = lookout.agent_view_size.min(MAX_VIEW);
    let visible = lookout.visible_mask();
    (0..view).any(|vx| {
        (0..view).any(|vy| {
            let p = lookout.view_to_world(vx as i32, vy as i32);
            visible[vx][vy] && lookout.in_bounds(p) && !map.knows(p)
        })
    })
}

/// Prefix sums of unknown cells, so "is anything unknown in this rectangle" costs O(1).
struct UnknownCounts {
    width: i32,
    height: i32,
    /// `(width + 1) * (height + 1)` sums; entry `(x, y)` counts unknown cells left of x, above y.
    sums: Vec<u32>,
}

impl UnknownCounts {
    fn new(map: &KnownMap) -> UnknownCounts {
        let (width, height) = (map.world.width() as i32, map.world.height() as i32);
        let stride = (width + 1) as usize;
        let mut sums = vec![0u32; stride * (height + 1) as usize];
        for y in 0..height {
            for x in 0..width {
                let here = !map.knows(Pos::new(x, y)) as u32;
                let (i, j) = (x as usize, y as usize);
                sums[(j + 1) * stride + i + 1] =
                    here + sums[j * stride + i + 1] + sums[(j + 1) * stride + i] - sums[j * stride + i];
            }
        }
        UnknownCounts { width, height, sums }
    }

    /// Whether any unknown cell lies in the rectangle (inclusive corners, clipped to the grid).
    fn any_in(&self, low: Pos, high: Pos) -> bool {
        let (x0, y0) = (low.x.max(0), low.y.max(0));
        let (x1, y1) = (high.x.min(self.width - 1), high.y.min(self.height - 1));
        if x0 > x1 || y0 > y1 {
            return false;
        }
        let stride = (self.width + 1) as usize;
        let at = |x: i32, y: i32| self.sums[y as usize * stride + x as usize];
        at(x1 + 1, y1 + 1) + at(x0, y0) > at(x0, y1 + 1) + at(x1 + 1, y0)
    }
}
