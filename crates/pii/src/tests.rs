//! The detectors on hand-written cases (positives and the negatives each must not take), character
//! offsets, overlaps and redaction, and the scores on the evaluation set.

use std::sync::OnceLock;
use std::time::Instant;

use crate::{Detector, Entity, EntityType as T, eval};

fn detector() -> &'static Detector {
    static DETECTOR: OnceLock<Detector> = OnceLock::new();
    DETECTOR.get_or_init(Detector::new)
}

/// The characters `start..end` of `text`.
fn chars(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end - start).collect()
}

/// Asserts that exactly `expected` is found in `text`, in order, as (type, covered text).
#[track_caller]
fn check(text: &str, expected: &[(T, &str)]) {
    let found: Vec<(T, String)> =
        detector().detect(text).into_iter().map(|e| (e.entity_type, chars(text, e.start, e.end))).collect();
    let expected: Vec<(T, String)> = expected.iter().map(|&(t, s)| (t, s.to_owned())).collect();
    assert_eq!(found, expected, "in {text:?}");
}

#[test]
fn entity_type_names_round_trip() {
    for t in T::ALL {
        assert_eq!(T::parse(t.as_str()), Some(t));
        assert_eq!(t.to_string(), t.as_str());
    }
    assert_eq!(T::parse("EMAIL_ADDRESS"), Some(T::EmailAddress));
    assert_eq!(T::parse("email"), None);
}

#[test]
fn detector_is_send_and_sync() {
    fn shareable(_: &(impl Send + Sync)) {}
    shareable(detector());
}

#[test]
fn emails() {
    check("Write to maria.garcia@example.com today.", &[(T::EmailAddress, "maria.garcia@example.com")]);
    check("Copy j.smith+billing@company.co.uk.", &[(T::EmailAddress, "j.smith+billing@company.co.uk")]);
    check("not an email: user@localhost, @handle, a..b@example.com", &[]);
    // Addresses in other scripts (RFC 6531) are found whole.
    check(
        "Grüße, mail jürgen@example.de or ярослав@почта.рф",
        &[(T::EmailAddress, "jürgen@example.de"), (T::EmailAddress, "ярослав@почта.рф")],
    );
}

#[test]
fn credit_cards() {
    check("Card 4111 1111 1111 1111 on file.", &[(T::CreditCard, "4111 1111 1111 1111")]);
    check(
        "Amex 3782 822463 10005 and dashes 5500-0000-0000-0004.",
        &[(T::CreditCard, "3782 822463 10005"), (T::CreditCard, "5500-0000-0000-0004")],
    );
    // Luhn-invalid, glued to a word, or no card network's prefix: not cards.
    check(
        "Card 4111 1111 1111 1112 is a typo, and 4111111111111111 is not glued: ID4111111111111111.",
        &[(T::CreditCard, "4111111111111111")],
    );
    check("Order 1234567812345678 shipped", &[]);
}

#[test]
fn ibans() {
    check("IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX.", &[(T::IbanCode, "DE89 3704 0044 0532 0130 00")]);
    check(
        "Pay GB82 WEST 1234 5698 7654 32 or NL91ABNA0417164300 or FR1420041010050500013M02606.",
        &[
            (T::IbanCode, "GB82 WEST 1234 5698 7654 32"),
            (T::IbanCode, "NL91ABNA0417164300"),
            (T::IbanCode, "FR1420041010050500013M02606"),
        ],
    );
    // A wrong check digit, and a country without IBANs.
    check("Bad checksum DE89 3704 0044 0532 0130 01 and unknown country XX89370400440532013000.", &[]);
}

#[test]
fn us_ssns() {
    check("SSN 123-45-6789 on file", &[(T::UsSsn, "123-45-6789")]);
    check("Applicant SSN: 123 45 6789.", &[(T::UsSsn, "123 45 6789")]);
    check("my social security number is 078051120", &[(T::UsSsn, "078051120")]);
    // Never-issued areas, groups and serials; mixed separators; a bare number without context.
    check("Invalid: 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000, 123-45 6789.", &[]);
    check("id 123456789 is not an SSN", &[]);
}

#[test]
fn ip_addresses() {
    check("Blocked 192.168.1.10 and 8.8.8.8.", &[(T::IpAddress, "192.168.1.10"), (T::IpAddress, "8.8.8.8")]);
    check(
        "from 2001:db8::8a2e:370:7334 and fe80::1ff:fe23:4567:890a, loopback ::1.",
        &[(T::IpAddress, "2001:db8::8a2e:370:7334"), (T::IpAddress, "fe80::1ff:fe23:4567:890a"), (T::IpAddress, "::1")],
    );
    // A five-part version, an octet over 255, a firmware version, a time, a MAC address.
    check("Release 1.2.3.4.5 and 999.1.1.1 and firmware 4.3.2.1 at 12:30:45, MAC 00:1A:2B:3C:4D:5E.", &[]);
}

