//! Where the agent fits on a floor plan, as a grid of 10 cm cells, and walking distances over
//! it from a set of goal cells (the fields the embodied skills descend).
//!
//! A cell is free when the agent's disc centred on it touches no wall or furniture, the test
//! `World::is_free` applies. Distances go over free cells with 8-neighbour moves.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::plan::{FloorPlan, Rect};
use super::world::AGENT_RADIUS;

/// The cells' side (metres).
pub const CELL: f32 = 0.1;

/// Free cells of a plan.
#[derive(Debug, Clone)]
pub struct Occupancy {
    /// The centre of cell (0, 0).
    origin: (f32, f32),
    pub columns: usize,
    pub rows: usize,
    free: Vec<bool>,
}

/// Walking distance (metres) from every free cell to the nearest goal cell; infinite where no
/// goal can be reached.
#[derive(Debug, Clone)]
pub struct DistanceField {
    pub distances: Vec<f32>,
}

impl Occupancy {
    /// The grid over the plan's bounds.
    pub fn of(plan: &FloorPlan) -> Occupancy {
        let bounds = plan.bounds;
        let columns = (bounds.width() / CELL).ceil().max(1.0) as usize;
        let rows = (bounds.depth() / CELL).ceil().max(1.0) as usize;
        let origin = (bounds.min.0 + CELL / 2.0, bounds.min.1 + CELL / 2.0);
        let obstacles: Vec<Rect> =
            plan.wall_boxes.iter().copied().chain(plan.file.furniture.iter().map(|piece| piece.rect)).collect();
        let radius_squared = AGENT_RADIUS * AGENT_RADIUS;
        let mut free = vec![false; columns * rows];
        for row in 0..rows {
            for column in 0..columns {
                let (x, z) = (origin.0 + column as f32 * CELL, origin.1 + row as f32 * CELL);
                free[row * columns + column] =
                    bounds.contains(x, z) && obstacles.iter().all(|rect| rect.distance_squared(x, z) >= radius_squared);
            }
        }
        Occupancy { origin, columns, rows, free }
    }

    /// The cell holding the point, if it is on the grid.
    pub fn cell_at(&self, x: f32, z: f32) -> Option<usize> {
        let column = ((x - self.origin.0) / CELL).round();
        let row = ((z - self.origin.1) / CELL).round();
        let on_grid = column >= 0.0 && row >= 0.0 && (column as usize) < self.columns && (row as usize) < self.rows;
        on_grid.then(|| row as usize * self.columns + column as usize)
    }

    /// The centre of `cell`.
    pub fn center(&self, cell: usize) -> (f32, f32) {
        let (row, column) = (cell / self.columns, cell % self.columns);
        (self.origin.0 + column as f32 * CELL, self.origin.1 + row as f32 * CELL)
    }

    pub fn is_free(&self, cell: usize) -> bool {
        self.free.get(cell).copied().unwrap_or(false)
    }

    /// The free cell nearest the point (the agent's own cell may round into an obstacle's
    /// margin), searching outwards a few cells.
    pub fn free_cell_near(&self, x: f32, z: f32) -> Option<usize> {
        let mut best: Option<(f32, usize)> = None;
        for radius in 0..=4i32 {
            for dz in -radius..=radius {
                for dx in -radius..=radius {
                    let Some(cell) = self.cell_at(x + dx as f32 * CELL, z + dz as f32 * CELL) else { continue };
                    if self.is_free(cell) {
                        let (cx, cz) = self.center(cell);
                        let d = (cx - x).hypot(cz - z);
                        if best.is_none_or(|(bd, _)| d < bd) {
                            best = Some((d, cell));
                        }
                    }
                }
            }
            if best.is_some() {
                break;
            }
        }
        best.map(|(_, cell)| cell)
    }

