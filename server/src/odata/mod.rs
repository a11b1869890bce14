//! One OData query engine for every Graph collection the server answers: `$filter`,
//! `$search`, `$orderby`, `$count` (and the `/$count` segment), `$skip`, `$top` and
//! `$skiptoken` pages linked by `@odata.nextLink` (at most 1000 items a page), `$select`,
//! and type-cast segments (`/mobileApps/microsoft.graph.win32LobApp`). An option it does
//! not support is a 400 with Graph's error, never silently ignored: an ignored `$filter`
//! makes "find the device by name, then wipe it" wipe every device.
//!
//! It sits below the admin API and the rooms whose collections it pages. The collections
//! are filtered in memory, over each entity's Graph JSON, after the store has applied
//! what of the filter it can ([`pushdown`]: managed devices).

pub mod filter;
pub mod pushdown;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::api_error::ApiError;
use filter::Expr;

/// Where an entity keeps what Tenantless knows that Graph's type does not have: an
/// instance annotation, which Graph clients ignore and real Graph accepts back, so a
/// backup taken from Tenantless restores into a real tenant.
pub const DETAILS: &str = "@tenantless.details";

/// Fills what every Graph entity carries when the entity lacks it: its `@odata.type`,
/// `createdDateTime` and `lastModifiedDateTime` (`when`, if the type has them), and
/// `roleScopeTagIds` (the Default tag, `"0"`).
pub fn with_entity_defaults(mut entity: Value, odata_type: &str, when: Option<&str>) -> Value {
    if let Value::Object(map) = &mut entity {
        map.entry("@odata.type")
            .or_insert_with(|| Value::String(odata_type.to_owned()));
        if let Some(when) = when {
            map.entry("createdDateTime")
                .or_insert_with(|| Value::String(when.to_owned()));
            map.entry("lastModifiedDateTime")
                .or_insert_with(|| Value::String(when.to_owned()));
        }
        map.entry("roleScopeTagIds")
            .or_insert_with(|| serde_json::json!(["0"]));
    }
    entity
}

