//! Applications: the services handlers and the CLI call.

use crate::application;
use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::secret;
use crate::service::{Plaintext, ServiceError, Services};
use futures::stream::BoxStream;

use super::*;
use crate::context::{Change, Context};

// --- the service -------------------------------------------------------

impl Services {
    /// Validate and store a new application; returns it with its secret.
    pub async fn create_application(
        &self,
        ctx: &Context,
        owner_id: Option<i64>,
        params: &ApplicationParams,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let valid =
            application::validate(params, &self.config.scopes).map_err(ServiceError::Validation)?;
        let secret = self.new_application_secret()?;
        let app = self
            .store
            .insert_application(NewApplication {
                application_id: secret::random_hex(32)?,
                secret_digest: secret::digest(secret.expose()),
                name: valid.name,
                redirect_uri: valid.redirect_uri,
                scopes: valid.scopes,
                confidential: valid.confidential,
                owner_id,
                created_at: self.now_ms(),
                dynamic: false,
                registration_token_digest: None,
                grant_types: None,
            })
            .await?;
        self.record(ctx, Change::ApplicationCreated, &app.id.to_string());
        Ok((app, secret))
    }

    pub async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), ServiceError> {
        Ok(self.store.list_instance_applications(page).await?)
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
        };
        let app = self
            .changing_auth(self.store.update_application(id, update, self.now_ms()))
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.record(ctx, Change::ApplicationUpdated, &app.id.to_string());
        Ok(app)
    }

    pub async fn delete_application(
        &self,
        ctx: &Context,
        id: i64,
        scope: Ownership,
    ) -> Result<(), ServiceError> {
        if self
            .changing_auth(self.store.delete_application(id, scope))
            .await?
        {
            self.record(ctx, Change::ApplicationDeleted, &id.to_string());
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// A new secret; the old one stops working at once.
    pub async fn renew_application_secret(
        &self,
        ctx: &Context,
        id: i64,
        scope: Ownership,
    ) -> Result<(Application, Plaintext), ServiceError> {
        let secret = self.new_application_secret()?;
        let app = self
            .changing_auth(self.store.renew_application_secret(
                id,
                scope,
                &secret::digest(secret.expose()),
            ))
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.record(ctx, Change::ApplicationSecretRenewed, &app.id.to_string());
        Ok((app, secret))
    }

    /// The application whose client_id and secret these are, if they match.
    /// The digest comparison is constant-time.
    pub async fn verify_client_secret(
        &self,
        application_id: &str,
        presented_secret: &str,
    ) -> Result<Option<Application>, ServiceError> {
        let found = self.store.find_application_by_uid(application_id).await?;
        Ok(found
            .filter(|(_, digest)| secret::verify(presented_secret, digest))
            .map(|(app, _)| app))
    }
}
