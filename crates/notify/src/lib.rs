//! The notifier: one place that tells people what happened (budget thresholds, suspended
//! apps, SLO burn), through the operator's webhooks and by e-mail (SMTP), with retries and a
//! record of every delivery.
//!
//! A webhook gets JSON: `{"kind", "subject", "text", "details"}`; with `format = "slack"` it gets
//! `{"text"}` only, which Slack's and most chat tools' incoming webhooks accept. Deduplication is
//! the caller's: [`Notifier::notify_once`] sends an event key at most once.

pub mod config;
mod retry;

pub use retry::RetryPolicy;
use retry::{AttemptFailed, with_retries};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use audit::now;

/// A notification as sent (or not) to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRow {
    pub id: i64,
    pub time: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// The webhook URL (its query string removed) or the mail recipients.
    pub target: String,
    /// Deduplication key and kind, like `budget.threshold app:it/x@0.10 80`.
    pub key: String,
    pub subject: String,
    /// `sent` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub error: Option<String>,
}

/// The storage failed; the message is the backend's.
#[derive(Debug, thiserror::Error)]
#[error("storage failed: {0}")]
pub struct StorageError(pub String);

/// Events already notified, and the record of notifications: implemented by the platform's store.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Records that `key` happened; `false` when it was recorded before (nothing to send again).
    async fn first_time(&self, key: &str, time: &str) -> Result<bool, StorageError>;
    async fn record_notification(&self, row: NotificationRow) -> Result<(), StorageError>;
    async fn list_notifications(&self, limit: u32) -> Result<Vec<NotificationRow>, StorageError>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
}

/// Something to tell people about.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// `budget.threshold`, `app.suspended`, `app.resumed`.
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub details: serde_json::Value,
}

/// How to reach the mail server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP: only for a relay on the same host or network.
    None,
    /// STARTTLS after connecting (port 587).
    StartTls,
    /// TLS from the start (port 465).
    Tls,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Sign-in, when the server wants one; the password comes from the environment.
    pub credentials: Option<(String, String)>,
    /// `Terrarium <terrarium@example.com>`.
    pub from: String,
    /// Who is told: the platform team's addresses.
    pub to: Vec<String>,
    /// The message's subject and body, with `{kind}`, `{subject}`, `{text}` and `{details}`
    /// replaced (defaults: `[Terrarium] {subject}` and `{text}` then the details).
    pub subject_template: String,
    pub body_template: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Fills a template's placeholders.
fn fill(template: &str, notification: &Notification) -> String {
    template
        .replace("{kind}", notification.kind)
        .replace("{subject}", &notification.subject)
        .replace("{text}", &notification.text)
        .replace("{details}", &notification.details.to_string())
}

/// An e-mail channel, ready to send.
struct Mail {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
    subject_template: String,
    body_template: String,
}

pub struct Notifier {
    http: reqwest::Client,
    webhooks: Vec<Webhook>,
    mail: Option<Mail>,
    store: Arc<dyn NotificationStore>,
    retry: RetryPolicy,
}

fn build_mail(settings: SmtpSettings) -> Result<Mail, String> {
    use lettre::transport::smtp::authentication::Credentials;
    let parse = |address: &str, key: &str| {
        address
            .parse::<lettre::message::Mailbox>()
            .map_err(|error| format!("notify.smtp.{key}: {address:?} is not an e-mail address ({error})"))
    };
    let from = parse(&settings.from, "from")?;
    let to = settings.to.iter().map(|address| parse(address, "to")).collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err("notify.smtp.to: list at least one address to tell".to_owned());
    }
    if settings.security == SmtpSecurity::None && settings.credentials.is_some() {
        return Err(
            "notify.smtp: a username with security = \"none\" would send the password in clear text; use starttls or tls"
                .to_owned(),
        );
    }
    type Transport = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;
    let builder = match settings.security {
        SmtpSecurity::None => Transport::builder_dangerous(&settings.host),
        SmtpSecurity::StartTls => Transport::starttls_relay(&settings.host)
            .map_err(|error| format!("notify.smtp.host {:?}: {error}", settings.host))?,
        SmtpSecurity::Tls => Transport::relay(&settings.host)
            .map_err(|error| format!("notify.smtp.host {:?}: {error}", settings.host))?,
    };
    let mut builder = builder.port(settings.port).timeout(Some(Duration::from_secs(10)));
    if let Some((user, password)) = settings.credentials {
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(Mail {
        transport: builder.build(),
        from,
        to,
        subject_template: settings.subject_template,
        body_template: settings.body_template,
    })
}

