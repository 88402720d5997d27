//! The teacher's tokenizer, rebuilt from the GGUF's own vocabulary (`tokenizer.ggml.*`) as a
//! `tokenizers` tokenizer: SentencePiece BPE (Gemma 3, llama 2) or byte-level BPE (Qwen2, Llama 3).
//!
//! Gemma 3 ships a SentencePiece BPE vocabulary (`tokenizer.ggml.model = "llama"`). Hugging
//! Face's converter turns it into a `tokenizers` BPE whose merges are derived from the pieces
//! and their scores; [`merges_from_pieces`] repeats that derivation (checked to give the
//! official 514,906 merges in order), and [`GgufTokenizer::from_vocabulary`] adds the same
//! normalizer, pre-tokenizer, decoder, post-processor and added tokens (a Unigram reading of
//! these scores tokenizes Gemma 3 differently). Byte-level vocabularies
//! (`tokenizer.ggml.model = "gpt2"`) store their merges; candle's `TokenizerFromGguf` builds
//! them, and [`GgufTokenizer::from_gguf`] sets the pre-tokenizer llama.cpp's
//! `tokenizer.ggml.pre` names (GPT-2, Llama 3 and SmolLM splits, which candle leaves at GPT-2's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BpeBuilder, Vocab};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
};

use super::gguf::{GgufError, GgufFile};

/// SentencePiece's visible space: pieces spell spaces with it.
pub const SENTENCEPIECE_SPACE: char = '\u{2581}';

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    pub fn from_gguf(code: i32) -> Option<TokenType> {
        Some(match code {
            0 => TokenType::Undefined,
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }
}

/// What went wrong building the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(
        "{}: tokenizer model {model:?} (pre-tokenizer {pre:?}) is not supported: duet reads \
         SentencePiece BPE (\"llama\", pre-tokenizer \"default\") and byte-level BPE (\"gpt2\", \
         pre-tokenizer {})",
        path.display(),
        BYTE_LEVEL_PRE_TOKENIZERS.join(", ")
    )]
    UnsupportedModel { path: PathBuf, model: String, pre: String },
    #[error(
        "{}: tokenizer metadata disagrees: {tokens} tokens, {scores} scores, {token_types} token types",
        path.display()
    )]
    LengthMismatch { path: PathBuf, tokens: usize, scores: usize, token_types: usize },
    #[error("{}: token {token_id} has unknown token type {code}", path.display())]
    UnknownTokenType { path: PathBuf, token_id: usize, code: i32 },
    #[error("{}: {role} token id {token_id} is outside the {vocabulary_size}-token vocabulary", path.display())]
    TokenIdOutOfRange { path: PathBuf, role: &'static str, token_id: u32, vocabulary_size: usize },
    #[error("{}: vocabulary of {vocabulary_size} tokens does not fit in u32 ids", path.display())]
    VocabularyTooLarge { path: PathBuf, vocabulary_size: usize },
    #[error("{}: cannot build the tokenizer: {message}", path.display())]
    Build { path: PathBuf, message: String },
    #[error("cannot encode {text_start:?}...: {message}")]
    Encode { text_start: String, message: String },
    #[error("cannot decode {token_count} ids: {message}")]
    Decode { token_count: usize, message: String },
}

/// The tokenizer part of a GGUF file's metadata, checked for consistency.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufVocabulary {
    /// Where it was read from, for error messages.
    pub source: PathBuf,
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub token_types: Vec<TokenType>,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
    pub unknown_token_id: u32,
    pub padding_token_id: Option<u32>,
    /// Whether encoding prepends `<bos>` (Gemma: yes).
    pub add_bos_token: bool,
    /// Whether text starts with a space ('▁') before tokenizing, as SentencePiece's dummy
    /// prefix (llama 2: yes, Gemma: no; llama.cpp's default when the file does not say: yes).
    pub add_space_prefix: bool,
}

