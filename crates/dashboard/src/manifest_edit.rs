//! Small edits to a builder's `terrarium.yaml` text for the console's "ask for more" form: a
//! key set or a list item added, everything else (comments, order, spacing) left as it was.
//! The caller checks the result by loading it, so an edit that would change the meaning of a
//! hand-written file is refused instead of deployed.

/// The number of leading spaces.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line that holds YAML (not blank, not a comment).
fn is_content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// `key: rest` or `key:` of a mapping line; `None` for list items and other lines.
fn key_of(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim();
    if trimmed.starts_with('-') || trimmed.starts_with('#') {
        return None;
    }
    let (key, rest) = match trimmed.split_once(": ") {
        Some((key, rest)) => (key, rest.trim()),
        None => (trimmed.strip_suffix(':')?, ""),
    };
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
    plain.then_some((key, rest))
}

/// The lines under `header` (the whole document for `None`): from the line after it to just
/// after its last content line that is indented deeper.
fn block(lines: &[String], header: Option<usize>) -> (usize, usize) {
    let begin = header.map_or(0, |index| index + 1);
    let base = header.map(|index| indent(&lines[index]));
    let mut end = begin;
    for (index, line) in lines.iter().enumerate().skip(begin) {
        if !is_content(line) {
            continue;
        }
        if base.is_some_and(|base| indent(line) <= base) {
            break;
        }
        end = index + 1;
    }
    (begin, end)
}

/// The indentation of the entries under `header`.
fn child_indent(lines: &[String], header: Option<usize>) -> usize {
    let (begin, end) = block(lines, header);
    lines[begin..end]
        .iter()
        .find(|line| is_content(line))
        .map(|line| indent(line))
        .unwrap_or_else(|| header.map_or(0, |index| indent(&lines[index]) + 2))
}

fn find_key(lines: &[String], header: Option<usize>, key: &str) -> Option<usize> {
    let (begin, end) = block(lines, header);
    let depth = child_indent(lines, header);
    (begin..end).find(|&index| indent(&lines[index]) == depth && key_of(&lines[index]).is_some_and(|(k, _)| k == key))
}

/// The line of `path` (`["spec", "access"]`), made (empty) where it is missing.
fn ensure_path(lines: &mut Vec<String>, path: &[&str]) -> Result<Option<usize>, String> {
    let mut header = None;
    for key in path {
        header = Some(match find_key(lines, header, key) {
            Some(index) => {
                let (_, rest) = key_of(&lines[index]).expect("a found key is a key line");
                if !rest.is_empty() && !rest.starts_with('#') {
                    return Err(format!(
                        "{key} is written on one line in terrarium.yaml; change it in the editor instead"
                    ));
                }
                index
            }
            None => {
                let depth = child_indent(lines, header);
                let (_, end) = block(lines, header);
                lines.insert(end, format!("{}{key}:", " ".repeat(depth)));
                end
            }
        });
    }
    Ok(header)
}

/// Sets `path` (its last element is the key) to a scalar written as YAML.
pub(crate) fn set_scalar(source: &str, path: &[&str], value: &str) -> Result<String, String> {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    let (key, parents) = path.split_last().expect("a path names a key");
    let header = ensure_path(&mut lines, parents)?;
    let depth = child_indent(&lines, header);
    let line = format!("{}{key}: {value}", " ".repeat(depth));
    match find_key(&lines, header, key) {
        Some(index) => {
            let (nested_begin, nested_end) = block(&lines, Some(index));
            if nested_end > nested_begin {
                return Err(format!(
                    "{key} holds more than one value in terrarium.yaml; change it in the editor instead"
                ));
            }
            lines[index] = line;
        }
        None => {
            let (_, end) = block(&lines, header);
            lines.insert(end, line);
        }
    }
    Ok(lines.join("\n") + "\n")
}

