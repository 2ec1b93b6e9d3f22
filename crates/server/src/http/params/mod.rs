//! Request parameters the way GitLab's Grape sees them: the query string
//! merged with a JSON, form-urlencoded or multipart body (body wins).
//! Values keep their JSON type so that `name: ["x"]` can be told apart
//! from `name: "x"`.
//!
//! Bad bytes never reach a handler: invalid UTF-8 and NUL bytes are a 400,
//! a body over the limit is a 413, unparsable JSON is Grape's 400, more
//! than [`MAX_PARAMS`] parameters a 400, a charset other than UTF-8 a 415.
//! Each is answered in the route's dialect (see [`Dialect`]).
//!
//! Parsing runs before authentication, so it is linear in the request's
//! size: lookups and `a[]=` appends go through a hash index of the last
//! entry of each name, never a scan of the earlier ones.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, request::Parts};
use bytes::Bytes;
use percent_encoding::percent_decode;

use super::errors::ApiError;
use super::AppState;

/// The most parameters one request may carry (query and body together;
/// every JSON value counts, nested ones too).
pub const MAX_PARAMS: usize = 1000;
/// The most values one list parameter (`skip_groups`, `user_ids`) takes.
pub const MAX_LIST_ITEMS: usize = 100;

mod dialect;
pub use dialect::{is_operations_path, Dialect, ParamsRejection};

/// One parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A JSON number, as written.
    Number(String),
    Str(String),
    Array(Vec<Value>),
    Object,
}

fn too_many() -> ApiError {
    ApiError::BadRequest(format!("too many parameters (at most {MAX_PARAMS})"))
}

fn check_str(s: String) -> Result<String, ApiError> {
    if s.contains('\0') {
        Err(ApiError::BadRequest(
            "parameters must not contain NUL bytes".to_owned(),
        ))
    } else {
        Ok(s)
    }
}

/// All parameters of a request, in arrival order (later wins on lookup).
#[derive(Debug, Clone, Default)]
pub struct Params {
    entries: Vec<(String, Value)>,
    /// The position in `entries` of the last entry of each name.
    last: HashMap<String, usize>,
    /// Parameters counted against [`MAX_PARAMS`].
    count: usize,
    /// Files of a multipart body (parts with a file name), by field name:
    /// their bytes as sent, never read as text.
    files: Vec<(String, Bytes)>,
}

/// What a String-typed parameter turned out to be (Grape's coercion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrParam {
    Missing,
    Null,
    Value(String),
    Invalid,
}

