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

    /// Add `condition`, whose `?1`, `?2`, … stand for `values` in order
    /// (read in one pass: the work is linear in the condition's length).
    pub fn add_each(&mut self, condition: &str, values: Vec<Value>) {
        let before = self.params.len();
        let mut text = String::with_capacity(condition.len() + 8);
        let mut rest = condition;
        while let Some(at) = rest.find('?') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            match after[..digits].parse::<usize>() {
                Ok(n) if n >= 1 => text.push_str(&format!("${}", before + n)),
                _ => text.push('?'),
            }
            rest = &after[digits..];
        }
        text.push_str(rest);
        self.params.extend(values);
        self.conditions.push(format!("({text})"));
    }

    /// Add `column IN (…)` (or `NOT IN`) of `values`, one parameter each.
    pub fn add_in(&mut self, column: &str, negated: bool, values: Vec<Value>) {
        let list: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
        let not = if negated { "NOT " } else { "" };
        self.add_each(&format!("{column} {not}IN ({})", list.join(", ")), values);
    }

    /// Add a condition that takes no parameter.
    pub fn add_plain(&mut self, condition: &str) {
        self.conditions.push(format!("({condition})"));
    }

    /// The next parameter's placeholder, for a LIMIT or OFFSET after the clause.
    pub fn next_placeholder(&self, skip: usize) -> String {
        format!("${}", self.params.len() + 1 + skip)
    }

    /// ` AND a AND b`, or nothing: for a statement with conditions of its own.
    pub fn and_clause(&self) -> String {
        self.conditions
            .iter()
            .map(|c| format!(" AND {c}"))
            .collect()
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
    use crate::conn::Value;

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
        w.add_each(
            "e = ?2 OR f = ?1",
            vec![Value::from(7i64), Value::from("y")],
        );
        let mut many = Where::default();
        many.add_in("id", true, (0..12i64).map(Value::from).collect());
        assert!(many.clause().contains("$1, $2,") && many.clause().ends_with("$11, $12))"));
        assert!(w.clause().ends_with(" AND (e = $4 OR f = $3)"));
        assert_eq!(w.params.len(), 4);
        assert!(w.and_clause().starts_with(" AND (a >= $1) AND (b)"));
    }
}
