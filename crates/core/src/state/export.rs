//! Writing what is stored as a state file (`latchkey export`): passwords,
//! tokens and secrets as their digests only, so that applying the file to
//! an empty database restores every credential.

use std::collections::HashMap;

use crate::group::day_text;
use crate::imported::is_sha256_hex;
use crate::user::UserState;

use super::{
    ApplicationEntry, Current, DateValue, GroupEntry, MemberEntry, SecretEntry, StateFile,
    TokenEntry, UserEntry, Words,
};

fn many(list: impl IntoIterator<Item = String>) -> Words {
    Words::Many(list.into_iter().collect())
}

/// An instant (ms) in RFC 3339.
fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The state file of `current`, as it is at `now` (ms).
pub(crate) fn export(current: &Current, now: i64) -> StateFile {
    let usernames: HashMap<i64, &str> = current
        .users
        .iter()
        .map(|u| (u.user.id, u.user.username.as_str()))
        .collect();
    let paths: HashMap<i64, &str> = current
        .groups
        .iter()
        .map(|g| (g.id, g.full_path.as_str()))
        .collect();
    let users = current
        .users
        .iter()
        .map(|s| {
            let u = &s.user;
            let tokens: Vec<TokenEntry> = current
                .tokens
                .iter()
                .filter(|t| t.token.user_id == u.id && !t.token.revoked)
                .map(|t| TokenEntry {
                    name: t.token.name.clone(),
                    scopes: many(t.token.scopes.as_slice().iter().cloned()),
                    token: None,
                    token_sha256: is_sha256_hex(&t.digest).then(|| t.digest.clone()),
                    gitlab_token_digest: (!is_sha256_hex(&t.digest)).then(|| t.digest.clone()),
                    expires_at: t.token.expires_at.map(|d| DateValue::Text(day_text(d))),
                })
                .collect();
            UserEntry {
                username: u.username.clone(),
                email: Some(u.email.clone()),
                name: Some(u.name.clone()),
                password: None,
                password_hash: s.password_digest.clone(),
                admin: Some(u.admin),
                external: Some(u.external),
                blocked: Some(u.state == UserState::Blocked),
                tokens: (!tokens.is_empty()).then_some(tokens),
            }
        })
        .collect();
    let mut groups: Vec<&crate::group::Group> = current.groups.iter().collect();
    groups.sort_by_key(|g| (g.full_path.matches('/').count(), g.id));
    let groups = groups
        .into_iter()
        .map(|g| {
            let members: Vec<MemberEntry> = current
                .members
                .iter()
                .filter(|m| m.group_id == g.id)
                .filter_map(|m| {
                    Some(MemberEntry {
                        username: (*usernames.get(&m.user_id)?).to_owned(),
                        access_level: m.access_level,
                        expires_at: m.expires_at.clone().map(DateValue::Text),
                    })
                })
                .collect();
            GroupEntry {
                path: g.path.clone(),
                parent: g
                    .parent_id
                    .and_then(|p| paths.get(&p))
                    .map(|p| (*p).to_owned()),
                name: Some(g.name.clone()),
                description: (!g.description.is_empty()).then(|| g.description.clone()),
                visibility: Some(g.visibility.as_str().to_owned()),
                members: Some(members),
            }
        })
        .collect();
    let applications = current
        .applications
        .iter()
        .map(|s| {
            let a = &s.app;
            let live: Vec<_> = s.secrets.iter().filter(|x| x.is_live(now)).collect();
            let (secret_sha256, secret_hash, secrets) = match live.as_slice() {
                [] => (None, None, None),
                [only] if only.expires_at.is_none() => {
                    let d = only.digest.clone();
                    if is_sha256_hex(&d) {
                        (Some(d), None, None)
                    } else {
                        (None, Some(d), None)
                    }
                }
                several => (
                    None,
                    None,
                    Some(
                        several
                            .iter()
                            .map(|x| SecretEntry {
                                sha256: is_sha256_hex(&x.digest).then(|| x.digest.clone()),
                                hash: (!is_sha256_hex(&x.digest)).then(|| x.digest.clone()),
                                expires_at: x.expires_at.map(|at| DateValue::Text(rfc3339(at))),
                            })
                            .collect(),
                    ),
                ),
            };
            ApplicationEntry {
                name: a.name.clone(),
                redirect_uris: many(a.redirect_uri.split_whitespace().map(str::to_owned)),
                scopes: many(a.scopes.as_slice().iter().cloned()),
                confidential: Some(a.confidential),
                trusted: Some(a.trusted),
                grant_types: a.grant_types.clone().map(many),
                owner: a
                    .owner_id
                    .and_then(|id| usernames.get(&id))
                    .map(|u| (*u).to_owned()),
                group: a
                    .group_id
                    .and_then(|id| paths.get(&id))
                    .map(|p| (*p).to_owned()),
                application_id: Some(a.application_id.clone()),
                secret: None,
                secret_sha256,
                secret_hash,
                secrets,
            }
        })
        .collect();
    StateFile {
        users: Some(users),
        groups: Some(groups),
        applications: Some(applications),
    }
}
