//! OAuth scopes: the server's configured set, GitLab's normalisation
//! (split on whitespace, drop duplicates, keep first-seen order) and
//! Doorkeeper's dynamic scopes (`user:*` admits `user:<anything>`).
//!
//! Everything here is linear in its input: scope lists arrive before
//! authentication (`/oauth/authorize`, the device and password grants,
//! registration), so a list is deduplicated through a hash set, and a
//! list's length and each scope's length are capped ([`MAX_SCOPES`],
//! [`MAX_SCOPE_BYTES`]).

use std::collections::HashSet;

/// The most scopes one application, token or request may carry (GitLab
/// knows about 25).
pub const MAX_SCOPES: usize = 100;
/// The longest scope accepted, in bytes.
pub const MAX_SCOPE_BYTES: usize = 255;

/// GitLab's scope list, in the order GitLab's discovery document
/// advertises it.
pub const GITLAB_SCOPES: &[&str] = &[
    "api",
    "read_api",
    "read_user",
    "create_runner",
    "manage_runner",
    "k8s_proxy",
    "self_rotate",
    "mcp",
    "read_repository",
    "write_repository",
    "read_registry",
    "write_registry",
    "read_virtual_registry",
    "write_virtual_registry",
    "read_observability",
    "write_observability",
    "ai_features",
    "sudo",
    "admin_mode",
    "read_service_ping",
    "openid",
    "profile",
    "email",
    "ai_workflows",
    "user:*",
];

/// The scopes this server (or an application) accepts: exact names in a
/// hash set, and the prefixes of dynamic `prefix:*` entries.
#[derive(Debug, Clone)]
pub struct ScopeSet {
    names: Vec<String>,
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl PartialEq for ScopeSet {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

impl Eq for ScopeSet {}

impl Default for ScopeSet {
    fn default() -> Self {
        Self::from_names(GITLAB_SCOPES.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl ScopeSet {
    /// A configured set. Names are normalised like scopes themselves.
    pub fn new<I, S>(names: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        let names: Vec<S> = names.into_iter().collect();
        for n in &names {
            for part in n.as_ref().split_whitespace() {
                if !is_scope_token(part) {
                    return Err(format!("invalid scope name {part:?}"));
                }
                if seen.insert(part) {
                    out.push(part.to_owned());
                }
            }
        }
        if out.is_empty() {
            return Err("the scope set is empty".to_owned());
        }
        Ok(Self::from_names(out))
    }

    /// The set of an application's (already normalised) scopes.
    pub fn of(scopes: &Scopes) -> Self {
        Self::from_names(scopes.0.clone())
    }

    fn from_names(names: Vec<String>) -> Self {
        let prefixes = names
            .iter()
            .filter_map(|n| n.strip_suffix('*'))
            .filter(|p| p.ends_with(':'))
            .map(str::to_owned)
            .collect();
        Self {
            exact: names.iter().cloned().collect(),
            prefixes,
            names,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Is `scope` in the set, directly or through a dynamic `prefix:*` entry?
    pub fn allows(&self, scope: &str) -> bool {
        self.exact.contains(scope)
            || self
                .prefixes
                .iter()
                .any(|prefix| scope.len() > prefix.len() && scope.starts_with(prefix.as_str()))
    }
}

/// Why a list of scopes was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// No scope at all.
    Empty,
    /// A scope the set does not allow (the first one).
    Unknown(String),
    /// More than [`MAX_SCOPES`] distinct scopes.
    TooMany,
    /// A scope longer than [`MAX_SCOPE_BYTES`].
    TooLong,
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("no scope was given"),
            Self::Unknown(s) => write!(f, "the scope {s:?} is not allowed"),
            Self::TooMany => write!(f, "too many scopes (at most {MAX_SCOPES})"),
            Self::TooLong => write!(f, "a scope is too long (at most {MAX_SCOPE_BYTES} bytes)"),
        }
    }
}

/// RFC 6749 scope-token characters: printable ASCII except space, `"` and `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// A normalised, non-empty, validated list of scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Split on whitespace and drop duplicates, as Doorkeeper does on
    /// assignment, keeping first-seen order. May be empty. Linear.
    pub fn normalise(raw: &str) -> Vec<String> {
        Self::normalise_all(raw.split_whitespace())
    }

    /// [`Self::normalise`] over scopes that arrive one by one (an array
    /// parameter); each item may itself hold several.
    pub fn normalise_all<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for part in items.into_iter().flat_map(str::split_whitespace) {
            if seen.insert(part) {
                out.push(part.to_owned());
            }
        }
        out
    }

    /// Check a normalised list: not empty, at most [`MAX_SCOPES`], each at
    /// most [`MAX_SCOPE_BYTES`] and allowed by `set`.
    pub fn check(list: Vec<String>, set: &ScopeSet) -> Result<Self, ScopeError> {
        if list.is_empty() {
            return Err(ScopeError::Empty);
        }
        if list.len() > MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        if list.iter().any(|s| s.len() > MAX_SCOPE_BYTES) {
            return Err(ScopeError::TooLong);
        }
        if let Some(bad) = list.iter().find(|s| !set.allows(s)) {
            return Err(ScopeError::Unknown(bad.clone()));
        }
        Ok(Self(list))
    }

    /// Normalise and check `raw` (see [`Self::check`]). Stops reading at
    /// the first scope past [`MAX_SCOPES`]: a huge list costs no more than
    /// a slightly too long one.
    pub fn checked(raw: &str, set: &ScopeSet) -> Result<Self, ScopeError> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for part in raw.split_whitespace() {
            if seen.insert(part) {
                if out.len() == MAX_SCOPES {
                    return Err(ScopeError::TooMany);
                }
                out.push(part.to_owned());
            }
        }
        Self::check(out, set)
    }

    /// Is every scope of `self` also in `other`?
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        let theirs: HashSet<&str> = other.0.iter().map(String::as_str).collect();
        self.0.iter().all(|s| theirs.contains(s.as_str()))
    }

