//! Secret detection for bundles, before they ship: rules in the gitleaks configuration format
//! (so a team can bring its own `gitleaks.toml`), a built-in rule set for cloud keys, source
//! control and LLM provider tokens, chat and payment tokens, private keys, JWTs and generic
//! high-entropy assignments, and allow-list comments for false positives. Pure: text in,
//! findings out. Findings carry the secret masked, never whole.

pub mod config;

use std::fmt;

use regex::Regex;
use serde::Deserialize;

/// The rules Terrarium ships with.
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// A line containing one of these is never reported.
pub const ALLOW_MARKERS: [&str; 2] = ["terrarium:allow-secret", "gitleaks:allow"];

/// Files larger than this are not scanned (bundles hold code and assets, not data dumps).
const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Findings reported per file at most: enough to act on, and a crafted file cannot make the
/// scan or its report grow without bound.
pub const MAX_FINDINGS_PER_FILE: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("the rules are not a valid gitleaks configuration: {0}")]
    Toml(String),
    #[error("rule {rule:?}: {problem}")]
    Rule { rule: String, problem: String },
}

/// A likely secret in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule_id: String,
    pub description: String,
    pub path: String,
    /// 1-based line and column (in characters).
    pub line: usize,
    pub column: usize,
    /// The secret with all but its first few characters hidden.
    pub masked: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} ({}): {}",
            self.path, self.line, self.column, self.description, self.rule_id, self.masked
        )
    }
}

// gitleaks' configuration as far as this scanner implements it. Every other field is refused
// (`deny_unknown_fields`): ignoring one such as an allowlist's `condition` or `regexTarget`, or
// a rule's `[[rules.required]]`, would silently make an allowlist broader than its author
// meant, a blind spot. Fields that only describe (`title`, `description`, `tags`) are read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    #[allow(dead_code, reason = "descriptive only")]
    title: Option<String>,
    #[serde(default)]
    allowlist: Option<AllowlistConfig>,
    #[serde(default)]
    allowlists: Vec<AllowlistConfig>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
    #[serde(default)]
    extend: Option<ExtendConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendConfig {
    #[serde(default, rename = "useDefault")]
    use_default: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistConfig {
    #[serde(default)]
    #[allow(dead_code, reason = "descriptive only")]
    description: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    id: String,
    #[serde(default)]
    #[allow(dead_code, reason = "descriptive only")]
    tags: Vec<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default, rename = "secretGroup")]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    allowlist: Option<AllowlistConfig>,
    #[serde(default)]
    allowlists: Vec<AllowlistConfig>,
}

struct Allowlist {
    regexes: Vec<Regex>,
    paths: Vec<Regex>,
    stopwords: Vec<String>,
}

impl Allowlist {
    fn compile(configs: impl IntoIterator<Item = AllowlistConfig>, rule: &str) -> Result<Allowlist, ScanError> {
        let mut allowlist = Allowlist { regexes: Vec::new(), paths: Vec::new(), stopwords: Vec::new() };
        for config in configs {
            for pattern in config.regexes {
                allowlist.regexes.push(compile(&pattern, rule)?);
            }
            for pattern in config.paths {
                allowlist.paths.push(compile(&pattern, rule)?);
            }
            allowlist.stopwords.extend(config.stopwords.into_iter().map(|word| word.to_lowercase()));
        }
        Ok(allowlist)
    }

    fn allows_secret(&self, secret: &str) -> bool {
        let lowercase = secret.to_lowercase();
        self.regexes.iter().any(|regex| regex.is_match(secret))
            || self.stopwords.iter().any(|word| lowercase.contains(word.as_str()))
    }

    fn allows_path(&self, path: &str) -> bool {
        self.paths.iter().any(|regex| regex.is_match(path))
    }
}

struct Rule {
    id: String,
    description: String,
    regex: Option<Regex>,
    path: Option<Regex>,
    secret_group: usize,
    entropy: Option<f64>,
    /// Lowercase; a line must contain one (none: every line).
    keywords: Vec<String>,
    allowlist: Allowlist,
}

fn compile(pattern: &str, rule: &str) -> Result<Regex, ScanError> {
    Regex::new(pattern).map_err(|error| ScanError::Rule { rule: rule.to_owned(), problem: error.to_string() })
}

/// Compiled rules, ready to scan many files.
pub struct Scanner {
    rules: Vec<Rule>,
    allowlist: Allowlist,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.rules.iter().map(|rule| rule.id.as_str()).collect();
        f.debug_struct("Scanner").field("rules", &ids).finish_non_exhaustive()
    }
}

