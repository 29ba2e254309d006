//! The control plane's HTTP routes (`/api/v1/...`), and the one place where control errors
//! become status codes. Bodies are the `api-types` shapes the CLI shares.

use std::sync::Arc;

use ::accounts::AccountError;
use ::secrets::admin::SecretsAdminError;
use api_types::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use control::{Action, ControlError, ControlPlane, Principal};

mod routes;

use routes::{accounts, apps, auth, data, platform, policy, secrets, usage};

/// What the routes need.
pub struct ApiState {
    pub control: Arc<ControlPlane>,
    /// Users, roles, sign-in and the platform's tokens.
    pub accounts: Arc<::accounts::Accounts>,
    /// Apps' secrets and the key-encryption key.
    pub secrets: Arc<::secrets::admin::SecretsAdmin>,
    /// Apps' key-value namespaces, for export, import and usage.
    pub kv: Arc<capability_kv::Kv>,
    /// Apps' SQL databases, for export, import and usage.
    pub sql: Arc<dyn capability_sql::SqlService>,
    /// The response cache and the apps' Cache API store (`None`: caching is off).
    pub cache: Option<Arc<cache::ResponseCache>>,
    /// This server's base URL; a sign-in may only return to it or to an app under `apps_domain`.
    pub public_url: String,
    pub apps_domain: String,
    pub secure_cookies: bool,
    /// Prices and budgets, for chargeback exports.
    pub budgets: Arc<metering::budgets::Budgets>,
    pub notifier: Arc<notify::Notifier>,
    /// The server's background tasks, to list and run now.
    pub tasks: Arc<background::Tasks>,
    pub clock: background::Clock,
}

