//! Reading GitLab's own tables, and what of them becomes a state file.
//! Only the columns named in the queries are read; any others may exist.

use std::collections::HashMap;

use anyhow::Context;
use latchkey_core::application::GRANT_TYPES;
use latchkey_core::imported;
use latchkey_core::scopes::ScopeSet;
use latchkey_core::state::{
    ApplicationEntry, DateValue, GroupEntry, MemberEntry, StateFile, TokenEntry, UserEntry, Words,
};
use latchkey_core::user;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Row};

#[derive(Clone)]
pub struct GitlabUser {
    pub id: i64,
    pub email: String,
    pub encrypted_password: Option<String>,
    pub username: String,
    pub name: Option<String>,
    pub admin: bool,
    pub state: Option<String>,
    pub user_type: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct GitlabGroup {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub parent_id: Option<i64>,
    pub visibility_level: Option<i32>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GitlabMember {
    pub access_level: i32,
    pub source_id: i64,
    pub user_id: Option<i64>,
    pub expires_at: Option<String>,
}

#[derive(Clone)]
pub struct GitlabApplication {
    pub name: String,
    pub uid: String,
    pub secret: String,
    pub redirect_uri: String,
    pub scopes: String,
    pub owner_id: Option<i64>,
    pub owner_type: Option<String>,
    pub trusted: bool,
    pub confidential: bool,
    pub ropc_enabled: bool,
}

#[derive(Clone)]
pub struct GitlabToken {
    pub user_id: i64,
    pub name: String,
    pub token_digest: String,
    pub scopes: String,
    pub expires_at: Option<String>,
}

/// What was read from GitLab's database.
#[derive(Default)]
pub struct GitlabData {
    pub users: Vec<GitlabUser>,
    pub groups: Vec<GitlabGroup>,
    pub members: Vec<GitlabMember>,
    pub applications: Vec<GitlabApplication>,
    /// `None`: not read (no `db_key_base`).
    pub tokens: Option<Vec<GitlabToken>>,
}

// Ids are `integer` or `bigint` depending on GitLab's version: read as
// bigint. Dates are formatted here, whatever the server's DateStyle.
const USERS: &str = "SELECT CAST(id AS BIGINT) AS id, email, encrypted_password, username, name,
       admin, state, CAST(user_type AS INTEGER) AS user_type FROM users ORDER BY id";
const GROUPS: &str = "SELECT CAST(id AS BIGINT) AS id, name, path,
       CAST(parent_id AS BIGINT) AS parent_id,
       CAST(visibility_level AS INTEGER) AS visibility_level, description
     FROM namespaces WHERE type = 'Group' ORDER BY id";
/// Direct group memberships, not access requests.
const MEMBERS: &str = "SELECT CAST(access_level AS INTEGER) AS access_level,
       CAST(source_id AS BIGINT) AS source_id, CAST(user_id AS BIGINT) AS user_id,
       to_char(expires_at, 'YYYY-MM-DD') AS expires_at
     FROM members
     WHERE source_type = 'Namespace' AND type = 'GroupMember' AND requested_at IS NULL
     ORDER BY id";
const APPLICATIONS: &str = "SELECT name, uid, secret, redirect_uri, scopes,
       CAST(owner_id AS BIGINT) AS owner_id, owner_type, trusted, confidential, ropc_enabled
     FROM oauth_applications ORDER BY id";
const TOKENS: &str = "SELECT CAST(user_id AS BIGINT) AS user_id, name, token_digest, scopes,
       to_char(expires_at, 'YYYY-MM-DD') AS expires_at
     FROM personal_access_tokens WHERE revoked IS NOT TRUE ORDER BY id";

/// Read GitLab's tables from `url` in one read-only snapshot.
pub async fn read(
    url: &str,
    with_tokens: bool,
    timeout: std::time::Duration,
) -> anyhow::Result<GitlabData> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("--from must be GitLab's PostgreSQL database: postgres://USER@HOST/DATABASE");
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect(url)
        .await
        .context("cannot connect to GitLab's database")?;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut data = GitlabData::default();
    for r in sqlx::query(USERS)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read GitLab's users")?
    {
        data.users.push(GitlabUser {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            encrypted_password: r.try_get("encrypted_password")?,
            username: r.try_get("username")?,
            name: r.try_get("name")?,
            admin: r.try_get::<Option<bool>, _>("admin")?.unwrap_or(false),
            state: r.try_get("state")?,
            user_type: r.try_get("user_type")?,
        });
    }
    for r in sqlx::query(GROUPS)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read GitLab's namespaces")?
    {
        data.groups.push(GitlabGroup {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            path: r.try_get("path")?,
            parent_id: r.try_get("parent_id")?,
            visibility_level: r.try_get("visibility_level")?,
            description: r.try_get("description")?,
        });
    }
    for r in sqlx::query(MEMBERS)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read GitLab's members")?
    {
        data.members.push(GitlabMember {
            access_level: r.try_get("access_level")?,
            source_id: r.try_get("source_id")?,
            user_id: r.try_get("user_id")?,
            expires_at: r.try_get("expires_at")?,
        });
    }
    for r in sqlx::query(APPLICATIONS)
        .fetch_all(&mut *tx)
        .await
        .context("cannot read GitLab's oauth_applications")?
    {
        data.applications.push(GitlabApplication {
            name: r.try_get("name")?,
            uid: r.try_get("uid")?,
            secret: r.try_get("secret")?,
            redirect_uri: r.try_get("redirect_uri")?,
            scopes: r
                .try_get::<Option<String>, _>("scopes")?
                .unwrap_or_default(),
            owner_id: r.try_get("owner_id")?,
            owner_type: r.try_get("owner_type")?,
            trusted: r.try_get::<Option<bool>, _>("trusted")?.unwrap_or(false),
            confidential: r
                .try_get::<Option<bool>, _>("confidential")?
                .unwrap_or(true),
            ropc_enabled: r
                .try_get::<Option<bool>, _>("ropc_enabled")?
                .unwrap_or(true),
        });
    }
    if with_tokens {
        let mut tokens = Vec::new();
        for r in sqlx::query(TOKENS)
            .fetch_all(&mut *tx)
            .await
            .context("cannot read GitLab's personal_access_tokens")?
        {
            tokens.push(GitlabToken {
                user_id: r.try_get("user_id")?,
                name: r.try_get("name")?,
                token_digest: r
                    .try_get::<Option<String>, _>("token_digest")?
                    .unwrap_or_default(),
                scopes: r
                    .try_get::<Option<String>, _>("scopes")?
                    .unwrap_or_default(),
                expires_at: r.try_get("expires_at")?,
            });
        }
        data.tokens = Some(tokens);
    }
    tx.commit().await?;
    drop(conn);
    pool.close().await;
    Ok(data)
}

/// A state file of what maps, how many of each kind, and what does not
/// map (each with its reason).
pub struct Mapped {
    pub file: StateFile,
    pub skipped: Vec<String>,
    pub bots: usize,
}

/// GitLab's serialized token scopes: a YAML list, in block style
/// (`---\n- api\n- :read_user\n`, symbols too) or flow style
/// (`[api, read_user]`).
fn yaml_scopes(raw: &str) -> Vec<String> {
    let clean = |s: &str| {
        s.trim()
            .trim_matches(|c| c == '\'' || c == '"')
            .trim_start_matches(':')
            .to_owned()
    };
    let trimmed = raw.trim().trim_start_matches("---").trim();
    let items: Vec<String> = match trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(flow) => flow.split(',').map(clean).collect(),
        None => raw
            .lines()
            .filter_map(|l| l.trim().strip_prefix('-'))
            .filter(|l| !l.starts_with('-'))
            .map(clean)
            .collect(),
    };
    items.into_iter().filter(|s| !s.is_empty()).collect()
}

