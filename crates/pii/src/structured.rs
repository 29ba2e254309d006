//! Detectors for formats with structure: e-mail addresses, payment cards, IBANs, social security
//! numbers, IP addresses, API keys and phone numbers. All offsets here are bytes.

use std::net::Ipv6Addr;

use crate::{Detector, EntityType, Span, char_at, char_before, clean_left, clean_right, window};

/// A run of ASCII digits inside a candidate, as byte offsets.
#[derive(Clone, Copy, Debug)]
struct Group {
    start: usize,
    end: usize,
    /// Written in parentheses: "(415)", "(0)".
    paren: bool,
}

impl Group {
    fn size(&self) -> usize {
        self.end - self.start
    }
}

/// The maximal runs of ASCII digits in `text[start..end]`.
fn digit_runs(text: &str, start: usize, end: usize) -> Vec<Group> {
    let bytes = text.as_bytes();
    let mut groups = Vec::new();
    let mut i = start;
    while i < end {
        if bytes[i].is_ascii_digit() {
            let mut j = i;
            while j < end && bytes[j].is_ascii_digit() {
                j += 1;
            }
            let paren = i > start && bytes[i - 1] == b'(' && j < end && bytes[j] == b')';
            groups.push(Group { start: i, end: j, paren });
            i = j;
        } else {
            i += 1;
        }
    }
    groups
}

/// The Luhn checksum over ASCII digits.
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in digits.iter().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The number formed by the first `n` ASCII digits.
fn leading(digits: &[u8], n: usize) -> u32 {
    digits[..n].iter().fold(0, |acc, &b| acc * 10 + u32::from(b - b'0'))
}

/// Whether the digits start with a card network's issuer prefix and have that network's length.
fn card_network_ok(digits: &[u8]) -> bool {
    let n = digits.len();
    let (p2, p3, p4) = (leading(digits, 2), leading(digits, 3), leading(digits, 4));
    if digits[0] == b'4' {
        return matches!(n, 13 | 16 | 19); // Visa
    }
    if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
        return n == 16; // Mastercard
    }
    if p2 == 34 || p2 == 37 {
        return n == 15; // American Express
    }
    if p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (3528..=3589).contains(&p4) {
        return (16..=19).contains(&n); // Discover, JCB
    }
    if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 {
        return (14..=19).contains(&n); // Diners Club
    }
    false
}

/// IBAN lengths by country (the common SEPA and nearby countries).
fn iban_length(country: &str) -> Option<usize> {
    let length = match country {
        "AD" => 24,
        "AE" => 23,
        "AT" => 20,
        "BE" => 16,
        "BG" => 22,
        "BH" => 22,
        "CH" => 21,
        "CY" => 28,
        "CZ" => 24,
        "DE" => 22,
        "DK" => 18,
        "EE" => 20,
        "ES" => 24,
        "FI" => 18,
        "FO" => 18,
        "FR" => 27,
        "GB" => 22,
        "GI" => 23,
        "GL" => 18,
        "GR" => 27,
        "HR" => 21,
        "HU" => 28,
        "IE" => 22,
        "IL" => 23,
        "IS" => 26,
        "IT" => 27,
        "KW" => 30,
        "KZ" => 20,
        "LB" => 28,
        "LI" => 21,
        "LT" => 20,
        "LU" => 20,
        "LV" => 21,
        "MC" => 27,
        "ME" => 22,
        "MK" => 19,
        "MT" => 31,
        "MU" => 30,
        "NL" => 18,
        "NO" => 15,
        "PL" => 28,
        "PT" => 25,
        "QA" => 29,
        "RO" => 24,
        "RS" => 22,
        "SA" => 24,
        "SE" => 24,
        "SI" => 19,
        "SK" => 24,
        "SM" => 27,
        "TN" => 24,
        "TR" => 26,
        "UA" => 29,
        _ => return None,
    };
    Some(length)
}