/// The control API routes, to be mounted by the gateway as platform routes.
pub fn router(state: Arc<ApiState>, max_upload_bytes: usize) -> axum::Router {
    axum::Router::new()
        .route(
            "/api/v1/deploy",
            post(apps::deploy.layer(audited(Action::AppDeploy))).layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/api/v1/apps", get(apps::list_apps.layer(audited(Action::AppList))))
        .route(
            "/api/v1/apps/{namespace}/{name}",
            get(apps::get_app.layer(audited(Action::AppGet)))
                .delete(apps::delete_app.layer(audited(Action::AppDelete))),
        )
        .route("/api/v1/apps/{namespace}/{name}/rollback", post(apps::rollback.layer(audited(Action::AppRollback))))
        .route("/api/v1/apps/{namespace}/{name}/extend", post(apps::extend.layer(audited(Action::AppExtend))))
        .route("/api/v1/apps/{namespace}/{name}/archive", post(apps::archive.layer(audited(Action::AppArchive))))
        .route("/api/v1/apps/{namespace}/{name}/restore", post(apps::restore.layer(audited(Action::AppRestore))))
        .route("/api/v1/apps/{namespace}/{name}/logs", get(apps::logs.layer(audited(Action::AppLogs))))
        .route("/api/v1/apps/{namespace}/{name}/data", get(data::usage.layer(audited(Action::DataUsage))))
        .route(
            "/api/v1/apps/{namespace}/{name}/data/kv",
            get(data::export_kv.layer(audited(Action::DataExport)))
                .put(data::import_kv.layer(audited(Action::DataImport)))
                .layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route(
            "/api/v1/apps/{namespace}/{name}/cache/purge",
            post(data::purge_cache.layer(audited(Action::CachePurge))),
        )
        .route(
            "/api/v1/apps/{namespace}/{name}/data/sql/migrate",
            post(data::migrate_sql.layer(audited(Action::DataMigrate))),
        )
        .route(
            "/api/v1/apps/{namespace}/{name}/data/sql",
            get(data::export_sql.layer(audited(Action::DataExport)))
                .put(data::import_sql.layer(audited(Action::DataImport)))
                .layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route(
            "/api/v1/namespaces",
            get(apps::list_namespaces.layer(audited(Action::NamespaceList)))
                .post(apps::create_namespace.layer(audited(Action::NamespaceCreate))),
        )
        .route("/api/v1/audit", get(apps::list_audit.layer(audited(Action::AuditList))))
        .route("/api/v1/whoami", get(accounts::whoami.layer(audited(Action::AuthWhoami))))
        .route(
            "/api/v1/users",
            get(accounts::list_users.layer(audited(Action::UserList)))
                .post(accounts::create_user.layer(audited(Action::UserCreate))),
        )
        .route("/api/v1/users/{name}", axum::routing::patch(accounts::update_user.layer(audited(Action::UserUpdate))))
        .route(
            "/api/v1/roles",
            get(accounts::list_roles.layer(audited(Action::RoleList)))
                .post(accounts::grant_role.layer(audited(Action::RoleGrant)))
                .delete(accounts::revoke_role.layer(audited(Action::RoleRevoke))),
        )
        .route("/api/v1/keys/rotate", post(accounts::rotate_keys.layer(audited(Action::KeysRotate))))
        .route(
            "/api/v1/apps/{namespace}/{name}/secrets",
            get(secrets::list_app_secrets.layer(audited(Action::SecretList))),
        )
        .route(
            "/api/v1/apps/{namespace}/{name}/secrets/{secret}",
            axum::routing::put(secrets::set_secret.layer(audited(Action::SecretSet)))
                .delete(secrets::remove_secret.layer(audited(Action::SecretRemove))),
        )
        .route(
            "/api/v1/apps/{namespace}/{name}/secrets/{secret}/versions",
            get(secrets::secret_versions.layer(audited(Action::SecretVersions))),
        )
        .route("/api/v1/secrets", get(secrets::list_secrets.layer(audited(Action::SecretList))))
        .route("/api/v1/egress", get(secrets::list_egress.layer(audited(Action::EgressList))))
        .route("/api/v1/usage", get(usage::usage.layer(audited(Action::UsageRead))))
        .route("/api/v1/chargeback", get(usage::chargeback.layer(audited(Action::ChargebackRead))))
        .route("/api/v1/notifications", get(usage::notifications.layer(audited(Action::NotificationList))))
        .route("/api/v1/policy", get(policy::policy_status.layer(audited(Action::PolicyStatus))))
        .route("/api/v1/policy/reload", post(policy::reload_policies.layer(audited(Action::PolicyReload))))
        .route("/api/v1/policy/violations", get(policy::list_violations.layer(audited(Action::PolicyViolations))))
        .route(
            "/api/v1/policy/exceptions",
            get(policy::list_exceptions.layer(audited(Action::PolicyExceptionList)))
                .post(policy::add_exception.layer(audited(Action::PolicyExceptionAdd))),
        )
        .route(
            "/api/v1/policy/exceptions/{id}",
            axum::routing::delete(policy::remove_exception.layer(audited(Action::PolicyExceptionRemove))),
        )
        .route("/api/v1/approvals", get(policy::list_approvals.layer(audited(Action::ApprovalList))))
        .route("/api/v1/approvals/{id}", get(policy::get_approval.layer(audited(Action::ApprovalShow))))
        .route("/api/v1/approvals/{id}/{decision}", post(policy::vote.layer(audited(Action::ApprovalVote))))
        .route("/api/v1/tasks", get(platform::list_tasks.layer(audited(Action::TasksList))))
        .route("/api/v1/tasks/{name}/run", post(platform::run_task.layer(audited(Action::TasksRun))))
        .route(
            "/api/v1/clock",
            get(platform::get_clock.layer(audited(Action::ClockGet)))
                .post(platform::advance_clock.layer(audited(Action::ClockAdvance))),
        )
        .route("/metrics", get(usage::metrics.layer(audited(Action::MetricsRead))))
        .route("/api/v1/secrets/rotate-kek", post(secrets::rotate_kek.layer(audited(Action::SecretsRotateKek))))
        .route("/auth/login", get(auth::login_page).post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/oidc/start", get(auth::oidc_start))
        .route("/auth/oidc/callback", get(auth::oidc_callback))
        .route("/auth/device", post(auth::device_start))
        .route("/auth/device/token", post(auth::device_token))
        .route("/oauth/token", post(auth::oauth_token))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route("/.well-known/openid-configuration", get(auth::discovery))
        .fallback(not_found)
        .with_state(state)
}

/// An error response: a status and an [`ApiError`] body. The one mapping from every service's
/// errors to status codes, which the web console renders as pages.
pub struct ApiFailure(StatusCode, ApiError);

impl ApiFailure {
    pub fn status(&self) -> StatusCode {
        self.0
    }

    pub fn error(&self) -> &ApiError {
        &self.1
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"terrarium\""));
        }
        response
    }
}

pub fn failure(status: StatusCode, code: &str, message: impl Into<String>, details: Vec<String>) -> ApiFailure {
    ApiFailure(status, ApiError { code: code.to_owned(), message: message.into(), details })
}

impl From<ControlError> for ApiFailure {
    fn from(error: ControlError) -> ApiFailure {
        let message = error.to_string();
        match error {
            ControlError::Bundle(_) => failure(StatusCode::BAD_REQUEST, "invalid_bundle", message, vec![]),
            ControlError::InvalidManifest(details) => failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_manifest",
                format!("{message}; fix them and deploy again"),
                details,
            ),
            ControlError::Unplannable(details) => {
                failure(StatusCode::UNPROCESSABLE_ENTITY, "invalid_app", message, details)
            }
            ControlError::SecretsFound { details, .. } => {
                failure(StatusCode::UNPROCESSABLE_ENTITY, "secrets_found", message, details)
            }
            ControlError::PolicyDenied { details } => failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_denied",
                "the platform's policies refuse this app; change what each names and deploy again (or ask an operator for an exception)",
                details,
            ),
            ControlError::PolicyFailed(_) => {
                failure(StatusCode::SERVICE_UNAVAILABLE, "policy_unavailable", message, vec![])
            }
            ControlError::PolicyInvalid(_) => {
                failure(StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid", message, vec![])
            }
            ControlError::Load(_) => failure(StatusCode::UNPROCESSABLE_ENTITY, "load_failed", message, vec![]),
            ControlError::UnknownNamespace { .. }
            | ControlError::UnknownApp { .. }
            | ControlError::UnknownRevision { .. } => failure(StatusCode::NOT_FOUND, "not_found", message, vec![]),
            ControlError::NothingToRollBack { .. } => {
                failure(StatusCode::CONFLICT, "nothing_to_roll_back", message, vec![])
            }
            ControlError::NamespaceExists { .. } | ControlError::Conflict(_) => {
                failure(StatusCode::CONFLICT, "conflict", message, vec![])
            }
            ControlError::InvalidName(_) => failure(StatusCode::BAD_REQUEST, "invalid_name", message, vec![]),
            ControlError::InvalidRequest(_) => failure(StatusCode::BAD_REQUEST, "invalid_request", message, vec![]),
            ControlError::Forbidden(_) => failure(StatusCode::FORBIDDEN, "forbidden", message, vec![]),
            ControlError::NotFound(_) => failure(StatusCode::NOT_FOUND, "not_found", message, vec![]),
            ControlError::Internal(detail) => internal(&detail),
        }
    }
}

