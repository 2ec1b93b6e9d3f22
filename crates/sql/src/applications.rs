//! Applications (OAuth clients): their statements and store methods.

use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::application::{
    join_grant_types, Application, ApplicationStore, ApplicationUpdate, ClientSecret,
    NewApplication, NewSecret, Ownership, Retire, SecretDeletion, SecretInfo, MAX_LIVE_SECRETS,
};
use latchkey_core::audit::{AuditEvent, NewAuditEvent};
use latchkey_core::pagination::{PageRequest, MAX_PER_PAGE};
use latchkey_core::store::{StoreError, COUNT_CAP};

use crate::app_count::{self, Blocks, Counted, Folded, FoldedCount, Stamp};
use crate::audit;
use crate::backend::{Access, Backend, Dialect, SqlStore};
use crate::batch::{self, Batches, Job};
use crate::conn::{count, query_as, query_one, query_opt_as, Conn, Row, Value};
use crate::params;
use crate::rows::app_from_row;
use crate::secrets;

macro_rules! app_columns {
    () => {
        "id, uid, name, redirect_uri, scopes, confidential, trusted, owner_id, created_at, \
         dynamic, grant_types, group_id"
    };
}
pub(crate) use app_columns;

/// Instance-wide applications: owned by neither a user nor a group (the
/// condition of the partial index `oauth_applications_instance`).
macro_rules! instance {
    () => {
        "owner_id IS NULL AND group_id IS NULL"
    };
}

