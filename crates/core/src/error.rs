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
