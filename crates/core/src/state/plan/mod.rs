//! Comparing what a state file wants with what is stored: the steps that
//! make them agree, in the order they can run (users before the tokens,
//! memberships and applications that name them; parents before subgroups;
//! deletions last). Pure: no store, no clock.

mod applications;
mod groups;
mod step;
mod users;

pub use step::Step;

use std::collections::{HashMap, HashSet};

use time::Date;

use crate::group::Visibility;
use crate::scopes::Scopes;

use super::check::{Owner, StateError};
use super::{Current, Desired};
use step::going_with;

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
    /// Applied at a server's start (`serve --seed`): what a user changed
    /// since and the file cannot undo (a token revoked) is left out with a
    /// note, so that the server still starts.
    pub seeding: bool,
    pub now: i64,
    pub today: Date,
    pub default_visibility: Visibility,
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

    /// The stored owner ids of `owner`, if it is stored.
    fn stored_owner(&self, owner: &Owner) -> Option<(Option<i64>, Option<i64>)> {
        match owner {
            Owner::Instance => Some((None, None)),
            Owner::User(u) => self.users.get(&lower(u)).map(|id| (Some(*id), None)),
            Owner::Group(g) => self.groups.get(&lower(g)).map(|id| (None, Some(*id))),
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
                        owner_id: a.app.owner_id,
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