/// What a Boolean-typed parameter turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolParam {
    /// Absent, `null` or empty: the declared default applies.
    Default,
    Value(bool),
    Invalid,
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.last
            .get(key)
            .and_then(|i| self.entries.get(*i))
            .map(|(_, v)| v)
    }

    fn count_one(&mut self) -> Result<(), ApiError> {
        self.count += 1;
        if self.count > MAX_PARAMS {
            Err(too_many())
        } else {
            Ok(())
        }
    }

    fn push(&mut self, key: String, value: Value) {
        self.last.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
    }

    /// A non-empty string value, for credentials and pagination.
    /// The file uploaded as `key` (a multipart part with a file name).
    pub fn file(&self, key: &str) -> Option<&Bytes> {
        self.files
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, b)| b)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) if !s.is_empty() => Some(s),
            Some(Value::Number(n)) => Some(n),
            _ => None,
        }
    }

    /// A Rails form's fields (`doorkeeper_application[name]`,
    /// `personal_access_token[scopes][]`, as GitLab's pages name them) read
    /// as plain ones: each `model[field]` also answers to `field`, unless
    /// `field` was sent itself. Linear in the fields sent.
    pub fn unnest(mut self, model: &str) -> Self {
        let nested: Vec<(String, usize)> = self
            .last
            .iter()
            .filter_map(|(key, at)| {
                let field = key
                    .strip_prefix(model)?
                    .strip_prefix('[')?
                    .strip_suffix(']')?;
                (!field.is_empty() && !field.contains('[')).then(|| (field.to_owned(), *at))
            })
            .collect();
        for (field, at) in nested {
            self.last.entry(field).or_insert(at);
        }
        self
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A `type: String` parameter: numbers and booleans become strings;
    /// arrays and objects are invalid.
    pub fn string(&self, key: &str) -> StrParam {
        match self.get(key) {
            None => StrParam::Missing,
            Some(Value::Null) => StrParam::Null,
            Some(Value::Str(s)) => StrParam::Value(s.clone()),
            Some(Value::Number(n)) => StrParam::Value(n.clone()),
            Some(Value::Bool(b)) => StrParam::Value(b.to_string()),
            Some(Value::Array(_) | Value::Object) => StrParam::Invalid,
        }
    }

    /// A `type: Boolean` parameter (dry-types `Params::Bool`).
    pub fn boolean(&self, key: &str) -> BoolParam {
        match self.get(key) {
            None | Some(Value::Null) => BoolParam::Default,
            Some(Value::Bool(b)) => BoolParam::Value(*b),
            Some(Value::Str(s) | Value::Number(s)) => match s.to_ascii_lowercase().as_str() {
                "" => BoolParam::Default,
                "1" | "true" | "t" | "yes" | "y" | "on" => BoolParam::Value(true),
                "0" | "false" | "f" | "no" | "n" | "off" => BoolParam::Value(false),
                _ => BoolParam::Invalid,
            },
            Some(Value::Array(_) | Value::Object) => BoolParam::Invalid,
        }
    }

    /// A required `type: String` parameter: absent adds "KEY is missing",
    /// an array or object "KEY is invalid"; null is `None` (the model
    /// then finds it blank).
    pub fn required_string(&self, key: &str, errors: &mut Vec<String>) -> Option<String> {
        match self.string(key) {
            StrParam::Missing => {
                errors.push(format!("{key} is missing"));
                None
            }
            StrParam::Invalid => {
                errors.push(format!("{key} is invalid"));
                None
            }
            StrParam::Null => None,
            StrParam::Value(v) => Some(v),
        }
    }

    /// An optional `type: String` parameter: absent or null is `None`;
    /// an array or object adds Grape's "is invalid" to `errors`.
    pub fn optional_string(&self, key: &str, errors: &mut Vec<String>) -> Option<String> {
        match self.string(key) {
            StrParam::Missing | StrParam::Null => None,
            StrParam::Invalid => {
                errors.push(format!("{key} is invalid"));
                None
            }
            StrParam::Value(v) => Some(v),
        }
    }

    /// An optional String parameter with Grape's `allow_blank: false`:
    /// absent is `None`; null, empty or whitespace adds "is empty"; an
    /// array or object adds "is invalid".
    pub fn optional_nonblank_string(&self, key: &str, errors: &mut Vec<String>) -> Option<String> {
        match self.string(key) {
            StrParam::Missing => None,
            StrParam::Invalid => {
                errors.push(format!("{key} is invalid"));
                None
            }
            StrParam::Null => {
                errors.push(format!("{key} is empty"));
                None
            }
            StrParam::Value(v) if v.trim().is_empty() => {
                errors.push(format!("{key} is empty"));
                None
            }
            StrParam::Value(v) => Some(v),
        }
    }

    /// An optional `type: Boolean` parameter; junk adds "is invalid".
    /// A Grape `DateTime` parameter as ms (see [`parse_time`]); "KEY is
    /// invalid" when it is not one.
    pub fn optional_time(&self, key: &str, errors: &mut Vec<String>) -> Option<i64> {
        let raw = self.get_str(key)?;
        let parsed = parse_time(raw);
        if parsed.is_none() {
            errors.push(format!("{key} is invalid"));
        }
        parsed
    }

    /// An optional `type: Integer` parameter; junk adds "KEY is invalid".
    pub fn optional_int(&self, key: &str, errors: &mut Vec<String>) -> Option<i64> {
        let raw = match self.get(key)? {
            Value::Null => return None,
            Value::Str(s) if s.is_empty() => return None,
            Value::Str(s) | Value::Number(s) => s,
            _ => {
                errors.push(format!("{key} is invalid"));
                return None;
            }
        };
        match raw.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(format!("{key} is invalid"));
                None
            }
        }
    }

    /// A `type: Array[Integer]` parameter: `key[]=1&key[]=2`, a JSON
    /// array, or `1,2` (Grape's comma-separated coercion); empty when
    /// absent; junk, or more than [`MAX_LIST_ITEMS`] values, adds "KEY is
    /// invalid" (a list is a filter, and its work grows with its length).
    pub fn int_list(&self, key: &str, errors: &mut Vec<String>) -> Vec<i64> {
        let items: Vec<&str> = match self.get(key) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Str(s) | Value::Number(s)) => s.split(',').collect(),
            Some(Value::Array(values)) => {
                let mut out = Vec::with_capacity(values.len());
                for v in values {
                    match v {
                        Value::Str(s) | Value::Number(s) => out.push(s.as_str()),
                        _ => {
                            errors.push(format!("{key} is invalid"));
                            return Vec::new();
                        }
                    }
                }
                out
            }
            Some(_) => {
                errors.push(format!("{key} is invalid"));
                return Vec::new();
            }
        };
        if items.len() > MAX_LIST_ITEMS {
            errors.push(format!("{key} is invalid"));
            return Vec::new();
        }
        let parsed: Result<Vec<i64>, _> = items
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<i64>())
            .collect();
        parsed.unwrap_or_else(|_| {
            errors.push(format!("{key} is invalid"));
            Vec::new()
        })
    }

    /// GitLab's `sort` (`asc` or `desc`): whether ascending; absent is
    /// the listing's own default.
    pub fn ascending(&self, default: bool, errors: &mut Vec<String>) -> bool {
        match self.get_str("sort") {
            None => default,
            Some("asc") => true,
            Some("desc") => false,
            Some(_) => {
                errors.push("sort does not have a valid value".to_owned());
                default
            }
        }
    }

    pub fn optional_bool(&self, key: &str, errors: &mut Vec<String>) -> Option<bool> {
        match self.boolean(key) {
            BoolParam::Default => None,
            BoolParam::Value(b) => Some(b),
            BoolParam::Invalid => {
                errors.push(format!("{key} is invalid"));
                None
            }
        }
    }

    fn push_pair(&mut self, key: String, value: String) -> Result<(), ApiError> {
        self.count_one()?;
        // Rack's nested keys: `a[]=x` builds an array, `a[b]=x` a hash.
        if let Some(base) = key.strip_suffix("[]") {
            let last = self.last.get(base).copied();
            match last.and_then(|i| self.entries.get_mut(i)) {
                Some((_, Value::Array(items))) => items.push(Value::Str(value)),
                _ => self.push(base.to_owned(), Value::Array(vec![Value::Str(value)])),
            }
        } else if let Some(idx) = key.find('[').filter(|i| *i > 0) {
            // The base name is a hash to Grape; HTML forms name fields
            // `user[login]`, so the flat key stays reachable too.
            self.push(key[..idx].to_owned(), Value::Object);
            self.push(key, Value::Str(value));
        } else {
            self.push(key, Value::Str(value));
        }
        Ok(())
    }

    /// Parse `a=b&c=d` (query strings and form bodies): `+` is a space,
    /// raw spaces are kept, percent escapes must decode to UTF-8.
    pub fn add_urlencoded(&mut self, raw: &[u8]) -> Result<(), ApiError> {
        for pair in raw.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = decode_component(k)?;
            if key.is_empty() {
                continue;
            }
            let value = decode_component(v)?;
            self.push_pair(key, value)?;
        }
        Ok(())
    }

    /// Read a JSON object's members as parameters, straight from the text:
    /// no intermediate document, so a body of 100,000 keys costs no more
    /// than reading up to the 1,001st value, and holds no more memory.
    pub fn add_json(&mut self, body: &[u8]) -> Result<(), ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let mut reason = None;
        let mut de = serde_json::Deserializer::from_slice(body);
        let read = serde::Deserializer::deserialize_any(
            &mut de,
            json::Top {
                params: self,
                reason: &mut reason,
            },
        )
        .and_then(|()| de.end());
        match (read, reason) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(specific)) => Err(specific),
            (Err(_), None) => Err(ApiError::MalformedBody),
        }
    }
}