/// A changed entity's answer, as Graph gives it: 204 No Content, or the entity (200)
/// when the client asked with `Prefer: return=representation`.
pub fn changed(headers: &axum::http::HeaderMap, entity: Value) -> Response {
    let wants_it = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("return=representation"));
    if wants_it {
        axum::Json(entity).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// Merges a PATCH body into an entity: the fields it names replace the old ones (not
/// `id`, which stays the entity's).
pub fn merge(entity: &mut Value, changes: &Value) {
    if let (Some(to), Some(from)) = (entity.as_object_mut(), changes.as_object()) {
        for (k, v) in from {
            if k != "id" {
                to.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The most items a page holds (Intune's).
pub const PAGE_LIMIT: usize = 1000;

/// How the request addressed its resource, before routing rewrote it (set by the admin
/// listener): its version root, its path as the client wrote it, a type-cast segment,
/// and a trailing `/$count`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// `v1.0` or `beta`.
    pub root: &'static str,
    /// The path the client asked for (version root, cast and `$count` included).
    pub path: String,
    /// `microsoft.graph.win32LobApp` for `/mobileApps/microsoft.graph.win32LobApp`.
    pub cast: Option<String>,
    /// The path ended in `/$count`.
    pub count_only: bool,
}

/// A collection's query options, read from the request.
#[derive(Debug, Clone, Default)]
pub struct Options {
    filter: Option<Expr>,
    search: Option<String>,
    orderby: Vec<(Vec<String>, bool)>,
    select: Option<Vec<String>>,
    expand: Vec<String>,
    top: Option<usize>,
    skip: usize,
    count: bool,
    address: Address,
    /// `scheme://host` the client reached, for absolute links.
    origin: String,
    /// The options to carry into the next page's link (all but `$skiptoken`).
    carried: Vec<(String, String)>,
}

/// What a handler says about its collection.
#[derive(Debug, Clone, Copy)]
pub struct Collection<'a> {
    /// The entity set's path for `@odata.context`, e.g. `deviceManagement/managedDevices`.
    pub context: &'a str,
    /// Navigation properties `$expand` may name (the handler has filled them in).
    pub expandable: &'a [&'a str],
    /// Properties `$search` looks in.
    pub searchable: &'a [&'a str],
}

impl<'a> Collection<'a> {
    /// A collection with nothing to expand or search (an entity's assignments, run
    /// states).
    pub fn plain(context: &'a str) -> Self {
        Collection {
            context,
            expandable: &[],
            searchable: &[],
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

impl<S: Send + Sync> FromRequestParts<S> for Options {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<Address>()
            .cloned()
            .unwrap_or_else(|| Address {
                root: "beta",
                path: parts.uri.path().to_owned(),
                ..Address::default()
            });
        let origin = crate::tls::origin(&parts.headers, &parts.extensions);
        Options::parse(parts.uri.query().unwrap_or_default(), address, origin)
    }
}

impl Options {
    /// Reads the options of a query string.
    pub fn parse(query: &str, address: Address, origin: String) -> Result<Options, ApiError> {
        let mut o = Options {
            address,
            origin,
            ..Options::default()
        };
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let name = name.trim();
            let key = name.trim_start_matches('$').to_ascii_lowercase();
            if !name.starts_with('$') {
                continue; // not an OData option
            }
            if key != "skiptoken" {
                o.carried.push((format!("${key}"), value.to_string()));
            }
            match key.as_str() {
                "filter" => o.filter = Some(filter::parse(&value).map_err(bad)?),
                "search" => o.search = Some(value.trim().trim_matches('"').to_owned()),
                "orderby" => o.orderby = orderby(&value)?,
                "select" => o.select = Some(list(&value)),
                "expand" => o.expand = list(&value),
                "top" => o.top = Some(count(&value, "$top")?),
                "skip" => o.skip = o.skip.saturating_add(count(&value, "$skip")?),
                "skiptoken" => o.skip = o.skip.saturating_add(skiptoken(&value)?),
                "count" => {
                    o.count = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("$count must be true or false")),
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "The query option '{name}' is not supported on this resource."
                    )))
                }
            }
        }
        Ok(o)
    }

    /// The conditions of `$filter` a store can apply itself (see [`pushdown`]).
    pub fn pushdown(&self, columns: &[(&str, &'static str)]) -> Vec<pushdown::Condition> {
        self.filter
            .as_ref()
            .map(|f| pushdown::conditions(f, columns))
            .unwrap_or_default()
    }

    /// Whether `$expand` names this navigation property.
    pub fn expands(&self, property: &str) -> bool {
        self.expand.iter().any(|e| e.eq_ignore_ascii_case(property))
    }

    /// The collection's answer: its page of items (or, for `/$count`, the number of
    /// matches as text), with `@odata.context`, `@odata.count` and `@odata.nextLink`.
    pub fn page(&self, items: Vec<Value>, c: &Collection) -> Result<Response, ApiError> {
        for e in &self.expand {
            if !c.expandable.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                return Err(bad(format!(
                    "$expand={e} is not supported on {}",
                    c.context
                )));
            }
        }
        let mut items: Vec<Value> = items
            .into_iter()
            .filter(|item| self.keeps(item, c))
            .collect();
        self.sort(&mut items);
        let total = items.len();
        if self.address.count_only {
            return Ok(([(header::CONTENT_TYPE, "text/plain")], total.to_string()).into_response());
        }
        let size = self.top.unwrap_or(PAGE_LIMIT).min(PAGE_LIMIT);
        let page: Vec<Value> = items
            .into_iter()
            .skip(self.skip)
            .take(size)
            .map(|item| self.selected(item))
            .collect();
        let more = self.skip.saturating_add(page.len()) < total && size > 0;
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            Value::String(format!(
                "{}/{}/$metadata#{}",
                self.origin, self.address.root, c.context
            )),
        );
        if self.count {
            body.insert("@odata.count".into(), Value::from(total));
        }
        if more {
            body.insert(
                "@odata.nextLink".into(),
                Value::String(self.next_link(self.skip.saturating_add(size))),
            );
        }
        body.insert("value".into(), Value::Array(page));
        Ok(axum::Json(Value::Object(body)).into_response())
    }

    /// One entity's answer: `$select` applied, `@odata.context` added.
    pub fn entity(&self, mut item: Value, context: &str) -> Value {
        item = self.selected(item);
        if let Value::Object(map) = &mut item {
            let mut out = Map::new();
            out.insert(
                "@odata.context".into(),
                Value::String(format!(
                    "{}/{}/$metadata#{context}/$entity",
                    self.origin, self.address.root
                )),
            );
            out.extend(std::mem::take(map));
            return Value::Object(out);
        }
        item
    }

    fn keeps(&self, item: &Value, c: &Collection) -> bool {
        if let Some(cast) = &self.address.cast {
            let t = item["@odata.type"].as_str().unwrap_or_default();
            if !t.trim_start_matches('#').eq_ignore_ascii_case(cast) {
                return false;
            }
        }
        if let Some(f) = &self.filter {
            if !f.matches(item) {
                return false;
            }
        }
        if let Some(words) = &self.search {
            let words = words.to_lowercase();
            let (field, words) = match words.split_once(':') {
                Some((f, w)) => (Some(f.to_owned()), w.to_owned()),
                None => (None, words),
            };
            return c.searchable.iter().any(|p| {
                field.as_deref().is_none_or(|f| f.eq_ignore_ascii_case(p))
                    && item[*p]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(&words))
            });
        }
        true
    }

    fn sort(&self, items: &mut [Value]) {
        if self.orderby.is_empty() {
            return;
        }
        items.sort_by(|a, b| {
            for (path, descending) in &self.orderby {
                let (x, y) = (lookup(a, path), lookup(b, path));
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Less,
                    (false, true) => std::cmp::Ordering::Greater,
                    _ => filter::order(x, y).unwrap_or(std::cmp::Ordering::Equal),
                };
                let ord = if *descending { ord.reverse() } else { ord };
                if ord.is_ne() {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
    }

    fn selected(&self, item: Value) -> Value {
        let (Some(select), Value::Object(map)) = (&self.select, &item) else {
            return item;
        };
        let keep = |k: &str| {
            k == "id"
                || k == "@odata.type"
                || select.iter().any(|s| s == "*" || s.eq_ignore_ascii_case(k))
                || self.expands(k)
        };
        Value::Object(
            map.iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn next_link(&self, offset: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.carried {
            if k != "$skip" {
                query.append_pair(k, v);
            }
        }
        query.append_pair("$skiptoken", &format!("skip:{offset}"));
        format!("{}{}?{}", self.origin, self.address.path, query.finish())
    }
}

fn lookup<'a>(item: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(item, |v, part| &v[part.as_str()])
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn count(value: &str, option: &str) -> Result<usize, ApiError> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| bad(format!("{option} must be a whole number, not '{value}'")))
}

fn skiptoken(value: &str) -> Result<usize, ApiError> {
    value
        .strip_prefix("skip:")
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| {
            bad(format!(
                "the $skiptoken '{value}' is not one this server issued"
            ))
        })
}

fn orderby(value: &str) -> Result<Vec<(Vec<String>, bool)>, ApiError> {
    let mut out = Vec::new();
    for clause in list(value) {
        let mut words = clause.split_whitespace();
        let property = words.next().unwrap_or_default();
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(bad(format!("$orderby: '{other}' is not asc or desc"))),
        };
        if words.next().is_some() || property.is_empty() {
            return Err(bad(format!("$orderby: '{clause}' is not understood")));
        }
        out.push((property.split('/').map(str::to_owned).collect(), descending));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEVICES: Collection = Collection {
        context: "deviceManagement/managedDevices",
        expandable: &[],
        searchable: &["deviceName"],
    };

    fn devices(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({ "id": format!("D{i:04}"), "deviceName": format!("PC-{i:04}"), "n": i, "@odata.type": "#microsoft.graph.managedDevice" }))
            .collect()
    }

    fn options(query: &str) -> Result<Options, ApiError> {
        let address = Address {
            root: "v1.0",
            path: "/v1.0/deviceManagement/managedDevices".into(),
            ..Address::default()
        };
        Options::parse(query, address, "http://127.0.0.1:8080".into())
    }

    async fn answer(query: &str, n: usize) -> Value {
        let r = options(query).unwrap().page(devices(n), &DEVICES).unwrap();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn pages_link_to_the_next_until_none_remain() {
        let first = answer("$top=100&$count=true&$filter=n ge 50", 300).await;
        assert_eq!(first["@odata.count"], 250);
        assert_eq!(first["value"].as_array().unwrap().len(), 100);
        assert_eq!(first["value"][0]["deviceName"], "PC-0050");
        assert_eq!(
            first["@odata.context"],
            "http://127.0.0.1:8080/v1.0/$metadata#deviceManagement/managedDevices"
        );
        let mut link = first["@odata.nextLink"].as_str().unwrap().to_owned();
        let mut seen = 100;
        loop {
            let query = link.split_once('?').unwrap().1.to_owned();
            let page = answer(&query, 300).await;
            seen += page["value"].as_array().unwrap().len();
            match page["@odata.nextLink"].as_str() {
                Some(next) => link = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, 250);
        let all = answer("", 2500).await;
        assert_eq!(all["value"].as_array().unwrap().len(), PAGE_LIMIT);
        assert!(all["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("%24skiptoken=skip%3A1000"));
    }

    #[tokio::test]
    async fn select_orderby_and_search() {
        let page = answer("$select=deviceName&$orderby=n desc&$top=2", 5).await;
        assert_eq!(
            page["value"][0],
            json!({ "@odata.type": "#microsoft.graph.managedDevice", "id": "D0004", "deviceName": "PC-0004" })
        );
        let page = answer("$search=\"pc-0003\"", 5).await;
        assert_eq!(page["value"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn huge_offsets_give_an_empty_page_not_an_overflow() {
        let max = usize::MAX;
        let page = answer(&format!("$skip={max}&$skip=1&$skiptoken=skip:{max}"), 3).await;
        assert_eq!(page["value"], json!([]));
        assert!(page.get("@odata.nextLink").is_none());
    }

    #[test]
    fn unsupported_options_are_refused() {
        for q in [
            "$format=xml",
            "$top=ten",
            "$count=maybe",
            "$filter=deviceName like 'x'",
            "$skiptoken=abc",
            "$orderby=n sideways",
            "$apply=groupby((n))",
        ] {
            let e = options(q).err().unwrap_or_else(|| panic!("{q} accepted"));
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{q}");
        }
        let e = options("$expand=assignments")
            .unwrap()
            .page(devices(1), &DEVICES)
            .err()
            .unwrap();
        assert!(e.message().contains("$expand"));
    }
}
