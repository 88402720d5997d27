//! The agent's observations: MiniGrid's egocentric partial view (exact visibility rules and
//! rotation), and LLM4Teach's whole-grid *historical* view with a persistent fog of war.

use super::world::{DIR_TO_VEC, GridWorld, Pos};

/// Largest supported `agent_view_size` (MiniGrid levels use 3..=7; BabyAI up to 7).
pub const MAX_VIEW: usize = 15;

impl GridWorld {
    /// Bytes in one egocentric observation image (`view * view * 3`).
    pub fn observation_len(&self) -> usize {
        self.agent_view_size * self.agent_view_size * 3
    }

    /// World position of view cell `(vx, vy)`: the inverse of MiniGrid's `get_view_coords`.
    /// The agent sits at `(view/2, view-1)` looking towards row 0.
    #[inline]
    pub fn view_to_world(&self, vx: i32, vy: i32) -> Pos {
        let size = self.agent_view_size as i32;
        let half = size / 2;
        let (dx, dy) = DIR_TO_VEC[(self.agent_dir & 3) as usize];
        let (rx, ry) = (-dy, dx);
        let tx = self.agent_pos.x + dx * (size - 1) - rx * half;
        let ty = self.agent_pos.y + dy * (size - 1) - ry * half;
        Pos::new(tx + vx * rx - vy * dx, ty + vx * ry - vy * dy)
    }

    /// Which view cells are visible, indexed `[vx][vy]`: MiniGrid's `process_vis` (row by row
    /// upward from the agent, opaque cells seen but stopping sight), as `write_observation`
    /// applies it.
    pub fn visible_mask(&self) -> [[bool; MAX_VIEW]; MAX_VIEW] {
        let n = self.agent_view_size.min(MAX_VIEW);
        let (origin_index, column_step, row_step) = self.view_walk(n);
        let packed = self.packed();
        let mut transparent = [0u32; MAX_VIEW];
        for vx in 0..n {
            let mut index = origin_index + vx as isize * column_step;
            for row in transparent.iter_mut().take(n) {
                *row |= ((packed[index as usize] >> 24 & 1) ^ 1) << vx;
                index += row_step;
            }
        }
        let rows = self.visible_rows(&transparent, n);
        let mut mask = [[false; MAX_VIEW]; MAX_VIEW];
        for (vx, column) in mask.iter_mut().enumerate().take(n) {
            for (vy, seen) in column.iter_mut().enumerate().take(n) {
                *seen = rows[vy] >> vx & 1 == 1;
            }
        }
        mask
    }

    /// MiniGrid's `process_vis` on bitmasks, one `u32` per view row (bit `vx`).
    ///
    /// For row `j`, the left-to-right pass spreads sight right through transparent cells and
    /// lights `i` and `i+1` in row `j-1` for every lit transparent `i < n-1`; the
    /// right-to-left pass then spreads it left and lights `i-1` and `i` for lit transparent
    /// `i > 0`. Each cell's state when the Python loop reaches it equals the pass's fixpoint,
    /// which is what the bit loops compute.
    #[inline]
    fn visible_rows(&self, transparent: &[u32; MAX_VIEW], n: usize) -> [u32; MAX_VIEW] {
        let full = (1u32 << n) - 1;
        let mut rows = [0u32; MAX_VIEW];
        if self.see_through_walls {
            rows[..n].fill(full);
            return rows;
        }
        let last = 1u32 << (n - 1);
        rows[n - 1] = 1 << (n / 2);
        for j in (0..n).rev() {
            let t = transparent[j];
            let mut m = rows[j];
            loop {
                let next = (m | (m & t) << 1) & full;
                if next == m {
                    break;
                }
                m = next;
            }
            let from_left = m & t & !last;
            loop {
                let next = m | (m & t) >> 1;
                if next == m {
                    break;
                }
                m = next;
            }
            let from_right = m & t & !1;
            rows[j] = m;
            if j > 0 {
                rows[j - 1] = (from_left | from_left << 1 | from_right | from_right >> 1) & full;
            }
        }
        rows
    }

    /// Writes `obs['image']` (shape `(view, view, 3)`, C order, `[vx][vy][channel]`) into `out`.
    /// Unseen cells are 0,0,0; the agent's own cell shows what it carries, or empty.
    pub fn write_observation(&self, out: &mut [u8]) {
        // The simulator's hot path: common view sizes get a fully unrolled copy.
        match self.agent_view_size {
            3 => self.write_view::<3>(out),
            5 => self.write_view::<5>(out),
            7 => self.write_view::<7>(out),
            _ => self.write_view_dynamic(out),
        }
    }

