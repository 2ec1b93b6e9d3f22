//! Group memberships: their statements, and the member listings (each
//! user once, at their highest level, with who added them).

use std::sync::LazyLock;

use latchkey_core::group::{Member, MemberFilter, Membership, MembershipUpdate, NewMembership};
use latchkey_core::store::StoreError;

use crate::backend::Dialect;
use crate::conn::{count, invalid, query_one, query_opt_as, Conn, Row, Value};
use crate::filter::Where;
use crate::params;
use crate::rows::user_from_row;
use crate::users::contains_pattern;

macro_rules! membership_columns {
    () => {
        "id, group_id, user_id, access_level, expires_at, created_by, created_at, updated_at"
    };
}

/// A live membership (of `m`): not expired by today (`$today`).
macro_rules! live {
    ($m:literal, $today:literal) => {
        concat!(
            "(",
            $m,
            ".expires_at IS NULL OR ",
            $m,
            ".expires_at > ",
            $today,
            ")"
        )
    };
}

pub(crate) use live;
pub(crate) use membership_columns;

const FIND_MEMBERSHIP: &str = concat!(
    "SELECT ",
    membership_columns!(),
    " FROM group_members WHERE group_id = $1 AND user_id = $2"
);
const INSERT_MEMBERSHIP: &str = concat!(
    "INSERT INTO group_members (group_id, user_id, access_level, expires_at, created_by,
                                created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ",
    membership_columns!()
);
const UPDATE_MEMBERSHIP: &str = concat!(
    "UPDATE group_members
     SET access_level = COALESCE($3, access_level),
         expires_at = CASE WHEN CAST($4 AS BOOLEAN) THEN $5 ELSE expires_at END,
         updated_at = $6
     WHERE group_id = $1 AND user_id = $2 RETURNING ",
    membership_columns!()
);
const DELETE_MEMBERSHIP: &str = "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2";
const DELETE_MEMBERSHIPS_BELOW: &str =
    "DELETE FROM group_members WHERE user_id = $2 AND group_id IN
       (WITH RECURSIVE d(id) AS (
          SELECT g.id FROM groups g WHERE g.parent_id = $1
          UNION ALL
          SELECT g.id FROM groups g JOIN d ON g.parent_id = d.id
        ) SELECT d.id FROM d)";
const COUNT_OWNERS: &str = concat!(
    "SELECT COUNT(*) FROM group_members m WHERE m.group_id = $1 AND m.access_level = 50 AND ",
    live!("m", "$2")
);

/// A group's members (with `$2` true, its ancestors' too), each user once,
/// at their highest level (the earliest such membership), with the user.
/// `{filter}` narrows the users; `{tail}` orders, pages or counts.
fn members_statement(filter: &str, select: &str, tail: &str) -> String {
    format!(
        concat!(
            "WITH RECURSIVE a(id, parent_id) AS (
               SELECT id, parent_id FROM groups WHERE id = $1
               UNION ALL
               SELECT g.id, g.parent_id FROM groups g JOIN a ON g.id = a.parent_id
               WHERE CAST($2 AS BOOLEAN)
             ),
             ranked AS (
               SELECT m.id, m.group_id, m.user_id, m.access_level, m.expires_at, m.created_by,
                      m.created_at, m.updated_at,
                      ROW_NUMBER() OVER (PARTITION BY m.user_id
                                         ORDER BY m.access_level DESC, m.id) AS rank
               FROM group_members m JOIN a ON m.group_id = a.id
               WHERE ",
            live!("m", "$3"),
            "
             )
             SELECT {select}
             FROM ranked r JOIN users u ON u.id = r.user_id
             LEFT JOIN users c ON c.id = r.created_by AND c.id <> r.user_id
             WHERE r.rank = 1{filter}{tail}"
        ),
        select = select,
        filter = filter,
        tail = tail,
    )
}

const MEMBER_SELECT: &str = "r.id AS m_id, r.group_id AS m_group_id, r.user_id AS m_user_id,
       r.access_level AS m_access_level, r.expires_at AS m_expires_at,
       r.created_by AS m_created_by, r.created_at AS m_created_at, r.updated_at AS m_updated_at,
       u.id AS u_id, u.username AS u_username, u.email AS u_email, u.name AS u_name,
       u.admin AS u_admin, u.state AS u_state, u.created_at AS u_created_at,
       u.external AS u_external, u.updated_at AS u_updated_at, u.profile AS u_profile,
       u.avatar AS u_avatar,
       c.id AS c_id, c.username AS c_username, c.email AS c_email, c.name AS c_name,
       c.admin AS c_admin, c.state AS c_state, c.created_at AS c_created_at,
       c.external AS c_external, c.updated_at AS c_updated_at, c.profile AS c_profile,
       c.avatar AS c_avatar";

