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
//!
//! `latchkey-bench-loader --database-url URL --pool authorization_code|device_code
//!  --count N --client-id ID --redirect-uri URI --out FILE` instead writes N
//! live, single-use grants for root and the application whose client id is
//! ID, straight into the database a server is serving (beside it: one short
//! transaction), and their plaintexts to FILE, one per line: authorization
//! codes (unredeemed, for REDIRECT-URI, scope `api`) or approved device
//! codes. The token grants that redeem them are measured with such pools,
//! because minting a code through the browser flow costs a write of its own.
//! The pool's unused leftovers from an earlier call are deleted first.

use std::str::FromStr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

const BATCH: i64 = 100_000;

struct Args {
    url: String,
    apps: i64,
    users: i64,
    pool: Option<Pool>,
}

/// Which grants `--pool` writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    AuthorizationCode,
    DeviceCode,
}

struct Pool {
    kind: Kind,
    count: i64,
    client_id: String,
    redirect_uri: String,
    out: String,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut apps = 0;
    let mut users = 0;
    let mut kind = None;
    let mut count = 0;
    let mut client_id = None;
    let mut redirect_uri = None;
    let mut out = None;
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
            "--pool" => {
                kind = Some(match value("--pool")?.as_str() {
                    "authorization_code" => Kind::AuthorizationCode,
                    "device_code" => Kind::DeviceCode,
                    other => return Err(format!("--pool: unknown kind {other:?}")),
                });
            }
            "--count" => {
                count = value("--count")?
                    .parse()
                    .map_err(|e| format!("--count: {e}"))?;
            }
            "--client-id" => client_id = Some(value("--client-id")?),
            "--redirect-uri" => redirect_uri = Some(value("--redirect-uri")?),
            "--out" => out = Some(value("--out")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let pool = match kind {
        None => None,
        Some(kind) => Some(Pool {
            kind,
            count,
            client_id: client_id.ok_or("--pool needs --client-id")?,
            redirect_uri: redirect_uri.unwrap_or_default(),
            out: out.ok_or("--pool needs --out")?,
        }),
    };
    Ok(Args {
        url: url
            .or_else(|| std::env::var("LATCHKEY_DATABASE_URL").ok())
            .ok_or("--database-url (or LATCHKEY_DATABASE_URL) is required")?,
        apps,
        users,
        pool,
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
            eprintln!(
                "       latchkey-bench-loader --database-url URL --pool authorization_code|device_code \\
                 --count N --client-id ID [--redirect-uri URI] --out FILE"
            );
            return std::process::ExitCode::from(2);
        }
    };
    let done = match &args.pool {
        Some(pool) => write_pool(&args.url, pool).await,
        None => run(&args).await,
    };
    match done {
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

/// Marks the pool's rows, so that the next call deletes what this one left.
const POOL_NONCE: &str = "latchkey-bench-pool";
const POOL_USER_CODE_PREFIX: &str = "BENCHPOOL-";
/// How long a pool's grants live (the run redeems them within seconds).
const POOL_TTL_MS: i64 = 30 * 60 * 1000;

/// `--pool`: N single-use grants for root, in one transaction beside the
/// running server (WAL: its readers go on; its writer waits at most the
/// transaction), plaintexts to the output file.
async fn write_pool(url: &str, pool: &Pool) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut conn = SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await?;
    let application: i64 = sqlx::query_scalar("SELECT id FROM oauth_applications WHERE uid = ?1")
        .bind(&pool.client_id)
        .fetch_optional(&mut conn)
        .await?
        .ok_or_else(|| format!("no application has the client id {}", pool.client_id))?;
    let root: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'root'")
        .fetch_optional(&mut conn)
        .await?
        .ok_or("the database has no root user")?;
    let now = now_ms();
    let run = format!("{now:x}{:x}", std::process::id());
    let mut plaintexts = String::new();
    let mut tx = conn.begin().await?;
    match pool.kind {
        Kind::AuthorizationCode => {
            sqlx::query("DELETE FROM oauth_access_grants WHERE nonce = ?1 AND redeemed_at IS NULL")
                .bind(POOL_NONCE)
                .execute(&mut *tx)
                .await?;
        }
        Kind::DeviceCode => {
            sqlx::query("DELETE FROM device_grants WHERE user_code LIKE ?1")
                .bind(format!("{POOL_USER_CODE_PREFIX}%"))
                .execute(&mut *tx)
                .await?;
        }
    }
    for i in 0..pool.count {
        let code = format!("bench-{run}-{i}");
        let digest = latchkey_core::secret::digest(&code);
        match pool.kind {
            Kind::AuthorizationCode => {
                sqlx::query(
                    "INSERT INTO oauth_access_grants
                       (application_id, user_id, code_digest, redirect_uri, scopes, nonce,
                        created_at, expires_at, auth_time)
                     VALUES (?1, ?2, ?3, ?4, 'api', ?5, ?6, ?7, ?6)",
                )
                .bind(application)
                .bind(root)
                .bind(&digest)
                .bind(&pool.redirect_uri)
                .bind(POOL_NONCE)
                .bind(now)
                .bind(now + POOL_TTL_MS)
                .execute(&mut *tx)
                .await?;
            }
            Kind::DeviceCode => {
                sqlx::query(
                    "INSERT INTO device_grants
                       (application_id, device_code_digest, user_code, scopes, created_at,
                        expires_at, user_id, status, auth_time)
                     VALUES (?1, ?2, ?3, 'api', ?4, ?5, ?6, 'approved', ?4)",
                )
                .bind(application)
                .bind(&digest)
                .bind(format!("{POOL_USER_CODE_PREFIX}{run}-{i}"))
                .bind(now)
                .bind(now + POOL_TTL_MS)
                .bind(root)
                .execute(&mut *tx)
                .await?;
            }
        }
        plaintexts.push_str(&code);
        plaintexts.push('\n');
    }
    tx.commit().await?;
    conn.close().await?;
    std::fs::write(&pool.out, plaintexts)?;
    eprintln!(
        "latchkey-bench-loader: {} grants in {:.2}s",
        pool.count,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