    /// One pass over the padded, pre-encoded grid for a view of `N x N`.
    fn write_view<const N: usize>(&self, out: &mut [u8]) {
        let out = &mut out[..N * N * 3];
        let (origin_index, column_step, row_step) = self.view_walk(N);
        let packed = self.packed();
        let mut transparent = [0u32; MAX_VIEW];
        let mut values = [[0u32; N]; N];
        for (vx, column) in values.iter_mut().enumerate() {
            let mut index = origin_index + vx as isize * column_step;
            for (vy, value) in column.iter_mut().enumerate() {
                let v = packed[index as usize];
                index += row_step;
                transparent[vy] |= ((v >> 24 & 1) ^ 1) << vx;
                *value = v;
            }
        }
        let rows = self.visible_rows(&transparent, N);
        for (vx, (column, cells)) in values.iter().zip(out.chunks_exact_mut(N * 3)).enumerate() {
            for (vy, (&v, cell)) in column.iter().zip(cells.chunks_exact_mut(3)).enumerate() {
                let v = if rows[vy] >> vx & 1 == 1 { v } else { 0 };
                cell.copy_from_slice(&[v as u8, (v >> 8) as u8, (v >> 16) as u8]);
            }
        }
        let agent = (N / 2 * N + N - 1) * 3;
        out[agent..agent + 3].copy_from_slice(&self.carrying.encode());
    }

    /// The same for any other view size.
    fn write_view_dynamic(&self, out: &mut [u8]) {
        let n = self.agent_view_size.min(MAX_VIEW);
        let out = &mut out[..n * n * 3];
        let (origin_index, column_step, row_step) = self.view_walk(n);
        let packed = self.packed();
        let mut transparent = [0u32; MAX_VIEW];
        for vx in 0..n {
            let mut index = origin_index + vx as isize * column_step;
            for (vy, row) in transparent.iter_mut().enumerate().take(n) {
                let v = packed[index as usize];
                index += row_step;
                *row |= ((v >> 24 & 1) ^ 1) << vx;
                out[(vx * n + vy) * 3..(vx * n + vy) * 3 + 3].copy_from_slice(&[
                    v as u8,
                    (v >> 8) as u8,
                    (v >> 16) as u8,
                ]);
            }
        }
        let rows = self.visible_rows(&transparent, n);
        for (vy, &row) in rows.iter().enumerate().take(n) {
            for vx in 0..n {
                if row >> vx & 1 == 0 {
                    out[(vx * n + vy) * 3..(vx * n + vy) * 3 + 3].fill(0);
                }
            }
        }
        let agent = (n / 2 * n + n - 1) * 3;
        out[agent..agent + 3].copy_from_slice(&self.carrying.encode());
    }

    /// Where view cell (0, 0) sits in the padded grid, and the index steps for `vx + 1`
    /// and `vy + 1` (the inverse of MiniGrid's `get_view_coords`).
    #[inline]
    fn view_walk(&self, n: usize) -> (isize, isize, isize) {
        let size = n as i32;
        let (dx, dy) = DIR_TO_VEC[(self.agent_dir & 3) as usize];
        let (rx, ry) = (-dy, dx);
        let origin = Pos::new(
            self.agent_pos.x + dx * (size - 1) - rx * (size / 2),
            self.agent_pos.y + dy * (size - 1) - ry * (size / 2),
        );
        let stride = self.packed_stride() as isize;
        let column_step = rx as isize + ry as isize * stride;
        let row_step = -(dx as isize + dy as isize * stride);
        (self.packed_index(origin) as isize, column_step, row_step)
    }

    pub fn observation(&self) -> Vec<u8> {
        let mut out = vec![0; self.observation_len()];
        self.write_observation(&mut out);
        out
    }

