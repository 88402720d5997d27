//! What the feedback panel shows, copied from the trainer's `FeedbackRecorder` when it changes:
//! outcome counts per (abstract situation, option) and the feedback text the teacher last got.

use crate::feedback::{AbstractState, DoorKnowledge, OutcomeCounts};
use crate::skills::TeacherOption;
use crate::training::{FEEDBACK_EVERY_UPDATES, FEEDBACK_LINES, Trainer};

/// One (situation, option) the student followed advice in, with what came of it.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackRow {
    pub state: AbstractState,
    pub option: TeacherOption,
    pub counts: OutcomeCounts,
}

impl FeedbackRow {
    /// Of the segments followed, the share whose episode was won afterwards.
    pub fn success_rate(&self) -> f64 {
        f64::from(self.counts.won) / f64::from(self.counts.followed.max(1))
    }

    /// Of the segments followed, the share whose skill reached its target.
    pub fn reached_rate(&self) -> f64 {
        f64::from(self.counts.reached) / f64::from(self.counts.followed.max(1))
    }

    /// Reward per followed segment.
    pub fn mean_return(&self) -> f64 {
        self.counts.return_sum / f64::from(self.counts.followed.max(1))
    }
}

/// A situation and its rows, most followed option first.
#[derive(Clone, Debug, PartialEq)]
pub struct SituationRows {
    pub state: AbstractState,
    /// "door locked, key seen, holding nothing, facing a wall": short enough for a heading.
    pub label: String,
    pub followed: u32,
    pub rows: Vec<FeedbackRow>,
}

/// The feedback text the teacher accepted, and when.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SentFeedback {
    pub text: String,
    /// The update after which it was sent (the trainer sends at update boundaries).
    pub update: u64,
    pub frames: u64,
    /// The teacher's prompt version once it took the text (teachers with workers report it).
    pub prompt_version: Option<u64>,
}

/// The panel's copy of the recorder; `capture` rebuilds it only when something changed.
#[derive(Clone, Debug, Default)]
pub struct FeedbackView {
    /// The trainer records feedback (it may be switched off).
    pub recording: bool,
    /// Segments settled so far; with `updates`, what tells a change.
    pub segments: u64,
    /// The trainer's updates at the last copy: an update attaches advantages to segments.
    pub updates: u64,
    /// Situations, the most followed first.
    pub situations: Vec<SituationRows>,
    /// What `prompt_text` renders now: what the next refresh would send.
    pub current_text: String,
    /// The last text the teacher accepted (`None` before the first, or for teachers that
    /// take no feedback).
    pub sent: Option<SentFeedback>,
    /// Whether the teacher in force takes feedback (teachers with a prompt do).
    pub teacher_takes_feedback: bool,
    /// Updates between refreshes.
    pub every_updates: u64,
}

impl FeedbackView {
    /// Copies what changed since the last call: the counts when segments were settled, the
    /// sent text when the trainer sent a new one. Costs a comparison when nothing changed.
    pub fn capture(&mut self, trainer: &Trainer) {
        self.every_updates = FEEDBACK_EVERY_UPDATES;
        self.teacher_takes_feedback = trainer.teacher().prompt().is_some();
        let sent_text = trainer.feedback_sent();
        let sent_changed = match &self.sent {
            Some(sent) => sent.text != sent_text,
            None => !sent_text.is_empty(),
        };
        if sent_changed {
            self.sent = (!sent_text.is_empty()).then(|| SentFeedback {
                text: sent_text.to_owned(),
                update: trainer.updates(),
                frames: trainer.frames(),
                prompt_version: trainer.teacher().client_stats().map(|stats| stats.prompt_version),
            });
        }
        let Some(recorder) = trainer.feedback() else {
            if self.recording {
                *self = FeedbackView { sent: self.sent.take(), ..FeedbackView::default() };
            }
            return;
        };
        // A new run (reset, load) starts counting again.
        let restarted = recorder.segments() < self.segments;
        if self.recording && !restarted && recorder.segments() == self.segments && trainer.updates() == self.updates {
            return;
        }
        self.recording = true;
        self.segments = recorder.segments();
        self.updates = trainer.updates();
        self.current_text = recorder.prompt_text(FEEDBACK_LINES);
        self.situations.clear();
        for (&(state, option), &counts) in recorder.counts() {
            let row = FeedbackRow { state, option, counts };
            match self.situations.iter_mut().find(|situation| situation.state == state) {
                Some(situation) => {
                    situation.followed += counts.followed;
                    situation.rows.push(row);
                }
                None => self.situations.push(SituationRows {
                    state,
                    label: short_label(&state),
                    followed: counts.followed,
                    rows: vec![row],
                }),
            }
        }
        for situation in &mut self.situations {
            situation.rows.sort_by(|a, b| b.counts.followed.cmp(&a.counts.followed).then(a.option.cmp(&b.option)));
        }
        self.situations.sort_by(|a, b| b.followed.cmp(&a.followed).then(a.state.cmp(&b.state)));
    }

    /// Rows over all situations.
    pub fn rows(&self) -> usize {
        self.situations.iter().map(|situation| situation.rows.len()).sum()
    }

    /// Forgets everything (a new run).
    pub fn clear(&mut self) {
        *self = FeedbackView::default();
    }
}

/// "door locked · holding the yellow key · key seen · goal seen · facing a wall": the situation
/// in a few words (the teacher gets the longer English of `AbstractState`'s `Display`).
pub fn short_label(state: &AbstractState) -> String {
    let door = match state.door {
        DoorKnowledge::Unseen => "no door seen",
        DoorKnowledge::Open => "door open",
        DoorKnowledge::Closed => "door closed",
        DoorKnowledge::Locked => "door locked",
    };
    let held = match state.held {
        Some(item) => format!("holding the {item}"),
        None => "holding nothing".to_owned(),
    };
    let key = if state.key_seen { "key seen" } else { "no key seen" };
    let goal = if state.goal_seen { "goal seen" } else { "goal unseen" };
    format!("{door} · {held} · {key} · {goal} · facing {}", state.front.phrase())
}
