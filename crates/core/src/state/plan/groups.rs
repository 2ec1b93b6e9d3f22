//! Planning groups (parents first, visibility no wider than the parent's)
//! and their members.

use std::collections::{HashMap, HashSet};

use crate::group::{GroupUpdate, MembershipUpdate, Visibility};

use super::super::check::{DesiredGroup, StateError};
use super::super::Desired;
use super::{err, lower, Planner, Step};

impl Planner<'_> {
    pub(super) fn groups(
        &mut self,
        groups: &[DesiredGroup],
        desired: &Desired,
    ) -> Result<(), StateError> {
        // What each listed group's visibility is said to be, and (as they
        // are planned, parents first) what it will be.
        let said: HashMap<String, Visibility> = groups
            .iter()
            .filter_map(|g| g.visibility.map(|v| (lower(&g.full_path), v)))
            .collect();
        let mut will_be: HashMap<String, Visibility> = HashMap::new();
        for dg in groups {
            let key = lower(&dg.full_path);
            let stored = self
                .current
                .groups
                .iter()
                .find(|g| lower(&g.full_path) == key);
            let parent_visibility = match &dg.parent {
                None => None,
                Some(parent) => {
                    let pkey = lower(parent);
                    if !self.group_will_exist(parent) {
                        return err(
                            &dg.label,
                            "parent",
                            if self.pruning_groups {
                                format!("no group {parent} exists, or --prune would delete it")
                            } else {
                                format!("no group {parent} exists")
                            },
                        );
                    }
                    will_be.get(&pkey).copied().or_else(|| {
                        self.current
                            .groups
                            .iter()
                            .find(|g| lower(&g.full_path) == pkey)
                            .map(|g| g.visibility)
                    })
                }
            };
            // Left out: what it is, or (new) the default, no more visible
            // than its parent.
            let visibility = dg
                .visibility
                .or(stored.map(|g| g.visibility))
                .unwrap_or_else(|| {
                    let default = self.settings.default_visibility;
                    parent_visibility.map_or(default, |p| p.min(default))
                });
            if let Some(pv) = parent_visibility {
                if visibility > pv {
                    return err(
                        &dg.label,
                        "visibility",
                        format!(
                            "{} is not allowed since the parent group has a {} visibility",
                            visibility.as_str(),
                            pv.as_str()
                        ),
                    );
                }
            }
            if let Some(g) = stored {
                let children = self
                    .current
                    .groups
                    .iter()
                    .filter(|c| c.parent_id == Some(g.id));
                for c in children {
                    let theirs = said
                        .get(&lower(&c.full_path))
                        .copied()
                        .unwrap_or(c.visibility);
                    if theirs > visibility {
                        return err(
                            &dg.label,
                            "visibility",
                            format!(
                                "{} is not allowed since its subgroup {} has a {} visibility",
                                visibility.as_str(),
                                c.full_path,
                                theirs.as_str()
                            ),
                        );
                    }
                }
            }
            will_be.insert(key.clone(), visibility);
            if dg.full_path.split('/').count() > crate::group::MAX_ANCESTORS + 1 {
                return err(&dg.label, "parent", "has too deep level of nesting");
            }
            if dg.parent.is_none() && stored.is_none() {
                let taken = desired
                    .users
                    .iter()
                    .flatten()
                    .any(|u| lower(&u.username) == key)
                    || self.users.contains_key(&key);
                if taken {
                    return err(
                        &dg.label,
                        "path",
                        "has already been taken (a user has this username)",
                    );
                }
            }
            match stored {
                None => self.push(Step::CreateGroup {
                    full_path: dg.full_path.clone(),
                    parent: dg.parent.clone(),
                    name: dg.name.clone().unwrap_or_else(|| dg.path.clone()),
                    path: dg.path.clone(),
                    description: dg.description.clone().unwrap_or_default(),
                    visibility,
                }),
                Some(g) => {
                    let mut update = GroupUpdate::default();
                    let mut fields = Vec::new();
                    if let Some(n) = dg.name.as_ref().filter(|n| **n != g.name) {
                        update.name = Some(n.clone());
                        fields.push("name");
                    }
                    if let Some(d) = dg.description.as_ref().filter(|d| **d != g.description) {
                        update.description = Some(d.clone());
                        fields.push("description");
                    }
                    if visibility != g.visibility {
                        update.visibility = Some(visibility);
                        fields.push("visibility");
                    }
                    if !fields.is_empty() {
                        self.push(Step::UpdateGroup {
                            id: g.id,
                            full_path: g.full_path.clone(),
                            update,
                            fields,
                        });
                    }
                }
            }
            self.members(dg, stored.map(|g| g.id))?;
        }
        Ok(())
    }

    pub(super) fn members(
        &mut self,
        dg: &DesiredGroup,
        group_id: Option<i64>,
    ) -> Result<(), StateError> {
        let Some(members) = &dg.members else {
            return Ok(());
        };
        let mut listed = HashSet::new();
        for dm in members {
            if !self.user_will_exist(&dm.username) {
                return err(
                    &dm.label,
                    "username",
                    format!("no user {} exists", dm.username),
                );
            }
            let user_id = self.users.get(&lower(&dm.username)).copied();
            if let Some(uid) = user_id {
                listed.insert(uid);
            }
            let stored = self
                .current
                .members
                .iter()
                .find(|m| Some(m.group_id) == group_id && Some(m.user_id) == user_id);
            match (stored, group_id, user_id) {
                (Some(m), Some(gid), Some(uid)) => {
                    let mut update = MembershipUpdate::default();
                    let mut fields = Vec::new();
                    if m.access_level != dm.access_level {
                        update.access_level = Some(dm.access_level);
                        fields.push("access_level");
                    }
                    if m.expires_at != dm.expires_at {
                        update.expires_at = Some(dm.expires_at.clone());
                        fields.push("expires_at");
                    }
                    if !fields.is_empty() {
                        self.push(Step::UpdateMember {
                            group: dg.full_path.clone(),
                            group_id: gid,
                            username: dm.username.clone(),
                            user_id: uid,
                            update,
                            fields,
                        });
                    }
                }
                _ => self.push(Step::AddMember {
                    group: dg.full_path.clone(),
                    username: dm.username.clone(),
                    access_level: dm.access_level,
                    expires_at: dm.expires_at.clone(),
                }),
            }
        }
        if let (true, Some(gid)) = (self.settings.prune, group_id) {
            let names: HashMap<i64, &str> = self
                .current
                .users
                .iter()
                .map(|u| (u.user.id, u.user.username.as_str()))
                .collect();
            for m in self
                .current
                .members
                .iter()
                .filter(|m| m.group_id == gid && !listed.contains(&m.user_id))
            {
                self.push(Step::RemoveMember {
                    group: dg.full_path.clone(),
                    group_id: gid,
                    username: names.get(&m.user_id).copied().unwrap_or("?").to_owned(),
                    user_id: m.user_id,
                });
            }
        }
        Ok(())
    }
}
