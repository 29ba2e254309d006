//! Scoring a detector against labelled text: per-type precision, recall and F1 with exact span
//! matching (type, start and end must all agree), counted over all cases (micro average). No
//! parsing here: callers turn their labelled data into `(text, entities)` pairs.

use std::fmt::Write as _;

use crate::{Detector, Entity, EntityType};

/// Precision from true and false positives: 1.0 when nothing was predicted.
fn precision(true_positives: u64, false_positives: u64) -> f64 {
    let predicted = true_positives + false_positives;
    if predicted == 0 { 1.0 } else { true_positives as f64 / predicted as f64 }
}

/// Recall from true positives and false negatives: 1.0 when there was nothing to find.
fn recall(true_positives: u64, false_negatives: u64) -> f64 {
    let relevant = true_positives + false_negatives;
    if relevant == 0 { 1.0 } else { true_positives as f64 / relevant as f64 }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall <= 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
}

/// The counts for one entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Score {
    pub entity_type: EntityType,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl Score {
    pub fn new(entity_type: EntityType) -> Score {
        Score { entity_type, true_positives: 0, false_positives: 0, false_negatives: 0 }
    }

    pub fn precision(&self) -> f64 {
        precision(self.true_positives, self.false_positives)
    }

    pub fn recall(&self) -> f64 {
        recall(self.true_positives, self.false_negatives)
    }

    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
}

/// The counts over all types together (micro average).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overall {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl Overall {
    pub fn precision(&self) -> f64 {
        precision(self.true_positives, self.false_positives)
    }

    pub fn recall(&self) -> f64 {
        recall(self.true_positives, self.false_negatives)
    }

    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }
}

/// Runs `detector` on every case and scores it against the expected entities. One [`Score`] per
/// type, in [`EntityType::ALL`] order.
pub fn score(detector: &Detector, cases: &[(String, Vec<Entity>)]) -> Vec<Score> {
    let mut scores: Vec<Score> = EntityType::ALL.into_iter().map(Score::new).collect();
    for (text, expected) in cases {
        let found = detector.detect(text);
        add(&mut scores, expected, &found);
    }
    scores
}

/// Scores predictions made elsewhere: `found[i]` for `cases[i]`.
pub fn score_predictions(cases: &[(String, Vec<Entity>)], found: &[Vec<Entity>]) -> Vec<Score> {
    let mut scores: Vec<Score> = EntityType::ALL.into_iter().map(Score::new).collect();
    for ((_, expected), found) in cases.iter().zip(found) {
        add(&mut scores, expected, found);
    }
    scores
}

fn add(scores: &mut [Score], expected: &[Entity], found: &[Entity]) {
    for entity in found {
        let score = slot(scores, entity.entity_type);
        if expected.contains(entity) {
            score.true_positives += 1;
        } else {
            score.false_positives += 1;
        }
    }
    for entity in expected {
        if !found.contains(entity) {
            slot(scores, entity.entity_type).false_negatives += 1;
        }
    }
}

fn slot(scores: &mut [Score], entity_type: EntityType) -> &mut Score {
    let index = EntityType::ALL.iter().position(|t| *t == entity_type).unwrap_or_default();
    &mut scores[index]
}

/// The micro average over `scores`.
pub fn overall(scores: &[Score]) -> Overall {
    scores.iter().fold(Overall::default(), |total, s| Overall {
        true_positives: total.true_positives + s.true_positives,
        false_positives: total.false_positives + s.false_positives,
        false_negatives: total.false_negatives + s.false_negatives,
    })
}

/// A plain-text table of `scores` with an overall row.
pub fn table(scores: &[Score]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<15} {:>5} {:>5} {:>5} {:>9} {:>7} {:>6}",
        "type", "tp", "fp", "fn", "precision", "recall", "f1"
    );
    for s in scores {
        let _ = writeln!(
            out,
            "{:<15} {:>5} {:>5} {:>5} {:>9.3} {:>7.3} {:>6.3}",
            s.entity_type.as_str(),
            s.true_positives,
            s.false_positives,
            s.false_negatives,
            s.precision(),
            s.recall(),
            s.f1()
        );
    }
    let total = overall(scores);
    let _ = writeln!(
        out,
        "{:<15} {:>5} {:>5} {:>5} {:>9.3} {:>7.3} {:>6.3}",
        "overall (micro)",
        total.true_positives,
        total.false_positives,
        total.false_negatives,
        total.precision(),
        total.recall(),
        total.f1()
    );
    out
}
