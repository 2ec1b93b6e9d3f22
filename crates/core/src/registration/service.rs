//! Dynamic client registration: the services.

use crate::application::ApplicationChanges;
use crate::application::{self, Application, NewApplication, Ownership, ValidationErrors};
use crate::oauth::{ErrorCode, OAuthError};
use crate::oauth_flows::FlowError;
use crate::scopes::Scopes;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};

use super::*;
use crate::context::Context;

fn metadata_error(description: impl Into<String>) -> FlowError {
    FlowError::OAuth(OAuthError::with(
        ErrorCode::InvalidClientMetadata,
        description,
    ))
}

struct Checked {
    name: String,
    redirect_uri: String,
    scopes: Scopes,
    confidential: bool,
    grant_types: Vec<String>,
}

/// Unused dynamic clients deleted per unit of work by the sweep.
const SWEEP_BATCH: i64 = 500;

impl Services {
    fn check_metadata(&self, m: &ClientMetadata) -> Result<Checked, FlowError> {
        let mode = self.config().dynamic_registration;
        let name = m.client_name.as_deref().map(str::trim).unwrap_or("");
        if name.is_empty() {
            return Err(metadata_error("client_name is missing"));
        }
        if name.chars().count() >= MAX_CLIENT_NAME_CHARS {
            return Err(metadata_error("client_name is too long"));
        }
        if m.redirect_uris.is_empty() {
            return Err(FlowError::OAuth(OAuthError::with(
                ErrorCode::InvalidRedirectUriMetadata,
                "redirect_uris is missing",
            )));
        }
        if m.redirect_uris
            .iter()
            .any(|u| u.split_whitespace().count() != 1)
        {
            return Err(FlowError::OAuth(OAuthError::with(
                ErrorCode::InvalidRedirectUriMetadata,
                "redirect_uris must not contain whitespace",
            )));
        }
        let redirect_uri = m.redirect_uris.join("\n");
        let mut errors = ValidationErrors::default();
        application::validate_redirect_uri(Some(&redirect_uri), &mut errors);
        if !errors.is_empty() {
            let text = errors
                .fields()
                .iter()
                .flat_map(|(_, msgs)| msgs.iter().map(|m| format!("Redirect URI {m}")))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(FlowError::OAuth(OAuthError::with(
                ErrorCode::InvalidRedirectUriMetadata,
                text,
            )));
        }
        if let Some(grants) = &m.grant_types {
            if let Some(bad) = grants
                .iter()
                .find(|g| !SUPPORTED_GRANTS.contains(&g.as_str()))
            {
                return Err(metadata_error(format!(
                    "grant_types: {bad} is not supported"
                )));
            }
        }
        let (name, scopes, confidential) = match mode {
            RegistrationMode::GitLabMcp => (
                format!("{MCP_NAME_PREFIX}{name}"),
                Scopes::from_stored("mcp"),
                false,
            ),
            _ => {
                let confidential = match m.token_endpoint_auth_method.as_deref() {
                    None | Some("client_secret_basic" | "client_secret_post") => true,
                    Some("none") => false,
                    Some(other) => {
                        return Err(metadata_error(format!(
                            "token_endpoint_auth_method {other} is not supported"
                        )))
                    }
                };
                // No scope: `openid`, so that OpenID Connect clients that
                // omit it (pyoidc) can sign in; never the API by default.
                let raw = m
                    .scope
                    .as_deref()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or("openid");
                let scopes = Scopes::checked(raw, &self.config().scopes)
                    .map_err(|e| metadata_error(format!("scope: {e}")))?;
                let allowed = &self.config().registration_scopes;
                if let Some(bad) = scopes.as_slice().iter().find(|s| !allowed.allows(s)) {
                    return Err(metadata_error(format!(
                        "scope {bad:?} may not be registered (allowed: {})",
                        allowed.names().join(" ")
                    )));
                }
                (name.to_owned(), scopes, confidential)
            }
        };
        if !confidential
            && m.grant_types
                .as_ref()
                .is_some_and(|g| g.iter().any(|x| x == "client_credentials"))
        {
            return Err(metadata_error(
                "public clients cannot use client_credentials",
            ));
        }
        let grant_types = m
            .grant_types
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| vec!["authorization_code".to_owned(), "refresh_token".to_owned()]);
        Ok(Checked {
            name,
            redirect_uri,
            scopes,
            confidential,
            grant_types,
        })
    }

    /// Register a client (RFC 7591), rate-limited per client address
    /// (`ctx`'s).
    pub async fn register_client(
        &self,
        ctx: &Context,
        m: &ClientMetadata,
    ) -> Result<Registered, FlowError> {
        let now = self.now_ms();
        let address = crate::session::service::throttled_address(ctx.address.as_deref());
        let key = format!("register:{address}");
        self.registration_throttle(&key, now, "registrations from this address")
            .await?;
        let checked = self.check_metadata(m)?;
        let secret_value = self.new_application_secret()?;
        let registration_token = secret::random_hex(32)?;
        let new = NewApplication {
            application_id: secret::random_hex(32)?,
            secret_digest: secret::digest(secret_value.expose()),
            secret_hint: crate::application::secret_hint(secret_value.expose()),
            name: checked.name,
            redirect_uri: checked.redirect_uri,
            scopes: checked.scopes,
            confidential: checked.confidential,
            owner_id: None,
            group_id: None,
            created_at: now,
            dynamic: true,
            registration_token_digest: Some(secret::digest(&registration_token)),
            grant_types: Some(checked.grant_types.clone()),
        };
        let ctx = ctx.clone();
        let app = self
            .unit(move |tx| {
                Box::pin(async move {
                    tx.record_login_failure(&key, now, REGISTRATION_WINDOW_MS)
                        .await?;
                    let app = tx.insert_application(new).await?;
                    let event = crate::application::application_event(
                        &ctx,
                        now,
                        "oauth_client_registered",
                        &app,
                        "OAuth client registered (RFC 7591)",
                    )
                    .detail("redirect_uri", app.redirect_uri.as_str())
                    .detail("scopes", app.scopes.joined());
                    tx.record_audit(event).await?;
                    Ok(app)
                })
            })
            .await?;
        Ok(Registered {
            client_secret: app.confidential.then_some(secret_value),
            application: app,
            registration_access_token: Some(Plaintext::new(registration_token)),
            grant_types: checked.grant_types,
        })
    }

    /// Refuse when `key` has seen [`MAX_REGISTRATIONS_PER_HOUR`] within the
    /// hour; `what` names them in the refusal.
    async fn registration_throttle(
        &self,
        key: &str,
        now: i64,
        what: &str,
    ) -> Result<(), FlowError> {
        let seen = self
            .store
            .login_failures(key, now, REGISTRATION_WINDOW_MS)
            .await?;
        if seen >= MAX_REGISTRATIONS_PER_HOUR {
            return Err(FlowError::OAuth(OAuthError::with(
                ErrorCode::TemporarilyUnavailable,
                format!("Too many {what}; try again later."),
            )));
        }
        Ok(())
    }

    /// RFC 7592: the client `client_id`, if `token` is its registration
    /// access token. Every failure looks the same (`invalid_token`).
    pub async fn registered_client(
        &self,
        client_id: &str,
        token: &str,
    ) -> Result<Application, FlowError> {
        let invalid = || FlowError::OAuth(OAuthError::new(ErrorCode::InvalidToken));
        let Some((app, digest)) = self.store.find_registration(client_id).await? else {
            return Err(invalid());
        };
        match digest {
            Some(d) if secret::verify(token, &d) => Ok(app),
            _ => Err(invalid()),
        }
    }

    /// RFC 7592 update: name and redirect URIs (and scope, in the standard mode).
    pub async fn update_registration(
        &self,
        ctx: &Context,
        client_id: &str,
        token: &str,
        m: &ClientMetadata,
    ) -> Result<Registered, FlowError> {
        let app = self.registered_client(client_id, token).await?;
        // Each update is audited: a client may not flood the trail.
        let (key, now) = (format!("register-update:{}", app.id), self.now_ms());
        self.registration_throttle(&key, now, "updates of this registration")
            .await?;
        self.store
            .record_login_failure(&key, now, REGISTRATION_WINDOW_MS)
            .await?;
        let checked = self.check_metadata(m)?;
        if checked.confidential != app.confidential {
            return Err(metadata_error("token_endpoint_auth_method cannot change"));
        }
        let changes = ApplicationChanges {
            name: Some(checked.name),
            redirect_uri: Some(checked.redirect_uri),
            scopes: Some(checked.scopes.joined()),
            grant_types: Some(checked.grant_types.clone()),
            ..Default::default()
        };
        let app = self
            .update_application(ctx, app.id, &changes)
            .await
            .map_err(FlowError::Internal)?;
        Ok(Registered {
            application: app,
            client_secret: None,
            registration_access_token: None,
            grant_types: checked.grant_types,
        })
    }

    /// RFC 7592 delete: the client, its grants and its tokens.
    pub async fn delete_registration(
        &self,
        ctx: &Context,
        client_id: &str,
        token: &str,
    ) -> Result<(), FlowError> {
        let app = self.registered_client(client_id, token).await?;
        match self.delete_application(ctx, app.id, Ownership::Any).await {
            Ok(()) | Err(ServiceError::NotFound) => Ok(()),
            Err(e) => Err(FlowError::Internal(e)),
        }
    }

    /// Delete dynamic clients nobody used within the configured time.
    pub async fn delete_unused_dynamic_clients(&self) -> Result<u64, ServiceError> {
        let now = self.now_ms();
        let cutoff = now - self.config().dynamic_client_ttl_days * 24 * 3600 * 1000;
        // In batches, so that no unit holds the writer for long.
        let mut total = 0;
        loop {
            let deleted = self
                .changing_auth(self.unit(move |tx| {
                    Box::pin(async move {
                        let deleted = tx
                            .delete_unused_dynamic_applications(cutoff, SWEEP_BATCH)
                            .await?;
                        let ctx = Context::system();
                        for app in &deleted {
                            let event = crate::application::application_event(
                                &ctx,
                                now,
                                "oauth_application_deleted",
                                app,
                                "Unused dynamically registered client removed",
                            );
                            tx.record_audit(event).await?;
                        }
                        Ok(deleted.len() as u64)
                    })
                }))
                .await?;
            total += deleted;
            if deleted < SWEEP_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
