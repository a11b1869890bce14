//! The generic node store: any URI no built-in CSP owns. Leaves hold a value; interior
//! nodes exist because something lies below them (or were added with Format `node`).

use syncml::dm::{Item, Meta, StatusCode};

use super::Value;
use crate::state::{AgentState, Node};

fn children(state: &AgentState, uri: &str) -> Vec<String> {
    let prefix = format!("{uri}/");
    let mut names: Vec<String> = state
        .nodes
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, _)| k[prefix.len()..].split('/').next().map(str::to_owned))
        .collect();
    names.dedup();
    names
}

fn is_interior(state: &AgentState, uri: &str) -> bool {
    state.nodes.get(uri).is_some_and(|n| n.format == "node") || !children(state, uri).is_empty()
}

/// Get: a leaf's value, an interior node's children, or 404.
pub fn get(state: &AgentState, uri: &str) -> Result<Value, StatusCode> {
    if is_interior(state, uri) {
        return Ok(Value::node(&children(state, uri)));
    }
    state
        .nodes
        .get(uri)
        .map(|n| Value {
            format: n.format.clone(),
            data: n.data.clone(),
        })
        .ok_or(StatusCode::NotFound)
}

/// The node an item writes: its value, with its Format and Type.
pub(super) fn node_of(item: &Item, meta: Option<&Meta>) -> Node {
    let m = item.meta.as_ref().or(meta);
    Node {
        format: m
            .and_then(|m| m.format.clone())
            .unwrap_or_else(|| "chr".into()),
        type_: m
            .and_then(|m| m.type_.clone())
            .unwrap_or_else(|| "text/plain".into()),
        data: item.data_text().unwrap_or_default().to_owned(),
    }
}

/// Add: 418 if the node exists, else created.
pub fn add(state: &mut AgentState, uri: &str, item: &Item, meta: Option<&Meta>) -> StatusCode {
    if uri.is_empty() {
        return StatusCode::BadRequest;
    }
    if state.nodes.contains_key(uri) || is_interior(state, uri) {
        return StatusCode::AlreadyExists;
    }
    if let Some(parent) = uri.rsplit_once('/').map(|(p, _)| p) {
        if state.nodes.get(parent).is_some_and(|n| n.format != "node") {
            return StatusCode::CommandNotAllowed; // a leaf cannot have children
        }
    }
    state.nodes.insert(uri.to_owned(), node_of(item, meta));
    StatusCode::Ok
}

/// Replace: 404 if absent, 405 on an interior node.
pub fn replace(state: &mut AgentState, uri: &str, item: &Item, meta: Option<&Meta>) -> StatusCode {
    if is_interior(state, uri) {
        return StatusCode::CommandNotAllowed;
    }
    match state.nodes.get_mut(uri) {
        Some(node) => {
            *node = node_of(item, meta);
            StatusCode::Ok
        }
        None => StatusCode::NotFound,
    }
}

/// Delete: the node and everything below it; 404 if absent.
pub fn delete(state: &mut AgentState, uri: &str) -> StatusCode {
    if !state.nodes.contains_key(uri) && !is_interior(state, uri) {
        return StatusCode::NotFound;
    }
    let prefix = format!("{uri}/");
    state
        .nodes
        .retain(|k, _| k != uri && !k.starts_with(&prefix));
    StatusCode::Ok
}
