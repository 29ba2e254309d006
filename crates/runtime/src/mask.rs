//! Secret values masked out of everything an app emits to the platform: its console lines and
//! the messages and stacks of its uncaught errors, as CI systems mask registered secrets. A
//! value is found as it is, base64-encoded (standard and URL-safe, padded or not) and
//! percent-encoded, and replaced by `[redacted:NAME]`.

use std::collections::BTreeMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

use crate::{AppLog, LogLine, SecretValue};

/// What `encodeURIComponent` escapes: all but letters, digits and `-_.!~*'()`.
const URI_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Values shorter than this are not masked: every `a` or `42` in a log would go.
pub const MIN_MASKED_BYTES: usize = 4;

/// The forms of one app's secret values and the name each stands for.
pub struct SecretMask {
    matcher: Option<AhoCorasick>,
    /// The replacement of each pattern, in the matcher's order.
    replacements: Vec<String>,
}

impl SecretMask {
    pub fn new(secrets: &BTreeMap<String, SecretValue>) -> SecretMask {
        let mut patterns: Vec<zeroize::Zeroizing<String>> = Vec::new();
        let mut replacements = Vec::new();
        for (name, value) in secrets {
            let value = value.expose();
            if value.len() < MIN_MASKED_BYTES {
                continue;
            }
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            let mut forms = vec![value.to_owned()];
            forms.extend(engines.iter().map(|engine| engine.encode(value.as_bytes())));
            forms.push(percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string());
            // What JavaScript's encodeURIComponent leaves as it is, and a form body's `+`.
            let component = percent_encoding::utf8_percent_encode(value, URI_COMPONENT).to_string();
            forms.push(component.replace("%20", "+"));
            forms.push(component);
            // As JSON.stringify writes it inside a string (console.log of an object).
            let json = serde_json::Value::from(value).to_string();
            forms.push(json[1..json.len() - 1].to_owned());
            forms.sort();
            forms.dedup();
            for form in forms {
                patterns.push(zeroize::Zeroizing::new(form));
                replacements.push(format!("[redacted:{name}]"));
            }
        }
        // The longest match wins: a value inside a longer form of another is masked whole.
        let matcher = match patterns.is_empty() {
            true => None,
            false => AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(patterns.iter().map(|pattern| pattern.as_bytes()))
                .ok(),
        };
        SecretMask { matcher, replacements }
    }

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret value in it replaced.
    pub fn mask(&self, text: &str) -> String {
        match &self.matcher {
            Some(matcher) => matcher.replace_all(text, &self.replacements),
            None => text.to_owned(),
        }
    }
}

/// An app log that masks the app's secret values in every line before it is written.
pub struct MaskedLog {
    inner: Arc<dyn AppLog>,
    mask: SecretMask,
}

impl MaskedLog {
    /// `inner` itself when the app has nothing to mask.
    pub fn wrap(inner: Arc<dyn AppLog>, secrets: &BTreeMap<String, SecretValue>) -> Arc<dyn AppLog> {
        let mask = SecretMask::new(secrets);
        match mask.is_empty() {
            true => inner,
            false => Arc::new(MaskedLog { inner, mask }),
        }
    }
}

impl AppLog for MaskedLog {
    fn write(&self, mut line: LogLine) {
        line.message = self.mask.mask(&line.message);
        self.inner.write(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        pairs.iter().map(|(name, value)| (name.to_string(), SecretValue::new(value.to_string()))).collect()
    }

    #[test]
    fn every_form_of_every_value_is_masked_and_short_ones_are_left() {
        let mask = SecretMask::new(&secrets(&[("API_TOKEN", "sk-live/4f+8a?b=c"), ("PIN", "123")]));
        let token = "sk-live/4f+8a?b=c";
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        let percent = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC).to_string();
        let line = format!("token {token}, basic {b64}, url {url_b64}, query ?t={percent}, pin 123");
        let masked = mask.mask(&line);
        assert_eq!(
            masked,
            "token [redacted:API_TOKEN], basic [redacted:API_TOKEN], url [redacted:API_TOKEN], query ?t=[redacted:API_TOKEN], pin 123"
        );
        assert!(SecretMask::new(&secrets(&[("PIN", "123")])).is_empty());
        // encodeURIComponent's form, and a multi-line value as JSON.stringify escapes it.
        assert_eq!(mask.mask("?t=sk-live%2F4f%2B8a%3Fb%3Dc"), "?t=[redacted:API_TOKEN]");
        let pem = SecretMask::new(&secrets(&[("KEY", "line one\nline \"two\"")]));
        assert_eq!(pem.mask(r#"{"key":"line one\nline \"two\""}"#), r#"{"key":"[redacted:KEY]"}"#);
        assert_eq!(SecretMask::new(&BTreeMap::new()).mask("as is"), "as is");
    }

    #[test]
    fn a_value_inside_another_is_masked_by_the_longer_one() {
        let mask = SecretMask::new(&secrets(&[("A", "abcd"), ("B", "xxabcdyy")]));
        assert_eq!(mask.mask("xxabcdyy and abcd"), "[redacted:B] and [redacted:A]");
    }
}
