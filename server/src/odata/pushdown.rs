//! What of a `$filter` the database can do: the conditions a store's `WHERE` applies so
//! a large collection is not loaded whole to find a few entities. Only conjuncts of the
//! filter's top-level `and` chain are taken (each must hold for every match), and only
//! `property eq 'text'` and `startswith(property, 'text')` on properties the collection
//! maps to a column, with ASCII text (compared ignoring case, as the engine does). What
//! the database returns is a superset of the matches; the engine then applies the whole
//! filter, `$orderby` and paging in memory.

use serde_json::Value;

use super::filter::{Expr, Function, Op};

/// A condition on a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The column equals the text, ignoring ASCII case.
    Equals(&'static str, String),
    /// The column starts with the text, ignoring ASCII case.
    StartsWith(&'static str, String),
}

/// The conditions of `filter` a database can apply, for the `(property, column)` pairs
/// a collection maps.
pub fn conditions(filter: &Expr, columns: &[(&str, &'static str)]) -> Vec<Condition> {
    let mut out = Vec::new();
    collect(filter, columns, &mut out);
    out
}

fn collect(e: &Expr, columns: &[(&str, &'static str)], out: &mut Vec<Condition>) {
    let column = |e: &Expr| match e {
        Expr::Property(path) if path.len() == 1 => columns
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(&path[0]))
            .map(|(_, c)| *c),
        _ => None,
    };
    let text = |e: &Expr| match e {
        Expr::Literal(Value::String(s)) if s.is_ascii() => Some(s.clone()),
        _ => None,
    };
    match e {
        Expr::And(a, b) => {
            collect(a, columns, out);
            collect(b, columns, out);
        }
        Expr::Compare(a, Op::Eq, b) => {
            let pair = match (column(a), text(b)) {
                (Some(c), Some(t)) => Some((c, t)),
                _ => column(b).zip(text(a)),
            };
            if let Some((c, t)) = pair {
                out.push(Condition::Equals(c, t));
            }
        }
        Expr::Call(Function::StartsWith, args) if args.len() == 2 => {
            if let (Some(c), Some(t)) = (column(&args[0]), text(&args[1])) {
                out.push(Condition::StartsWith(c, t));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::filter::parse;

    const COLUMNS: &[(&str, &str)] = &[("deviceName", "device_name"), ("id", "id")];

    fn of(filter: &str) -> Vec<Condition> {
        conditions(&parse(filter).unwrap(), COLUMNS)
    }

    #[test]
    fn conjuncts_on_mapped_columns_are_pushed_down() {
        assert_eq!(
            of("deviceName eq 'LAB-01'"),
            [Condition::Equals("device_name", "LAB-01".into())]
        );
        assert_eq!(
            of("startswith(deviceName,'LAB') and 'X' eq id and osVersion eq '10'"),
            [
                Condition::StartsWith("device_name", "LAB".into()),
                Condition::Equals("id", "X".into()),
            ]
        );
    }

    #[test]
    fn what_could_drop_a_match_stays_in_memory() {
        for filter in [
            "deviceName eq 'A' or deviceName eq 'B'",
            "not (deviceName eq 'A')",
            "deviceName ne 'A'",
            "contains(deviceName,'A')",
            "deviceName eq 'ÉCOLE'",
            "tolower(deviceName) eq 'a'",
            "deviceName eq null",
        ] {
            assert_eq!(of(filter), [], "{filter}");
        }
    }
}
