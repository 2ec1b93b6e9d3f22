//! Comparing what a state file wants with what is stored: the steps that
//! make them agree, in the order they can run (users before the tokens,
//! memberships and applications that name them; parents before subgroups;
//! deletions last). Pure: no store, no clock.

use std::collections::{HashMap, HashSet};

use time::Date;

use crate::application::ApplicationUpdate;
use crate::group::{level, GroupUpdate, MembershipUpdate, Visibility};
use crate::scopes::Scopes;
use crate::user::{NewUser, Profile, UserState, UserUpdate};

use super::check::{
    DesiredApplication, DesiredGroup, DesiredSecret, DesiredUser, Owner, Password, StateError,
};
use super::{Current, Desired, StoredApplication};

/// What checking a plain-text password against the stored hash found
/// (done before the unit of work: Argon2 takes a while).
#[derive(Clone)]
pub enum PasswordCheck {
    /// The stored hash (this one) already verifies the password.
    Matches(String),
    /// It does not (or there is none): `hash` replaces what was `seen`.
    New { hash: String, seen: Option<String> },
}

impl PasswordCheck {
    /// The stored hash the check was made against.
    pub fn seen(&self) -> Option<&str> {
        match self {
            Self::Matches(d) => Some(d),
            Self::New { seen, .. } => seen.as_deref(),
        }
    }
}

impl std::fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Matches(_) => "Matches",
            Self::New { .. } => "New",
        })
    }
}

/// What the plan needs besides the two states.
#[derive(Debug, Clone)]
pub struct Settings {
    pub prune: bool,
    pub now: i64,
    pub today: Date,
    pub default_visibility: Visibility,
}

/// One change. Things made in the same run are named (a username, a full
/// path); things stored are named and known by id.
#[derive(Debug, Clone)]
pub enum Step {
    CreateUser {
        new: NewUser,
        blocked: bool,
    },
    UpdateUser {
        id: i64,
        username: String,
        update: UserUpdate,
        fields: Vec<&'static str>,
    },
    SetUserState {
        id: i64,
        username: String,
        state: UserState,
    },
    CreateToken {
        username: String,
        name: String,
        scopes: Scopes,
        digest: Option<String>,
        expires_at: Option<Date>,
    },
    UpdateToken {
        id: i64,
        username: String,
        name: String,
        scopes: Scopes,
        expires_at: Option<Date>,
        fields: Vec<&'static str>,
    },
    RevokeToken {
        id: i64,
        username: String,
        name: String,
    },
    CreateGroup {
        full_path: String,
        parent: Option<String>,
        name: String,
        path: String,
        description: String,
        visibility: Visibility,
    },
    UpdateGroup {
        id: i64,
        full_path: String,
        update: GroupUpdate,
        fields: Vec<&'static str>,
    },
    AddMember {
        group: String,
        username: String,
        access_level: i32,
        expires_at: Option<String>,
    },
    UpdateMember {
        group: String,
        group_id: i64,
        username: String,
        user_id: i64,
        update: MembershipUpdate,
        fields: Vec<&'static str>,
    },
    RemoveMember {
        group: String,
        group_id: i64,
        username: String,
        user_id: i64,
    },
    CreateApplication {
        name: String,
        redirect_uri: String,
        scopes: Scopes,
        confidential: bool,
        trusted: bool,
        grant_types: Option<Vec<String>>,
        owner: Owner,
        application_id: Option<String>,
        secrets: Option<Vec<DesiredSecret>>,
    },
    UpdateApplication {
        id: i64,
        name: String,
        update: ApplicationUpdate,
        /// A new owner (resolved to ids when run).
        owner: Option<Owner>,
        fields: Vec<&'static str>,
    },
    ReplaceSecrets {
        id: i64,
        name: String,
        secrets: Vec<DesiredSecret>,
    },
    DeleteApplication {
        id: i64,
        name: String,
        application_id: String,
    },
    /// `with`: what goes with it ("its 2 applications"), if anything.
    DeleteGroup {
        id: i64,
        full_path: String,
        with: String,
    },
    DeleteUser {
        id: i64,
        username: String,
        with: String,
    },
}