    /// Walking distances to the free cells whose centres satisfy `goal`.
    pub fn distances_to(&self, goal: impl Fn(f32, f32) -> bool) -> DistanceField {
        let mut distances = vec![f32::INFINITY; self.free.len()];
        let mut queue = BinaryHeap::new();
        for (cell, distance) in distances.iter_mut().enumerate() {
            let (x, z) = self.center(cell);
            if self.free[cell] && goal(x, z) {
                *distance = 0.0;
                queue.push(Entry { distance: 0.0, cell });
            }
        }
        let diagonal = CELL * std::f32::consts::SQRT_2;
        while let Some(Entry { distance, cell }) = queue.pop() {
            if distance > distances[cell] {
                continue;
            }
            let (row, column) = ((cell / self.columns) as i64, (cell % self.columns) as i64);
            for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)] {
                let (r, c) = (row + dr, column + dc);
                if r < 0 || c < 0 || r >= self.rows as i64 || c >= self.columns as i64 {
                    continue;
                }
                let next = r as usize * self.columns + c as usize;
                if !self.free[next] {
                    continue;
                }
                // No corner cutting: a diagonal needs both sides free.
                if dr != 0 && dc != 0 {
                    let side_a = row as usize * self.columns + c as usize;
                    let side_b = r as usize * self.columns + column as usize;
                    if !self.free[side_a] || !self.free[side_b] {
                        continue;
                    }
                }
                let step = if dr != 0 && dc != 0 { diagonal } else { CELL };
                let candidate = distance + step;
                if candidate < distances[next] {
                    distances[next] = candidate;
                    queue.push(Entry { distance: candidate, cell: next });
                }
            }
        }
        DistanceField { distances }
    }

    /// Whether every cell on the straight segment between two points is free.
    pub fn line_is_free(&self, from: (f32, f32), to: (f32, f32)) -> bool {
        let length = (to.0 - from.0).hypot(to.1 - from.1);
        let pieces = (length / (CELL / 2.0)).ceil().max(1.0) as usize;
        (0..=pieces).all(|i| {
            let t = i as f32 / pieces as f32;
            let (x, z) = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t);
            self.cell_at(x, z).is_some_and(|cell| self.is_free(cell))
        })
    }
}

impl DistanceField {
    /// The distance at the point's free cell (infinite off the grid or out of reach).
    pub fn at(&self, occupancy: &Occupancy, x: f32, z: f32) -> f32 {
        occupancy.free_cell_near(x, z).map_or(f32::INFINITY, |cell| self.distances[cell])
    }

    /// Where to head from (x, z): the cell within `horizon` metres, seen along a free straight
    /// line, that is closest to the goal (None when nothing nearby is closer than here).
    pub fn waypoint(&self, occupancy: &Occupancy, x: f32, z: f32, horizon: f32) -> Option<(f32, f32)> {
        let here = occupancy.free_cell_near(x, z)?;
        let start = occupancy.center(here);
        let reach = (horizon / CELL).ceil() as i64;
        let (row, column) = ((here / occupancy.columns) as i64, (here % occupancy.columns) as i64);
        let mut best: Option<(f32, usize)> = None;
        for dr in -reach..=reach {
            for dc in -reach..=reach {
                let (r, c) = (row + dr, column + dc);
                if r < 0 || c < 0 || r >= occupancy.rows as i64 || c >= occupancy.columns as i64 {
                    continue;
                }
                let cell = r as usize * occupancy.columns + c as usize;
                let distance = self.distances[cell];
                if !distance.is_finite() || distance >= self.distances[here] {
                    continue;
                }
                let (cx, cz) = occupancy.center(cell);
                if (cx - start.0).hypot(cz - start.1) > horizon {
                    continue;
                }
                if best.is_none_or(|(bd, _)| distance < bd) && occupancy.line_is_free(start, (cx, cz)) {
                    best = Some((distance, cell));
                }
            }
        }
        best.map(|(_, cell)| occupancy.center(cell))
    }
}

/// A min-heap entry (`BinaryHeap` is a max-heap: the order is reversed).
#[derive(Clone, Copy, PartialEq)]
struct Entry {
    distance: f32,
    cell: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        other.distance.total_cmp(&self.distance).then(other.cell.cmp(&self.cell))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
