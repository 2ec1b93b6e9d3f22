//! WHERE clauses built from the filters a listing was given, with their
//! parameters numbered as they are added.

use crate::conn::Value;

/// Conditions joined by AND, and their parameters (`$1`, `$2`, … in order).
#[derive(Debug, Default)]
pub(crate) struct Where {
    conditions: Vec<String>,
    pub params: Vec<Value>,
}

impl Where {
    /// Add `condition`, whose every `?` stands for `value` (so it may not
    /// hold a `?` of its own).
    pub fn add(&mut self, condition: &str, value: impl Into<Value>) {
        self.params.push(value.into());
        let placeholder = format!("${}", self.params.len());
        self.conditions
            .push(format!("({})", condition.replace('?', &placeholder)));
    }

    /// Add a condition that takes no parameter.
    pub fn add_plain(&mut self, condition: &str) {
        self.conditions.push(format!("({condition})"));
    }

    /// The next parameter's placeholder, for a LIMIT or OFFSET after the clause.
    pub fn next_placeholder(&self, skip: usize) -> String {
        format!("${}", self.params.len() + 1 + skip)
    }

    /// ` WHERE a AND b`, or nothing.
    pub fn clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Where;

    #[test]
    fn parameters_are_numbered_in_order() {
        let mut w = Where::default();
        assert_eq!(w.clause(), "");
        w.add("a >= ?", 1i64);
        w.add_plain("b");
        w.add("c = ? OR d = ?", "x");
        assert_eq!(
            w.clause(),
            " WHERE (a >= $1) AND (b) AND (c = $2 OR d = $2)"
        );
        assert_eq!(w.next_placeholder(0), "$3");
        assert_eq!(w.params.len(), 2);
    }
}
