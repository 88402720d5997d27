//! Exact shortest walks over (position, direction) with MiniGrid's turn and forward actions,
//! and a macro-action search that finds a winning action sequence using the real `step`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use super::object::{Cell, DoorState};
use super::task::{Instruction, Task};
use super::world::{Action, DIR_TO_VEC, GridWorld, Pos};

// ---------------------------------------------------------------------------------------------
// Poses and walkability
// ---------------------------------------------------------------------------------------------

/// Where the agent stands and which way it faces (0 right, 1 down, 2 left, 3 up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pose {
    pub pos: Pos,
    pub dir: u8,
}

impl Pose {
    pub fn new(pos: Pos, dir: u8) -> Pose {
        Pose { pos, dir: dir & 3 }
    }

    pub fn of_agent(world: &GridWorld) -> Pose {
        Pose::new(world.agent_pos, world.agent_dir)
    }

    /// The cell this pose faces (what pickup, drop and toggle act on).
    pub fn front(self) -> Pos {
        self.pos.offset(DIR_TO_VEC[self.dir as usize])
    }

    fn turned_left(self) -> Pose {
        Pose::new(self.pos, self.dir + 3)
    }

    fn turned_right(self) -> Pose {
        Pose::new(self.pos, self.dir + 1)
    }

    fn stepped_forward(self) -> Pose {
        Pose::new(self.front(), self.dir)
    }

    /// The pose one forward step behind this one (same direction).
    fn stepped_back(self) -> Pose {
        let (dx, dy) = DIR_TO_VEC[self.dir as usize];
        Pose::new(self.pos.offset((-dx, -dy)), self.dir)
    }
}

/// Whether a walk may pass through `cell`: it must be overlappable, and neither lava (the
/// episode ends in failure) nor the goal (the episode ends before the walk does).
pub fn walkable(cell: Cell) -> bool {
    cell.can_overlap() && !matches!(cell, Cell::Lava | Cell::Goal)
}

/// Whether the agent is facing `target` right now.
pub fn is_facing(world: &GridWorld, target: Pos) -> bool {
    Pose::of_agent(world).front() == target
}

/// Dense indexing of the poses of one grid.
#[derive(Clone, Copy, Debug)]
struct PoseIndex {
    width: i32,
    height: i32,
}

impl PoseIndex {
    fn of(world: &GridWorld) -> PoseIndex {
        PoseIndex { width: world.width() as i32, height: world.height() as i32 }
    }

    fn len(self) -> usize {
        (self.width * self.height * 4) as usize
    }

    fn index(self, pose: Pose) -> Option<usize> {
        let Pos { x, y } = pose.pos;
        let inside = x >= 0 && y >= 0 && x < self.width && y < self.height;
        inside.then(|| ((y * self.width + x) * 4 + pose.dir as i32) as usize)
    }

    fn pose(self, index: usize) -> Pose {
        let cell = index as i32 / 4;
        Pose::new(Pos::new(cell % self.width, cell / self.width), (index % 4) as u8)
    }
}

const UNREACHED: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Forward search from the agent: every pose's distance and the way there
// ---------------------------------------------------------------------------------------------

/// Breadth-first search from the agent's pose over turn/forward moves (all cost 1), so
/// distances are exact step counts. Valid for the grid it was computed on.
#[derive(Clone, Debug)]
pub struct Reachability {
    poses: PoseIndex,
    start: Pose,
    distance: Vec<u32>,
    /// The action that first reached each pose, for walking the path back.
    arrived_by: Vec<Option<Action>>,
}

impl Reachability {
    pub fn from_agent(world: &GridWorld) -> Reachability {
        let poses = PoseIndex::of(world);
        let start = Pose::of_agent(world);
        let mut distance = vec![UNREACHED; poses.len()];
        let mut arrived_by = vec![None; poses.len()];
        let mut queue = VecDeque::new();
        if let Some(i) = poses.index(start) {
            distance[i] = 0;
            queue.push_back(start);
        }
        while let Some(pose) = queue.pop_front() {
            let Some(here) = poses.index(pose).map(|i| distance[i]) else { continue };
            let forward = pose.stepped_forward();
            let moves = [
                (Action::Left, pose.turned_left(), true),
                (Action::Right, pose.turned_right(), true),
                (Action::Forward, forward, walkable(world.get(forward.pos))),
            ];
            for (action, next, allowed) in moves {
                let Some(j) = poses.index(next) else { continue };
                if allowed && distance[j] == UNREACHED {
                    distance[j] = here + 1;
                    arrived_by[j] = Some(action);
                    queue.push_back(next);
                }
            }
        }
        Reachability { poses, start, distance, arrived_by }
    }

    /// Steps from the agent to `pose`, if reachable.
    pub fn distance(&self, pose: Pose) -> Option<u32> {
        let d = self.distance[self.poses.index(pose)?];
        (d != UNREACHED).then_some(d)
    }

