//! Reads untrusted YAML text into saphyr's tree of nodes with positions, within fixed limits.
//!
//! The parser's events are fed to saphyr's loader one at a time (never through the recursive
//! `Parser::load`), and a guard looks at each event first. The guard refuses files that are too
//! big, too deeply nested or that expand into too many nodes through aliases (a "billion laughs"
//! file), and reports what the loader alone cannot: every duplicated key (with its field path),
//! tags, and a second document in the same file.

use std::collections::{BTreeMap, HashMap};

use saphyr::{LoadableYamlNode, MarkedYaml, YamlLoader};
use saphyr_parser::{Event, Parser, Span, SpannedEventReceiver, Tag};

use crate::decode::child_path;
use crate::diagnostic::{Position, Report};

/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;
/// How deeply lists and groups of fields may nest. A real manifest needs five levels.
pub const MAX_NESTING_DEPTH: usize = 32;
/// How many values a manifest may hold, counting every copy an alias (`*name`) makes.
pub const MAX_NODES: usize = 20_000;

/// Parses `source` into the node tree of its one document, or reports why it cannot.
///
/// Problems that leave a usable tree (a duplicated key, a tag, a second document) are reported
/// and the tree of the first document is still returned.
pub(crate) fn read_document<'input>(source: &'input str, report: &mut Report) -> Option<MarkedYaml<'input>> {
    if source.len() > MAX_MANIFEST_BYTES {
        report.error(
            Position::START,
            "",
            format!(
                "the file is {} KiB; a manifest may be at most {} KiB",
                source.len().div_ceil(1024),
                MAX_MANIFEST_BYTES / 1024
            ),
            Some("a manifest only describes the app: keep code and data in other files".into()),
        );
        return None;
    }

    let mut loader: YamlLoader<'input, MarkedYaml<'input>> = YamlLoader::default();
    // Duplicates are found by the guard, which reports all of them with their paths.
    loader.allow_duplicate_keys(true);
    loader.alias_limit(MAX_NODES);
    // Scalars stay as written; the decoder resolves them, so it can quote them back exactly.
    loader.early_parse(false);
    let mut guard = Guard::default();
    let mut parser = Parser::new_from_str(source);
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(event_and_span) => event_and_span,
            Err(error) => {
                report.error(
                    Position::from_marker(*error.marker()),
                    "",
                    format!("this is not valid YAML: {}", error.info()),
                    Some(syntax_hint(error.info())),
                );
                return None;
            }
        };
        if let Err(refusal) = guard.inspect(&event, span, report) {
            let hint = Some(refusal.hint.to_owned());
            report.error(refusal.at, &refusal.path, refusal.message, hint);
            return None;
        }
        loader.on_event(event, span);
    }
    if let Some(error) = loader.error() {
        report.error(Position::from_marker(*error.marker()), "", error.info().to_owned(), None);
        return None;
    }

    let mut documents = loader.into_documents();
    if documents.is_empty() || documents[0].is_badvalue() {
        report.error(
            Position::START,
            "",
            "the file is empty".into(),
            Some("a terrarium.yaml starts with the line apiVersion: terrarium.dev/v1".into()),
        );
        return None;
    }
    Some(documents.swap_remove(0))
}

fn syntax_hint(info: &str) -> String {
    if info.contains("tab") {
        return "indent with spaces; YAML does not allow tabs for indentation".into();
    }
    "check the indentation of this line and the line before it; put quotes around values that \
     contain \": \" or \" #\", or that start with one of * & ! | > ' \" % @ `"
        .into()
}

/// Why a file is refused outright.
struct Refusal {
    at: Position,
    path: String,
    message: String,
    hint: &'static str,
}

/// Looks at every parser event before the loader builds a node from it.
#[derive(Default)]
struct Guard {
    /// The lists and groups of fields that are open, innermost last.
    open: Vec<Collection>,
    /// Nodes produced so far, counting the copies aliases make.
    n_nodes: usize,
    /// The size in nodes of each anchor (`&name`), so an alias (`*name`) is counted in full.
    anchor_sizes: BTreeMap<usize, usize>,
    n_documents: usize,
}

/// The nodes a finished node adds: to its parent's size, and to the file's total.
struct NewNodes {
    in_parent: usize,
    in_file: usize,
}

impl NewNodes {
    fn scalar() -> NewNodes {
        NewNodes { in_parent: 1, in_file: 1 }
    }

    /// A list or group of fields of `size` nodes, whose content was counted as it came.
    fn collection(size: usize) -> NewNodes {
        NewNodes { in_parent: size, in_file: 1 }
    }

    /// An alias is a full copy of its anchor of `size` nodes.
    fn alias(size: usize) -> NewNodes {
        NewNodes { in_parent: size, in_file: size }
    }
}

/// An open list or group of fields.
struct Collection {
    path: String,
    kind: CollectionKind,
    /// Nodes inside it so far, counting the copies aliases make.
    n_nodes: usize,
    anchor_id: usize,
}

