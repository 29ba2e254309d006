//! `[notify]` in `terrarium.toml`: the operator's webhooks and mail server.

use serde::Deserialize;

use crate::{SmtpSecurity, SmtpSettings, Webhook, WebhookFormat};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub webhooks: Vec<WebhookSection>,
    pub smtp: Option<SmtpSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls`, or `none` (a relay on the same host or network only).
    #[serde(default = "default_smtp_security")]
    pub security: String,
    pub username: Option<String>,
    /// The environment variable with the password (never the password in this file).
    #[serde(default = "default_smtp_password_env")]
    pub password_env: String,
    /// `Terrarium <terrarium@example.com>`.
    pub from: String,
    /// Who is told.
    pub to: Vec<String>,
    /// Templates with `{kind}`, `{subject}`, `{text}` and `{details}`.
    #[serde(default = "default_subject_template")]
    pub subject_template: String,
    #[serde(default = "default_body_template")]
    pub body_template: String,
}

fn default_subject_template() -> String {
    "[Terrarium] {subject}".to_owned()
}

fn default_body_template() -> String {
    "{text}\n\nDetails: {details}\n".to_owned()
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_security() -> String {
    "starttls".to_owned()
}

fn default_smtp_password_env() -> String {
    "TERRARIUM_SMTP_PASSWORD".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub url: String,
    /// `json` (kind, subject, text, details) or `slack` (text only).
    #[serde(default = "default_webhook_format")]
    pub format: String,
}

fn default_webhook_format() -> String {
    "json".to_owned()
}

fn webhook_format(format: &str) -> Result<WebhookFormat, String> {
    match format {
        "json" => Ok(WebhookFormat::Json),
        "slack" => Ok(WebhookFormat::Slack),
        other => Err(format!("format {other:?} is not supported; use \"json\" or \"slack\"")),
    }
}

fn smtp_security(security: &str) -> Result<SmtpSecurity, String> {
    match security {
        "starttls" => Ok(SmtpSecurity::StartTls),
        "tls" => Ok(SmtpSecurity::Tls),
        "none" => Ok(SmtpSecurity::None),
        other => Err(format!("{other:?} is not supported; use starttls, tls or none")),
    }
}

impl NotifyConfig {
    /// Every problem of the section, each naming its key. Reads nothing.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (index, webhook) in self.webhooks.iter().enumerate() {
            if let Err(error) = webhook_format(&webhook.format) {
                problems.push(format!("notify.webhooks[{index}]: {error}"));
            }
            if !(webhook.url.starts_with("https://") || webhook.url.starts_with("http://")) {
                problems.push(format!("notify.webhooks[{index}].url: {:?} is not an http(s) URL", webhook.url));
            }
        }
        if let Some(smtp) = &self.smtp {
            if let Err(error) = smtp_security(&smtp.security) {
                problems.push(format!("notify.smtp.security: {error}"));
            }
            if smtp.host.trim().is_empty() {
                problems.push("notify.smtp.host is empty; name the mail server".to_owned());
            }
            if smtp.to.is_empty() {
                problems.push("notify.smtp.to is empty; list who is told".to_owned());
            }
        }
        problems
    }

    /// The webhooks and the mail server, with the SMTP password read from its variable.
    pub fn build(&self) -> Result<(Vec<Webhook>, Option<SmtpSettings>), String> {
        let webhooks = self
            .webhooks
            .iter()
            .map(|webhook| {
                let format = webhook_format(&webhook.format).map_err(|error| format!("notify.webhooks: {error}"))?;
                Ok(Webhook { url: webhook.url.clone(), format })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let Some(section) = &self.smtp else {
            return Ok((webhooks, None));
        };
        let security = smtp_security(&section.security).map_err(|error| format!("notify.smtp.security: {error}"))?;
        let credentials = match &section.username {
            None => None,
            Some(user) => {
                let password = std::env::var(&section.password_env).map_err(|_| {
                    format!("notify.smtp.username is set, but the password variable {} is not", section.password_env)
                })?;
                Some((user.clone(), password))
            }
        };
        let smtp = SmtpSettings {
            host: section.host.clone(),
            port: section.port,
            security,
            credentials,
            from: section.from.clone(),
            to: section.to.clone(),
            subject_template: section.subject_template.clone(),
            body_template: section.body_template.clone(),
        };
        Ok((webhooks, Some(smtp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let config = NotifyConfig {
            webhooks: vec![WebhookSection { url: "ftp://hooks".into(), format: "teams".into() }],
            smtp: Some(SmtpSection {
                host: String::new(),
                port: 25,
                security: "ssl".into(),
                username: None,
                password_env: "X".into(),
                from: "t@example.com".into(),
                to: vec![],
                subject_template: default_subject_template(),
                body_template: default_body_template(),
            }),
        };
        let problems = config.validate();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with("notify.webhooks[0]: format \"teams\""), "{problems:#?}");
        assert!(problems.iter().any(|problem| problem.starts_with("notify.smtp.security: \"ssl\"")));
        assert!(NotifyConfig::default().validate().is_empty());
    }
}
