//! The teacher's language model, run locally with candle: GGUF files (metadata and tensors)
//! and the tokenizer rebuilt from the GGUF's own vocabulary.

pub mod gguf;
pub mod tokenizer;

pub use gguf::{GgufError, GgufFile};
pub use tokenizer::{GemmaTokenizer, GgufVocabulary, TokenizerError};
