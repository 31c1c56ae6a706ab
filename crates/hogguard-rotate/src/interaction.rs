//! How a rotation talks to the person running it: instructions out, keys and confirmations in.
//! The CLI implements [`Interaction`] on the terminal (reading keys without echo, or from
//! standard input); tests script it.

use hogguard_secret::Secret;

/// The person at the other end of an assisted rotation (personal API keys, project API keys)
/// and the reader of progress messages of automatic ones.
pub trait Interaction {
    /// Shows a message: an instruction or progress. Never contains a secret. How a call ended
    /// is its returned [`Outcome`](crate::Outcome), never shown here as well.
    fn show(&mut self, message: &str);

    /// Asks for a secret (a key the person created in PostHog) after showing `prompt`.
    fn read_secret(&mut self, prompt: &str) -> Result<Secret, InteractionError>;

    /// Asks a yes-or-no question; `true` is yes.
    fn confirm(&mut self, question: &str) -> Result<bool, InteractionError>;
}

/// Why the person could not be asked, or did not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InteractionError {
    /// The person gave up (Ctrl-C, an empty answer, end of input).
    #[error("cancelled at the prompt")]
    Cancelled,
    /// Reading or writing the terminal or standard input failed, or there is none.
    #[error("cannot read the answer")]
    Io(#[source] std::io::Error),
}