    /// A shortest action sequence from the agent to `pose`.
    pub fn path_to(&self, pose: Pose) -> Option<Vec<Action>> {
        self.distance(pose)?;
        let mut actions = Vec::new();
        let mut here = pose;
        while here != self.start {
            let action = self.arrived_by[self.poses.index(here)?]?;
            actions.push(action);
            here = match action {
                Action::Left => here.turned_right(),
                Action::Right => here.turned_left(),
                _ => here.stepped_back(),
            };
        }
        actions.reverse();
        Some(actions)
    }

    /// The nearest reachable pose facing `target`.
    pub fn nearest_facing(&self, target: Pos) -> Option<Pose> {
        (0..4u8)
            .map(|dir| Pose::new(target, dir).stepped_back())
            .filter_map(|pose| Some((self.distance(pose)?, pose)))
            .min_by_key(|&(d, _)| d)
            .map(|(_, pose)| pose)
    }

    /// A shortest walk that ends adjacent to `target` and facing it.
    pub fn path_to_face(&self, target: Pos) -> Option<Vec<Action>> {
        self.path_to(self.nearest_facing(target)?)
    }

    /// A shortest walk that ends standing on `target` (the last step may enter the goal or
    /// lava, which ends the episode there).
    pub fn path_to_reach(&self, world: &GridWorld, target: Pos) -> Option<Vec<Action>> {
        if target == self.start.pos {
            return Some(Vec::new());
        }
        if !world.get(target).can_overlap() {
            return None;
        }
        let mut walk = self.path_to_face(target)?;
        walk.push(Action::Forward);
        Some(walk)
    }
}

/// A shortest walk from the agent to face `target` (what pickup, toggle and drop need).
pub fn path_to_face(world: &GridWorld, target: Pos) -> Option<Vec<Action>> {
    Reachability::from_agent(world).path_to_face(target)
}

/// A shortest walk from the agent onto `target` (e.g. the goal).
pub fn path_to_reach(world: &GridWorld, target: Pos) -> Option<Vec<Action>> {
    Reachability::from_agent(world).path_to_reach(world, target)
}

// ---------------------------------------------------------------------------------------------
// Backward distance fields, for skills that ask "what next?" from wherever the agent is
// ---------------------------------------------------------------------------------------------

/// Where a walk should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NavGoal {
    /// Adjacent to the position and facing it.
    Face(Pos),
    /// Standing on the position.
    Reach(Pos),
}

/// What a navigation skill should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NavStep {
    /// The goal pose is reached; no move is needed.
    Arrived,
    Take(Action),
}

/// Exact steps-to-go from every pose to a `NavGoal` (a backward breadth-first search), so a
/// skill can pick its next action in O(1). Valid while the grid is unchanged; the agent's
/// cell at construction counts as walkable.
#[derive(Clone, Debug)]
pub struct DistanceField {
    poses: PoseIndex,
    distance: Vec<u32>,
}

impl DistanceField {
    pub fn new(world: &GridWorld, goal: NavGoal) -> DistanceField {
        let standable = |p: Pos| world.in_bounds(p) && (walkable(world.get(p)) || p == world.agent_pos);
        let enterable = |p: Pos| world.in_bounds(p) && (world.get(p).can_overlap() || p == world.agent_pos);
        DistanceField::build(world, goal, &standable, &enterable)
    }

    /// A field over the grid with every door open and every object gone: only walls and lava
    /// stop it, so its distances never overestimate (the solver's A* heuristic). Walls never
    /// move, so it stays valid for the whole episode.
    pub fn relaxed(world: &GridWorld, goal: NavGoal) -> DistanceField {
        let open = |p: Pos| world.in_bounds(p) && could_matter(world.get(p));
        let enterable = |p: Pos| world.in_bounds(p) && !matches!(world.get(p), Cell::Wall(_));
        DistanceField::build(world, goal, &open, &enterable)
    }

    /// Backward breadth-first search from the goal's poses through `standable` cells.
    fn build(
        world: &GridWorld,
        goal: NavGoal,
        standable: &dyn Fn(Pos) -> bool,
        enterable: &dyn Fn(Pos) -> bool,
    ) -> DistanceField {
        let poses = PoseIndex::of(world);
        let mut field = DistanceField { poses, distance: vec![UNREACHED; poses.len()] };
        let mut queue = VecDeque::new();
        for pose in goal_poses(goal, standable, enterable) {
            field.settle(pose, 0, &mut queue);
        }
        while let Some(pose) = queue.pop_front() {
            let Some(here) = field.distance(pose) else { continue };
            // The poses one action before `pose`: a turn the other way, or a step from behind.
            field.settle(pose.turned_right(), here + 1, &mut queue);
            field.settle(pose.turned_left(), here + 1, &mut queue);
            let behind = pose.stepped_back();
            if standable(behind.pos) {
                field.settle(behind, here + 1, &mut queue);
            }
        }
        field
    }

