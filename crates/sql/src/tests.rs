use crate::conn::{Row, Value};
use latchkey_core::dump::{Cell, Kind};
use std::sync::Arc;

fn row(names: &[&str], values: Vec<Cell>) -> Row {
    let names: Arc<[Box<str>]> = names.iter().map(|n| Box::from(*n)).collect();
    Row::new(names, values)
}

#[test]
fn rows_decode_by_name_and_refuse_the_wrong_kind() {
    let mut r = row(
        &["id", "name", "admin", "gone"],
        vec![
            Cell::Int(7),
            Cell::Text("x".into()),
            Cell::Int(1),
            Cell::Null,
        ],
    );
    assert_eq!(r.int("id").ok(), Some(7));
    assert_eq!(r.text("name").ok().as_deref(), Some("x"));
    assert!(
        r.text("name").is_err(),
        "taken: a second read is not a value"
    );
    assert_eq!(r.bool("admin").ok(), Some(true));
    assert_eq!(r.opt_int("gone").ok(), Some(None));
    assert!(r.int("gone").is_err(), "NULL is not a number");
    assert!(r.int("name").is_err(), "text is not a number");
    assert!(r.text("id").is_err(), "a number is not text");
    assert!(r.int("missing").is_err());
}

#[test]
fn copied_rows_take_their_columns_kinds() {
    let r = row(
        &["id", "admin", "name"],
        vec![Cell::Int(1), Cell::Int(0), Cell::Null],
    );
    let cells = r
        .cells(&[
            ("id", Kind::Int),
            ("admin", Kind::Bool),
            ("name", Kind::Text),
        ])
        .ok();
    assert_eq!(
        cells,
        Some(vec![Cell::Int(1), Cell::Bool(false), Cell::Null])
    );
    let bad = row(&["id"], vec![Cell::Text("x".into())]);
    assert!(bad.cells(&[("id", Kind::Int)]).is_err());
}

#[test]
fn null_parameters_keep_their_type() {
    assert_eq!(Value::from(None::<i64>), Value::Int(None));
    assert_eq!(Value::from(None::<String>), Value::Text(None));
    assert_eq!(Value::from_cell(&Cell::Null, Kind::Bool), Value::Bool(None));
}