fn visibility(level: Option<i32>) -> &'static str {
    match level {
        Some(20) => "public",
        Some(10) => "internal",
        _ => "private",
    }
}

/// Is `entry` valid on its own (the file's rules)? Else why not.
fn valid(file: StateFile, scopes: &ScopeSet) -> Result<(), String> {
    file.check(scopes).map(|_| ()).map_err(|e| e.to_string())
}

/// What of `data` becomes a state file, by the rules of `scopes`.
pub fn map(data: &GitlabData, scopes: &ScopeSet) -> Mapped {
    let mut m = Mapper {
        scopes,
        skipped: Vec::new(),
        usernames: HashMap::new(),
        paths: HashMap::new(),
    };
    let (mut users, bots) = m.users(data);
    m.tokens(data, &mut users);
    let groups = m.groups(data);
    let applications = m.applications(data);
    Mapped {
        file: StateFile {
            users: Some(users),
            groups: Some(groups),
            applications: Some(applications),
        },
        skipped: m.skipped,
        bots,
    }
}

struct Mapper<'a> {
    scopes: &'a ScopeSet,
    skipped: Vec<String>,
    /// Imported users and groups: GitLab id → username / full path.
    usernames: HashMap<i64, String>,
    paths: HashMap<i64, String>,
}

impl Mapper<'_> {
    /// Humans only (user_type NULL or 0): bots and the ghost user are
    /// counted and left out.
    fn users(&mut self, data: &GitlabData) -> (Vec<UserEntry>, usize) {
        let mut bots = 0;
        let mut users = Vec::new();
        for u in &data.users {
            if u.user_type.is_some_and(|t| t != 0) {
                bots += 1;
                continue;
            }
            let password_hash = match u.encrypted_password.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(h) if user::is_bcrypt_hash(h) || imported::is_pbkdf2_sha512(h) => {
                    Some(h.to_owned())
                }
                Some(_) => {
                    self.skipped.push(format!(
                        "user {}: the password hash is in a form latchkey does not know: \
                         imported without a password",
                        u.username
                    ));
                    None
                }
            };
            let entry = UserEntry {
                username: u.username.clone(),
                email: Some(u.email.clone()),
                name: u.name.clone().filter(|n| !n.trim().is_empty()),
                password_hash,
                admin: Some(u.admin),
                blocked: Some(u.state.as_deref().unwrap_or("active") != "active"),
                ..UserEntry::default()
            };
            let single = StateFile {
                users: Some(vec![entry.clone()]),
                ..StateFile::default()
            };
            match valid(single, self.scopes) {
                Ok(()) => {
                    self.usernames.insert(u.id, u.username.clone());
                    users.push(entry);
                }
                Err(e) => self.skipped.push(format!("user {}: {e}", u.username)),
            }
        }
        (users, bots)
    }

    /// Personal access tokens, under their users.
    fn tokens(&mut self, data: &GitlabData, users: &mut [UserEntry]) {
        let Some(tokens) = &data.tokens else {
            return;
        };
        let index: HashMap<String, usize> = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.username.clone(), i))
            .collect();
        for t in tokens {
            let Some(user) = self
                .usernames
                .get(&t.user_id)
                .and_then(|name| index.get(name))
                .and_then(|i| users.get_mut(*i))
            else {
                self.skipped.push(format!(
                    "token {:?}: its user ({}) is not imported",
                    t.name, t.user_id
                ));
                continue;
            };
            let entry = TokenEntry {
                name: t.name.clone(),
                scopes: Words::Many(yaml_scopes(&t.scopes)),
                gitlab_token_digest: Some(t.token_digest.clone()),
                expires_at: t.expires_at.clone().map(DateValue::Text),
                ..TokenEntry::default()
            };
            let single = StateFile {
                users: Some(vec![UserEntry {
                    tokens: Some(vec![entry.clone()]),
                    ..user.clone()
                }]),
                ..StateFile::default()
            };
            match valid(single, self.scopes) {
                Ok(()) => user.tokens.get_or_insert_with(Vec::new).push(entry),
                Err(e) => self
                    .skipped
                    .push(format!("token {:?} of {}: {e}", t.name, user.username)),
            }
        }
    }

    /// Groups, parents first; a group whose parent is not imported is not.
    fn groups(&mut self, data: &GitlabData) -> Vec<GroupEntry> {
        let mut members_of: HashMap<i64, Vec<&GitlabMember>> = HashMap::new();
        for m in &data.members {
            members_of.entry(m.source_id).or_default().push(m);
        }
        let ids: std::collections::HashSet<i64> = data.groups.iter().map(|g| g.id).collect();
        let mut left_out: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let mut groups = Vec::new();
        let mut pending: Vec<&GitlabGroup> = data.groups.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut later = Vec::new();
            for g in pending {
                let parent = match g.parent_id {
                    None => None,
                    Some(p) if self.paths.contains_key(&p) => self.paths.get(&p).cloned(),
                    Some(p) if left_out.contains(&p) || !ids.contains(&p) => {
                        self.skipped.push(format!(
                            "group {} (and what is in it): its parent ({p}) is not imported",
                            g.path
                        ));
                        left_out.insert(g.id);
                        continue;
                    }
                    Some(_) => {
                        later.push(g);
                        continue;
                    }
                };
                match self.group(g, parent, members_of.get(&g.id)) {
                    Some(entry) => groups.push(entry),
                    None => {
                        left_out.insert(g.id);
                    }
                }
            }
            if later.len() == before {
                for g in later {
                    self.skipped
                        .push(format!("group {}: its parents form a cycle", g.path));
                }
                break;
            }
            pending = later;
        }
        groups
    }

    fn group(
        &mut self,
        g: &GitlabGroup,
        parent: Option<String>,
        members: Option<&Vec<&GitlabMember>>,
    ) -> Option<GroupEntry> {
        let full_path = match &parent {
            Some(p) => format!("{p}/{}", g.path),
            None => g.path.clone(),
        };
        let entry = GroupEntry {
            path: g.path.clone(),
            parent: parent.clone(),
            name: Some(g.name.clone()),
            description: g.description.clone().filter(|d| !d.is_empty()),
            visibility: Some(visibility(g.visibility_level).to_owned()),
            members: Some(Vec::new()),
        };
        // Its own fields, checked as if top-level; the parent is checked
        // when applied (a subgroup may take a reserved name).
        let single = StateFile {
            groups: Some(vec![GroupEntry {
                parent: None,
                ..entry.clone()
            }]),
            ..StateFile::default()
        };
        if let Err(e) = valid(single, self.scopes) {
            if parent.is_none() || !e.contains("reserved") {
                self.skipped.push(format!("group {full_path}: {e}"));
                return None;
            }
        }
        let mut kept = Vec::new();
        for m in members.into_iter().flatten() {
            let Some(username) = m.user_id.and_then(|id| self.usernames.get(&id)) else {
                self.skipped.push(format!(
                    "a membership of group {full_path}: its user ({}) is not imported",
                    m.user_id.map_or("none".to_owned(), |id| id.to_string())
                ));
                continue;
            };
            if !latchkey_core::group::level::ALL.contains(&m.access_level) {
                self.skipped.push(format!(
                    "membership of {username} in group {full_path}: access level {} is not one \
                     latchkey keeps",
                    m.access_level
                ));
                continue;
            }
            kept.push(MemberEntry {
                username: username.clone(),
                access_level: m.access_level,
                expires_at: m.expires_at.clone().map(DateValue::Text),
            });
        }
        self.paths.insert(g.id, full_path);
        Some(GroupEntry {
            members: Some(kept),
            ..entry
        })
    }

    /// Applications, by client_id.
    fn applications(&mut self, data: &GitlabData) -> Vec<ApplicationEntry> {
        let mut applications = Vec::new();
        for a in &data.applications {
            let what = format!("application {:?} ({})", a.name, a.uid);
            let (owner, group) = match (a.owner_type.as_deref(), a.owner_id) {
                (None, None) => (None, None),
                (Some("User"), Some(id)) => match self.usernames.get(&id) {
                    Some(u) => (Some(u.clone()), None),
                    None => {
                        self.skipped
                            .push(format!("{what}: its owner (user {id}) is not imported"));
                        continue;
                    }
                },
                (Some("Namespace" | "Group"), Some(id)) => match self.paths.get(&id) {
                    Some(p) => (None, Some(p.clone())),
                    None => {
                        self.skipped
                            .push(format!("{what}: its group ({id}) is not imported"));
                        continue;
                    }
                },
                (kind, id) => {
                    self.skipped.push(format!(
                        "{what}: an owner latchkey does not know ({} {})",
                        kind.unwrap_or("none"),
                        id.map_or("none".to_owned(), |i| i.to_string())
                    ));
                    continue;
                }
            };
            let stored = a.secret.trim();
            let (secret, secret_hash) = if imported::is_gitlab_secret_hash(stored) {
                (None, Some(stored.to_owned()))
            } else if stored.starts_with('$') || stored.len() == 128 || stored.is_empty() {
                // A hash latchkey cannot verify is never taken for the
                // secret itself.
                self.skipped.push(format!(
                    "{what}: its secret is stored in a form latchkey does not know"
                ));
                continue;
            } else {
                // Secrets from before GitLab hashed them are plain text.
                (Some(secrecy::SecretString::from(stored.to_owned())), None)
            };
            // Every grant, or every grant but the password grant.
            let grant_types = Words::Many(
                GRANT_TYPES
                    .iter()
                    .filter(|g| a.ropc_enabled || **g != "password")
                    .map(|g| (*g).to_owned())
                    .collect(),
            );
            let entry = ApplicationEntry {
                name: a.name.clone(),
                redirect_uris: Words::One(a.redirect_uri.clone()),
                scopes: Words::One(a.scopes.clone()),
                confidential: Some(a.confidential),
                trusted: Some(a.trusted),
                grant_types: Some(grant_types),
                owner,
                group,
                application_id: Some(a.uid.clone()),
                secret,
                secret_hash,
                ..ApplicationEntry::default()
            };
            let single = StateFile {
                applications: Some(vec![ApplicationEntry {
                    owner: None,
                    group: None,
                    ..entry.clone()
                }]),
                ..StateFile::default()
            };
            match valid(single, self.scopes) {
                Ok(()) => applications.push(entry),
                Err(e) => self.skipped.push(format!("{what}: {e}")),
            }
        }
        applications
    }
}

#[cfg(test)]
mod tests {
    use super::yaml_scopes;

    #[test]
    fn token_scopes_read_as_gitlab_serialises_them() {
        assert_eq!(
            yaml_scopes("---\n- api\n- read_user\n"),
            ["api", "read_user"]
        );
        assert_eq!(
            yaml_scopes("---\n- :api\n- :read_api\n"),
            ["api", "read_api"]
        );
        assert_eq!(yaml_scopes("[api, 'read_user']"), ["api", "read_user"]);
        assert!(yaml_scopes("--- []\n").is_empty());
    }
}