    fn settle(&mut self, pose: Pose, distance: u32, queue: &mut VecDeque<Pose>) {
        if let Some(i) = self.poses.index(pose)
            && self.distance[i] == UNREACHED
        {
            self.distance[i] = distance;
            queue.push_back(pose);
        }
    }

    /// Steps from `pose` to the goal, if it can be reached.
    pub fn distance(&self, pose: Pose) -> Option<u32> {
        let d = self.distance[self.poses.index(pose)?];
        (d != UNREACHED).then_some(d)
    }

    /// The next action on a shortest walk from `pose`; `None` when the goal is unreachable.
    pub fn next_step(&self, pose: Pose) -> Option<NavStep> {
        let here = self.distance(pose)?;
        if here == 0 {
            return Some(NavStep::Arrived);
        }
        // Only enterable cells carry a distance, so a forward step into one is always legal.
        let moves = [
            (Action::Forward, pose.stepped_forward()),
            (Action::Left, pose.turned_left()),
            (Action::Right, pose.turned_right()),
        ];
        moves
            .into_iter()
            .find(|&(_, next)| self.distance(next) == Some(here - 1))
            .map(|(action, _)| NavStep::Take(action))
    }
}

/// The poses at distance zero from `goal`.
fn goal_poses(goal: NavGoal, standable: &dyn Fn(Pos) -> bool, enterable: &dyn Fn(Pos) -> bool) -> Vec<Pose> {
    match goal {
        NavGoal::Face(target) => {
            (0..4u8).map(|dir| Pose::new(target, dir).stepped_back()).filter(|pose| standable(pose.pos)).collect()
        }
        NavGoal::Reach(target) if enterable(target) => (0..4u8).map(|dir| Pose::new(target, dir)).collect(),
        NavGoal::Reach(_) => Vec::new(),
    }
}

/// The agent's next action towards `goal`; `None` when the goal is unreachable.
pub fn next_step(world: &GridWorld, goal: NavGoal) -> Option<NavStep> {
    DistanceField::new(world, goal).next_step(Pose::of_agent(world))
}

// ---------------------------------------------------------------------------------------------
// Chokepoints: where a dropped object would cut the level in two
// ---------------------------------------------------------------------------------------------

/// Cells that could ever be walked on or used: everything but walls and lava.
fn could_matter(cell: Cell) -> bool {
    !matches!(cell, Cell::Wall(_) | Cell::Lava)
}

/// For each cell (row-major), whether it is an articulation point of the 4-connected graph of
/// non-wall, non-lava cells: blocking it would disconnect something (a door from its room,
/// a corridor's two ends). Iterative Tarjan, so large grids cannot overflow the stack.
pub fn chokepoints(world: &GridWorld) -> Vec<bool> {
    let (width, height) = (world.width() as i32, world.height() as i32);
    let count = (width * height) as usize;
    let node = |i: usize| could_matter(world.cells()[i]);
    let neighbour = |i: usize, k: usize| -> Option<usize> {
        let (x, y) = ((i as i32) % width, (i as i32) / width);
        let (dx, dy) = DIR_TO_VEC[k];
        let (nx, ny) = (x + dx, y + dy);
        (nx >= 0 && ny >= 0 && nx < width && ny < height).then(|| (ny * width + nx) as usize)
    };
    let mut discovered = vec![0u32; count];
    let mut low = vec![0u32; count];
    let mut is_cut = vec![false; count];
    let mut clock = 0u32;
    for root in 0..count {
        if !node(root) || discovered[root] != 0 {
            continue;
        }
        clock += 1;
        discovered[root] = clock;
        low[root] = clock;
        let mut root_children = 0;
        // (cell, parent, next neighbour to look at)
        let mut stack: Vec<(usize, Option<usize>, usize)> = vec![(root, None, 0)];
        while let Some(top) = stack.last_mut() {
            let (v, parent, k) = *top;
            if k < 4 {
                top.2 += 1;
                let Some(w) = neighbour(v, k).filter(|&w| node(w)) else { continue };
                if discovered[w] == 0 {
                    clock += 1;
                    discovered[w] = clock;
                    low[w] = clock;
                    if v == root {
                        root_children += 1;
                    }
                    stack.push((w, Some(v), 0));
                } else if Some(w) != parent {
                    low[v] = low[v].min(discovered[w]);
                }
                continue;
            }
            stack.pop();
            if let Some(p) = parent {
                low[p] = low[p].min(low[v]);
                if p != root && low[v] >= discovered[p] {
                    is_cut[p] = true;
                }
            }
        }
        is_cut[root] = root_children > 1;
    }
    is_cut
}

// ---------------------------------------------------------------------------------------------
// The solver: A* over macro-actions, simulated with the real `step`
// ---------------------------------------------------------------------------------------------

/// How much search `solve` may do before giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SolveBudget {
    /// Search states expanded (each runs one breadth-first search and its macros).
    pub max_expanded: usize,
}

