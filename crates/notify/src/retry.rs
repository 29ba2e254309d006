//! One retry policy for every outbound notification (webhooks and SMTP), on `backon`:
//! exponential pauses with jitter, only for failures that can succeed later, honouring the
//! receiver's `Retry-After`.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: usize,
    /// The pause before the first retry; each next one doubles, with jitter.
    pub first_pause: Duration,
    /// The longest pause, and the most a `Retry-After` may ask for.
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 5, first_pause: Duration::from_millis(500), max_pause: Duration::from_secs(30) }
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttemptFailed {
    /// What the record and the log say (never a URL, which may carry a token).
    pub message: String,
    /// Connection errors, timeouts, 429 and 5xx: worth another attempt. A 400 or a 404 is not.
    pub retryable: bool,
    /// What the receiver asked for (`Retry-After`), when it did.
    pub retry_after: Option<Duration>,
}

impl AttemptFailed {
    pub(crate) fn for_good(message: impl Into<String>) -> AttemptFailed {
        AttemptFailed { message: message.into(), retryable: false, retry_after: None }
    }

    pub(crate) fn for_now(message: impl Into<String>) -> AttemptFailed {
        AttemptFailed { message: message.into(), retryable: true, retry_after: None }
    }

    /// A webhook's answer that is not a success: 408, 425, 429 and 5xx are worth retrying.
    pub(crate) fn from_status(status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap) -> AttemptFailed {
        let retryable = status.is_server_error() || [408, 425, 429].contains(&status.as_u16());
        AttemptFailed {
            message: format!("the webhook answered {status}"),
            retryable,
            retry_after: retryable.then(|| retry_after(headers)).flatten(),
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// Runs `attempt` under `policy`: answers how many attempts were made and the last failure, if
/// the delivery failed in the end.
pub(crate) async fn with_retries<F, Fut>(policy: RetryPolicy, mut attempt: F) -> (u32, Option<String>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), AttemptFailed>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_pause)
        .with_max_delay(policy.max_pause)
        .with_max_times(policy.attempts.saturating_sub(1))
        .with_jitter();
    let mut attempts = 0u32;
    let result = (|| {
        attempts += 1;
        attempt()
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(|failed: &AttemptFailed| failed.retryable)
    .adjust(|failed: &AttemptFailed, next: Option<Duration>| {
        // The receiver's word over ours, within the longest pause; none once the attempts end.
        next.map(|pause| failed.retry_after.map_or(pause, |asked| asked.min(policy.max_pause)))
    })
    .notify(|failed: &AttemptFailed, pause: Duration| {
        tracing::debug!(error = %failed.message, pause_ms = pause.as_millis() as u64, "a notification will be retried");
    })
    .await;
    (attempts, result.err().map(|failed| failed.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> RetryPolicy {
        RetryPolicy { attempts: 4, first_pause: Duration::from_millis(1), max_pause: Duration::from_millis(5) }
    }

    #[tokio::test]
    async fn what_can_succeed_later_is_retried_and_what_cannot_is_not() {
        let mut answers = vec![Err(AttemptFailed::for_now("503")), Err(AttemptFailed::for_now("503")), Ok(())];
        answers.reverse();
        let (attempts, error) = with_retries(quick(), || std::future::ready(answers.pop().unwrap())).await;
        assert_eq!((attempts, error), (3, None));

        let (attempts, error) =
            with_retries(quick(), || std::future::ready(Err(AttemptFailed::for_good("the webhook answered 404"))))
                .await;
        assert_eq!((attempts, error.as_deref()), (1, Some("the webhook answered 404")));

        let (attempts, error) = with_retries(quick(), || std::future::ready(Err(AttemptFailed::for_now("down")))).await;
        assert_eq!((attempts, error.as_deref()), (4, Some("down")));
    }

    #[test]
    fn statuses_and_retry_after_are_read_as_a_well_behaved_client_reads_them() {
        use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let busy = AttemptFailed::from_status(reqwest::StatusCode::TOO_MANY_REQUESTS, &headers);
        assert!(busy.retryable);
        assert_eq!(busy.retry_after, Some(Duration::from_secs(7)));
        assert!(AttemptFailed::from_status(reqwest::StatusCode::BAD_GATEWAY, &HeaderMap::new()).retryable);
        for status in [400, 401, 403, 404, 410, 422] {
            let status = reqwest::StatusCode::from_u16(status).unwrap();
            assert!(!AttemptFailed::from_status(status, &headers).retryable, "{status}");
        }
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let asked = retry_after(&headers).unwrap();
        assert!(asked > Duration::from_secs(100) && asked <= Duration::from_secs(120), "{asked:?}");
    }

    /// A `Retry-After` is honoured, within the longest pause.
    #[tokio::test(start_paused = true)]
    async fn retry_after_sets_the_pause() {
        let policy =
            RetryPolicy { attempts: 2, first_pause: Duration::from_millis(1), max_pause: Duration::from_secs(20) };
        let started = tokio::time::Instant::now();
        let mut first = true;
        let (attempts, error) = with_retries(policy, || {
            let answer = match std::mem::take(&mut first) {
                true => Err(AttemptFailed {
                    message: "429".into(),
                    retryable: true,
                    retry_after: Some(Duration::from_secs(3600)),
                }),
                false => Ok(()),
            };
            std::future::ready(answer)
        })
        .await;
        assert_eq!((attempts, error), (2, None));
        assert_eq!(started.elapsed().as_secs(), 20, "the hour asked for, capped at max_pause");
    }
}
