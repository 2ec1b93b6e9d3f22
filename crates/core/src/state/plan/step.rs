//! The steps of a plan, and how each reads ("create user alice").

use time::Date;

use crate::application::ApplicationUpdate;
use crate::group::{level, GroupUpdate, MembershipUpdate, Visibility};
use crate::scopes::Scopes;
use crate::user::{NewUser, UserState, UserUpdate};

use super::super::check::{DesiredSecret, Owner};

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
        /// The user who owns it now, if a user does.
        owner_id: Option<i64>,
        update: ApplicationUpdate,
        /// A new owner (resolved to ids when run).
        owner: Option<Owner>,
        fields: Vec<&'static str>,
    },
    ReplaceSecrets {
        id: i64,
        name: String,
        /// The user who owns it, if a user does.
        owner_id: Option<i64>,
        secrets: Vec<DesiredSecret>,
    },
    DeleteApplication {
        id: i64,
        name: String,
        /// The user who owns it, if a user does.
        owner_id: Option<i64>,
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
pub(super) fn going_with(whose: &str, counts: &[(usize, &str)]) -> String {
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
