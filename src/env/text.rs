//! Plain-English descriptions of a grid state for the LLM teacher. The text is coarse and
//! deterministic on purpose: it is the teacher's cache key, so equal situations must read alike.

use std::collections::{BTreeMap, BTreeSet};

use super::grid::FogOfWar;
use super::grid::object::Cell;
use super::grid::world::{DIR_TO_VEC, GridWorld, Pos};

/// Distance buckets, in steps (Manhattan).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Distance {
    Adjacent,
    Near,
    Far,
}

impl Distance {
    fn of(steps: i32) -> Distance {
        match steps {
            ..=1 => Distance::Adjacent,
            2..=3 => Distance::Near,
            _ => Distance::Far,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Distance::Adjacent => "right next to you",
            Distance::Near => "near",
            Distance::Far => "far",
        }
    }
}

/// Egocentric bearing buckets relative to where the agent faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bearing {
    Ahead,
    AheadLeft,
    AheadRight,
    Left,
    Right,
    BehindLeft,
    BehindRight,
    Behind,
}

impl Bearing {
    /// `forward` and `right` are the offset's components along the agent's heading and its right.
    fn of(forward: i32, right: i32) -> Bearing {
        let (f, r) = (forward.abs(), right.abs());
        if r * 2 <= f {
            if forward > 0 { Bearing::Ahead } else { Bearing::Behind }
        } else if f * 2 <= r {
            if right > 0 { Bearing::Right } else { Bearing::Left }
        } else {
            match (forward > 0, right > 0) {
                (true, true) => Bearing::AheadRight,
                (true, false) => Bearing::AheadLeft,
                (false, true) => Bearing::BehindRight,
                (false, false) => Bearing::BehindLeft,
            }
        }
    }

    fn words(self) -> &'static str {
        match self {
            Bearing::Ahead => "ahead",
            Bearing::AheadLeft => "ahead on the left",
            Bearing::AheadRight => "ahead on the right",
            Bearing::Left => "on the left",
            Bearing::Right => "on the right",
            Bearing::BehindLeft => "behind on the left",
            Bearing::BehindRight => "behind on the right",
            Bearing::Behind => "behind",
        }
    }
}

/// Remembered objects alike in kind, color, state and coarse place relative to the agent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeenObject {
    /// Sort key first: object type index, then color, so the listing order is stable.
    pub type_index: u8,
    pub color_index: u8,
    pub phrase: String,
    pub distance: Distance,
    pub bearing: Bearing,
    /// How many such objects share this description.
    pub count: usize,
}

/// The objects worth telling the teacher about (keys, balls, boxes, doors, goals, lava) that
/// the agent has seen this episode (all of them when `seen` is `None`).
pub fn seen_objects(world: &GridWorld, seen: Option<&FogOfWar>) -> Vec<SeenObject> {
    let (dx, dy) = DIR_TO_VEC[(world.agent_dir & 3) as usize];
    let (rx, ry) = (-dy, dx);
    let visible_now: BTreeSet<Pos> =
        if seen.is_none() { BTreeSet::new() } else { world.visible_positions().into_iter().collect() };
    let mut out: BTreeMap<SeenObject, usize> = BTreeMap::new();
    for x in 0..world.width() as i32 {
        for y in 0..world.height() as i32 {
            let p = Pos::new(x, y);
            let cell = world.get(p);
            if matches!(cell, Cell::Empty | Cell::Wall(_) | Cell::Floor(_)) || p == world.agent_pos {
                continue;
            }
            if seen.is_some_and(|fog| !fog.is_seen(p) && !visible_now.contains(&p)) {
                continue;
            }
            let v = (p.x - world.agent_pos.x, p.y - world.agent_pos.y);
            let forward = v.0 * dx + v.1 * dy;
            let right = v.0 * rx + v.1 * ry;
            let [type_index, color_index, _] = cell.encode();
            let key = SeenObject {
                type_index,
                color_index,
                phrase: noun(cell),
                distance: Distance::of(p.manhattan(world.agent_pos)),
                bearing: Bearing::of(forward, right),
                count: 0,
            };
            *out.entry(key).or_default() += 1;
        }
    }
    out.into_iter().map(|(object, count)| SeenObject { count, ..object }).collect()
}

