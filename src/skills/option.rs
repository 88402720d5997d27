//! The teacher's vocabulary: high-level options ("pick up the yellow key", "explore"), their
//! canonical English phrases, a lenient parser back from LLM text, and the menu for a state.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::Knowledge;
use crate::env::embodied::{ObjectKind, PlaceName};
use crate::env::grid::{Cell, Color, DoorState, GridWorld, Pos};

/// The objects MiniGrid lets the agent carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carryable {
    Key,
    Ball,
    Box,
}

impl Carryable {
    pub const ALL: [Carryable; 3] = [Carryable::Key, Carryable::Ball, Carryable::Box];

    pub fn name(self) -> &'static str {
        match self {
            Carryable::Key => "key",
            Carryable::Ball => "ball",
            Carryable::Box => "box",
        }
    }

    fn from_name(name: &str) -> Option<Carryable> {
        Carryable::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A carryable object of one color ("yellow key"); several on the grid may match it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub kind: Carryable,
    pub color: Color,
}

impl Item {
    pub fn new(kind: Carryable, color: Color) -> Item {
        Item { kind, color }
    }

    /// The item a cell holds, if it holds a carryable object (a box of any contents).
    pub fn of_cell(cell: Cell) -> Option<Item> {
        match cell {
            Cell::Key(color) => Some(Item::new(Carryable::Key, color)),
            Cell::Ball(color) => Some(Item::new(Carryable::Ball, color)),
            Cell::Box { color, .. } => Some(Item::new(Carryable::Box, color)),
            _ => None,
        }
    }

    pub fn matches(self, cell: Cell) -> bool {
        Item::of_cell(cell) == Some(self)
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.color, self.kind.name())
    }
}

/// Something an option can head for: a carryable item, a door of a color, or the goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Target {
    Item(Item),
    Door(Color),
    Goal,
}

impl Target {
    /// The target a cell shows, if it is one (doors in any state).
    pub fn of_cell(cell: Cell) -> Option<Target> {
        match cell {
            Cell::Door { color, .. } => Some(Target::Door(color)),
            Cell::Goal => Some(Target::Goal),
            other => Item::of_cell(other).map(Target::Item),
        }
    }

    pub fn matches(self, cell: Cell) -> bool {
        Target::of_cell(cell) == Some(self)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Item(item) => write!(f, "the {item}"),
            Target::Door(color) => write!(f, "the {color} door"),
            // MiniGrid's goal is always green; the phrase says so, as the missions do.
            Target::Goal => f.write_str("the green goal"),
        }
    }
}

/// One high-level option the teacher can advise; skills turn it into primitive actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum TeacherOption {
    /// Look at unseen places: walk to the nearest spot that reveals something and look.
    Explore,
    /// Stand facing the target (on it, for the goal).
    GoTo(Target),
    /// Walk up to the item and pick it up (dropping what is held first).
    PickUp(Item),
    /// Toggle a door of this color until it is open; a locked one needs its key in hand.
    OpenDoor(Color),
    /// Toggle a box of this color: it opens and leaves its contents in its place.
    OpenBox(Color),
    /// Put down what is held on a free cell that blocks no passage.
    Drop,
    /// Embodied: walk into the named room, or up to the named piece of furniture and face it.
    GoToPlace(PlaceName),
    /// Embodied: stand within reach of an object of this kind, facing it.
    GoToObject(ObjectKind),
    /// Embodied: walk up to an object of this kind and pick it up.
    PickUpObject(ObjectKind),
    /// Embodied: put the held object of this kind on the receptacle in front.
    PlaceObject(ObjectKind),
}

impl TeacherOption {
    /// Every grid option that can be phrased, in a stable order (the grid's full vocabulary;
    /// embodied options name a plan's rooms and furniture, so each plan has its own).
    pub fn vocabulary() -> Vec<TeacherOption> {
        let items = || Carryable::ALL.into_iter().flat_map(|kind| Color::ALL.map(|color| Item::new(kind, color)));
        let mut all = vec![TeacherOption::Explore];
        all.extend(items().map(|item| TeacherOption::GoTo(Target::Item(item))));
        all.extend(Color::ALL.map(|color| TeacherOption::GoTo(Target::Door(color))));
        all.push(TeacherOption::GoTo(Target::Goal));
        all.extend(items().map(TeacherOption::PickUp));
        all.extend(Color::ALL.map(TeacherOption::OpenDoor));
        all.extend(Color::ALL.map(TeacherOption::OpenBox));
        all.push(TeacherOption::Drop);
        all
    }

