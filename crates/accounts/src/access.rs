//! The gateway's view of accounts: who a signed-in visitor is, the app-scoped token a function
//! call receives, refusals in the audit log, and the sign-in tickets of app hosts.

use audit::{Action, AuditEvent, Outcome};
use identity::ALL_NAMESPACES;

use crate::Accounts;
use crate::users::{ACCESS_TOKEN_LIFETIME, PLATFORM_AUDIENCE};

impl gateway::AccessControl for Accounts {
    fn signed_in(&self, token: &str) -> futures::future::BoxFuture<'_, Option<gateway::SignedIn>> {
        let token = token.to_owned();
        Box::pin(async move {
            let (principal, user) = self.resolve_token(&token).await.ok()?;
            let member_of = principal.roles.iter().map(|(namespace, _)| namespace.clone()).collect();
            Some(gateway::SignedIn {
                visitor: deployment::Visitor { subject: principal.subject, groups: principal.groups, member_of },
                email: user.email,
                name: user.display_name,
                roles: principal.roles,
            })
        })
    }

    fn app_token(&self, user: &gateway::SignedIn, app: &deployment::AppKey) -> Option<String> {
        // The caller's roles where the app lives (its namespace, or platform-wide).
        let roles = user
            .roles
            .iter()
            .filter(|(namespace, _)| namespace == &app.namespace || namespace == ALL_NAMESPACES)
            .map(|(_, role)| role.as_str().to_owned())
            .collect();
        match self.tokens.mint_app_token(&user.visitor.subject, &user.visitor.groups, &app.namespace, &app.name, roles)
        {
            Ok(token) => Some(token),
            Err(error) => {
                tracing::error!(%error, "minting an app token failed");
                None
            }
        }
    }

    fn record_denial(
        &self,
        user: Option<&gateway::SignedIn>,
        app: &deployment::AppKey,
        request_id: &str,
        reason: &'static str,
    ) -> futures::future::BoxFuture<'_, ()> {
        let principal = user.map_or_else(|| "anonymous".to_owned(), |user| user.visitor.subject.clone());
        let event = AuditEvent::new(principal, Action::AppAccess, Outcome::Denied)
            .app(app)
            .detail(format!("request {request_id}: {reason}"));
        Box::pin(async move {
            if let Err(error) = self.store.append_audit(event).await {
                tracing::error!(%error, "audit event could not be written");
            }
        })
    }

    fn redeem_ticket(&self, ticket: &str, host: &str) -> Option<String> {
        let subject = self.tokens.verify_ticket(ticket, host).ok()?;
        self.tokens.mint_access_token(&subject, &[], PLATFORM_AUDIENCE, ACCESS_TOKEN_LIFETIME).ok()
    }
}
