//! What counts as success in a level beyond MiniGrid's goal and lava rules: picking up a
//! target (KeyCorridor, UnlockPickup), opening a door (LLM4Teach), BabyAI instructions.

use super::object::{Cell, Color, ObjectType};
use super::world::{Action, DIR_TO_VEC, GridWorld, Pos};

/// What a step did to objects, so tasks can track object identity as MiniGrid does with
/// Python object references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepEvent {
    None,
    PickedUp(Pos),
    Dropped(Pos),
    DoorToggled { pos: Pos, opened: bool, was_locked: bool },
    BoxOpened(Pos),
}

/// A set of specific objects (by identity), followed as they are picked up and dropped.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ObjectSet {
    pub on_grid: Vec<Pos>,
    pub carried: bool,
}

impl ObjectSet {
    pub fn contains_pos(&self, p: Pos) -> bool {
        self.on_grid.contains(&p)
    }

    pub fn is_empty(&self) -> bool {
        self.on_grid.is_empty() && !self.carried
    }

    fn follow(&mut self, event: StepEvent) {
        match event {
            StepEvent::PickedUp(p) => {
                if let Some(i) = self.on_grid.iter().position(|&q| q == p) {
                    self.on_grid.remove(i);
                    self.carried = true;
                }
            }
            StepEvent::Dropped(p) => {
                if self.carried {
                    self.carried = false;
                    self.on_grid.push(p);
                }
            }
            // The box is gone; what was inside is a different object.
            StepEvent::BoxOpened(p) => self.on_grid.retain(|&q| q != p),
            StepEvent::DoorToggled { .. } | StepEvent::None => {}
        }
    }
}

/// BabyAI's location words, relative to the agent's start pose and room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Left,
    Right,
    Front,
    Behind,
}

/// BabyAI's rooms laid out on a regular grid (`RoomGrid`): room `(i, j)` spans
/// `[i*(size-1), i*(size-1)+size)` in x, likewise in y.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomLayout {
    pub room_size: i32,
    pub num_rows: i32,
    pub num_cols: i32,
}

impl RoomLayout {
    /// The (top-left, size) of the room holding `p` (`RoomGrid.room_from_pos`).
    pub fn room_of(&self, p: Pos) -> (Pos, i32) {
        let step = self.room_size - 1;
        let i = (p.x / step).min(self.num_cols - 1);
        let j = (p.y / step).min(self.num_rows - 1);
        (Pos::new(i * step, j * step), self.room_size)
    }

    fn room_contains(&self, room: (Pos, i32), p: Pos) -> bool {
        let (top, size) = room;
        p.x >= top.x && p.y >= top.y && p.x < top.x + size && p.y < top.y + size
    }
}

/// BabyAI's `ObjDesc`: an object type, color and location, any of which may be unspecified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDescription {
    pub object_type: Option<ObjectType>,
    pub color: Option<Color>,
    pub location: Option<Location>,
}

impl ObjectDescription {
    pub fn new(object_type: Option<ObjectType>, color: Option<Color>, location: Option<Location>) -> Self {
        ObjectDescription { object_type, color, location }
    }

    /// `find_matching_objs(use_location=True)` at the agent's current pose.
    pub fn matching(&self, world: &GridWorld, rooms: &RoomLayout) -> ObjectSet {
        let agent_room = rooms.room_of(world.agent_pos);
        let d1 = DIR_TO_VEC[(world.agent_dir & 3) as usize];
        let d2 = (-d1.1, d1.0);
        let on_grid = world.find_all(|_| true);
        let on_grid = on_grid
            .into_iter()
            .filter(|&p| {
                let cell = world.get(p);
                if cell.is_empty() {
                    return false;
                }
                if self.object_type.is_some_and(|t| t != cell.object_type()) {
                    return false;
                }
                if self.color.is_some_and(|c| Some(c) != cell.color()) {
                    return false;
                }
                if let Some(loc) = self.location {
                    if !rooms.room_contains(agent_room, p) {
                        return false;
                    }
                    let v = (p.x - world.agent_pos.x, p.y - world.agent_pos.y);
                    let dot = |a: (i32, i32), b: (i32, i32)| a.0 * b.0 + a.1 * b.1;
                    let ok = match loc {
                        Location::Left => dot(v, d2) < 0,
                        Location::Right => dot(v, d2) > 0,
                        Location::Front => dot(v, d1) > 0,
                        Location::Behind => dot(v, d1) < 0,
                    };
                    if !ok {
                        return false;
                    }
                }
                true
            })
            .collect();
        ObjectSet { on_grid, carried: false }
    }

