//! The parameter parser's unit tests.

use super::*;

fn form(raw: &str) -> Result<Params, ApiError> {
    let mut p = Params::default();
    p.add_urlencoded(raw.as_bytes())?;
    Ok(p)
}

#[test]
fn form_values() {
    let p = form("name=My+App&scopes=api read_user&x=%41&flag").unwrap();
    assert_eq!(p.string("name"), StrParam::Value("My App".into()));
    assert_eq!(p.string("scopes"), StrParam::Value("api read_user".into()));
    assert_eq!(p.string("x"), StrParam::Value("A".into()));
    assert_eq!(p.string("flag"), StrParam::Value(String::new()));
    assert_eq!(p.string("nope"), StrParam::Missing);
    let p = form("scopes[]=api&scopes[]=email&h[a]=1").unwrap();
    assert_eq!(p.string("scopes"), StrParam::Invalid);
    assert_eq!(p.string("h"), StrParam::Invalid);
    assert!(form("name=%ff").is_err());
    assert!(form("name=a%00b").is_err());
}

#[test]
fn a_rails_forms_fields_answer_to_their_plain_names() {
    let p = form(
        "doorkeeper_application%5Bname%5D=Wiki&doorkeeper_application%5Bscopes%5D%5B%5D=api\
         &doorkeeper_application%5Bscopes%5D%5B%5D=openid&confidential=false\
         &doorkeeper_application%5Bconfidential%5D=true&other%5Bx%5D=1",
    )
    .unwrap()
    .unnest("doorkeeper_application");
    assert_eq!(p.get_str("name"), Some("Wiki"));
    assert_eq!(
        p.get("scopes"),
        Some(&Value::Array(vec![
            Value::Str("api".into()),
            Value::Str("openid".into())
        ]))
    );
    // A plain field sent itself wins; other models stay as they were.
    assert_eq!(p.get_str("confidential"), Some("false"));
    assert_eq!(p.get_str("x"), None);
    assert_eq!(p.get_str("doorkeeper_application[name]"), Some("Wiki"));
}

