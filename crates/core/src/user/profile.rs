//! A user's profile: the fields GitLab's Users API accepts besides the
//! account itself, stored together (as JSON, only what was set) and
//! checked as GitLab checks them.

use serde::{Deserialize, Serialize};

use crate::application::ValidationErrors;

/// GitLab's default `projects_limit` for new users.
pub const DEFAULT_PROJECTS_LIMIT: i64 = 100_000;

/// What a user says about themselves, and what an administrator notes.
/// Empty strings are "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bio: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub location: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub website_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub organization: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub job_title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pronouns: String,
    /// One of the user's own addresses (their email), shown publicly.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub public_email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub linkedin: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub twitter: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub discord: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub skype: String,
    /// An administrator's note; only administrators see it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private_profile: bool,
    /// `None`: GitLab's default (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_create_group: Option<bool>,
    /// `None`: GitLab's default ([`DEFAULT_PROJECTS_LIMIT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects_limit: Option<i64>,
    /// GitLab's interface theme and syntax colours (1 by default); kept
    /// and shown, for the clients that set them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_scheme_id: Option<i64>,
    /// The address commits are attributed to (the user's own; empty: their email).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub commit_email: String,
}

impl Profile {
    /// From its stored JSON; `None` (never set) is the default profile.
    pub fn from_stored(stored: Option<&str>) -> Result<Self, serde_json::Error> {
        match stored {
            None | Some("") => Ok(Self::default()),
            Some(text) => serde_json::from_str(text),
        }
    }

    /// Its stored JSON; `None` when nothing is set.
    pub fn to_stored(&self) -> Option<String> {
        if *self == Self::default() {
            return None;
        }
        serde_json::to_string(self).ok()
    }

    pub fn can_create_group(&self) -> bool {
        self.can_create_group.unwrap_or(true)
    }

    pub fn projects_limit(&self) -> i64 {
        self.projects_limit.unwrap_or(DEFAULT_PROJECTS_LIMIT)
    }

    pub fn theme_id(&self) -> i64 {
        self.theme_id.unwrap_or(1)
    }

    pub fn color_scheme_id(&self) -> i64 {
        self.color_scheme_id.unwrap_or(1)
    }

    /// Each field by its API name, as text, for comparing two profiles.
    pub fn fields(&self) -> [(&'static str, String); 18] {
        [
            ("bio", self.bio.clone()),
            ("location", self.location.clone()),
            ("website_url", self.website_url.clone()),
            ("organization", self.organization.clone()),
            ("job_title", self.job_title.clone()),
            ("pronouns", self.pronouns.clone()),
            ("public_email", self.public_email.clone()),
            ("linkedin", self.linkedin.clone()),
            ("twitter", self.twitter.clone()),
            ("discord", self.discord.clone()),
            ("skype", self.skype.clone()),
            ("note", self.note.clone()),
            ("private_profile", self.private_profile.to_string()),
            ("can_create_group", self.can_create_group().to_string()),
            ("projects_limit", self.projects_limit().to_string()),
            ("theme_id", self.theme_id().to_string()),
            ("color_scheme_id", self.color_scheme_id().to_string()),
            ("commit_email", self.commit_email.clone()),
        ]
    }
}

/// Changes to a profile: `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub bio: Option<String>,
    pub location: Option<String>,
    pub website_url: Option<String>,
    pub organization: Option<String>,
    pub job_title: Option<String>,
    pub pronouns: Option<String>,
    pub public_email: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    pub discord: Option<String>,
    pub skype: Option<String>,
    pub note: Option<String>,
    pub private_profile: Option<bool>,
    pub can_create_group: Option<bool>,
    pub projects_limit: Option<i64>,
    pub theme_id: Option<i64>,
    pub color_scheme_id: Option<i64>,
    pub commit_email: Option<String>,
}

/// The longest value of each text field, as GitLab's model limits them.
const LIMITS: [(&str, usize); 12] = [
    ("bio", 255),
    ("location", 255),
    ("website_url", 255),
    ("organization", 255),
    ("job_title", 200),
    ("pronouns", 50),
    ("public_email", 255),
    ("linkedin", 500),
    ("twitter", 500),
    ("discord", 500),
    ("skype", 500),
    ("note", 1000),
];