    /// World positions the agent sees right now (visible view cells inside the grid).
    pub fn visible_positions(&self) -> Vec<Pos> {
        let n = self.agent_view_size.min(MAX_VIEW);
        let mask = self.visible_mask();
        let mut out = Vec::with_capacity(n * n);
        for (vx, column) in mask.iter().enumerate().take(n) {
            for (vy, &seen) in column.iter().enumerate().take(n) {
                let p = self.view_to_world(vx as i32, vy as i32);
                if seen && self.in_bounds(p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// LLM4Teach's historical observation: the whole grid as W x H x 4 (object, color, state,
/// agent direction with 4 elsewhere); cells once seen stay visible, unseen cells read 0,
/// and the agent's cell holds the carried object, or empty (1,0,0) when nothing is carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FogOfWar {
    width: usize,
    height: usize,
    seen: Vec<bool>,
}

impl FogOfWar {
    pub fn new(width: usize, height: usize) -> FogOfWar {
        FogOfWar { width, height, seen: vec![false; width * height] }
    }

    pub fn for_world(world: &GridWorld) -> FogOfWar {
        let mut fog = FogOfWar::new(world.width(), world.height());
        fog.reveal(world);
        fog
    }

    /// Forget everything (a new episode).
    pub fn reset(&mut self, world: &GridWorld) {
        if self.width != world.width() || self.height != world.height() {
            *self = FogOfWar::new(world.width(), world.height());
        } else {
            self.seen.fill(false);
        }
        self.reveal(world);
    }

    /// Mark what the agent sees now (and its own cell) as seen.
    pub fn reveal(&mut self, world: &GridWorld) {
        for p in world.visible_positions() {
            self.seen[p.x as usize * self.height + p.y as usize] = true;
        }
        let a = world.agent_pos;
        if world.in_bounds(a) {
            self.seen[a.x as usize * self.height + a.y as usize] = true;
        }
    }

    pub fn is_seen(&self, p: Pos) -> bool {
        p.x >= 0
            && p.y >= 0
            && (p.x as usize) < self.width
            && (p.y as usize) < self.height
            && self.seen[p.x as usize * self.height + p.y as usize]
    }

    pub fn len(&self) -> usize {
        self.width * self.height * 4
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Writes the `[x][y][4]` historical observation into `out` (length `W*H*4`).
    pub fn write(&self, world: &GridWorld, out: &mut [u8]) {
        for x in 0..self.width {
            for y in 0..self.height {
                let at = (x * self.height + y) * 4;
                let p = Pos::new(x as i32, y as i32);
                let mut v = [0u8, 0, 0, 4];
                if self.seen[x * self.height + y] {
                    let e = world.get(p).encode();
                    v[..3].copy_from_slice(&e);
                }
                if p == world.agent_pos {
                    // LLM4Teach writes the carried object, or an empty cell; never an agent tile.
                    v[..3].copy_from_slice(&world.carrying.encode());
                    v[3] = world.agent_dir;
                }
                out[at..at + 4].copy_from_slice(&v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::object::{Cell, Color, DoorState};
    use super::*;

    #[test]
    fn agent_sits_bottom_centre_of_its_view() {
        let mut w = GridWorld::new(9, 9);
        w.wall_rect(0, 0, 9, 9);
        w.agent_pos = Pos::new(4, 4);
        for dir in 0..4 {
            w.agent_dir = dir;
            assert_eq!(w.view_to_world(3, 6), w.agent_pos);
            let (dx, dy) = DIR_TO_VEC[dir as usize];
            assert_eq!(w.view_to_world(3, 5), w.agent_pos.offset((dx, dy)), "row 5 is ahead");
        }
    }

    #[test]
    fn closed_doors_block_sight_and_carried_object_shows_in_own_cell() {
        let mut w = GridWorld::new(9, 9);
        w.wall_rect(0, 0, 9, 9);
        w.agent_pos = Pos::new(4, 7);
        w.agent_dir = 3; // up
        w.horz_wall(1, 5, 7, Cell::WALL);
        w.set(Pos::new(4, 5), Cell::Door { color: Color::Red, state: DoorState::Closed });
        w.carrying = Cell::Key(Color::Red);
        let obs = w.observation();
        let at =
            |vx: usize, vy: usize| [obs[(vx * 7 + vy) * 3], obs[(vx * 7 + vy) * 3 + 1], obs[(vx * 7 + vy) * 3 + 2]];
        assert_eq!(at(3, 6), [5, 0, 0], "carried key in the agent's cell");
        assert_eq!(at(3, 4), [4, 0, 1], "the closed door is seen");
        assert_eq!(at(3, 3), [0, 0, 0], "behind the door is unseen");
        w.set(Pos::new(4, 5), Cell::Door { color: Color::Red, state: DoorState::Open });
        let obs = w.observation();
        assert_eq!(obs[(3 * 7 + 3) * 3], 1, "an open door lets sight through");
    }

    #[test]
    fn fog_of_war_remembers_seen_cells() {
        let mut w = GridWorld::new(8, 8);
        w.wall_rect(0, 0, 8, 8);
        w.agent_pos = Pos::new(1, 1);
        w.agent_dir = 0;
        w.agent_view_size = 3;
        let mut fog = FogOfWar::for_world(&w);
        assert!(fog.is_seen(Pos::new(3, 1)));
        assert!(!fog.is_seen(Pos::new(6, 6)));
        w.agent_dir = 1;
        fog.reveal(&w);
        assert!(fog.is_seen(Pos::new(3, 1)), "still remembered");
        let mut out = vec![0; fog.len()];
        fog.write(&w, &mut out);
        let agent = (8 + 1) * 4; // x = 1, y = 1 in an 8-high grid
        assert_eq!(&out[agent..agent + 4], &[1, 0, 0, 1]);
        assert_eq!(&out[(6 * 8 + 6) * 4..(6 * 8 + 6) * 4 + 4], &[0, 0, 0, 4]);
    }
}
