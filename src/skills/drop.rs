//! Dropping: put the held object down where it cuts nothing off — no walkable cell, door,
//! object or unexplored edge the agent can reach now becomes unreachable — nearest first.

use std::collections::VecDeque;

use super::known_map::KnownMap;
use super::skill::{Plan, approach};
use crate::env::grid::planner::{Pose, chokepoints, walkable};
use crate::env::grid::world::DIR_TO_VEC;
use crate::env::grid::{Action, Cell, Pos};

/// Walks to the best drop pose and drops; done when the hands are empty.
pub(crate) fn drop_held(map: &KnownMap) -> Plan {
    if map.world.carrying.is_empty() {
        return Plan::Done;
    }
    let Some(pose) = best_drop_pose(map) else { return Plan::Impossible };
    approach(map, pose.front(), pose, Some(Action::Drop))
}

/// Of the reachable poses facing a known empty cell, the first by: the drop cuts nothing off
/// now; the cell is no passage of the optimistic layout (a doorway, a corridor); it crowds no
/// door or object; fewest steps. When every drop would cut something off, the least bad one.
fn best_drop_pose(map: &KnownMap) -> Option<Pose> {
    let mut spots = drop_spots(map);
    spots.sort_unstable_by_key(|&(rank, _)| rank);
    let region = Region::around_agent(map, None);
    let harmless = spots.iter().find(|(_, pose)| !region.loses_to(&Region::around_agent(map, Some(pose.front()))));
    harmless.or(spots.first()).map(|&(_, pose)| pose)
}

/// Every reachable pose facing a known empty cell, ranked by (is a passage, crowds, steps).
fn drop_spots(map: &KnownMap) -> Vec<((bool, bool, u32), Pose)> {
    let passages = chokepoints(&map.optimistic_world());
    let width = map.world.width() as i32;
    let mut spots = Vec::new();
    for y in 0..map.world.height() as i32 {
        for x in 0..width {
            for dir in 0..4u8 {
                let pose = Pose::new(Pos::new(x, y), dir);
                let Some(distance) = map.reach.distance(pose) else { continue };
                let spot = pose.front();
                if map.cell(spot) != Some(Cell::Empty) || spot == map.world.agent_pos {
                    continue;
                }
                let passage = passages[(spot.y * width + spot.x) as usize];
                spots.push(((passage, crowds(map, spot), distance), pose));
            }
        }
    }
    spots
}

/// Whether an object at `spot` would sit beside a door, an object or the goal, where it
/// could get in the way of reaching them.
fn crowds(map: &KnownMap, spot: Pos) -> bool {
    DIR_TO_VEC.iter().any(|&step| {
        matches!(
            map.cell(spot.offset(step)),
            Some(Cell::Door { .. } | Cell::Key(_) | Cell::Ball(_) | Cell::Box { .. } | Cell::Goal)
        )
    })
}

/// The cells the agent can walk to, and the cells bordering them that it could act on or
/// learn about (doors, objects, goal, unknown cells): what a careless drop could cut off.
struct Region {
    walkable: Vec<bool>,
    bordering: Vec<bool>,
}

impl Region {
    /// Flood fill over walkable known cells from the agent, with `blocked` (if any) filled.
    fn around_agent(map: &KnownMap, blocked: Option<Pos>) -> Region {
        let (width, height) = (map.world.width() as i32, map.world.height() as i32);
        let index = |p: Pos| (p.y * width + p.x) as usize;
        let mut region = Region {
            walkable: vec![false; (width * height) as usize],
            bordering: vec![false; (width * height) as usize],
        };
        let start = map.world.agent_pos;
        region.walkable[index(start)] = true;
        let mut queue = VecDeque::from([start]);
        while let Some(p) = queue.pop_front() {
            for &step in &DIR_TO_VEC {
                let next = p.offset(step);
                if !map.world.in_bounds(next) || region.walkable[index(next)] {
                    continue;
                }
                let cell = map.cell(next);
                if Some(next) != blocked && cell.is_some_and(walkable) {
                    region.walkable[index(next)] = true;
                    queue.push_back(next);
                } else if !matches!(cell, Some(Cell::Wall(_))) {
                    region.bordering[index(next)] = true;
                }
            }
        }
        region
    }

    /// Whether `after` (the same fill with a cell blocked) lost a cell other than that one.
    fn loses_to(&self, after: &Region) -> bool {
        let lost = |before: &[bool], now: &[bool], also_now: &[bool]| {
            before.iter().zip(now).zip(also_now).any(|((&was, &is), &other)| was && !is && !other)
        };
        // The blocked cell itself moves from walkable to bordering; that alone is no loss.
        lost(&self.walkable, &after.walkable, &after.bordering)
            || lost(&self.bordering, &after.bordering, &after.walkable)
    }
}
