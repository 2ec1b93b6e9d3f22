//! One unit of work across aggregates (`Store::transaction`): each
//! aggregate's writes, and the audit events that describe them, on one
//! transaction of the backend.

use async_trait::async_trait;
use latchkey_core::application::{
    Application, ApplicationUpdate, NewApplication, NewSecret, Ownership, Retire, SecretDeletion,
    SecretInfo,
};
use latchkey_core::audit::{AuditEvent, NewAuditEvent};
use latchkey_core::group::{
    Group, GroupUpdate, Membership, MembershipUpdate, NewGroup, NewMembership, Visibility,
};
use latchkey_core::oauth::{Grant, NewGrant, NewOAuthToken, NewSession, OAuthToken};
use latchkey_core::oidc::NewSigningKey;
use latchkey_core::store::{Committed, StoreError, Transaction, TransactionWork};
use latchkey_core::token::{NewToken, PersonalAccessToken};
use latchkey_core::user::{NewUser, User, UserState, UserUpdate};

use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::conn::{query_opt_as, Conn};
use crate::rows::token_from_row;
use crate::{
    applications, audit, device_grants, groups, members, oauth, params, registrations, sessions,
    signing_keys, tokens, users,
};

/// Withdrawing a user's grant to an application: pending codes and device
/// grants first (a redemption in flight is waited for), then the tokens,
/// until a pass revokes nothing (`oauth::revoke_until_none`): on
/// PostgreSQL an UPDATE sees only rows committed when it began, so a
/// refresh or redemption that it waited for may have committed a new
/// token meanwhile, which the next pass revokes.
const REVOKE_USER_AUTHORIZATION: [&str; 3] = [
    "DELETE FROM oauth_access_grants
     WHERE application_id = $1 AND user_id = $2 AND redeemed_at IS NULL",
    "DELETE FROM device_grants WHERE application_id = $1 AND user_id = $2",
    "UPDATE oauth_access_tokens SET revoked_at = $3
     WHERE application_id = $1 AND user_id = $2 AND revoked_at IS NULL",
];

const REVOKE_APPLICATION_TOKENS: &str =
    "UPDATE oauth_access_tokens SET revoked_at = $2 WHERE application_id = $1 AND revoked_at IS NULL";

/// The aggregates' writes on one connection inside a transaction, and the
/// audit events recorded so far.
struct SqlTransaction<'c> {
    c: &'c mut dyn Conn,
    dialect: Dialect,
    recorded: Vec<AuditEvent>,
    /// Whether the unit created or deleted applications (the remembered
    /// count of instance applications must then be forgotten).
    applications_changed: bool,
}

