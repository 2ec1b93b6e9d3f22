//! Who may do what: latchkey's authorization rules, in one place. Handlers
//! ask these; they do not decide.

use crate::application::Application;
use crate::oauth::OAuthTokenFound;
use crate::scopes::Scopes;
use crate::service::Services;
use crate::user::User;

/// Who acts on a request: the user a credential authenticated, and the
/// scopes of that credential.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user: &'a User,
    pub scopes: &'a Scopes,
}

impl Actor<'_> {
    /// GitLab's `authenticated_as_admin!`: an administrator, and with
    /// Admin Mode on, through a token that carries `admin_mode`.
    pub fn is_admin(&self, admin_mode: bool) -> bool {
        self.user.admin && (!admin_mode || self.scopes.contains("admin_mode"))
    }

    /// The owner of something, or an administrator.
    pub fn owns_or_administers(&self, owner_id: Option<i64>, admin_mode: bool) -> bool {
        owner_id == Some(self.user.id) || self.is_admin(admin_mode)
    }
}

/// RFC 7662: what introspection tells `client` about a token. A client
/// learns only about its own live tokens of users who may still act;
/// anything else is "inactive", as if unknown.
pub fn introspection_shows(found: &OAuthTokenFound, client: &Application, now_ms: i64) -> bool {
    found.token.is_active(now_ms)
        && found.owner_may_act()
        && found.token.application_id == client.id
}

impl Services {
    /// Does `actor` act as an administrator (Admin Mode as configured)?
    pub fn acts_as_admin(&self, actor: Actor<'_>) -> bool {
        actor.is_admin(self.config().admin_mode)
    }

    /// May `actor` read, change and delete what `owner_id` owns (an
    /// application, a token, a profile)? The owner or an administrator.
    pub fn may_manage(&self, actor: Actor<'_>, owner_id: Option<i64>) -> bool {
        actor.owns_or_administers(owner_id, self.config().admin_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::OAuthToken;
    use crate::user::UserState;

    fn user(id: i64, admin: bool) -> User {
        User {
            id,
            username: format!("u{id}"),
            email: format!("u{id}@example.com"),
            name: "U".to_owned(),
            admin,
            state: UserState::Active,
            created_at: 0,
            external: false,
            updated_at: 0,
            profile: Default::default(),
            avatar: None,
        }
    }

    #[test]
    fn admin_mode_asks_for_the_admin_mode_scope() {
        let admin = user(1, true);
        let plain = Scopes::from_stored("api");
        let with_mode = Scopes::from_stored("api admin_mode");
        let a = Actor {
            user: &admin,
            scopes: &plain,
        };
        assert!(a.is_admin(false));
        assert!(!a.is_admin(true), "Admin Mode on, no admin_mode scope");
        let b = Actor {
            user: &admin,
            scopes: &with_mode,
        };
        assert!(b.is_admin(true));
        let someone = user(2, false);
        let c = Actor {
            user: &someone,
            scopes: &with_mode,
        };
        assert!(!c.is_admin(false), "the scope alone makes nobody an admin");
    }

    #[test]
    fn owners_and_administrators_manage() {
        let owner = user(7, false);
        let other = user(8, false);
        let admin = user(9, true);
        let api = Scopes::from_stored("api");
        let actor = |u| Actor {
            user: u,
            scopes: &api,
        };
        assert!(actor(&owner).owns_or_administers(Some(7), false));
        assert!(!actor(&other).owns_or_administers(Some(7), false));
        assert!(actor(&admin).owns_or_administers(Some(7), false));
        assert!(
            !actor(&admin).owns_or_administers(Some(7), true),
            "Admin Mode"
        );
        assert!(
            !actor(&owner).owns_or_administers(None, false),
            "instance-wide things have no owner"
        );
    }

    fn found(app_id: i64, owner: Option<User>, revoked: bool, expires_at: i64) -> OAuthTokenFound {
        OAuthTokenFound {
            token: OAuthToken {
                id: 1,
                application_id: app_id,
                user_id: owner.as_ref().map(|u| u.id),
                scopes: Scopes::from_stored("api"),
                created_at: 0,
                expires_at,
                revoked_at: revoked.then_some(5),
                refreshed_at: None,
                has_refresh_token: false,
                family: "f".to_owned(),
                previous_token_id: None,
                grant_id: None,
                auth_time: None,
            },
            application: app(app_id),
            user: owner,
        }
    }

    fn app(id: i64) -> Application {
        Application {
            id,
            application_id: format!("client{id}"),
            name: "a".to_owned(),
            redirect_uri: "https://x/cb".to_owned(),
            scopes: Scopes::from_stored("api"),
            confidential: true,
            trusted: false,
            owner_id: None,
            group_id: None,
            created_at: 0,
            dynamic: false,
            grant_types: None,
            client_secret_id: None,
        }
    }

    #[test]
    fn a_client_introspects_only_its_own_live_tokens() {
        let now = 1_000;
        let mut blocked = user(3, false);
        blocked.state = UserState::Blocked;
        assert!(introspection_shows(
            &found(1, Some(user(2, false)), false, 2_000),
            &app(1),
            now
        ));
        assert!(
            !introspection_shows(&found(1, Some(user(2, false)), false, 2_000), &app(2), now),
            "another client's token"
        );
        assert!(!introspection_shows(
            &found(1, Some(user(2, false)), true, 2_000),
            &app(1),
            now
        ));
        assert!(!introspection_shows(
            &found(1, Some(user(2, false)), false, 500),
            &app(1),
            now
        ));
        assert!(!introspection_shows(
            &found(1, Some(blocked), false, 2_000),
            &app(1),
            now
        ));
        assert!(
            introspection_shows(&found(1, None, false, 2_000), &app(1), now),
            "a client credentials token"
        );
    }
}
