//! What `duet tune` and the app's Tuning tab both set up: the teacher's base model, tokenizer
//! and tuning prompt, the base teacher's record (iteration 0), and where adapters are saved.

use std::path::{Path, PathBuf};

use super::run::{TuneError, TuneRecord, TuneRun};
use crate::env::scene::TeacherSpec;
use crate::teacher::advice::LlmAdvisorSettings;
use crate::teacher::llm::{GgufFile, GgufTokenizer, LanguageModel, LoraAdapters, LoraError, ModelOptions};
use crate::teacher::model_path::require_model_file;
use crate::teacher::prompt::{PromptTemplate, prompts_dir};

/// The prompt tuning reads when none is given: the default prompt's instructions and rules
/// without its examples (the backward pass pays for every prompt token).
pub const TUNING_PROMPT: &str = "grid-tune.txt";

/// What a tuning run reads with.
pub struct TuningTeacher {
    pub model: LanguageModel,
    pub tokenizer: GgufTokenizer,
    pub template: PromptTemplate,
}

impl TuningTeacher {
    /// The template (`prompt`, else `assets/prompts/grid-tune.txt`) first, so a bad one does not
    /// wait for the model; then the base model and tokenizer of `spec` (its adapters are left
    /// out: tuning starts from the base). Model errors name the model file.
    pub fn load(spec: &TeacherSpec, prompt: Option<&Path>) -> Result<Self, TuneError> {
        let prompt_path = prompt.map_or_else(|| prompts_dir().join(TUNING_PROMPT), Path::to_path_buf);
        let template = PromptTemplate::load(&prompt_path).map_err(|error| TuneError::Setup(error.to_string()))?;
        let settings = LlmAdvisorSettings::from_spec(spec).map_err(|error| TuneError::Setup(error.to_string()))?;
        let path = &settings.model_path;
        require_model_file(path).map_err(|error| TuneError::Setup(error.to_string()))?;
        let mut file = GgufFile::open(path).map_err(|error| naming(path, error))?;
        let tokenizer = GgufTokenizer::from_gguf(&file).map_err(|error| naming(path, error))?;
        let options = ModelOptions { threads: 1, weights: settings.weights };
        let model = LanguageModel::load(&mut file, &options).map_err(|error| naming(path, error))?;
        Ok(Self { model, tokenizer, template })
    }
}

/// `error` as a setup error, with `path` in front unless it already names it.
fn naming(path: &Path, error: impl std::fmt::Display) -> TuneError {
    let message = error.to_string();
    let shown = path.display().to_string();
    TuneError::Setup(if message.contains(&shown) { message } else { format!("{shown}: {message}") })
}

impl TuneRun<'_> {
    /// Iteration 0: the base teacher's agreement with the oracle (its KL to itself is 0).
    pub fn base_record(&self) -> Result<TuneRecord, TuneError> {
        let (agreement, _) = self.evaluate(None)?;
        Ok(TuneRecord { iteration: 0, agreement: Some(agreement), kl_to_base: Some(0.0), ..TuneRecord::default() })
    }
}

/// A run's adapters saved after every iteration, each save over the last, so a run stopped
/// part-way keeps what it learned and the last save is the run's result (`duet tune` and the
/// Tuning tab).
#[derive(Debug)]
pub struct AdapterSaves<'a> {
    dir: &'a Path,
    stem: &'a str,
    /// What the last successful save wrote.
    paths: Vec<PathBuf>,
    /// The first save that failed (later iterations still try).
    error: Option<LoraError>,
}

impl<'a> AdapterSaves<'a> {
    /// Saves into `dir` under `stem` (see [`save_adapters`]).
    pub fn new(dir: &'a Path, stem: &'a str) -> Self {
        Self { dir, stem, paths: Vec::new(), error: None }
    }

    /// Writes `adapters` (CORY: both agents') over the last save.
    pub fn save(&mut self, adapters: &[&LoraAdapters]) {
        match save_adapters(adapters, self.dir, self.stem) {
            Ok(paths) => self.paths = paths,
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
    }

    /// The paths the last save wrote, or the first error.
    pub fn finish(self) -> Result<Vec<PathBuf>, LoraError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.paths),
        }
    }
}

/// Saves `adapters` into `dir` as `<stem>.safetensors`, or `<stem>-<i>.safetensors` when there
/// are several (CORY's two agents); returns the paths.
pub fn save_adapters(adapters: &[&LoraAdapters], dir: &Path, stem: &str) -> Result<Vec<PathBuf>, LoraError> {
    adapters
        .iter()
        .enumerate()
        .map(|(index, adapter)| {
            let name =
                if adapters.len() == 1 { format!("{stem}.safetensors") } else { format!("{stem}-{index}.safetensors") };
            let path = dir.join(name);
            adapter.save(&path)?;
            Ok(path)
        })
        .collect()
}
