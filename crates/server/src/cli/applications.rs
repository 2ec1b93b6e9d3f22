//! `latchkey applications …`

use clap::{ArgAction, Subcommand};
use latchkey_core::application::{Application, ApplicationParams, Ownership, Renewal};
use latchkey_core::context::Context as Actor;
use latchkey_core::service::Services;
use serde::Serialize;

use super::output::{self, failed, find_user, yes, Format, FormatArg};
use crate::config::Settings;
use crate::http::applications::ApplicationEntity;
use crate::http::secrets::SecretEntity;
use crate::startup::{self, Schema};

#[derive(Debug, Subcommand)]
pub enum ApplicationsCommand {
    /// List the instance-wide applications (as GET /api/v4/applications), or
    /// one user's with --user; ordered by id, never a secret.
    List {
        /// This user's own applications instead (username or user id).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one application (whoever owns it) and its live secrets' hints.
    Show {
        /// Its id, or its client_id (`application_id`).
        application: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Register an instance-wide application; prints its client_id and its
    /// secret, shown only this once.
    Create {
        /// The application's name, as users see it on the consent page.
        #[arg(long)]
        name: String,
        /// Redirect URIs, one or more separated by spaces or newlines.
        #[arg(long, value_name = "URI")]
        redirect_uri: String,
        /// Space- or comma-separated scopes, e.g. "openid profile email"
        /// (at least one, as GitLab requires).
        #[arg(long)]
        scopes: String,
        /// Whether the client keeps its secret secret (default true; false: a
        /// public client, which must use PKCE).
        #[arg(long, value_name = "BOOL", action = ArgAction::Set, default_value_t = true)]
        confidential: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Delete an application (whoever owns it) with its grants and tokens.
    Delete {
        /// Its id, or its client_id.
        application: String,
    },
    /// Give an application a new secret, printed once; the previous ones die
    /// at once, or after --grace-seconds.
    RenewSecret {
        /// Its id, or its client_id.
        application: String,
        /// Seconds the previous secrets keep working, so deployed clients can
        /// move over (default: they stop at once, as in GitLab).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<i64>,
        #[command(flatten)]
        format: FormatArg,
    },
}

pub async fn run(settings: &Settings, command: ApplicationsCommand) -> anyhow::Result<()> {
    let store = match command {
        ApplicationsCommand::Create { .. } => {
            startup::open_existing_store(settings, Schema::Migrate).await?
        }
        _ => startup::open_existing_store(settings, Schema::RequireCurrent).await?,
    };
    let services = startup::services(store, settings, None);
    let actor = Actor::command_line();
    match command {
        ApplicationsCommand::List { user, format } => {
            let owner = match &user {
                Some(name) => Some(find_user(&services, name).await?),
                None => None,
            };
            let apps = output::every_page(|page| {
                let services = &services;
                let owner = owner.as_ref().map(|u| u.id);
                async move {
                    match owner {
                        Some(id) => services.list_owned_applications(id, page).await,
                        None => services.list_instance_applications(page).await,
                    }
                }
            })
            .await?;
            match format.format {
                Format::Json => {
                    let entities: Vec<_> = apps
                        .iter()
                        .map(|a| ApplicationEntity::new(a, None))
                        .collect();
                    output::json(&entities)?;
                }
                Format::Text => {
                    let rows: Vec<Vec<String>> = apps
                        .iter()
                        .map(|a| {
                            vec![
                                a.id.to_string(),
                                a.application_id.clone(),
                                if a.confidential { "yes" } else { "no" }.to_owned(),
                                a.scopes.as_slice().join(" "),
                                a.redirect_uri.replace('\n', " "),
                                a.name.clone(),
                            ]
                        })
                        .collect();
                    output::table(
                        &[
                            "ID",
                            "APPLICATION_ID",
                            "CONFIDENTIAL",
                            "SCOPES",
                            "CALLBACK_URL",
                            "NAME",
                        ],
                        &rows,
                    );
                }
            }
        }
        ApplicationsCommand::Show {
            application,
            format,
        } => {
            let app = find_application(&services, &application).await?;
            let secrets = services.application_secrets(app.id).await?;
            match format.format {
                Format::Json => {
                    #[derive(Serialize)]
                    struct Shown<'a> {
                        #[serde(flatten)]
                        app: ApplicationEntity<'a>,
                        owner: String,
                        created_at: String,
                        secrets: Vec<SecretEntity<'a>>,
                    }
                    output::json(&Shown {
                        app: ApplicationEntity::new(&app, None),
                        owner: owner(&services, &app).await?,
                        created_at: output::when(Some(app.created_at)),
                        secrets: secrets.iter().map(SecretEntity::new).collect(),
                    })?;
                }
                Format::Text => {
                    output::record(&[
                        ("id", app.id.to_string()),
                        ("application_id", app.application_id.clone()),
                        ("name", app.name.clone()),
                        ("owner", owner(&services, &app).await?),
                        ("callback_url", app.redirect_uri.replace('\n', " ")),
                        ("scopes", app.scopes.as_slice().join(" ")),
                        ("confidential", yes(app.confidential)),
                        ("trusted", yes(app.trusted)),
                        (
                            "grant_types",
                            app.grant_types
                                .as_ref()
                                .map(|g| g.join(" "))
                                .unwrap_or_else(|| "all".to_owned()),
                        ),
                        ("created_at", output::when(Some(app.created_at))),
                    ]);
                    say!("live secrets:");
                    let rows: Vec<Vec<String>> = secrets
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.to_string(),
                                format!("…{}", s.hint.as_deref().unwrap_or("")),
                                output::when(Some(s.created_at)),
                                s.expires_at
                                    .map(|t| output::when(Some(t)))
                                    .unwrap_or_else(|| "never".to_owned()),
                                output::when(s.last_used_at),
                            ]
                        })
                        .collect();
                    output::table(&["ID", "HINT", "CREATED", "EXPIRES", "LAST USED"], &rows);
                }
            }
        }
        ApplicationsCommand::Create {
            name,
            redirect_uri,
            scopes,
            confidential,
            format,
        } => {
            let params = ApplicationParams {
                name: Some(name),
                redirect_uri: Some(redirect_uri),
                scopes: Some(scopes.replace(',', " ")),
                confidential,
                grant_types: None,
            };
            let (app, secret) = services
                .create_application(&actor, None, &params)
                .await
                .map_err(|e| failed("create the application", e))?;
            show_secret(&app, secret.expose(), format.format, "created")?;
        }
        ApplicationsCommand::Delete { application } => {
            let app = find_application(&services, &application).await?;
            services
                .delete_application(&actor, app.id, Ownership::Any)
                .await
                .map_err(|e| failed(&format!("delete application {}", app.id), e))?;
            say!(
                "deleted application {} ({:?}, {})",
                app.id,
                app.name,
                app.application_id
            );
        }
        ApplicationsCommand::RenewSecret {
            application,
            grace_seconds,
            format,
        } => {
            let app = find_application(&services, &application).await?;
            if grace_seconds.is_some_and(|s| s <= 0) {
                anyhow::bail!("--grace-seconds must be a positive number of seconds");
            }
            let renewal = Renewal {
                grace_seconds,
                lifetime_seconds: None,
            };
            let (app, secret, _) = services
                .renew_application_secret(&actor, app.id, Ownership::Any, renewal)
                .await
                .map_err(|e| failed(&format!("renew the secret of application {}", app.id), e))?;
            show_secret(
                &app,
                secret.expose(),
                format.format,
                "renewed the secret of",
            )?;
        }
    }
    Ok(())
}