/// Streaming JSON into [`Params`]: every value counts against
/// [`MAX_PARAMS`]; a NUL byte or too many values stop the parse with the
/// specific error (kept in `reason`), anything else is a malformed body.
mod json {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

    use super::{check_str, too_many, ApiError, Params, Value, MAX_PARAMS};

    pub struct Top<'a> {
        pub params: &'a mut Params,
        pub reason: &'a mut Option<ApiError>,
    }

    fn stop<E: de::Error>(reason: &mut Option<ApiError>, e: ApiError) -> E {
        *reason = Some(e);
        E::custom("refused")
    }

    impl<'de> Visitor<'de> for Top<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                let key = check_str(key).map_err(|e| stop(self.reason, e))?;
                let value = map.next_value_seed(Node {
                    count: &mut self.params.count,
                    reason: self.reason,
                })?;
                self.params.push(key, value);
            }
            Ok(())
        }
    }

    /// One value anywhere in the document.
    struct Node<'a> {
        count: &'a mut usize,
        reason: &'a mut Option<ApiError>,
    }

    impl Node<'_> {
        fn counted<E: de::Error>(&mut self, v: Value) -> Result<Value, E> {
            *self.count += 1;
            if *self.count > MAX_PARAMS {
                Err(stop(self.reason, too_many()))
            } else {
                Ok(v)
            }
        }
    }

    impl<'de> DeserializeSeed<'de> for Node<'_> {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Node<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_unit<E: de::Error>(mut self) -> Result<Value, E> {
            self.counted(Value::Null)
        }

        fn visit_bool<E: de::Error>(mut self, b: bool) -> Result<Value, E> {
            self.counted(Value::Bool(b))
        }

        fn visit_i64<E: de::Error>(mut self, n: i64) -> Result<Value, E> {
            self.counted(Value::Number(n.to_string()))
        }

        fn visit_u64<E: de::Error>(mut self, n: u64) -> Result<Value, E> {
            self.counted(Value::Number(n.to_string()))
        }

        fn visit_f64<E: de::Error>(mut self, n: f64) -> Result<Value, E> {
            // As serde_json writes it (1.0 stays "1.0").
            let text =
                serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |x| x.to_string());
            self.counted(Value::Number(text))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
            self.visit_string(s.to_owned())
        }

        fn visit_string<E: de::Error>(mut self, s: String) -> Result<Value, E> {
            let s = check_str(s).map_err(|e| stop(self.reason, e))?;
            self.counted(Value::Str(s))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            *self.count += 1;
            if *self.count > MAX_PARAMS {
                return Err(stop(self.reason, too_many()));
            }
            let mut items = Vec::new();
            while let Some(v) = seq.next_element_seed(Node {
                count: &mut *self.count,
                reason: &mut *self.reason,
            })? {
                items.push(v);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            *self.count += 1;
            if *self.count > MAX_PARAMS {
                return Err(stop(self.reason, too_many()));
            }
            while let Some(key) = map.next_key::<String>()? {
                check_str(key).map_err(|e| stop(self.reason, e))?;
                map.next_value_seed(Node {
                    count: &mut *self.count,
                    reason: &mut *self.reason,
                })?;
            }
            Ok(Value::Object)
        }
    }
}

