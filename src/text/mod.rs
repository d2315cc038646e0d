//! Text to tokens: normalisation ([`normalize`]) and tokenising ([`tokens`]).
//!
//! Both are pure functions of the comment, bounded in the work they do, and allocate nothing per
//! token on the hot path (reuse a [`tokens::Scratch`]).

pub mod normalize;
pub mod tokens;

pub use normalize::{dedup_key, normalize, Normalized};
pub use tokens::{
    kind_slot, tokenize, FeatureId, Scratch, Token, TokenKind, KIND_SLOTS, TOKENIZER_VERSION,
};