impl From<AccountError> for ApiFailure {
    fn from(error: AccountError) -> ApiFailure {
        let message = error.to_string();
        match error {
            AccountError::Invalid(_) => failure(StatusCode::BAD_REQUEST, "invalid_name", message, vec![]),
            AccountError::Conflict(_) => failure(StatusCode::CONFLICT, "conflict", message, vec![]),
            AccountError::UnknownUser { .. } | AccountError::NotFound(_) => {
                failure(StatusCode::NOT_FOUND, "not_found", message, vec![])
            }
            AccountError::TooManyAttempts { .. } => {
                failure(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message, vec![])
            }
            AccountError::Unauthenticated(_) => failure(StatusCode::UNAUTHORIZED, "unauthenticated", message, vec![]),
            AccountError::Forbidden(_) => failure(StatusCode::FORBIDDEN, "forbidden", message, vec![]),
            AccountError::Internal(detail) => internal(&detail),
        }
    }
}

impl From<SecretsAdminError> for ApiFailure {
    fn from(error: SecretsAdminError) -> ApiFailure {
        let message = error.to_string();
        match error {
            SecretsAdminError::Invalid(_) => failure(StatusCode::BAD_REQUEST, "invalid_name", message, vec![]),
            SecretsAdminError::NotFound(_) => failure(StatusCode::NOT_FOUND, "not_found", message, vec![]),
            SecretsAdminError::Forbidden(_) => failure(StatusCode::FORBIDDEN, "forbidden", message, vec![]),
            SecretsAdminError::Internal(detail) => internal(&detail),
        }
    }
}

