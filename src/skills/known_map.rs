//! The agent's map for planning: the true grid where the agent knows it, walls where it does
//! not, and one breadth-first search over poses from the agent that every question shares.

use super::Knowledge;
use crate::env::grid::planner::{NavGoal, Pose, Reachability};
use crate::env::grid::{Action, Cell, GridWorld, Pos};

/// One planning call's view of the world. Built once per call: skills run every env step, so
/// everything a skill asks (nearest target, first step, is it reachable) reads this.
pub(crate) struct KnownMap<'a> {
    /// The true state; read only at known cells.
    pub world: &'a GridWorld,
    /// Row-major: whether the agent knows each cell (its own cell always).
    known: Vec<bool>,
    /// The true grid with every unknown cell walled off, so walks never enter the unknown.
    pub planning: GridWorld,
    pub reach: Reachability,
}

impl<'a> KnownMap<'a> {
    pub fn new(world: &'a GridWorld, knowledge: &dyn Knowledge) -> KnownMap<'a> {
        let (width, height) = (world.width() as i32, world.height() as i32);
        let mut known = Vec::with_capacity((width * height) as usize);
        let mut planning = world.clone();
        for y in 0..height {
            for x in 0..width {
                let p = Pos::new(x, y);
                let is_known = p == world.agent_pos || knowledge.knows(p);
                known.push(is_known);
                if !is_known {
                    planning.set(p, Cell::WALL);
                }
            }
        }
        let reach = Reachability::from_agent(&planning);
        KnownMap { world, known, planning, reach }
    }

    pub fn knows(&self, p: Pos) -> bool {
        self.world.in_bounds(p) && self.known[(p.y * self.world.width() as i32 + p.x) as usize]
    }

    /// The true cell where the agent knows it.
    pub fn cell(&self, p: Pos) -> Option<Cell> {
        self.knows(p).then(|| self.world.get(p))
    }

    /// Whether any cell of the grid is still unknown.
    pub fn has_unknown(&self) -> bool {
        self.known.iter().any(|&k| !k)
    }

    /// Known positions whose cell satisfies `wanted`, row by row; `among`, when given,
    /// restricts them to those positions.
    pub fn find_known(&self, wanted: impl Fn(Cell) -> bool, among: Option<&[Pos]>) -> Vec<Pos> {
        let keep = |p: Pos| self.cell(p).is_some_and(&wanted);
        match among {
            Some(positions) => positions.iter().copied().filter(|&p| keep(p)).collect(),
            None => {
                let (width, height) = (self.world.width() as i32, self.world.height() as i32);
                (0..height).flat_map(|y| (0..width).map(move |x| Pos::new(x, y))).filter(|&p| keep(p)).collect()
            }
        }
    }

    pub fn agent_pose(&self) -> Pose {
        Pose::of_agent(self.world)
    }

    pub fn front(&self) -> Pos {
        self.world.front_pos()
    }

    /// The nearest reachable pose facing `target`, with its distance in steps.
    pub fn facing(&self, target: Pos) -> Option<(u32, Pose)> {
        let pose = self.reach.nearest_facing(target)?;
        Some((self.reach.distance(pose)?, pose))
    }

    /// Of `targets`, the one that can be faced soonest, and the pose facing it (ties go to
    /// the earlier target, so choices are stable).
    pub fn nearest_facing(&self, targets: &[Pos]) -> Option<(Pos, Pose)> {
        targets
            .iter()
            .filter_map(|&target| self.facing(target).map(|(distance, pose)| (distance, target, pose)))
            .min_by_key(|&(distance, _, _)| distance)
            .map(|(_, target, pose)| (target, pose))
    }

    /// Steps to face `target`, if it can be faced at all.
    pub fn distance_to_face(&self, target: Pos) -> Option<u32> {
        self.facing(target).map(|(distance, _)| distance)
    }

    /// The first action of a shortest walk to `pose`; `None` when already there or unreachable.
    pub fn first_step_to(&self, pose: Pose) -> Option<Action> {
        self.reach.path_to(pose)?.first().copied()
    }

    /// The same map as if the object at `removed` were gone: which object blocks the way?
    /// Only walks (`planning`, `reach`) change; `world` still reads the true cells.
    pub fn without_object(&self, removed: Pos) -> KnownMap<'a> {
        let mut planning = self.planning.clone();
        planning.set(removed, Cell::Empty);
        let reach = Reachability::from_agent(&planning);
        KnownMap { world: self.world, known: self.known.clone(), planning, reach }
    }

    /// Whether `aim` can be walked to.
    pub fn can_reach(&self, aim: NavGoal) -> bool {
        match aim {
            NavGoal::Face(target) => self.reach.nearest_facing(target).is_some(),
            NavGoal::Reach(target) => self.reach.path_to_reach(&self.planning, target).is_some(),
        }
    }

    /// Whether the agent can stand on `p` (some pose there is reachable).
    pub fn reaches(&self, p: Pos) -> bool {
        (0..4u8).any(|dir| self.reach.distance(Pose::new(p, dir)).is_some())
    }

    /// The world with unknown cells counted as open floor: the optimistic layout, for asking
    /// what a dropped object could cut off without assuming walls the agent has not seen.
    pub fn optimistic_world(&self) -> GridWorld {
        let mut optimistic = self.world.clone();
        let (width, height) = (self.world.width() as i32, self.world.height() as i32);
        for y in 0..height {
            for x in 0..width {
                let p = Pos::new(x, y);
                if !self.knows(p) {
                    optimistic.set(p, Cell::Empty);
                }
            }
        }
        optimistic
    }
}