/// Adds an item (written as YAML) to the list at `path`, made where it is missing.
pub(crate) fn append_item(source: &str, path: &[&str], item: &str) -> Result<String, String> {
    let mut lines: Vec<String> = source.lines().map(str::to_owned).collect();
    let (key, parents) = path.split_last().expect("a path names a key");
    let header = ensure_path(&mut lines, parents)?;
    let index = match find_key(&lines, header, key) {
        Some(index) => {
            let (_, rest) = key_of(&lines[index]).expect("a found key is a key line");
            match rest {
                "" => {}
                "[]" => lines[index] = format!("{}{key}:", " ".repeat(indent(&lines[index]))),
                _ => {
                    return Err(format!(
                        "{key} is written on one line in terrarium.yaml; add the entry in the editor instead"
                    ));
                }
            }
            index
        }
        None => {
            let depth = child_indent(&lines, header);
            let (_, end) = block(&lines, header);
            lines.insert(end, format!("{}{key}:", " ".repeat(depth)));
            end
        }
    };
    let (begin, end) = block(&lines, Some(index));
    let item_indent = lines[begin..end]
        .iter()
        .find(|line| line.trim_start().starts_with("- "))
        .map(|line| indent(line))
        .unwrap_or(indent(&lines[index]) + 2);
    lines.insert(end.max(begin), format!("{}- {item}", " ".repeat(item_indent)));
    Ok(lines.join("\n") + "\n")
}

/// A string as a YAML scalar that stays one string whatever it holds (a JSON string).
pub(crate) fn quoted(text: &str) -> String {
    serde_json::Value::from(text.replace(['\r', '\n'], " ")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
apiVersion: terrarium.dev/v1
kind: MicroApp
metadata:
  name: lunch
  namespace: team
spec:
  owner: user:bea
  runtime: static
  # Who may open it.
  access:
    visibility: team

  allowedEgress:
    - api.weather.example
  static:
    dir: public
";

    fn load(source: &str) -> manifest::ValidatedManifest {
        manifest::load("terrarium.yaml", source).unwrap_or_else(|error| panic!("{error}\n{source}"))
    }

    #[test]
    fn adds_to_an_existing_list_and_makes_a_missing_one() {
        let edited = append_item(MANIFEST, &["spec", "allowedEgress"], &quoted("api.example.com")).unwrap();
        let spec = &load(&edited).manifest().spec.clone();
        assert_eq!(spec.allowed_egress.as_deref().unwrap(), ["api.weather.example", "api.example.com"]);
        assert!(edited.contains("  # Who may open it."), "comments stay: {edited}");

        let without = MANIFEST.replace("  allowedEgress:\n    - api.weather.example\n", "");
        let edited = append_item(&without, &["spec", "allowedEgress"], &quoted("api.example.com")).unwrap();
        assert_eq!(load(&edited).manifest().spec.allowed_egress.as_deref().unwrap(), ["api.example.com"]);

        let empty = MANIFEST.replace("  allowedEgress:\n    - api.weather.example\n", "  allowedEgress: []\n");
        let edited = append_item(&empty, &["spec", "allowedEgress"], &quoted("api.example.com")).unwrap();
        assert_eq!(load(&edited).manifest().spec.allowed_egress.as_deref().unwrap(), ["api.example.com"]);

        let flow = MANIFEST.replace("  allowedEgress:\n    - api.weather.example\n", "  allowedEgress: [a.example]\n");
        assert!(append_item(&flow, &["spec", "allowedEgress"], "b.example").unwrap_err().contains("editor"));
    }

    #[test]
    fn sets_a_scalar_in_place_or_under_a_new_parent() {
        let edited = set_scalar(MANIFEST, &["spec", "access", "visibility"], "public").unwrap();
        assert!(edited.contains("    visibility: public\n"), "{edited}");
        assert!(!edited.contains("visibility: team"), "{edited}");
        load(&edited);

        let edited = set_scalar(MANIFEST, &["spec", "quotas", "monthlyRequests"], "50000").unwrap();
        assert_eq!(load(&edited).manifest().spec.quotas.as_ref().unwrap().monthly_requests, Some(50000));

        let key = "terrarium.dev/justification";
        let edited =
            set_scalar(MANIFEST, &["metadata", "annotations", key], &quoted("Weather: \"rain\" # daily")).unwrap();
        let annotations = load(&edited).manifest().metadata.annotations.clone().unwrap();
        assert_eq!(annotations[key], "Weather: \"rain\" # daily");
        let again = set_scalar(&edited, &["metadata", "annotations", key], &quoted("second")).unwrap();
        assert_eq!(load(&again).manifest().metadata.annotations.clone().unwrap()[key], "second");
        assert_eq!(again.matches(key).count(), 1);
    }

    #[test]
    fn a_key_with_nested_values_is_not_overwritten() {
        let error = set_scalar(MANIFEST, &["spec", "access"], "public").unwrap_err();
        assert!(error.contains("editor"), "{error}");
    }
}