/// One member of `$1` by user id (`$4`).
pub(crate) static ONE: LazyLock<String> =
    LazyLock::new(|| members_statement(" AND r.user_id = $4", MEMBER_SELECT, ""));

/// The count and page statements of a member listing, and their
/// parameters (the page's LIMIT and OFFSET come after them).
pub(crate) fn page(
    d: Dialect,
    group_id: i64,
    filter: &MemberFilter,
) -> (String, String, Vec<Value>) {
    let mut w = Where::default();
    // $1..$3 are the statement's own.
    w.params = params![group_id, filter.inherited, filter.today.as_str()].into();
    if let Some(q) = &filter.query {
        let either = format!(
            "({} OR {})",
            d.nocase_like("u.username", "?"),
            d.nocase_like("u.name", "?")
        );
        w.add(&either, contains_pattern(q));
    }
    for (ids, negated) in [(&filter.user_ids, false), (&filter.skip_users, true)] {
        if !ids.is_empty() {
            let values = ids.iter().map(|id| Value::from(*id)).collect();
            w.add_in("r.user_id", negated, values);
        }
    }
    let and = w.and_clause();
    let count_sql = members_statement(&and, "COUNT(*)", "");
    let page_sql = members_statement(
        &and,
        MEMBER_SELECT,
        &format!(
            " ORDER BY r.id LIMIT {} OFFSET {}",
            w.next_placeholder(0),
            w.next_placeholder(1)
        ),
    );
    (count_sql, page_sql, w.params)
}

pub(crate) fn level_of(row: &Row, col: &str) -> Result<i32, StoreError> {
    let n = row.int(col)?;
    i32::try_from(n).map_err(|_| invalid(format!("access level {n}")))
}

fn membership_from_row(row: &mut Row, prefix: &str) -> Result<Membership, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(Membership {
        id: row.int(&col("id"))?,
        group_id: row.int(&col("group_id"))?,
        user_id: row.int(&col("user_id"))?,
        access_level: level_of(row, &col("access_level"))?,
        expires_at: row.opt_text(&col("expires_at"))?,
        created_by: row.opt_int(&col("created_by"))?,
        created_at: row.int(&col("created_at"))?,
        updated_at: row.int(&col("updated_at"))?,
    })
}

pub(crate) fn plain_membership(row: &mut Row) -> Result<Membership, StoreError> {
    membership_from_row(row, "")
}

pub(crate) fn member_from_row(row: &mut Row) -> Result<Member, StoreError> {
    let creator = match row.opt_int("c_id")? {
        Some(_) => Some(user_from_row(row, "c_")?),
        None => None,
    };
    Ok(Member {
        membership: membership_from_row(row, "m_")?,
        user: user_from_row(row, "u_")?,
        creator,
    })
}

// --- writes, on a unit of work's connection ----------------------------

pub(crate) async fn find_membership(
    c: &mut dyn Conn,
    group_id: i64,
    user_id: i64,
    lock: &str,
) -> Result<Option<Membership>, StoreError> {
    let sql = format!("{FIND_MEMBERSHIP}{lock}");
    query_opt_as(c, &sql, &params![group_id, user_id], plain_membership).await
}

pub(crate) async fn insert_membership(
    c: &mut dyn Conn,
    m: &NewMembership,
) -> Result<Membership, StoreError> {
    let params = params![
        m.group_id,
        m.user_id,
        i64::from(m.access_level),
        &m.expires_at,
        m.created_by,
        m.created_at,
    ];
    plain_membership(&mut query_one(c, INSERT_MEMBERSHIP, &params).await?)
}

pub(crate) async fn update_membership(
    c: &mut dyn Conn,
    group_id: i64,
    user_id: i64,
    u: MembershipUpdate,
    at: i64,
) -> Result<Option<Membership>, StoreError> {
    let MembershipUpdate {
        access_level,
        expires_at,
    } = u;
    let params = params![
        group_id,
        user_id,
        access_level.map(i64::from),
        expires_at.is_some(),
        expires_at.flatten(),
        at,
    ];
    query_opt_as(c, UPDATE_MEMBERSHIP, &params, plain_membership).await
}

pub(crate) async fn delete_membership(
    c: &mut dyn Conn,
    group_id: i64,
    user_id: i64,
    with_subgroups: bool,
) -> Result<bool, StoreError> {
    let deleted = c
        .execute(DELETE_MEMBERSHIP, &params![group_id, user_id])
        .await?
        > 0;
    if deleted && with_subgroups {
        c.execute(DELETE_MEMBERSHIPS_BELOW, &params![group_id, user_id])
            .await?;
    }
    Ok(deleted)
}

pub(crate) async fn count_owners(
    c: &mut dyn Conn,
    group_id: i64,
    today: &str,
) -> Result<u64, StoreError> {
    count(c, COUNT_OWNERS, &params![group_id, today]).await
}