/// "a yellow key", "2 yellow keys", "3 red boxes", "lava", "the green goal".
fn counted(noun: &str, count: usize) -> String {
    match noun {
        "lava" => "lava".to_string(),
        "goal" => "the green goal".to_string(),
        _ if count == 1 => {
            let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
            format!("{article} {noun}")
        }
        _ if noun.ends_with("box") => format!("{count} {noun}es"),
        _ => format!("{count} {noun}s"),
    }
}

fn phrase(cell: Cell) -> String {
    counted(&noun(cell), 1)
}

/// The object's noun phrase without article ("locked yellow door", "red box", "lava").
fn noun(cell: Cell) -> String {
    if cell == Cell::Lava { "lava".to_string() } else { cell.describe() }
}

/// How much of the state the teacher's description tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Detail {
    /// LLM4Teach's abstraction: the mission, what is held and which objects have been seen (kind,
    /// color, door state), nothing about where. The options' skills do the navigating, so this is
    /// all the choice of option needs, and a level has a few dozen such situations, which the
    /// teacher's cache soon covers.
    #[default]
    Coarse,
    /// Also what is right in front and each object's distance and bearing bucket (thousands of
    /// situations per level).
    Detailed,
}

/// The description at `detail` (see [`describe`] and [`describe_coarse`]).
pub fn describe_at(detail: Detail, world: &GridWorld, seen: Option<&FogOfWar>) -> String {
    match detail {
        Detail::Coarse => describe_coarse(world, seen),
        Detail::Detailed => describe(world, seen),
    }
}

/// The coarse description: mission, what is held, which objects have been seen.
///
/// ```text
/// Mission: use the key to open the door and then get to the goal.
/// You are carrying nothing.
/// You have seen: a yellow key, a locked yellow door.
/// ```
pub fn describe_coarse(world: &GridWorld, seen: Option<&FogOfWar>) -> String {
    let carrying = if world.carrying.is_empty() { "nothing".to_string() } else { phrase(world.carrying) };
    // Alike objects merge across places: the listing names kinds, not positions.
    let mut kinds: BTreeMap<(u8, u8, String), usize> = BTreeMap::new();
    for object in seen_objects(world, seen) {
        *kinds.entry((object.type_index, object.color_index, object.phrase)).or_default() += object.count;
    }
    let listing = if kinds.is_empty() {
        "nothing of interest yet".to_string()
    } else {
        kinds.iter().map(|((_, _, noun), &count)| counted(noun, count)).collect::<Vec<_>>().join(", ")
    };
    let mission = world.mission.trim_end_matches('.');
    format!("Mission: {mission}.\nYou are carrying {carrying}.\nYou have seen: {listing}.")
}

