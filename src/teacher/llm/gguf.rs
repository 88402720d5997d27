//! GGUF model files, read with candle's `gguf_file`: typed metadata access whose errors name
//! the file and the key, and loading of the quantized tensors.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::{Content, TensorInfo, Value, VersionedMagic};

/// What went wrong reading a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a readable GGUF file: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("{}: metadata key `{key}` is missing", path.display())]
    MissingKey { path: PathBuf, key: String },
    #[error("{}: metadata key `{key}` holds {found}, expected {expected}", path.display())]
    WrongType { path: PathBuf, key: String, expected: &'static str, found: String },
    #[error("{}: tensor `{name}` is not in the file", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: cannot read tensor `{name}`: {source}", path.display())]
    Tensor {
        path: PathBuf,
        name: String,
        #[source]
        source: Box<candle_core::Error>,
    },
}

/// An open GGUF file: its metadata and tensor directory are read at once, tensors on demand.
pub struct GgufFile {
    path: PathBuf,
    content: Content,
    reader: BufReader<File>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GgufFile")
            .field("path", &self.path)
            .field("metadata_keys", &self.content.metadata.len())
            .field("tensors", &self.content.tensor_infos.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens `path` and reads its header, metadata and tensor directory (not the tensor data).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| GgufError::Open { path: path.clone(), source })?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader)
            .map_err(|source| GgufError::Format { path: path.clone(), source: Box::new(source) })?;
        Ok(Self { path, content, reader })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF format version (1, 2 or 3).
    pub fn format_version(&self) -> u32 {
        match self.content.magic {
            VersionedMagic::GgufV1 => 1,
            VersionedMagic::GgufV2 => 2,
            VersionedMagic::GgufV3 => 3,
        }
    }

    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    pub fn tensor_infos(&self) -> &HashMap<String, TensorInfo> {
        &self.content.tensor_infos
    }

    /// `general.architecture`, e.g. "gemma3".
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.string("general.architecture")
    }

    pub fn value(&self, key: &str) -> Result<&Value, GgufError> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| GgufError::MissingKey { path: self.path.clone(), key: key.to_string() })
    }

    pub fn string(&self, key: &str) -> Result<&str, GgufError> {
        match self.value(key)? {
            Value::String(text) => Ok(text),
            other => Err(self.wrong_type(key, "a string", other)),
        }
    }

    pub fn optional_string(&self, key: &str) -> Result<Option<&str>, GgufError> {
        if self.content.metadata.contains_key(key) { self.string(key).map(Some) } else { Ok(None) }
    }

    /// An integer that fits in u32, whatever integer type the writer chose.
    pub fn u32(&self, key: &str) -> Result<u32, GgufError> {
        let value = self.value(key)?;
        integer_of(value)
            .and_then(|integer| u32::try_from(integer).ok())
            .ok_or_else(|| self.wrong_type(key, "an unsigned 32-bit integer", value))
    }

    pub fn optional_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        if self.content.metadata.contains_key(key) { self.u32(key).map(Some) } else { Ok(None) }
    }

    pub fn f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.value(key)? {
            Value::F32(number) => Ok(*number),
            Value::F64(number) => Ok(*number as f32),
            other => Err(self.wrong_type(key, "a float", other)),
        }
    }

    pub fn optional_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        if self.content.metadata.contains_key(key) { self.f32(key).map(Some) } else { Ok(None) }
    }

    /// The parsed header (metadata and tensor infos), for readers that take candle's type.
    pub fn content(&self) -> &Content {
        &self.content
    }

    pub fn optional_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(self.wrong_type(key, "a bool", other)),
        }
    }

    pub fn array(&self, key: &str) -> Result<&[Value], GgufError> {
        match self.value(key)? {
            Value::Array(values) => Ok(values),
            other => Err(self.wrong_type(key, "an array", other)),
        }
    }

    pub fn string_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        self.array(key)?
            .iter()
            .map(|value| match value {
                Value::String(text) => Ok(text.as_str()),
                other => Err(self.wrong_type(key, "an array of strings", other)),
            })
            .collect()
    }

    pub fn f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        self.array(key)?
            .iter()
            .map(|value| match value {
                Value::F32(number) => Ok(*number),
                Value::F64(number) => Ok(*number as f32),
                other => Err(self.wrong_type(key, "an array of floats", other)),
            })
            .collect()
    }

    pub fn i32_array(&self, key: &str) -> Result<Vec<i32>, GgufError> {
        self.array(key)?
            .iter()
            .map(|value| {
                integer_of(value)
                    .and_then(|integer| i32::try_from(integer).ok())
                    .ok_or_else(|| self.wrong_type(key, "an array of 32-bit integers", value))
            })
            .collect()
    }

    /// Reads one tensor's data onto `device`.
    pub fn tensor(&mut self, name: &str, device: &Device) -> Result<QTensor, GgufError> {
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Err(GgufError::MissingTensor { path: self.path.clone(), name: name.to_string() });
        };
        info.read(&mut self.reader, self.content.tensor_data_offset, device).map_err(|source| GgufError::Tensor {
            path: self.path.clone(),
            name: name.to_string(),
            source: Box::new(source),
        })
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Value) -> GgufError {
        GgufError::WrongType { path: self.path.clone(), key: key.to_string(), expected, found: describe_value(found) }
    }
}