/// A 500 whose details go to the server log, never to the caller.
pub fn internal(detail: &str) -> ApiFailure {
    tracing::error!(error = %detail, "internal error");
    failure(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Terrarium failed; the server log has the details", vec![])
}

pub type ApiResult<T> = Result<T, ApiFailure>;

/// The audit action of a route: what a refused, unauthenticated call to it is recorded as.
#[derive(Clone, Copy)]
struct RouteAction(Action);

/// Marks a handler with its audit action, for [`Caller`].
fn audited(action: Action) -> axum::Extension<RouteAction> {
    axum::Extension(RouteAction(action))
}

/// The signed-in caller of a control API route: every `/api/v1` route but sign-in takes one, so
/// an anonymous or invalid token is refused (401, audited under the route's action) before the
/// handler runs. What the caller may do is the services' to decide.
struct Caller(Principal);

impl axum::extract::FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<ApiState>,
    ) -> Result<Caller, ApiFailure> {
        let action = parts.extensions.get::<RouteAction>().map_or(Action::ApiCall, |action| action.0);
        authenticate(state, &parts.headers, action).await.map(Caller)
    }
}

/// Every `/api/v1` route requires a platform access token (`terrarium login`).
async fn authenticate(state: &ApiState, headers: &HeaderMap, action: Action) -> ApiResult<Principal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let Some(token) = presented else {
        state.accounts.audit_denial("anonymous", action, "no token".to_owned()).await;
        return Err(failure(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first: run `terrarium login` (or pass a token with --token / TERRARIUM_TOKEN)",
            vec![],
        ));
    };
    match state.accounts.authenticate(token).await {
        Ok(principal) => Ok(principal),
        Err(error) => {
            state.accounts.audit_denial("anonymous", action, error.to_string()).await;
            Err(failure(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!("{error}; sign in again with `terrarium login`"),
                vec![],
            ))
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, expected: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|error| {
        failure(StatusCode::BAD_REQUEST, "invalid_request", format!("expected {expected}: {error}"), vec![])
    })
}