    /// The canonical English phrase ("pick up the yellow key"); `parse` reads it back.
    pub fn phrase(&self) -> String {
        self.to_string()
    }

    /// Reads an option from text: the canonical phrase, or a loose variant of it (any case,
    /// punctuation, "a"/"the" or no article, "pickup", "unlock"/"toggle" for doors, "reach").
    pub fn parse(text: &str) -> Result<TeacherOption, OptionParseError> {
        let words = normalized_words(text);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        parse_words(&words).or_else(|| parse_embodied(&words)).ok_or_else(|| OptionParseError(text.trim().to_string()))
    }

    /// The first option of `menu` whose canonical phrase occurs in free text (an LLM's answer
    /// that wraps its choice in a sentence); longer phrases win over their own prefixes.
    pub fn find_in(text: &str, menu: &[TeacherOption]) -> Option<TeacherOption> {
        let haystack = format!(" {} ", normalized_words(text).join(" "));
        let mut hits: Vec<(usize, usize, TeacherOption)> = menu
            .iter()
            .filter_map(|&option| {
                let needle = format!(" {} ", option.phrase());
                haystack.find(&needle).map(|at| (at, usize::MAX - needle.len(), option))
            })
            .collect();
        hits.sort();
        hits.first().map(|&(_, _, option)| option)
    }
}

impl fmt::Display for TeacherOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TeacherOption::Explore => f.write_str("explore"),
            TeacherOption::GoTo(target) => write!(f, "go to {target}"),
            TeacherOption::PickUp(item) => write!(f, "pick up the {item}"),
            TeacherOption::OpenDoor(color) => write!(f, "open the {color} door"),
            TeacherOption::OpenBox(color) => write!(f, "open the {color} box"),
            TeacherOption::Drop => f.write_str("drop the carried object"),
            TeacherOption::GoToPlace(place) => write!(f, "go to the {place}"),
            TeacherOption::GoToObject(kind) => write!(f, "go to the {kind}"),
            TeacherOption::PickUpObject(kind) => write!(f, "pick up the {kind}"),
            TeacherOption::PlaceObject(kind) => write!(f, "place the {kind}"),
        }
    }
}

impl FromStr for TeacherOption {
    type Err = OptionParseError;

    fn from_str(text: &str) -> Result<TeacherOption, OptionParseError> {
        TeacherOption::parse(text)
    }
}

/// Text that names no option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an option: {0:?}")]
pub struct OptionParseError(pub String);

/// Lowercase words with punctuation removed.
fn normalized_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_words(words: &[&str]) -> Option<TeacherOption> {
    match words {
        ["explore", ..] => Some(TeacherOption::Explore),
        ["drop", ..] | ["put", "down", ..] => Some(TeacherOption::Drop),
        ["go", "to", rest @ ..] | ["reach", rest @ ..] => parse_target(rest).map(TeacherOption::GoTo),
        ["pick", "up", rest @ ..] | ["pickup", rest @ ..] => match parse_target(rest)? {
            Target::Item(item) => Some(TeacherOption::PickUp(item)),
            _ => None,
        },
        ["open" | "unlock" | "toggle", rest @ ..] => match parse_target(rest)? {
            Target::Door(color) => Some(TeacherOption::OpenDoor(color)),
            Target::Item(Item { kind: Carryable::Box, color }) => Some(TeacherOption::OpenBox(color)),
            _ => None,
        },
        _ => None,
    }
}

/// The embodied phrases: "go to the kitchen table", "go to the apple", "pick up the apple",
/// "place the apple". Any name after "go to" that is no object kind reads as a place; whether
/// the plan has it is the skill's question.
fn parse_embodied(words: &[&str]) -> Option<TeacherOption> {
    let without_article = |rest: &[&str]| match rest {
        ["the" | "a" | "an", rest @ ..] => rest.join(" "),
        rest => rest.join(" "),
    };
    match words {
        ["go", "to", rest @ ..] => {
            let name = without_article(rest);
            // A grid noun the grid parser refused ("the pink key") is no place either.
            let grid_noun = rest
                .last()
                .is_some_and(|&noun| matches!(noun, "door" | "goal") || Carryable::from_name(noun).is_some());
            ObjectKind::from_name(&name)
                .map(TeacherOption::GoToObject)
                .or_else(|| (!grid_noun).then(|| PlaceName::new(&name)).flatten().map(TeacherOption::GoToPlace))
        }
        ["pick", "up", rest @ ..] => ObjectKind::from_name(&without_article(rest)).map(TeacherOption::PickUpObject),
        ["place" | "put", rest @ ..] => ObjectKind::from_name(&without_article(rest)).map(TeacherOption::PlaceObject),
        _ => None,
    }
}