impl Default for SolveBudget {
    fn default() -> SolveBudget {
        SolveBudget { max_expanded: 20_000 }
    }
}

/// What `solve_with_report` found, and how much it searched.
#[derive(Clone, Debug, PartialEq)]
pub struct SolveReport {
    /// Primitive actions whose last step succeeds (terminated, reward > 0); `None` when the
    /// budget ran out or no macro sequence wins.
    pub plan: Option<Vec<Action>>,
    pub expanded: usize,
}

/// Drop spots tried per carrying state: the nearest harmless cells.
const DROP_CANDIDATES: usize = 2;

/// A primitive action sequence that makes `world.step` succeed, found by A* over
/// macro-actions ("walk to face X, then pick up / toggle", "drop somewhere harmless", "walk
/// onto the goal"). Shortest in steps among the macro plans it considers; `None` when the
/// budget runs out or nothing wins.
pub fn solve(world: &GridWorld, budget: SolveBudget) -> Option<Vec<Action>> {
    solve_with_report(world, budget).plan
}

/// `solve`, also reporting how many states were expanded.
pub fn solve_with_report(world: &GridWorld, budget: SolveBudget) -> SolveReport {
    let mut search = Search::new(world.clone());
    let plan = search.run(budget);
    SolveReport { plan, expanded: search.expanded }
}

/// A state reached by a macro from its parent.
struct SearchNode {
    world: GridWorld,
    /// `None` for a solved node: nothing follows it, so it needs no deduplication.
    key: Option<StateKey>,
    parent: Option<usize>,
    /// The primitive actions from the parent's state to this one.
    actions: Vec<Action>,
}

/// Everything that decides what can still happen: grid, pose, hands and the task's
/// bookkeeping (which object is the target, GoTo's remembered positions). Not the step count:
/// the search keeps each state's cheapest route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StateKey {
    cells: Vec<Cell>,
    pose: Pose,
    carrying: Cell,
    task: String,
}

impl StateKey {
    fn of(world: &GridWorld) -> StateKey {
        StateKey {
            cells: world.cells().to_vec(),
            pose: Pose::of_agent(world),
            carrying: world.carrying,
            // `Task` is not `Hash`; its debug form is exact and built once per state.
            task: format!("{:?}", world.task),
        }
    }
}

/// How simulating a macro ended.
enum MacroOutcome {
    /// Succeeded after this many of its actions.
    Solved(usize),
    /// All actions ran and the episode goes on.
    Continues,
    /// The episode ended without success (lava, failure, step limit).
    Failed,
}

/// Estimated steps left when no way to succeed is reachable even with every door open: such
/// states are searched last rather than dropped, in case the aims move (GoTo after a drop).
const HOPELESS: u32 = 1 << 16;

/// A* lower bounds on the steps left: the relaxed walk (doors open, objects gone) to the
/// nearest way to succeed, plus its finishing action. Fields are cached per aim.
#[derive(Default)]
struct Heuristic {
    fields: HashMap<NavGoal, DistanceField>,
}

impl Heuristic {
    fn estimate(&mut self, world: &GridWorld) -> u32 {
        let aims = success_aims(world);
        if aims.is_empty() {
            return 1;
        }
        let pose = Pose::of_agent(world);
        let mut best = HOPELESS;
        for (goal, finish) in aims {
            let field = self.fields.entry(goal).or_insert_with(|| DistanceField::relaxed(world, goal));
            if let Some(d) = field.distance(pose) {
                best = best.min(d + finish);
            }
        }
        // An unsolved state needs at least one more action.
        best.max(1)
    }
}

/// The poses whose reaching (plus the given number of finishing actions) can succeed: the
/// goal, and whatever the task wants faced.
fn success_aims(world: &GridWorld) -> Vec<(NavGoal, u32)> {
    let face = |targets: &[Pos], finish: u32| -> Vec<(NavGoal, u32)> {
        targets.iter().map(|&p| (NavGoal::Face(p), finish)).collect()
    };
    let mut aims: Vec<(NavGoal, u32)> =
        world.find_all(|cell| cell == Cell::Goal).into_iter().map(|p| (NavGoal::Reach(p), 0)).collect();
    match &world.task {
        Task::Navigate => {}
        Task::PickUpTarget { target } => aims.extend(face(&target.on_grid, 1)),
        Task::OpenDoor => {
            let shut = world.find_all(|cell| matches!(cell, Cell::Door { state, .. } if state != DoorState::Open));
            aims.extend(face(&shut, 1));
        }
        // Any action that ends facing a remembered position succeeds, the walk's last included.
        Task::BabyAi(Instruction::GoTo { positions, .. }) => aims.extend(face(positions, 0)),
        Task::BabyAi(Instruction::Pickup { objects, .. }) => aims.extend(face(&objects.on_grid, 1)),
        Task::BabyAi(Instruction::Open { objects }) => aims.extend(face(&objects.on_grid, 1)),
        // Replay-only rules (no generator makes them): aim at their targets.
        Task::Fetch { object_type, color } => {
            let targets = world.find_all(|c| c.object_type() == *object_type && c.color() == Some(*color));
            aims.extend(face(&targets, 1));
        }
        Task::DoneNextTo { target } => aims.extend(face(&[*target], 1)),
        Task::RedThenBlue { red, blue } => aims.extend(face(&[*red, *blue], 1)),
        Task::PutNear { target, .. } => aims.extend(face(&[*target], 2)),
    }
    aims
}

