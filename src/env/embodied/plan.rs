//! Floor plans read from RON: rooms, walls with door openings, furniture (receptacles), object
//! placement rules and tasks, validated into a `FloorPlan` whose errors name the file and problem.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

use super::occupancy::Occupancy;

/// Walls are drawn as segments in the file and become boxes this thick (metres).
pub const WALL_THICKNESS: f32 = 0.1;
/// Small objects are squares this wide for ray casts and placement.
pub const OBJECT_SIZE: f32 = 0.12;
/// Objects keep this far inside a receptacle's edge or a room's obstacles.
const PLACEMENT_MARGIN: f32 = 0.08;
/// Candidate floor spots are laid out on a grid this fine.
const FLOOR_SPOT_SPACING: f32 = 0.1;

/// The longest room or furniture name (bytes): names travel inside teacher options, which are
/// `Copy`, as `PlaceName`s.
pub const MAX_PLACE_NAME: usize = 31;

/// A room's or a piece of furniture's name ("kitchen", "kitchen table"), stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceName {
    len: u8,
    bytes: [u8; MAX_PLACE_NAME],
}

impl PlaceName {
    /// The name, if it fits and is lowercase words (letters, digits, single spaces).
    pub fn new(name: &str) -> Option<PlaceName> {
        let words_ok = !name.is_empty()
            && name
                .split(' ')
                .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        if !words_ok || name.len() > MAX_PLACE_NAME {
            return None;
        }
        let mut bytes = [0; MAX_PLACE_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(PlaceName { len: name.len() as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        // Built from a `&str` of ASCII words only.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

impl std::fmt::Debug for PlaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::fmt::Display for PlaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for PlaceName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PlaceName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PlaceName, D::Error> {
        let name = String::deserialize(deserializer)?;
        PlaceName::new(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{name:?} is not a place name (lowercase words, {MAX_PLACE_NAME} bytes at most)"
            ))
        })
    }
}

/// What a piece of furniture is; the semantic class rays report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FurnitureKind {
    Table,
    Counter,
    Sofa,
    Shelf,
    Bed,
    Desk,
    Cabinet,
}

impl FurnitureKind {
    pub const ALL: [FurnitureKind; 7] = [
        FurnitureKind::Table,
        FurnitureKind::Counter,
        FurnitureKind::Sofa,
        FurnitureKind::Shelf,
        FurnitureKind::Bed,
        FurnitureKind::Desk,
        FurnitureKind::Cabinet,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a small object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
pub enum ObjectKind {
    Apple,
    Mug,
    Book,
    Bowl,
    Remote,
    Laptop,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::Apple,
        ObjectKind::Mug,
        ObjectKind::Book,
        ObjectKind::Bowl,
        ObjectKind::Remote,
        ObjectKind::Laptop,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The name in teacher text and options ("apple").
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Apple => "apple",
            ObjectKind::Mug => "mug",
            ObjectKind::Book => "book",
            ObjectKind::Bowl => "bowl",
            ObjectKind::Remote => "remote",
            ObjectKind::Laptop => "laptop",
        }
    }

    /// Reads `name` back.
    pub fn from_name(name: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An axis-aligned rectangle on the floor, in metres: x from `min.0` to `max.0`, z likewise.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rect {
    pub min: (f32, f32),
    pub max: (f32, f32),
}

impl Rect {
    pub fn new(min_x: f32, min_z: f32, max_x: f32, max_z: f32) -> Rect {
        Rect { min: (min_x, min_z), max: (max_x, max_z) }
    }

    pub fn width(&self) -> f32 {
        self.max.0 - self.min.0
    }

    pub fn depth(&self) -> f32 {
        self.max.1 - self.min.1
    }

    pub fn contains(&self, x: f32, z: f32) -> bool {
        x >= self.min.0 && x <= self.max.0 && z >= self.min.1 && z <= self.max.1
    }

    /// True when the two share area (touching edges do not count).
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.min.0 < other.max.0 && other.min.0 < self.max.0 && self.min.1 < other.max.1 && other.min.1 < self.max.1
    }

    /// The rectangle grown by `margin` on every side (shrunk when negative).
    pub fn inflated(&self, margin: f32) -> Rect {
        Rect::new(self.min.0 - margin, self.min.1 - margin, self.max.0 + margin, self.max.1 + margin)
    }

    /// Squared distance from a point to the rectangle (0 inside).
    pub fn distance_squared(&self, x: f32, z: f32) -> f32 {
        let dx = (self.min.0 - x).max(0.0).max(x - self.max.0);
        let dz = (self.min.1 - z).max(0.0).max(z - self.max.1);
        dx * dx + dz * dz
    }

    fn is_finite_and_positive(&self) -> bool {
        [self.min.0, self.min.1, self.max.0, self.max.1].iter().all(|v| v.is_finite())
            && self.width() > 0.0
            && self.depth() > 0.0
    }
}

/// A named room.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Room {
    pub name: String,
    pub rect: Rect,
}

