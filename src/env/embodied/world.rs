//! The embodied world: the agent's continuous pose, Habitat's discrete actions, collisions that
//! never tunnel, picking and placing objects, and egocentric ray casts against the floor plan.

use std::f32::consts::PI;
use std::sync::Arc;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::plan::{FloorPlan, FurnitureKind, OBJECT_SIZE, ObjectKind, Rect};

/// The agent is a disc this wide (metres), as Habitat's LoCoBot.
pub const AGENT_RADIUS: f32 = 0.18;
/// MoveForward's length.
pub const MOVE_DISTANCE: f32 = 0.25;
/// Moves advance in pieces no longer than this. Every obstacle grown by the agent's radius is
/// at least 2 × AGENT_RADIUS wide, so checking each piece's end cannot skip through one.
const MOVE_PIECE: f32 = 0.05;
/// Obstacles per SIMD group in the ray loop.
const LANES: usize = 8;
/// Turns are 30°, so the heading is one of 12.
pub const HEADINGS: u8 = 12;
/// Pick, Place and ObjectNav's success reach this far from the agent's centre.
pub const REACH: f32 = 1.0;
/// "In front" means within this angle either side of the heading.
pub const FRONT_HALF_ANGLE: f32 = PI / 6.0;
/// Rays over the front half-plane.
pub const RAY_COUNT: usize = 32;
/// Rays see this far; beyond it they report `SemanticClass::NOTHING`.
pub const RAY_RANGE: f32 = 8.0;

/// Habitat's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    MoveForward,
    TurnLeft,
    TurnRight,
    Pick,
    Place,
    Stop,
}

impl Action {
    pub const ALL: [Action; 6] =
        [Action::MoveForward, Action::TurnLeft, Action::TurnRight, Action::Pick, Action::Place, Action::Stop];
}

/// Semantic classes rays report, as indices: nothing, wall, each furniture kind, each object kind.
pub struct SemanticClass;

impl SemanticClass {
    pub const NOTHING: usize = 0;
    pub const WALL: usize = 1;
    pub const COUNT: usize = 2 + FurnitureKind::ALL.len() + ObjectKind::ALL.len();

    pub fn furniture(kind: FurnitureKind) -> usize {
        2 + kind.index()
    }

    pub fn object(kind: ObjectKind) -> usize {
        2 + FurnitureKind::ALL.len() + kind.index()
    }
}

/// Where the agent is: `x`, `z` in metres and a heading in 30° steps. Yaw 0 faces +x and yaw
/// grows counter-clockwise seen from above (+y), as Bevy's rotation about y, so forward is
/// (cos yaw, −sin yaw) in (x, z).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub x: f32,
    pub z: f32,
    pub heading: u8,
}

impl Pose {
    pub fn yaw(&self) -> f32 {
        self.heading as f32 * (2.0 * PI / HEADINGS as f32)
    }

    pub fn forward(&self) -> (f32, f32) {
        direction(self.yaw())
    }
}

fn direction(yaw: f32) -> (f32, f32) {
    (yaw.cos(), -yaw.sin())
}

/// Where a small object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectPlace {
    OnFurniture(usize),
    Floor,
    Held,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub kind: ObjectKind,
    pub x: f32,
    pub z: f32,
    pub place: ObjectPlace,
}

impl Object {
    fn square(&self) -> Rect {
        let half = OBJECT_SIZE / 2.0;
        Rect::new(self.x - half, self.z - half, self.x + half, self.z + half)
    }
}

/// What a ray met first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Nothing,
    Wall,
    Furniture(usize),
    Object(usize),
}

/// One ray's reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RayHit {
    pub distance: f32,
    pub hit: Hit,
}

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Moved,
    /// MoveForward ended short of its full length (slid or stopped at an obstacle).
    Blocked,
    Turned,
    Picked(usize),
    Placed {
        object: usize,
        furniture: usize,
    },
    /// Pick or Place found nothing to act on; the world is unchanged.
    Failed,
    Stopped,
}

