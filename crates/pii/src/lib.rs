//! Personal data in text, found by rules: e-mail addresses, phone numbers, payment cards, IBANs,
//! US social security numbers, IP addresses, API keys and other secrets, street addresses and
//! people's names. Pure Rust, no model: each detector finds candidates with a regular expression
//! and then validates them (Luhn for cards, mod-97 and the country's length for IBANs, the SSA's
//! excluded ranges for SSNs, `Ipv6Addr` parsing, Shannon entropy for unlabelled secrets, digit
//! counts and neighbouring words for phone numbers, gazetteers of given and family names plus
//! context such as "Dear" or "Mr." for names).
//!
//! [`Detector::detect`] returns non-overlapping [`Entity`] spans in *character* offsets (Unicode
//! scalar values, end exclusive), sorted by start; where candidates overlap the longer wins, then
//! the type earlier in [`EntityType::ALL`]. [`Detector::redact`] replaces each span with its type
//! in brackets (`[EMAIL_ADDRESS]`). The [`eval`] module scores a detector against labelled text;
//! `eval/eval.jsonl` in this crate is a synthetic evaluation set (see `eval/README.md`).
//!
//! Span conventions: a name excludes its title ("Dr. Priya Raman" gives "Priya Raman"); a street
//! address runs from the house number (or the street keyword, "Via Roma 10") to the last part
//! directly attached to it: suffix, direction, unit, then "City, ST 12345", "London SW1A 2AA" or
//! "75001 Paris"; a span never ends with a period; API keys are the token only, without the
//! `api_key=` or `Bearer` before it.
//!
//! A [`Detector`] compiles its patterns once; build one and share it (it is `Send + Sync`).

mod address;
pub mod eval;
mod patterns;
mod person;
mod structured;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use regex::Regex;

/// Given names (a few hundred, many languages) for the person detector.
const FIRST_NAMES: &str = include_str!("first_names.txt");
/// Family names for the person detector.
const LAST_NAMES: &str = include_str!("last_names.txt");

/// The kinds of personal data the detector reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    Person,
    EmailAddress,
    PhoneNumber,
    CreditCard,
    IbanCode,
    UsSsn,
    IpAddress,
    ApiKey,
    StreetAddress,
}

impl EntityType {
    /// Every type, in a fixed order (the order of the evaluation table).
    pub const ALL: [EntityType; 9] = [
        EntityType::Person,
        EntityType::EmailAddress,
        EntityType::PhoneNumber,
        EntityType::CreditCard,
        EntityType::IbanCode,
        EntityType::UsSsn,
        EntityType::IpAddress,
        EntityType::ApiKey,
        EntityType::StreetAddress,
    ];

    /// The conventional upper-case name ("EMAIL_ADDRESS"), as used in `[TYPE]` redactions and
    /// in the evaluation set.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Person => "PERSON",
            EntityType::EmailAddress => "EMAIL_ADDRESS",
            EntityType::PhoneNumber => "PHONE_NUMBER",
            EntityType::CreditCard => "CREDIT_CARD",
            EntityType::IbanCode => "IBAN_CODE",
            EntityType::UsSsn => "US_SSN",
            EntityType::IpAddress => "IP_ADDRESS",
            EntityType::ApiKey => "API_KEY",
            EntityType::StreetAddress => "STREET_ADDRESS",
        }
    }

    /// The type named by [`EntityType::as_str`]'s spelling.
    pub fn parse(name: &str) -> Option<EntityType> {
        EntityType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Which type wins between two overlapping candidates of the same length: lower first.
    /// Checksummed and unambiguous formats come before the fuzzier ones.
    fn priority(self) -> u8 {
        match self {
            EntityType::EmailAddress => 0,
            EntityType::CreditCard => 1,
            EntityType::IbanCode => 2,
            EntityType::UsSsn => 3,
            EntityType::ApiKey => 4,
            EntityType::IpAddress => 5,
            EntityType::PhoneNumber => 6,
            EntityType::StreetAddress => 7,
            EntityType::Person => 8,
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of personal data: its type and where it is, in characters (Unicode scalar values)
/// from the start of the text, `end` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entity {
    pub entity_type: EntityType,
    pub start: usize,
    pub end: usize,
}

/// A text with its personal data replaced by `[TYPE]`, and what was replaced (offsets in the
/// original text, in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    pub entities: Vec<Entity>,
}

/// A candidate or result in byte offsets, the detectors' working form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) entity_type: EntityType,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) fn new(entity_type: EntityType, start: usize, end: usize) -> Span {
        Span { entity_type, start, end }
    }

    fn width(&self) -> usize {
        self.end - self.start
    }
}

