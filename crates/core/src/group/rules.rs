//! What makes a group's name, path and visibility valid, and who may do
//! what with a group.

use super::{level, Group, Visibility};
use crate::application::ValidationErrors;
use crate::user::is_reserved_name;

/// The longest group name and path (GitLab's column limits).
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_PATH_CHARS: usize = 255;
/// How many ancestors a group may have (GitLab's
/// `Namespace::NUMBER_OF_ANCESTORS_ALLOWED`).
pub const MAX_ANCESTORS: usize = 20;
/// The longest description (GitLab's).
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A group's attributes on creation, after the API layer's checks.
#[derive(Debug, Clone, Default)]
pub struct GroupParams {
    pub name: String,
    pub path: String,
    pub parent_id: Option<i64>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub avatar: Option<crate::user::Avatar>,
}

/// GitLab's group name rule (`Gitlab::Regex.group_name_regex`): letters,
/// digits, emoji, `_`, `.`, dashes, spaces and parentheses, starting with
/// a letter, digit, emoji or `_`.
pub fn check_group_name(name: &str, errors: &mut ValidationErrors) {
    if name.trim().is_empty() {
        errors.add("name", "can't be blank");
        return;
    }
    if name.chars().count() > MAX_NAME_CHARS {
        errors.add(
            "name",
            format!("is too long (maximum is {MAX_NAME_CHARS} characters)"),
        );
        return;
    }
    let emoji = |c: char| ('\u{00A9}'..='\u{1F9FF}').contains(&c);
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || emoji(c));
    let rest_ok = name.chars().all(|c| {
        c.is_alphanumeric()
            || emoji(c)
            || matches!(
                c,
                '_' | '.' | ' ' | '(' | ')' | '-' | '\u{2010}'..='\u{2015}'
            )
    });
    if !first_ok || !rest_ok || name.ends_with(' ') {
        errors.add(
            "name",
            "can contain only letters, digits, emoji, '_', '.', dash, space, parenthesis. \
             It must start with letter, digit, emoji or '_'.",
        );
    }
}

/// GitLab's namespace path rule (`Gitlab::PathRegex.namespace_format_regex`
/// and `NamespacePathValidator`): letters, digits, `_`, `-`, `.`; not
/// starting with `-`, not ending in `.git` or `.atom`; a top-level path may
/// not be one of the names GitLab reserves (the same as usernames).
pub fn check_group_path(path: &str, top_level: bool, errors: &mut ValidationErrors) {
    if path.is_empty() {
        errors.add("path", "can't be blank");
        return;
    }
    if path.chars().count() > MAX_PATH_CHARS {
        errors.add(
            "path",
            format!("is too long (maximum is {MAX_PATH_CHARS} characters)"),
        );
        return;
    }
    let chars_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let start_ok = !path.starts_with('-');
    let end_ok = path
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    let lower = path.to_ascii_lowercase();
    if !chars_ok || !start_ok || !end_ok || lower.ends_with(".git") || lower.ends_with(".atom") {
        errors.add(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-', \
             end in '.git' or end in '.atom'",
        );
        return;
    }
    if (top_level && is_reserved_name(path)) || path == "-" {
        errors.add("path", format!("{path} is a reserved name"));
    }
}

pub fn check_description(description: &str, errors: &mut ValidationErrors) {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.add(
            "description",
            format!("is too long (maximum is {MAX_DESCRIPTION_CHARS} characters)"),
        );
    }
}

/// A new subgroup of `parent` may not have more than [`MAX_ANCESTORS`].
pub fn check_depth(parent: &Group, errors: &mut ValidationErrors) {
    if parent.full_path.split('/').count() > MAX_ANCESTORS {
        errors.add("parent_id", "has too deep level of nesting");
    }
}

/// A subgroup may not be more visible than its parent.
pub fn check_visibility(
    visibility: Visibility,
    parent: Option<&Group>,
    errors: &mut ValidationErrors,
) {
    if let Some(parent) = parent {
        if visibility > parent.visibility {
            errors.add(
                "visibility_level",
                format!(
                    "{} is not allowed since the parent group has a {} visibility.",
                    visibility.as_str(),
                    parent.visibility.as_str()
                ),
            );
        }
    }
}