/// The state of one embodied episode's world.
#[derive(Debug, Clone)]
pub struct World {
    plan: Arc<FloorPlan>,
    /// Walls first, then furniture (furniture `i` is `obstacles[first_furniture + i]`).
    obstacles: Vec<Rect>,
    /// The same boxes as lanes of `LANES` (x0, z0, x1, z1), padded with boxes no ray reaches,
    /// so the ray loop below runs as SIMD.
    obstacle_lanes: Vec<[[f32; LANES]; 4]>,
    first_furniture: usize,
    /// Ray directions per heading, left (+90°) to right (−90°), and their reciprocals.
    ray_directions: Vec<[(f32, f32); RAY_COUNT]>,
    pub pose: Pose,
    pub objects: Vec<Object>,
    pub held: Option<usize>,
}

impl World {
    pub fn new(plan: Arc<FloorPlan>) -> World {
        let mut obstacles = plan.wall_boxes.clone();
        let first_furniture = obstacles.len();
        obstacles.extend(plan.file.furniture.iter().map(|piece| piece.rect));
        let ray_directions = (0..HEADINGS)
            .map(|heading| {
                let yaw = Pose { x: 0.0, z: 0.0, heading }.yaw();
                std::array::from_fn(|i| direction(yaw + PI / 2.0 - PI * i as f32 / (RAY_COUNT - 1) as f32))
            })
            .collect();
        let pose = Pose { x: plan.start_spots[0].0, z: plan.start_spots[0].1, heading: 0 };
        let obstacle_lanes = obstacles
            .chunks(LANES)
            .map(|chunk| {
                let far = Rect::new(1e30, 1e30, 1e30, 1e30);
                let lane = |i: usize| chunk.get(i).copied().unwrap_or(far);
                [
                    std::array::from_fn(|i| lane(i).min.0),
                    std::array::from_fn(|i| lane(i).min.1),
                    std::array::from_fn(|i| lane(i).max.0),
                    std::array::from_fn(|i| lane(i).max.1),
                ]
            })
            .collect();
        World {
            plan,
            obstacles,
            obstacle_lanes,
            first_furniture,
            ray_directions,
            pose,
            objects: Vec::new(),
            held: None,
        }
    }

    pub fn plan(&self) -> &FloorPlan {
        &self.plan
    }

    /// Places the agent and objects at random per `seed`. Objects of `avoid.0`'s kind never
    /// start on furniture `avoid.1` (the PickPlace target).
    pub fn reset(&mut self, seed: u64, avoid: Option<(ObjectKind, usize)>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let plan = Arc::clone(&self.plan);
        let start = plan.start_spots[rng.random_range(0..plan.start_spots.len())];
        self.pose = Pose { x: start.0, z: start.1, heading: rng.random_range(0..HEADINGS) };
        self.held = None;
        self.objects.clear();
        for (rule_index, rule) in plan.file.objects.iter().enumerate() {
            let supports = &plan.object_support_furniture[rule_index];
            let allowed: Vec<usize> = (0..supports.len())
                .filter(|&i| !matches!(avoid, Some((kind, furniture)) if kind == rule.kind && supports[i] == Some(furniture)))
                .collect();
            let support = allowed[rng.random_range(0..allowed.len())];
            let spots = &plan.object_spots[rule_index][support];
            // Keep objects apart when the support has room; a crowded one may share a spot.
            let mut spot = spots[rng.random_range(0..spots.len())];
            for _ in 0..16 {
                let clear = self.objects.iter().all(|o| (o.x - spot.0).hypot(o.z - spot.1) > OBJECT_SIZE * 1.5);
                if clear {
                    break;
                }
                spot = spots[rng.random_range(0..spots.len())];
            }
            let place = supports[support].map_or(ObjectPlace::Floor, ObjectPlace::OnFurniture);
            self.objects.push(Object { kind: rule.kind, x: spot.0, z: spot.1, place });
        }
    }

    /// True when the agent's disc centred at (x, z) touches no wall or furniture.
    pub fn is_free(&self, x: f32, z: f32) -> bool {
        let radius_squared = AGENT_RADIUS * AGENT_RADIUS;
        self.obstacles.iter().all(|rect| rect.distance_squared(x, z) >= radius_squared)
    }

