//! Planning users: creations, changes (demotions and blocks last), their
//! tokens, and the rule that an active administrator remains.

use std::collections::{HashMap, HashSet};

use crate::user::{NewUser, Profile, UserState, UserUpdate};

use super::super::check::{DesiredUser, Password, StateError};
use super::super::{StoredToken, StoredUser};
use super::{err, lower, same_scopes, PasswordCheck, Planner, Step};

impl Planner<'_> {
    pub(super) fn users(
        &mut self,
        users: &[DesiredUser],
        passwords: &HashMap<String, PasswordCheck>,
    ) -> Result<(), StateError> {
        let top_level: HashSet<String> = self
            .current
            .groups
            .iter()
            .filter(|g| g.parent_id.is_none())
            .map(|g| lower(&g.path))
            .collect();
        // Demotions and blocks run after every creation and promotion, so
        // that an administrator is always left while the unit runs.
        let mut lowering = Vec::new();
        for du in users {
            let key = lower(&du.username);
            let stored = self
                .current
                .users
                .iter()
                .find(|u| lower(&u.user.username) == key);
            let new_digest = |s: Option<&StoredUser>| -> Result<Option<String>, StateError> {
                let digest = s.and_then(|s| s.password_digest.as_deref());
                Ok(match &du.password {
                    None => None,
                    // Applied already, or rehashed from it at a sign-in.
                    Some(Password::Hash(h)) => {
                        let rehashed = s.and_then(|s| s.rehashed_from.as_deref())
                            == Some(crate::secret::digest(h).as_str());
                        (digest != Some(h.as_str()) && !rehashed).then(|| h.clone())
                    }
                    // Checked against what is stored now (see `stale_passwords`).
                    Some(Password::Plain(_)) => match passwords.get(&key) {
                        Some(PasswordCheck::New { hash, .. }) => Some(hash.clone()),
                        Some(PasswordCheck::Matches(_)) => None,
                        None => {
                            return err(&du.label, "password", "was not checked: apply it again")
                        }
                    },
                })
            };
            let Some(s) = stored else {
                if top_level.contains(&key) {
                    return err(
                        &du.label,
                        "username",
                        "has already been taken (a top-level group has this path)",
                    );
                }
                let Some(email) = du.email.clone() else {
                    return err(&du.label, "email", "can't be blank (a new user needs one)");
                };
                self.push(Step::CreateUser {
                    new: NewUser {
                        username: du.username.clone(),
                        email,
                        name: du.name.clone().unwrap_or_else(|| du.username.clone()),
                        password_digest: new_digest(None)?,
                        admin: du.admin.unwrap_or(false),
                        created_at: self.settings.now,
                        external: du.external.unwrap_or(false),
                        profile: Profile::default(),
                        avatar: None,
                    },
                    blocked: du.blocked.unwrap_or(false),
                });
                self.tokens(du, None)?;
                continue;
            };
            let u = &s.user;
            let mut update = UserUpdate::default();
            let mut fields = Vec::new();
            if du.username != u.username {
                update.username = Some(du.username.clone());
                fields.push("username");
            }
            if let Some(email) = du.email.as_ref().filter(|e| **e != u.email) {
                update.email = Some(email.clone());
                fields.push("email");
            }
            if let Some(n) = du.name.as_ref().filter(|n| **n != u.name) {
                update.name = Some(n.clone());
                fields.push("name");
            }
            match du.admin.filter(|a| *a != u.admin) {
                Some(true) => {
                    update.admin = Some(true);
                    fields.push("admin");
                }
                Some(false) => lowering.push(Step::UpdateUser {
                    id: u.id,
                    username: du.username.clone(),
                    update: UserUpdate {
                        admin: Some(false),
                        updated_at: Some(self.settings.now),
                        ..UserUpdate::default()
                    },
                    fields: vec!["admin"],
                }),
                None => {}
            }
            if let Some(x) = du.external.filter(|x| *x != u.external) {
                update.external = Some(x);
                fields.push("external");
            }
            if let Some(d) = new_digest(Some(s))? {
                update.password_digest = Some(d);
                fields.push("password");
            }
            if !fields.is_empty() {
                update.updated_at = Some(self.settings.now);
                self.push(Step::UpdateUser {
                    id: u.id,
                    username: du.username.clone(),
                    update,
                    fields,
                });
            }
            match du.blocked {
                Some(false) if u.state == UserState::Blocked => self.push(Step::SetUserState {
                    id: u.id,
                    username: du.username.clone(),
                    state: UserState::Active,
                }),
                Some(true) if u.state == UserState::Active => lowering.push(Step::SetUserState {
                    id: u.id,
                    username: du.username.clone(),
                    state: UserState::Blocked,
                }),
                _ => {}
            }
            self.tokens(du, Some(u.id))?;
        }
        self.plan.steps.extend(lowering);
        self.check_administrators(users)
    }

    pub(super) fn tokens(
        &mut self,
        du: &DesiredUser,
        user_id: Option<i64>,
    ) -> Result<(), StateError> {
        let Some(tokens) = &du.tokens else {
            return Ok(());
        };
        let theirs: Vec<&StoredToken> = self
            .current
            .tokens
            .iter()
            .filter(|t| Some(t.token.user_id) == user_id && !t.token.revoked)
            .collect();
        // Entries with a value first, then by name among the tokens left:
        // no token is claimed twice.
        let mut used = HashSet::new();
        let mut found: Vec<Option<&StoredToken>> = vec![None; tokens.len()];
        let mut spent = HashSet::new();
        for (i, dt) in tokens.iter().enumerate() {
            let Some(d) = &dt.digest else { continue };
            // Also a token rehashed at its first use from this (imported) digest.
            let imported = crate::secret::digest(d);
            let Some(t) =
                self.current.tokens.iter().find(|t| {
                    t.digest == *d || t.rehashed_from.as_deref() == Some(imported.as_str())
                })
            else {
                continue;
            };
            if Some(t.token.user_id) != user_id {
                return err(&dt.label, "token", "is another user's token");
            }
            if t.token.revoked {
                const SPENT: &str = "was revoked and may not be used again: give a new value";
                if !self.settings.seeding {
                    return err(&dt.label, "token", SPENT);
                }
                // A seed applied at start: the server still starts.
                self.plan
                    .kept
                    .push(format!("left out {}: the token {SPENT}", dt.label));
                spent.insert(i);
                continue;
            }
            used.insert(t.token.id);
            found[i] = Some(t);
        }
        for (i, dt) in tokens.iter().enumerate() {
            if found[i].is_some() || spent.contains(&i) {
                continue;
            }
            // An imported token (GitLab's digest) never replaces one of the
            // same name made here.
            if dt
                .digest
                .as_deref()
                .is_some_and(crate::imported::is_gitlab_token_digest)
            {
                continue;
            }
            let by_name = theirs
                .iter()
                .find(|t| t.token.name == dt.name && !used.contains(&t.token.id))
                .copied();
            if let Some(t) = by_name {
                used.insert(t.token.id);
                if dt.digest.is_some() {
                    // A new value for a token of this name: the old one goes.
                    self.push(Step::RevokeToken {
                        id: t.token.id,
                        username: du.username.clone(),
                        name: t.token.name.clone(),
                    });
                } else {
                    found[i] = Some(t);
                }
            }
        }
        for (i, (dt, found)) in tokens.iter().zip(found).enumerate() {
            if spent.contains(&i) {
                continue;
            }
            let Some(t) = found else {
                self.push(Step::CreateToken {
                    username: du.username.clone(),
                    name: dt.name.clone(),
                    scopes: dt.scopes.clone(),
                    digest: dt.digest.clone(),
                    expires_at: dt.expires_at,
                });
                continue;
            };
            let mut fields = Vec::new();
            if t.token.name != dt.name {
                fields.push("name");
            }
            if !same_scopes(&t.token.scopes, &dt.scopes) {
                fields.push("scopes");
            }
            if t.token.expires_at != dt.expires_at {
                fields.push("expires_at");
            }
            if !fields.is_empty() {
                self.push(Step::UpdateToken {
                    id: t.token.id,
                    username: du.username.clone(),
                    name: dt.name.clone(),
                    scopes: dt.scopes.clone(),
                    expires_at: dt.expires_at,
                    fields,
                });
            }
        }
        if self.settings.prune {
            for t in theirs.iter().filter(|t| !used.contains(&t.token.id)) {
                self.push(Step::RevokeToken {
                    id: t.token.id,
                    username: du.username.clone(),
                    name: t.token.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// At least one active administrator remains (if there was one):
    /// pruning keeps the last one (and root, always); a file that demotes
    /// or blocks them all is refused.
    pub(super) fn check_administrators(&mut self, users: &[DesiredUser]) -> Result<(), StateError> {
        let listed: HashMap<String, &DesiredUser> =
            users.iter().map(|u| (lower(&u.username), u)).collect();
        let mut active_admins = 0;
        for du in users {
            let stored = self
                .current
                .users
                .iter()
                .find(|s| lower(&s.user.username) == lower(&du.username));
            let admin = du
                .admin
                .unwrap_or_else(|| stored.is_some_and(|s| s.user.admin));
            let blocked = du
                .blocked
                .unwrap_or_else(|| stored.is_some_and(|s| s.user.state == UserState::Blocked));
            if admin && !blocked {
                active_admins += 1;
            }
        }
        let unlisted = self
            .current
            .users
            .iter()
            .filter(|s| !listed.contains_key(&lower(&s.user.username)));
        for s in unlisted {
            let u = &s.user;
            let active_admin = u.admin && u.state == UserState::Active;
            let root = lower(&u.username) == "root";
            if !self.pruning_users {
                active_admins += usize::from(active_admin);
            } else if root {
                active_admins += usize::from(active_admin);
                self.plan
                    .kept
                    .push("kept user root: root is never pruned".to_owned());
            } else if active_admin && active_admins == 0 {
                active_admins += 1;
                self.plan.kept.push(format!(
                    "kept user {}: the last active administrator is never pruned",
                    u.username
                ));
                // Not pruned after all: it still exists.
                self.users.insert(lower(&u.username), u.id);
                self.desired_users.insert(lower(&u.username));
            }
        }
        let before = self
            .current
            .users
            .iter()
            .filter(|s| s.user.admin && s.user.state == UserState::Active)
            .count();
        if active_admins == 0 && before == 0 && self.current.users.is_empty() && !users.is_empty() {
            // A new instance: `serve` creates root only while there are no
            // users, so users without an administrator leave none. Said,
            // not refused: the file may be meant for that.
            self.plan.kept.push(
                "note: none of the file's users is an administrator and the database had no \
                 users: `latchkey serve` will not create root now; make one `admin = true` to \
                 have an administrator"
                    .to_owned(),
            );
        }
        if active_admins == 0 && before > 0 {
            return err(
                "users",
                "admin",
                "the file leaves no active administrator (at least one user must be an \
                 administrator, not blocked)",
            );
        }
        Ok(())
    }
}