/// A wall drawn as an axis-aligned segment from `from` to `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wall {
    pub from: (f32, f32),
    pub to: (f32, f32),
}

/// A door opening of `width` metres centred at `at`, which must lie on a wall.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Door {
    pub at: (f32, f32),
    pub width: f32,
}

/// A named piece of furniture: blocks movement and rays; objects may rest on receptacles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Furniture {
    pub name: String,
    pub kind: FurnitureKind,
    pub rect: Rect,
    pub height: f32,
    #[serde(default = "default_true")]
    pub receptacle: bool,
}

fn default_true() -> bool {
    true
}

/// Where an object may be put at reset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum Support {
    /// On the named receptacle.
    Furniture(String),
    /// On the free floor of the named room.
    Floor(String),
}

/// One small object and where it may start; each reset picks one support uniformly.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRule {
    pub kind: ObjectKind,
    pub on: Vec<Support>,
}

/// The tasks a plan offers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub enum TaskSpec {
    /// Stop within reach of an object of this kind, facing it.
    ObjectNav { object: ObjectKind },
    /// Put an object of this kind on the named receptacle.
    PickPlace { object: ObjectKind, receptacle: String },
}

/// A floor plan file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "FloorPlan")]
pub struct FloorPlanFile {
    pub name: String,
    pub rooms: Vec<Room>,
    pub walls: Vec<Wall>,
    #[serde(default)]
    pub doors: Vec<Door>,
    pub furniture: Vec<Furniture>,
    pub objects: Vec<ObjectRule>,
    /// Rooms the agent may start in; empty means any room.
    #[serde(default)]
    pub start_rooms: Vec<String>,
    pub tasks: Vec<TaskSpec>,
    pub max_steps: u32,
}

/// Why a floor plan could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FloorPlanError {
    #[error("{}: cannot read: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{}:{line}:{col}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, col: usize, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// A validated floor plan with its derived geometry: solid wall pieces (doors cut out) and
/// the free spots where objects and the agent may be placed.
#[derive(Debug, Clone)]
pub struct FloorPlan {
    pub file: FloorPlanFile,
    /// Wall pieces as boxes, door openings removed, plus a closed border around all rooms.
    pub wall_boxes: Vec<Rect>,
    /// For each object rule and each of its supports: candidate centres for the object.
    pub object_spots: Vec<Vec<Vec<(f32, f32)>>>,
    /// For each object rule and each of its supports: the furniture index, if any.
    pub object_support_furniture: Vec<Vec<Option<usize>>>,
    /// Candidate agent start positions (clear of everything by the agent's radius).
    pub start_spots: Vec<(f32, f32)>,
    /// The bounding rectangle of all rooms.
    pub bounds: Rect,
    /// Where the agent's disc fits, on a grid (`occupancy()`).
    occupancy: OnceLock<Occupancy>,
}

/// A room or a piece of furniture, by index into the plan's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    Room(usize),
    Furniture(usize),
}

