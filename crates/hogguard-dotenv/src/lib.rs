//! Reads `.env` files the way dotenv libraries do, and remembers where each value stands in
//! the text, so that a value can be replaced ([`set`]) or removed ([`remove`]) without touching
//! comments, order, the quoting of other values or line endings.
//!
//! Syntax: blank lines and `#` comments; `KEY=VALUE`, optionally after `export `; spaces around
//! `=`; values unquoted (up to a ` #` comment or the end of the line, trimmed), single-quoted or
//! backtick-quoted (literal, may span lines) or double-quoted (may span lines; `\n`, `\r`, `\t`,
//! `\"`, `\\` and `\$` are escapes). `${VAR}` is kept as written, never expanded.
//!
//! ```
//! let env = hogguard_dotenv::parse("# keys\nexport POSTHOG_KEY=\"phx_abc\\\\n\" # prod\nA=1\n")?;
//! assert_eq!(env.get("POSTHOG_KEY"), Some("phx_abc\\n"));
//! assert_eq!(env.get("A"), Some("1"));
//! # Ok::<(), hogguard_dotenv::ParseError>(())
//! ```
#![deny(missing_docs)]

mod edit;

use std::fmt;
use std::ops::Range;

pub use edit::{EditError, remove, set};

/// How a value was quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `KEY=value`
    None,
    /// `KEY='value'`
    Single,
    /// `KEY="value"`
    Double,
    /// ``KEY=`value` ``
    Backtick,
}

/// One `KEY=VALUE` assignment.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The variable name.
    pub key: String,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// How the value was quoted.
    pub quote: Quote,
    /// 1-based line of the assignment.
    pub line: usize,
    /// Byte range of the value as written, quotes included.
    pub span: Range<usize>,
}

/// Values in `.env` files are usually secrets: `Debug` shows the key, never the value.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("quote", &self.quote)
            .field("line", &self.line)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// A parsed `.env` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotEnv {
    entries: Vec<Entry>,
}

impl DotEnv {
    /// Every assignment in file order; a key assigned twice appears twice.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The value of `key`; the last assignment wins, as in shells and dotenv libraries.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    /// The assignment of `key` that counts (the last one).
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// Why a `.env` text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line where the problem is.
    pub line: usize,
    /// What is wrong, never quoting a value.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a `.env` text.
pub fn parse(text: &str) -> Result<DotEnv, ParseError> {
    let mut parser = Parser {
        text,
        pos: 0,
        line: 1,
    };
    let mut entries = Vec::new();
    while parser.pos < text.len() {
        if let Some(entry) = parser.statement()? {
            entries.push(entry);
        }
    }
    Ok(DotEnv { entries })
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
    line: usize,
}

impl<'t> Parser<'t> {
    fn rest(&self) -> &'t str {
        &self.text[self.pos..]
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    fn skip_blanks(&mut self) {
        let skipped = self.rest().len() - self.rest().trim_start_matches([' ', '\t']).len();
        self.pos += skipped;
    }

    /// Consumes the rest of the line, newline included.
    fn skip_line(&mut self) {
        match self.rest().find('\n') {
            Some(i) => {
                self.pos += i + 1;
                self.line += 1;
            }
            None => self.pos = self.text.len(),
        }
    }