macro_rules! insert_into {
    () => {
        "INSERT INTO oauth_applications
           (uid, name, secret_digest, redirect_uri, scopes, confidential, trusted, owner_id,
            created_at, updated_at, dynamic, registration_token_digest, grant_types, group_id)"
    };
}
macro_rules! insert_row {
    () => {
        concat!(
            insert_into!(),
            " VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $8, $9, $10, $11, $12)"
        )
    };
}
const INSERT: &str = concat!(insert_row!(), " RETURNING ", app_columns!());
/// The `WITH` clauses that insert an application (`app`, as stored) and
/// its first secret (`$13`: its hint), for a dialect with data-modifying
/// `WITH` (PostgreSQL).
macro_rules! with_app_and_secret {
    () => {
        concat!(
            "WITH app AS (",
            insert_row!(),
            " RETURNING ",
            app_columns!(),
            "), secret AS (INSERT INTO application_secrets
                 (application_id, digest, hint, created_at, expires_at)
               SELECT id, $3, NULLIF($13, ''), $8, NULL FROM app)"
        )
    };
}
/// The application and its first secret in one statement (PostgreSQL):
/// one round trip fewer per create.
const INSERT_WITH_SECRET: &str = concat!(
    with_app_and_secret!(),
    " SELECT ",
    app_columns!(),
    " FROM app"
);
/// [`INSERT_WITH_SECRET`] and an audit event about the application
/// (`$14`…`$25`: [`audit::event_params`]; its target id the new
/// application's), in one statement: on its own, without `BEGIN` and
/// `COMMIT`, it is still all or nothing.
const INSERT_RECORDED: &str = concat!(
    with_app_and_secret!(),
    ", event AS (",
    audit::insert_event!(
        "$14",
        "$15",
        "$16",
        "$17",
        "$18",
        "$19",
        "$20, $21, app.id, $22, $23, $24, $25",
        "FROM app"
    ),
    " RETURNING id, author_name, author_email, entity_path)
     SELECT app.*, event.id AS event_id, event.author_name AS event_author_name,
            event.author_email AS event_author_email, event.entity_path AS event_entity_path
     FROM app, event"
);
/// The columns of one create in [`INSERT_RECORDED_MANY`]'s JSON: `n`, its
/// place in the batch, then [`INSERT_RECORDED`]'s parameters in order
/// (`p1` is `$1`), with their types (checked against the parameters'
/// kinds by a test).
macro_rules! many_columns {
    () => {
        "n BIGINT, p1 TEXT, p2 TEXT, p3 TEXT, p4 TEXT, p5 TEXT, p6 BOOLEAN, p7 BIGINT, p8 BIGINT, \
         p9 BOOLEAN, p10 TEXT, p11 TEXT, p12 BIGINT, p13 TEXT, p14 BIGINT, p15 BIGINT, p16 TEXT, \
         p17 TEXT, p18 BIGINT, p19 TEXT, p20 TEXT, p21 TEXT, p22 TEXT, p23 TEXT, p24 TEXT, p25 TEXT"
    };
}
/// [`INSERT_RECORDED`] for several creates in one statement (PostgreSQL,
/// see [`crate::batch`]): `$1` is a JSON array with an object per
/// create (see [`many_columns`]). A row per create stored, matched to it
/// by its client id (`uid`, unique). Each create's owner (a user or a
/// group) is locked first, as its foreign key would, but `SKIP LOCKED`: a
/// create whose owner another transaction holds (its delete) is left out,
/// and runs again alone, as does one whose owner is gone (the create
/// alone tells). Locked by the foreign keys, owners were locked in the
/// batch's order, waiting for one while holding others: a user's delete
/// (the user, then the groups it deletes) could close a cycle with it.
const INSERT_RECORDED_MANY: &str = concat!(
    "WITH job AS (SELECT * FROM json_to_recordset(CAST($1 AS json)) AS j(",
    many_columns!(),
    ")),
     app AS (",
    insert_into!(),
    " SELECT p1, p2, p3, p4, p5, p6, FALSE, p7, p8, p8, p9, p10, p11, p12 FROM job
       LEFT JOIN LATERAL (SELECT id FROM users WHERE id = job.p7
                          OFFSET 0 FOR KEY SHARE SKIP LOCKED) u ON TRUE
       LEFT JOIN LATERAL (SELECT id FROM groups WHERE id = job.p12
                          OFFSET 0 FOR KEY SHARE SKIP LOCKED) g ON TRUE
       WHERE (job.p7 IS NULL OR u.id IS NOT NULL) AND (job.p12 IS NULL OR g.id IS NOT NULL)
       ORDER BY n
       RETURNING ",
    app_columns!(),
    "), secret AS (INSERT INTO application_secrets
         (application_id, digest, hint, created_at, expires_at)
       SELECT app.id, job.p3, NULLIF(job.p13, ''), job.p8, NULL
       FROM app JOIN job ON job.p1 = app.uid), event AS (",
    audit::insert_event!(
        "job.p14",
        "job.p15",
        "job.p16",
        "job.p17",
        "job.p18",
        "job.p19",
        "job.p20, job.p21, app.id, job.p22, job.p23, job.p24, job.p25",
        "FROM app JOIN job ON job.p1 = app.uid ORDER BY job.n"
    ),
    " RETURNING id, target_id, author_name, author_email, entity_path)
     SELECT app.*, event.id AS event_id, event.author_name AS event_author_name,
            event.author_email AS event_author_email, event.entity_path AS event_entity_path
     FROM app JOIN event ON event.target_id = app.id"
);
/// The count of instance applications, kept as deltas by a trigger
/// (schema 16): a sum over a few rows (folded every second, see
/// [`crate::Dialect::fold_instance_count`]), read in the page's snapshot.
const INSTANCE_COUNT: &str =
    "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM instance_application_counts";
/// One offset page: the ids from the index alone, from the first id of
/// its block on (`$1`), then their rows (after `$head`, columns of its
/// own); `$from`: where the ids are read.
macro_rules! page_instance {
    ($head:expr, $from:literal) => {
        concat!(
            "SELECT ",
            $head,
            app_columns!(),
            " FROM oauth_applications WHERE id IN
               (SELECT id FROM ",
            $from,
            " WHERE ",
            instance!(),
            " AND id >= $1 ORDER BY id LIMIT $2 OFFSET $3)
             ORDER BY id"
        )
    };
}
/// [`page_instance`] in each dialect: SQLite walks the partial index of
/// instance applications (ids alone, dense) only when named; left to
/// choose, it walks the table's rows from `$1` and tests each, twice the
/// time for the up to 1,023 entries a deep page skips (measured).
const PAGE_INSTANCE: [&str; 2] = [
    page_instance!(
        "",
        "oauth_applications INDEXED BY oauth_applications_instance"
    ),
    page_instance!("", "oauth_applications"),
];
/// The fold's stamp (schema 20) as a row's first columns, on PostgreSQL:
/// the generation of the folds and whether any delta is still unfolded, in
/// the statement's snapshot. The same generation as the remembered sums
/// per block were read at, and nothing unfolded: those sums are this
/// snapshot's count (see [`crate::app_count::Folded`]).
macro_rules! fold_stamp {
    () => {
        "(SELECT generation FROM instance_application_count_folds WHERE id = 1)
           AS fold_generation,
         EXISTS (SELECT 1 FROM instance_application_counts WHERE NOT folded) AS unfolded, "
    };
}
/// The same with the count of instance applications (as
/// [`INSTANCE_COUNT`]) on every row: a page and its total in one
/// statement, and so in one snapshot without a transaction around them;
/// on PostgreSQL with the fold's stamp.
macro_rules! page_instance_counted {
    ($stamp:expr) => {
        page_instance!(
            concat!(
                $stamp,
                "(SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT)
                  FROM instance_application_counts) AS total, "
            ),
            "oauth_applications"
        )
    };
}
const PAGE_INSTANCE_COUNTED: [&str; 2] = [
    page_instance_counted!(""),
    page_instance_counted!(fold_stamp!()),
];
/// [`PAGE_INSTANCE`] with the fold's stamp, for a page located by the
/// remembered sums (PostgreSQL).
const PAGE_INSTANCE_STAMPED: &str = page_instance!(fold_stamp!(), "oauth_applications");
/// The sums per block of the folded rows in the order of ids, and the
/// generation of the folds they belong to, in one snapshot (PostgreSQL;
/// one row with no block when there are none).
const FOLDED_SUMS: &str = "SELECT f.generation AS fold_generation, s.block_start, s.n
     FROM instance_application_count_folds f LEFT JOIN
       (SELECT block_start, CAST(SUM(delta) AS BIGINT) AS n FROM instance_application_counts
        WHERE folded GROUP BY block_start HAVING SUM(delta) > 0) s ON TRUE
     WHERE f.id = 1 ORDER BY s.block_start";
/// The count of instance applications per block of 1,024 ids (schema 17)
/// that holds any (`block_start`, `n`; a block never sums below zero).
macro_rules! block_sums {
    () => {
        "SELECT block_start, CAST(SUM(delta) AS BIGINT) AS n FROM instance_application_counts
         GROUP BY block_start HAVING SUM(delta) > 0"
    };
}
/// A deep offset page (`$1`, `$2`: offset and limit) and the total, in one
/// statement: the count per block of 1,024 ids (schema 17), summed in
/// order, says in which block the entry at the offset lies and how many of
/// the block's entries come before it; the page seeks to the block's first
/// id and walks at most a block's entries. Past the end, no row (no
/// block: `id >= NULL`; SQLite refuses a NULL offset).
macro_rules! page_instance_deep {
    ($stamp:expr) => {
        concat!(
            "WITH blocks AS (",
            block_sums!(),
            "),
             placed AS (
               SELECT block_start, n,
                      CAST(SUM(n) OVER (ORDER BY block_start) AS BIGINT) - n AS before
               FROM blocks),
             target AS (
               SELECT block_start, $1 - before AS skip FROM placed
               WHERE before <= $1 AND $1 < before + n)
             SELECT ",
            $stamp,
            "(SELECT CAST(SUM(n) AS BIGINT) FROM blocks) AS total, ",
            app_columns!(),
            " FROM oauth_applications WHERE id IN
               (SELECT id FROM oauth_applications WHERE ",
            instance!(),
            " AND id >= (SELECT block_start FROM target) ORDER BY id
                LIMIT $2 OFFSET COALESCE((SELECT skip FROM target), 0))
             ORDER BY id"
        )
    };
}
/// In each dialect; on PostgreSQL with the fold's stamp.
const PAGE_INSTANCE_DEEP: [&str; 2] = [page_instance_deep!(""), page_instance_deep!(fold_stamp!())];
/// The sums per block of 1,024 ids (schema 17) in the order of ids, for
/// a deep page where they are remembered (see [`crate::app_count`]).
const BLOCK_SUMS: &str = concat!(block_sums!(), " ORDER BY block_start");
/// Offsets below this are walked from the first entry of the index (as
/// few entries as a block holds at most); deeper ones seek to their block.
const SEEK_FROM: i64 = 1024;

const INSTANCE_AFTER: &str = concat!(
    "SELECT ",
    app_columns!(),
    " FROM oauth_applications WHERE ",
    instance!(),
    " AND id > $1 ORDER BY id LIMIT $2"
);
const FIND: &str = concat!(
    "SELECT ",
    app_columns!(),
    " FROM oauth_applications WHERE id = $1"
);
const DELETE: &str = "DELETE FROM oauth_applications WHERE id = $1";
const COUNT_OWNED: &str = "SELECT COUNT(*) FROM oauth_applications WHERE owner_id = $1";
const PAGE_OWNED: &str = concat!(
    "SELECT ",
    app_columns!(),
    " FROM oauth_applications WHERE owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
);
const COUNT_GROUP: &str = "SELECT COUNT(*) FROM oauth_applications WHERE group_id = $1";
const PAGE_GROUP: &str = concat!(
    "SELECT ",
    app_columns!(),
    " FROM oauth_applications WHERE group_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
);
const UPDATE: &str = concat!(
    "UPDATE oauth_applications
     SET name = COALESCE($2, name), scopes = COALESCE($3, scopes),
         redirect_uri = COALESCE($4, redirect_uri), confidential = COALESCE($5, confidential),
         trusted = COALESCE($6, trusted), updated_at = $7, grant_types = COALESCE($8, grant_types),
         owner_id = CASE WHEN CAST($9 AS BOOLEAN) THEN $10 ELSE owner_id END,
         group_id = CASE WHEN CAST($9 AS BOOLEAN) THEN $11 ELSE group_id END
     WHERE id = $1 RETURNING ",
    app_columns!()
);

/// `statement` (whose only condition so far is `id = $1`, and whose
/// parameters after `$1` are `rest`) narrowed to `scope`, with a
/// `RETURNING` list or a row lock after it; and its parameters.
fn scoped(
    statement: &str,
    scope: Ownership,
    tail: &str,
    id: i64,
    rest: Vec<Value>,
) -> (String, Vec<Value>) {
    let mut params = vec![Value::from(id)];
    params.extend(rest);
    let condition = match scope {
        Ownership::Any => String::new(),
        Ownership::Instance => concat!(" AND ", instance!()).to_owned(),
        Ownership::Group(group_id) => {
            params.push(Value::from(group_id));
            format!(" AND group_id = ${}", params.len())
        }
    };
    (format!("{statement}{condition}{tail}"), params)
}

/// Offsets up to this are cheap enough to walk on an async worker.
const BOUNDED_OFFSET: i64 = 10_000;

/// Is reading `page` bounded work (see [`Access::Read`])?
pub(crate) fn bounded(page: PageRequest) -> bool {
    page.offset() <= BOUNDED_OFFSET && page.limit() <= MAX_PER_PAGE as i64
}

/// An instance listing's total as reported: capped at `COUNT_CAP + 1`, as
/// GitLab caps its counts.
fn capped_total(n: i64) -> u64 {
    u64::try_from(n.min(COUNT_CAP + 1)).unwrap_or(0)
}

/// Insert an application and its first secret, and record `event` about
/// it (its target id the application's); both as stored.
pub(crate) async fn insert_recorded(
    c: &mut dyn Conn,
    dialect: Dialect,
    a: &NewApplication,
    event: NewAuditEvent,
) -> Result<(Application, AuditEvent), StoreError> {
    if dialect != Dialect::Postgres {
        let app = insert(c, dialect, a).await?;
        let event = NewAuditEvent {
            target_id: Some(app.id),
            ..event
        };
        let event = audit::insert(c, &event).await?;
        return Ok((app, event));
    }
    let params = recorded_params(a, &event);
    let mut row = query_one(c, INSERT_RECORDED, &params).await?;
    let (app, stored) = recorded_from_row(&mut row)?;
    Ok(with_event(app, event, stored))
}

impl<B: Backend> SqlStore<B> {
    /// One create, in a statement (PostgreSQL: atomic by itself) or a
    /// transaction (SQLite) of its own.
    async fn insert_recorded_alone(&self, a: NewApplication, event: NewAuditEvent) -> Created {
        let access = match B::DIALECT {
            Dialect::Postgres => Access::WRITE,
            Dialect::Sqlite => Access::TRANSACTION,
        };
        self.run(access, move |c| {
            Box::pin(async move { insert_recorded(c, B::DIALECT, &a, event).await })
        })
        .await
    }

    /// Run `jobs` as one statement (one alone as before), and answer each.
    async fn create_batch(&self, jobs: Vec<CreateJob>) {
        let alone = if jobs.len() > 1 {
            let params = vec![Value::from(batch::params_json(
                jobs.iter().map(|j| recorded_params(&j.input.0, &j.input.1)),
            ))];
            let rows = self
                .run(Access::WRITE, move |c| {
                    Box::pin(async move { c.query(INSERT_RECORDED_MANY, &params).await })
                })
                .await;
            match rows {
                Ok(rows) => answer_batch(jobs, rows),
                Err(e @ StoreError::Unavailable(_)) => return batch::fail_all(jobs, &e),
                // A create of the batch broke a rule (a client id taken):
                // nothing of the batch was stored; each create runs again
                // on its own for its own answer.
                Err(e) => {
                    tracing::debug!(error = %e, creates = jobs.len(), "a batch of creates failed; each runs alone");
                    jobs
                }
            }
        } else {
            jobs
        };
        for job in alone {
            let (app, event) = job.input;
            let created = self.insert_recorded_alone(app, event).await;
            let _ = job.reply.send(created);
        }
    }
}

/// What a create gives back.
type Created = Result<(Application, AuditEvent), StoreError>;

/// A create waiting for its batch (PostgreSQL, see [`crate::batch`]).
pub(crate) type CreateJob = Job<(NewApplication, NewAuditEvent), (Application, AuditEvent)>;

/// PostgreSQL's queue of creates.
pub(crate) type CreateBatches = Batches<(NewApplication, NewAuditEvent), (Application, AuditEvent)>;

/// Answer each create of a batch that [`INSERT_RECORDED_MANY`] stored,
/// from its rows (matched by client id); the creates it left out (their
/// owner held or gone), to run alone.
fn answer_batch(jobs: Vec<CreateJob>, rows: Vec<Row>) -> Vec<CreateJob> {
    batch::answer_stored(
        jobs,
        rows,
        |row| {
            let (app, stored) = recorded_from_row(row)?;
            Ok((app.application_id.clone(), (app, stored)))
        },
        |(app, _): &(NewApplication, NewAuditEvent)| app.application_id.as_str(),
        |(_, event), (app, stored)| with_event(app, event, stored),
    )
}

/// The event's columns a recorded create's row gives (see
/// [`INSERT_RECORDED`]): its id, author name and email, entity path.
type StoredEvent = (i64, String, Option<String>, Option<String>);

/// A row of [`INSERT_RECORDED`] or [`INSERT_RECORDED_MANY`]: the
/// application and what the database filled in of its event.
fn recorded_from_row(row: &mut Row) -> Result<(Application, StoredEvent), StoreError> {
    let app = app_from_row(row)?;
    let event = (
        row.int("event_id")?,
        row.text("event_author_name")?,
        row.opt_text("event_author_email")?,
        row.opt_text("event_entity_path")?,
    );
    Ok((app, event))
}

/// The created application and its event as stored (its target the
/// application).
fn with_event(
    app: Application,
    event: NewAuditEvent,
    (id, author_name, author_email, entity_path): StoredEvent,
) -> (Application, AuditEvent) {
    let event = audit::stored(
        event,
        id,
        Some(app.id),
        author_name,
        author_email,
        entity_path,
    );
    (app, event)
}

/// [`INSERT_RECORDED`]'s parameters, in order.
fn recorded_params(a: &NewApplication, event: &NewAuditEvent) -> Vec<Value> {
    let mut params = app_params(a);
    params.push(Value::from(&a.secret_hint));
    params.extend(audit::event_params(event));
    params
}

/// The parameters of [`insert_row`] for `a`.
fn app_params(a: &NewApplication) -> Vec<Value> {
    Vec::from(params![
        &a.application_id,
        &a.name,
        &a.secret_digest,
        &a.redirect_uri,
        a.scopes.joined(),
        a.confidential,
        a.owner_id,
        a.created_at,
        a.dynamic,
        &a.registration_token_digest,
        join_grant_types(&a.grant_types),
        a.group_id,
    ])
}

/// Insert an application and its first secret; as stored.
pub(crate) async fn insert(
    c: &mut dyn Conn,
    dialect: Dialect,
    a: &NewApplication,
) -> Result<Application, StoreError> {
    let mut params = app_params(a);
    if dialect == Dialect::Postgres {
        params.push(Value::from(&a.secret_hint));
        return app_from_row(&mut query_one(c, INSERT_WITH_SECRET, &params).await?);
    }
    let app = app_from_row(&mut query_one(c, INSERT, &params).await?)?;
    let first = NewSecret {
        digest: a.secret_digest.clone(),
        hint: a.secret_hint.clone(),
        created_at: a.created_at,
        expires_at: None,
    };
    // The application was inserted with this digest as its newest.
    secrets::insert_first(c, app.id, &first).await?;
    Ok(app)
}

/// Delete an application (with its grants and tokens); whether it was there.
pub(crate) async fn delete(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
) -> Result<bool, StoreError> {
    let (sql, params) = scoped(DELETE, scope, "", id, Vec::new());
    Ok(c.execute(&sql, &params).await? > 0)
}

/// An application; `lock` is the dialect's row lock (see
/// [`crate::Dialect::for_update`]) or empty.
pub(crate) async fn find(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    lock: &str,
) -> Result<Option<Application>, StoreError> {
    let (sql, params) = scoped(FIND, scope, lock, id, Vec::new());
    query_opt_as(c, &sql, &params, app_from_row).await
}

/// Change an application; as it is now, if it exists.
pub(crate) async fn update(
    c: &mut dyn Conn,
    id: i64,
    update: ApplicationUpdate,
    updated_at: i64,
) -> Result<Option<Application>, StoreError> {
    // Destructured so that a new field fails to compile here.
    let ApplicationUpdate {
        name,
        scopes,
        redirect_uri,
        confidential,
        trusted,
        grant_types,
        owner,
    } = update;
    let params = params![
        id,
        name,
        scopes.map(|s| s.joined()),
        redirect_uri,
        confidential,
        trusted,
        updated_at,
        join_grant_types(&grant_types),
        owner.is_some(),
        owner.and_then(|(user, _)| user),
        owner.and_then(|(_, group)| group),
    ];
    query_opt_as(c, UPDATE, &params, app_from_row).await
}

// --- secrets, in a unit of work (see `secrets.rs`) ----------------------

/// Make `list` the application's only secrets (the last its newest).
pub(crate) async fn replace_secrets(
    c: &mut dyn Conn,
    id: i64,
    list: Vec<NewSecret>,
) -> Result<(), StoreError> {
    c.execute(secrets::DELETE_ALL, &params![id]).await?;
    for secret in &list {
        secrets::insert(c, id, secret).await?;
    }
    Ok(())
}

/// The application (within `scope`), locked on PostgreSQL.
async fn locked_app(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    lock: &str,
) -> Result<Option<Application>, StoreError> {
    find(c, id, scope, lock).await
}

pub(crate) async fn renew_secret(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    secret: NewSecret,
    retire: Retire,
    lock: &str,
) -> Result<Option<(Application, SecretInfo)>, StoreError> {
    let Some(app) = locked_app(c, id, scope, lock).await? else {
        return Ok(None);
    };
    match retire {
        Retire::Now => c.execute(secrets::DELETE_ALL, &params![id]).await?,
        Retire::At(at) => {
            let live = count(c, secrets::COUNT_LIVE, &params![id, secret.created_at]).await?;
            if live >= MAX_LIVE_SECRETS as u64 {
                return Err(StoreError::Conflict("secrets".to_owned()));
            }
            c.execute(secrets::RETIRE_BY, &params![id, at]).await?
        }
    };
    let info = secrets::insert(c, id, &secret).await?;
    Ok(Some((app, info)))
}

pub(crate) async fn delete_secret(
    c: &mut dyn Conn,
    application_id: i64,
    secret_id: i64,
    now: i64,
    lock: &str,
) -> Result<SecretDeletion, StoreError> {
    // The application's row orders concurrent deletions of its secrets.
    if locked_app(c, application_id, Ownership::Any, lock)
        .await?
        .is_none()
    {
        return Ok(SecretDeletion::NotFound);
    }
    let Some(found) = query_opt_as(
        c,
        secrets::FIND_ONE,
        &params![application_id, secret_id],
        secrets::info_from_row,
    )
    .await?
    else {
        return Ok(SecretDeletion::NotFound);
    };
    let live = found.expires_at.is_none_or(|at| at > now);
    if live && count(c, secrets::COUNT_LIVE, &params![application_id, now]).await? <= 1 {
        return Ok(SecretDeletion::LastLive);
    }
    c.execute(secrets::DELETE_ONE, &params![application_id, secret_id])
        .await?;
    Ok(SecretDeletion::Deleted)
}

pub(crate) async fn revoke_all(
    c: &mut dyn Conn,
    id: i64,
    scope: Ownership,
    secret: NewSecret,
    now: i64,
    lock: &str,
) -> Result<Option<(Application, SecretInfo)>, StoreError> {
    let Some(app) = locked_app(c, id, scope, lock).await? else {
        return Ok(None);
    };
    // `lock` is `FOR UPDATE` on PostgreSQL: every unit issuing a token on
    // this application holds its row `FOR KEY SHARE` from its start (see
    // `oauth::parents_locked!` and `insert_token!`), so each has either
    // committed (its token is revoked below, in a later snapshot) or waits
    // and then finds its code, device grant, refresh token or secret gone
    // or revoked. (`FOR NO KEY UPDATE` would let a code's redemption commit
    // its token between the revocation and the grants' delete.)
    // The grants before the tokens: their delete updates the tokens issued
    // from them (`ON DELETE SET NULL`), the order in which the expired-data
    // sweep takes them (revoking first held a chain's token while waiting
    // for its expired grant, which the sweep held while waiting for the
    // token).
    c.execute(secrets::DELETE_ALL, &params![id]).await?;
    c.execute(secrets::DELETE_GRANTS, &params![id]).await?;
    c.execute(secrets::REVOKE_TOKENS, &params![id, now]).await?;
    c.execute(secrets::DELETE_DEVICE_GRANTS, &params![id])
        .await?;
    let info = secrets::insert(c, id, &secret).await?;
    Ok(Some((app, info)))
}

/// How an offset page of instance applications is read.
fn instance_page_access(page: PageRequest, snapshot: bool) -> Access {
    Access::Read {
        // At most a block's worth of index entries walked, at any offset.
        bounded: page.limit() <= MAX_PER_PAGE as i64,
        snapshot,
        ordered: true,
    }
}

/// The fold's stamp on a row of a PostgreSQL page.
fn stamp_from_row(row: &Row) -> Result<Stamp, StoreError> {
    Ok(Stamp {
        generation: row.int("fold_generation")?,
        unfolded: row.bool("unfolded")?,
    })
}

impl<B: Backend> SqlStore<B> {
    /// An offset page of instance applications and their count, summed by
    /// the page's statement (on PostgreSQL with the fold's stamp, `None`
    /// past the end).
    async fn counted_page(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, i64, Option<Stamp>), StoreError> {
        // Past the end no row carries the total: the page again with the
        // count after it, in one snapshot (a page on its own is one
        // statement, and its own snapshot, without a transaction).
        match self.counted_page_in(page, false).await? {
            Some(counted) => Ok(counted),
            None => self
                .counted_page_in(page, true)
                .await?
                .ok_or_else(|| StoreError::internal("a counted page came back without its count")),
        }
    }

    /// [`Self::counted_page`] in one snapshot (`snapshot`: the count after
    /// an empty page as well), or only the page (`None` when it is empty).
    async fn counted_page_in(
        &self,
        page: PageRequest,
        snapshot: bool,
    ) -> Result<Option<(Vec<Application>, i64, Option<Stamp>)>, StoreError> {
        let dialect = B::DIALECT;
        let seek = page.offset() >= SEEK_FROM;
        let (sql, params) = if seek {
            (
                dialect.choose(PAGE_INSTANCE_DEEP),
                Vec::from(params![page.offset(), page.limit()]),
            )
        } else {
            (
                dialect.choose(PAGE_INSTANCE_COUNTED),
                Vec::from(params![i64::MIN, page.limit(), page.offset()]),
            )
        };
        self.run(instance_page_access(page, snapshot), move |c| {
            Box::pin(async move {
                let rows = query_as(c, sql, &params, |row| {
                    let stamp = match dialect {
                        Dialect::Postgres => Some(stamp_from_row(row)?),
                        Dialect::Sqlite => None,
                    };
                    Ok((stamp, row.int("total")?, app_from_row(row)?))
                })
                .await?;
                let (stamp, n) = match rows.first() {
                    Some((stamp, n, _)) => (*stamp, *n),
                    None if snapshot => (None, count(c, INSTANCE_COUNT, &[]).await? as i64),
                    None => return Ok(None),
                };
                let apps = rows.into_iter().map(|(_, _, app)| app).collect();
                Ok(Some((apps, n, stamp)))
            })
        })
        .await
    }

    /// An offset page of instance applications on PostgreSQL: located by
    /// the remembered folded sums when the page's own statement says they
    /// are its snapshot's count, else counted by the page's statement
    /// (which says when the sums are worth reading again).
    async fn list_instance_folded(
        &self,
        cache: &FoldedCount,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        if let Some(folded) = cache.usable() {
            let located = if page.offset() >= SEEK_FROM {
                folded.blocks.locate(page.offset())
            } else {
                (page.offset() < folded.blocks.total()).then_some((i64::MIN, page.offset()))
            };
            if let Some((start, skip)) = located {
                let params = params![start, page.limit(), skip];
                let rows = self
                    .read_all(
                        instance_page_access(page, false),
                        PAGE_INSTANCE_STAMPED,
                        params,
                        |row| Ok((stamp_from_row(row)?, app_from_row(row)?)),
                    )
                    .await?;
                if let Some((stamp, _)) = rows.first() {
                    if app_count::current(&folded, *stamp) {
                        let apps = rows.into_iter().map(|(_, app)| app).collect();
                        return Ok((apps, capped_total(folded.blocks.total())));
                    }
                    cache.saw(*stamp);
                }
            }
        }
        let (apps, n, stamp) = self.counted_page(page).await?;
        if stamp.is_some_and(|stamp| cache.saw(stamp)) {
            // For the next page; this one is answered either way.
            if let Err(e) = self.read_folded(cache).await {
                tracing::debug!(error = %e, "cannot read the folded counts (read again next page)");
            }
        }
        Ok((apps, capped_total(n)))
    }

    /// Read the folded sums per block and their generation, and remember them.
    async fn read_folded(&self, cache: &FoldedCount) -> Result<(), StoreError> {
        let rows = self
            .read_all(Access::SCAN, FOLDED_SUMS, params![], |row| {
                Ok((
                    row.int("fold_generation")?,
                    row.opt_int("block_start")?,
                    row.opt_int("n")?,
                ))
            })
            .await?;
        let Some(&(generation, _, _)) = rows.first() else {
            return Err(StoreError::internal(
                "the generation of the folds is missing",
            ));
        };
        let sums = rows
            .into_iter()
            .filter_map(|(_, start, n)| Some((start?, n?)));
        cache.put(Folded {
            generation,
            blocks: Blocks::from_sums(sums),
        });
        Ok(())
    }
}

#[async_trait]
impl<B: Backend> ApplicationStore for SqlStore<B> {
    async fn rehash_secret(
        &self,
        secret_id: i64,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.rehash(secrets::REHASH, secret_id, old, new).await
    }

    async fn insert_application_recorded(
        &self,
        a: NewApplication,
        event: NewAuditEvent,
    ) -> Result<(Application, AuditEvent), StoreError> {
        let owned = a.owner_id.is_some();
        let created = match &self.create_batches {
            Some(batches) => {
                let run = |store: Self, jobs| async move { store.create_batch(jobs).await };
                batches
                    .submit((a, event), "application creates", self, run)
                    .await
            }
            None => self.insert_recorded_alone(a, event).await,
        };
        if !owned {
            self.applications_changed();
        }
        created
    }

    async fn insert_application(&self, a: NewApplication) -> Result<Application, StoreError> {
        let owned = a.owner_id.is_some();
        // The application and its first secret, together.
        let created = self
            .run(Access::TRANSACTION, move |c| {
                Box::pin(async move { insert(c, B::DIALECT, &a).await })
            })
            .await;
        if !owned {
            self.applications_changed();
        }
        created
    }

    async fn list_instance_applications(
        &self,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        if let Some(cache) = &self.folded_count {
            return self.list_instance_folded(cache, page).await;
        }
        // When changes cannot be heard, the remembered count is forgotten
        // and summed again: the listing does not fail for that.
        let _ = self.check_outside_changes().await;
        let known = self.app_count.as_ref().and_then(|c| c.get());
        let ticket = self.app_count.as_ref().map(|c| c.ticket());
        let seek = page.offset() >= SEEK_FROM;
        let limit = page.limit();
        let page_sql = B::DIALECT.choose(PAGE_INSTANCE);
        let at = move |start: i64, skip: i64| Vec::from(params![start, limit, skip]);
        match (&known, seek) {
            // The count (and, for a deep page, where its block starts) is
            // remembered: the page alone, from its block.
            (Some(counted), false) => {
                let params = at(i64::MIN, page.offset());
                let apps = self
                    .read_all(
                        instance_page_access(page, false),
                        page_sql,
                        params,
                        app_from_row,
                    )
                    .await?;
                return Ok((apps, capped_total(counted.total)));
            }
            (
                Some(Counted {
                    total: n,
                    blocks: Some(blocks),
                }),
                true,
            ) => {
                let Some((start, skip)) = blocks.locate(page.offset()) else {
                    return Ok((Vec::new(), capped_total(*n)));
                };
                let apps = self
                    .read_all(
                        instance_page_access(page, false),
                        page_sql,
                        at(start, skip),
                        app_from_row,
                    )
                    .await?;
                return Ok((apps, capped_total(*n)));
            }
            _ => {}
        }
        if seek && self.app_count.is_some() {
            // A deep page where counts are remembered: the sums per block
            // and the page from one snapshot; the sums are kept for the
            // next deep page.
            let (apps, blocks) = self
                .run(instance_page_access(page, true), move |c| {
                    Box::pin(async move {
                        let sums = query_as(c, BLOCK_SUMS, &[], |row| {
                            Ok((row.int("block_start")?, row.int("n")?))
                        })
                        .await?;
                        let blocks = Blocks::from_sums(sums);
                        let apps = match blocks.locate(page.offset()) {
                            Some((start, skip)) => {
                                query_as(c, page_sql, &at(start, skip), app_from_row).await?
                            }
                            None => Vec::new(),
                        };
                        Ok((apps, blocks))
                    })
                })
                .await?;
            let n = blocks.total();
            if let (Some(cache), Some(ticket)) = (&self.app_count, ticket) {
                let blocks = Some(Arc::new(blocks));
                cache.put(ticket, Counted { total: n, blocks });
            }
            return Ok((apps, capped_total(n)));
        }
        let (apps, n, _) = self.counted_page(page).await?;
        if let (None, Some(cache), Some(ticket)) = (known, &self.app_count, ticket) {
            let blocks = None;
            cache.put(ticket, Counted { total: n, blocks });
        }
        Ok((apps, capped_total(n)))
    }

    async fn instance_applications_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Application>, StoreError> {
        let access = if limit <= MAX_PER_PAGE as i64 {
            Access::POINT
        } else {
            Access::SCAN
        };
        let params = params![after_id, limit];
        self.read_all(access, INSTANCE_AFTER, params, app_from_row)
            .await
    }

    async fn search_instance_applications(
        &self,
        search: &str,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let matching = format!(
            concat!(instance!(), " AND ({} OR uid = $2)"),
            B::DIALECT.nocase_like("name", "$1")
        );
        let count_sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM oauth_applications WHERE {matching} LIMIT {})
             AS capped",
            COUNT_CAP + 1
        );
        let page_sql = format!(
            concat!(
                "SELECT ",
                app_columns!(),
                " FROM oauth_applications WHERE {} ORDER BY id LIMIT $3 OFFSET $4"
            ),
            matching
        );
        let params = params![crate::users::contains_pattern(search), search];
        self.read_counted_page(count_sql, page_sql, params.into(), page, app_from_row)
            .await
    }

    async fn find_application(
        &self,
        id: i64,
        scope: Ownership,
    ) -> Result<Option<Application>, StoreError> {
        self.run(Access::POINT, move |c| {
            Box::pin(async move { find(c, id, scope, "").await })
        })
        .await
    }

    async fn delete_application(&self, id: i64, scope: Ownership) -> Result<bool, StoreError> {
        let done = self
            .run(Access::WRITE, move |c| {
                Box::pin(async move { delete(c, id, scope).await })
            })
            .await;
        self.applications_changed();
        done
    }

    async fn application_secrets(
        &self,
        application_id: i64,
        now: i64,
    ) -> Result<Vec<SecretInfo>, StoreError> {
        self.run(Access::POINT, move |c| {
            Box::pin(async move { secrets::live(c, application_id, now).await })
        })
        .await
    }

    async fn record_secret_usage(&self, used: Vec<(i64, i64)>) -> Result<u64, StoreError> {
        self.record_uses(secrets::TOUCH, used).await
    }

    async fn list_owned_applications(
        &self,
        owner_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let access = Access::Read {
            bounded: bounded(page),
            snapshot: true,
            ordered: false,
        };
        self.run(access, move |c| {
            Box::pin(async move {
                let n = count(c, COUNT_OWNED, &params![owner_id]).await?;
                let page = params![owner_id, page.limit(), page.offset()];
                Ok((query_as(c, PAGE_OWNED, &page, app_from_row).await?, n))
            })
        })
        .await
    }

    async fn list_group_applications(
        &self,
        group_id: i64,
        page: PageRequest,
    ) -> Result<(Vec<Application>, u64), StoreError> {
        let access = Access::Read {
            bounded: bounded(page),
            snapshot: true,
            ordered: false,
        };
        self.run(access, move |c| {
            Box::pin(async move {
                let n = count(c, COUNT_GROUP, &params![group_id]).await?;
                let page = params![group_id, page.limit(), page.offset()];
                Ok((query_as(c, PAGE_GROUP, &page, app_from_row).await?, n))
            })
        })
        .await
    }

    async fn update_application(
        &self,
        id: i64,
        changes: ApplicationUpdate,
        updated_at: i64,
    ) -> Result<Option<Application>, StoreError> {
        self.run(Access::WRITE, move |c| {
            Box::pin(async move { update(c, id, changes, updated_at).await })
        })
        .await
    }

    async fn find_application_by_uid(
        &self,
        application_id: &str,
    ) -> Result<Option<(Application, Vec<ClientSecret>)>, StoreError> {
        // Every client authentication at /oauth/token starts here.
        let uid = application_id.to_owned();
        let rows = self
            .run(Access::POINT, move |c| {
                Box::pin(async move { c.query(secrets::BY_UID, &params![uid]).await })
            })
            .await?;
        secrets::with_secrets(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::audit::Entity;
    use latchkey_core::context::{Context, Via};
    use latchkey_core::scopes::Scopes;

    /// The batch's column types are the single create's parameters' kinds,
    /// in order.
    #[test]
    fn the_batch_columns_are_the_parameters_in_order() {
        let app = NewApplication {
            application_id: "uid".to_owned(),
            secret_digest: "d".to_owned(),
            secret_hint: "h".to_owned(),
            name: "n".to_owned(),
            redirect_uri: "https://a.example/cb".to_owned(),
            scopes: Scopes::from_stored("api"),
            confidential: true,
            owner_id: None,
            group_id: None,
            created_at: 0,
            dynamic: false,
            registration_token_digest: None,
            grant_types: None,
        };
        let ctx = Context {
            user_id: None,
            via: Via::Session,
            address: None,
            request_id: None,
        };
        let event = NewAuditEvent::new(&ctx, 0, "e", Entity::instance(), "m");
        batch::tests::assert_columns_match(
            many_columns!(),
            &recorded_params(&app, &event),
            INSERT_RECORDED,
        );
    }
}
