//! People's names. A name is a run of capitalised words (with particles such as "van der" or
//! "de la" inside), accepted when the words themselves say so (a known given name followed by
//! another word, or words ending in a known family name) or when the words before it do (a title,
//! "Dear", "my name is", "Regards,", "Hi … ,"). Words that are never names (weekdays, places,
//! brands, business vocabulary) end a run; a word like "Team" or "Enterprises" right after a run
//! makes it an organisation instead.

use crate::patterns::{PARTICLES, PLACE_PREFIXES, TITLES};
use crate::{Detector, EntityType, Span, char_at, window};

/// Capitalised: an upper-case first letter, some lower-case letter, at least two characters.
/// All-caps words ("ACME", "SSN") are not names here.
fn is_capitalised(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.next().is_some() && word.chars().any(char::is_lowercase)
}

/// Whether the text before byte `i` ends a sentence (or there is none).
fn sentence_start(text: &str, i: usize) -> bool {
    let before = text[..i].trim_end_matches([' ', '\t']);
    before.chars().next_back().is_none_or(|c| matches!(c, '.' | '!' | '?' | '\n'))
}

/// "al-Rashid", "el-Amin": a lower-case Arabic article joined to a capitalised name.
fn is_article_name(word: &str) -> bool {
    (word.starts_with("al-") || word.starts_with("el-")) && word[3..].starts_with(char::is_uppercase)
}

impl Detector {
    fn known_given(&self, word: &str) -> bool {
        self.first_names.contains(word)
            || word.split_once('-').is_some_and(|(first, _)| self.first_names.contains(first))
    }

    /// A capitalised word that may be part of a name.
    fn name_word(&self, word: &str) -> bool {
        is_capitalised(word) && !self.stop_words.contains(word) && !self.org_words.contains(word)
    }

    pub(crate) fn find_persons(&self, text: &str, out: &mut Vec<Span>) {
        // Words, with a possessive "'s" cut off ("Maria's" -> "Maria").
        let words: Vec<(usize, usize)> = self
            .word
            .find_iter(text)
            .map(|m| {
                let w = m.as_str();
                let kept = w.strip_suffix("'s").or_else(|| w.strip_suffix("’s")).unwrap_or(w);
                (m.start(), m.start() + kept.len())
            })
            .collect();
        let n = words.len();
        let word = |k: usize| &text[words[k].0..words[k].1];
        let single_space = |a: usize, b: usize| &text[words[a].1..words[b].0] == " ";

        let mut k = 0;
        while k < n {
            let first = word(k);
            if !self.name_word(first) || TITLES.contains(&first) {
                k += 1;
                continue;
            }
            // Extend over capitalised words and particles, at most three name words.
            let mut j = k;
            let mut name_words = 1;
            let mut organisation = false;
            while j + 1 < n && name_words < 3 && single_space(j, j + 1) {
                let next = word(j + 1);
                if self.name_word(next) || is_article_name(next) {
                    j += 1;
                    name_words += 1;
                    continue;
                }
                if is_capitalised(next) && self.org_words.contains(next) {
                    organisation = true;
                    break;
                }
                if PARTICLES.contains(&next) {
                    let mut m = j + 1;
                    let mut particles = 0;
                    while m < n && PARTICLES.contains(&word(m)) && particles < 2 && single_space(m - 1, m) {
                        m += 1;
                        particles += 1;
                    }
                    if m < n && single_space(m - 1, m) && self.name_word(word(m)) {
                        j = m;
                        name_words += 1;
                        continue;
                    }
                }
                break;
            }
            if organisation {
                k = j + 2;
                continue;
            }
            let start = words[k].0;
            // "Santa Maria Novella", "San Diego": a place.
            if k > 0 && single_space(k - 1, k) && PLACE_PREFIXES.contains(&word(k - 1)) {
                k = j + 1;
                continue;
            }
            // "Later Maria Garcia …": a sentence-initial word before a known given name.
            if j > k && !self.known_given(first) && self.known_given(word(k + 1)) && sentence_start(text, start) {
                k += 1;
                continue;
            }
            let end = words[j].1;
            let before = window(text, start, 40);
            let names: Vec<&str> = (k..=j).map(word).filter(|w| !PARTICLES.contains(w)).collect();
            let family_known = names.last().is_some_and(|w| self.last_names.contains(*w));
            let middle_known = name_words == 3 && names.get(1).is_some_and(|w| self.known_given(w));
            let namey = self.known_given(first) || (name_words >= 2 && (family_known || middle_known));
            let accept = self.title_before.is_match(before)
                || self.strong_context.is_match(before)
                || (namey && name_words >= 2)
                || (self.medium_context.is_match(before) && (namey || name_words >= 2))
                || (name_words == 1 && self.known_given(first) && self.weak_context.is_match(before))
                || (name_words == 1
                    && self.greeting_context.is_match(before)
                    && char_at(text, end).is_none_or(|c| matches!(c, ',' | '!' | '\n')));
            if accept {
                out.push(Span::new(EntityType::Person, start, end));
            }
            k = j + 1;
        }
    }
}
