//! Metering: what every app request and outbound call costs, and what follows from it.
//!
//! The gateway reports each request to [`Metering`] (its `Meter`), the outbound HTTP capability
//! each `fetch` to the [`egress_log::EgressLog`]; both feed the Prometheus [`metrics::Metrics`]
//! at once and hourly and daily roll-ups on the `metering.flush` task. [`budgets::Budgets`] turns
//! usage into money and stops apps over a budget or a monthly quota; [`slo::SloTracker`] keeps
//! each app's SLO windows and raises burn-rate alerts through the notifier.

pub mod budgets;
pub mod config;
pub mod egress_log;
mod metering;
pub mod metrics;
pub mod slo;
pub mod store;

pub use metering::Metering;
pub use store::StorageError;

/// Why a metering call failed.
#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    /// A month that is not `YYYY-MM`.
    #[error("{0}")]
    InvalidMonth(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// `YYYY-MM` (or the month of `now`) as [start, next month's start) in RFC 3339 UTC.
pub fn month_range(month: Option<&str>, now: time::OffsetDateTime) -> Result<(String, String), MeteringError> {
    let (year, month) = match month {
        None => (now.year(), u8::from(now.month())),
        Some(text) => {
            let parsed = text.split_once('-').and_then(|(year, month)| {
                let year: i32 = year.parse().ok().filter(|year| (2000..=9999).contains(year))?;
                let month: u8 = month.parse().ok().filter(|month| (1..=12).contains(month))?;
                (text.len() == 7).then_some((year, month))
            });
            parsed.ok_or_else(|| MeteringError::InvalidMonth(format!("month {text:?} is not YYYY-MM, like 2026-11")))?
        }
    };
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    Ok((format!("{year:04}-{month:02}-01T00:00:00Z"), format!("{next_year:04}-{next_month:02}-01T00:00:00Z")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_from_their_first_to_the_next_first() {
        let now = time::OffsetDateTime::from_unix_timestamp(1_796_378_400).unwrap(); // 2026-12-04 10:00 UTC
        assert_eq!(
            month_range(None, now).unwrap(),
            ("2026-12-01T00:00:00Z".to_owned(), "2027-01-01T00:00:00Z".to_owned())
        );
        assert_eq!(month_range(Some("2026-02"), now).unwrap().1, "2026-03-01T00:00:00Z");
        for bad in ["2026-13", "26-01", "2026-1", "december"] {
            assert!(matches!(month_range(Some(bad), now), Err(MeteringError::InvalidMonth(_))), "{bad}");
        }
    }
}