impl FloorPlan {
    /// Reads, parses and validates a floor plan file.
    pub fn load(path: impl AsRef<Path>) -> Result<FloorPlan, FloorPlanError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|error| FloorPlanError::Read { path: path.to_owned(), error })?;
        FloorPlan::parse(&text, path)
    }

    /// Parses and validates `text`; `path` only names the source in errors.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<FloorPlan, FloorPlanError> {
        let path = path.as_ref();
        let file: FloorPlanFile = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text.strip_prefix('\u{feff}').unwrap_or(text))
            .map_err(|err| FloorPlanError::Parse {
                path: path.to_owned(),
                line: err.span.start.line,
                col: err.span.start.col,
                message: err.code.to_string(),
            })?;
        FloorPlan::from_file(file).map_err(|message| FloorPlanError::Invalid { path: path.to_owned(), message })
    }

    /// Validates a parsed file and derives the geometry.
    pub fn from_file(file: FloorPlanFile) -> Result<FloorPlan, String> {
        if file.rooms.is_empty() {
            return Err("the plan has no rooms".into());
        }
        if file.max_steps == 0 {
            return Err("max_steps must be at least 1".into());
        }
        // Rooms and furniture are advised by name ("go to the kitchen table"): each name must
        // be a `PlaceName` and name one place only.
        let place_names: Vec<&str> = file
            .rooms
            .iter()
            .map(|room| room.name.as_str())
            .chain(file.furniture.iter().map(|piece| piece.name.as_str()))
            .collect();
        for (i, name) in place_names.iter().enumerate() {
            if PlaceName::new(name).is_none() {
                return Err(format!("the name `{name}` must be lowercase words of {MAX_PLACE_NAME} bytes at most"));
            }
            if place_names[..i].contains(name) {
                return Err(format!("the name `{name}` is used twice (rooms and furniture share one set of names)"));
            }
        }
        for (i, room) in file.rooms.iter().enumerate() {
            if !room.rect.is_finite_and_positive() {
                return Err(format!("room `{}` has an empty or inverted rect", room.name));
            }
            if let Some(other) = file.rooms[..i].iter().find(|other| other.name == room.name) {
                return Err(format!("room name `{}` is used twice", other.name));
            }
            if let Some(other) = file.rooms[..i].iter().find(|other| other.rect.overlaps(&room.rect)) {
                return Err(format!("rooms `{}` and `{}` overlap", other.name, room.name));
            }
        }
        let bounds = file.rooms.iter().skip(1).fold(file.rooms[0].rect, |acc, room| {
            Rect::new(
                acc.min.0.min(room.rect.min.0),
                acc.min.1.min(room.rect.min.1),
                acc.max.0.max(room.rect.max.0),
                acc.max.1.max(room.rect.max.1),
            )
        });
        for (i, wall) in file.walls.iter().enumerate() {
            let finite = [wall.from.0, wall.from.1, wall.to.0, wall.to.1].iter().all(|v| v.is_finite());
            let axis_aligned = wall.from.0 == wall.to.0 || wall.from.1 == wall.to.1;
            if !finite || !axis_aligned || wall.from == wall.to {
                return Err(format!(
                    "wall {} from {:?} to {:?} must be a non-empty axis-aligned segment",
                    i + 1,
                    wall.from,
                    wall.to
                ));
            }
        }
        // Each door must sit on exactly one wall and fit inside it.
        let mut openings: Vec<Vec<(f32, f32)>> = vec![Vec::new(); file.walls.len()];
        for door in &file.doors {
            if !(door.width.is_finite() && door.width > 0.0) {
                return Err(format!("door at {:?} has width {}; it must be positive", door.at, door.width));
            }
            let Some((wall_index, along)) =
                file.walls.iter().enumerate().find_map(|(i, wall)| position_along(wall, door.at).map(|t| (i, t)))
            else {
                return Err(format!("door at {:?} is not on any wall", door.at));
            };
            let length = wall_length(&file.walls[wall_index]);
            let (start, end) = (along - door.width / 2.0, along + door.width / 2.0);
            if start < 0.0 || end > length {
                return Err(format!(
                    "door at {:?} ({} m wide) does not fit inside wall {} ({} m long)",
                    door.at,
                    door.width,
                    wall_index + 1,
                    length
                ));
            }
            if openings[wall_index].iter().any(|&(s, e)| start < e && s < end) {
                return Err(format!("door at {:?} overlaps another door on wall {}", door.at, wall_index + 1));
            }
            openings[wall_index].push((start, end));
        }
        let mut wall_boxes = Vec::new();
        for (wall, wall_openings) in file.walls.iter().zip(&mut openings) {
            wall_openings.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut cursor = 0.0;
            for &(start, end) in wall_openings.iter() {
                if start > cursor {
                    wall_boxes.push(wall_piece(wall, cursor, start));
                }
                cursor = end;
            }
            let length = wall_length(wall);
            if length > cursor {
                wall_boxes.push(wall_piece(wall, cursor, length));
            }
        }
        // A closed border so no plan lets the agent walk off, whatever walls it lists.
        let border = 1.0;
        let (b0, b1) = (bounds.min, bounds.max);
        wall_boxes.push(Rect::new(b0.0 - border, b0.1 - border, b1.0 + border, b0.1));
        wall_boxes.push(Rect::new(b0.0 - border, b1.1, b1.0 + border, b1.1 + border));
        wall_boxes.push(Rect::new(b0.0 - border, b0.1, b0.0, b1.1));
        wall_boxes.push(Rect::new(b1.0, b0.1, b1.0 + border, b1.1));

        for (i, piece) in file.furniture.iter().enumerate() {
            if !piece.rect.is_finite_and_positive() {
                return Err(format!("furniture `{}` has an empty or inverted rect", piece.name));
            }
            if !(piece.height.is_finite() && piece.height > 0.0) {
                return Err(format!("furniture `{}` has height {}; it must be positive", piece.name, piece.height));
            }
            if file.furniture[..i].iter().any(|other| other.name == piece.name) {
                return Err(format!("furniture name `{}` is used twice", piece.name));
            }
            if let Some(other) = file.furniture[..i].iter().find(|other| other.rect.overlaps(&piece.rect)) {
                return Err(format!("furniture `{}` and `{}` overlap", other.name, piece.name));
            }
            let (cx, cz) = center(&piece.rect);
            if !file.rooms.iter().any(|room| room.rect.contains(cx, cz)) {
                return Err(format!("furniture `{}` is not inside any room", piece.name));
            }
        }
        let receptacle_index = |name: &str| -> Result<usize, String> {
            match file.furniture.iter().position(|piece| piece.name == name) {
                Some(index) if file.furniture[index].receptacle => Ok(index),
                Some(_) => Err(format!("`{name}` is furniture but not a receptacle")),
                None => Err(format!("unknown receptacle `{name}`; known: {}", names(&file.furniture))),
            }
        };
        let room_rect = |name: &str| -> Result<Rect, String> {
            file.rooms.iter().find(|room| room.name == name).map(|room| room.rect).ok_or_else(|| {
                let known: Vec<&str> = file.rooms.iter().map(|room| room.name.as_str()).collect();
                format!("unknown room `{name}`; known: {}", known.join(", "))
            })
        };
        let mut blockers: Vec<Rect> = wall_boxes.clone();
        blockers.extend(file.furniture.iter().map(|piece| piece.rect));
        let mut object_spots = Vec::new();
        let mut object_support_furniture = Vec::new();
        for rule in &file.objects {
            if rule.on.is_empty() {
                return Err(format!("the {:?} rule names no place (`on` is empty)", rule.kind));
            }
            let mut spots = Vec::new();
            let mut supports = Vec::new();
            for support in &rule.on {
                match support {
                    Support::Furniture(name) => {
                        let index = receptacle_index(name).map_err(|e| format!("{:?} rule: {e}", rule.kind))?;
                        let area = file.furniture[index].rect.inflated(-(PLACEMENT_MARGIN + OBJECT_SIZE / 2.0));
                        let candidates = grid_spots(&area, |_, _| true);
                        if candidates.is_empty() {
                            return Err(format!("{:?} rule: receptacle `{name}` is too small for objects", rule.kind));
                        }
                        spots.push(candidates);
                        supports.push(Some(index));
                    }
                    Support::Floor(room) => {
                        let area = room_rect(room).map_err(|e| format!("{:?} rule: {e}", rule.kind))?;
                        let clearance = PLACEMENT_MARGIN + OBJECT_SIZE / 2.0;
                        let candidates = grid_spots(&area.inflated(-clearance), |x, z| {
                            blockers.iter().all(|b| b.distance_squared(x, z) > clearance * clearance)
                        });
                        if candidates.is_empty() {
                            return Err(format!("{:?} rule: room `{room}` has no free floor", rule.kind));
                        }
                        spots.push(candidates);
                        supports.push(None);
                    }
                }
            }
            object_spots.push(spots);
            object_support_furniture.push(supports);
        }
        let start_areas: Vec<Rect> = if file.start_rooms.is_empty() {
            file.rooms.iter().map(|room| room.rect).collect()
        } else {
            file.start_rooms.iter().map(|name| room_rect(name)).collect::<Result<_, _>>()?
        };
        let clearance = super::world::AGENT_RADIUS + 0.05;
        let start_spots: Vec<(f32, f32)> = start_areas
            .iter()
            .flat_map(|area| {
                grid_spots(&area.inflated(-clearance), |x, z| {
                    blockers.iter().all(|b| b.distance_squared(x, z) > clearance * clearance)
                })
            })
            .collect();
        if start_spots.is_empty() {
            return Err("no free floor to start the agent on".into());
        }
        if file.tasks.is_empty() {
            return Err("the plan has no tasks".into());
        }
        for task in &file.tasks {
            let object = match task {
                TaskSpec::ObjectNav { object } => object,
                TaskSpec::PickPlace { object, receptacle } => {
                    let index = receptacle_index(receptacle).map_err(|e| format!("PickPlace task: {e}"))?;
                    // The object must be able to start somewhere else, or the task is done at reset.
                    let stuck = file.objects.iter().zip(&object_support_furniture).any(|(rule, supports)| {
                        rule.kind == *object && supports.iter().all(|support| *support == Some(index))
                    });
                    if stuck {
                        return Err(format!(
                            "PickPlace task: a {object:?} can start only on `{receptacle}`, so the task would be done at reset"
                        ));
                    }
                    object
                }
            };
            if !file.objects.iter().any(|rule| rule.kind == *object) {
                return Err(format!("task names {object:?}, but no object rule places one"));
            }
        }
        Ok(FloorPlan {
            file,
            wall_boxes,
            object_spots,
            object_support_furniture,
            start_spots,
            bounds,
            occupancy: OnceLock::new(),
        })
    }

    /// The name of the room containing the point, if any.
    pub fn room_at(&self, x: f32, z: f32) -> Option<&str> {
        self.room_index_at(x, z).map(|index| self.file.rooms[index].name.as_str())
    }

    /// The index of the room containing the point, if any.
    pub fn room_index_at(&self, x: f32, z: f32) -> Option<usize> {
        self.file.rooms.iter().position(|room| room.rect.contains(x, z))
    }

    /// The room or piece of furniture called `name`.
    pub fn place(&self, name: &str) -> Option<Place> {
        if let Some(index) = self.file.rooms.iter().position(|room| room.name == name) {
            return Some(Place::Room(index));
        }
        self.file.furniture.iter().position(|piece| piece.name == name).map(Place::Furniture)
    }

    /// The occupancy grid skills plan on, built on first use.
    pub fn occupancy(&self) -> &Occupancy {
        self.occupancy.get_or_init(|| Occupancy::of(self))
    }
}