#[test]
fn api_keys() {
    check(
        "key sk-proj-abc123DEF456ghi789JKL012mno345 and AKIAIOSFODNN7EXAMPLE",
        &[(T::ApiKey, "sk-proj-abc123DEF456ghi789JKL012mno345"), (T::ApiKey, "AKIAIOSFODNN7EXAMPLE")],
    );
    check(
        "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 leaked",
        &[(T::ApiKey, "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789")],
    );
    check("api_key=9f8e7d6c5b4a39281716abcdef", &[(T::ApiKey, "9f8e7d6c5b4a39281716abcdef")]);
    check(
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghij1234567890",
        &[(T::ApiKey, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghij1234567890")],
    );
    // A commit hash without a secret word before it, and secret words without a secret.
    check("commit 9fceb02d0ae598e95dc970b74767f19372d61af8, the token expired, password reset link, tokens: 4096", &[]);
}

#[test]
fn phone_numbers() {
    check(
        "Call (415) 555-0132 or 415-555-0132 or +1 (415) 555-0132.",
        &[(T::PhoneNumber, "(415) 555-0132"), (T::PhoneNumber, "415-555-0132"), (T::PhoneNumber, "+1 (415) 555-0132")],
    );
    check(
        "London +44 20 7946 0958, Berlin +49 30 901820, Paris 06 12 34 56 78 and +33 1 23 45 67 89, office 020 7946 0958.",
        &[
            (T::PhoneNumber, "+44 20 7946 0958"),
            (T::PhoneNumber, "+49 30 901820"),
            (T::PhoneNumber, "06 12 34 56 78"),
            (T::PhoneNumber, "+33 1 23 45 67 89"),
            (T::PhoneNumber, "020 7946 0958"),
        ],
    );
    // No separators: a phone only because of the word before it.
    check("call me at 4155550132", &[(T::PhoneNumber, "4155550132")]);
    // A count after the number is not part of it.
    check("call 415-555-0132 2 times", &[(T::PhoneNumber, "415-555-0132")]);
    check(
        "On 2024-01-15 at 10:30, ticket 4155550132, version 1.2.3, costs $1,299.99, ISBN 978-3-16-148410-0, the year 2024.",
        &[],
    );
}

#[test]
fn street_addresses() {
    check(
        "Ship to 4567 N. Oak Ave., Apt 5B, Springfield, IL 62704 today.",
        &[(T::StreetAddress, "4567 N. Oak Ave., Apt 5B, Springfield, IL 62704")],
    );
    check(
        "Visit 1600 Pennsylvania Avenue NW, Washington, DC 20500 or 10 Downing Street, London SW1A 2AA.",
        &[
            (T::StreetAddress, "1600 Pennsylvania Avenue NW, Washington, DC 20500"),
            (T::StreetAddress, "10 Downing Street, London SW1A 2AA"),
        ],
    );
    check(
        "Hauptstraße 5, 10115 Berlin; 12 rue de Rivoli, 75001 Paris; Calle Mayor 7; Via Roma 10; Keizersgracht 123.",
        &[
            (T::StreetAddress, "Hauptstraße 5, 10115 Berlin"),
            (T::StreetAddress, "12 rue de Rivoli, 75001 Paris"),
            (T::StreetAddress, "Calle Mayor 7"),
            (T::StreetAddress, "Via Roma 10"),
            (T::StreetAddress, "Keizersgracht 123"),
        ],
    );
    check("I live at 123 Main Street.", &[(T::StreetAddress, "123 Main Street")]);
    // The full stop after an abbreviation is not part of the span.
    check("Meet at 12 Oak Ave.", &[(T::StreetAddress, "12 Oak Ave")]);
    check("We have 3 Apple Watch bands. Via Slack 3 people answered. ZIP 94103 only.", &[]);
}

#[test]
fn persons() {
    check("Contact Maria Garcia today.", &[(T::Person, "Maria Garcia")]);
    check("Dr. Priya Raman will call.", &[(T::Person, "Priya Raman")]);
    check("Ms. Okafor approved it.", &[(T::Person, "Okafor")]);
    check("Dear Oluwaseun Adebayo, welcome.", &[(T::Person, "Oluwaseun Adebayo")]);
    check("Hi Ahmed, thanks for the update.", &[(T::Person, "Ahmed")]);
    check("Best regards,\nMaria", &[(T::Person, "Maria")]);
    check(
        "Jean-Luc Picard joined, and so did Jan van der Berg.",
        &[(T::Person, "Jean-Luc Picard"), (T::Person, "Jan van der Berg")],
    );
    check("Maria's laptop is broken.", &[]);
    check("Ask Maria's manager, Priya Raman's deputy.", &[(T::Person, "Maria"), (T::Person, "Priya Raman")]);
    check(
        "Meet me in New York on Monday. The Apple Watch Series 9 is out. Santa Maria Novella is a church. \
         Wayne Enterprises shipped it.",
        &[],
    );
}

#[test]
fn offsets_count_characters_not_bytes() {
    let found = detector().detect("Grüße an maria@example.de");
    assert_eq!(found, vec![Entity { entity_type: T::EmailAddress, start: 9, end: 25 }]);

    let text = "📞 +49 30 901820 — Jürgen Müller";
    let found = detector().detect(text);
    assert_eq!(
        found,
        vec![
            Entity { entity_type: T::PhoneNumber, start: 2, end: 15 },
            Entity { entity_type: T::Person, start: 18, end: 31 },
        ]
    );
    assert_eq!(chars(text, 18, 31), "Jürgen Müller");
}

#[test]
fn overlaps_keep_the_longer_span() {
    // The name inside the address is not reported separately, nor the one inside the e-mail.
    check("Send it to Maria.Garcia@example.com please.", &[(T::EmailAddress, "Maria.Garcia@example.com")]);
    check("It is at 14 Victoria Road, Leeds LS6 1AN.", &[(T::StreetAddress, "14 Victoria Road, Leeds LS6 1AN")]);
}

#[test]
fn redact_replaces_each_entity_with_its_type() {
    let text = "Mail maria@example.com or call (415) 555-0132.";
    let redacted = detector().redact(text);
    assert_eq!(redacted.text, "Mail [EMAIL_ADDRESS] or call [PHONE_NUMBER].");
    assert_eq!(
        redacted.entities,
        vec![
            Entity { entity_type: T::EmailAddress, start: 5, end: 22 },
            Entity { entity_type: T::PhoneNumber, start: 31, end: 45 },
        ]
    );
    let plain = "Nothing to see here.";
    assert_eq!(detector().redact(plain).text, plain);
}

/// `eval/eval.jsonl`: one JSON object a line, `{"text": …, "entities": [{"type", "start", "end"}]}`.
fn evaluation_set() -> Vec<(String, Vec<Entity>)> {
    include_str!("../eval/eval.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            let text = value["text"].as_str().expect("a text").to_owned();
            let entities = value["entities"]
                .as_array()
                .expect("an entity list")
                .iter()
                .map(|e| {
                    let offset = |key: &str| usize::try_from(e[key].as_u64().expect("an offset")).expect("fits");
                    Entity {
                        entity_type: T::parse(e["type"].as_str().expect("a type")).expect("a known type"),
                        start: offset("start"),
                        end: offset("end"),
                    }
                })
                .collect();
            (text, entities)
        })
        .collect()
}

#[test]
fn evaluation_set_scores() {
    let cases = evaluation_set();
    assert!(cases.len() >= 500, "the evaluation set has {} lines", cases.len());

    let started = Instant::now();
    let found: Vec<Vec<Entity>> = cases.iter().map(|(text, _)| detector().detect(text)).collect();
    let elapsed = started.elapsed();
    for ((text, _), entities) in cases.iter().zip(&found) {
        assert!(
            entities.windows(2).all(|w| w[0].end <= w[1].start),
            "unsorted or overlapping entities in {text:?}: {entities:?}"
        );
    }

    let scores = eval::score_predictions(&cases, &found);
    let table = eval::table(&scores);
    println!("{table}");
    println!(
        "{} sentences in {:.1} ms ({:.0} sentences/s, this build's optimisation level)",
        cases.len(),
        elapsed.as_secs_f64() * 1000.0,
        cases.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    assert_eq!(scores, eval::score(detector(), &cases), "score and score_predictions agree");

    // What the detector was designed for on this set; see eval/README.md.
    let floor = |t: T| match t {
        T::Person | T::StreetAddress => 0.85,
        _ => 0.93,
    };
    let below: Vec<String> = scores
        .iter()
        .filter(|s| s.f1() < floor(s.entity_type))
        .map(|s| format!("{}: F1 {:.3} < {:.2}", s.entity_type, s.f1(), floor(s.entity_type)))
        .collect();
    assert!(below.is_empty(), "below the floor: {below:?}\n{table}");
    assert!(eval::overall(&scores).f1() >= 0.93, "overall F1 below 0.93\n{table}");
}