    /// BabyAI's surface form ("the red ball", "a key on your left") given how many objects match.
    pub fn surface(&self, matches: usize) -> String {
        let mut s = self.object_type.map_or("object", ObjectType::name).to_string();
        if let Some(c) = self.color {
            s = format!("{} {s}", c.name());
        }
        match self.location {
            Some(Location::Front) => s.push_str(" in front of you"),
            Some(Location::Behind) => s.push_str(" behind you"),
            Some(Location::Left) => s.push_str(" on your left"),
            Some(Location::Right) => s.push_str(" on your right"),
            None => {}
        }
        if matches > 1 { format!("a {s}") } else { format!("the {s}") }
    }

    /// Parses a surface form back ("the red ball on your left").
    pub fn parse(text: &str) -> Option<ObjectDescription> {
        let rest = text.strip_prefix("the ").or_else(|| text.strip_prefix("a "))?;
        let (rest, location) = [
            (" on your left", Location::Left),
            (" on your right", Location::Right),
            (" in front of you", Location::Front),
            (" behind you", Location::Behind),
        ]
        .into_iter()
        .find_map(|(suffix, loc)| rest.strip_suffix(suffix).map(|r| (r, Some(loc))))
        .unwrap_or((rest, None));
        let words: Vec<&str> = rest.split(' ').collect();
        let (color, noun) = match words.as_slice() {
            [noun] => (None, *noun),
            [color, noun] => (Some(Color::from_name(color)?), *noun),
            _ => return None,
        };
        let object_type = match noun {
            "object" => None,
            "box" | "ball" | "key" | "door" => ObjectType::from_name(noun),
            _ => return None,
        };
        Some(ObjectDescription { object_type, color, location })
    }
}

/// Next to `target` along a row or column (MiniGrid's GoToDoor/GoToObject test).
fn is_beside(agent: Pos, target: Pos) -> bool {
    (agent.x == target.x && (agent.y - target.y).abs() == 1) || (agent.y == target.y && (agent.x - target.x).abs() == 1)
}

/// A BabyAI action instruction with its verifier state (non-strict, no `done` actions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// Succeeds when an action ends facing a position the description matched.
    /// Positions refresh only after drops, exactly as BabyAI's `update_objs_poss`.
    GoTo { objects: ObjectSet, positions: Vec<Pos> },
    /// Succeeds when a pickup, made empty-handed, leaves a matching object carried.
    Pickup { objects: ObjectSet, was_carrying: bool },
    /// Succeeds when a toggle leaves a matching door in front open.
    Open { objects: ObjectSet },
}

/// Success rules on top of MiniGrid's goal/lava rules.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Task {
    /// Reach the goal (MiniGrid's base rules only).
    #[default]
    Navigate,
    /// MiniGrid's `self.carrying == self.obj` check after a pickup (KeyCorridor, UnlockPickup).
    PickUpTarget {
        target: ObjectSet,
    },
    /// LLM4Teach (and MiniGrid Unlock): a toggle that opens a door pays the success reward
    /// and ends the episode.
    OpenDoor,
    BabyAi(Instruction),
    /// MiniGrid Fetch: holding anything ends the episode, with success only for the target.
    Fetch {
        object_type: ObjectType,
        color: Color,
    },
    /// MiniGrid GoToDoor/GoToObject: `done` ends the episode, with success when the agent is
    /// next to `target`; a toggle ends it without.
    DoneNextTo {
        target: Pos,
    },
    /// MiniGrid RedBlueDoors: open the red door, then the blue one; blue first fails.
    RedThenBlue {
        red: Pos,
        blue: Pos,
    },
    /// MiniGrid PutNear: picking up anything but the object to move fails; a drop while
    /// carrying ends the episode, with success when the object lands next to `target`.
    PutNear {
        object_type: ObjectType,
        color: Color,
        target: Pos,
    },
}