impl GgufVocabulary {
    /// Reads `tokenizer.ggml.*` from `file` and checks it describes a vocabulary this module
    /// can rebuild.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let path = file.path().to_path_buf();
        let model = file.string("tokenizer.ggml.model")?;
        let pre = file.optional_string("tokenizer.ggml.pre")?.unwrap_or("default");
        if model != "llama" || pre != "default" {
            return Err(TokenizerError::UnsupportedModel { path, model: model.to_string(), pre: pre.to_string() });
        }
        let tokens: Vec<String> = file.string_array("tokenizer.ggml.tokens")?.into_iter().map(str::to_string).collect();
        let scores = file.f32_array("tokenizer.ggml.scores")?;
        let type_codes = file.i32_array("tokenizer.ggml.token_type")?;
        if scores.len() != tokens.len() || type_codes.len() != tokens.len() {
            return Err(TokenizerError::LengthMismatch {
                path,
                tokens: tokens.len(),
                scores: scores.len(),
                token_types: type_codes.len(),
            });
        }
        let token_types = type_codes
            .iter()
            .enumerate()
            .map(|(token_id, &code)| {
                TokenType::from_gguf(code).ok_or_else(|| TokenizerError::UnknownTokenType {
                    path: path.clone(),
                    token_id,
                    code,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let vocabulary = GgufVocabulary {
            tokens,
            scores,
            token_types,
            bos_token_id: file.u32("tokenizer.ggml.bos_token_id")?,
            eos_token_id: file.u32("tokenizer.ggml.eos_token_id")?,
            unknown_token_id: file.u32("tokenizer.ggml.unknown_token_id")?,
            padding_token_id: file.optional_u32("tokenizer.ggml.padding_token_id")?,
            add_bos_token: file.optional_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(true),
            add_space_prefix: file.optional_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(true),
            source: path,
        };
        vocabulary.validate()?;
        Ok(vocabulary)
    }

    /// Checks that the per-token arrays agree and the named token ids exist.
    pub fn validate(&self) -> Result<(), TokenizerError> {
        let vocabulary_size = self.tokens.len();
        if self.scores.len() != vocabulary_size || self.token_types.len() != vocabulary_size {
            return Err(TokenizerError::LengthMismatch {
                path: self.source.clone(),
                tokens: vocabulary_size,
                scores: self.scores.len(),
                token_types: self.token_types.len(),
            });
        }
        if u32::try_from(vocabulary_size).is_err() {
            return Err(TokenizerError::VocabularyTooLarge { path: self.source.clone(), vocabulary_size });
        }
        let roles = [
            ("bos", Some(self.bos_token_id)),
            ("eos", Some(self.eos_token_id)),
            ("unknown", Some(self.unknown_token_id)),
            ("padding", self.padding_token_id),
        ];
        for (role, token_id) in roles {
            if let Some(token_id) = token_id
                && token_id as usize >= vocabulary_size
            {
                return Err(TokenizerError::TokenIdOutOfRange {
                    path: self.source.clone(),
                    role,
                    token_id,
                    vocabulary_size,
                });
            }
        }
        Ok(())
    }

    /// The pieces as the BPE model spells them: llama.cpp stores user-defined pieces with
    /// plain spaces where the SentencePiece model (and tokenizer.json) has '▁'.
    pub fn bpe_pieces(&self) -> Vec<String> {
        self.tokens
            .iter()
            .zip(&self.token_types)
            .map(|(token, token_type)| match token_type {
                TokenType::UserDefined => token.replace(' ', "\u{2581}"),
                _ => token.clone(),
            })
            .collect()
    }
}

/// One candidate merge while ordering them.
struct MergeCandidate<'a> {
    left: &'a str,
    right: &'a str,
    score: f32,
    left_chars: usize,
    right_chars: usize,
}

/// The BPE merges implied by a SentencePiece vocabulary, in rank order, as Hugging Face's
/// converter derives them: for every normal or user-defined piece (in id order), every split
/// into two pieces that are both in the vocabulary, ordered by (left id, right id); then a
/// stable sort by the piece's score, the left half's length and the right half's length, all
/// descending (lengths in chars). User-defined pieces count as score 0: SentencePiece gives
/// them 0, llama.cpp's GGUF stores -1000.
pub fn merges_from_pieces(pieces: &[String], scores: &[f32], token_types: &[TokenType]) -> Vec<(String, String)> {
    let mut id_of_piece: HashMap<&str, usize> = HashMap::with_capacity(pieces.len());
    for (id, piece) in pieces.iter().enumerate() {
        // Later duplicates win, as in the converter's dict.
        id_of_piece.insert(piece.as_str(), id);
    }
    let mut candidates = Vec::new();
    let mut splits_of_piece: Vec<(usize, usize, MergeCandidate)> = Vec::new();
    for ((piece, &score), token_type) in pieces.iter().zip(scores).zip(token_types) {
        let score = match token_type {
            TokenType::Normal => score,
            TokenType::UserDefined => 0.0,
            _ => continue,
        };
        splits_of_piece.clear();
        for (split_at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split_at);
            if let (Some(&left_id), Some(&right_id)) = (id_of_piece.get(left), id_of_piece.get(right)) {
                let candidate = MergeCandidate {
                    left,
                    right,
                    score,
                    left_chars: left.chars().count(),
                    right_chars: right.chars().count(),
                };
                splits_of_piece.push((left_id, right_id, candidate));
            }
        }
        splits_of_piece.sort_by_key(|(left_id, right_id, _)| (*left_id, *right_id));
        candidates.extend(splits_of_piece.drain(..).map(|(_, _, candidate)| candidate));
    }
    // `sort_by` is stable, as Python's `sorted(..., reverse=True)` is.
    candidates.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then(b.left_chars.cmp(&a.left_chars)).then(b.right_chars.cmp(&a.right_chars))
    });
    candidates.into_iter().map(|candidate| (candidate.left.to_string(), candidate.right.to_string())).collect()
}

