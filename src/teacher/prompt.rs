//! Prompt templates: text files (`assets/prompts/`) with named slots such as `{observation}`,
//! checked when loaded so that a bad edit is refused and the template in force stays.
//!
//! `{{` and `}}` write literal braces. The text before the first slot that changes with the
//! state (`{mission}`, `{observation}`, `{options}`) is the fixed prefix a model can cache.

use std::fmt;
use std::path::{Path, PathBuf};

/// A named place in a template that is filled in for every query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The level's mission.
    Mission,
    /// The description of the state (`env::text`).
    Observation,
    /// The legal options, as the advisor lists them.
    Options,
    /// What the student reported back (filled per prompt version; may be empty).
    Feedback,
    /// Few-shot examples (filled per prompt version; may be empty).
    Examples,
}

impl Slot {
    pub const ALL: [Slot; 5] = [Slot::Mission, Slot::Observation, Slot::Options, Slot::Feedback, Slot::Examples];
    /// Slots every template must use: without it the model cannot see the state. `{options}`
    /// is optional: continuation scoring scores the legal option phrases themselves (a listing
    /// costs ~25 tokens per request), while the lettered menu needs it (the advisor checks).
    pub const REQUIRED: [Slot; 1] = [Slot::Observation];

    pub fn name(self) -> &'static str {
        match self {
            Slot::Mission => "mission",
            Slot::Observation => "observation",
            Slot::Options => "options",
            Slot::Feedback => "feedback",
            Slot::Examples => "examples",
        }
    }

    fn from_name(name: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|slot| slot.name() == name)
    }

    /// Whether the slot's text changes from one state to the next.
    pub fn varies_per_state(self) -> bool {
        matches!(self, Slot::Mission | Slot::Observation | Slot::Options)
    }
}

/// Why a template was refused. `file` names the file (or "the editor").
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{file}: cannot read the template: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}:{line}:{col}: {message}")]
    Invalid { file: String, line: usize, col: usize, message: String },
    #[error("{file}: the template never uses {{{slot}}}, which every template needs")]
    MissingSlot { file: String, slot: &'static str },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(Slot),
}

/// A checked template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptTemplate {
    text: String,
    source: String,
    pieces: Vec<Piece>,
}

/// The text each slot is filled with.
#[derive(Clone, Copy, Debug, Default)]
pub struct SlotValues<'a> {
    pub mission: &'a str,
    pub observation: &'a str,
    pub options: &'a str,
    pub feedback: &'a str,
    pub examples: &'a str,
}

impl SlotValues<'_> {
    fn get(&self, slot: Slot) -> &str {
        match slot {
            Slot::Mission => self.mission,
            Slot::Observation => self.observation,
            Slot::Options => self.options,
            Slot::Feedback => self.feedback,
            Slot::Examples => self.examples,
        }
    }
}

/// A filled template, split where the state-specific part begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// Everything before the first per-state slot: the same for every query under one
    /// template and feedback text.
    pub prefix: String,
    /// The rest, from the first per-state slot to the end.
    pub state_part: String,
}

impl RenderedPrompt {
    pub fn full(&self) -> String {
        format!("{}{}", self.prefix, self.state_part)
    }
}

impl PromptTemplate {
    /// Reads and checks a template file.
    pub fn load(path: impl AsRef<Path>) -> Result<PromptTemplate, PromptError> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| PromptError::Read { file: source.clone(), error })?;
        PromptTemplate::parse(&text, source)
    }

    /// Checks `text`; `source` names it in errors ("assets/prompts/grid.txt", "the editor").
    pub fn parse(text: &str, source: impl Into<String>) -> Result<PromptTemplate, PromptError> {
        let source = source.into();
        let pieces = parse_pieces(text).map_err(|(offset, message)| {
            let (line, col) = line_col(text, offset);
            PromptError::Invalid { file: source.clone(), line, col, message }
        })?;
        for slot in Slot::REQUIRED {
            if !pieces.contains(&Piece::Slot(slot)) {
                return Err(PromptError::MissingSlot { file: source, slot: slot.name() });
            }
        }
        Ok(PromptTemplate { text: text.to_owned(), source, pieces })
    }

    /// The template as written (what an editor shows).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where it came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template uses `slot`.
    pub fn uses(&self, slot: Slot) -> bool {
        self.pieces.contains(&Piece::Slot(slot))
    }

    /// Fills every slot.
    pub fn render(&self, values: &SlotValues<'_>) -> RenderedPrompt {
        let mut prefix = String::new();
        let mut state_part = String::new();
        let mut in_state_part = false;
        for piece in &self.pieces {
            let text = match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Slot(slot) => {
                    in_state_part |= slot.varies_per_state();
                    values.get(*slot)
                }
            };
            if in_state_part { state_part.push_str(text) } else { prefix.push_str(text) }
        }
        RenderedPrompt { prefix, state_part }
    }
}