#[test]
fn booleans() {
    for (raw, want) in [
        ("c=true", BoolParam::Value(true)),
        ("c=YES", BoolParam::Value(true)),
        ("c=1", BoolParam::Value(true)),
        ("c=off", BoolParam::Value(false)),
        ("c=f", BoolParam::Value(false)),
        ("c=", BoolParam::Default),
        ("", BoolParam::Default),
        ("c=maybe", BoolParam::Invalid),
    ] {
        assert_eq!(form(raw).unwrap().boolean("c"), want, "{raw}");
    }
    let mut p = Params::default();
    p.add_json(br#"{"c": null, "d": false, "n": 5, "a": [1]}"#)
        .unwrap();
    assert_eq!(p.boolean("c"), BoolParam::Default);
    assert_eq!(p.boolean("d"), BoolParam::Value(false));
    assert_eq!(p.string("n"), StrParam::Value("5".into()));
    assert_eq!(p.string("c"), StrParam::Null);
    assert_eq!(p.boolean("a"), BoolParam::Invalid);
}

#[test]
fn json_bodies() {
    let mut p = Params::default();
    assert!(p.add_json(b"").is_ok());
    assert!(p.add_json(b"{}").is_ok());
    assert!(matches!(p.add_json(b"{"), Err(ApiError::MalformedBody)));
    assert!(matches!(p.add_json(b"[1]"), Err(ApiError::MalformedBody)));
    assert!(matches!(
        p.add_json(br#"{"a":"\u0000"}"#),
        Err(ApiError::BadRequest(_))
    ));
}

#[test]
fn ids() {
    assert_eq!(parse_id("12").unwrap(), Some(12));
    assert_eq!(parse_id("+12").unwrap(), Some(12));
    assert_eq!(parse_id("-1").unwrap(), None);
    assert_eq!(parse_id("0").unwrap(), None);
    assert_eq!(parse_id("99999999999999999999999").unwrap(), None);
    for bad in ["abc", "12abc", "", "-", "1.5", " 1"] {
        assert!(parse_id(bad).is_err(), "{bad:?}");
    }
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,8}"
    }

    fn encode(pairs: &[(String, String)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }

    proptest! {
        #[test]
        fn forms_round_trip_and_later_values_win(
            pairs in prop::collection::vec((key(), any::<String>().prop_filter("no NUL", |v| !v.contains('\0'))), 0..40)
        ) {
            let mut p = Params::default();
            p.add_urlencoded(encode(&pairs).as_bytes()).unwrap();
            prop_assert_eq!(p.count, pairs.len());
            for (k, _) in &pairs {
                let last = pairs.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.clone());
                prop_assert_eq!(p.string(k), StrParam::Value(last.unwrap_or_default()));
            }
        }

        #[test]
        fn bracket_arrays_keep_every_item_in_order(
            name in key(),
            items in prop::collection::vec("[a-z0-9 ]{0,6}", 1..50),
        ) {
            let pairs: Vec<(String, String)> =
                items.iter().map(|v| (format!("{name}[]"), v.clone())).collect();
            let mut p = Params::default();
            p.add_urlencoded(encode(&pairs).as_bytes()).unwrap();
            let want: Vec<Value> = items.iter().map(|v| Value::Str(v.clone())).collect();
            prop_assert_eq!(p.get(&name), Some(&Value::Array(want)));
        }

        #[test]
        fn any_bytes_parse_or_fail_cleanly(raw in prop::collection::vec(any::<u8>(), 0..400)) {
            let mut p = Params::default();
            if p.add_urlencoded(&raw).is_ok() {
                // Each parameter comes from at least one byte of input.
                prop_assert!(p.count <= raw.len());
                prop_assert!(p.entries.len() <= 2 * p.count);
            }
            let mut j = Params::default();
            let _ = j.add_json(&raw);
        }

        #[test]
        fn the_thousand_and_first_parameter_is_refused(n in 990usize..1010, brackets in any::<bool>()) {
            let body: Vec<String> = (0..n)
                .map(|i| if brackets { format!("k{i}[]=1") } else { format!("k{i}=1") })
                .collect();
            let mut p = Params::default();
            let result = p.add_urlencoded(body.join("&").as_bytes());
            prop_assert_eq!(result.is_ok(), n <= MAX_PARAMS);
            // Work stops at the cap: never more entries than parameters allowed.
            prop_assert!(p.entries.len() <= 2 * MAX_PARAMS);
        }

        #[test]
        fn json_objects_round_trip(
            obj in prop::collection::btree_map(key(), "[^\\x00]{0,10}", 0..30),
            nested in prop::collection::vec(any::<i32>(), 0..20),
        ) {
            let mut v: serde_json::Map<String, serde_json::Value> =
                obj.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect();
            v.insert("nested_list".to_owned(), serde_json::json!(nested));
            let body = serde_json::Value::Object(v).to_string();
            let mut p = Params::default();
            p.add_json(body.as_bytes()).unwrap();
            for (k, want) in &obj {
                prop_assert_eq!(p.string(k), StrParam::Value(want.clone()));
            }
            prop_assert_eq!(p.count, obj.len() + 1 + nested.len());
        }

        #[test]
        fn multipart_round_trips(
            fields in prop::collection::vec((key(), "[a-zA-Z0-9 ]{0,20}"), 0..20),
        ) {
            let boundary = "XyZzy0boundary";
            let mut body = String::new();
            for (k, v) in &fields {
                body.push_str(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                ));
            }
            body.push_str(&format!("--{boundary}--\r\n"));
            let (parts, ()) = Request::builder()
                .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
                .body(())
                .unwrap()
                .into_parts();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut p = Params::default();
            rt.block_on(add_multipart(&mut p, parts, Bytes::from(body))).unwrap();
            prop_assert_eq!(p.count, fields.len());
            for (k, _) in &fields {
                let last = fields.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.clone());
                prop_assert_eq!(p.string(k), StrParam::Value(last.unwrap_or_default()));
            }
        }
    }
}

#[test]
fn times_as_grape_reads_them() {
    let at = parse_time("2026-12-02T08:00:00Z").expect("rfc 3339");
    assert_eq!(parse_time("2026-12-02T08:00:00.000Z"), Some(at));
    assert_eq!(parse_time("2026-12-02T09:00:00+01:00"), Some(at));
    assert_eq!(parse_time("2026-12-02T08:00:00"), Some(at), "UTC");
    assert_eq!(parse_time("2026-12-02 08:00:00"), Some(at));
    assert_eq!(
        parse_time("2026-12-02"),
        Some(at - 8 * 3600 * 1000),
        "a date is its midnight"
    );
    assert_eq!(parse_time("yesterday"), None);
    assert_eq!(parse_time("2026-13-01"), None);
    assert_eq!(parse_time(""), None);
}