impl Scanner {
    /// The built-in rules.
    pub fn builtin() -> Scanner {
        Scanner::from_toml(DEFAULT_RULES).expect("the built-in rules compile")
    }

    /// Rules from a gitleaks configuration. With `[extend] useDefault = true` they are added
    /// to the built-in rules; otherwise they replace them.
    pub fn from_toml(text: &str) -> Result<Scanner, ScanError> {
        let config: ConfigFile = toml::from_str(text).map_err(|error| {
            let message = error.to_string();
            match message.contains("unknown field") {
                true => ScanError::Toml(format!(
                    "{message}\nTerrarium's scanner does not implement that gitleaks setting; remove it (ignoring it could let secrets through unseen)"
                )),
                false => ScanError::Toml(message),
            }
        })?;
        let mut scanner = match config.extend.as_ref().is_some_and(|extend| extend.use_default) {
            true => Scanner::builtin(),
            false => Scanner { rules: Vec::new(), allowlist: Allowlist::compile([], "allowlist")? },
        };
        let global = Allowlist::compile(config.allowlist.into_iter().chain(config.allowlists), "allowlist")?;
        scanner.allowlist.regexes.extend(global.regexes);
        scanner.allowlist.paths.extend(global.paths);
        scanner.allowlist.stopwords.extend(global.stopwords);
        for rule in config.rules {
            if rule.regex.is_none() && rule.path.is_none() {
                return Err(ScanError::Rule { rule: rule.id, problem: "it has neither regex nor path".to_owned() });
            }
            let id = rule.id.clone();
            scanner.rules.retain(|existing| existing.id != id);
            scanner.rules.push(Rule {
                description: rule.description.unwrap_or_else(|| rule.id.clone()),
                regex: rule.regex.as_deref().map(|pattern| compile(pattern, &id)).transpose()?,
                path: rule.path.as_deref().map(|pattern| compile(pattern, &id)).transpose()?,
                secret_group: rule.secret_group.unwrap_or(0),
                entropy: rule.entropy,
                keywords: rule.keywords.iter().map(|keyword| keyword.to_lowercase()).collect(),
                allowlist: Allowlist::compile(rule.allowlist.into_iter().chain(rule.allowlists), &id)?,
                id,
            });
        }
        Ok(scanner)
    }