    /// The scopes of `self` that `set` allows, in `self`'s order.
    pub fn allowed_by(&self, set: &ScopeSet) -> Scopes {
        Self(self.0.iter().filter(|s| set.allows(s)).cloned().collect())
    }

    /// Trusted input (already stored): normalise without checking.
    pub fn from_stored(raw: &str) -> Self {
        Self(Self::normalise(raw))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// The stored form: one space between scopes.
    pub fn joined(&self) -> String {
        self.0.join(" ")
    }
}

/// What a scope lets an application do, in plain words (GitLab's texts).
pub fn describe(scope: &str) -> String {
    let text = match scope {
        "api" => "Read and write everything your account can reach through the API.",
        "read_api" => "Read everything your account can reach through the API.",
        "read_user" => "Read your profile: username, public email and full name.",
        "create_runner" => "Create runners.",
        "manage_runner" => "Manage runners.",
        "k8s_proxy" => "Use the Kubernetes API through the agent for Kubernetes.",
        "self_rotate" => "Rotate this access token.",
        "mcp" => "Use the Model Context Protocol server.",
        "read_repository" => "Read repositories.",
        "write_repository" => "Read and write repositories.",
        "read_registry" => "Read container registry images.",
        "write_registry" => "Read and write container registry images.",
        "read_virtual_registry" => "Read virtual registries.",
        "write_virtual_registry" => "Read and write virtual registries.",
        "read_observability" => "Read observability data.",
        "write_observability" => "Write observability data.",
        "ai_features" => "Use AI features.",
        "sudo" => "Act as any user, when your account is an administrator's.",
        "admin_mode" => "Act as an administrator, when Admin Mode is on.",
        "read_service_ping" => "Read Service Ping data.",
        "openid" => "Sign you in with OpenID Connect.",
        "profile" => "Read your profile through OpenID Connect.",
        "email" => "Read your primary email address through OpenID Connect.",
        "ai_workflows" => "Run AI workflows.",
        other => return format!("Use the \"{other}\" permission."),
    };
    text.to_owned()
}

/// What kind of access a scope grants, to group scopes where a person
/// decides (the consent page), most consequential first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Acting as an administrator or as other users.
    Administration,
    /// Changing things: writing through the API or to repositories and registries.
    Write,
    /// Reading things.
    Read,
    /// Knowing who you are (OpenID Connect).
    Identity,
    /// Anything else (runners, agents, AI features).
    Other,
}

