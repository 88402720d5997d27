//! Seeded randomness and object placement for level generators, mirroring MiniGrid's
//! `_rand_int`, `_rand_elem`, `place_obj` and `place_agent` helpers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::env::grid::object::{Cell, Color};
use crate::env::grid::world::{GridWorld, Pos};

/// Rejection sampling gave up (MiniGrid raises `RecursionError`); generators retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementFailed;

/// A level generator's random source. ChaCha8 keeps layouts identical across platforms.
#[derive(Clone, Debug)]
pub struct LevelRng {
    rng: ChaCha8Rng,
}

impl LevelRng {
    pub fn new(seed: u64) -> LevelRng {
        LevelRng { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Uniform integer in `[low, high)`. `high <= low` yields `low`.
    pub fn rand_int(&mut self, low: i32, high: i32) -> i32 {
        if high <= low { low } else { self.rng.random_range(low..high) }
    }

    pub fn rand_usize(&mut self, low: usize, high: usize) -> usize {
        if high <= low { low } else { self.rng.random_range(low..high) }
    }

    pub fn rand_bool(&mut self) -> bool {
        self.rng.random_bool(0.5)
    }

    pub fn rand_float(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.rng.random::<f64>()
    }

    /// A uniformly chosen element; `None` only for an empty slice.
    pub fn rand_elem<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() { None } else { Some(items[self.rand_usize(0, items.len())]) }
    }

    /// `n` distinct elements in draw order (MiniGrid's `_rand_subset`).
    pub fn rand_subset<T: Copy>(&mut self, items: &[T], n: usize) -> Vec<T> {
        let mut pool = items.to_vec();
        let mut out = Vec::with_capacity(n.min(pool.len()));
        while out.len() < n && !pool.is_empty() {
            let i = self.rand_usize(0, pool.len());
            out.push(pool.remove(i));
        }
        out
    }

    pub fn rand_color(&mut self) -> Color {
        Color::SORTED_NAMES[self.rand_usize(0, 6)]
    }

    pub fn rand_dir(&mut self) -> u8 {
        self.rand_int(0, 4) as u8
    }

    /// Raw 64-bit draw, for seeding per-episode RNGs.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.random()
    }

    /// MiniGrid's `place_obj`: a uniformly random empty cell in the rectangle `top`+`size`
    /// (clipped to the grid), not the agent's cell, not rejected by `reject`. Gives up after
    /// `max_tries` draws (MiniGrid's default is unbounded; ours is large but finite).
    pub fn place_obj(
        &mut self,
        world: &mut GridWorld,
        cell: Cell,
        top: Pos,
        size: (i32, i32),
        reject: &dyn Fn(&GridWorld, Pos) -> bool,
        max_tries: usize,
    ) -> Result<Pos, PlacementFailed> {
        let top = Pos::new(top.x.max(0), top.y.max(0));
        let x_high = (top.x + size.0).min(world.width() as i32);
        let y_high = (top.y + size.1).min(world.height() as i32);
        for _ in 0..max_tries {
            let p = Pos::new(self.rand_int(top.x, x_high), self.rand_int(top.y, y_high));
            if !world.get(p).is_empty() || p == world.agent_pos || reject(world, p) {
                continue;
            }
            world.set(p, cell);
            return Ok(p);
        }
        Err(PlacementFailed)
    }

    /// `place_obj` anywhere on the grid with no extra rule.
    pub fn place_anywhere(&mut self, world: &mut GridWorld, cell: Cell) -> Result<Pos, PlacementFailed> {
        let size = (world.width() as i32, world.height() as i32);
        self.place_obj(world, cell, Pos::new(0, 0), size, &|_, _| false, DEFAULT_MAX_TRIES)
    }

    /// MiniGrid's `place_agent`: an empty cell in the rectangle, and a random direction.
    pub fn place_agent(&mut self, world: &mut GridWorld, top: Pos, size: (i32, i32)) -> Result<Pos, PlacementFailed> {
        // The agent's old cell must not block its own placement.
        world.agent_pos = Pos::new(-1, -1);
        // `place_obj` only ever picks empty cells, so no extra rule is needed.
        let p = self.place_obj(world, Cell::Empty, top, size, &|_, _| false, DEFAULT_MAX_TRIES)?;
        world.agent_pos = p;
        world.agent_dir = self.rand_dir();
        Ok(p)
    }
}

/// Draws before `place_obj` gives up; MiniGrid loops forever, which a game loop cannot.
pub const DEFAULT_MAX_TRIES: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand_int_is_half_open_and_seeded() {
        let mut a = LevelRng::new(3);
        let mut b = LevelRng::new(3);
        for _ in 0..1000 {
            let x = a.rand_int(2, 5);
            assert!((2..5).contains(&x));
            assert_eq!(x, b.rand_int(2, 5));
        }
    }

    #[test]
    fn place_obj_respects_rectangle_and_agent() {
        let mut w = GridWorld::new(6, 6);
        w.wall_rect(0, 0, 6, 6);
        w.agent_pos = Pos::new(1, 1);
        let mut rng = LevelRng::new(1);
        // 2x4 rectangle, minus the agent's cell: room for exactly seven objects.
        for _ in 0..7 {
            let p = rng.place_obj(&mut w, Cell::Ball(Color::Red), Pos::new(1, 1), (2, 4), &|_, _| false, 1000).unwrap();
            assert!(p.x >= 1 && p.x < 3 && p.y >= 1 && p.y < 5 && p != Pos::new(1, 1));
        }
        assert_eq!(
            rng.place_obj(&mut w, Cell::Goal, Pos::new(1, 1), (2, 4), &|_, _| false, 1000),
            Err(PlacementFailed)
        );
    }

    #[test]
    fn subsets_are_distinct() {
        let mut rng = LevelRng::new(9);
        let s = rng.rand_subset(&Color::SORTED_NAMES, 4);
        let mut d = s.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 4);
    }
}