impl fmt::Display for PromptTemplate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// Splits `text` into literal runs and slots; errors carry the byte offset of the problem.
fn parse_pieces(text: &str) -> Result<Vec<Piece>, (usize, String)> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text.char_indices().peekable();
    while let Some((offset, c)) = rest.next() {
        match c {
            '{' if rest.peek().is_some_and(|&(_, next)| next == '{') => {
                rest.next();
                literal.push('{');
            }
            '}' if rest.peek().is_some_and(|&(_, next)| next == '}') => {
                rest.next();
                literal.push('}');
            }
            '}' => return Err((offset, "a lone '}' (write '}}' for a literal brace)".into())),
            '{' => {
                let start = offset + 1;
                let Some(length) = text[start..].find(['}', '{', '\n']) else {
                    return Err((offset, "'{' is never closed (write '{{' for a literal brace)".into()));
                };
                if !text[start + length..].starts_with('}') {
                    return Err((offset, "'{' is never closed (write '{{' for a literal brace)".into()));
                }
                let name = &text[start..start + length];
                let Some(slot) = Slot::from_name(name.trim()) else {
                    let known: Vec<String> = Slot::ALL.iter().map(|slot| format!("{{{}}}", slot.name())).collect();
                    return Err((offset, format!("unknown slot {{{name}}}; the slots are {}", known.join(", "))));
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Slot(slot));
                // Skip the name and the closing brace.
                while rest.peek().is_some_and(|&(at, _)| at <= start + length) {
                    rest.next();
                }
            }
            other => literal.push(other),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
    (line, col)
}

/// The shipped templates' folder: beside the sources the binary was built from, else (a binary
/// built elsewhere, e.g. in another clone) `assets/prompts` under the working directory.
pub fn prompts_dir() -> PathBuf {
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets").join("prompts");
    if built_from.is_dir() { built_from } else { PathBuf::from("assets").join("prompts") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "Examples:\n{examples}\n{feedback}Mission: {mission}\nState: {observation}\nOptions:\n{options}\nBest {{option}}:";

    #[test]
    fn renders_and_splits_at_the_first_state_slot() {
        let template = PromptTemplate::parse(GOOD, "good.txt").expect("valid");
        assert!(template.uses(Slot::Feedback) && template.uses(Slot::Mission));
        let rendered = template.render(&SlotValues {
            mission: "get to the goal",
            observation: "You see a key.",
            options: "- explore\n- pick up the key",
            feedback: "",
            examples: "E1",
        });
        assert_eq!(rendered.prefix, "Examples:\nE1\nMission: ");
        assert_eq!(
            rendered.state_part,
            "get to the goal\nState: You see a key.\nOptions:\n- explore\n- pick up the key\nBest {option}:"
        );
        assert_eq!(rendered.full(), format!("{}{}", rendered.prefix, rendered.state_part));
        assert_eq!(template.text(), GOOD);
    }

    #[test]
    fn refuses_unknown_slots_with_their_position() {
        let error = PromptTemplate::parse("State: {observation}\n{options} {plan}", "editor").unwrap_err();
        assert_eq!(
            error.to_string(),
            "editor:2:11: unknown slot {plan}; the slots are {mission}, {observation}, {options}, {feedback}, {examples}"
        );
    }

    #[test]
    fn refuses_missing_required_slots() {
        let error = PromptTemplate::parse("Options: {options}", "a.txt").unwrap_err();
        assert_eq!(error.to_string(), "a.txt: the template never uses {observation}, which every template needs");
        assert!(PromptTemplate::parse("State: {observation}\nAnswer:", "a.txt").is_ok(), "{{options}} is optional");
    }

    #[test]
    fn refuses_unbalanced_braces() {
        let unclosed = PromptTemplate::parse("{observation} {options} {mission", "a.txt").unwrap_err();
        assert!(unclosed.to_string().starts_with("a.txt:1:25: '{' is never closed"), "{unclosed}");
        let newline = PromptTemplate::parse("{observation} {options} {mis\nsion}", "a.txt").unwrap_err();
        assert!(newline.to_string().starts_with("a.txt:1:25: '{' is never closed"), "{newline}");
        let lone = PromptTemplate::parse("{observation} {options} }", "a.txt").unwrap_err();
        assert!(lone.to_string().starts_with("a.txt:1:25: a lone '}'"), "{lone}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.txt");
        let error = PromptTemplate::load(&missing).unwrap_err();
        assert!(error.to_string().starts_with(&format!("{}: cannot read the template", missing.display())));
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "{observation}{options}").expect("write");
        let template = PromptTemplate::load(&path).expect("loads");
        assert_eq!(template.source(), path.display().to_string());
    }
}
