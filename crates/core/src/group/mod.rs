//! Groups (GitLab's group namespaces), their members and access levels,
//! and the rules for their names and paths.

mod rules;
mod service;

pub use service::MemberRefusal;
pub(crate) use service::{group_event, member_event};

pub use rules::{
    check_depth, check_description, check_expires_at, check_group_name, check_group_path,
    check_visibility, day_text, GroupParams, GroupRole, MAX_ANCESTORS,
};

use crate::error::StoreError;
use crate::pagination::PageRequest;
use crate::user::{Avatar, User};

/// GitLab's access levels (`Gitlab::Access`).
pub mod level {
    pub const NO_ACCESS: i32 = 0;
    pub const MINIMAL_ACCESS: i32 = 5;
    pub const GUEST: i32 = 10;
    pub const PLANNER: i32 = 15;
    pub const REPORTER: i32 = 20;
    pub const DEVELOPER: i32 = 30;
    pub const MAINTAINER: i32 = 40;
    pub const OWNER: i32 = 50;

    /// The levels a membership may be given (`Gitlab::Access.all_values`).
    pub const ALL: [i32; 6] = [GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER];

    /// A level's name, as GitLab shows it.
    pub fn name(level: i32) -> &'static str {
        match level {
            MINIMAL_ACCESS => "Minimal Access",
            GUEST => "Guest",
            PLANNER => "Planner",
            REPORTER => "Reporter",
            DEVELOPER => "Developer",
            MAINTAINER => "Maintainer",
            OWNER => "Owner",
            _ => "No access",
        }
    }
}

/// Who may see a group besides its members (`Gitlab::VisibilityLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Visibility {
    #[default]
    Private,
    Internal,
    Public,
}

impl Visibility {
    pub const ALL: [Visibility; 3] = [Self::Private, Self::Internal, Self::Public];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Internal => "internal",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A group. `full_path` ("org/platform") names it in URLs and claims;
/// `full_name` ("Org / Platform") is its name with its ancestors'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub path: String,
    pub full_path: String,
    pub full_name: String,
    pub description: String,
    pub visibility: Visibility,
    pub created_at: i64,
    pub updated_at: i64,
    /// The file name its uploaded avatar is served under, if it has one.
    pub avatar: Option<String>,
}

/// What the store needs to insert a group (its full path and name made
/// from its parent's by the service).
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub parent_id: Option<i64>,
    pub name: String,
    pub path: String,
    pub full_path: String,
    pub full_name: String,
    pub description: String,
    pub visibility: Visibility,
    pub created_at: i64,
    pub avatar: Option<Avatar>,
}

/// A change to a group: `None` keeps the current value. A new name or path
/// rewrites the full names and paths of the group and its descendants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub path: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    /// A new avatar (`Some(None)`: none any more).
    pub avatar: Option<Option<Avatar>>,
}

impl GroupUpdate {
    /// Would this change anything about `group`?
    pub fn changes(&self, group: &Group) -> bool {
        self.name.as_ref().is_some_and(|n| *n != group.name)
            || self.path.as_ref().is_some_and(|p| *p != group.path)
            || self
                .description
                .as_ref()
                .is_some_and(|d| *d != group.description)
            || self.visibility.is_some_and(|v| v != group.visibility)
            || match &self.avatar {
                None => false,
                Some(None) => group.avatar.is_some(),
                Some(Some(_)) => true,
            }
    }
}

/// A user's direct membership of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: i64,
    pub group_id: i64,
    pub user_id: i64,
    pub access_level: i32,
    /// The day (`YYYY-MM-DD`, UTC) the membership ends, if it does.
    pub expires_at: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A membership and its user, as member listings show them, with who
/// added them (if someone else did, and is still a user).
#[derive(Debug, Clone)]
pub struct Member {
    pub membership: Membership,
    pub user: User,
    pub creator: Option<User>,
}

#[derive(Debug, Clone)]
pub struct NewMembership {
    pub group_id: i64,
    pub user_id: i64,
    pub access_level: i32,
    pub expires_at: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// A change to a membership; `expires_at: Some(None)` removes the expiry.
#[derive(Debug, Clone, Default)]
pub struct MembershipUpdate {
    pub access_level: Option<i32>,
    pub expires_at: Option<Option<String>>,
}

/// A group a user may act in, and how: their access there (the highest
/// of their memberships of it and its ancestors), and their own
/// membership of it, if they are a member directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAccess {
    pub group_id: i64,
    pub full_path: String,
    pub access_level: i32,
    pub direct_level: Option<i32>,
}

