//! Applications: the services handlers and the CLI call.

use crate::application;
use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};
use futures::stream::BoxStream;

use super::*;
use crate::audit::{target, Entity, NewAuditEvent};
use crate::context::Context;

/// An event about `app`: under its owner (or the actor), the application
/// as its target. Its client_id is public; its secret is never recorded.
pub(crate) fn application_event(
    ctx: &Context,
    now: i64,
    event: &'static str,
    app: &Application,
    message: &str,
) -> NewAuditEvent {
    let entity = match app.group_id {
        Some(group_id) => Entity {
            kind: crate::audit::EntityType::Group,
            id: group_id,
            path: None,
        },
        None => Entity::owner_or_actor(app.owner_id, ctx),
    };
    NewAuditEvent::new(ctx, now, event, entity, message)
        .target(target::APPLICATION, Some(app.id), &app.name)
        .detail("application_id", app.application_id.as_str())
        .detail("application_name", app.name.as_str())
}

/// The event of a new application, with what it was registered with.
pub(crate) fn application_created_event(
    ctx: &Context,
    now: i64,
    app: &Application,
) -> NewAuditEvent {
    application_event(
        ctx,
        now,
        "oauth_application_created",
        app,
        "OAuth application added",
    )
    .detail("scopes", app.scopes.joined())
    .detail("redirect_uri", app.redirect_uri.as_str())
    .detail("confidential", app.confidential)
    .detail("trusted", app.trusted)
}

/// One event per attribute an update changed, with `from` and `to`.
fn application_changes(
    ctx: &Context,
    now: i64,
    old: &Application,
    new: &Application,
) -> Vec<NewAuditEvent> {
    let grants = |a: &Application| join_grant_types(&a.grant_types).unwrap_or_default();
    let changes: [(&str, String, String); 6] = [
        ("name", old.name.clone(), new.name.clone()),
        ("scopes", old.scopes.joined(), new.scopes.joined()),
        (
            "redirect_uri",
            old.redirect_uri.clone(),
            new.redirect_uri.clone(),
        ),
        (
            "confidential",
            old.confidential.to_string(),
            new.confidential.to_string(),
        ),
        ("trusted", old.trusted.to_string(), new.trusted.to_string()),
        ("grant_types", grants(old), grants(new)),
    ];
    changes
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(what, from, to)| {
            application_event(
                ctx,
                now,
                "oauth_application_updated",
                new,
                &format!("Changed OAuth application {what}"),
            )
            .change(what, from, to)
        })
        .collect()
}

// --- the service -------------------------------------------------------

impl Services {
    /// Validate and store a new application; returns it with its secret.
    pub async fn create_application(
        &self,
        ctx: &Context,
        owner_id: Option<i64>,
        params: &ApplicationParams,
    ) -> Result<(Application, Plaintext), ServiceError> {
        self.create_owned_application(ctx, owner_id, None, params)
            .await
    }

    /// A new application of a group (GitLab's group applications).
    pub async fn create_group_application(
        &self,
        ctx: &Context,
        group_id: i64,
        params: &ApplicationParams,
    ) -> Result<(Application, Plaintext), ServiceError> {
        self.create_owned_application(ctx, None, Some(group_id), params)
            .await
    }

    pub async fn list_group_applications(
        &self,
        group_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_group_applications(group_id, page).await?)
    }

    async fn create_owned_application(
        &self,
        ctx: &Context,
        owner_id: Option<i64>,
        group_id: Option<i64>,
        params: &ApplicationParams,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let valid =
            application::validate(params, &self.config.scopes).map_err(ServiceError::Validation)?;
        let secret = self.new_application_secret()?;
        let now = self.now_ms();
        let new = NewApplication {
            application_id: secret::random_hex(32)?,
            secret_digest: secret::digest(secret.expose()),
            secret_hint: secret_hint(secret.expose()),
            name: valid.name,
            redirect_uri: valid.redirect_uri,
            scopes: valid.scopes,
            confidential: valid.confidential,
            owner_id,
            group_id,
            created_at: now,
            dynamic: false,
            registration_token_digest: None,
            grant_types: params.grant_types.clone(),
        };
        // The event is said of the application as it will be stored; the
        // store gives it the application's id.
        let event = application_created_event(ctx, now, &new.as_stored(0));
        let store = self.store.clone();
        let app = self
            .recorded(async move {
                let (app, event) = store.insert_application_recorded(new, event).await?;
                Ok((app, vec![event]))
            })
            .await?;
        Ok((app, secret))
    }

    pub async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_instance_applications(page).await?)
    }

    /// The instance-wide applications named like `search`, or with that
    /// client id (the Admin Area's search).
    pub async fn search_instance_applications(
        &self,
        search: &str,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self
            .store
            .search_instance_applications(search, page)
            .await?)
    }

    pub fn stream_instance_applications(
        &self,
    ) -> BoxStream<'static, Result<Application, StoreError>> {
        crate::store::stream_instance_applications(self.store.clone())
    }

    /// A keyset page of instance-wide applications after `after_id`.
    pub async fn instance_applications_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Application>, ServiceError> {
        Ok(self
            .store
            .instance_applications_after(after_id, limit)
            .await?)
    }

    pub async fn list_owned_applications(
        &self,
        owner_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_owned_applications(owner_id, page).await?)
    }

    pub async fn find_application(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<Application, ServiceError> {
        self.store
            .find_application(id, scope)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Change an application; every given value is validated as on
    /// creation. The secret is never touched.
    pub async fn update_application(
        &self,
        ctx: &Context,
        id: i64,
        changes: &ApplicationChanges,
    ) -> Result<Application, ServiceError> {
        let mut errors = ValidationErrors::default();
        if changes.name.is_some() {
            application::validate_name(changes.name.as_deref(), &mut errors);
        }
        if changes.redirect_uri.is_some() {
            application::validate_redirect_uri(changes.redirect_uri.as_deref(), &mut errors);
        }
        let scopes = match &changes.scopes {
            Some(raw) => application::validate_scopes(Some(raw), &self.config.scopes, &mut errors),
            None => None,
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let update = ApplicationUpdate {
            name: changes.name.clone(),
            scopes,
            redirect_uri: changes.redirect_uri.clone(),
            confidential: changes.confidential,
            trusted: changes.trusted,
            grant_types: changes.grant_types.clone(),
            owner: None,
        };
        let (ctx, now) = (ctx.clone(), self.now_ms());
        self.changing_auth(self.unit(move |tx| {
            Box::pin(async move {
                let Some(old) = tx.find_application(id, Ownership::Any).await? else {
                    return Ok(None);
                };
                let Some(app) = tx.update_application(id, update, now).await? else {
                    return Ok(None);
                };
                for event in application_changes(&ctx, now, &old, &app) {
                    tx.record_audit(event).await?;
                }
                Ok(Some(app))
            })
        }))
        .await?
        .ok_or(ServiceError::NotFound)
    }

    pub async fn delete_application(
        &self,
        ctx: &Context,
        id: i64,
        scope: Ownership,
    ) -> Result<(), ServiceError> {
        let (ctx, now) = (ctx.clone(), self.now_ms());
        let deleted = self
            .changing_auth(self.unit(move |tx| {
                Box::pin(async move {
                    let Some(app) = tx.find_application(id, scope).await? else {
                        return Ok(false);
                    };
                    if !tx.delete_application(id, scope).await? {
                        return Ok(false);
                    }
                    let event = application_event(
                        &ctx,
                        now,
                        "oauth_application_deleted",
                        &app,
                        "OAuth application removed",
                    );
                    tx.record_audit(event).await?;
                    Ok(true)
                })
            }))
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }
}