/// "the yellow key", "a red door", "goal", "the green goal".
fn parse_target(words: &[&str]) -> Option<Target> {
    let words = match words {
        ["the" | "a" | "an", rest @ ..] => rest,
        rest => rest,
    };
    match words {
        ["goal"] | ["green", "goal"] => Some(Target::Goal),
        [color, "door"] => Some(Target::Door(Color::from_name(color)?)),
        [color, noun] => Some(Target::Item(Item::new(Carryable::from_name(noun)?, Color::from_name(color)?))),
        _ => None,
    }
}

/// The options that make sense now given only what the agent has seen (LLM4Teach's menu), in
/// a stable order: explore; go to each seen target; pick up a seen item when hands are free;
/// open a seen shut door (a locked one only with its key in hand); open a seen box; drop
/// what is held. It depends only on the seen objects and what is held — what `env::text`
/// describes — not on reachability, so equal descriptions get equal menus.
pub fn available_options(world: &GridWorld, known: &impl Knowledge) -> Vec<TeacherOption> {
    let hands_free = world.carrying.is_empty();
    // A set: each option once, ordered by `TeacherOption`'s derived order.
    let mut menu = BTreeSet::from([TeacherOption::Explore]);
    for y in 0..world.height() as i32 {
        for x in 0..world.width() as i32 {
            let p = Pos::new(x, y);
            if p != world.agent_pos && known.knows(p) {
                menu.extend(options_for_cell(world.get(p), world.carrying));
            }
        }
    }
    if !hands_free {
        menu.insert(TeacherOption::Drop);
    }
    menu.into_iter().collect()
}

