//! The teacher's language model, run locally with candle: GGUF files (metadata and tensors),
//! the tokenizer rebuilt from the GGUF's own vocabulary, and the Gemma 3 transformer.

pub mod geglu;
pub mod gemma3;
pub mod gguf;
pub mod kv_cache;
pub mod rope;
pub mod tokenizer;

pub use gemma3::{
    Gemma3Config, Gemma3Error, Gemma3Model, Gemma3Options, LogitPositions, TreeNormalization, sibling_scoring_tokens,
};
pub use gguf::{GgufError, GgufFile};
pub use kv_cache::KvCache;
pub use tokenizer::{GemmaTokenizer, GgufVocabulary, TokenizerError};