/// A* over macro-action states; costs are primitive steps.
struct Search {
    nodes: Vec<SearchNode>,
    cheapest: HashMap<StateKey, u32>,
    /// (estimated total steps, preference for deeper nodes, node index), smallest first.
    frontier: BinaryHeap<Reverse<(u32, u32, usize)>>,
    heuristic: Heuristic,
    expanded: usize,
}

impl Search {
    fn new(start: GridWorld) -> Search {
        let mut search = Search {
            nodes: Vec::new(),
            cheapest: HashMap::new(),
            frontier: BinaryHeap::new(),
            heuristic: Heuristic::default(),
            expanded: 0,
        };
        let key = StateKey::of(&start);
        search.cheapest.insert(key.clone(), start.step_count);
        search.push(SearchNode { world: start, key: Some(key), parent: None, actions: Vec::new() });
        search
    }

    fn push(&mut self, node: SearchNode) {
        let steps = node.world.step_count;
        let to_go = if node.key.is_some() { self.heuristic.estimate(&node.world) } else { 0 };
        self.nodes.push(node);
        self.frontier.push(Reverse((steps + to_go, u32::MAX - steps, self.nodes.len() - 1)));
    }

    fn run(&mut self, budget: SolveBudget) -> Option<Vec<Action>> {
        while let Some(Reverse((_, _, index))) = self.frontier.pop() {
            let node = &self.nodes[index];
            let Some(key) = &node.key else { return Some(self.plan_to(index)) };
            if self.cheapest.get(key).is_some_and(|&best| best < node.world.step_count) {
                continue; // reached again more cheaply since it was queued
            }
            if self.expanded >= budget.max_expanded {
                return None;
            }
            self.expanded += 1;
            self.expand(index);
        }
        None
    }

    fn expand(&mut self, index: usize) {
        let parent = &self.nodes[index].world;
        let mut children = Vec::new();
        for actions in macros(parent) {
            let mut world = parent.clone();
            match simulate(&mut world, &actions) {
                MacroOutcome::Solved(taken) => children.push((world, actions[..taken].to_vec(), true)),
                MacroOutcome::Continues => children.push((world, actions, false)),
                MacroOutcome::Failed => {}
            }
        }
        for (world, actions, solved) in children {
            let key = if solved {
                None
            } else {
                let key = StateKey::of(&world);
                if self.cheapest.get(&key).is_some_and(|&best| best <= world.step_count) {
                    continue;
                }
                self.cheapest.insert(key.clone(), world.step_count);
                Some(key)
            };
            self.push(SearchNode { world, key, parent: Some(index), actions });
        }
    }

    fn plan_to(&self, index: usize) -> Vec<Action> {
        let mut chain = Vec::new();
        let mut at = Some(index);
        while let Some(i) = at {
            chain.push(i);
            at = self.nodes[i].parent;
        }
        chain.iter().rev().flat_map(|&i| self.nodes[i].actions.iter().copied()).collect()
    }
}

/// Runs `actions` with the engine's own `step`, checking success after every one (BabyAI's
/// GoTo succeeds on any action that ends facing the target, even mid-walk).
fn simulate(world: &mut GridWorld, actions: &[Action]) -> MacroOutcome {
    for (taken, &action) in actions.iter().enumerate() {
        let outcome = world.step(action);
        if outcome.terminated && outcome.reward > 0.0 {
            return MacroOutcome::Solved(taken + 1);
        }
        if outcome.done() {
            return MacroOutcome::Failed;
        }
    }
    MacroOutcome::Continues
}

/// Every macro worth trying from `world`, each as its primitive actions.
fn macros(world: &GridWorld) -> Vec<Vec<Action>> {
    let reach = Reachability::from_agent(world);
    let mut out = Vec::new();
    for target in world.find_all(|cell| !interactions(world, cell).is_empty()) {
        let Some(walk) = reach.path_to_face(target) else { continue };
        for finish in interactions(world, world.get(target)) {
            out.push([walk.as_slice(), &[finish]].concat());
        }
    }
    for goal in world.find_all(|cell| cell == Cell::Goal) {
        out.extend(reach.path_to_reach(world, goal));
    }
    out.extend(go_to_macros(world, &reach));
    if !world.carrying.is_empty() {
        for spot in drop_spots(world, &reach, DROP_CANDIDATES) {
            out.extend(reach.path_to(spot).map(|walk| [walk.as_slice(), &[Action::Drop]].concat()));
        }
    }
    out
}

