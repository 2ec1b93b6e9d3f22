//! GitLab's group and member entities (`lib/api/entities/group.rb`,
//! `group_detail.rb`, `member.rb`), fields in GitLab's order. Settings
//! latchkey does not keep (two-factor, runners, LFS, …) show GitLab's
//! defaults, so that clients find every field they read.

use latchkey_core::application::ValidationErrors;
use latchkey_core::clock::gitlab_timestamp;
use latchkey_core::group::{Group, Member};
use serde::Serialize;
use serde_json::{json, Value};

use super::user_entities::{Links, UserBasic};

/// GitLab's `Group`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupEntity<'a> {
    pub id: i64,
    pub web_url: String,
    pub name: &'a str,
    pub path: &'a str,
    pub description: &'a str,
    pub visibility: &'static str,
    pub share_with_group_lock: bool,
    pub require_two_factor_authentication: bool,
    pub two_factor_grace_period: u32,
    pub project_creation_level: &'static str,
    #[schema(required = true)]
    pub auto_devops_enabled: Option<bool>,
    pub subgroup_creation_level: &'static str,
    pub emails_disabled: bool,
    pub emails_enabled: bool,
    #[schema(required = true)]
    pub mentions_disabled: Option<bool>,
    pub lfs_enabled: bool,
    pub math_rendering_limits_enabled: bool,
    pub lock_math_rendering_limits_enabled: bool,
    #[schema(required = true)]
    pub default_branch: Option<&'static str>,
    pub default_branch_protection: u32,
    #[schema(value_type = Object)]
    pub default_branch_protection_defaults: Value,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    pub request_access_enabled: bool,
    pub full_name: &'a str,
    pub full_path: &'a str,
    pub created_at: String,
    #[schema(required = true)]
    pub parent_id: Option<i64>,
    pub organization_id: i64,
    pub shared_runners_setting: &'static str,
    #[schema(required = true)]
    pub max_artifacts_size: Option<u64>,
}

/// Where a group is shown in the browser.
pub fn group_web_url(base: &str, group: &Group) -> String {
    format!("{}/groups/{}", base.trim_end_matches('/'), group.full_path)
}

impl<'a> GroupEntity<'a> {
    pub fn new(g: &'a Group, base: &str) -> Self {
        Self {
            id: g.id,
            web_url: group_web_url(base, g),
            name: &g.name,
            path: &g.path,
            description: &g.description,
            visibility: g.visibility.as_str(),
            share_with_group_lock: false,
            require_two_factor_authentication: false,
            two_factor_grace_period: 48,
            project_creation_level: "developer",
            auto_devops_enabled: None,
            subgroup_creation_level: "maintainer",
            emails_disabled: false,
            emails_enabled: true,
            mentions_disabled: None,
            lfs_enabled: true,
            math_rendering_limits_enabled: true,
            lock_math_rendering_limits_enabled: false,
            default_branch: None,
            default_branch_protection: 2,
            default_branch_protection_defaults: json!({
                "allowed_to_push": [{"access_level": 40}],
                "allow_force_push": false,
                "allowed_to_merge": [{"access_level": 40}],
                "developer_can_initial_push": false,
            }),
            avatar_url: g.avatar.as_ref().map(|file| {
                format!(
                    "{}/uploads/-/system/group/avatar/{}/{file}",
                    base.trim_end_matches('/'),
                    g.id
                )
            }),
            request_access_enabled: true,
            full_name: &g.full_name,
            full_path: &g.full_path,
            created_at: gitlab_timestamp(g.created_at),
            parent_id: g.parent_id,
            organization_id: 1,
            shared_runners_setting: "enabled",
            max_artifacts_size: None,
        }
    }
}

/// GitLab's `GroupDetail`: the group, with whom it is shared (nobody
/// here) and, where GitLab lists them, its projects (latchkey keeps none).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupDetail<'a> {
    #[serde(flatten)]
    pub group: GroupEntity<'a>,
    #[schema(value_type = Vec<Object>)]
    pub shared_with_groups: [(); 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>, nullable = false)]
    pub projects: Option<[(); 0]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>, nullable = false)]
    pub shared_projects: Option<[(); 0]>,
}

impl<'a> GroupDetail<'a> {
    pub fn new(g: &'a Group, base: &str, with_projects: bool) -> Self {
        Self {
            group: GroupEntity::new(g, base),
            shared_with_groups: [],
            projects: with_projects.then_some([]),
            shared_projects: with_projects.then_some([]),
        }
    }
}

/// GitLab's `Member`: the user (`id` is theirs, not the membership's),
/// then the membership.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberEntity<'a> {
    #[serde(flatten)]
    pub user: UserBasic<'a>,
    pub access_level: i32,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub created_by: Option<UserBasic<'a>>,
    #[schema(required = true)]
    pub expires_at: Option<&'a str>,
    pub membership_state: &'static str,
}

impl<'a> MemberEntity<'a> {
    pub fn new(m: &'a Member, links: &Links<'_>) -> Self {
        Self {
            user: UserBasic::new(&m.user, links),
            access_level: m.membership.access_level,
            created_at: gitlab_timestamp(m.membership.created_at),
            created_by: m.creator.as_ref().map(|u| UserBasic::new(u, links)),
            expires_at: m.membership.expires_at.as_deref(),
            membership_state: "active",
        }
    }
}

/// Model errors as Ruby prints a Hash (`{:path=>["has already been
/// taken"]}`): GitLab's `POST /groups` puts them into its message.
pub fn ruby_inspect(errors: &ValidationErrors) -> String {
    fn quoted(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    let fields: Vec<String> = errors
        .fields()
        .iter()
        .map(|(field, messages)| {
            let list: Vec<String> = messages.iter().map(|m| quoted(m)).collect();
            format!(":{field}=>[{}]", list.join(", "))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_as_ruby_hashes() {
        let mut e = ValidationErrors::default();
        e.add("path", "has already been taken");
        assert_eq!(ruby_inspect(&e), r#"{:path=>["has already been taken"]}"#);
        e.add("name", "can't \"be\" blank");
        assert_eq!(
            ruby_inspect(&e),
            r#"{:path=>["has already been taken"], :name=>["can't \"be\" blank"]}"#
        );
    }
}
