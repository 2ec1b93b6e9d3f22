//! What the commands print: aligned columns for people, JSON for scripts
//! (`--format json`), and the errors of the core services in words.

use clap::ValueEnum;
use latchkey_core::clock::gitlab_timestamp;
use latchkey_core::service::{ServiceError, Services};
use latchkey_core::user::User;
use serde::Serialize;

/// Write one line to standard output; when the reader has gone away
/// (a closed pipe), stop here with success, as `head` expects.
pub fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("latchkey: error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// How a command prints what it shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (lists) or `key: value` lines (one record).
    #[default]
    Text,
    /// One JSON document: an array for lists, an object for one record.
    Json,
}

/// `--format`, shared by every command that shows something.
#[derive(Debug, Clone, clap::Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Print rows under their headers, each column as wide as its widest cell
/// (the last one unpadded); "(none)" alone for no rows.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        say!("(none)");
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        say!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Print `pairs` as aligned `key: value` lines.
pub fn record(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (key, value) in pairs {
        say!("{:<width$} {value}", format!("{key}:"));
    }
}

/// Print `value` as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A time in ms as GitLab writes it, or "-".
pub fn when(ms: Option<i64>) -> String {
    ms.map(gitlab_timestamp).unwrap_or_else(|| "-".to_owned())
}

/// "yes" or "no", for a flag in a table or record.
pub fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Everything a paged listing holds: `fetch` asked for page 1, 2, … of 100
/// until a page comes back short.
pub async fn every_page<T, F, Fut>(mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(latchkey_core::pagination::PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, u64), ServiceError>>,
{
    const PER_PAGE: u64 = 100;
    let mut all = Vec::new();
    for page in 1.. {
        let (batch, _) = fetch(latchkey_core::pagination::PageRequest {
            page,
            per_page: PER_PAGE,
        })
        .await?;
        let done = (batch.len() as u64) < PER_PAGE;
        all.extend(batch);
        if done {
            break;
        }
    }
    Ok(all)
}

/// A service's refusal in words, saying what was being done.
pub fn failed(doing: &str, e: ServiceError) -> anyhow::Error {
    let why = match e {
        ServiceError::Forbidden(Some(why)) => why.to_owned(),
        ServiceError::Forbidden(None) => "not allowed".to_owned(),
        other => latchkey_core::error::Chain(&other).to_string(),
    };
    anyhow::anyhow!("cannot {doing}: {why}")
}

/// The user a command names: a username, else (all digits) an id.
pub async fn find_user(services: &Services, name: &str) -> anyhow::Result<User> {
    if let Some(user) = services.find_user_by_username(name).await? {
        return Ok(user);
    }
    if let Ok(id) = name.parse::<i64>() {
        if let Some(user) = services.find_user(id).await? {
            return Ok(user);
        }
    }
    anyhow::bail!("no user named {name:?} (give a username or a user id)")
}
