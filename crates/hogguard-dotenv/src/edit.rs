//! Text-level edits of a `.env` file: replace or remove one variable and leave every other byte
//! (comments, order, quoting of other values, `export`, line endings) as it was.

use std::fmt;

use crate::{Entry, ParseError, Quote, parse};

/// Why a `.env` text could not be edited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditError {
    /// The text does not parse, so where its values stand is unknown; it is left alone.
    Parse(ParseError),
    /// The name is not one the parser reads back as a variable name.
    InvalidKey {
        /// The refused name.
        key: String,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Parse(_) => f.write_str("cannot edit an unreadable .env text"),
            EditError::InvalidKey { key } => write!(
                f,
                "`{key}` is not a variable name (letters, digits, `_`, `.`, `-`, not starting with a digit)"
            ),
        }
    }
}

impl std::error::Error for EditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EditError::Parse(error) => Some(error),
            EditError::InvalidKey { .. } => None,
        }
    }
}

impl From<ParseError> for EditError {
    fn from(error: ParseError) -> Self {
        EditError::Parse(error)
    }
}

/// Sets `key` to `value` in a `.env` text and returns the new text.
///
/// Every assignment of `key` gets the new value, so no earlier copy of an old secret stays
/// behind; only the bytes of those values change. The value keeps its quoting when that
/// quoting can hold it; otherwise an unquoted value gets single quotes if they can hold it on
/// one line, and any other value double quotes with escapes, which hold anything. When `key`
/// is absent, `KEY=value` is appended on a new line, with the line ending the text already
/// uses at its end (LF when it has none); a last line without its line break gets one.
///
/// ```
/// let text = "# prod\r\nexport A='old' # rotated monthly\r\nB=2\r\n";
/// let edited = hogguard_dotenv::set(text, "A", "new value")?;
/// assert_eq!(edited, "# prod\r\nexport A='new value' # rotated monthly\r\nB=2\r\n");
/// assert_eq!(hogguard_dotenv::set("B=2", "C", "x y # z")?, "B=2\nC='x y # z'\n");
/// # Ok::<(), hogguard_dotenv::EditError>(())
/// ```
pub fn set(text: &str, key: &str, value: &str) -> Result<String, EditError> {
    check_key(key)?;
    let env = parse(text)?;
    let assignments: Vec<&Entry> = env.entries().iter().filter(|e| e.key == key).collect();
    if assignments.is_empty() {
        let newline = line_ending(text);
        let mut edited = String::with_capacity(text.len() + key.len() + value.len() + 8);
        edited.push_str(text);
        if newline == "\r\n" && text.ends_with('\r') {
            // A CRLF whose LF is missing: completed, not doubled.
            edited.push('\n');
        } else if !text.is_empty() && !text.ends_with('\n') {
            edited.push_str(newline);
        }
        edited.push_str(key);
        edited.push('=');
        edited.push_str(&render(value, Quote::None));
        edited.push_str(newline);
        return Ok(edited);
    }
    let mut edited = String::with_capacity(text.len() + value.len() * assignments.len());
    let mut copied_up_to = 0;
    for entry in assignments {
        edited.push_str(&text[copied_up_to..entry.span.start]);
        edited.push_str(&render(value, entry.quote));
        copied_up_to = entry.span.end;
    }
    edited.push_str(&text[copied_up_to..]);
    Ok(edited)
}

/// Removes every assignment of `key` (the whole line, or lines for a multi-line value, with
/// any comment that follows the value) and returns the new text; the text is returned
/// unchanged when `key` is absent.
///
/// ```
/// let text = "A=1\nOLD=\"x\ny\" # gone too\nB=2\n";
/// assert_eq!(hogguard_dotenv::remove(text, "OLD")?, "A=1\nB=2\n");
/// # Ok::<(), hogguard_dotenv::EditError>(())
/// ```
pub fn remove(text: &str, key: &str) -> Result<String, EditError> {
    check_key(key)?;
    let env = parse(text)?;
    let mut edited = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for entry in env.entries().iter().filter(|e| e.key == key) {
        // An assignment starts on the line its value starts on: `KEY=` cannot span lines.
        let line_start = text[..entry.span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[entry.span.end..]
            .find('\n')
            .map_or(text.len(), |i| entry.span.end + i + 1);
        edited.push_str(&text[copied_up_to..line_start]);
        copied_up_to = line_end;
    }
    edited.push_str(&text[copied_up_to..]);
    Ok(edited)
}

/// Refuses names the parser would not read back as one variable name.
fn check_key(key: &str) -> Result<(), EditError> {
    let valid = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(EditError::InvalidKey {
            key: key.to_owned(),
        })
    }
}

