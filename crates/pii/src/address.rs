//! Street addresses: number-first (US, UK, French) and street-first (German, Dutch, Spanish,
//! Italian, Portuguese) forms, with the unit, town and postcode when directly attached.

use crate::{Detector, EntityType, Span};

impl Detector {
    pub(crate) fn find_streets(&self, text: &str, out: &mut Vec<Span>) {
        for regex in [&self.street_us, &self.street_fr, &self.street_compound] {
            for m in regex.find_iter(text) {
                push_address(text, m.start(), m.end(), out);
            }
        }
        for captures in self.street_keyword.captures_iter(text) {
            let Some(whole) = captures.get(0) else {
                continue;
            };
            // "Via Slack 3": the first word of the name is an ordinary capitalised word.
            if captures.get(1).is_some_and(|first| self.stop_words.contains(first.as_str())) {
                continue;
            }
            push_address(text, whole.start(), whole.end(), out);
        }
    }
}

/// An address span never ends with a period: after "Ave." at the end of a sentence it is the
/// full stop as much as the abbreviation's.
fn push_address(text: &str, start: usize, mut end: usize, out: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    while end > start && bytes[end - 1] == b'.' {
        end -= 1;
    }
    out.push(Span::new(EntityType::StreetAddress, start, end));
}