/// The rule-based detector. Build it once ([`Detector::new`] compiles a few dozen patterns) and
/// share it between threads.
pub struct Detector {
    email: Regex,
    digit_groups: Regex,
    iban_start: Regex,
    ssn: Regex,
    ssn_bare: Regex,
    ssn_context: Regex,
    ipv4: Regex,
    version_context: Regex,
    ipv6: Regex,
    known_keys: Regex,
    generic_key: Regex,
    phone: Regex,
    phone_context: Regex,
    phone_negative: Regex,
    money_before: Regex,
    street_us: Regex,
    street_fr: Regex,
    street_keyword: Regex,
    street_compound: Regex,
    word: Regex,
    title_before: Regex,
    strong_context: Regex,
    medium_context: Regex,
    weak_context: Regex,
    greeting_context: Regex,
    first_names: HashSet<&'static str>,
    last_names: HashSet<&'static str>,
    stop_words: HashSet<&'static str>,
    org_words: HashSet<&'static str>,
}

fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(regex) => regex,
        Err(error) => panic!("built-in pattern {pattern:?} does not compile: {error}"),
    }
}

/// The non-comment lines of a word-list file.
fn name_list(source: &'static str) -> HashSet<&'static str> {
    source.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect()
}

fn street_pattern(template: &str) -> String {
    template
        .replace("{FULL}", patterns::STREET_SUFFIX_FULL)
        .replace("{ABBR}", patterns::STREET_SUFFIX_ABBR)
        .replace("{STATES}", patterns::US_STATES)
        .replace("{EU_TAIL}", patterns::EU_TAIL)
}

impl Detector {
    pub fn new() -> Detector {
        use crate::patterns as p;
        Detector {
            email: compile(p::EMAIL),
            digit_groups: compile(p::DIGIT_GROUPS),
            iban_start: compile(p::IBAN_START),
            ssn: compile(p::SSN),
            ssn_bare: compile(p::SSN_BARE),
            ssn_context: compile(p::SSN_CONTEXT),
            ipv4: compile(p::IPV4),
            version_context: compile(p::VERSION_CONTEXT),
            ipv6: compile(p::IPV6),
            known_keys: compile(p::KNOWN_KEYS),
            generic_key: compile(p::GENERIC_KEY),
            phone: compile(p::PHONE),
            phone_context: compile(p::PHONE_CONTEXT),
            phone_negative: compile(p::PHONE_NEGATIVE),
            money_before: compile(p::MONEY_BEFORE),
            street_us: compile(&street_pattern(p::STREET_US)),
            street_fr: compile(&street_pattern(p::STREET_FR)),
            street_keyword: compile(&street_pattern(p::STREET_KEYWORD)),
            street_compound: compile(&street_pattern(p::STREET_COMPOUND)),
            word: compile(p::WORD),
            title_before: compile(p::TITLE_BEFORE),
            strong_context: compile(p::STRONG_CONTEXT),
            medium_context: compile(p::MEDIUM_CONTEXT),
            weak_context: compile(p::WEAK_CONTEXT),
            greeting_context: compile(p::GREETING_CONTEXT),
            first_names: name_list(FIRST_NAMES),
            last_names: name_list(LAST_NAMES),
            stop_words: p::STOP_WORDS.split_whitespace().collect(),
            org_words: p::ORG_WORDS.split_whitespace().collect(),
        }
    }

    /// The personal data in `text`: sorted by start, non-overlapping, in character offsets.
    pub fn detect(&self, text: &str) -> Vec<Entity> {
        let spans = self.detect_spans(text);
        to_char_offsets(text, &spans)
    }

    /// `text` with each entity replaced by `[TYPE]`, and the entities (offsets in `text`).
    pub fn redact(&self, text: &str) -> Redacted {
        let spans = self.detect_spans(text);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for span in &spans {
            out.push_str(&text[copied..span.start]);
            out.push('[');
            out.push_str(span.entity_type.as_str());
            out.push(']');
            copied = span.end;
        }
        out.push_str(&text[copied..]);
        Redacted { text: out, entities: to_char_offsets(text, &spans) }
    }

    /// Every detector's candidates, overlaps resolved; byte offsets.
    pub(crate) fn detect_spans(&self, text: &str) -> Vec<Span> {
        let mut found = Vec::new();
        let has_digit = text.bytes().any(|b| b.is_ascii_digit());
        if text.contains('@') {
            self.find_emails(text, &mut found);
        }
        if has_digit {
            self.find_cards(text, &mut found);
            self.find_ibans(text, &mut found);
            self.find_ssns(text, &mut found);
            self.find_ipv4(text, &mut found);
            self.find_phones(text, &mut found);
            self.find_streets(text, &mut found);
        }
        if text.contains(':') {
            self.find_ipv6(text, &mut found);
        }
        self.find_keys(text, &mut found);
        if text.chars().any(char::is_uppercase) {
            self.find_persons(text, &mut found);
        }
        resolve_overlaps(found)
    }
}

impl Default for Detector {
    fn default() -> Detector {
        Detector::new()
    }
}

/// Keeps the longest candidates (ties: type priority, then the earlier one) that do not overlap
/// one already kept; returns them sorted by start.
fn resolve_overlaps(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.start < s.end);
    spans.sort_by(|a, b| {
        b.width()
            .cmp(&a.width())
            .then(a.entity_type.priority().cmp(&b.entity_type.priority()))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        if kept.iter().all(|k| span.end <= k.start || span.start >= k.end) {
            kept.push(span);
        }
    }
    kept.sort_by_key(|s| s.start);
    kept
}

/// Byte offsets to character offsets, in one pass over the text (the spans are sorted and do not
/// overlap, so their boundaries only increase).
fn to_char_offsets(text: &str, spans: &[Span]) -> Vec<Entity> {
    let mut entities = Vec::with_capacity(spans.len());
    let mut byte = 0;
    let mut chars = 0;
    for span in spans {
        let start = chars + text[byte..span.start].chars().count();
        let end = start + text[span.start..span.end].chars().count();
        entities.push(Entity { entity_type: span.entity_type, start, end });
        byte = span.end;
        chars = end;
    }
    entities
}

/// The character before byte offset `i`.
pub(crate) fn char_before(text: &str, i: usize) -> Option<char> {
    text[..i].chars().next_back()
}

/// The character at byte offset `i`.
pub(crate) fn char_at(text: &str, i: usize) -> Option<char> {
    text[i..].chars().next()
}

/// Up to `max` bytes of `text` before byte offset `i` (fewer where that would split a
/// character): where context words are looked for.
pub(crate) fn window(text: &str, i: usize, max: usize) -> &str {
    let mut start = i.saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..i]
}

/// Whether a candidate starting at byte `i` stands on its own on the left: not glued to a word
/// ("ID4111…") or to a number through punctuation ("12.415…", "AB-415…").
pub(crate) fn clean_left(text: &str, i: usize) -> bool {
    let mut before = text[..i].chars().rev();
    let Some(c) = before.next() else {
        return true;
    };
    if c.is_alphanumeric() || c == '_' {
        return false;
    }
    let c2 = before.next();
    match c {
        '.' | '-' | '/' => !c2.is_some_and(char::is_alphanumeric),
        ',' | ':' => !c2.is_some_and(|c| c.is_ascii_digit()),
        _ => true,
    }
}

/// Whether a candidate ending at byte `i` stands on its own on the right: no letter or digit
/// next, and no punctuation followed by a digit ("…0132-99", "…1.5").
pub(crate) fn clean_right(text: &str, i: usize) -> bool {
    let mut after = text[i..].chars();
    let Some(c) = after.next() else {
        return true;
    };
    if c.is_alphanumeric() || c == '_' {
        return false;
    }
    !(matches!(c, '.' | ',' | '-' | '/' | ':') && after.next().is_some_and(|c| c.is_ascii_digit()))
}