/// ISO 13616: the first four characters moved to the end, letters as 10..35, mod 97 is 1.
pub(crate) fn iban_checksum_ok(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut remainder = 0u32;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        remainder = match b {
            b'0'..=b'9' => (remainder * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (remainder * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    remainder == 1
}

/// Area, group and serial numbers the SSA never issues.
fn ssn_parts_ok(area: &str, group: &str, serial: &str) -> bool {
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Shannon entropy in bits per character.
fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a token after a word like "token" or "api_key" looks like a generated secret: long,
/// letters and digits, high entropy, not a path or URL.
fn looks_random(token: &str) -> bool {
    if token.len() < 16 || token.contains("//") || token.starts_with('/') {
        return false;
    }
    let has_digit = token.bytes().any(|b| b.is_ascii_digit());
    let has_letter = token.bytes().any(|b| b.is_ascii_alphabetic());
    let threshold = if token.len() >= 20 { 3.0 } else { 3.3 };
    has_digit && has_letter && shannon_entropy(token) >= threshold
}

/// Three groups joined by the same '-', '.' or '/' that read as a date: 2024-01-15, 15.01.2024.
fn looks_like_date(text: &str, groups: &[Group]) -> bool {
    groups.windows(3).any(|w| {
        let first = &text[w[0].end..w[1].start];
        let second = &text[w[1].end..w[2].start];
        if first != second || !matches!(first, "-" | "." | "/") {
            return false;
        }
        let (a, b, c) = (w[0].size(), w[1].size(), w[2].size());
        let century = &text[w[0].start..w[0].start + 2];
        (a == 4 && b <= 2 && c <= 2 && (century == "19" || century == "20")) || (a <= 2 && b <= 2 && (c == 2 || c == 4))
    })
}

/// Whether groups `i..=j` of a phone candidate form a phone number. `plus`: the candidate
/// starts with '+'; `context`: a word like "phone" or "call" comes shortly before.
fn phone_ok(text: &str, all: &[Group], i: usize, j: usize, plus: bool, context: bool) -> bool {
    let g = &all[i..=j];
    let n = g.len();
    let size = |k: usize| g[k].size();
    let lead = |k: usize| text.as_bytes()[g[k].start];
    let digits: usize = g.iter().map(Group::size).sum();
    if g[n - 1].paren || size(n - 1) < 2 || (2..n).any(|k| size(k) < 2) {
        return false;
    }
    for pair in g.windows(2) {
        let separator = &text[pair[0].end..pair[1].start];
        let mut marks = separator.bytes().filter(|&b| !matches!(b, b'(' | b')' | b' '));
        let first = marks.next();
        if marks.next().is_some() || first.is_some_and(|b| b != b'-' && b != b'.') {
            return false;
        }
    }
    // Four dotted groups of up to three digits: an IPv4 address (valid or not), not a phone.
    let dotted = n > 1 && g.windows(2).all(|pair| &text[pair[0].end..pair[1].start] == ".");
    if dotted && n == 4 && g.iter().all(|x| x.size() <= 3) {
        return false;
    }
    if looks_like_date(text, g) {
        return false;
    }
    if plus && i == 0 {
        return (8..=15).contains(&digits) && (n == 1 || size(0) <= 4);
    }
    let area_like = |k: usize| (b'2'..=b'9').contains(&lead(k));
    // "0044 20 7946 0958": international with 00 instead of +.
    if text[g[0].start..].starts_with("00")
        && !g[0].paren
        && n >= 3
        && (10..=15).contains(&digits)
        && (3..=4).contains(&size(0))
    {
        return true;
    }
    // North American: (415) 555-0132, 415.555.0132, 1-800-555-0199.
    if n == 3 && size(0) == 3 && size(1) == 3 && size(2) == 4 && area_like(0) && area_like(1) {
        return true;
    }
    if n == 4
        && &text[g[0].start..g[0].end] == "1"
        && size(1) == 3
        && size(2) == 3
        && size(3) == 4
        && area_like(1)
        && area_like(2)
    {
        return true;
    }
    // National numbers with a trunk 0: 020 7946 0958, 06 12 34 56 78, 030 901820.
    if lead(0) == b'0'
        && !text[g[0].start..].starts_with("00")
        && n >= 2
        && (9..=11).contains(&digits)
        && g.iter().all(|x| x.size() >= 2)
    {
        return true;
    }
    context && (7..=15).contains(&digits) && (n >= 2 || digits >= 9)
}

impl Detector {
    pub(crate) fn find_emails(&self, text: &str, out: &mut Vec<Span>) {
        for m in self.email.find_iter(text) {
            let local = m.as_str().split('@').next().unwrap_or_default();
            if local.contains("..") || !clean_left(text, m.start()) {
                continue;
            }
            out.push(Span::new(EntityType::EmailAddress, m.start(), m.end()));
        }
    }

    pub(crate) fn find_cards(&self, text: &str, out: &mut Vec<Span>) {
        for m in self.digit_groups.find_iter(text) {
            let groups = digit_runs(text, m.start(), m.end());
            let n = groups.len();
            let mut k = 0;
            // The longest valid card from each position: a run may hold a card and more numbers.
            'next: while k < n {
                for (i, first) in groups.iter().enumerate().skip(k) {
                    for j in (i..n.min(i + 6)).rev() {
                        if card_ok(text, &groups[i..=j]) {
                            out.push(Span::new(EntityType::CreditCard, first.start, groups[j].end));
                            k = j + 1;
                            continue 'next;
                        }
                    }
                }
                break;
            }
        }
    }

    pub(crate) fn find_ibans(&self, text: &str, out: &mut Vec<Span>) {
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(m) = self.iban_start.find_at(text, from) {
            let start = m.start();
            // The match starts with an ASCII letter, so start + 1 is a character boundary.
            from = start + 1;
            let Some(length) = iban_length(&text[start..start + 2]) else {
                continue;
            };
            // Collect exactly `length` characters, allowing single spaces between groups of four.
            let mut compact = Vec::with_capacity(length);
            let mut i = start;
            let mut end = start;
            while i < bytes.len() && compact.len() < length {
                let b = bytes[i];
                if b.is_ascii_digit() || b.is_ascii_uppercase() {
                    compact.push(b);
                    i += 1;
                    end = i;
                } else if b == b' '
                    && compact.len().is_multiple_of(4)
                    && bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit() || n.is_ascii_uppercase())
                {
                    i += 1;
                } else {
                    break;
                }
            }
            if compact.len() != length
                || char_at(text, end).is_some_and(char::is_alphanumeric)
                || !clean_left(text, start)
                || !iban_checksum_ok(&compact)
            {
                continue;
            }
            out.push(Span::new(EntityType::IbanCode, start, end));
            from = end;
        }
    }

    pub(crate) fn find_ssns(&self, text: &str, out: &mut Vec<Span>) {
        for m in self.ssn.find_iter(text) {
            let s = m.as_str();
            // "ddd-dd-dddd" or "ddd dd dddd", the same separator twice.
            if s.as_bytes()[3] != s.as_bytes()[6] || !ssn_parts_ok(&s[0..3], &s[4..6], &s[7..11]) {
                continue;
            }
            if clean_left(text, m.start()) && clean_right(text, m.end()) {
                out.push(Span::new(EntityType::UsSsn, m.start(), m.end()));
            }
        }
        for m in self.ssn_bare.find_iter(text) {
            let s = m.as_str();
            if !ssn_parts_ok(&s[0..3], &s[3..5], &s[5..9]) {
                continue;
            }
            if self.ssn_context.is_match(window(text, m.start(), 40))
                && clean_left(text, m.start())
                && clean_right(text, m.end())
            {
                out.push(Span::new(EntityType::UsSsn, m.start(), m.end()));
            }
        }
    }

    pub(crate) fn find_ipv4(&self, text: &str, out: &mut Vec<Span>) {
        for m in self.ipv4.find_iter(text) {
            let octets_ok = m.as_str().split('.').all(|octet| {
                (octet.len() == 1 || !octet.starts_with('0')) && octet.parse::<u16>().is_ok_and(|v| v <= 255)
            });
            if !octets_ok {
                continue;
            }
            // Part of a longer dotted number (1.2.3.4.5) or glued to a word.
            if char_before(text, m.start()).is_some_and(|c| c == '.' || c.is_alphanumeric()) {
                continue;
            }
            // A port or prefix length may follow: 10.0.0.1:8080, 10.0.0.0/8.
            let port_or_prefix = matches!(char_at(text, m.end()), Some(':' | '/'));
            if !(clean_right(text, m.end()) || port_or_prefix)
                || self.version_context.is_match(window(text, m.start(), 20))
            {
                continue;
            }
            out.push(Span::new(EntityType::IpAddress, m.start(), m.end()));
        }
    }

    pub(crate) fn find_ipv6(&self, text: &str, out: &mut Vec<Span>) {
        let bytes = text.as_bytes();
        for m in self.ipv6.find_iter(text) {
            let start = m.start();
            let mut end = m.end();
            // A sentence's full stop or colon after the address is not part of it.
            while end > start && bytes[end - 1] == b'.' {
                end -= 1;
            }
            if end - start >= 2 && bytes[end - 1] == b':' && bytes[end - 2] != b':' {
                end -= 1;
            }
            let candidate = &text[start..end];
            if candidate.bytes().filter(|&b| b == b':').count() < 2 || !candidate.bytes().any(|b| b.is_ascii_hexdigit())
            {
                continue;
            }
            if char_before(text, start).is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                || char_at(text, end).is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            if candidate.parse::<Ipv6Addr>().is_ok() {
                out.push(Span::new(EntityType::IpAddress, start, end));
            }
        }
    }

    pub(crate) fn find_keys(&self, text: &str, out: &mut Vec<Span>) {
        let bytes = text.as_bytes();
        for m in self.known_keys.find_iter(text) {
            let start = m.start();
            let mut end = m.end();
            while end > start && matches!(bytes[end - 1], b'-' | b'.') {
                end -= 1;
            }
            // A fixed-length pattern that matched the start of a longer word.
            if char_at(text, end).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            out.push(Span::new(EntityType::ApiKey, start, end));
        }
        for captures in self.generic_key.captures_iter(text) {
            let Some(token) = captures.get(1) else {
                continue;
            };
            let start = token.start();
            let mut end = token.end();
            while end > start && matches!(bytes[end - 1], b'-' | b'.') {
                end -= 1;
            }
            if !looks_random(&text[start..end]) || char_at(text, end).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            out.push(Span::new(EntityType::ApiKey, start, end));
        }
    }

    pub(crate) fn find_phones(&self, text: &str, out: &mut Vec<Span>) {
        let bytes = text.as_bytes();
        for m in self.phone.find_iter(text) {
            let candidate_start = m.start();
            let plus = bytes[candidate_start] == b'+';
            let groups = digit_runs(text, candidate_start, m.end());
            // A run glued to a word on its left is a code ("DE89 3704…", "AB-1234"), not a phone.
            if groups.is_empty() || !clean_left(text, candidate_start) {
                continue;
            }
            let context = self.phone_context.is_match(window(text, candidate_start, 40));
            let n = groups.len();
            let mut k = 0;
            // The longest phone number from each position: a run may hold two numbers, or a
            // number followed by an unrelated count ("call 415-555-0132 2 times").
            'next: while k < n {
                for (i, first) in groups.iter().enumerate().skip(k) {
                    for j in (i..n.min(i + 8)).rev() {
                        let start = if plus && i == 0 {
                            candidate_start
                        } else if first.paren {
                            first.start - 1
                        } else {
                            first.start
                        };
                        let end = groups[j].end;
                        if !phone_ok(text, &groups, i, j, plus, context)
                            || !clean_left(text, start)
                            || !clean_right(text, end)
                            || char_at(text, end) == Some('%')
                        {
                            continue;
                        }
                        let before = window(text, start, 40);
                        if self.phone_negative.is_match(before) || self.money_before.is_match(before) {
                            continue;
                        }
                        out.push(Span::new(EntityType::PhoneNumber, start, end));
                        k = j + 1;
                        continue 'next;
                    }
                }
                break;
            }
        }
    }
}

/// Whether `groups` (consecutive digit runs of one candidate) are one payment card number.
fn card_ok(text: &str, groups: &[Group]) -> bool {
    let digits: usize = groups.iter().map(Group::size).sum();
    if !(13..=19).contains(&digits) {
        return false;
    }
    if groups.len() > 1 {
        // One separator throughout, and the groupings card issuers print: 4-4-4-4(-3), 4-6-5, 4-6-4.
        let separator = &text[groups[0].end..groups[1].start];
        if groups.windows(2).any(|w| &text[w[0].end..w[1].start] != separator) {
            return false;
        }
        let sizes: Vec<usize> = groups.iter().map(Group::size).collect();
        let fours = sizes[..sizes.len() - 1].iter().all(|&s| s == 4);
        if sizes[0] != 4 || !(fours || sizes == [4, 6, 5] || sizes == [4, 6, 4]) {
            return false;
        }
    }
    let mut number = Vec::with_capacity(digits);
    for g in groups {
        number.extend_from_slice(&text.as_bytes()[g.start..g.end]);
    }
    let last = groups[groups.len() - 1];
    card_network_ok(&number) && luhn_valid(&number) && clean_left(text, groups[0].start) && clean_right(text, last.end)
}
