//! Planning applications: found by client_id, else by name and owner;
//! their attributes, owner and secrets.

use std::collections::{HashMap, HashSet};

use crate::application::ApplicationUpdate;

use super::super::check::{DesiredApplication, DesiredSecret, Owner, StateError};
use super::super::StoredApplication;
use super::{err, same_scopes, Planner, Step};

impl Planner<'_> {
    pub(super) fn applications(
        &mut self,
        apps: &[DesiredApplication],
    ) -> Result<HashSet<i64>, StateError> {
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

    pub(super) fn update_application(
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
                owner_id: a.owner_id,
                update,
                owner,
                fields,
            });
        }
        if let Some(want) = secrets {
            let now = self.settings.now;
            let differs = {
                // A secret rehashed at its first use still counts as the
                // imported form it replaced.
                let rehashed = &self.current.secrets_rehashed_from;
                let as_listed = |s: &crate::application::ClientSecret| -> String {
                    rehashed
                        .get(&s.id)
                        .and_then(|from| {
                            want.iter()
                                .find(|w| crate::secret::digest(&w.digest) == *from)
                                .map(|w| w.digest.clone())
                        })
                        .unwrap_or_else(|| s.digest.clone())
                };
                let keys: Vec<(String, Option<i64>)> = stored
                    .secrets
                    .iter()
                    .filter(|s| s.is_live(now))
                    .map(|s| (as_listed(s), s.expires_at))
                    .collect();
                let mut have: Vec<(&str, Option<i64>)> =
                    keys.iter().map(|(d, at)| (d.as_str(), *at)).collect();
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
                    owner_id: a.owner_id,
                    secrets: want,
                });
            }
        }
    }
}