fn integer_of(value: &Value) -> Option<i128> {
    match value {
        Value::U8(number) => Some((*number).into()),
        Value::I8(number) => Some((*number).into()),
        Value::U16(number) => Some((*number).into()),
        Value::I16(number) => Some((*number).into()),
        Value::U32(number) => Some((*number).into()),
        Value::I32(number) => Some((*number).into()),
        Value::U64(number) => Some((*number).into()),
        Value::I64(number) => Some((*number).into()),
        _ => None,
    }
}

/// "a string", "an array of 3 F32", "U64 7": short enough for an error message.
fn describe_value(value: &Value) -> String {
    match value {
        Value::String(text) if text.chars().count() <= 40 => format!("the string {text:?}"),
        Value::String(_) => "a long string".to_string(),
        Value::Array(values) => match values.first() {
            Some(first) => format!("an array of {} {:?}", values.len(), first.value_type()),
            None => "an empty array".to_string(),
        },
        Value::Bool(flag) => format!("the bool {flag}"),
        Value::F32(number) => format!("the F32 {number}"),
        Value::F64(number) => format!("the F64 {number}"),
        other => match integer_of(other) {
            Some(integer) => format!("the {:?} {integer}", other.value_type()),
            None => format!("{:?}", other.value_type()),
        },
    }
}

/// Writes `metadata` (and no tensors) as a GGUF v3 file: candle's writer emits v2, whose
/// little-endian layout v3 keeps (v3 only added big-endian files), so the version is patched.
#[cfg(test)]
pub(crate) fn write_metadata_only_gguf_v3(path: &Path, metadata: &[(&str, Value)]) {
    let entries: Vec<(&str, &Value)> = metadata.iter().map(|(key, value)| (*key, value)).collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut bytes, &entries, &[]).expect("serialise GGUF metadata");
    let mut bytes = bytes.into_inner();
    assert_eq!(&bytes[4..8], &2u32.to_le_bytes(), "candle's writer changed its version");
    bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
    std::fs::write(path, bytes).expect("write the GGUF file");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file(directory: &Path) -> PathBuf {
        let path = directory.join("sample.gguf");
        write_metadata_only_gguf_v3(
            &path,
            &[
                ("general.architecture", Value::String("gemma3".into())),
                ("sample.count", Value::U64(7)),
                ("sample.negative", Value::I32(-1)),
                ("sample.epsilon", Value::F32(1e-6)),
                ("sample.flag", Value::Bool(true)),
                ("sample.words", Value::Array(vec![Value::String("a".into()), Value::String("b".into())])),
                ("sample.scores", Value::Array(vec![Value::F32(0.5), Value::F32(-1.0)])),
                ("sample.types", Value::Array(vec![Value::I32(1), Value::I32(3)])),
            ],
        );
        path
    }

    #[test]
    fn reads_typed_metadata_from_a_v3_file() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let file = GgufFile::open(sample_file(directory.path())).expect("open the sample");
        assert_eq!(file.format_version(), 3);
        assert_eq!(file.architecture().expect("architecture"), "gemma3");
        assert_eq!(file.u32("sample.count").expect("count"), 7);
        assert_eq!(file.f32("sample.epsilon").expect("epsilon"), 1e-6);
        assert_eq!(file.optional_bool("sample.flag").expect("flag"), Some(true));
        assert_eq!(file.optional_bool("sample.absent").expect("absent flag"), None);
        assert_eq!(file.string_array("sample.words").expect("words"), ["a", "b"]);
        assert_eq!(file.f32_array("sample.scores").expect("scores"), [0.5, -1.0]);
        assert_eq!(file.i32_array("sample.types").expect("types"), [1, 3]);
        assert!(file.tensor_infos().is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = sample_file(directory.path());
        let file = GgufFile::open(&path).expect("open the sample");

        let missing = file.string("tokenizer.ggml.model").expect_err("absent key").to_string();
        assert!(missing.contains(&path.display().to_string()), "{missing}");
        assert!(missing.contains("`tokenizer.ggml.model` is missing"), "{missing}");

        let wrong = file.string_array("sample.scores").expect_err("floats are no strings").to_string();
        assert!(wrong.contains("`sample.scores`") && wrong.contains("array of strings"), "{wrong}");

        let negative = file.u32("sample.negative").expect_err("-1 is no u32").to_string();
        assert!(negative.contains("I32 -1"), "{negative}");

        let tensor = {
            let mut file = file;
            file.tensor("token_embd.weight", &Device::Cpu).expect_err("no tensors").to_string()
        };
        assert!(tensor.contains("`token_embd.weight` is not in the file"), "{tensor}");
    }

    #[test]
    fn non_gguf_and_missing_files_are_reported() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let not_gguf = directory.path().join("notes.gguf");
        std::fs::write(&not_gguf, b"this is not a model file at all").expect("write");
        let error = GgufFile::open(&not_gguf).expect_err("bad magic").to_string();
        assert!(error.contains("notes.gguf: not a readable GGUF file"), "{error}");

        let absent = directory.path().join("absent.gguf");
        let error = GgufFile::open(&absent).expect_err("no such file").to_string();
        assert!(error.contains("absent.gguf: cannot open"), "{error}");
    }
}
