//! OpenID Connect on top of the OAuth flows: the shared signing key, ID
//! tokens and UserInfo claims.

use serde_json::{Map, Value};

use crate::application::Application;
use crate::audit::{target, Entity, NewAuditEvent};
use crate::context::Context;
use crate::error::{cause, message};
use crate::oauth::OAuthTokenFound;
use crate::oidc::{self, IdTokenBase, SigningKey, ID_TOKEN_LIFETIME_S, RETIRED_KEY_PUBLISHED_MS};
use crate::scopes::Scopes;
use crate::service::{ServiceError, Services};

/// How long an instance signs with the key it read before reading again.
const SIGNING_KEY_CACHE_MS: i64 = 60_000;

async fn generate(now: i64) -> Result<oidc::NewSigningKey, ServiceError> {
    tokio::task::spawn_blocking(move || oidc::generate_signing_key(now))
        .await
        .map_err(|e| ServiceError::internal_from("key generation failed", cause(e)))?
        .map_err(|e| ServiceError::internal_from("key generation failed", message(e)))
}

impl Services {
    /// Make sure a signing key exists (first start). Several instances may
    /// race; every active key is published, and all sign with the newest.
    pub async fn ensure_signing_key(&self) -> Result<(), ServiceError> {
        let now = self.now_ms();
        if self
            .store
            .signing_keys(now)
            .await?
            .iter()
            .any(|k| k.retired_at.is_none())
        {
            return Ok(());
        }
        let mut key = generate(self.now_ms()).await?;
        key.created_at = now;
        self.store.insert_signing_key(key, true).await?;
        Ok(())
    }

    /// [`Self::ensure_signing_key`], done once per process: callers that
    /// arrive while the first key is being generated wait for that one
    /// generation. Readiness waits on it, so that a relying party never
    /// reads an empty JWKS from an instance that says it is ready.
    pub async fn ensure_signing_key_once(&self) -> Result<(), ServiceError> {
        self.signing_key_ready
            .get_or_try_init(|| self.ensure_signing_key())
            .await
            .map(|_| ())
    }

    /// A new signing key; the previous ones are retired but stay published
    /// for a day, so the tokens they signed still verify. Returns the kid.
    pub async fn rotate_signing_key(&self, ctx: &Context) -> Result<String, ServiceError> {
        let mut key = generate(self.now_ms()).await?;
        key.created_at = self.now_ms();
        let kid = key.kid.clone();
        let now = self.now_ms();
        let event = NewAuditEvent::new(
            ctx,
            now,
            "signing_key_rotated",
            Entity::instance(),
            "Rotated the ID token signing key",
        )
        .target(target::SIGNING_KEY, None, &kid);
        let retire_all_but = kid.clone();
        self.unit(move |tx| {
            Box::pin(async move {
                tx.insert_signing_key(key, false).await?;
                tx.retire_signing_keys(&retire_all_but, now).await?;
                tx.record_audit(event).await
            })
        })
        .await?;
        if let Ok(mut cache) = self.signing_key.lock() {
            *cache = None;
        }
        Ok(kid)
    }

    /// The keys the JWKS document publishes: never none (the first key is
    /// made if it is still missing).
    pub async fn published_keys(&self) -> Result<Vec<SigningKey>, ServiceError> {
        self.ensure_signing_key_once().await?;
        Ok(self
            .store
            .signing_keys(self.now_ms() - RETIRED_KEY_PUBLISHED_MS)
            .await?)
    }

    async fn current_signing_key(&self) -> Result<SigningKey, ServiceError> {
        let now = self.now_ms();
        if let Ok(cache) = self.signing_key.lock() {
            if let Some((key, read_at)) = cache.as_ref() {
                if now - read_at < SIGNING_KEY_CACHE_MS {
                    return Ok(key.clone());
                }
            }
        }
        let mut key = self
            .store
            .signing_keys(now)
            .await?
            .into_iter()
            .find(|k| k.retired_at.is_none());
        if key.is_none() {
            self.ensure_signing_key().await?;
            key = self
                .store
                .signing_keys(now)
                .await?
                .into_iter()
                .find(|k| k.retired_at.is_none());
        }
        let key = key.ok_or_else(|| ServiceError::internal("no signing key"))?;
        if let Ok(mut cache) = self.signing_key.lock() {
            *cache = Some((key.clone(), now));
        }
        Ok(key)
    }

    /// An RS256 ID token for `user_id`, audience `client`.
    pub(crate) async fn id_token(
        &self,
        client: &Application,
        user_id: i64,
        scopes: &Scopes,
        auth_time_ms: i64,
        nonce: Option<&str>,
    ) -> Result<String, ServiceError> {
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or_else(|| ServiceError::internal("the token's user is gone"))?;
        let key = self.current_signing_key().await?;
        let iat = self.now_ms() / 1000;
        let issuer = self.config().issuer.clone();
        let base = IdTokenBase {
            iss: &issuer,
            aud: &client.application_id,
            exp: iat + ID_TOKEN_LIFETIME_S,
            iat,
            auth_time: auth_time_ms / 1000,
            nonce,
        };
        let mut claims = oidc::user_claims(&user, scopes, &issuer);
        oidc::id_token_group_claims(&self.groups_of_user(user.id).await?, &mut claims);
        oidc::sign_id_token(&key, &base, claims)
            .map_err(|e| ServiceError::internal_from("signing an ID token failed", message(e)))
    }

    /// UserInfo claims for a token carrying `openid`; `None` without it.
    pub async fn userinfo(
        &self,
        found: &OAuthTokenFound,
    ) -> Result<Option<Map<String, Value>>, ServiceError> {
        let Some(user) = found.user.as_ref() else {
            return Ok(None);
        };
        if !found.token.scopes.contains("openid") {
            return Ok(None);
        }
        let mut claims = oidc::user_claims(user, &found.token.scopes, &self.config().issuer);
        oidc::userinfo_group_claims(&self.groups_of_user(user.id).await?, &mut claims);
        Ok(Some(claims))
    }
}
