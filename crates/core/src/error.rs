//! What errors carry as their cause, and how a chain of causes is shown.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The cause of a fault: the driver's or the system's own error, kept
/// whole (errors are cloned, so it is shared).
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// A cause latchkey describes in words (no underlying error to keep).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message(pub String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

/// `e` as a cause.
pub fn cause(e: impl Error + Send + Sync + 'static) -> Cause {
    Arc::new(e)
}

/// Words as a cause.
pub fn message(words: impl Into<String>) -> Cause {
    Arc::new(Message(words.into()))
}

/// What was being done, over the error that stopped it.
#[derive(Debug)]
pub struct Context {
    what: String,
    source: Cause,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl Error for Context {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// `e`, under words saying what was being done.
pub fn context(what: impl Into<String>, e: impl Error + Send + Sync + 'static) -> Cause {
    Arc::new(Context {
        what: what.into(),
        source: Arc::new(e),
    })
}

/// An error and every cause under it, joined by ": " (for logs and the
/// command line; an error's own text never repeats its cause's).
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// What a store answers when it cannot do what was asked. Faults keep
/// their cause (`source()`); their own text never repeats it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; the text names what was taken.
    #[error("{0} has already been taken")]
    Conflict(String),
    /// What the write hangs on (its application or user) was deleted, by a
    /// write that won a race with it: the answer is what the caller would
    /// get a moment later (the parent is not found).
    #[error("the application or user this belongs to is gone")]
    Gone,
    /// The write would leave the instance without an active administrator.
    #[error("the last active administrator cannot be blocked, demoted or deleted")]
    LastAdministrator,
    /// The database could not be reached or did not answer in time: try
    /// again later.
    #[error("the database is unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else: a bug, a corrupt database, a refused URL.
    #[error("the database failed")]
    Internal(#[source] Cause),
}

impl StoreError {
    /// Unavailable, for the reason given in words.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Self::Unavailable(crate::error::message(why))
    }

    /// Internal, for the reason given in words.
    pub fn internal(why: impl Into<String>) -> Self {
        Self::Internal(crate::error::message(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Cause);

    #[test]
    fn a_chain_shows_every_cause_once() {
        let e = Outer(message("inner"));
        assert_eq!(Chain(&e).to_string(), "outer: inner");
    }
}