/// The actions worth doing to `cell` once facing it.
fn interactions(world: &GridWorld, cell: Cell) -> Vec<Action> {
    let hands_free = world.carrying.is_empty();
    match cell {
        Cell::Key(_) | Cell::Ball(_) if hands_free => vec![Action::Pickup],
        Cell::Box { .. } if hands_free => vec![Action::Pickup, Action::Toggle],
        Cell::Box { .. } => vec![Action::Toggle],
        Cell::Door { state: DoorState::Closed, .. } => vec![Action::Toggle],
        Cell::Door { color, state: DoorState::Locked } if world.carrying == Cell::Key(color) => vec![Action::Toggle],
        // Closing a door only helps BabyAI's "open", which needs a toggle that leaves it open.
        Cell::Door { state: DoorState::Open, .. } if opening_is_the_task(&world.task) => vec![Action::Toggle],
        _ => Vec::new(),
    }
}

fn opening_is_the_task(task: &Task) -> bool {
    matches!(task, Task::BabyAi(Instruction::Open { .. }))
}

/// BabyAI GoTo: walk to face each remembered target position. When already facing one, a
/// `Done` (which changes nothing) is the action that ends there.
fn go_to_macros(world: &GridWorld, reach: &Reachability) -> Vec<Vec<Action>> {
    let Task::BabyAi(Instruction::GoTo { positions, .. }) = &world.task else { return Vec::new() };
    positions
        .iter()
        .filter_map(|&target| reach.path_to_face(target))
        .map(|walk| if walk.is_empty() { vec![Action::Done] } else { walk })
        .collect()
}