enum CollectionKind {
    Sequence {
        n_items: usize,
    },
    Mapping {
        /// The key whose value comes next; `None` while a key is expected.
        pending_key: Option<String>,
        /// Where each key was first seen.
        seen_keys: HashMap<String, Position>,
    },
}

impl Guard {
    fn inspect(&mut self, event: &Event<'_>, span: Span, report: &mut Report) -> Result<(), Refusal> {
        let at = Position::from_marker(span.start);
        match event {
            Event::DocumentStart(_) => {
                self.n_documents += 1;
                if self.n_documents == 2 {
                    report.error(
                        at,
                        "",
                        "the file holds more than one YAML document; only the first one is read".into(),
                        Some("keep one app per terrarium.yaml and remove the line with ---".into()),
                    );
                }
            }
            Event::MappingStart(anchor_id, tag) | Event::SequenceStart(anchor_id, tag) => {
                let path = self.next_node_path();
                self.check_tag(tag.as_deref(), at, &path, report);
                if self.open.len() >= MAX_NESTING_DEPTH {
                    return Err(Refusal {
                        at,
                        path,
                        message: format!("the file nests lists and fields more than {MAX_NESTING_DEPTH} levels deep"),
                        hint: "a manifest needs only a few levels; check the indentation",
                    });
                }
                let kind = match event {
                    Event::MappingStart(..) => CollectionKind::Mapping { pending_key: None, seen_keys: HashMap::new() },
                    _ => CollectionKind::Sequence { n_items: 0 },
                };
                self.open.push(Collection { path, kind, n_nodes: 0, anchor_id: *anchor_id });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let Some(collection) = self.open.pop() else {
                    return Ok(());
                };
                let size = collection.n_nodes.saturating_add(1);
                if collection.anchor_id > 0 {
                    self.anchor_sizes.insert(collection.anchor_id, size);
                }
                self.add_node(NewNodes::collection(size), None, at, report)?;
            }
            Event::Scalar(value, _, anchor_id, tag) => {
                let path = self.next_node_path();
                self.check_tag(tag.as_deref(), at, &path, report);
                if *anchor_id > 0 {
                    self.anchor_sizes.insert(*anchor_id, 1);
                }
                self.add_node(NewNodes::scalar(), Some(value), at, report)?;
            }
            Event::Alias(anchor_id) => {
                let size = self.anchor_sizes.get(anchor_id).copied().unwrap_or(1);
                self.add_node(NewNodes::alias(size), None, at, report)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// The field path of the node that starts next.
    fn next_node_path(&self) -> String {
        let Some(parent) = self.open.last() else {
            return String::new();
        };
        match &parent.kind {
            CollectionKind::Sequence { n_items } => format!("{}[{n_items}]", parent.path),
            CollectionKind::Mapping { pending_key: Some(key), .. } => child_path(&parent.path, key),
            // A key is a node too; problems in it belong to the group of fields it is in.
            CollectionKind::Mapping { pending_key: None, .. } => parent.path.clone(),
        }
    }

    fn check_tag(&self, tag: Option<&Tag>, at: Position, path: &str, report: &mut Report) {
        let Some(tag) = tag else { return };
        // `!!str`, `!!int` and the other core tags only say how to read a value.
        if tag.is_yaml_core_schema() {
            return;
        }
        report.error(at, path, format!("YAML tags like \"{tag}\" are not supported"), Some("remove the tag".into()));
    }

    /// Counts a finished node into its parent; `key_text` is a scalar's text.
    fn add_node(
        &mut self,
        new_nodes: NewNodes,
        key_text: Option<&str>,
        at: Position,
        report: &mut Report,
    ) -> Result<(), Refusal> {
        self.n_nodes = self.n_nodes.saturating_add(new_nodes.in_file);
        if self.n_nodes > MAX_NODES {
            return Err(Refusal {
                at,
                path: self.next_node_path(),
                message: format!(
                    "the file holds more than {MAX_NODES} values, counting each copy that an alias (*name) makes"
                ),
                hint: "a manifest needs far fewer values; write them out instead of repeating anchors",
            });
        }
        let Some(parent) = self.open.last_mut() else {
            return Ok(());
        };
        parent.n_nodes = parent.n_nodes.saturating_add(new_nodes.in_parent);
        match &mut parent.kind {
            CollectionKind::Sequence { n_items } => *n_items += 1,
            CollectionKind::Mapping { pending_key: pending_key @ Some(_), .. } => *pending_key = None,
            CollectionKind::Mapping { pending_key: pending_key @ None, seen_keys } => {
                // Keys that are not plain text are refused later, by the decoder.
                let key = key_text.unwrap_or_default().to_owned();
                if key_text.is_some() {
                    match seen_keys.get(&key) {
                        Some(first) => report.error(
                            at,
                            &child_path(&parent.path, &key),
                            format!("the field \"{key}\" appears twice here"),
                            Some(format!("it is already set on line {}; keep only one of them", first.line)),
                        ),
                        None => {
                            seen_keys.insert(key.clone(), at);
                        }
                    }
                }
                *pending_key = Some(key);
            }
        }
        Ok(())
    }
}
