//! How a rotation talks to the person running it: instructions out, keys and confirmations in.
//! The CLI implements [`Interaction`] on the terminal (reading keys without echo, or from
//! standard input); tests script it.

use std::fmt;

use hogguard_secret::Secret;

/// The person at the other end of an assisted rotation (personal API keys, project API keys)
/// and the reader of progress messages of automatic ones.
pub trait Interaction {
    /// Shows a message: an instruction or progress. Never contains a secret.
    fn show(&mut self, message: &str);

    /// Asks for a secret (a key the person created in PostHog) after showing `prompt`.
    fn read_secret(&mut self, prompt: &str) -> Result<Secret, InteractionError>;

    /// Asks a yes-or-no question; `true` is yes.
    fn confirm(&mut self, question: &str) -> Result<bool, InteractionError>;
}

/// Why the person could not be asked, or did not answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum InteractionError {
    /// The person gave up (Ctrl-C, an empty answer, end of input).
    Cancelled,
    /// Reading or writing the terminal or standard input failed.
    Io(std::io::Error),
}

impl fmt::Display for InteractionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InteractionError::Cancelled => f.write_str("cancelled at the prompt"),
            InteractionError::Io(error) => write!(f, "cannot read the answer: {error}"),
        }
    }
}

impl std::error::Error for InteractionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InteractionError::Cancelled => None,
            InteractionError::Io(error) => Some(error),
        }
    }
}