impl Access {
    /// The kind of access `scope` grants.
    pub fn of(scope: &str) -> Self {
        match scope {
            "sudo" | "admin_mode" => Self::Administration,
            "api" | "self_rotate" => Self::Write,
            "read_api" | "read_user" | "read_service_ping" => Self::Read,
            "openid" | "profile" | "email" => Self::Identity,
            s if s.starts_with("write_") => Self::Write,
            s if s.starts_with("read_") => Self::Read,
            _ => Self::Other,
        }
    }

    /// The heading of its group, in plain words.
    pub fn heading(self) -> &'static str {
        match self {
            Self::Administration => "Act as an administrator or as other users",
            Self::Write => "Read and change your data",
            Self::Read => "Read your data",
            Self::Identity => "Know who you are",
            Self::Other => "Other access",
        }
    }
}

/// `scopes` grouped by the access they grant, most consequential group
/// first, each scope with its description; scopes keep their order within
/// a group.
pub fn grouped<'a>(
    scopes: impl IntoIterator<Item = &'a str>,
) -> Vec<(Access, Vec<(String, String)>)> {
    let mut groups: Vec<(Access, Vec<(String, String)>)> = Vec::new();
    for scope in scopes {
        let access = Access::of(scope);
        let entry = (scope.to_owned(), describe(scope));
        match groups.iter_mut().find(|(a, _)| *a == access) {
            Some((_, list)) => list.push(entry),
            None => groups.push((access, vec![entry])),
        }
    }
    groups.sort_by_key(|(a, _)| *a);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_grouped_by_the_access_they_grant() {
        let groups = grouped([
            "openid",
            "read_user",
            "api",
            "email",
            "write_repository",
            "sudo",
            "k8s_proxy",
        ]);
        let shape: Vec<(Access, Vec<&str>)> = groups
            .iter()
            .map(|(a, l)| (*a, l.iter().map(|(s, _)| s.as_str()).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Access::Administration, vec!["sudo"]),
                (Access::Write, vec!["api", "write_repository"]),
                (Access::Read, vec!["read_user"]),
                (Access::Identity, vec!["openid", "email"]),
                (Access::Other, vec!["k8s_proxy"]),
            ]
        );
        assert_eq!(groups[3].1[0].1, describe("openid"));
    }

    #[test]
    fn normalises_like_doorkeeper() {
        let set = ScopeSet::default();
        let cases: &[(&str, Option<&str>)] = &[
            ("api", Some("api")),
            ("api  read_user api", Some("api read_user")),
            ("\tapi\nread_user ", Some("api read_user")),
            ("api read_user email", Some("api read_user email")),
            ("", None),
            ("   ", None),
            ("non_existent_scope", None),
            ("api non_existent_scope", None),
            ("user:*", Some("user:*")),
            ("api user:42", Some("api user:42")),
            ("user:", None),
            ("user", None),
            ("API", None),
        ];
        for (raw, want) in cases {
            let got = Scopes::checked(raw, &set).ok().map(|s| s.joined());
            assert_eq!(got.as_deref(), *want, "scopes {raw:?}");
        }
    }

    #[test]
    fn configured_set_is_validated() {
        assert!(ScopeSet::new(["api read_api"]).is_ok());
        assert!(ScopeSet::new(Vec::<String>::new()).is_err());
        assert!(ScopeSet::new(["bad\"scope"]).is_err());
        let set = ScopeSet::new(["api", "api", "custom:*"]).unwrap_or_default();
        assert_eq!(set.names(), &["api".to_owned(), "custom:*".to_owned()]);
        assert!(set.allows("custom:x"));
        assert!(!set.allows("read_api"));
    }

    #[test]
    fn default_set_is_gitlabs() {
        let set = ScopeSet::default();
        assert_eq!(set.names().len(), GITLAB_SCOPES.len());
        assert!(set.allows("admin_mode"));
        assert!(set.allows("mcp"));
    }
}