    /// Applies one action.
    pub fn act(&mut self, action: Action) -> Outcome {
        match action {
            Action::MoveForward => self.move_forward(MOVE_DISTANCE),
            Action::TurnLeft => {
                self.pose.heading = (self.pose.heading + 1) % HEADINGS;
                Outcome::Turned
            }
            Action::TurnRight => {
                self.pose.heading = (self.pose.heading + HEADINGS - 1) % HEADINGS;
                Outcome::Turned
            }
            Action::Pick => self.pick(),
            Action::Place => self.place(),
            Action::Stop => Outcome::Stopped,
        }
    }

    /// Moves `distance` along the heading in short pieces; a piece that would enter an
    /// obstacle slides along x or z alone, or stops the move.
    pub fn move_forward(&mut self, distance: f32) -> Outcome {
        let (x, z, blocked) = self.forward_end(self.pose, distance);
        self.pose.x = x;
        self.pose.z = z;
        if blocked { Outcome::Blocked } else { Outcome::Moved }
    }

    /// Where moving `distance` from `pose` along its heading ends (x, z), and whether an
    /// obstacle cut it short, without moving (what planners look ahead with).
    pub fn forward_end(&self, pose: Pose, distance: f32) -> (f32, f32, bool) {
        let (dx, dz) = pose.forward();
        let pieces = (distance / MOVE_PIECE).ceil().max(1.0) as usize;
        let (step_x, step_z) = (dx * distance / pieces as f32, dz * distance / pieces as f32);
        let (mut x, mut z) = (pose.x, pose.z);
        let mut blocked = false;
        for _ in 0..pieces {
            if self.is_free(x + step_x, z + step_z) {
                x += step_x;
                z += step_z;
                continue;
            }
            blocked = true;
            // Slide along whichever axis still has room, the larger component first.
            let slides = if step_x.abs() >= step_z.abs() {
                [(step_x, 0.0), (0.0, step_z)]
            } else {
                [(0.0, step_z), (step_x, 0.0)]
            };
            match slides.iter().find(|(sx, sz)| (sx.abs() > 1e-6 || sz.abs() > 1e-6) && self.is_free(x + sx, z + sz)) {
                Some((sx, sz)) => {
                    x += sx;
                    z += sz;
                }
                None => break,
            }
        }
        (x, z, blocked)
    }

    /// The nearest wall or furniture along a ray, skipping furniture `skip`: (distance, hit).
    fn cast_solid(&self, ox: f32, oz: f32, dx: f32, dz: f32, skip: Option<usize>) -> (f32, Hit) {
        let (inv_x, inv_z) = (1.0 / dx, 1.0 / dz);
        let skip_index = skip.map_or(usize::MAX, |f| self.first_furniture + f);
        // Per-lane minimum first (vectorises), then across lanes: this loop is most of a
        // step's time (32 rays × every obstacle). `<` rather than f32::min keeps it plain SIMD.
        let mut lane_distance = [RAY_RANGE; LANES];
        let mut lane_index = [usize::MAX; LANES];
        for (chunk, [x0, z0, x1, z1]) in self.obstacle_lanes.iter().enumerate() {
            for lane in 0..LANES {
                let (tx1, tx2) = ((x0[lane] - ox) * inv_x, (x1[lane] - ox) * inv_x);
                let (tz1, tz2) = ((z0[lane] - oz) * inv_z, (z1[lane] - oz) * inv_z);
                let (x_near, x_far) = if tx1 < tx2 { (tx1, tx2) } else { (tx2, tx1) };
                let (z_near, z_far) = if tz1 < tz2 { (tz1, tz2) } else { (tz2, tz1) };
                let enter = if x_near > z_near { x_near } else { z_near };
                let enter = if enter > 0.0 { enter } else { 0.0 };
                let exit = if x_far < z_far { x_far } else { z_far };
                let index = chunk * LANES + lane;
                let closer = exit >= enter && enter < lane_distance[lane] && index != skip_index;
                lane_distance[lane] = if closer { enter } else { lane_distance[lane] };
                lane_index[lane] = if closer { index } else { lane_index[lane] };
            }
        }
        let mut best_distance = RAY_RANGE;
        let mut best_index = usize::MAX;
        for lane in 0..LANES {
            // Ties go to the lower index, as a plain scan would.
            if lane_distance[lane] < best_distance
                || (lane_distance[lane] == best_distance && lane_index[lane] < best_index)
            {
                best_distance = lane_distance[lane];
                best_index = lane_index[lane];
            }
        }
        let hit = match best_index {
            usize::MAX => Hit::Nothing,
            i if i >= self.first_furniture => Hit::Furniture(i - self.first_furniture),
            _ => Hit::Wall,
        };
        (best_distance, hit)
    }