/// The line ending the text uses where a line is appended: that of its last line break
/// (in a file mixing endings, the nearest one), `\n` for a text with none.
fn line_ending(text: &str) -> &'static str {
    match text.rfind('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// `value` as it must be written to read back exactly, in `preferred` quoting if that can hold
/// it.
fn render(value: &str, preferred: Quote) -> String {
    // A quoted value stays quoted; an unquoted one gets single quotes when they hold it on one
    // line, else double quotes, whose `\n` escape keeps it on one line.
    let quote = if fits(value, preferred) {
        preferred
    } else if preferred == Quote::None && !value.contains('\n') && fits(value, Quote::Single) {
        Quote::Single
    } else {
        Quote::Double
    };
    match quote {
        Quote::None => value.to_owned(),
        Quote::Single => format!("'{value}'"),
        Quote::Backtick => format!("`{value}`"),
        Quote::Double => {
            let mut written = String::with_capacity(value.len() + 2);
            written.push('"');
            for c in value.chars() {
                match c {
                    '"' | '\\' | '$' => {
                        written.push('\\');
                        written.push(c);
                    }
                    '\n' => written.push_str("\\n"),
                    '\r' => written.push_str("\\r"),
                    c => written.push(c),
                }
            }
            written.push('"');
            written
        }
    }
}

/// Whether `value` reads back exactly when written in `quote` quoting, by the parser's rules.
fn fits(value: &str, quote: Quote) -> bool {
    match quote {
        // Unquoted values end at the line's end or at a ` #` comment, lose leading blanks and
        // trailing whitespace, and must not start like a quoted value.
        Quote::None => {
            !value.contains(['\n', '\r'])
                && !value.contains(" #")
                && !value.contains("\t#")
                && !value.starts_with([' ', '\t', '\'', '"', '`'])
                && !value.ends_with(char::is_whitespace)
        }
        // Literal quotes end at their quote character and drop carriage returns.
        Quote::Single => !value.contains(['\'', '\r']),
        Quote::Backtick => !value.contains(['`', '\r']),
        Quote::Double => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn replaces_only_the_value_bytes() {
        let text = "# keys\nexport A=old   # comment\nB=\"keep\"\nA2=x\n";
        assert_eq!(
            set(text, "A", "new").unwrap(),
            "# keys\nexport A=new   # comment\nB=\"keep\"\nA2=x\n"
        );
        assert_eq!(
            set("A=\"old\"\n", "A", "n$w\"\\").unwrap(),
            "A=\"n\\$w\\\"\\\\\"\n"
        );
        assert_eq!(set("A=`old`\n", "A", "it's").unwrap(), "A=`it's`\n");
        assert_eq!(set("A='old'\n", "A", "it's").unwrap(), "A=\"it's\"\n");
        assert_eq!(set("A=\n", "A", " padded ").unwrap(), "A=' padded '\n");
        assert_eq!(
            set("A=old\n", "A", "two\nlines").unwrap(),
            "A=\"two\\nlines\"\n"
        );
    }

    #[test]
    fn every_copy_of_the_key_changes() {
        assert_eq!(
            set("A=1\nB=2\nA='1'\n", "A", "3").unwrap(),
            "A=3\nB=2\nA='3'\n"
        );
    }

    #[test]
    fn appends_with_the_files_line_ending() {
        assert_eq!(set("", "A", "1").unwrap(), "A=1\n");
        assert_eq!(set("B=2\r\n", "A", "1").unwrap(), "B=2\r\nA=1\r\n");
        assert_eq!(
            set("# only a comment", "A", "1").unwrap(),
            "# only a comment\nA=1\n"
        );
    }

    /// Issue 11 point 13: a mostly-LF file without a final newline (its first line, say a
    /// comment pasted from Windows, ends in CRLF) gained CRLF line endings.
    #[test]
    fn appends_with_the_line_ending_of_the_files_end() {
        assert_eq!(
            set("# from a template\r\nA=1\nB=2", "C", "3").unwrap(),
            "# from a template\r\nA=1\nB=2\nC=3\n"
        );
        assert_eq!(
            set("A=1\nB=2\r\nD=4", "C", "3").unwrap(),
            "A=1\nB=2\r\nD=4\r\nC=3\r\n"
        );
        // The carriage return of a CRLF whose LF is missing is completed, not doubled.
        assert_eq!(
            set("A=1\r\nB=2\r", "C", "3").unwrap(),
            "A=1\r\nB=2\r\nC=3\r\n"
        );
        assert_eq!(set("B=2", "C", "3").unwrap(), "B=2\nC=3\n");
    }

    #[test]
    fn removes_whole_assignments() {
        assert_eq!(remove("A=1\r\nB=2\r\n", "A").unwrap(), "B=2\r\n");
        assert_eq!(remove("B=2\nA=1", "A").unwrap(), "B=2\n");
        assert_eq!(remove("A=1\nA=2\n", "A").unwrap(), "");
        assert_eq!(remove("B=2\n", "A").unwrap(), "B=2\n");
    }

    #[test]
    fn refuses_bad_names_and_unreadable_texts() {
        for key in ["", "1A", "A B", "A=B", "Ä"] {
            assert_eq!(
                set("", key, "v"),
                Err(EditError::InvalidKey {
                    key: key.to_owned()
                })
            );
        }
        let error = set("A=\"phx_secret\n", "A", "v").unwrap_err();
        assert!(matches!(error, EditError::Parse(_)));
        assert!(!error.to_string().contains("phx_secret"));
    }

    /// Issue 15 point 1: each error says what failed once, its cause only as its source.
    #[test]
    fn error_chains_repeat_nothing() {
        for error in [
            set("A=\"open\n", "A", "v").unwrap_err(),
            remove("1=2\n", "A").unwrap_err(),
            set("", "A B", "v").unwrap_err(),
        ] {
            hogguard_testkit::errors::assert_no_repeated_segment(&error);
        }
    }

    /// A line of a `.env` file in one of the forms people write.
    fn line() -> impl Strategy<Value = String> {
        let key = "(A|B|C|export|K\\.1|k-2)";
        let value = "[ -~]{0,12}";
        prop_oneof![
            Just(String::new()),
            "# [ -~]{0,10}",
            (key, value).prop_map(|(k, v)| format!("{k}={}", v.trim())),
            (key, "[^'\r]{0,12}").prop_map(|(k, v)| format!("export {k} = '{v}'  # c")),
            (key, "[a-z\n]{0,12}").prop_map(|(k, v)| format!("{k}=\"{v}\"")),
            (key, "[^`\r]{0,12}").prop_map(|(k, v)| format!("{k}=`{v}`")),
        ]
    }

    fn env_text() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(line(), 0..8),
            prop_oneof![Just("\n"), Just("\r\n")],
            any::<bool>(),
        )
            .prop_map(|(lines, newline, final_newline)| {
                let mut text = lines.join(newline);
                if final_newline && !text.is_empty() {
                    text.push_str(newline);
                }
                text
            })
    }

    /// A `.env` text whose every line break is `\n` or every one `\r\n` (inside quoted values
    /// too, as an editor writes it), with or without a final one; and that line break.
    fn text_with_one_line_ending() -> impl Strategy<Value = (String, &'static str)> {
        (
            proptest::collection::vec(line(), 0..8),
            prop_oneof![Just("\n"), Just("\r\n")],
            any::<bool>(),
        )
            .prop_map(|(lines, newline, final_newline)| {
                let mut text = lines.join("\n");
                if final_newline && !text.is_empty() {
                    text.push('\n');
                }
                (text.replace('\n', newline), newline)
            })
    }

    /// A `.env` text of one-line assignments and comments whose line breaks are each `\n` or
    /// `\r\n`, without a final one.
    fn text_with_mixed_line_endings() -> impl Strategy<Value = String> {
        let line = "(A|B|K-1)=[a-z0-9]{0,6}|# [a-z ]{0,8}";
        proptest::collection::vec((line, prop_oneof![Just("\n"), Just("\r\n")]), 1..6).prop_map(
            |lines| {
                let mut text = String::new();
                for (line, newline) in &lines {
                    text.push_str(newline);
                    text.push_str(line);
                }
                text.split_off(lines[0].1.len())
            },
        )
    }

    /// The assignments of every key but `key`, as (key, value) in file order.
    fn others(text: &str, key: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .entries()
            .iter()
            .filter(|e| e.key != key)
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    proptest! {
        #[test]
        fn set_reads_back_and_leaves_the_rest(
            text in env_text(),
            key in "(A|B|C|NEW_KEY)",
            value in "(?s)[^\\x00]{0,30}",
        ) {
            prop_assume!(parse(&text).is_ok());
            let edited = set(&text, &key, &value).unwrap();
            let env = parse(&edited).unwrap();
            prop_assert_eq!(env.get(&key), Some(value.as_str()));
            for entry in env.entries().iter().filter(|e| e.key == key) {
                prop_assert_eq!(&entry.value, &value);
            }
            prop_assert_eq!(others(&edited, &key), others(&text, &key));
        }

        /// Issue 11 point 13: an appended assignment ends with the file's line ending, and
        /// a file without a final line break gets the file's one (LF when it has none).
        #[test]
        fn appending_keeps_the_files_line_ending(
            (text, newline) in text_with_one_line_ending(),
            value in "(?s)[^\\x00]{0,20}",
        ) {
            prop_assume!(parse(&text).is_ok());
            let edited = set(&text, "NEW_KEY", &value).unwrap();
            // A text without a line break has no line ending of its own: it gets LF.
            let newline = if text.contains('\n') { newline } else { "\n" };
            prop_assert!(edited.starts_with(&text));
            prop_assert!(edited.ends_with(newline));
            if newline == "\n" {
                prop_assert!(!edited.contains('\r'), "{:?}", edited);
            } else {
                prop_assert_eq!(edited.matches('\n').count(), edited.matches("\r\n").count());
            }
        }

        /// In a file mixing line endings, the appended line takes the ending of the line
        /// break nearest to it.
        #[test]
        fn appending_to_a_mixed_file_follows_its_last_line(text in text_with_mixed_line_endings()) {
            let edited = set(&text, "NEW_KEY", "v").unwrap();
            let last_break = text.rfind('\n').map(|i| &text[..i]);
            let newline = match last_break {
                Some(before) if before.ends_with('\r') => "\r\n",
                _ => "\n",
            };
            prop_assert_eq!(edited, format!("{text}{newline}NEW_KEY=v{newline}"));
        }

        #[test]
        fn remove_drops_the_key_and_leaves_the_rest(
            text in env_text(),
            key in "(A|B|C|NEW_KEY)",
        ) {
            prop_assume!(parse(&text).is_ok());
            let edited = remove(&text, &key).unwrap();
            let env = parse(&edited).unwrap();
            prop_assert_eq!(env.get(&key), None);
            prop_assert_eq!(others(&edited, &key), others(&text, &key));
        }

        #[test]
        fn set_on_any_readable_text(text in "(?s).{0,120}", value in "(?s).{0,20}") {
            if parse(&text).is_ok() {
                let edited = set(&text, "K", &value).unwrap();
                let env = parse(&edited).unwrap();
                prop_assert_eq!(env.get("K"), Some(value.as_str()));
            }
        }
    }
}
