//! Text to tokens: normalisation ([`normalize`]) and tokenising ([`tokens`]).
//!
//! Both are pure functions of the comment, bounded in the work they do, and allocate nothing per
//! token on the hot path (reuse a [`tokens::Scratch`]).

pub mod normalize;
pub mod tokens;

pub use normalize::{dedup_key, normalize, Normalized};
pub use tokens::{tokenize, FeatureId, Scratch, Token, TokenKind, TOKENIZER_VERSION};