impl ProfileChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn texts(&self) -> [(&'static str, &Option<String>); 12] {
        [
            ("bio", &self.bio),
            ("location", &self.location),
            ("website_url", &self.website_url),
            ("organization", &self.organization),
            ("job_title", &self.job_title),
            ("pronouns", &self.pronouns),
            ("public_email", &self.public_email),
            ("linkedin", &self.linkedin),
            ("twitter", &self.twitter),
            ("discord", &self.discord),
            ("skype", &self.skype),
            ("note", &self.note),
        ]
    }

    /// GitLab's checks that need nothing but the values; `email` is the
    /// user's address (the only one a public email may be).
    pub fn check(&self, email: Option<&str>, errors: &mut ValidationErrors) {
        for ((field, value), (_, max)) in self.texts().into_iter().zip(LIMITS) {
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                errors.add(field, format!("is too long (maximum is {max} characters)"));
            }
        }
        if let Some(url) = self.website_url.as_deref().map(str::trim) {
            let ok = url.is_empty()
                || fluent_uri::UriRef::parse(url).is_ok_and(|u| {
                    u.scheme().is_some_and(|s| {
                        matches!(s.as_str().to_ascii_lowercase().as_str(), "http" | "https")
                    }) && u.authority().is_some_and(|a| !a.host().is_empty())
                });
            if !ok {
                errors.add("website_url", "is not a valid URL");
            }
        }
        if let Some(discord) = self.discord.as_deref() {
            let user_id = (17..=20).contains(&discord.chars().count())
                && discord.chars().all(|c| c.is_ascii_digit());
            if !discord.is_empty() && !user_id {
                errors.add("discord", "must contain only a discord user ID.");
            }
        }
        if let (Some(public), Some(email)) = (self.public_email.as_deref(), email) {
            if !public.is_empty() && !public.eq_ignore_ascii_case(email) {
                errors.add("public_email", "is not an email you own");
            }
        }
        if let (Some(commit), Some(email)) = (self.commit_email.as_deref(), email) {
            if !commit.is_empty() && !commit.eq_ignore_ascii_case(email) {
                errors.add("commit_email", "is not an email you own");
            }
        }
        // GitLab's themes 1 to 14, colour schemes 1 to 7.
        if self.theme_id.is_some_and(|n| !(1..=14).contains(&n)) {
            errors.add("theme_id", "is not included in the list");
        }
        if self.color_scheme_id.is_some_and(|n| !(1..=7).contains(&n)) {
            errors.add("color_scheme_id", "is not included in the list");
        }
        if self
            .projects_limit
            .is_some_and(|n| !(0..=i64::from(i32::MAX)).contains(&n))
        {
            errors.add(
                "projects_limit",
                format!(
                    "must be greater than or equal to 0 and at most {}",
                    i32::MAX
                ),
            );
        }
    }

    /// `profile` with these changes made.
    pub fn applied_to(&self, profile: &Profile) -> Profile {
        let pick = |new: &Option<String>, old: &String| {
            new.as_ref()
                .map_or_else(|| old.clone(), |v| v.trim().to_owned())
        };
        Profile {
            bio: pick(&self.bio, &profile.bio),
            location: pick(&self.location, &profile.location),
            website_url: pick(&self.website_url, &profile.website_url),
            organization: pick(&self.organization, &profile.organization),
            job_title: pick(&self.job_title, &profile.job_title),
            pronouns: pick(&self.pronouns, &profile.pronouns),
            public_email: pick(&self.public_email, &profile.public_email),
            linkedin: pick(&self.linkedin, &profile.linkedin),
            twitter: pick(&self.twitter, &profile.twitter),
            discord: pick(&self.discord, &profile.discord),
            skype: pick(&self.skype, &profile.skype),
            note: pick(&self.note, &profile.note),
            private_profile: self.private_profile.unwrap_or(profile.private_profile),
            can_create_group: self.can_create_group.or(profile.can_create_group),
            projects_limit: self.projects_limit.or(profile.projects_limit),
            theme_id: self.theme_id.or(profile.theme_id),
            color_scheme_id: self.color_scheme_id.or(profile.color_scheme_id),
            commit_email: pick(&self.commit_email, &profile.commit_email),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_set_is_stored() {
        assert_eq!(Profile::default().to_stored(), None);
        let p = Profile {
            bio: "Hi".to_owned(),
            private_profile: true,
            ..Profile::default()
        };
        let stored = p.to_stored().unwrap();
        assert_eq!(stored, r#"{"bio":"Hi","private_profile":true}"#);
        assert_eq!(Profile::from_stored(Some(&stored)).unwrap(), p);
        assert_eq!(Profile::from_stored(None).unwrap(), Profile::default());
        assert!(Profile::default().can_create_group());
        assert_eq!(Profile::default().projects_limit(), DEFAULT_PROJECTS_LIMIT);
    }

    #[test]
    fn changes_are_checked_as_gitlab_checks_them() {
        let check = |c: ProfileChanges| {
            let mut errors = ValidationErrors::default();
            c.check(Some("me@example.com"), &mut errors);
            errors
        };
        assert!(check(ProfileChanges {
            bio: Some("x".repeat(255)),
            website_url: Some("https://me.example".to_owned()),
            discord: Some("123456789012345678".to_owned()),
            public_email: Some("ME@example.com".to_owned()),
            ..ProfileChanges::default()
        })
        .is_empty());
        for bad in [
            ProfileChanges {
                bio: Some("x".repeat(256)),
                ..ProfileChanges::default()
            },
            ProfileChanges {
                website_url: Some("javascript:alert(1)".to_owned()),
                ..ProfileChanges::default()
            },
            ProfileChanges {
                discord: Some("alice#1234".to_owned()),
                ..ProfileChanges::default()
            },
            ProfileChanges {
                public_email: Some("someone-else@example.com".to_owned()),
                ..ProfileChanges::default()
            },
            ProfileChanges {
                projects_limit: Some(-1),
                ..ProfileChanges::default()
            },
        ] {
            assert!(!check(bad.clone()).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn changes_apply_field_by_field() {
        let old = Profile {
            bio: "old".to_owned(),
            location: "Berlin".to_owned(),
            ..Profile::default()
        };
        let new = ProfileChanges {
            bio: Some(" new ".to_owned()),
            can_create_group: Some(false),
            ..ProfileChanges::default()
        }
        .applied_to(&old);
        assert_eq!(new.bio, "new");
        assert_eq!(new.location, "Berlin");
        assert!(!new.can_create_group());
    }
}