    /// One line: blank, comment or assignment.
    fn statement(&mut self) -> Result<Option<Entry>, ParseError> {
        self.skip_blanks();
        let rest = self.rest();
        if rest.is_empty() || rest.starts_with(['\n', '\r', '#']) {
            self.skip_line();
            return Ok(None);
        }
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            self.pos += "export".len();
            self.skip_blanks();
        }
        let line = self.line;
        let key_len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(self.rest().len());
        let key = &self.rest()[..key_len];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.error("expected a variable name"));
        }
        let key = key.to_owned();
        self.pos += key_len;
        self.skip_blanks();
        if !self.rest().starts_with('=') {
            return Err(self.error(format!("expected `=` after {key}")));
        }
        self.pos += 1;
        self.skip_blanks();
        let start = self.pos;
        let (value, quote) = match self.rest().chars().next() {
            Some('\'') => (self.quoted('\'', false)?, Quote::Single),
            Some('`') => (self.quoted('`', false)?, Quote::Backtick),
            Some('"') => (self.quoted('"', true)?, Quote::Double),
            _ => (self.unquoted(), Quote::None),
        };
        let span = start..self.pos;
        if quote != Quote::None {
            // Only blanks and a comment may follow a closing quote.
            self.skip_blanks();
            let rest = self.rest();
            if !(rest.is_empty() || rest.starts_with(['\n', '\r', '#'])) {
                return Err(self.error(format!("unexpected text after the quoted value of {key}")));
            }
        }
        self.skip_line();
        Ok(Some(Entry {
            key,
            value,
            quote,
            line,
            span,
        }))
    }

    /// An unquoted value: up to the end of the line or a comment after a blank, trimmed.
    fn unquoted(&mut self) -> String {
        let rest = self.rest();
        let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..line_end];
        let comment = line
            .char_indices()
            .find(|&(i, c)| c == '#' && i > 0 && line[..i].ends_with([' ', '\t']))
            .map_or(line.len(), |(i, _)| i);
        let value = line[..comment].trim_end();
        self.pos += value.len();
        value.to_owned()
    }

    /// A quoted value, possibly over several lines; `escapes` turns on backslash escapes.
    fn quoted(&mut self, quote: char, escapes: bool) -> Result<String, ParseError> {
        let opening_line = self.line;
        self.pos += quote.len_utf8();
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.pos += i + c.len_utf8();
                    return Ok(value);
                }
                '\\' if escapes => {
                    let Some((_, next)) = chars.next() else { break };
                    match next {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        '"' | '\\' | '$' => value.push(next),
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    }
                    if next == '\n' {
                        self.line += 1;
                    }
                }
                '\n' => {
                    value.push('\n');
                    self.line += 1;
                }
                // CRLF files: the value keeps LF only, as dotenv libraries do.
                '\r' => {}
                other => value.push(other),
            }
        }
        self.line = opening_line;
        Err(self.error(format!("the quote {quote} opened here is never closed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_every_form() {
        let text = concat!(
            "# comment\n",
            "\n",
            "PLAIN=value\n",
            "SPACED = value with spaces   # trailing comment\n",
            "export EXPORTED=yes\n",
            "HASH=a#b\n",
            "SINGLE='literal \\n $X'\n",
            "DOUBLE=\"tab\\tquote\\\" dollar\\$ nl\\n\"\n",
            "MULTI=\"line one\n",
            "line two\"\n",
            "TICK=`x y`\n",
            "EMPTY=\n",
            "CRLF=windows\r\n",
            "EXPANDED=${PLAIN}\n",
        );
        let env = parse(text).unwrap();
        assert_eq!(env.get("PLAIN"), Some("value"));
        assert_eq!(env.get("SPACED"), Some("value with spaces"));
        assert_eq!(env.get("EXPORTED"), Some("yes"));
        assert_eq!(env.get("HASH"), Some("a#b"));
        assert_eq!(env.get("SINGLE"), Some("literal \\n $X"));
        assert_eq!(env.get("DOUBLE"), Some("tab\tquote\" dollar$ nl\n"));
        assert_eq!(env.get("MULTI"), Some("line one\nline two"));
        assert_eq!(env.get("TICK"), Some("x y"));
        assert_eq!(env.get("EMPTY"), Some(""));
        assert_eq!(env.get("CRLF"), Some("windows"));
        assert_eq!(env.get("EXPANDED"), Some("${PLAIN}"));
        let tick = env.entry("TICK").unwrap();
        assert_eq!((tick.line, &text[tick.span.clone()]), (11, "`x y`"));
    }

    #[test]
    fn the_last_assignment_wins() {
        let env = parse("A=1\nA=2\n").unwrap();
        assert_eq!(env.get("A"), Some("2"));
        assert_eq!(env.entries().len(), 2);
    }

    #[test]
    fn errors_name_the_line_and_never_the_value() {
        let error = parse("A=1\nB=\"phx_secret\nC=3\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(!error.to_string().contains("phx_secret"));
        assert_eq!(parse("A=1\n=x\n").unwrap_err().line, 2);
        assert_eq!(parse("NOEQUALS\n").unwrap_err().line, 1);
        assert_eq!(parse("A='x' y\n").unwrap_err().line, 1);
    }

    #[test]
    fn debug_hides_values() {
        let env = parse("KEY=phx_supersecretvalue\n").unwrap();
        assert!(!format!("{env:?}").contains("supersecret"));
    }

    proptest! {
        #[test]
        fn never_panics_and_spans_point_into_the_text(text in "(?s).{0,300}") {
            if let Ok(env) = parse(&text) {
                for entry in env.entries() {
                    prop_assert!(text.get(entry.span.clone()).is_some());
                }
            }
        }

        #[test]
        fn written_values_read_back(value in "[^\\x00]{0,40}") {
            let escaped: String = value
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' | '$' => vec!['\\', c],
                    '\r' => vec!['\\', 'r'],
                    c => vec![c],
                })
                .collect();
            let env = parse(&format!("K=\"{escaped}\"\n")).unwrap();
            prop_assert_eq!(env.get("K"), Some(value.as_str()));
        }
    }
}
