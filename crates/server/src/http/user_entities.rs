//! GitLab's user entities, from least to most shown (`lib/api/entities/`):
//! `UserBasic` (lists for everyone), `User` (a public profile), `UserPublic`
//! (what a user sees of themselves), `UserWithAdmin` (what administrators
//! see). Each is the one before it with more fields.

use latchkey_core::clock::gitlab_timestamp;
use latchkey_core::user::User;
use serde::Serialize;

/// What entities link to: the external URL, and whether users without an
/// avatar of their own get a Gravatar URL (`LATCHKEY_GRAVATAR`).
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    pub base: &'a str,
    pub gravatar: bool,
}

/// The path an uploaded avatar is served at (GitLab's).
pub fn avatar_path(user_id: i64, file_name: &str) -> String {
    format!("/uploads/-/system/user/avatar/{user_id}/{file_name}")
}

/// GitLab's `avatar_url`: the uploaded picture, else a Gravatar (by the
/// SHA-256 of the email, which Gravatar accepts), else none.
fn avatar_url(u: &User, links: &Links<'_>) -> Option<String> {
    if let Some(file) = &u.avatar {
        return Some(format!(
            "{}{}",
            links.base.trim_end_matches('/'),
            avatar_path(u.id, file)
        ));
    }
    links.gravatar.then(|| {
        let hash = latchkey_core::secret::digest(&u.email.trim().to_lowercase());
        format!("https://www.gravatar.com/avatar/{hash}?s=80&d=identicon")
    })
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// GitLab's `UserBasic`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBasic<'a> {
    pub id: i64,
    pub username: &'a str,
    pub name: &'a str,
    #[schema(value_type = String, examples("active", "blocked"))]
    pub state: &'static str,
    pub locked: bool,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    pub web_url: String,
}

impl<'a> UserBasic<'a> {
    pub fn new(u: &'a User, links: &Links<'_>) -> Self {
        Self {
            id: u.id,
            username: &u.username,
            name: &u.name,
            state: u.state.as_str(),
            locked: false,
            avatar_url: avatar_url(u, links),
            web_url: format!("{}/{}", links.base.trim_end_matches('/'), u.username),
        }
    }
}

/// GitLab's `User`: a public profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserProfile<'a> {
    #[serde(flatten)]
    pub basic: UserBasic<'a>,
    pub created_at: String,
    pub bio: &'a str,
    pub location: &'a str,
    #[schema(required = true)]
    pub public_email: Option<&'a str>,
    pub skype: &'a str,
    pub linkedin: &'a str,
    pub twitter: &'a str,
    pub discord: &'a str,
    pub website_url: &'a str,
    pub organization: &'a str,
    pub job_title: &'a str,
    #[schema(required = true)]
    pub pronouns: Option<&'a str>,
    pub bot: bool,
    #[schema(required = true)]
    pub work_information: Option<String>,
    pub followers: u32,
    pub following: u32,
    #[schema(required = true)]
    pub local_time: Option<&'a str>,
}

impl<'a> UserProfile<'a> {
    pub fn new(u: &'a User, links: &Links<'_>) -> Self {
        let p = &u.profile;
        let work = match (opt(&p.job_title), opt(&p.organization)) {
            (Some(job), Some(org)) => Some(format!("{job} at {org}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        };
        Self {
            basic: UserBasic::new(u, links),
            created_at: gitlab_timestamp(u.created_at),
            bio: &p.bio,
            location: &p.location,
            public_email: opt(&p.public_email),
            skype: &p.skype,
            linkedin: &p.linkedin,
            twitter: &p.twitter,
            discord: &p.discord,
            website_url: &p.website_url,
            organization: &p.organization,
            job_title: &p.job_title,
            pronouns: opt(&p.pronouns),
            bot: false,
            work_information: work,
            followers: 0,
            following: 0,
            local_time: None,
        }
    }
}

/// GitLab's `UserPublic`: what a user sees of themselves (latchkey adds
/// `is_admin`, which GitLab shows only to administrators).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPublic<'a> {
    #[serde(flatten)]
    pub profile: UserProfile<'a>,
    #[schema(required = true)]
    pub last_sign_in_at: Option<String>,
    pub confirmed_at: String,
    #[schema(required = true)]
    pub last_activity_on: Option<String>,
    pub email: &'a str,
    pub theme_id: i64,
    pub color_scheme_id: i64,
    pub projects_limit: i64,
    #[schema(required = true)]
    pub current_sign_in_at: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub identities: [(); 0],
    pub can_create_group: bool,
    pub can_create_project: bool,
    pub two_factor_enabled: bool,
    pub external: bool,
    pub private_profile: bool,
    pub commit_email: &'a str,
    pub is_admin: bool,
}

impl<'a> UserPublic<'a> {
    pub fn new(u: &'a User, links: &Links<'_>) -> Self {
        Self {
            profile: UserProfile::new(u, links),
            last_sign_in_at: None,
            confirmed_at: gitlab_timestamp(u.created_at),
            last_activity_on: None,
            email: &u.email,
            theme_id: u.profile.theme_id(),
            color_scheme_id: u.profile.color_scheme_id(),
            projects_limit: u.profile.projects_limit(),
            current_sign_in_at: None,
            identities: [],
            can_create_group: u.profile.can_create_group(),
            can_create_project: u.profile.projects_limit() > 0,
            two_factor_enabled: false,
            external: u.external,
            private_profile: u.profile.private_profile,
            commit_email: opt(&u.profile.commit_email).unwrap_or(&u.email),
            is_admin: u.admin,
        }
    }
}

/// GitLab's `UserWithAdmin`: what administrators see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserWithAdmin<'a> {
    #[serde(flatten)]
    pub public: UserPublic<'a>,
    #[schema(required = true)]
    pub note: Option<&'a str>,
    #[schema(required = true)]
    pub namespace_id: Option<i64>,
    #[schema(required = true, value_type = Option<Object>)]
    pub created_by: Option<()>,
}

impl<'a> UserWithAdmin<'a> {
    pub fn new(u: &'a User, links: &Links<'_>) -> Self {
        Self {
            public: UserPublic::new(u, links),
            note: opt(&u.profile.note),
            namespace_id: None,
            created_by: None,
        }
    }
}