/// Who is looking at groups, for what they may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// No credentials: public groups only.
    Anonymous,
    /// A user: the groups they have access to, their ancestors and
    /// descendants, and (when listing all that is available) public and,
    /// unless they are external, internal groups.
    User { id: i64, external: bool },
    /// An administrator sees every group.
    Admin { id: i64 },
}

impl Viewer {
    pub fn user_id(self) -> Option<i64> {
        match self {
            Self::Anonymous => None,
            Self::User { id, .. } | Self::Admin { id } => Some(id),
        }
    }
}

/// How a group listing is ordered (`order_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupOrder {
    #[default]
    Name,
    Path,
    Id,
}

impl GroupOrder {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "name" => Some(Self::Name),
            "path" => Some(Self::Path),
            "id" => Some(Self::Id),
            _ => None,
        }
    }

    /// The column sorted by (the full path, as GitLab sorts listings
    /// whose groups sit at several levels, is its own tie-breaker).
    pub fn column(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Path => "path",
            Self::Id => "id",
        }
    }
}

/// Which groups a listing shows (GitLab's `GroupsFinder` parameters).
#[derive(Debug, Clone)]
pub struct GroupFilter {
    pub viewer: Viewer,
    /// With a user: also the public (and internal) groups they are not in.
    pub all_available: bool,
    /// Only groups the viewer is a direct Owner of.
    pub owned: bool,
    /// Only groups where the viewer has at least this access.
    pub min_access_level: Option<i32>,
    /// A substring of the name or path (case-insensitive).
    pub search: Option<String>,
    /// Only the direct subgroups of this group.
    pub parent_id: Option<i64>,
    /// Only groups below this one, at any depth.
    pub descendants_of: Option<i64>,
    pub top_level_only: bool,
    pub skip_groups: Vec<i64>,
    pub visibility: Option<Visibility>,
    pub order: GroupOrder,
    pub ascending: bool,
    /// Today (`YYYY-MM-DD`, UTC): memberships expiring by today are over.
    pub today: String,
}

/// Which members a listing shows.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    /// Also the members of ancestors (`/members/all`), each user once, at
    /// their highest level.
    pub inherited: bool,
    /// A substring of the username or name (case-insensitive).
    pub query: Option<String>,
    pub user_ids: Vec<i64>,
    /// Not these users (`skip_users`).
    pub skip_users: Vec<i64>,
    pub today: String,
}

/// Groups and memberships. What the storage backends implement (see
/// [`crate::store::Store`]); writes go through a
/// [`crate::store::Transaction`].
#[async_trait::async_trait]
pub trait GroupStore: Send + Sync {
    async fn find_group(&self, id: i64) -> Result<Option<Group>, StoreError>;

    /// A group's avatar: its content type and bytes.
    async fn find_group_avatar(
        &self,
        group_id: i64,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError>;

    /// By full path, ignoring ASCII case.
    async fn find_group_by_path(&self, full_path: &str) -> Result<Option<Group>, StoreError>;

    /// One page of the groups `filter` lets through, and their total.
    async fn list_groups(
        &self,
        filter: &GroupFilter,
        page: PageRequest,
    ) -> Result<(Vec<Group>, u64), StoreError>;

    /// A user's access to a group: the highest level of their live
    /// memberships of it and its ancestors; `None` if they have none.
    async fn group_access(
        &self,
        group_id: i64,
        user_id: i64,
        today: &str,
    ) -> Result<Option<i32>, StoreError>;

    /// Every group a user has access to (directly, or through an
    /// ancestor), ordered by full path.
    async fn groups_of_user(
        &self,
        user_id: i64,
        today: &str,
    ) -> Result<Vec<GroupAccess>, StoreError>;

    /// One page of a group's members ordered by user id, and the total.
    async fn list_members(
        &self,
        group_id: i64,
        filter: &MemberFilter,
        page: PageRequest,
    ) -> Result<(Vec<Member>, u64), StoreError>;

    /// One member of a group (with `inherited`, through an ancestor too:
    /// their highest membership); memberships expiring by `today` are
    /// over (an empty `today` counts every membership).
    async fn find_member(
        &self,
        group_id: i64,
        user_id: i64,
        inherited: bool,
        today: &str,
    ) -> Result<Option<Member>, StoreError>;
}

/// Is a date-only expiry over on `today` (both `YYYY-MM-DD`)? A
/// membership ends when its expiry day begins.
pub fn expired(expires_at: Option<&str>, today: &str) -> bool {
    expires_at.is_some_and(|d| d <= today)
}
