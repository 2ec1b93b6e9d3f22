//! Bulk-loads a latchkey SQLite database for the scale benchmark.
//!
//! `latchkey-bench-loader --database-url sqlite:///abs/path.db?mode=rwc --apps 1000000 --users 100000`
//!
//! The database is opened (and migrated) through latchkey's own store,
//! `latchkey_sqlite::SqliteStore::connect` + `migrate`, so the schema is
//! exactly the server's. The rows are then written with raw SQL in large
//! transactions, generated inside SQLite (a recursive CTE and
//! `randomblob`) so a million rows take seconds, not the hours a million
//! HTTP requests would. Every user gets one personal access token with a
//! random digest (nobody knows its plaintext); applications are
//! instance-wide (`owner_id IS NULL`) with random `uid` and secret digests.

use std::str::FromStr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

const BATCH: i64 = 100_000;

struct Args {
    url: String,
    apps: i64,
    users: i64,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut apps = 0;
    let mut users = 0;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--database-url" => url = Some(value("--database-url")?),
            "--apps" => {
                apps = value("--apps")?
                    .parse()
                    .map_err(|e| format!("--apps: {e}"))?;
            }
            "--users" => {
                users = value("--users")?
                    .parse()
                    .map_err(|e| format!("--users: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        url: url
            .or_else(|| std::env::var("LATCHKEY_DATABASE_URL").ok())
            .ok_or("--database-url (or LATCHKEY_DATABASE_URL) is required")?,
        apps,
        users,
    })
}

// A bench tool, outside latchkey's clock.
#[allow(clippy::disallowed_methods)]
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("latchkey-bench-loader: {e}");
            eprintln!("usage: latchkey-bench-loader --database-url URL [--apps N] [--users N]");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey-bench-loader: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    // The server's own open + migrate: same file, same schema.
    let store = latchkey_sqlite::SqliteStore::connect(&latchkey_sqlite::Options::new(&args.url))
        .await
        .map_err(|e| format!("cannot open {}: {e}", args.url))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("cannot migrate: {e}"))?;
    store.close().await;

    // One bulk connection. synchronous=OFF while loading; the final
    // checkpoint and close make it all durable before we exit.
    let mut conn = SqliteConnectOptions::from_str(&args.url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .foreign_keys(true)
        .pragma("cache_size", "-262144")
        .connect()
        .await?;
    let now = now_ms();

    let first_user: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM users")
        .fetch_one(&mut conn)
        .await?;
    let mut done = 0;
    while done < args.users {
        let n = BATCH.min(args.users - done);
        let lo = first_user + done;
        let hi = lo + n - 1;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x < ?2)
             INSERT INTO users (id, username, email, name, password_digest, admin, state, created_at)
             SELECT x, 'bench-user-' || x, 'bench-user-' || x || '@bench.example',
                    'Bench User ' || x, NULL, 0, 'active', ?3
             FROM c",
        )
        .bind(lo)
        .bind(hi)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
             SELECT id, 'bench', lower(hex(randomblob(32))), 'api read_api', NULL, 0, ?3
             FROM users WHERE id BETWEEN ?1 AND ?2",
        )
        .bind(lo)
        .bind(hi)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done += n;
        eprintln!(
            "latchkey-bench-loader: {done} users (+1 token each), {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }

    let first_app: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM oauth_applications")
            .fetch_one(&mut conn)
            .await?;
    let mut done = 0;
    while done < args.apps {
        let n = BATCH.min(args.apps - done);
        let lo = first_app + done;
        let hi = lo + n - 1;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x < ?2)
             INSERT INTO oauth_applications
               (id, uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id, created_at, updated_at)
             SELECT x, lower(hex(randomblob(32))), 'bench-app-' || x, lower(hex(randomblob(32))),
                    'https://b.example/cb', 'api', 1, 0, NULL, ?3, ?3
             FROM c",
        )
        .bind(lo)
        .bind(hi)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done += n;
        eprintln!(
            "latchkey-bench-loader: {done} applications, {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }

    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM personal_access_tokens),
                (SELECT COUNT(*) FROM oauth_applications)",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    println!(
        "{{\"users\":{},\"tokens\":{},\"applications\":{},\"seconds\":{:.2}}}",
        counts.0,
        counts.1,
        counts.2,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
