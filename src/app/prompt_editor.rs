//! The prompt editor's state and its Apply: the draft is checked as a `PromptTemplate` and
//! handed to the teacher in force; a bad draft leaves the template in force untouched.

use std::time::{SystemTime, UNIX_EPOCH};

use bevy::prelude::Resource;

use crate::student::TeacherPolicy;
use crate::teacher::prompt::PromptTemplate;

/// What the editor calls the draft in error messages ("the editor:3:5: unknown slot ...").
pub const EDITOR_SOURCE: &str = "the editor";

/// One template put in force from the editor.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptVersion {
    /// The version number the teacher gave it.
    pub version: u64,
    /// Wall-clock time of the Apply, "HH:MM:SS" UTC.
    pub applied_at: String,
    /// Env frames trained when it was applied (where its marker sits on the curves).
    pub frames: u64,
    pub text: String,
}

/// The editor: a draft, the template in force, the versions applied and the last error.
#[derive(Resource, Clone, Debug, Default)]
pub struct PromptEditor {
    /// What the text box holds.
    pub draft: String,
    /// The template in force as last seen on the teacher (`None`: it takes no prompt).
    pub in_force: Option<String>,
    /// Applied versions, oldest first.
    pub history: Vec<PromptVersion>,
    /// Why the last Apply failed, shown under the editor until the next Apply or Revert.
    pub error: Option<String>,
    /// Whether the user has typed since the draft last matched the template in force; until
    /// then the draft follows the teacher's template.
    pub edited: bool,
}

impl PromptEditor {
    /// An editor holding `draft` as an edit not yet applied: it stays until Apply or Revert.
    pub fn with_draft(draft: String) -> PromptEditor {
        PromptEditor { draft, edited: true, ..PromptEditor::default() }
    }

    /// Follows the teacher's template (`None` for a teacher that takes none); an unedited
    /// draft is replaced by it.
    pub fn sync(&mut self, in_force: Option<&str>) {
        if self.in_force.as_deref() != in_force {
            self.in_force = in_force.map(str::to_owned);
            if !self.edited {
                self.draft = self.in_force.clone().unwrap_or_default();
            }
        }
    }

    /// Checks the draft and puts it in force on `teacher` at `frames` env frames. On any
    /// error (a bad template with its line:col, or a teacher that refuses it) the template
    /// in force stays and the error is kept for display.
    pub fn apply(&mut self, teacher: &mut dyn TeacherPolicy, frames: u64) -> Result<u64, String> {
        let result = PromptTemplate::parse(&self.draft, EDITOR_SOURCE)
            .map_err(|error| error.to_string())
            .and_then(|template| teacher.set_prompt(template));
        match result {
            Ok(version) => {
                self.history.push(PromptVersion {
                    version,
                    applied_at: utc_time_of_day(SystemTime::now()),
                    frames,
                    text: self.draft.clone(),
                });
                self.in_force = teacher.prompt().map(|template| template.text().to_owned());
                self.error = None;
                self.edited = false;
                Ok(version)
            }
            Err(error) => {
                self.error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Puts the template in force back into the draft.
    pub fn revert(&mut self) {
        self.draft = self.in_force.clone().unwrap_or_default();
        self.error = None;
        self.edited = false;
    }

    /// Frames at which templates were applied: the curves' markers.
    pub fn marker_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.history.iter().map(|version| version.frames)
    }
}

/// "HH:MM:SS" (UTC) of `time`.
fn utc_time_of_day(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_of_day_are_utc_clock_readings() {
        let time = UNIX_EPOCH + Duration::from_secs(3 * 86_400 + 10 * 3600 + 5 * 60 + 9);
        assert_eq!(utc_time_of_day(time), "10:05:09");
    }

    #[test]
    fn a_draft_opened_with_the_app_outlasts_the_teachers_template_until_revert() {
        let mut editor = PromptEditor::with_draft("{observation}\nOptions: {options}\n".to_owned());
        editor.sync(Some("Mission: {mission}\n{observation}\n{options}\n"));
        assert_eq!(editor.draft, "{observation}\nOptions: {options}\n", "the template in force does not replace it");
        assert!(editor.edited, "shown as edited, not applied");
        assert!(editor.history.is_empty());
        editor.revert();
        assert_eq!(editor.draft, "Mission: {mission}\n{observation}\n{options}\n");
    }
}
