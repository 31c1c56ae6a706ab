//! Checks on error chains, for the rule every hogguard error follows: a message says what
//! failed, its `source()` says why, and a message never repeats its source's text.

use std::error::Error;

/// The messages of `error` and of each of its sources, outermost first.
pub fn chain(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut messages = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        messages.push(error.to_string());
        next = error.source();
    }
    messages
}

/// Panics when a message in `error`'s chain contains the whole text of a later one (the
/// cause printed twice by `{:#}`), or when a message is empty.
pub fn assert_no_repeated_segment(error: &(dyn Error + 'static)) {
    let messages = chain(error);
    for (index, message) in messages.iter().enumerate() {
        assert!(
            !message.trim().is_empty(),
            "empty message at depth {index} in {messages:?}"
        );
        for later in &messages[index + 1..] {
            assert!(
                !message.contains(later.as_str()),
                "`{message}` repeats its cause `{later}` (chain: {messages:?})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer {
        repeat: bool,
        source: std::io::Error,
    }

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.repeat {
                write!(f, "cannot read x: {}", self.source)
            } else {
                write!(f, "cannot read x")
            }
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.source)
        }
    }

    fn outer(repeat: bool) -> Outer {
        Outer {
            repeat,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
    }

    #[test]
    fn a_message_without_its_cause_passes() {
        assert_eq!(chain(&outer(false)), ["cannot read x", "entity not found"]);
        assert_no_repeated_segment(&outer(false));
    }

    #[test]
    #[should_panic(expected = "repeats its cause")]
    fn a_message_that_repeats_its_cause_fails() {
        assert_no_repeated_segment(&outer(true));
    }
}