/// A membership's expiry: a date (`YYYY-MM-DD`) after today; returned
/// in its canonical form.
pub fn check_expires_at(date: &str, today: time::Date) -> Result<String, &'static str> {
    let Ok(day) = crate::token::parse_expiry(date) else {
        return Err("is invalid");
    };
    if day <= today {
        return Err("cannot be a date in the past");
    }
    Ok(day_text(day))
}

/// A date as stored and shown: `YYYY-MM-DD`.
pub fn day_text(day: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// What the acting user is to one group: an administrator, their access
/// there (through memberships of it or an ancestor), and whether its
/// visibility alone lets them see it (public; internal, to users who are
/// not external).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRole {
    pub admin: bool,
    pub access: Option<i32>,
    pub visible: bool,
}

impl GroupRole {
    fn at_least(&self, wanted: i32) -> bool {
        self.admin || self.access.is_some_and(|a| a >= wanted)
    }

    /// See the group, its subgroups and members (`read_group`).
    pub fn may_read(&self) -> bool {
        self.admin || self.visible || self.access.is_some()
    }

    /// Change or delete the group, manage its applications, and make or
    /// remove Owners (`admin_group`: Owners).
    pub fn may_administer(&self) -> bool {
        self.at_least(level::OWNER)
    }

    /// Add, change and remove members below Owner (`admin_group_member`).
    pub fn may_manage_members(&self) -> bool {
        self.at_least(level::OWNER)
    }

    /// Create subgroups (`create_subgroup`: Maintainers, GitLab's default
    /// subgroup creation level).
    pub fn may_create_subgroup(&self) -> bool {
        self.at_least(level::MAINTAINER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(f: impl FnOnce(&mut ValidationErrors)) -> String {
        let mut e = ValidationErrors::default();
        f(&mut e);
        e.to_string()
    }

    #[test]
    fn paths() {
        for ok in ["platform", "a", "my-group", "my_group", "v1.2", "_x", "x_"] {
            assert_eq!(errors_of(|e| check_group_path(ok, true, e)), "", "{ok}");
        }
        for bad in ["-x", "a b", "x.git", "X.Atom", "x.", "é", "a/b", ""] {
            assert_ne!(errors_of(|e| check_group_path(bad, true, e)), "", "{bad}");
        }
        assert_eq!(
            errors_of(|e| check_group_path("Admin", true, e)),
            "path Admin is a reserved name"
        );
        assert_eq!(errors_of(|e| check_group_path("admin", false, e)), "");
        assert_ne!(errors_of(|e| check_group_path("-", false, e)), "");
    }

    #[test]
    fn names() {
        for ok in ["Platform", "My Group (EU)", "a.b-c_d", "Équipe", "_x"] {
            assert_eq!(errors_of(|e| check_group_name(ok, e)), "", "{ok}");
        }
        for bad in ["", "  ", "-x", "a/b", "x<script>", "trailing "] {
            assert_ne!(errors_of(|e| check_group_name(bad, e)), "", "{bad}");
        }
    }

    #[test]
    fn expiry() {
        let today = time::macros::date!(2026 - 12 - 02);
        assert_eq!(
            check_expires_at("2026-12-03", today),
            Ok("2026-12-03".to_owned())
        );
        assert!(check_expires_at("2026-12-02", today).is_err());
        assert!(check_expires_at("2026-13-01", today).is_err());
        assert!(check_expires_at("tomorrow", today).is_err());
    }

    #[test]
    fn roles() {
        let owner = GroupRole {
            admin: false,
            access: Some(level::OWNER),
            visible: true,
        };
        let maintainer = GroupRole {
            access: Some(level::MAINTAINER),
            ..owner
        };
        let stranger = GroupRole {
            access: None,
            visible: false,
            ..owner
        };
        let admin = GroupRole {
            admin: true,
            ..stranger
        };
        assert!(owner.may_administer() && owner.may_create_subgroup());
        assert!(!maintainer.may_administer() && maintainer.may_create_subgroup());
        assert!(!stranger.may_read() && !stranger.may_create_subgroup());
        assert!(admin.may_read() && admin.may_administer());
    }
}