async fn not_found() -> ApiFailure {
    failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "nothing here: apps are served at /apps/<namespace>/<app>/ and the control API under /api/v1",
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use deployment::AppKey;

    use super::*;

    /// Every control-plane error, with the status and code a caller gets for it.
    #[test]
    fn every_error_has_its_status_and_code() {
        let app = AppKey::new("it", "x");
        let bundle = bundle::BundleError::Duplicate { path: "a.js".into() };
        let table: Vec<(ControlError, StatusCode, &str)> = vec![
            (ControlError::Bundle(bundle), StatusCode::BAD_REQUEST, "invalid_bundle"),
            (
                ControlError::InvalidManifest(vec!["spec.owner: missing".into()]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_manifest",
            ),
            (ControlError::Unplannable(vec!["no entry".into()]), StatusCode::UNPROCESSABLE_ENTITY, "invalid_app"),
            (
                ControlError::SecretsFound { count: 1, details: vec![] },
                StatusCode::UNPROCESSABLE_ENTITY,
                "secrets_found",
            ),
            (
                ControlError::PolicyDenied { details: vec!["ttl: too long".into()] },
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_denied",
            ),
            (ControlError::PolicyFailed("engine".into()), StatusCode::SERVICE_UNAVAILABLE, "policy_unavailable"),
            (ControlError::PolicyInvalid("syntax".into()), StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid"),
            (ControlError::Load("no export".into()), StatusCode::UNPROCESSABLE_ENTITY, "load_failed"),
            (ControlError::UnknownNamespace { namespace: "it".into() }, StatusCode::NOT_FOUND, "not_found"),
            (ControlError::NamespaceExists { namespace: "it".into() }, StatusCode::CONFLICT, "conflict"),
            (ControlError::UnknownApp { app: app.clone() }, StatusCode::NOT_FOUND, "not_found"),
            (ControlError::UnknownRevision { app: app.clone(), revision: 9 }, StatusCode::NOT_FOUND, "not_found"),
            (ControlError::NothingToRollBack { app }, StatusCode::CONFLICT, "nothing_to_roll_back"),
            (ControlError::Conflict("busy".into()), StatusCode::CONFLICT, "conflict"),
            (ControlError::InvalidName("Bad".into()), StatusCode::BAD_REQUEST, "invalid_name"),
            (ControlError::NotFound("gone".into()), StatusCode::NOT_FOUND, "not_found"),
            (ControlError::Forbidden("no role".into()), StatusCode::FORBIDDEN, "forbidden"),
            (ControlError::Internal("disk full at /secret/path".into()), StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        ];
        let accounts: Vec<(AccountError, StatusCode, &str)> = vec![
            (AccountError::Invalid("Bad".into()), StatusCode::BAD_REQUEST, "invalid_name"),
            (AccountError::Conflict("exists".into()), StatusCode::CONFLICT, "conflict"),
            (AccountError::UnknownUser { name: "bea".into() }, StatusCode::NOT_FOUND, "not_found"),
            (AccountError::NotFound("gone".into()), StatusCode::NOT_FOUND, "not_found"),
            (AccountError::TooManyAttempts { retry_after_secs: 5 }, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            (AccountError::Unauthenticated("expired".into()), StatusCode::UNAUTHORIZED, "unauthenticated"),
            (AccountError::Forbidden("no role".into()), StatusCode::FORBIDDEN, "forbidden"),
            (AccountError::Internal("disk full at /secret/path".into()), StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        ];
        let secrets: Vec<(SecretsAdminError, StatusCode, &str)> = vec![
            (SecretsAdminError::Invalid("BAD NAME".into()), StatusCode::BAD_REQUEST, "invalid_name"),
            (SecretsAdminError::NotFound("no KEY".into()), StatusCode::NOT_FOUND, "not_found"),
            (SecretsAdminError::Forbidden("no role".into()), StatusCode::FORBIDDEN, "forbidden"),
            (
                SecretsAdminError::Internal("disk full at /secret/path".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        fn shown<E: std::fmt::Debug + Into<ApiFailure>>(
            (error, status, code): (E, StatusCode, &'static str),
        ) -> (String, ApiFailure, StatusCode, &'static str) {
            (format!("{error:?}"), error.into(), status, code)
        }
        let table =
            table.into_iter().map(shown).chain(accounts.into_iter().map(shown)).chain(secrets.into_iter().map(shown));
        let mut wrong = Vec::new();
        for (shown, ApiFailure(got_status, body), status, code) in table {
            if got_status != status || body.code != code {
                wrong.push(format!("{shown}: {got_status} {} (expected {status} {code})", body.code));
            }
            assert!(!body.message.contains("/secret/path"), "internal details stay in the log: {}", body.message);
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_401_says_how_to_authenticate() {
        let response = ApiFailure::from(AccountError::Unauthenticated("expired".into())).into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"terrarium\"");
        let response = ApiFailure::from(ControlError::Forbidden("no".into())).into_response();
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