fn names(furniture: &[Furniture]) -> String {
    furniture.iter().filter(|piece| piece.receptacle).map(|piece| piece.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn center(rect: &Rect) -> (f32, f32) {
    ((rect.min.0 + rect.max.0) / 2.0, (rect.min.1 + rect.max.1) / 2.0)
}

fn wall_length(wall: &Wall) -> f32 {
    (wall.to.0 - wall.from.0).abs() + (wall.to.1 - wall.from.1).abs()
}

/// How far along the wall the point lies, if it lies on it (within a centimetre).
fn position_along(wall: &Wall, point: (f32, f32)) -> Option<f32> {
    const TOLERANCE: f32 = 0.01;
    let (lo_x, hi_x) = (wall.from.0.min(wall.to.0), wall.from.0.max(wall.to.0));
    let (lo_z, hi_z) = (wall.from.1.min(wall.to.1), wall.from.1.max(wall.to.1));
    let inside = point.0 >= lo_x - TOLERANCE
        && point.0 <= hi_x + TOLERANCE
        && point.1 >= lo_z - TOLERANCE
        && point.1 <= hi_z + TOLERANCE;
    inside.then(|| (point.0 - wall.from.0).abs() + (point.1 - wall.from.1).abs())
}

/// The box of the wall between `start` and `end` metres from its `from` end.
fn wall_piece(wall: &Wall, start: f32, end: f32) -> Rect {
    let half = WALL_THICKNESS / 2.0;
    // Not f32::signum, which is 1 for 0: the wall runs along one axis only.
    let sign = |delta: f32| {
        if delta > 0.0 {
            1.0
        } else if delta < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let (dx, dz) = (sign(wall.to.0 - wall.from.0), sign(wall.to.1 - wall.from.1));
    let a = (wall.from.0 + dx * start, wall.from.1 + dz * start);
    let b = (wall.from.0 + dx * end, wall.from.1 + dz * end);
    Rect::new(a.0.min(b.0) - half, a.1.min(b.1) - half, a.0.max(b.0) + half, a.1.max(b.1) + half)
}

/// Points on a regular grid inside `area` that pass `keep`.
fn grid_spots(area: &Rect, keep: impl Fn(f32, f32) -> bool) -> Vec<(f32, f32)> {
    let mut spots = Vec::new();
    if area.width() < 0.0 || area.depth() < 0.0 {
        return spots;
    }
    let columns = (area.width() / FLOOR_SPOT_SPACING) as usize + 1;
    let rows = (area.depth() / FLOOR_SPOT_SPACING) as usize + 1;
    for row in 0..rows {
        for column in 0..columns {
            let x = area.min.0 + column as f32 * FLOOR_SPOT_SPACING;
            let z = area.min.1 + row as f32 * FLOOR_SPOT_SPACING;
            if keep(x, z) {
                spots.push((x, z));
            }
        }
    }
    spots
}
