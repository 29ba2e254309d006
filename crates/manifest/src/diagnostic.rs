//! Problems found in a manifest, each with its place in the file, rendered like a compiler's.

use std::fmt;

use serde::Serialize;

/// How serious a problem is: errors stop a deploy, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a manifest.
///
/// Messages are written for the person who edits `terrarium.yaml`, not for a developer, and never
/// contain a secret's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file name as the caller gave it (`terrarium.yaml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field the problem is about, like `spec.functions[1].entry`; empty for the whole file.
    pub path: String,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
    /// What to do about it, when there is something useful to say.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one manifest, sorted by position in the file.
///
/// `Display` prints one problem per line (plus an indented hint line), like a compiler.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn new(mut items: Vec<Diagnostic>) -> Diagnostics {
        // A stable sort keeps problems at the same place in the order they were found.
        items.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        Diagnostics { items }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|diagnostic| diagnostic.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|diagnostic| diagnostic.severity == Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.items.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// A place in the file, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    pub const START: Position = Position { line: 1, column: 1 };

    /// saphyr counts lines from 1 and columns from 0.
    pub fn from_marker(marker: saphyr::Marker) -> Position {
        Position { line: marker.line().max(1), column: marker.col() + 1 }
    }
}

/// Collects the problems of one file while it is read, decoded and checked.
pub(crate) struct Report {
    file: String,
    items: Vec<Diagnostic>,
}

impl Report {
    pub fn new(file: &str) -> Report {
        Report { file: file.to_owned(), items: Vec::new() }
    }

    pub fn error(&mut self, at: Position, path: &str, message: String, hint: Option<String>) {
        self.push(Severity::Error, at, path, message, hint);
    }

    pub fn warning(&mut self, at: Position, path: &str, message: String, hint: Option<String>) {
        self.push(Severity::Warning, at, path, message, hint);
    }

    fn push(&mut self, severity: Severity, at: Position, path: &str, message: String, hint: Option<String>) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            path: path.to_owned(),
            message,
            hint,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|diagnostic| diagnostic.severity == Severity::Error)
    }

    pub fn finish(self) -> Diagnostics {
        Diagnostics::new(self.items)
    }
}