    /// Casts one ray from the agent's centre along (dx, dz). Objects resting on the furniture
    /// a ray stops at are reported instead of it: the sensor sees over table tops.
    pub fn cast(&self, dx: f32, dz: f32) -> RayHit {
        let (ox, oz) = (self.pose.x, self.pose.z);
        let (solid_distance, solid) = self.cast_solid(ox, oz, dx, dz, None);
        let (inv_x, inv_z) = (1.0 / dx, 1.0 / dz);
        let mut best = RayHit { distance: solid_distance, hit: solid };
        let mut best_object = f32::INFINITY;
        for (i, object) in self.objects.iter().enumerate() {
            let visible_through = match object.place {
                ObjectPlace::Held => continue,
                ObjectPlace::OnFurniture(f) => solid == Hit::Furniture(f),
                ObjectPlace::Floor => false,
            };
            if let Some(t) = ray_rect(ox, oz, inv_x, inv_z, &object.square())
                && t < best_object
                && (t < solid_distance || visible_through)
                && t < RAY_RANGE
            {
                best_object = t;
                best = RayHit { distance: t, hit: Hit::Object(i) };
            }
        }
        best
    }

    /// The 32 egocentric rays, left (+90°) to right (−90°).
    pub fn cast_rays(&self) -> [RayHit; RAY_COUNT] {
        let directions = &self.ray_directions[self.pose.heading as usize];
        std::array::from_fn(|i| self.cast(directions[i].0, directions[i].1))
    }

    /// The semantic class of a ray's hit.
    pub fn class_of(&self, hit: Hit) -> usize {
        match hit {
            Hit::Nothing => SemanticClass::NOTHING,
            Hit::Wall => SemanticClass::WALL,
            Hit::Furniture(i) => SemanticClass::furniture(self.plan.file.furniture[i].kind),
            Hit::Object(i) => SemanticClass::object(self.objects[i].kind),
        }
    }

    /// Whether object `index` is in front within reach and not hidden behind a wall or
    /// other furniture (its own receptacle does not hide it).
    pub fn is_reachable(&self, index: usize) -> bool {
        let object = &self.objects[index];
        if object.place == ObjectPlace::Held {
            return false;
        }
        let (ox, oz) = (object.x - self.pose.x, object.z - self.pose.z);
        let distance = ox.hypot(oz);
        if distance > REACH {
            return false;
        }
        if distance < 1e-4 {
            return true;
        }
        let (fx, fz) = self.pose.forward();
        let cosine = (ox * fx + oz * fz) / distance;
        if cosine < FRONT_HALF_ANGLE.cos() - 1e-5 {
            return false;
        }
        let (dx, dz) = (ox / distance, oz / distance);
        let skip = match object.place {
            ObjectPlace::OnFurniture(f) => Some(f),
            _ => None,
        };
        let (solid_distance, _) = self.cast_solid(self.pose.x, self.pose.z, dx, dz, skip);
        let entry = ray_rect(self.pose.x, self.pose.z, 1.0 / dx, 1.0 / dz, &object.square()).unwrap_or(0.0);
        entry <= solid_distance
    }

    /// The nearest object of `kind` that is not held and, with `skip_on`, not resting on that
    /// piece of furniture (straight-line distance from the agent).
    pub fn nearest_object(&self, kind: ObjectKind, skip_on: Option<usize>) -> Option<usize> {
        (0..self.objects.len())
            .filter(|&i| {
                let object = &self.objects[i];
                object.kind == kind
                    && object.place != ObjectPlace::Held
                    && skip_on.is_none_or(|f| object.place != ObjectPlace::OnFurniture(f))
            })
            .min_by(|&a, &b| self.distance_to(a).total_cmp(&self.distance_to(b)))
    }