/// Values of `tokenizer.ggml.pre` the byte-level ("gpt2") vocabularies may name.
pub const BYTE_LEVEL_PRE_TOKENIZERS: [&str; 8] =
    ["default", "gpt2", "gpt-2", "qwen2", "llama-bpe", "llama3", "smaug-bpe", "smollm"];

/// Llama 3's split (tokenizer.json's): contractions, letters with one leading non-letter,
/// digits in threes, punctuation runs, newlines, spaces not before a word.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer built from a GGUF vocabulary.
#[derive(Clone, Debug)]
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    /// For SentencePiece vocabularies with a space prefix: the same tokenizer without it, for
    /// text that continues other text (a prefix space there would be a space that is not in
    /// the text).
    continuation: Option<Tokenizer>,
    bos_token_id: Option<u32>,
    eos_token_id: u32,
    vocabulary_size: usize,
}

impl GgufTokenizer {
    /// Reads the vocabulary from `file` and builds the tokenizer its `tokenizer.ggml.model`
    /// names.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let model = file.string("tokenizer.ggml.model")?;
        match model {
            "llama" => Self::from_vocabulary(&GgufVocabulary::from_gguf(file)?),
            "gpt2" => Self::byte_level(file),
            _ => {
                let pre = file.optional_string("tokenizer.ggml.pre")?.unwrap_or("default");
                Err(TokenizerError::UnsupportedModel {
                    path: file.path().to_path_buf(),
                    model: model.to_string(),
                    pre: pre.to_string(),
                })
            }
        }
    }

    /// A byte-level BPE ("gpt2") vocabulary: candle's reader, with the split of the
    /// pre-tokenizer the file names.
    fn byte_level(file: &GgufFile) -> Result<Self, TokenizerError> {
        let path = file.path().to_path_buf();
        let build_error = |message: String| TokenizerError::Build { path: path.clone(), message };
        let pre = file.optional_string("tokenizer.ggml.pre")?.unwrap_or("default").to_string();
        if !BYTE_LEVEL_PRE_TOKENIZERS.contains(&pre.as_str()) {
            return Err(TokenizerError::UnsupportedModel { path, model: "gpt2".into(), pre });
        }
        let tokens = file.string_array("tokenizer.ggml.tokens")?;
        let vocabulary_size = tokens.len();
        let eos_token_id = file.u32("tokenizer.ggml.eos_token_id")?;
        let bos_token_id = file.optional_u32("tokenizer.ggml.bos_token_id")?;
        for (role, token_id) in [("bos", bos_token_id), ("eos", Some(eos_token_id))] {
            if let Some(token_id) = token_id
                && token_id as usize >= vocabulary_size
            {
                return Err(TokenizerError::TokenIdOutOfRange { path, role, token_id, vocabulary_size });
            }
        }
        let mut tokenizer =
            Tokenizer::from_gguf(file.content()).map_err(|error| build_error(format!("byte-level BPE: {error}")))?;
        // GPT-2's own split without a prefix space (candle's default adds one); qwen2's is
        // candle's already.
        let byte_level = |use_regex: bool| ByteLevel::new(false, true, use_regex);
        let split: Option<PreTokenizerWrapper> = match pre.as_str() {
            "default" | "gpt2" | "gpt-2" => Some(byte_level(true).into()),
            "llama-bpe" | "llama3" | "smaug-bpe" => {
                let split =
                    Split::new(SplitPattern::Regex(LLAMA3_SPLIT.into()), SplitDelimiterBehavior::Isolated, false)
                        .map_err(|error| build_error(format!("pre-tokenizer: {error}")))?;
                Some(PreTokenizerSequence::new(vec![split.into(), byte_level(false).into()]).into())
            }
            "smollm" => Some(PreTokenizerSequence::new(vec![Digits::new(true).into(), byte_level(true).into()]).into()),
            _ => None,
        };
        if let Some(split) = split {
            tokenizer.with_pre_tokenizer(Some(split));
        }
        Ok(Self { tokenizer, continuation: None, bos_token_id, eos_token_id, vocabulary_size })
    }

    /// Opens the GGUF file at `path` (metadata only) and builds the tokenizer.
    pub fn from_gguf_path(path: &Path) -> Result<Self, TokenizerError> {
        Self::from_gguf(&GgufFile::open(path)?)
    }

    /// Builds the tokenizer: BPE over the pieces with derived merges, `<unk>` fused, byte
    /// fallback; spaces normalized to '▁' and split after; decoding maps '▁' back, reassembles
    /// byte tokens and joins; `<bos>` prepended when the vocabulary says so; control pieces
    /// added as special tokens, user-defined ones as plain added tokens matched verbatim.
    pub fn from_vocabulary(vocabulary: &GgufVocabulary) -> Result<Self, TokenizerError> {
        vocabulary.validate()?;
        let path = &vocabulary.source;
        let build_error = |message: String| TokenizerError::Build { path: path.clone(), message };
        let pieces = vocabulary.bpe_pieces();
        let merges = merges_from_pieces(&pieces, &vocabulary.scores, &vocabulary.token_types);
        let piece_of = |token_id: u32| pieces[token_id as usize].clone();

        // Later duplicates win, as in the merges.
        let bpe_vocabulary: Vocab = pieces.iter().cloned().zip(0u32..).collect();
        let bpe = BpeBuilder::new()
            .vocab_and_merges(bpe_vocabulary, merges)
            .unk_token(piece_of(vocabulary.unknown_token_id))
            .fuse_unk(true)
            .byte_fallback(true)
            .build()
            .map_err(|error| build_error(format!("BPE model: {error}")))?;

        let mut tokenizer = Tokenizer::new(bpe);
        let space_to_visible = Replace::new(" ", SENTENCEPIECE_SPACE.to_string())
            .map_err(|error| build_error(format!("normalizer: {error}")))?;
        tokenizer
            .with_normalizer(Some(space_to_visible.clone()))
            .map_err(|error| build_error(format!("normalizer: {error}")))?;
        // As in tokenizer.json; after the normalizer no plain space is left, so the whole text
        // stays one word for the BPE.
        let split_on_space = Split::new(" ", SplitDelimiterBehavior::MergedWithPrevious, false)
            .map_err(|error| build_error(format!("pre-tokenizer: {error}")))?;
        tokenizer.with_pre_tokenizer(Some(split_on_space));
        let visible_to_space = Replace::new(SENTENCEPIECE_SPACE.to_string(), " ")
            .map_err(|error| build_error(format!("decoder: {error}")))?;
        let decoder_steps = vec![
            DecoderWrapper::Replace(visible_to_space),
            DecoderWrapper::ByteFallback(ByteFallback::new()),
            DecoderWrapper::Fuse(Fuse::new()),
        ];
        tokenizer.with_decoder(Some(DecoderSequence::new(decoder_steps.clone())));

        let bos_piece = piece_of(vocabulary.bos_token_id);
        let single = if vocabulary.add_bos_token { format!("{bos_piece} $A") } else { "$A".to_string() };
        let pair =
            if vocabulary.add_bos_token { format!("{bos_piece} $A {bos_piece}:1 $B:1") } else { "$A $B:1".to_string() };
        let post_processor = TemplateProcessing::builder()
            .try_single(single.as_str())
            .map_err(|error| build_error(format!("post-processor: {error}")))?
            .try_pair(pair.as_str())
            .map_err(|error| build_error(format!("post-processor: {error}")))?
            .special_tokens(vec![(bos_piece.as_str(), vocabulary.bos_token_id)])
            .build()
            .map_err(|error| build_error(format!("post-processor: {error}")))?;
        tokenizer.with_post_processor(Some(post_processor));

        let mut special_tokens = Vec::new();
        let mut verbatim_tokens = Vec::new();
        for (piece, token_type) in pieces.iter().zip(&vocabulary.token_types) {
            if piece.is_empty() {
                continue;
            }
            match token_type {
                TokenType::Control | TokenType::Unknown => {
                    special_tokens.push(AddedToken::from(piece.clone(), true));
                }
                TokenType::UserDefined => {
                    verbatim_tokens.push(AddedToken::from(piece.clone(), false).normalized(false));
                }
                _ => {}
            }
        }
        tokenizer
            .add_special_tokens(special_tokens)
            .map_err(|error| build_error(format!("special tokens: {error}")))?;
        tokenizer.add_tokens(verbatim_tokens).map_err(|error| build_error(format!("user-defined tokens: {error}")))?;

        // SentencePiece's dummy prefix (llama 2): '▁' before the text, dropped again when
        // decoding; text continuing other text is encoded without it.
        let continuation = if vocabulary.add_space_prefix {
            let continuation = tokenizer.clone();
            let prefixed: NormalizerWrapper = NormalizerSequence::new(vec![
                Prepend::new(SENTENCEPIECE_SPACE.to_string()).into(),
                space_to_visible.into(),
            ])
            .into();
            tokenizer.with_normalizer(Some(prefixed)).map_err(|error| build_error(format!("normalizer: {error}")))?;
            let mut stripping = decoder_steps;
            stripping.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
            tokenizer.with_decoder(Some(DecoderSequence::new(stripping)));
            Some(continuation)
        } else {
            None
        };

        Ok(Self {
            tokenizer,
            continuation,
            bos_token_id: Some(vocabulary.bos_token_id),
            eos_token_id: vocabulary.eos_token_id,
            vocabulary_size: pieces.len(),
        })
    }

    /// Token ids of `text`; with `add_special_tokens` the vocabulary's `<bos>` comes first
    /// (when the vocabulary adds one).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        Self::encode_with(&self.tokenizer, text, add_special_tokens)
    }

    /// Token ids of `text` as it continues other text: no `<bos>` and no SentencePiece space
    /// prefix, so a prompt's parts encoded one by one read as the whole would.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        Self::encode_with(self.continuation.as_ref().unwrap_or(&self.tokenizer), text, false)
    }

    fn encode_with(tokenizer: &Tokenizer, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = tokenizer.encode(text, add_special_tokens).map_err(|error| TokenizerError::Encode {
            text_start: text.chars().take(40).collect(),
            message: error.to_string(),
        })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `token_ids`; `skip_special_tokens` drops control tokens such as `<bos>`: all of
    /// the GGUF's control tokens (`<unused0>`, `<start_of_turn>`, ...), where the official
    /// tokenizer.json flags only 9 as special and would keep the rest.
    pub fn decode(&self, token_ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(token_ids, skip_special_tokens)
            .map_err(|error| TokenizerError::Decode { token_count: token_ids.len(), message: error.to_string() })
    }

    /// The piece of one id ("▁the", "<bos>", "<0x0A>").
    pub fn token_piece(&self, token_id: u32) -> Option<String> {
        self.tokenizer.id_to_token(token_id)
    }

    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.tokenizer.token_to_id(piece)
    }

    /// The vocabulary's `<bos>` (byte-level vocabularies may have none).
    pub fn bos_token_id(&self) -> Option<u32> {
        self.bos_token_id
    }

    pub fn eos_token_id(&self) -> u32 {
        self.eos_token_id
    }

    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary_size
    }

    /// The underlying `tokenizers` tokenizer (offsets, batch encoding, streaming decode).
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::gguf_file::Value;

    use super::super::gguf::write_metadata_only_gguf_v3;
    use super::super::test_support::byte_level_vocabulary;
    use super::*;

    /// A tiny Gemma-like vocabulary: 4 control tokens, all 256 byte tokens, a few normal
    /// pieces whose scores make "hello" and "▁world" whole, a user-defined run of two spaces
    /// (stored with plain spaces, as llama.cpp writes it) and a control `<start_of_turn>`.
    fn tiny_vocabulary_entries() -> Vec<(String, f32, i32)> {
        let mut entries: Vec<(String, f32, i32)> = vec![
            ("<pad>".into(), -1000.0, 3),
            ("<eos>".into(), -1000.0, 3),
            ("<bos>".into(), -1000.0, 3),
            ("<unk>".into(), -1000.0, 3),
        ];
        for byte in 0..=255u8 {
            entries.push((format!("<0x{byte:02X}>"), 0.0, 6));
        }
        let normal = [
            "▁", "h", "e", "l", "o", "w", "r", "d", "k", "y", "ll", "he", "llo", "hello", "▁w", "or", "▁wor", "ld",
            "▁world", "ke", "ey", "key", "▁key",
        ];
        for (rank, piece) in normal.iter().enumerate() {
            entries.push((piece.to_string(), -(rank as f32), 1));
        }
        entries.push(("  ".into(), -1000.0, 4));
        entries.push(("<start_of_turn>".into(), -1000.0, 3));
        entries
    }

    fn write_tiny_gguf(path: &Path, tokenizer_model: &str) {
        let entries = tiny_vocabulary_entries();
        let metadata = vec![
            ("general.architecture", Value::String("gemma3".into())),
            ("tokenizer.ggml.model", Value::String(tokenizer_model.into())),
            ("tokenizer.ggml.pre", Value::String("default".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(entries.iter().map(|(piece, _, _)| Value::String(piece.clone())).collect()),
            ),
            ("tokenizer.ggml.scores", Value::Array(entries.iter().map(|(_, score, _)| Value::F32(*score)).collect())),
            ("tokenizer.ggml.token_type", Value::Array(entries.iter().map(|(_, _, code)| Value::I32(*code)).collect())),
            ("tokenizer.ggml.bos_token_id", Value::U32(2)),
            ("tokenizer.ggml.eos_token_id", Value::U32(1)),
            ("tokenizer.ggml.unknown_token_id", Value::U32(3)),
            ("tokenizer.ggml.padding_token_id", Value::U32(0)),
            ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
            ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
        ];
        write_metadata_only_gguf_v3(path, &metadata);
    }

    fn tiny_tokenizer() -> (tempfile::TempDir, GgufTokenizer) {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("tiny.gguf");
        write_tiny_gguf(&path, "llama");
        let tokenizer = GgufTokenizer::from_gguf_path(&path).expect("build the tiny tokenizer");
        (directory, tokenizer)
    }

    fn id(tokenizer: &GgufTokenizer, piece: &str) -> u32 {
        tokenizer.token_id(piece).unwrap_or_else(|| panic!("{piece:?} is in the tiny vocabulary"))
    }

    #[test]
    fn merges_follow_score_then_lengths_then_ids() {
        let pieces: Vec<String> = ["a", "b", "c", "ab", "bc", "abc", "<x>", "cc"].map(String::from).into();
        let scores = [0.0, 0.0, 0.0, -5.0, -1.0, -2.0, -1000.0, -1000.0];
        let types = [
            TokenType::Normal,
            TokenType::Normal,
            TokenType::Normal,
            TokenType::Normal,
            TokenType::Normal,
            TokenType::Normal,
            TokenType::Control,
            TokenType::UserDefined,
        ];
        let merges = merges_from_pieces(&pieces, &scores, &types);
        let merges: Vec<(&str, &str)> = merges.iter().map(|(l, r)| (l.as_str(), r.as_str())).collect();
        // "cc" is user-defined: score 0 (not its stored -1000) puts it first. "abc" splits two
        // ways at score -2: the longer left half ("ab", "c") ranks before ("a", "bc").
        assert_eq!(merges, [("c", "c"), ("b", "c"), ("ab", "c"), ("a", "bc"), ("a", "b")]);
    }

    #[test]
    fn merges_with_equal_keys_keep_id_order() {
        let pieces: Vec<String> = ["x", "y", "xy", "yx"].map(String::from).into();
        let types = [TokenType::Normal; 4];
        let merges = merges_from_pieces(&pieces, &[0.0; 4], &types);
        assert_eq!(merges, [("x".to_string(), "y".to_string()), ("y".to_string(), "x".to_string())]);
    }

    #[test]
    fn user_defined_pieces_get_visible_spaces() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("tiny.gguf");
        write_tiny_gguf(&path, "llama");
        let file = GgufFile::open(&path).expect("open");
        let vocabulary = GgufVocabulary::from_gguf(&file).expect("vocabulary");
        assert_eq!(file.format_version(), 3);
        assert_eq!(vocabulary.tokens.len(), 4 + 256 + 23 + 2);
        assert!(vocabulary.bpe_pieces().contains(&"▁▁".to_string()));
        assert!(!vocabulary.bpe_pieces().contains(&"  ".to_string()));
    }

    #[test]
    fn encodes_whole_words_through_merges_with_bos_first() {
        let (_directory, tokenizer) = tiny_tokenizer();
        let ids = tokenizer.encode("hello world", true).expect("encode");
        assert_eq!(ids, [2, id(&tokenizer, "hello"), id(&tokenizer, "▁world")]);
        let ids = tokenizer.encode("hello key", false).expect("encode");
        assert_eq!(ids, [id(&tokenizer, "hello"), id(&tokenizer, "▁key")]);
    }

    #[test]
    fn a_space_prefix_starts_the_text_but_not_its_continuations() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("llama2-like.gguf");
        write_tiny_gguf(&path, "llama");
        let file = GgufFile::open(&path).expect("open");
        let mut vocabulary = GgufVocabulary::from_gguf(&file).expect("vocabulary");
        vocabulary.add_space_prefix = true;
        let tokenizer = GgufTokenizer::from_vocabulary(&vocabulary).expect("build");
        let ids = tokenizer.encode("hello world", true).expect("encode");
        assert_eq!(ids, [2, id(&tokenizer, "▁"), id(&tokenizer, "hello"), id(&tokenizer, "▁world")]);
        assert_eq!(tokenizer.decode(&ids, true).expect("decode"), "hello world");
        let continued = tokenizer.encode_continuation("hello world").expect("continuation");
        assert_eq!(continued, [id(&tokenizer, "hello"), id(&tokenizer, "▁world")]);
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes_and_decode_back() {
        let (_directory, tokenizer) = tiny_tokenizer();
        let ids = tokenizer.encode("hé", true).expect("encode");
        assert_eq!(ids, [2, id(&tokenizer, "h"), id(&tokenizer, "<0xC3>"), id(&tokenizer, "<0xA9>")]);
        assert_eq!(tokenizer.decode(&ids, true).expect("decode"), "hé");
        assert_eq!(tokenizer.decode(&ids, false).expect("decode"), "<bos>hé");
    }

    #[test]
    fn added_tokens_are_matched_verbatim() {
        let (_directory, tokenizer) = tiny_tokenizer();
        // Two spaces are the user-defined "▁▁" piece; <start_of_turn> is a control token.
        let ids = tokenizer.encode("<start_of_turn>hello  world", true).expect("encode");
        let expected = [
            2,
            id(&tokenizer, "<start_of_turn>"),
            id(&tokenizer, "hello"),
            id(&tokenizer, "▁▁"),
            id(&tokenizer, "w"),
            id(&tokenizer, "or"),
            id(&tokenizer, "ld"),
        ];
        assert_eq!(ids, expected);
        assert_eq!(tokenizer.decode(&ids, false).expect("decode"), "<bos><start_of_turn>hello  world");
        assert_eq!(tokenizer.decode(&ids, true).expect("decode"), "hello  world");
    }

    #[test]
    fn reports_unsupported_tokenizer_models_with_the_file() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("t5-like.gguf");
        write_tiny_gguf(&path, "t5");
        let error = GgufTokenizer::from_gguf_path(&path).expect_err("t5 is not handled").to_string();
        assert!(error.contains("t5-like.gguf") && error.contains("\"t5\""), "{error}");

        let path = directory.path().join("odd-pre.gguf");
        write_byte_level_gguf(&path, "falcon");
        let error = GgufTokenizer::from_gguf_path(&path).expect_err("falcon's split is not handled").to_string();
        assert!(error.contains("odd-pre.gguf") && error.contains("\"falcon\""), "{error}");
    }

    fn write_byte_level_gguf(path: &Path, pre: &str) {
        let metadata = byte_level_vocabulary(pre);
        let metadata: Vec<(&str, Value)> = metadata.iter().map(|(key, value)| (*key, value.clone())).collect();
        write_metadata_only_gguf_v3(path, &metadata);
    }

    #[test]
    fn byte_level_vocabularies_split_as_their_pre_tokenizer_says() {
        let directory = tempfile::tempdir().expect("temporary directory");
        // Byte pieces have their byte's id; then "Ġt" 256, "Ġth" 257, "Ġthe" 258, "Ġk" 259,
        // "Ġke" 260, "Ġkey" 261, "12" 262, "123" 263, `<|endoftext|>` 264.
        let byte = |character: char| character as u32;
        let (the, key, one_two_three, end_of_text) = (258, 261, 263, 264);
        let single_digits = vec![byte('1'), byte('2'), byte('3')];
        // " 123": every split puts the space apart from the digits (GPT-2's keeps " 123" as
        // one word, but no merge joins the space to a digit); Qwen2 and SmolLM split digits
        // one by one, Llama 3 in threes.
        for (pre, digits) in [
            ("qwen2", single_digits.clone()),
            ("llama-bpe", vec![one_two_three]),
            ("smollm", single_digits),
            ("gpt2", vec![one_two_three]),
        ] {
            let path = directory.path().join(format!("{pre}.gguf"));
            write_byte_level_gguf(&path, pre);
            let tokenizer = GgufTokenizer::from_gguf_path(&path).unwrap_or_else(|error| panic!("{pre}: {error}"));
            let text = "x the key 123";
            let ids = tokenizer.encode(text, true).expect("encode");
            let mut expected = vec![byte('x'), the, key, byte(' ')];
            expected.extend(&digits);
            assert_eq!(ids, expected, "{pre}");
            assert_eq!(tokenizer.decode(&ids, true).expect("decode"), text, "{pre}");
            assert_eq!(tokenizer.encode_continuation(" the").expect("continuation"), vec![the], "{pre}");
            assert_eq!((tokenizer.bos_token_id(), tokenizer.eos_token_id()), (Some(end_of_text), end_of_text));
        }
    }

    #[test]
    fn reports_inconsistent_metadata() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("short-scores.gguf");
        let metadata = vec![
            ("tokenizer.ggml.model", Value::String("llama".into())),
            ("tokenizer.ggml.tokens", Value::Array(vec![Value::String("a".into()), Value::String("b".into())])),
            ("tokenizer.ggml.scores", Value::Array(vec![Value::F32(0.0)])),
            ("tokenizer.ggml.token_type", Value::Array(vec![Value::I32(1), Value::I32(1)])),
        ];
        write_metadata_only_gguf_v3(&path, &metadata);
        let error = GgufTokenizer::from_gguf_path(&path).expect_err("lengths differ").to_string();
        assert!(error.contains("short-scores.gguf") && error.contains("2 tokens, 1 scores"), "{error}");

        let path = directory.path().join("bad-bos.gguf");
        let mut metadata = metadata;
        metadata[2].1 = Value::Array(vec![Value::F32(0.0), Value::F32(0.0)]);
        metadata.push(("tokenizer.ggml.bos_token_id", Value::U32(9)));
        metadata.push(("tokenizer.ggml.eos_token_id", Value::U32(1)));
        metadata.push(("tokenizer.ggml.unknown_token_id", Value::U32(0)));
        write_metadata_only_gguf_v3(&path, &metadata);
        let error = GgufTokenizer::from_gguf_path(&path).expect_err("bos out of range").to_string();
        assert!(error.contains("bos token id 9 is outside the 2-token vocabulary"), "{error}");

        let path = directory.path().join("no-tokens.gguf");
        write_metadata_only_gguf_v3(&path, &[("tokenizer.ggml.model", Value::String("llama".into()))]);
        let error = GgufTokenizer::from_gguf_path(&path).expect_err("no tokens").to_string();
        assert!(error.contains("`tokenizer.ggml.tokens` is missing"), "{error}");
    }
}