fn decode_component(raw: &[u8]) -> Result<String, ApiError> {
    let bytes: Vec<u8> = if raw.contains(&b'+') {
        let plus_as_space: Vec<u8> = raw
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_decode(&plus_as_space).collect()
    } else {
        percent_decode(raw).collect()
    };
    let s = String::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest("parameters must be valid UTF-8".to_owned()))?;
    check_str(s)
}

async fn read_body(state: &AppState, parts: &Parts, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)
}

/// Is the declared charset one a form or JSON body may use? UTF-8, and
/// its subset US-ASCII; none declared is UTF-8.
fn charset_ok(m: &mime::Mime) -> bool {
    match m.get_param(mime::CHARSET) {
        None => true,
        Some(c) => {
            let c = c.as_str();
            c.eq_ignore_ascii_case("utf-8")
                || c.eq_ignore_ascii_case("utf8")
                || c.eq_ignore_ascii_case("us-ascii")
        }
    }
}

impl FromRequest<AppState> for Params {
    type Rejection = ParamsRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // The full path: inside the router nested at `/api/v4` the
        // request's own URI has lost its prefix (and `/api/v4/users/…`
        // would read as the browser's `/users/…`).
        let dialect = match req.extensions().get::<axum::extract::OriginalUri>() {
            Some(original) => Dialect::of(original.path()),
            None => Dialect::of(req.uri().path()),
        };
        read_params(req, state)
            .await
            .map_err(|error| ParamsRejection { dialect, error })
    }
}

