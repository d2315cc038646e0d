//! The comment as every layer sees it: the text and the metadata a blog engine sends.
//!
//! This is the domain type that the corpus readers produce, the tokenizer reads and (later) the
//! gRPC and Akismet adapters convert into. It owns no transport types.

use serde::{Deserialize, Serialize};

/// What kind of submission a comment is, as Akismet's `comment_type` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentKind {
    /// Not said by the caller.
    #[default]
    Unspecified,
    /// A top-level comment on a post.
    Comment,
    /// A reply to another comment.
    Reply,
    /// A trackback from another site.
    Trackback,
    /// A pingback from another site.
    Pingback,
    /// A contact-form message.
    ContactForm,
    /// A sign-up form.
    Signup,
    /// A direct or private message.
    Message,
}

impl CommentKind {
    /// A short stable name, used in metadata tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            CommentKind::Unspecified => "unspecified",
            CommentKind::Comment => "comment",
            CommentKind::Reply => "reply",
            CommentKind::Trackback => "trackback",
            CommentKind::Pingback => "pingback",
            CommentKind::ContactForm => "contact_form",
            CommentKind::Signup => "signup",
            CommentKind::Message => "message",
        }
    }
}

/// One comment: its text and the optional facts about who sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The comment's body as the blog stored it (may contain HTML).
    pub content: String,
    /// The author's display name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The author's e-mail address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The author's web site.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The client's IP address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// The client's user agent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// What kind of submission this is.
    #[serde(default, rename = "type")]
    pub kind: CommentKind,
}

impl Comment {
    /// A comment with only a body.
    pub fn from_content(content: impl Into<String>) -> Self {
        Comment {
            content: content.into(),
            ..Comment::default()
        }
    }
}

/// The label a moderator (or a corpus) gives a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// A legitimate comment.
    Ham,
    /// Spam.
    Spam,
}

impl Label {
    /// Index of the class in per-class arrays: ham 0, spam 1.
    pub fn index(self) -> usize {
        match self {
            Label::Ham => 0,
            Label::Spam => 1,
        }
    }

    /// Whether this is [`Label::Spam`].
    pub fn is_spam(self) -> bool {
        self == Label::Spam
    }

    /// The label's name as in corpora: `spam` or `ham`.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Ham => "ham",
            Label::Spam => "spam",
        }
    }
}

impl std::str::FromStr for Label {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "spam" | "1" => Ok(Label::Spam),
            "ham" | "0" => Ok(Label::Ham),
            other => Err(format!("label must be `spam` or `ham`, got `{other}`")),
        }
    }
}
