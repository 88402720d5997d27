//! The LLM teacher: a small local language model (GGUF weights, default Gemma 3 270M) that
//! advises the student. `llm/` reads and runs the model; `model_path` finds the default file.

pub mod advice;
pub mod advisor;
pub mod cache;
pub mod client;
pub mod llm;
pub mod model_path;
pub mod prompt;
pub mod situations;
pub mod worker;
