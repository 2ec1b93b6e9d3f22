//! `latchkey serve`.

use anyhow::Context;
use latchkey_core::error::Chain;
use secrecy::ExposeSecret;

use crate::config::{ServeSettings, Settings};
use crate::startup::{self, Schema};

pub async fn run(settings: &Settings, serve: &ServeSettings) -> anyhow::Result<()> {
    let schema = if serve.migrate {
        Schema::Migrate
    } else {
        Schema::RequireCurrent
    };
    // A seed that does not parse fails before anything is touched.
    if let Some(path) = &serve.seed {
        super::read_state_file(path)?;
    }
    // The addresses first: a busy port is found before a database is
    // created or root's credentials are printed. Nothing is accepted on
    // them until the server is ready.
    let listener = tokio::net::TcpListener::bind(serve.listen)
        .await
        .with_context(|| format!("cannot listen on {}", serve.listen))?;
    let metrics_listener = match serve.metrics_listen {
        None => None,
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        ),
    };
    // Held until the process ends: one serving process per SQLite file.
    let _serving = startup::lock_sqlite_for_serving(&settings.database_url)?;
    let store = startup::open_store_for_serving(settings, schema).await?;
    let mut services = startup::services(store, settings, Some(serve));
    // Held until the process ends: dropping it flushes the events queued.
    let _audit_log = match &serve.audit_log {
        None => None,
        Some(target) => {
            let (sink, guard) = crate::audit_log::open(target)?;
            services = services.with_audit_sink(sink);
            Some(guard)
        }
    };
    if let Some(b) = services
        .bootstrap_root(
            serve
                .root_password
                .as_ref()
                .map(ExposeSecret::expose_secret),
            serve.root_token.as_ref().map(ExposeSecret::expose_secret),
        )
        .await
        .context("cannot create the root user")?
    {
        startup::print_bootstrap(&b);
    }
    if let Some(path) = &serve.seed {
        let options = latchkey_core::state::ApplyOptions {
            seeding: true,
            ..Default::default()
        };
        let applied = super::apply_file(&services, path, options)
            .await
            .context("cannot apply the seed")?;
        tracing::info!(
            file = %path.display(),
            changes = applied.changes.len(),
            "applied the seed"
        );
        if !applied.changes.is_empty() || !applied.generated.is_empty() {
            print!("{}", super::report(path, &applied, false));
        }
    }
    warn_without_administrator(&services).await;
    // The first signing key (RSA generation takes a while) is made in the
    // background, so a first start is ready at once; an ID token asked for
    // before it is ready makes one itself.
    let keys = services.clone();
    tokio::spawn(async move {
        if let Err(e) = keys.ensure_signing_key_once().await {
            tracing::warn!(error = %Chain(&e), "cannot create the OpenID Connect signing key yet");
        }
    });
    let open_files = crate::server::raise_open_files_limit();
    let limits = crate::server::Limits {
        header_timeout: serve.http.header_timeout,
        body_timeout: serve.http.body_timeout,
        idle_timeout: serve.http.idle_timeout,
        write_timeout: serve.http.write_timeout,
        shutdown_timeout: serve.http.shutdown_timeout,
        max_connections: serve.http.max_connections.unwrap_or_else(|| {
            crate::server::default_max_connections(open_files, settings.pool_size)
        }),
    };
    let local = listener.local_addr().context("no local address")?;
    tracing::info!(
        listen = %local,
        external_url = %serve.external_url,
        open_files_limit = open_files,
        max_connections = limits.max_connections,
        "latchkey is serving"
    );
    let state = startup::state(services, serve);
    if let (Some(metrics), Some(addr)) = (metrics_listener, serve.metrics_listen) {
        tracing::info!(listen = %addr, "metrics are served here");
        startup::spawn_metrics_listener(metrics, state.observer.clone());
    }
    startup::serve(listener, state, limits).await
}

/// A database whose users include no active administrator (made by the
/// command line or a state file before the first start, when no root is
/// created) can be managed only from the command line: say so.
async fn warn_without_administrator(services: &latchkey_core::service::Services) {
    let filter = latchkey_core::user::UserFilter {
        admins: true,
        active: true,
        ..Default::default()
    };
    let page = latchkey_core::pagination::PageRequest {
        page: 1,
        per_page: 1,
    };
    if let Ok((admins, _)) = services.list_users(&filter, page).await {
        if admins.is_empty() {
            tracing::warn!(
                "no active administrator: the admin API is out of reach; \
                 make one with `latchkey users update NAME --admin true` (or `users create --admin`)"
            );
        }
    }
}