/// The menu entries one seen cell contributes.
fn options_for_cell(cell: Cell, carrying: Cell) -> impl Iterator<Item = TeacherOption> {
    let go_to = Target::of_cell(cell).map(TeacherOption::GoTo);
    let pick_up = Item::of_cell(cell).filter(|_| carrying.is_empty()).map(TeacherOption::PickUp);
    let open = match cell {
        Cell::Door { color, state: DoorState::Closed } => Some(TeacherOption::OpenDoor(color)),
        Cell::Door { color, state: DoorState::Locked } if carrying == Cell::Key(color) => {
            Some(TeacherOption::OpenDoor(color))
        }
        Cell::Box { color, .. } => Some(TeacherOption::OpenBox(color)),
        _ => None,
    };
    [go_to, pick_up, open].into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::grid::FogOfWar;
    use crate::skills::TrueState;
    use crate::skills::test_worlds::{fog_where, world_from};

    fn yellow_key() -> Item {
        Item::new(Carryable::Key, Color::Yellow)
    }

    #[test]
    fn canonical_phrases() {
        assert_eq!(TeacherOption::PickUp(yellow_key()).phrase(), "pick up the yellow key");
        assert_eq!(TeacherOption::OpenDoor(Color::Yellow).phrase(), "open the yellow door");
        assert_eq!(TeacherOption::GoTo(Target::Goal).phrase(), "go to the green goal");
        assert_eq!(TeacherOption::GoTo(Target::Door(Color::Red)).phrase(), "go to the red door");
        assert_eq!(
            TeacherOption::GoTo(Target::Item(Item::new(Carryable::Ball, Color::Blue))).phrase(),
            "go to the blue ball"
        );
        assert_eq!(TeacherOption::OpenBox(Color::Grey).phrase(), "open the grey box");
        assert_eq!(TeacherOption::Drop.phrase(), "drop the carried object");
        assert_eq!(TeacherOption::Explore.phrase(), "explore");
    }

    #[test]
    fn every_phrase_parses_back_and_is_unique() {
        let vocabulary = TeacherOption::vocabulary();
        let phrases: BTreeSet<String> = vocabulary.iter().map(TeacherOption::phrase).collect();
        assert_eq!(phrases.len(), vocabulary.len(), "no two options share a phrase");
        for option in vocabulary {
            assert_eq!(TeacherOption::parse(&option.phrase()), Ok(option));
            assert_eq!(option.phrase().parse::<TeacherOption>(), Ok(option));
        }
    }

    #[test]
    fn parsing_tolerates_how_an_llm_writes() {
        let parse = |text: &str| TeacherOption::parse(text).ok();
        assert_eq!(parse("  Pick up the Yellow Key. "), Some(TeacherOption::PickUp(yellow_key())));
        assert_eq!(parse("pickup yellow key"), Some(TeacherOption::PickUp(yellow_key())));
        assert_eq!(parse("go to the goal"), Some(TeacherOption::GoTo(Target::Goal)));
        assert_eq!(parse("Reach the goal!"), Some(TeacherOption::GoTo(Target::Goal)));
        assert_eq!(parse("unlock the blue door"), Some(TeacherOption::OpenDoor(Color::Blue)));
        assert_eq!(parse("toggle a red box"), Some(TeacherOption::OpenBox(Color::Red)));
        assert_eq!(parse("drop it"), Some(TeacherOption::Drop));
        assert_eq!(parse("Explore the room"), Some(TeacherOption::Explore));
        for nonsense in
            ["", "dance", "pick up the goal", "open the green ball", "go to the pink key", "pick up the key"]
        {
            assert_eq!(parse(nonsense), None, "{nonsense:?}");
        }
        assert!(TeacherOption::parse("dance").unwrap_err().to_string().contains("dance"));
    }

    #[test]
    fn finds_the_chosen_option_inside_a_sentence() {
        let menu =
            [TeacherOption::Explore, TeacherOption::PickUp(yellow_key()), TeacherOption::OpenDoor(Color::Yellow)];
        let answer = "The door is locked, so I think you should Pick up the yellow key, then open the yellow door.";
        assert_eq!(TeacherOption::find_in(answer, &menu), Some(TeacherOption::PickUp(yellow_key())));
        assert_eq!(TeacherOption::find_in("no idea", &menu), None);
    }

    #[test]
    fn menu_offers_what_makes_sense_for_what_was_seen() {
        // Agent at (1,1) facing down, view 3: sees the key beside it, not the door or the goal.
        let world = world_from(&["#######", "#vk#..#", "#..D..#", "#..#.G#", "#######"]);
        let fog = FogOfWar::for_world(&world);
        let key = TeacherOption::PickUp(yellow_key());
        assert_eq!(
            available_options(&world, &fog),
            vec![TeacherOption::Explore, TeacherOption::GoTo(Target::Item(yellow_key())), key]
        );
        let everything = available_options(&world, &TrueState);
        assert!(everything.contains(&TeacherOption::GoTo(Target::Goal)));
        assert!(everything.contains(&TeacherOption::GoTo(Target::Door(Color::Yellow))));
        assert!(!everything.contains(&TeacherOption::OpenDoor(Color::Yellow)), "locked, and the key is not in hand");
        assert!(!everything.contains(&TeacherOption::Drop));
    }

    #[test]
    fn menu_changes_with_what_is_held() {
        let mut world = world_from(&["#######", "#>.#..#", "#..D..#", "#a.#.G#", "#######"]);
        world.carrying = Cell::Key(Color::Yellow);
        let menu = available_options(&world, &TrueState);
        assert!(menu.contains(&TeacherOption::OpenDoor(Color::Yellow)), "the key is in hand: {menu:?}");
        assert!(menu.contains(&TeacherOption::Drop));
        assert!(!menu.iter().any(|option| matches!(option, TeacherOption::PickUp(_))), "hands are full");
        assert_eq!(menu.first(), Some(&TeacherOption::Explore));
        assert_eq!(menu.last(), Some(&TeacherOption::Drop));
        let mut sorted = menu.clone();
        sorted.sort();
        assert_eq!(menu, sorted, "a stable order");
        let only_the_ball = fog_where(&world, |p| p == Pos::new(1, 3));
        assert_eq!(
            available_options(&world, &only_the_ball),
            vec![
                TeacherOption::Explore,
                TeacherOption::GoTo(Target::Item(Item::new(Carryable::Ball, Color::Blue))),
                TeacherOption::Drop
            ]
        );
    }
}
