//! The teacher's language model, run locally with candle: GGUF files (metadata and tensors),
//! the tokenizer rebuilt from the GGUF's own vocabulary, and the decoders (Gemma 3, llama, Qwen2).

pub mod geglu;
pub mod gemma3;
pub mod gguf;
pub mod kv_cache;
pub mod layers;
pub mod llama;
pub mod lora;
pub mod model;
pub mod rope;
#[cfg(test)]
mod test_support;
pub mod tokenizer;

pub use gemma3::{Gemma3Config, Gemma3Decoder};
pub use gguf::{GgufError, GgufFile};
pub use kv_cache::KvCache;
pub use llama::{LlamaConfig, LlamaDecoder, LlamaVariant};
pub use lora::{LoraAdapters, LoraConfig, LoraError, LoraTarget};
pub use model::{
    Decoder, LanguageModel, LogitPositions, ModelError, ModelOptions, ModelSpec, SUPPORTED_ARCHITECTURES,
    TreeNormalization, sibling_scoring_tokens,
};
pub use tokenizer::{GgufTokenizer, GgufVocabulary, TokenizerError};