    /// The findings in one file. Binary and very large files are skipped.
    pub fn scan(&self, path: &str, contents: &[u8]) -> Vec<Finding> {
        if contents.len() > MAX_FILE_BYTES || contents.contains(&0) || self.allowlist.allows_path(path) {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(contents);
        // Each line with its lowercase form, made once for every rule's keyword filter.
        let lines: Vec<(&str, String)> = text.lines().map(|line| (line, line.to_lowercase())).collect();
        // (rule position, finding): earlier rules are the more specific ones.
        let mut findings: Vec<(usize, Finding)> = Vec::new();
        for (position, rule) in self.rules.iter().enumerate() {
            if rule.allowlist.allows_path(path) {
                continue;
            }
            let path_matches = rule.path.as_ref().is_none_or(|pattern| pattern.is_match(path));
            if !path_matches {
                continue;
            }
            let Some(regex) = &rule.regex else {
                // A path-only rule: the file itself is the finding (a key file, a .env).
                findings.push((
                    position,
                    Finding {
                        rule_id: rule.id.clone(),
                        description: rule.description.clone(),
                        path: path.to_owned(),
                        line: 1,
                        column: 1,
                        masked: "(the whole file)".to_owned(),
                    },
                ));
                continue;
            };
            for (index, (line, lowercase)) in lines.iter().enumerate() {
                if findings.len() >= MAX_FINDINGS_PER_FILE {
                    break;
                }
                if ALLOW_MARKERS.iter().any(|marker| line.contains(marker)) {
                    continue;
                }
                if !rule.keywords.is_empty()
                    && !rule.keywords.iter().any(|keyword| lowercase.contains(keyword.as_str()))
                {
                    continue;
                }
                // Columns are counted from the previous match on, never from the line's start again.
                let (mut counted_bytes, mut counted_chars) = (0, 0);
                for captures in regex.captures_iter(line) {
                    if findings.len() >= MAX_FINDINGS_PER_FILE {
                        break;
                    }
                    let Some(secret) = captures.get(rule.secret_group).or_else(|| captures.get(0)) else {
                        continue;
                    };
                    let value = secret.as_str();
                    if rule.entropy.is_some_and(|minimum| shannon_entropy(value) < minimum)
                        || rule.allowlist.allows_secret(value)
                        || self.allowlist.allows_secret(value)
                    {
                        continue;
                    }
                    findings.push((
                        position,
                        Finding {
                            rule_id: rule.id.clone(),
                            description: rule.description.clone(),
                            path: path.to_owned(),
                            line: index + 1,
                            column: {
                                counted_chars += line[counted_bytes..secret.start()].chars().count();
                                counted_bytes = secret.start();
                                counted_chars + 1
                            },
                            masked: mask(value),
                        },
                    ));
                }
            }
        }
        findings.sort_by_key(|(position, finding)| (finding.line, finding.column, *position));
        // One report per place, by the rule listed first (the more specific one).
        findings.dedup_by(|later, earlier| later.1.line == earlier.1.line && later.1.column == earlier.1.column);
        findings.into_iter().map(|(_, finding)| finding).collect()
    }
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(text: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&count| {
            let p = count as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}

/// The first few characters (at most a quarter of the secret, and at most four), then stars.
pub fn mask(secret: &str) -> String {
    let length = secret.chars().count();
    let shown = (length / 4).min(4);
    let visible: String = secret.chars().take(shown).collect();
    format!("{visible}{} ({length} characters)", "*".repeat((length - shown).min(12)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_at_most_four_characters() {
        let masked = mask("AKIAIOSFODNN7EXAMPLQ");
        assert_eq!(masked, "AKIA************ (20 characters)");
        assert_eq!(mask("abc"), "*** (3 characters)");
    }

    #[test]
    fn a_file_full_of_keys_is_reported_briefly() {
        let key = "AKIA0123456789ABCDEF ";
        let line = key.repeat(150_000);
        let findings = Scanner::builtin().scan("dump.txt", line.as_bytes());
        assert_eq!(findings.len(), MAX_FINDINGS_PER_FILE);
        assert_eq!(findings[1].column, key.len() + 1, "columns count characters from the line's start");
    }

    #[test]
    fn entropy_separates_words_from_keys() {
        assert!(shannon_entropy("passwordpassword") < 3.0);
        assert!(shannon_entropy("q8Zr1xT4vB9mK2pL7sW3") > 4.0);
    }

    #[test]
    fn allow_markers_and_bad_rules() {
        let scanner = Scanner::builtin();
        let line = b"const k = \"ghp_0123456789abcdefghijABCDEFGHIJ012345\"; // terrarium:allow-secret";
        assert!(scanner.scan("a.js", line).is_empty());
        let error = Scanner::from_toml("[[rules]]\nid = \"broken\"\nregex = \"(\"\n").err().unwrap().to_string();
        assert!(error.contains("broken"), "{error}");
        let custom = Scanner::from_toml("[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z]{10}'''\n").unwrap();
        assert_eq!(custom.scan("x.txt", b"token acme_abcdefghij")[0].rule_id, "acme");
        assert!(custom.scan("x.txt", b"ghp_0123456789abcdefghijABCDEFGHIJ012345").is_empty(), "custom rules replace");
        let extended =
            Scanner::from_toml("[extend]\nuseDefault = true\n[[rules]]\nid = \"acme\"\nregex = '''acme_[a-z]{10}'''\n")
                .unwrap();
        assert_eq!(extended.scan("x.txt", b"ghp_0123456789abcdefghijABCDEFGHIJ012345").len(), 1);
    }

    /// Settings the scanner does not implement are refused, naming the setting: ignoring an
    /// allowlist's `condition` or a rule's `[[rules.required]]` would widen what passes.
    #[test]
    fn unimplemented_gitleaks_settings_are_refused() {
        let rule = "[[rules]]\nid = \"a\"\nregex = 'a_[a-z]{8}'\n";
        for (setting, config) in [
            ("condition", "[allowlist]\ncondition = \"AND\"\nregexes = ['x']\n".to_owned()),
            ("regexTarget", "[allowlist]\nregexTarget = \"line\"\nregexes = ['x']\n".to_owned()),
            ("required", format!("{rule}[[rules.required]]\nid = \"b\"\n")),
            ("skipReport", format!("{rule}skipReport = true\n")),
            ("disabledRules", "[extend]\nuseDefault = true\ndisabledRules = [\"github-pat\"]\n".to_owned()),
        ] {
            let error = Scanner::from_toml(&config).err().unwrap_or_else(|| panic!("{setting} accepted")).to_string();
            assert!(error.contains(setting) && error.contains("does not implement"), "{setting}: {error}");
        }
        let described = format!(
            "title = \"ours\"\n{rule}description = \"A\"\ntags = [\"key\"]\n[allowlist]\ndescription = \"tests\"\npaths = ['tests/']\n"
        );
        assert!(Scanner::from_toml(&described).is_ok(), "descriptive fields are fine");
    }
}