impl Task {
    /// Called after MiniGrid's own step logic; `Some(true)` means success, `Some(false)`
    /// failure, `None` carry on.
    pub(super) fn after_step(&mut self, world: &GridWorld, action: Action, event: StepEvent) -> Option<bool> {
        match self {
            Task::Navigate => None,
            Task::PickUpTarget { target } => {
                target.follow(event);
                (action == Action::Pickup && target.carried).then_some(true)
            }
            Task::OpenDoor => match event {
                StepEvent::DoorToggled { opened: true, .. } => Some(true),
                _ => None,
            },
            Task::Fetch { object_type, color } => {
                let held = world.carrying;
                (!held.is_empty()).then(|| held.object_type() == *object_type && held.color() == Some(*color))
            }
            Task::DoneNextTo { target } => match action {
                Action::Done => Some(is_beside(world.agent_pos, *target)),
                Action::Toggle => Some(false),
                _ => None,
            },
            Task::RedThenBlue { red, blue } => {
                let open_now =
                    |p: Pos| matches!(world.get(p), Cell::Door { state: super::object::DoorState::Open, .. });
                let toggled = |p: Pos| matches!(event, StepEvent::DoorToggled { pos, .. } if pos == p);
                // A toggle flips exactly one door, so the state before follows from the event.
                let open_before = |p: Pos| open_now(p) != toggled(p);
                if open_now(*blue) {
                    Some(open_before(*red))
                } else if open_now(*red) && open_before(*blue) {
                    Some(false)
                } else {
                    None
                }
            }
            Task::PutNear { object_type, color, target } => {
                let held = world.carrying;
                let wrong = !held.is_empty() && (held.object_type() != *object_type || held.color() != Some(*color));
                match (action, event) {
                    (Action::Pickup, _) if wrong => Some(false),
                    (Action::Drop, StepEvent::Dropped(p)) => {
                        Some((p.x - target.x).abs() <= 1 && (p.y - target.y).abs() <= 1)
                    }
                    // A failed drop while carrying still ends the episode, as in MiniGrid.
                    (Action::Drop, _) if !held.is_empty() => Some(false),
                    _ => None,
                }
            }
            Task::BabyAi(instruction) => match instruction {
                Instruction::GoTo { objects, positions } => {
                    objects.follow(event);
                    if action == Action::Drop {
                        positions.clone_from(&objects.on_grid);
                    }
                    let front = world.front_pos();
                    positions.contains(&front).then_some(true)
                }
                Instruction::Pickup { objects, was_carrying } => {
                    objects.follow(event);
                    let before = *was_carrying;
                    *was_carrying = !world.carrying.is_empty();
                    (action == Action::Pickup && !before && objects.carried).then_some(true)
                }
                Instruction::Open { objects } => {
                    objects.follow(event);
                    if action != Action::Toggle {
                        return None;
                    }
                    let front = world.front_pos();
                    let open = matches!(world.get(front), Cell::Door { state: super::object::DoorState::Open, .. });
                    (open && objects.contains_pos(front)).then_some(true)
                }
            },
        }
    }

    /// Builds the BabyAI verifier for a mission string ("go to the red ball", "pick up a key
    /// on your left", "open the door behind you") at the world's current (start) pose.
    pub fn babyai_from_mission(mission: &str, world: &GridWorld, rooms: &RoomLayout) -> Option<Task> {
        let (verb, rest) =
            ["go to ", "pick up ", "open "].into_iter().find_map(|v| mission.strip_prefix(v).map(|r| (v, r)))?;
        let description = ObjectDescription::parse(rest)?;
        let objects = description.matching(world, rooms);
        let instruction = match verb {
            "go to " => Instruction::GoTo { positions: objects.on_grid.clone(), objects },
            "pick up " => Instruction::Pickup { objects, was_carrying: false },
            _ => Instruction::Open { objects },
        };
        Some(Task::BabyAi(instruction))
    }

    /// MiniGrid's pick-up-the-target task for the unique object matching `(type, color)`.
    pub fn pick_up_target(world: &GridWorld, object_type: ObjectType, color: Color) -> Task {
        let on_grid = world.find_all(|c| c.object_type() == object_type && c.color() == Some(color));
        Task::PickUpTarget { target: ObjectSet { on_grid, carried: false } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_round_trip_through_surface_forms() {
        for text in ["the red ball", "a key on your left", "the object behind you", "a grey door in front of you"] {
            let d = ObjectDescription::parse(text).unwrap();
            let n = if text.starts_with("a ") { 2 } else { 1 };
            assert_eq!(d.surface(n), text);
        }
        assert!(ObjectDescription::parse("the red dragon").is_none());
    }

    #[test]
    fn goto_uses_stale_positions_until_a_drop() {
        let mut w = GridWorld::new(6, 6);
        w.wall_rect(0, 0, 6, 6);
        w.max_steps = 50;
        w.agent_pos = Pos::new(1, 1);
        w.agent_dir = 1; // facing down
        w.set(Pos::new(3, 1), Cell::Ball(Color::Red));
        let rooms = RoomLayout { room_size: 6, num_rows: 1, num_cols: 1 };
        w.task = Task::babyai_from_mission("go to the red ball", &w, &rooms).unwrap();
        assert!(!w.step(Action::Right).terminated); // facing left
        assert!(!w.step(Action::Right).terminated); // facing up
        assert!(!w.step(Action::Right).terminated); // facing right: ball is two cells away
        assert!(w.step(Action::Forward).terminated, "facing the ball");
    }

    #[test]
    fn pickup_instruction_needs_empty_hands_before() {
        let mut w = GridWorld::new(6, 6);
        w.wall_rect(0, 0, 6, 6);
        w.max_steps = 50;
        w.agent_pos = Pos::new(1, 1);
        w.set(Pos::new(2, 1), Cell::Key(Color::Blue));
        let rooms = RoomLayout { room_size: 6, num_rows: 1, num_cols: 1 };
        w.task = Task::babyai_from_mission("pick up the blue key", &w, &rooms).unwrap();
        let out = w.step(Action::Pickup);
        assert!(out.terminated && out.reward > 0.0);
    }
}