/// "and its 2 applications, 1 token", or nothing.
fn going_with(whose: &str, counts: &[(usize, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (and {whose} {})", parts.join(", "))
    }
}

fn owner_text(owner: &Owner) -> String {
    match owner {
        Owner::Instance => "instance-wide".to_owned(),
        Owner::User(u) => format!("owner {u}"),
        Owner::Group(g) => format!("group {g}"),
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::CreateUser { new, blocked } => write!(
                f,
                "create user {}{}{}",
                new.username,
                if new.admin { " (administrator)" } else { "" },
                if *blocked { " (blocked)" } else { "" }
            ),
            Step::UpdateUser {
                username, fields, ..
            } => write!(f, "update user {username}: {}", fields.join(", ")),
            Step::SetUserState {
                username, state, ..
            } => match state {
                UserState::Blocked => write!(f, "block user {username}"),
                UserState::Active => write!(f, "unblock user {username}"),
            },
            Step::CreateToken { username, name, .. } => {
                write!(f, "create token {name:?} of {username}")
            }
            Step::UpdateToken {
                username,
                name,
                fields,
                ..
            } => write!(
                f,
                "update token {name:?} of {username}: {}",
                fields.join(", ")
            ),
            Step::RevokeToken { username, name, .. } => {
                write!(f, "revoke token {name:?} of {username}")
            }
            Step::CreateGroup { full_path, .. } => write!(f, "create group {full_path}"),
            Step::UpdateGroup {
                full_path, fields, ..
            } => write!(f, "update group {full_path}: {}", fields.join(", ")),
            Step::AddMember {
                group,
                username,
                access_level,
                ..
            } => write!(
                f,
                "add {username} to group {group} as {}",
                level::name(*access_level)
            ),
            Step::UpdateMember {
                group,
                username,
                fields,
                ..
            } => write!(
                f,
                "update membership of {username} in group {group}: {}",
                fields.join(", ")
            ),
            Step::RemoveMember {
                group, username, ..
            } => write!(f, "remove {username} from group {group}"),
            Step::CreateApplication { name, owner, .. } => {
                write!(f, "create application {name:?} ({})", owner_text(owner))
            }
            Step::UpdateApplication { name, fields, .. } => {
                write!(f, "update application {name:?}: {}", fields.join(", "))
            }
            Step::ReplaceSecrets { name, .. } => {
                write!(f, "replace the secrets of application {name:?}")
            }
            Step::DeleteApplication {
                name,
                application_id,
                ..
            } => write!(f, "delete application {name:?} ({application_id})"),
            Step::DeleteGroup {
                full_path, with, ..
            } => write!(f, "delete group {full_path}{with}"),
            Step::DeleteUser { username, with, .. } => write!(f, "delete user {username}{with}"),
        }
    }
}

/// The steps, and what was left alone on purpose (and why).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub kept: Vec<String>,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn same_scopes(a: &Scopes, b: &Scopes) -> bool {
    a.as_slice().len() == b.as_slice().len() && a.is_subset_of(b)
}

fn err<T>(entry: &str, field: &str, message: impl Into<String>) -> Result<T, StateError> {
    Err(StateError {
        entry: entry.to_owned(),
        field: field.to_owned(),
        message: message.into(),
    })
}

/// Has a stored password hash changed since the plain-text passwords were
/// checked against it (another apply, a password change)? Then they must
/// be checked again.
pub fn stale_passwords(current: &Current, passwords: &HashMap<String, PasswordCheck>) -> bool {
    passwords.iter().any(|(key, check)| {
        let stored = current
            .users
            .iter()
            .find(|u| lower(&u.user.username) == *key)
            .and_then(|u| u.password_digest.as_deref());
        stored != check.seen()
    })
}

/// The steps that make `current` what `desired` says. `passwords` holds a
/// check for every user given a plain-text password (by lowercase username).
pub fn plan(
    desired: &Desired,
    current: &Current,
    passwords: &HashMap<String, PasswordCheck>,
    settings: &Settings,
) -> Result<Plan, StateError> {
    let mut p = Planner {
        current,
        settings,
        plan: Plan::default(),
        users: current
            .users
            .iter()
            .map(|u| (lower(&u.user.username), u.user.id))
            .collect(),
        desired_users: desired
            .users
            .iter()
            .flatten()
            .map(|u| lower(&u.username))
            .collect(),
        groups: current
            .groups
            .iter()
            .map(|g| (lower(&g.full_path), g.id))
            .collect(),
        desired_groups: desired
            .groups
            .iter()
            .flatten()
            .map(|g| lower(&g.full_path))
            .collect(),
        pruning_users: settings.prune && desired.users.is_some(),
        pruning_groups: settings.prune && desired.groups.is_some(),
    };
    if let Some(users) = &desired.users {
        p.users(users, passwords)?;
    }
    if let Some(groups) = &desired.groups {
        p.groups(groups, desired)?;
    }
    let mut matched = HashSet::new();
    if let Some(apps) = &desired.applications {
        matched = p.applications(apps)?;
    }
    if settings.prune {
        p.prune(desired, &matched)?;
    }
    Ok(p.plan)
}