/// The application a command names: its id, else its client_id.
async fn find_application(services: &Services, name: &str) -> anyhow::Result<Application> {
    if let Ok(id) = name.parse::<i64>() {
        match services.find_application(id, Ownership::Any).await {
            Ok(app) => return Ok(app),
            Err(latchkey_core::service::ServiceError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some((app, _)) = services.store().find_application_by_uid(name).await? {
        return Ok(app);
    }
    anyhow::bail!("no application {name:?} (give its id or its client_id)")
}

/// Who owns `app`, in words.
async fn owner(services: &Services, app: &Application) -> anyhow::Result<String> {
    Ok(match (app.owner_id, app.group_id) {
        (Some(id), _) => match services.find_user(id).await? {
            Some(u) => format!("user {}", u.username),
            None => format!("user {id}"),
        },
        (None, Some(id)) => match services.find_group(id).await? {
            Some(g) => format!("group {}", g.full_path),
            None => format!("group {id}"),
        },
        (None, None) if app.dynamic => "instance (registered dynamically)".to_owned(),
        (None, None) => "instance".to_owned(),
    })
}

/// An application with the secret it was just given, shown this once.
fn show_secret(app: &Application, secret: &str, format: Format, done: &str) -> anyhow::Result<()> {
    match format {
        // GitLab's `ApplicationWithSecret`.
        Format::Json => output::json(&ApplicationEntity::new(app, Some(secret))),
        Format::Text => {
            say!("{done} application {} ({:?})", app.id, app.name);
            output::record(&[
                ("application_id", app.application_id.clone()),
                ("secret", secret.to_owned()),
            ]);
            eprintln!("latchkey: the secret is shown only this once; keep it now");
            Ok(())
        }
    }
}