#[async_trait]
impl Transaction for SqlTransaction<'_> {
    async fn insert_application(&mut self, app: NewApplication) -> Result<Application, StoreError> {
        self.applications_changed = true;
        applications::insert(self.c, self.dialect, &app).await
    }

    async fn delete_application(&mut self, id: i64, scope: Ownership) -> Result<bool, StoreError> {
        self.applications_changed = true;
        applications::delete(self.c, id, scope).await
    }

    async fn revoke_user_authorization(
        &mut self,
        application_id: i64,
        user_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let [codes, devices, tokens] = REVOKE_USER_AUTHORIZATION;
        let mut changed = 0;
        for sql in [codes, devices] {
            changed += self
                .c
                .execute(sql, &params![application_id, user_id])
                .await?;
        }
        changed += oauth::revoke_until_none(self.c, tokens, &params![application_id, user_id, now])
            .await?;
        Ok(changed)
    }

    async fn revoke_application_tokens(
        &mut self,
        application_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.c
            .execute(REVOKE_APPLICATION_TOKENS, &params![application_id, now])
            .await
    }

    async fn insert_user(&mut self, user: NewUser) -> Result<User, StoreError> {
        users::insert(self.c, &user).await
    }

    async fn insert_token(&mut self, token: NewToken) -> Result<PersonalAccessToken, StoreError> {
        tokens::insert(self.c, token.user_id, &token).await
    }

    async fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self.c.execute(tokens::REVOKE, &params![id]).await? > 0)
    }

    async fn record_audit(&mut self, event: NewAuditEvent) -> Result<(), StoreError> {
        let stored = audit::insert(self.c, &event).await?;
        self.recorded.push(stored);
        Ok(())
    }

    async fn find_application(
        &mut self,
        id: i64,
        scope: Ownership,
    ) -> Result<Option<Application>, StoreError> {
        applications::find(self.c, id, scope, self.dialect.row_lock()).await
    }

    async fn update_application(
        &mut self,
        id: i64,
        update: ApplicationUpdate,
        updated_at: i64,
    ) -> Result<Option<Application>, StoreError> {
        // A new owner may move it in or out of the instance's applications.
        self.applications_changed |= update.owner.is_some();
        applications::update(self.c, id, update, updated_at).await
    }

    async fn renew_application_secret(
        &mut self,
        id: i64,
        scope: Ownership,
        secret: NewSecret,
        retire: Retire,
    ) -> Result<Option<(Application, SecretInfo)>, StoreError> {
        applications::renew_secret(self.c, id, scope, secret, retire, self.dialect.row_lock()).await
    }

    async fn delete_application_secret(
        &mut self,
        application_id: i64,
        secret_id: i64,
        now: i64,
    ) -> Result<SecretDeletion, StoreError> {
        applications::delete_secret(
            self.c,
            application_id,
            secret_id,
            now,
            self.dialect.row_lock(),
        )
        .await
    }

    async fn revoke_all_of_application(
        &mut self,
        id: i64,
        scope: Ownership,
        secret: NewSecret,
        now: i64,
    ) -> Result<Option<(Application, SecretInfo)>, StoreError> {
        applications::revoke_all(self.c, id, scope, secret, now, self.dialect.for_update()).await
    }

    async fn read_state(&mut self) -> Result<latchkey_core::state::Current, StoreError> {
        crate::state::read(self.c).await
    }

    async fn lock_state(&mut self) -> Result<(), StoreError> {
        for statement in self.dialect.lock_state() {
            self.c.execute(statement, &[]).await?;
        }
        Ok(())
    }

    async fn update_token(
        &mut self,
        id: i64,
        name: &str,
        scopes: &latchkey_core::scopes::Scopes,
        expires_at: Option<time::Date>,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        tokens::update(self.c, id, name, scopes, expires_at).await
    }

    async fn replace_application_secrets(
        &mut self,
        application_id: i64,
        secrets: Vec<latchkey_core::application::NewSecret>,
    ) -> Result<(), StoreError> {
        applications::replace_secrets(self.c, application_id, secrets).await
    }

    async fn find_user(&mut self, id: i64) -> Result<Option<User>, StoreError> {
        users::find(self.c, id, self.dialect.row_lock()).await
    }

    async fn lock_users_referenced(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        users::lock_referenced(self.c, self.dialect, ids).await
    }

    async fn lock_group_referenced(&mut self, id: i64) -> Result<(), StoreError> {
        crate::conn::lock_referenced(self.c, "groups", id, self.dialect.key_share()).await
    }

    async fn find_user_to_delete(&mut self, id: i64) -> Result<Option<User>, StoreError> {
        users::find(self.c, id, self.dialect.for_update()).await
    }

    async fn update_user(
        &mut self,
        id: i64,
        update: UserUpdate,
    ) -> Result<Option<User>, StoreError> {
        users::update(self.c, id, update).await
    }

    async fn delete_user(&mut self, id: i64) -> Result<bool, StoreError> {
        // Their applications go with them.
        self.applications_changed = true;
        Ok(self.c.execute(users::DELETE, &params![id]).await? > 0)
    }

    async fn set_user_state(
        &mut self,
        id: i64,
        state: UserState,
        at: i64,
    ) -> Result<bool, StoreError> {
        let params = params![id, state.as_str(), at];
        Ok(self.c.execute(users::SET_STATE, &params).await? > 0)
    }

    async fn no_users_yet(&mut self) -> Result<bool, StoreError> {
        // Once there are users there always are: answer without locking.
        if users::any(self.c).await? {
            return Ok(false);
        }
        // No other write slips in between this check and the unit's
        // inserts (on PostgreSQL, from any instance; under READ COMMITTED
        // the check sees every user committed before the lock).
        if let Some(lock) = self.dialect.lock_users() {
            self.c.execute(lock, &[]).await?;
        }
        Ok(!users::any(self.c).await?)
    }

    async fn delete_user_sessions(
        &mut self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.c
            .execute(sessions::DELETE_USERS, &params![user_id, keep])
            .await
    }

    async fn find_token(&mut self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        let sql = format!("{}{}", tokens::FIND, self.dialect.row_lock());
        query_opt_as(self.c, &sql, &params![id], token_from_row).await
    }

    async fn rotate_token(
        &mut self,
        id: i64,
        new: NewToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        if self.c.execute(tokens::REVOKE_LIVE, &params![id]).await? == 0 {
            return Ok(None);
        }
        Ok(Some(tokens::insert(self.c, new.user_id, &new).await?))
    }

    async fn record_login_failure(
        &mut self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<u32, StoreError> {
        sessions::record_failure(self.c, key, now, window_ms).await
    }

    async fn clear_login_failures(&mut self, key: &str) -> Result<(), StoreError> {
        self.c
            .execute(sessions::CLEAR, &params![key])
            .await
            .map(drop)
    }

    async fn delete_session(&mut self, digest: &str) -> Result<Option<i64>, StoreError> {
        let rows = self.c.query(sessions::END, &params![digest]).await?;
        match rows.first() {
            Some(row) => Ok(Some(row.int("user_id")?)),
            None => Ok(None),
        }
    }

    async fn insert_session(&mut self, s: NewSession) -> Result<(), StoreError> {
        let params = params![
            s.digest,
            s.user_id,
            s.created_at,
            s.expires_at,
            s.ip,
            s.user_agent
        ];
        self.c.execute(sessions::INSERT, &params).await.map(drop)
    }

    async fn set_admin_mode(
        &mut self,
        digest: &str,
        until: Option<i64>,
    ) -> Result<bool, StoreError> {
        let changed = match until {
            Some(until) => {
                self.c
                    .execute(sessions::ENTER_ADMIN_MODE, &params![digest, until])
                    .await?
            }
            None => {
                self.c
                    .execute(sessions::LEAVE_ADMIN_MODE, &params![digest])
                    .await?
            }
        };
        Ok(changed > 0)
    }

    async fn insert_oauth_token(&mut self, token: NewOAuthToken) -> Result<OAuthToken, StoreError> {
        oauth::lock_token_parents(self.c, &token, self.dialect).await?;
        oauth::insert_token(self.c, &token, self.dialect).await
    }

    async fn insert_grant(&mut self, grant: NewGrant) -> Result<Grant, StoreError> {
        oauth::insert_grant(self.c, &grant, self.dialect).await
    }

    async fn decide_device_grant(
        &mut self,
        id: i64,
        user_id: i64,
        approve: bool,
        now: i64,
        auth_time: i64,
    ) -> Result<bool, StoreError> {
        let decision = device_grants::Decision {
            id,
            user_id,
            approve,
            now,
            auth_time,
        };
        device_grants::decide(self.c, decision, self.dialect).await
    }

    async fn revoke_token_family(&mut self, family: &str, now: i64) -> Result<u64, StoreError> {
        oauth::revoke_family(self.c, family, now).await
    }

    async fn insert_signing_key(
        &mut self,
        key: NewSigningKey,
        only_if_none_active: bool,
    ) -> Result<bool, StoreError> {
        signing_keys::insert(self.c, &key, only_if_none_active).await
    }

    async fn username_taken(&mut self, username: &str) -> Result<bool, StoreError> {
        users::taken(self.c, self.dialect, username).await
    }

    async fn top_level_group_taken(&mut self, path: &str) -> Result<bool, StoreError> {
        groups::top_level_taken(self.c, self.dialect, path).await
    }

    async fn solely_owned_groups(
        &mut self,
        user_id: i64,
        today: &str,
    ) -> Result<Vec<Group>, StoreError> {
        groups::solely_owned(self.c, user_id, today).await
    }

    async fn group_name_taken(
        &mut self,
        parent_id: i64,
        name: &str,
        except: Option<i64>,
    ) -> Result<bool, StoreError> {
        groups::name_taken(self.c, parent_id, name, except).await
    }

    async fn insert_group(&mut self, group: NewGroup) -> Result<Group, StoreError> {
        groups::insert_group(self.c, &group).await
    }

    async fn find_group(&mut self, id: i64) -> Result<Option<Group>, StoreError> {
        groups::find_group(self.c, id, self.dialect.row_lock()).await
    }

    async fn update_group(
        &mut self,
        id: i64,
        update: GroupUpdate,
        at: i64,
    ) -> Result<Option<Group>, StoreError> {
        groups::update_group(self.c, id, update, at).await
    }

    async fn delete_group(&mut self, id: i64) -> Result<bool, StoreError> {
        // Its applications go with it.
        self.applications_changed = true;
        groups::delete_group(self.c, id).await
    }

    async fn most_visible_subgroup(&mut self, id: i64) -> Result<Option<Visibility>, StoreError> {
        groups::most_visible_subgroup(self.c, id).await
    }

    async fn find_membership(
        &mut self,
        group_id: i64,
        user_id: i64,
    ) -> Result<Option<Membership>, StoreError> {
        members::find_membership(self.c, group_id, user_id, self.dialect.row_lock()).await
    }

    async fn insert_membership(&mut self, m: NewMembership) -> Result<Membership, StoreError> {
        members::insert_membership(self.c, &m).await
    }

    async fn update_membership(
        &mut self,
        group_id: i64,
        user_id: i64,
        update: MembershipUpdate,
        at: i64,
    ) -> Result<Option<Membership>, StoreError> {
        members::update_membership(self.c, group_id, user_id, update, at).await
    }

    async fn delete_membership(
        &mut self,
        group_id: i64,
        user_id: i64,
        with_subgroups: bool,
    ) -> Result<bool, StoreError> {
        members::delete_membership(self.c, group_id, user_id, with_subgroups).await
    }

    async fn count_owners(&mut self, group_id: i64, today: &str) -> Result<u64, StoreError> {
        members::count_owners(self.c, group_id, today).await
    }

    async fn delete_unused_dynamic_applications(
        &mut self,
        created_before: i64,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError> {
        self.applications_changed = true;
        registrations::delete_unused(self.c, created_before, limit).await
    }

    async fn retire_signing_keys(&mut self, except_kid: &str, now: i64) -> Result<u64, StoreError> {
        self.c
            .execute(signing_keys::RETIRE, &params![except_kid, now])
            .await
    }
}

impl<B: Backend> SqlStore<B> {
    pub(crate) async fn unit_of_work(
        &self,
        work: TransactionWork,
    ) -> Result<Committed, StoreError> {
        let changed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = changed.clone();
        let done = self
            .run(Access::TRANSACTION, move |c| {
                Box::pin(async move {
                    let mut tx = SqlTransaction {
                        c,
                        dialect: B::DIALECT,
                        recorded: Vec::new(),
                        applications_changed: false,
                    };
                    let value = work(&mut tx).await;
                    seen.store(
                        tx.applications_changed,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    Ok(Committed {
                        value: value?,
                        audit: tx.recorded,
                    })
                })
            })
            .await;
        // Also when the unit failed: a commit may have happened before the
        // error reached here.
        if done.is_err() || changed.load(std::sync::atomic::Ordering::Relaxed) {
            self.applications_changed();
        }
        done
    }
}