/// Up to `limit` poses, nearest first, facing an empty cell where a dropped object would not
/// cut the level in two; the nearest chokepoint only when nothing else is free.
fn drop_spots(world: &GridWorld, reach: &Reachability, limit: usize) -> Vec<Pose> {
    let choke = chokepoints(world);
    let width = world.width() as i32;
    // Nearest standing pose per free front cell.
    let mut best: HashMap<Pos, (u32, Pose)> = HashMap::new();
    for index in 0..reach.poses.len() {
        let pose = reach.poses.pose(index);
        let Some(d) = reach.distance(pose) else { continue };
        let front = pose.front();
        if !world.in_bounds(front) || !world.get(front).is_empty() {
            continue;
        }
        let entry = best.entry(front).or_insert((d, pose));
        if d < entry.0 {
            *entry = (d, pose);
        }
    }
    let mut spots: Vec<(bool, u32, Pos, Pose)> = best
        .into_iter()
        .map(|(front, (d, pose))| (choke[(front.y * width + front.x) as usize], d, front, pose))
        .collect();
    spots.sort_by_key(|&(is_choke, d, front, _)| (is_choke, d, front.y, front.x));
    let harmless: Vec<Pose> = spots.iter().filter(|s| !s.0).take(limit).map(|s| s.3).collect();
    if harmless.is_empty() { spots.first().map(|s| s.3).into_iter().collect() } else { harmless }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::object::Color;
    use crate::env::grid::task::{ObjectSet, RoomLayout};

    /// A world from an ASCII map: `#` wall, `.` empty, `G` goal, `L` lava, `k` yellow key,
    /// `D` locked yellow door, `d` closed red door, `o` open red door, `a` blue
    /// ball, `B` green box holding the yellow key, `>` `v` `<` `^` the agent.
    fn world_from(rows: &[&str]) -> GridWorld {
        let height = rows.len();
        let width = rows[0].len();
        let mut world = GridWorld::new(width, height);
        world.max_steps = 1000;
        for (y, row) in rows.iter().enumerate() {
            for (x, symbol) in row.chars().enumerate() {
                let p = Pos::new(x as i32, y as i32);
                let cell = match symbol {
                    '#' => Cell::WALL,
                    'G' => Cell::Goal,
                    'L' => Cell::Lava,
                    'k' => Cell::Key(Color::Yellow),
                    'D' => Cell::Door { color: Color::Yellow, state: DoorState::Locked },
                    'd' => Cell::Door { color: Color::Red, state: DoorState::Closed },
                    'o' => Cell::Door { color: Color::Red, state: DoorState::Open },
                    'a' => Cell::Ball(Color::Blue),
                    'B' => Cell::boxed(Color::Green, Cell::Key(Color::Yellow)),
                    '>' | 'v' | '<' | '^' => {
                        world.agent_pos = p;
                        world.agent_dir = ">v<^".find(symbol).map_or(0, |d| d as u8);
                        Cell::Empty
                    }
                    _ => Cell::Empty,
                };
                world.set(p, cell);
            }
        }
        world
    }

    /// Replays `actions` and checks that only the last step ends the episode, in success.
    fn assert_plan_wins(world: &GridWorld, actions: &[Action]) {
        let mut replay = world.clone();
        for (i, &action) in actions.iter().enumerate() {
            let outcome = replay.step(action);
            if i + 1 < actions.len() {
                assert!(!outcome.done(), "step {i} ({action:?}) ended the episode early");
            } else {
                assert!(outcome.terminated && outcome.reward > 0.0, "last step did not succeed: {outcome:?}");
            }
        }
    }

    /// Follows a distance field with the real engine and returns the steps taken.
    fn follow(world: &GridWorld, goal: NavGoal) -> Option<usize> {
        let field = DistanceField::new(world, goal);
        let mut walker = world.clone();
        for taken in 0..1000 {
            match field.next_step(Pose::of_agent(&walker))? {
                NavStep::Arrived => return Some(taken),
                NavStep::Take(action) => {
                    walker.step(action);
                }
            }
        }
        None
    }

    const OPEN_ROOM: [&str; 6] = ["######", "#>...#", "#....#", "#....#", "#...G#", "######"];

    #[test]
    fn facing_paths_have_optimal_lengths() {
        let world = world_from(&OPEN_ROOM);
        // Straight ahead, already adjacent: nothing to do.
        assert_eq!(path_to_face(&world, Pos::new(2, 1)), Some(vec![]));
        // Two cells ahead: one step.
        assert_eq!(path_to_face(&world, Pos::new(3, 1)), Some(vec![Action::Forward]));
        // Directly below: turn right to face down.
        assert_eq!(path_to_face(&world, Pos::new(1, 2)), Some(vec![Action::Right]));
        // Behind (a wall): two turns, then it is faced.
        assert_eq!(path_to_face(&world, Pos::new(0, 1)).map(|p| p.len()), Some(2));
        // Diagonal: F F R F ends at (3, 2) facing down; every route through (2, 3) needs 5.
        assert_eq!(path_to_face(&world, Pos::new(3, 3)).map(|p| p.len()), Some(4));
        assert_eq!(follow(&world, NavGoal::Face(Pos::new(3, 3))), Some(4));
    }

    #[test]
    fn reaching_the_goal_takes_the_optimal_walk_and_wins() {
        let world = world_from(&OPEN_ROOM);
        let walk = path_to_reach(&world, Pos::new(4, 4)).unwrap_or_default();
        // Three right, one turn, three down.
        assert_eq!(walk.len(), 7);
        assert_plan_wins(&world, &walk);
        assert_eq!(follow(&world, NavGoal::Reach(Pos::new(4, 4))), Some(7));
        assert_eq!(path_to_reach(&world, Pos::new(0, 0)), None, "walls cannot be stood on");
        assert_eq!(path_to_reach(&world, world.agent_pos), Some(vec![]));
    }

    #[test]
    fn next_step_reports_arrival_and_unreachable_goals() {
        let world = world_from(&["#####", "#>a.#", "#####"]);
        assert_eq!(next_step(&world, NavGoal::Face(Pos::new(2, 1))), Some(NavStep::Arrived));
        assert!(is_facing(&world, Pos::new(2, 1)));
        // The ball blocks the corridor, so the far cell cannot be reached.
        assert_eq!(next_step(&world, NavGoal::Reach(Pos::new(3, 1))), None);
        assert_eq!(next_step(&world, NavGoal::Face(Pos::new(4, 1))), None);
    }

    #[test]
    fn closed_doors_block_and_open_doors_pass() {
        let closed = world_from(&["#######", "#>.d.G#", "#######"]);
        assert_eq!(path_to_reach(&closed, Pos::new(5, 1)), None);
        assert_eq!(path_to_face(&closed, Pos::new(3, 1)), Some(vec![Action::Forward]));
        let relaxed = DistanceField::relaxed(&closed, NavGoal::Reach(Pos::new(5, 1)));
        assert_eq!(relaxed.distance(Pose::of_agent(&closed)), Some(4), "the relaxed field ignores doors");
        let open = world_from(&["#######", "#>.o.G#", "#######"]);
        assert_eq!(path_to_reach(&open, Pos::new(5, 1)).map(|p| p.len()), Some(4));
    }

    #[test]
    fn walks_avoid_lava_unless_it_is_the_destination() {
        // Straight across is 3 steps through lava; around it is longer.
        let world = world_from(&["######", "#>LLG#", "#....#", "######"]);
        let walk = path_to_reach(&world, Pos::new(4, 1)).unwrap_or_default();
        assert_eq!(walk.len(), 8, "R F L F F F L F: around the lava");
        assert_plan_wins(&world, &walk);
        assert_eq!(path_to_reach(&world, Pos::new(2, 1)), Some(vec![Action::Forward]));
    }

    #[test]
    fn walks_do_not_pass_over_the_goal() {
        let world = world_from(&["#######", "#>.G.a#", "#.....#", "#######"]);
        let walk = path_to_face(&world, Pos::new(5, 1)).unwrap_or_default();
        let mut walker = world.clone();
        for action in walk {
            assert!(!walker.step(action).done(), "the walk must not end the episode");
        }
        assert!(is_facing(&walker, Pos::new(5, 1)));
    }

    #[test]
    fn chokepoints_find_doors_and_corridors() {
        let world = world_from(&["#######", "#>.#..#", "#..d..#", "#..#..#", "#######"]);
        let width = world.width() as i32;
        let choke = |x: i32, y: i32| chokepoints(&world)[(y * width + x) as usize];
        assert!(choke(3, 2), "the door");
        assert!(choke(2, 2) && choke(4, 2), "the cells in front of the door");
        assert!(!choke(1, 1) && !choke(5, 3), "room corners");
    }

    #[test]
    fn solves_a_door_key_room() {
        let world = world_from(&["#######", "#>.#..#", "#..D..#", "#k.#.G#", "#######"]);
        let report = solve_with_report(&world, SolveBudget::default());
        let plan = report.plan.unwrap_or_default();
        assert_plan_wins(&world, &plan);
        // R F pickup, L F toggle, F F F R F: nothing shorter exists.
        assert_eq!(plan.len(), 11, "{plan:?}");
    }

    #[test]
    fn solves_a_key_hidden_in_a_box() {
        let world = world_from(&["#######", "#>.#..#", "#..D..#", "#B.#.G#", "#######"]);
        let plan = solve(&world, SolveBudget::default()).unwrap_or_default();
        assert_plan_wins(&world, &plan);
        let toggles = plan.iter().filter(|&&a| a == Action::Toggle).count();
        assert!(toggles >= 2, "open the box, then the door: {plan:?}");
    }

    #[test]
    fn moves_a_ball_that_blocks_the_door() {
        // The ball sits in the only cell facing the door; the key is behind the agent.
        let world = world_from(&["########", "#k..#..#", "#.>aD.G#", "#...#..#", "########"]);
        let plan = solve(&world, SolveBudget::default()).unwrap_or_default();
        assert_plan_wins(&world, &plan);
        assert!(plan.iter().filter(|&&a| a == Action::Pickup).count() >= 2);
        assert!(plan.contains(&Action::Drop));
    }

    #[test]
    fn picks_up_the_target_with_the_key_dropped_out_of_the_way() {
        // UnlockPickup in miniature: fetch the key, open the door, drop the key, take the ball.
        let mut world = world_from(&["#######", "#>k#..#", "#..D.a#", "#..#..#", "#######"]);
        world.task = Task::PickUpTarget { target: ObjectSet { on_grid: vec![Pos::new(5, 2)], carried: false } };
        let plan = solve(&world, SolveBudget::default()).unwrap_or_default();
        assert_plan_wins(&world, &plan);
        assert_eq!(plan.last(), Some(&Action::Pickup));
    }

    #[test]
    fn solves_babyai_go_to_when_already_facing_it() {
        let mut world = world_from(&["######", "#>a..#", "#....#", "######"]);
        let rooms = RoomLayout { room_size: 6, num_rows: 1, num_cols: 1 };
        world.task = Task::babyai_from_mission("go to the blue ball", &world, &rooms).unwrap_or_default();
        let plan = solve(&world, SolveBudget::default()).unwrap_or_default();
        assert_eq!(plan.len(), 1);
        assert_plan_wins(&world, &plan);
    }

    #[test]
    fn solves_babyai_open_door() {
        let mut world = world_from(&["#######", "#>...#.", "#....d.", "#....#.", "#######"]);
        let rooms = RoomLayout { room_size: 7, num_rows: 1, num_cols: 1 };
        world.task = Task::babyai_from_mission("open the red door", &world, &rooms).unwrap_or_default();
        let plan = solve(&world, SolveBudget::default()).unwrap_or_default();
        assert_plan_wins(&world, &plan);
        assert_eq!(plan.last(), Some(&Action::Toggle));
    }

    #[test]
    fn gives_up_when_the_goal_is_sealed_off_or_the_budget_is_spent() {
        let sealed = world_from(&["#######", "#>.#..#", "#..#.G#", "#######"]);
        assert_eq!(solve(&sealed, SolveBudget::default()), None);
        let door_key = world_from(&["#######", "#>.#..#", "#..D..#", "#k.#.G#", "#######"]);
        let report = solve_with_report(&door_key, SolveBudget { max_expanded: 1 });
        assert_eq!((report.plan, report.expanded), (None, 1));
    }

    #[test]
    fn respects_the_step_limit() {
        let mut world = world_from(&OPEN_ROOM);
        world.max_steps = 6; // the goal is 7 steps away
        assert_eq!(solve(&world, SolveBudget::default()), None);
        world.max_steps = 7;
        let plan = solve(&world, SolveBudget::default()).unwrap_or_default();
        assert_plan_wins(&world, &plan);
    }
}