async fn read_params(req: Request, state: &AppState) -> Result<Params, ApiError> {
    let (parts, body) = req.into_parts();
    let mut params = Params::default();
    if let Some(q) = parts.uri.query() {
        params.add_urlencoded(q.as_bytes())?;
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    let bytes = read_body(state, &parts, body).await?;
    if bytes.is_empty() {
        return Ok(params);
    }
    if let Some(m) = &content_type {
        if !charset_ok(m) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the charset {:?} is not supported; send UTF-8",
                m.get_param(mime::CHARSET)
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default()
            )));
        }
    }
    match content_type {
        Some(m) if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON) => {
            params.add_json(&bytes)?
        }
        Some(m) if m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA => {
            add_multipart(&mut params, parts, bytes).await?;
        }
        // curl --data, and bodies without a declared type, are forms.
        _ => params.add_urlencoded(&bytes)?,
    }
    Ok(params)
}

async fn add_multipart(params: &mut Params, parts: Parts, bytes: Bytes) -> Result<(), ApiError> {
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|_| ApiError::MalformedBody)?;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|_| ApiError::MalformedBody)?;
        let Some(field) = field else { break };
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(|_| ApiError::MalformedBody)?;
        if is_file {
            params.count_one()?;
            params.files.push((check_str(name)?, data));
            continue;
        }
        let value = String::from_utf8(data.to_vec())
            .map_err(|_| ApiError::BadRequest("parameters must be valid UTF-8".to_owned()))?;
        params.push_pair(check_str(name)?, check_str(value)?)?;
    }
    Ok(())
}

/// An ISO 8601 time as Grape's `DateTime` takes it: a full RFC 3339
/// date-time, one without an offset (UTC), or a date (its midnight, UTC).
pub fn parse_time(raw: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let raw = raw.trim();
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(latchkey_core::clock::unix_millis(t));
    }
    let local = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    if let Ok(t) = time::PrimitiveDateTime::parse(raw.trim_end_matches('Z'), &local) {
        return Some(latchkey_core::clock::unix_millis(t.assume_utc()));
    }
    let day = format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &day)
        .ok()
        .map(|d| latchkey_core::clock::unix_millis(d.midnight().assume_utc()))
}

/// A Grape `type: Integer` path id. Integers too large for the database
/// cannot name a row, so they are "not found", as in GitLab.
pub fn parse_id(raw: &str) -> Result<Option<i64>, ApiError> {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Params(vec!["id is invalid".to_owned()]));
    }
    Ok(raw.parse::<i64>().ok().filter(|id| *id > 0))
}

#[cfg(test)]
mod tests;