/// The detailed description: mission, what is held, what is right in front, what has been seen.
///
/// ```text
/// Mission: use the key to open the door and then get to the goal.
/// You are carrying nothing. In front of you is a locked yellow door.
/// You have seen: a yellow key, near, on the left; the green goal, far, ahead.
/// ```
pub fn describe(world: &GridWorld, seen: Option<&FogOfWar>) -> String {
    let carrying = if world.carrying.is_empty() { "nothing".to_string() } else { phrase(world.carrying) };
    let front = match world.get(world.front_pos()) {
        Cell::Empty | Cell::Floor(_) => "nothing".to_string(),
        Cell::Wall(_) => "a wall".to_string(),
        other => phrase(other),
    };
    let objects = seen_objects(world, seen);
    let listing = if objects.is_empty() {
        "nothing of interest yet".to_string()
    } else {
        objects
            .iter()
            .map(|o| format!("{}, {}, {}", counted(&o.phrase, o.count), o.distance.word(), o.bearing.words()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mission = world.mission.trim_end_matches('.');
    format!("Mission: {mission}.\nYou are carrying {carrying}. In front of you is {front}.\nYou have seen: {listing}.")
}

#[cfg(test)]
mod tests {
    use super::super::grid::Level;
    use super::super::grid::object::{Color, DoorState};
    use super::*;

    fn door_key_world() -> GridWorld {
        let mut w = GridWorld::new(8, 8);
        w.wall_rect(0, 0, 8, 8);
        w.vert_wall(4, 0, 8, Cell::WALL);
        w.set(Pos::new(4, 3), Cell::Door { color: Color::Yellow, state: DoorState::Locked });
        w.set(Pos::new(2, 5), Cell::Key(Color::Yellow));
        w.set(Pos::new(6, 6), Cell::Goal);
        w.agent_pos = Pos::new(3, 3);
        w.agent_dir = 0;
        w.mission = "use the key to open the door and then get to the goal".into();
        w
    }

    #[test]
    fn describes_front_cell_carrying_and_seen_objects() {
        let w = door_key_world();
        let fog = FogOfWar::for_world(&w);
        let text = describe(&w, Some(&fog));
        assert!(text.contains("In front of you is a locked yellow door."), "{text}");
        assert!(text.contains("You are carrying nothing."), "{text}");
        assert!(!text.contains("goal,"), "the goal behind the wall is not seen yet: {text}");
        let all = describe(&w, None);
        assert!(all.contains("the green goal, far"), "{all}");
    }

    #[test]
    fn coarse_positions_keep_the_text_stable() {
        let mut w = door_key_world();
        w.agent_pos = Pos::new(2, 1);
        w.agent_dir = 1; // facing down: the key is four rows ahead
        let a = describe(&w, None);
        w.agent_pos = Pos::new(1, 1);
        let b = describe(&w, None);
        assert!(a.contains("a yellow key, far, ahead;"), "{a}");
        assert_eq!(a, b, "a one-cell move that keeps every bucket keeps the text");
    }

    #[test]
    fn same_seed_same_text() {
        let level = Level::DoorKey { size: 8 };
        assert_eq!(describe(&level.generate(3), None), describe(&level.generate(3), None));
    }

    #[test]
    fn alike_objects_are_counted() {
        let mut w = door_key_world();
        w.set(Pos::new(2, 6), Cell::Key(Color::Yellow));
        w.set(Pos::new(1, 5), Cell::boxed(Color::Red, Cell::Empty));
        w.set(Pos::new(1, 6), Cell::boxed(Color::Red, Cell::Empty));
        w.agent_pos = Pos::new(2, 1);
        w.agent_dir = 1;
        let text = describe(&w, None);
        assert!(text.contains("2 yellow keys, far, ahead"), "{text}");
        assert!(text.contains("2 red boxes, far,"), "{text}");
        assert!(text.contains("a locked yellow door"), "{text}");
        assert_eq!(counted("open red door", 1), "an open red door");
    }

    #[test]
    fn coarse_text_names_kinds_not_places() {
        let mut w = door_key_world();
        w.set(Pos::new(2, 6), Cell::Key(Color::Yellow));
        w.agent_pos = Pos::new(2, 1);
        w.agent_dir = 1;
        let text = describe_coarse(&w, None);
        assert_eq!(
            text,
            "Mission: use the key to open the door and then get to the goal.\nYou are carrying nothing.\n\
             You have seen: a locked yellow door, 2 yellow keys, the green goal."
        );
        w.agent_pos = Pos::new(3, 5);
        w.agent_dir = 2;
        assert_eq!(describe_coarse(&w, None), text, "moving and turning keep the coarse text");
        w.carrying = Cell::Key(Color::Yellow);
        w.set(Pos::new(2, 6), Cell::Empty);
        assert!(
            describe_coarse(&w, None)
                .contains("carrying a yellow key.\nYou have seen: a locked yellow door, a yellow key,")
        );
        let fog = FogOfWar::for_world(&w);
        assert!(!describe_coarse(&w, Some(&fog)).contains("green goal"), "unseen objects stay out");
        assert_eq!(describe_at(Detail::Detailed, &w, None), describe(&w, None));
    }

    #[test]
    fn bearings() {
        assert_eq!(Bearing::of(3, 0), Bearing::Ahead);
        assert_eq!(Bearing::of(-2, 0), Bearing::Behind);
        assert_eq!(Bearing::of(0, -2), Bearing::Left);
        assert_eq!(Bearing::of(2, 2), Bearing::AheadRight);
        assert_eq!(Bearing::of(-3, -2), Bearing::BehindLeft);
    }
}