impl Notifier {
    /// Fails when the SMTP settings are not usable (bad addresses or host).
    pub fn new(
        webhooks: Vec<Webhook>,
        smtp: Option<SmtpSettings>,
        store: Arc<dyn NotificationStore>,
    ) -> Result<Notifier, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let mail = smtp.map(build_mail).transpose()?;
        Ok(Notifier { http, webhooks, mail, store, retry: RetryPolicy::default() })
    }

    /// Retries deliveries under `retry` instead of the default policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Notifier {
        self.retry = retry;
        self
    }

    /// Sends the notification to every webhook unless `key` was notified before. Returns at once;
    /// delivery and its retries run in the background.
    pub async fn notify_once(self: &Arc<Self>, key: &str, notification: Notification) {
        self.notify_once_to(key, notification, &[]).await;
    }

    /// [`Notifier::notify_once`], with the e-mail going to `recipients` (an app's owner) instead
    /// of the platform team's addresses when there are any; the webhooks get it either way.
    /// A recipient that is not an address is left out, saying so in the log.
    /// Answers whether it was sent (`false`: sent before, or not recordable).
    pub async fn notify_once_to(
        self: &Arc<Self>,
        key: &str,
        notification: Notification,
        recipients: &[String],
    ) -> bool {
        match self.store.first_time(key, &now()).await {
            Ok(true) => {}
            Ok(false) => return false,
            Err(error) => {
                tracing::error!(%error, key, "could not record a notification; not sending it");
                return false;
            }
        }
        tracing::info!(kind = notification.kind, key, "{}", notification.subject);
        for webhook in &self.webhooks {
            let notifier = Arc::clone(self);
            let webhook = webhook.clone();
            let notification = notification.clone();
            let key = key.to_owned();
            tokio::spawn(async move { notifier.deliver(&webhook, &key, &notification).await });
        }
        if self.mail.is_some() {
            let mut to = Vec::new();
            for recipient in recipients {
                match recipient.parse::<lettre::message::Mailbox>() {
                    Ok(mailbox) => to.push(mailbox),
                    Err(error) => tracing::warn!(%error, key, "a recipient is not an e-mail address; left out"),
                }
            }
            let notifier = Arc::clone(self);
            let key = key.to_owned();
            tokio::spawn(async move { notifier.deliver_mail(&key, &notification, to).await });
        }
        true
    }

    /// Mails `notification` to `to`, or to the platform team's addresses when `to` is empty.
    async fn deliver_mail(&self, key: &str, notification: &Notification, to: Vec<lettre::message::Mailbox>) {
        let Some(mail) = &self.mail else { return };
        let to = if to.is_empty() { mail.to.clone() } else { to };
        let mut builder = lettre::Message::builder()
            .from(mail.from.clone())
            .subject(fill(&mail.subject_template, notification))
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        for to in &to {
            builder = builder.to(to.clone());
        }
        let body = fill(&mail.body_template, notification);
        let (status, attempts, error) = match builder.body(body) {
            Err(error) => ("failed", 0, Some(format!("the message could not be built: {error}"))),
            Ok(message) => {
                let (attempts, last_error) = with_retries(self.retry, || {
                    let message = message.clone();
                    async move {
                        lettre::AsyncTransport::send(&mail.transport, message).await.map(drop).map_err(|error| {
                            // A permanent refusal (5xx) will not change; a transient one (4xx),
                            // a timeout or a lost connection may.
                            match error.is_permanent() {
                                true => AttemptFailed::for_good(error.to_string()),
                                false => AttemptFailed::for_now(error.to_string()),
                            }
                        })
                    }
                })
                .await;
                (if last_error.is_none() { "sent" } else { "failed" }, attempts, last_error)
            }
        };
        if let Some(error) = &error {
            tracing::warn!(kind = notification.kind, key, attempts, %error, "an e-mail notification failed");
        }
        let row = NotificationRow {
            id: 0,
            time: now(),
            channel: "email".to_owned(),
            target: to.iter().map(|to| to.email.to_string()).collect::<Vec<_>>().join(", "),
            key: key.to_owned(),
            subject: notification.subject.clone(),
            status: status.to_owned(),
            attempts,
            error,
        };
        if let Err(error) = self.store.record_notification(row).await {
            tracing::error!(%error, "a notification could not be recorded");
        }
    }

    /// The most recent deliveries, newest first.
    pub async fn recent(&self, limit: u32) -> Result<Vec<NotificationRow>, StorageError> {
        self.store.list_notifications(limit).await
    }

    async fn deliver(&self, webhook: &Webhook, key: &str, notification: &Notification) {
        let body = match webhook.format {
            WebhookFormat::Json => serde_json::json!({
                "kind": notification.kind,
                "subject": notification.subject,
                "text": notification.text,
                "details": notification.details,
            }),
            WebhookFormat::Slack => {
                serde_json::json!({ "text": format!("*{}*\n{}", notification.subject, notification.text) })
            }
        };
        let (attempts, last_error) = with_retries(self.retry, || async {
            match self.http.post(&webhook.url).json(&body).send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(AttemptFailed::from_status(response.status(), response.headers())),
                // Only the cause: the webhook URL may carry a token.
                Err(error) => Err(AttemptFailed::for_now(match error.is_timeout() {
                    true => "timed out",
                    false => "could not connect",
                })),
            }
        })
        .await;
        let status = if last_error.is_none() { "sent" } else { "failed" };
        if let Some(error) = &last_error {
            tracing::warn!(kind = notification.kind, key, attempts, %error, "a webhook notification failed");
        }
        let row = NotificationRow {
            id: 0,
            time: now(),
            channel: "webhook".to_owned(),
            target: redact_url(&webhook.url),
            key: key.to_owned(),
            subject: notification.subject.clone(),
            status: status.to_owned(),
            attempts,
            error: last_error,
        };
        if let Err(error) = self.store.record_notification(row).await {
            tracing::error!(%error, "a notification could not be recorded");
        }
    }
}

/// The webhook as the record shows it: scheme, host and path without the query, which often
/// holds a token (Slack-style URLs keep theirs in the path, so only the first segment is kept).
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let first = parsed.path_segments().and_then(|mut segments| segments.next()).unwrap_or_default();
            let port = parsed.port().map(|port| format!(":{port}")).unwrap_or_default();
            format!("{}://{}{port}/{first}/…", parsed.scheme(), parsed.host_str().unwrap_or_default())
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn recorded_targets_hide_tokens_in_paths_and_queries() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:9000/hook?token=abc"), "http://127.0.0.1:9000/hook/…");
    }
}