    /// Where `action` would leave the agent from `pose` (moves slide as `act`'s do; Pick, Place
    /// and Stop leave it where it is), without acting: what planners look ahead with.
    pub fn pose_after(&self, pose: Pose, action: Action) -> Pose {
        match action {
            Action::MoveForward => {
                let (x, z, _) = self.forward_end(pose, MOVE_DISTANCE);
                Pose { x, z, ..pose }
            }
            Action::TurnLeft => Pose { heading: (pose.heading + 1) % HEADINGS, ..pose },
            Action::TurnRight => Pose { heading: (pose.heading + HEADINGS - 1) % HEADINGS, ..pose },
            Action::Pick | Action::Place | Action::Stop => pose,
        }
    }

    /// The nearest reachable object, if any.
    pub fn nearest_reachable(&self, kind: Option<ObjectKind>) -> Option<usize> {
        (0..self.objects.len())
            .filter(|&i| kind.is_none_or(|k| self.objects[i].kind == k) && self.is_reachable(i))
            .min_by(|&a, &b| self.distance_to(a).total_cmp(&self.distance_to(b)))
    }

    fn distance_to(&self, index: usize) -> f32 {
        (self.objects[index].x - self.pose.x).hypot(self.objects[index].z - self.pose.z)
    }

    fn pick(&mut self) -> Outcome {
        if self.held.is_some() {
            return Outcome::Failed;
        }
        match self.nearest_reachable(None) {
            Some(index) => {
                self.objects[index].place = ObjectPlace::Held;
                self.held = Some(index);
                Outcome::Picked(index)
            }
            None => Outcome::Failed,
        }
    }

    /// The receptacle `Place` would put an object on now: straight ahead, its edge within
    /// reach (whether or not something is held).
    pub fn place_target(&self) -> Option<usize> {
        let (dx, dz) = self.pose.forward();
        let (distance, hit) = self.cast_solid(self.pose.x, self.pose.z, dx, dz, None);
        match hit {
            Hit::Furniture(furniture) if self.plan.file.furniture[furniture].receptacle && distance <= REACH => {
                Some(furniture)
            }
            _ => None,
        }
    }

    /// What the solid ray straight ahead meets (walls and furniture, not objects), and how far.
    pub fn solid_ahead(&self) -> (f32, Hit) {
        let (dx, dz) = self.pose.forward();
        self.cast_solid(self.pose.x, self.pose.z, dx, dz, None)
    }

    /// Puts the held object on the receptacle straight ahead, if its edge is within reach;
    /// the object lands a little past the edge, kept inside the top.
    fn place(&mut self) -> Outcome {
        let Some(object) = self.held else { return Outcome::Failed };
        let (dx, dz) = self.pose.forward();
        let (distance, hit) = self.cast_solid(self.pose.x, self.pose.z, dx, dz, None);
        let Hit::Furniture(furniture) = hit else { return Outcome::Failed };
        let piece = &self.plan.file.furniture[furniture];
        if !piece.receptacle || distance > REACH {
            return Outcome::Failed;
        }
        let top = piece.rect.inflated(-(OBJECT_SIZE / 2.0 + 0.02));
        let landing = distance + 0.15;
        let x = (self.pose.x + dx * landing).clamp(top.min.0, top.max.0.max(top.min.0));
        let z = (self.pose.z + dz * landing).clamp(top.min.1, top.max.1.max(top.min.1));
        self.objects[object] = Object { x, z, place: ObjectPlace::OnFurniture(furniture), ..self.objects[object] };
        self.held = None;
        Outcome::Placed { object, furniture }
    }
}

/// Slab test: the distance at which a ray from (ox, oz) with reciprocal direction (inv_x,
/// inv_z) enters `rect` (0 when it starts inside), or None when it misses.
fn ray_rect(ox: f32, oz: f32, inv_x: f32, inv_z: f32, rect: &Rect) -> Option<f32> {
    let (tx1, tx2) = ((rect.min.0 - ox) * inv_x, (rect.max.0 - ox) * inv_x);
    let (tz1, tz2) = ((rect.min.1 - oz) * inv_z, (rect.max.1 - oz) * inv_z);
    let enter = tx1.min(tx2).max(tz1.min(tz2));
    let exit = tx1.max(tx2).min(tz1.max(tz2));
    (exit >= enter.max(0.0)).then_some(enter.max(0.0))
}