struct Planner<'a> {
    current: &'a Current,
    settings: &'a Settings,
    plan: Plan,
    /// Stored users and groups: lowercase username / full path → id.
    users: HashMap<String, i64>,
    desired_users: HashSet<String>,
    groups: HashMap<String, i64>,
    desired_groups: HashSet<String>,
    pruning_users: bool,
    pruning_groups: bool,
}

impl Planner<'_> {
    fn push(&mut self, step: Step) {
        self.plan.steps.push(step);
    }

    /// Will a user of this name exist once the file is applied?
    fn user_will_exist(&self, username: &str) -> bool {
        let l = lower(username);
        self.desired_users.contains(&l) || (!self.pruning_users && self.users.contains_key(&l))
    }

    fn group_will_exist(&self, full_path: &str) -> bool {
        let l = lower(full_path);
        self.desired_groups.contains(&l) || (!self.pruning_groups && self.groups.contains_key(&l))
    }

    fn users(
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
            let new_digest = |s: Option<&super::StoredUser>| -> Result<Option<String>, StateError> {
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
                self.push(Step::CreateUser {
                    new: NewUser {
                        username: du.username.clone(),
                        email: du.email.clone(),
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
            if du.email != u.email {
                update.email = Some(du.email.clone());
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

    fn tokens(&mut self, du: &DesiredUser, user_id: Option<i64>) -> Result<(), StateError> {
        let Some(tokens) = &du.tokens else {
            return Ok(());
        };
        let theirs: Vec<&super::StoredToken> = self
            .current
            .tokens
            .iter()
            .filter(|t| Some(t.token.user_id) == user_id && !t.token.revoked)
            .collect();
        // Entries with a value first, then by name among the tokens left:
        // no token is claimed twice.
        let mut used = HashSet::new();
        let mut found: Vec<Option<&super::StoredToken>> = vec![None; tokens.len()];
        for (i, dt) in tokens.iter().enumerate() {
            let Some(d) = &dt.digest else { continue };
            let Some(t) = self.current.tokens.iter().find(|t| t.digest == *d) else {
                continue;
            };
            if Some(t.token.user_id) != user_id {
                return err(&dt.label, "token", "is another user's token");
            }
            if t.token.revoked {
                return err(
                    &dt.label,
                    "token",
                    "was revoked and may not be used again: give a new value",
                );
            }
            used.insert(t.token.id);
            found[i] = Some(t);
        }
        for (i, dt) in tokens.iter().enumerate() {
            if found[i].is_some() {
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
        for (dt, found) in tokens.iter().zip(found) {
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
    fn check_administrators(&mut self, users: &[DesiredUser]) -> Result<(), StateError> {
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

    fn groups(&mut self, groups: &[DesiredGroup], desired: &Desired) -> Result<(), StateError> {
        // What each listed group's visibility is said to be, and (as they
        // are planned, parents first) what it will be.
        let said: HashMap<String, Visibility> = groups
            .iter()
            .filter_map(|g| g.visibility.map(|v| (lower(&g.full_path), v)))
            .collect();
        let mut will_be: HashMap<String, Visibility> = HashMap::new();
        for dg in groups {
            let key = lower(&dg.full_path);
            let stored = self
                .current
                .groups
                .iter()
                .find(|g| lower(&g.full_path) == key);
            let parent_visibility = match &dg.parent {
                None => None,
                Some(parent) => {
                    let pkey = lower(parent);
                    if !self.group_will_exist(parent) {
                        return err(
                            &dg.label,
                            "parent",
                            format!("no group {parent} exists (or --prune would delete it)"),
                        );
                    }
                    will_be.get(&pkey).copied().or_else(|| {
                        self.current
                            .groups
                            .iter()
                            .find(|g| lower(&g.full_path) == pkey)
                            .map(|g| g.visibility)
                    })
                }
            };
            // Left out: what it is, or (new) the default, no more visible
            // than its parent.
            let visibility = dg
                .visibility
                .or(stored.map(|g| g.visibility))
                .unwrap_or_else(|| {
                    let default = self.settings.default_visibility;
                    parent_visibility.map_or(default, |p| p.min(default))
                });
            if let Some(pv) = parent_visibility {
                if visibility > pv {
                    return err(
                        &dg.label,
                        "visibility",
                        format!(
                            "{} is not allowed since the parent group has a {} visibility",
                            visibility.as_str(),
                            pv.as_str()
                        ),
                    );
                }
            }
            if let Some(g) = stored {
                let children = self
                    .current
                    .groups
                    .iter()
                    .filter(|c| c.parent_id == Some(g.id));
                for c in children {
                    let theirs = said
                        .get(&lower(&c.full_path))
                        .copied()
                        .unwrap_or(c.visibility);
                    if theirs > visibility {
                        return err(
                            &dg.label,
                            "visibility",
                            format!(
                                "{} is not allowed since its subgroup {} has a {} visibility",
                                visibility.as_str(),
                                c.full_path,
                                theirs.as_str()
                            ),
                        );
                    }
                }
            }
            will_be.insert(key.clone(), visibility);
            if dg.full_path.split('/').count() > crate::group::MAX_ANCESTORS + 1 {
                return err(&dg.label, "parent", "has too deep level of nesting");
            }
            if dg.parent.is_none() && stored.is_none() {
                let taken = desired
                    .users
                    .iter()
                    .flatten()
                    .any(|u| lower(&u.username) == key)
                    || self.users.contains_key(&key);
                if taken {
                    return err(
                        &dg.label,
                        "path",
                        "has already been taken (a user has this username)",
                    );
                }
            }
            match stored {
                None => self.push(Step::CreateGroup {
                    full_path: dg.full_path.clone(),
                    parent: dg.parent.clone(),
                    name: dg.name.clone().unwrap_or_else(|| dg.path.clone()),
                    path: dg.path.clone(),
                    description: dg.description.clone().unwrap_or_default(),
                    visibility,
                }),
                Some(g) => {
                    let mut update = GroupUpdate::default();
                    let mut fields = Vec::new();
                    if let Some(n) = dg.name.as_ref().filter(|n| **n != g.name) {
                        update.name = Some(n.clone());
                        fields.push("name");
                    }
                    if let Some(d) = dg.description.as_ref().filter(|d| **d != g.description) {
                        update.description = Some(d.clone());
                        fields.push("description");
                    }
                    if visibility != g.visibility {
                        update.visibility = Some(visibility);
                        fields.push("visibility");
                    }
                    if !fields.is_empty() {
                        self.push(Step::UpdateGroup {
                            id: g.id,
                            full_path: g.full_path.clone(),
                            update,
                            fields,
                        });
                    }
                }
            }
            self.members(dg, stored.map(|g| g.id))?;
        }
        Ok(())
    }

    fn members(&mut self, dg: &DesiredGroup, group_id: Option<i64>) -> Result<(), StateError> {
        let Some(members) = &dg.members else {
            return Ok(());
        };
        let mut listed = HashSet::new();
        for dm in members {
            if !self.user_will_exist(&dm.username) {
                return err(
                    &dm.label,
                    "username",
                    format!("no user {} exists", dm.username),
                );
            }
            let user_id = self.users.get(&lower(&dm.username)).copied();
            if let Some(uid) = user_id {
                listed.insert(uid);
            }
            let stored = self
                .current
                .members
                .iter()
                .find(|m| Some(m.group_id) == group_id && Some(m.user_id) == user_id);
            match (stored, group_id, user_id) {
                (Some(m), Some(gid), Some(uid)) => {
                    let mut update = MembershipUpdate::default();
                    let mut fields = Vec::new();
                    if m.access_level != dm.access_level {
                        update.access_level = Some(dm.access_level);
                        fields.push("access_level");
                    }
                    if m.expires_at != dm.expires_at {
                        update.expires_at = Some(dm.expires_at.clone());
                        fields.push("expires_at");
                    }
                    if !fields.is_empty() {
                        self.push(Step::UpdateMember {
                            group: dg.full_path.clone(),
                            group_id: gid,
                            username: dm.username.clone(),
                            user_id: uid,
                            update,
                            fields,
                        });
                    }
                }
                _ => self.push(Step::AddMember {
                    group: dg.full_path.clone(),
                    username: dm.username.clone(),
                    access_level: dm.access_level,
                    expires_at: dm.expires_at.clone(),
                }),
            }
        }
        if let (true, Some(gid)) = (self.settings.prune, group_id) {
            let names: HashMap<i64, &str> = self
                .current
                .users
                .iter()
                .map(|u| (u.user.id, u.user.username.as_str()))
                .collect();
            for m in self
                .current
                .members
                .iter()
                .filter(|m| m.group_id == gid && !listed.contains(&m.user_id))
            {
                self.push(Step::RemoveMember {
                    group: dg.full_path.clone(),
                    group_id: gid,
                    username: names.get(&m.user_id).copied().unwrap_or("?").to_owned(),
                    user_id: m.user_id,
                });
            }
        }
        Ok(())
    }

    /// The stored owner ids of `owner`, if it is stored.
    fn stored_owner(&self, owner: &Owner) -> Option<(Option<i64>, Option<i64>)> {
        match owner {
            Owner::Instance => Some((None, None)),
            Owner::User(u) => self.users.get(&lower(u)).map(|id| (Some(*id), None)),
            Owner::Group(g) => self.groups.get(&lower(g)).map(|id| (None, Some(*id))),
        }
    }

    fn applications(&mut self, apps: &[DesiredApplication]) -> Result<HashSet<i64>, StateError> {
        let mut matched: HashMap<i64, &str> = HashMap::new();
        for da in apps {
            match &da.owner {
                Owner::Instance => {}
                Owner::User(u) if !self.user_will_exist(u) => {
                    return err(&da.label, "owner", format!("no user {u} exists"));
                }
                Owner::Group(g) if !self.group_will_exist(g) => {
                    return err(&da.label, "group", format!("no group {g} exists"));
                }
                _ => {}
            }
            let owner_ids = self.stored_owner(&da.owner);
            let found: Option<&StoredApplication> = match &da.application_id {
                Some(uid) => {
                    if self.current.dynamic_client_ids.contains(uid) {
                        return err(
                            &da.label,
                            "application_id",
                            "is a dynamically registered client's",
                        );
                    }
                    self.current
                        .applications
                        .iter()
                        .find(|a| a.app.application_id == *uid)
                }
                None => {
                    let same: Vec<&StoredApplication> = self
                        .current
                        .applications
                        .iter()
                        .filter(|a| {
                            a.app.name == da.name
                                && Some((a.app.owner_id, a.app.group_id)) == owner_ids
                        })
                        .collect();
                    if same.len() > 1 {
                        let ids: Vec<String> =
                            same.iter().map(|a| a.app.application_id.clone()).collect();
                        return err(
                            &da.label,
                            "name",
                            format!(
                                "matches {} applications ({}): give application_id",
                                ids.len(),
                                ids.join(", ")
                            ),
                        );
                    }
                    same.first().copied()
                }
            };
            // Secrets listed with an expiry already past are no secrets.
            let now = self.settings.now;
            let secrets: Option<Vec<DesiredSecret>> = da.secrets.as_ref().map(|list| {
                list.iter()
                    .filter(|s| s.expires_at.is_none_or(|at| at > now))
                    .cloned()
                    .collect()
            });
            if secrets.as_ref().is_some_and(Vec::is_empty) {
                return err(&da.label, "secrets", "every secret listed has expired");
            }
            let Some(stored) = found else {
                self.push(Step::CreateApplication {
                    name: da.name.clone(),
                    redirect_uri: da.redirect_uri.clone(),
                    scopes: da.scopes.clone(),
                    confidential: da.confidential.unwrap_or(true),
                    trusted: da.trusted.unwrap_or(false),
                    grant_types: da.grant_types.clone(),
                    owner: da.owner.clone(),
                    application_id: da.application_id.clone(),
                    secrets,
                });
                continue;
            };
            if let Some(other) = matched.insert(stored.app.id, &da.label) {
                return err(
                    &da.label,
                    "application_id",
                    format!("is the same application as {other}'s"),
                );
            }
            self.update_application(da, stored, owner_ids, secrets);
        }
        Ok(matched.into_keys().collect())
    }

    fn update_application(
        &mut self,
        da: &DesiredApplication,
        stored: &StoredApplication,
        owner_ids: Option<(Option<i64>, Option<i64>)>,
        secrets: Option<Vec<DesiredSecret>>,
    ) {
        let a = &stored.app;
        let mut update = ApplicationUpdate::default();
        let mut fields = Vec::new();
        if da.name != a.name {
            update.name = Some(da.name.clone());
            fields.push("name");
        }
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        if words(&da.redirect_uri) != words(&a.redirect_uri) {
            update.redirect_uri = Some(da.redirect_uri.clone());
            fields.push("redirect_uri");
        }
        if !same_scopes(&da.scopes, &a.scopes) {
            update.scopes = Some(da.scopes.clone());
            fields.push("scopes");
        }
        if let Some(c) = da.confidential.filter(|c| *c != a.confidential) {
            update.confidential = Some(c);
            fields.push("confidential");
        }
        if let Some(t) = da.trusted.filter(|t| *t != a.trusted) {
            update.trusted = Some(t);
            fields.push("trusted");
        }
        if let Some(g) = &da.grant_types {
            if a.effective_grant_types() != g.iter().map(String::as_str).collect::<Vec<_>>() {
                update.grant_types = Some(g.clone());
                fields.push("grant_types");
            }
        }
        let owner = (owner_ids != Some((a.owner_id, a.group_id))).then(|| da.owner.clone());
        if owner.is_some() {
            fields.push("owner");
        }
        if !fields.is_empty() {
            self.push(Step::UpdateApplication {
                id: a.id,
                name: da.name.clone(),
                update,
                owner,
                fields,
            });
        }
        if let Some(want) = secrets {
            let now = self.settings.now;
            let differs = {
                let mut have: Vec<(&str, Option<i64>)> = stored
                    .secrets
                    .iter()
                    .filter(|s| s.is_live(now))
                    .map(|s| (s.digest.as_str(), s.expires_at))
                    .collect();
                let mut wanted: Vec<(&str, Option<i64>)> = want
                    .iter()
                    .map(|s| (s.digest.as_str(), s.expires_at))
                    .collect();
                have.sort_unstable();
                wanted.sort_unstable();
                have != wanted
            };
            if differs {
                self.push(Step::ReplaceSecrets {
                    id: a.id,
                    name: da.name.clone(),
                    secrets: want,
                });
            }
        }
    }

    /// Deletions: applications, groups (subgroups first), then users.
    fn prune(&mut self, desired: &Desired, matched: &HashSet<i64>) -> Result<(), StateError> {
        if desired.applications.is_some() {
            for a in &self.current.applications {
                if !matched.contains(&a.app.id) {
                    self.plan.steps.push(Step::DeleteApplication {
                        id: a.app.id,
                        name: a.app.name.clone(),
                        application_id: a.app.application_id.clone(),
                    });
                }
            }
        }
        if desired.groups.is_some() {
            let mut gone: Vec<_> = self
                .current
                .groups
                .iter()
                .filter(|g| !self.desired_groups.contains(&lower(&g.full_path)))
                .collect();
            gone.sort_by_key(|g| std::cmp::Reverse(g.full_path.matches('/').count()));
            for g in gone {
                // Its applications, unless the file manages applications
                // (then each unlisted one has a step of its own).
                let apps = if desired.applications.is_some() {
                    0
                } else {
                    self.current
                        .applications
                        .iter()
                        .filter(|a| a.app.group_id == Some(g.id))
                        .count()
                };
                self.plan.steps.push(Step::DeleteGroup {
                    id: g.id,
                    full_path: g.full_path.clone(),
                    with: going_with("its", &[(apps, "application")]),
                });
            }
        }
        if desired.users.is_some() {
            for s in &self.current.users {
                let key = lower(&s.user.username);
                if key != "root" && !self.desired_users.contains(&key) {
                    let id = s.user.id;
                    let apps = if desired.applications.is_some() {
                        0
                    } else {
                        self.current
                            .applications
                            .iter()
                            .filter(|a| a.app.owner_id == Some(id))
                            .count()
                    };
                    let tokens = self
                        .current
                        .tokens
                        .iter()
                        .filter(|t| t.token.user_id == id && !t.token.revoked)
                        .count();
                    self.plan.steps.push(Step::DeleteUser {
                        id,
                        username: s.user.username.clone(),
                        with: going_with(
                            "their",
                            &[(apps, "application"), (tokens, "personal access token")],
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
