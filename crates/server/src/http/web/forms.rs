//! What the forms of several pages share: the scopes a form offers and the
//! checkboxes ticked, and the application form (User Settings and the
//! Admin Area).

use latchkey_core::application::ApplicationParams;
use latchkey_core::scopes::{describe, Scopes};
use latchkey_core::token::PRIVILEGED_SCOPES;

use super::super::params::{Params, Value};
use super::super::AppState;

/// A checkbox of a form: its value, what it means, whether it is ticked.
pub(super) struct Choice {
    pub value: String,
    pub about: String,
    pub checked: bool,
}

/// The scopes a form offers (`offered`, and whatever `current` already
/// has, so that editing never drops one silently), ticked when chosen.
pub(super) fn scope_choices(offered: &[(String, String)], current: &[String]) -> Vec<Choice> {
    let mut all: Vec<Choice> = offered
        .iter()
        .map(|(value, about)| Choice {
            value: value.clone(),
            about: about.clone(),
            checked: current.contains(value),
        })
        .collect();
    for extra in current {
        if !all.iter().any(|c| &c.value == extra) {
            all.push(Choice {
                value: extra.clone(),
                about: latchkey_core::scopes::describe(extra),
                checked: true,
            });
        }
    }
    all
}

/// What the form offers: the server's scopes, less the privileged ones for
/// users who are not administrators.
pub(super) fn offered(state: &AppState, admin: bool) -> Vec<(String, String)> {
    state
        .services
        .config()
        .scopes
        .names()
        .iter()
        .filter(|s| !s.ends_with('*'))
        .filter(|s| admin || !PRIVILEGED_SCOPES.contains(&s.as_str()))
        .map(|s| (s.clone(), describe(s)))
        .collect()
}

/// The checked scopes (`scopes[]` checkboxes, or one string).
pub(super) fn chosen_scopes(params: &Params) -> Vec<String> {
    match params.get("scopes") {
        Some(Value::Str(s)) => Scopes::normalise(&s.replace(',', " ")),
        _ => ticked(params, "scopes"),
    }
}

/// The values of the checkboxes `key[]` that are ticked (or one string of
/// them, separated by spaces or commas).
pub(super) fn ticked(params: &Params, key: &str) -> Vec<String> {
    match params.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(Value::Str(s)) => s
            .split([',', ' '])
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the checkbox `key` is ticked (`true` or `1`).
pub(super) fn checked(params: &Params, key: &str) -> bool {
    params.get_str(key).is_some_and(|v| v == "true" || v == "1")
}

/// The new-application form as sent (User Settings and the Admin Area).
pub(super) struct ApplicationForm {
    pub name: String,
    /// One per line.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub confidential: bool,
}

impl ApplicationForm {
    pub(super) fn read(params: &Params) -> Self {
        Self {
            name: params.get_str("name").unwrap_or("").trim().to_owned(),
            redirect_uri: params
                .get_str("redirect_uri")
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("\n"),
            scopes: chosen_scopes(params),
            confidential: checked(params, "confidential"),
        }
    }

    /// Why the form cannot be taken: a scope that is not on `offered`.
    pub(super) fn unoffered(&self, offered: &[(String, String)]) -> Option<String> {
        self.scopes
            .iter()
            .find(|c| !offered.iter().any(|(o, _)| o == *c))
            .map(|bad| format!("The scope {bad} cannot be chosen here."))
    }

    pub(super) fn params(&self) -> ApplicationParams {
        ApplicationParams {
            name: Some(self.name.clone()),
            redirect_uri: Some(self.redirect_uri.clone()),
            scopes: Some(self.scopes.join(" ")),
            confidential: self.confidential,
            grant_types: None,
        }
    }
}
