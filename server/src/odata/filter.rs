//! OData `$filter` expressions, as Graph clients write them against Intune: comparisons
//! (`eq ne gt ge lt le`), `and`, `or`, `not`, parentheses, the functions `startswith`,
//! `endswith`, `contains`, `isof`, `tolower`, `toupper`, and literals (strings with `''`
//! escapes, numbers, `true`, `false`, `null`, GUIDs, date-times, enum literals like
//! `microsoft.graph.managedDeviceOwnerType'company'`). Parsed into an [`Expr`] and
//! evaluated over an entity's JSON. String comparisons ignore case, as Intune's do.

use serde_json::Value;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A property path (`deviceName`, `operatingSystem`, `a/b`).
    Property(Vec<String>),
    /// A literal.
    Literal(Value),
    /// `left op right`.
    Compare(Box<Expr>, Op, Box<Expr>),
    /// `a and b`.
    And(Box<Expr>, Box<Expr>),
    /// `a or b`.
    Or(Box<Expr>, Box<Expr>),
    /// `not a`.
    Not(Box<Expr>),
    /// A function call.
    Call(Function, Vec<Expr>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// A supported function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `startswith(text, prefix)`
    StartsWith,
    /// `endswith(text, suffix)`
    EndsWith,
    /// `contains(text, part)`
    Contains,
    /// `isof('microsoft.graph.type')` (or with the entity first)
    IsOf,
    /// `tolower(text)`
    ToLower,
    /// `toupper(text)`
    ToUpper,
}

/// The longest filter accepted, and the deepest nesting: a filter is a person's or a
/// script's, never megabytes, and a parser of outside text must stay bounded.
const MAX_LEN: usize = 4096;
const MAX_DEPTH: usize = 32;

/// Parses a `$filter` value; the error says what is wrong, for a 400.
pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_LEN {
        return Err(format!("$filter is longer than {MAX_LEN} characters"));
    }
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = p.or()?;
    match p.peek() {
        None => Ok(expr),
        Some(t) => Err(format!("unexpected {} in $filter", t.describe())),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Number(f64),
    /// A typed literal: `prefix'value'` (an enum, or `guid'...'`, `datetime'...'`).
    Typed(String, String),
    Open,
    Close,
    Comma,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(w) => format!("'{w}'"),
            Token::Str(s) => format!("string '{s}'"),
            Token::Number(n) => format!("number {n}"),
            Token::Typed(t, v) => format!("{t}'{v}'"),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let (s, next) = quoted(&chars, i)?;
                out.push(Token::Str(s));
                i = next;
            }
            _ => {
                let start = i;
                while i < chars.len() && !" \t\n\r(),'".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if i < chars.len() && chars[i] == '\'' {
                    let (s, next) = quoted(&chars, i)?;
                    out.push(Token::Typed(word, s));
                    i = next;
                } else if let Some(n) = number(&word) {
                    out.push(Token::Number(n));
                } else {
                    out.push(Token::Word(word));
                }
            }
        }
    }
    Ok(out)
}

/// A quoted string starting at `chars[at] == '\''`; `''` is a quote. The string and the
/// index after its closing quote.
fn quoted(chars: &[char], at: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    let mut i = at + 1;
    loop {
        match chars.get(i) {
            None => return Err("a string in $filter is not closed".into()),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                s.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((s, i + 1)),
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

/// A number literal, unless the word is a GUID or a date-time (which start with digits).
fn number(word: &str) -> Option<f64> {
    let first = word.chars().next()?;
    if !(first.is_ascii_digit() || first == '-') || word.contains(':') {
        return None;
    }
    let body = word.trim_end_matches(['L', 'l', 'M', 'm', 'D', 'd', 'F', 'f']);
    body.parse::<f64>().ok().filter(|n| n.is_finite())
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("$filter nests deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.deeper()?;
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            self.at += 1;
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => Some(Op::Eq),
                "ne" => Some(Op::Ne),
                "gt" => Some(Op::Gt),
                "ge" => Some(Op::Ge),
                "lt" => Some(Op::Lt),
                "le" => Some(Op::Le),
                "and" | "or" => None,
                other => return Err(format!("'{other}' is not a supported $filter operator")),
            },
            _ => None,
        };
        match op {
            Some(op) => {
                self.at += 1;
                let right = self.primary()?;
                Ok(Expr::Compare(Box::new(left), op, Box::new(right)))
            }
            None => Ok(left),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            None => Err("$filter ends too soon".into()),
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a '(' in $filter is not closed".into()),
                }
            }
            Some(Token::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Token::Number(n)) => Ok(Expr::Literal(
                serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
            )),
            Some(Token::Typed(_, value)) => Ok(Expr::Literal(Value::String(value))),
            Some(Token::Word(word)) => {
                if self.peek() == Some(&Token::Open) {
                    return self.call(&word);
                }
                Ok(match word.to_ascii_lowercase().as_str() {
                    "null" => Expr::Literal(Value::Null),
                    "true" => Expr::Literal(Value::Bool(true)),
                    "false" => Expr::Literal(Value::Bool(false)),
                    _ if is_guid_or_time(&word) => Expr::Literal(Value::String(word)),
                    _ if is_identifier_path(&word) => {
                        Expr::Property(word.split('/').map(str::to_owned).collect())
                    }
                    _ => return Err(format!("'{word}' is not understood in $filter")),
                })
            }
            Some(t) => Err(format!("unexpected {} in $filter", t.describe())),
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, String> {
        let function = match name.to_ascii_lowercase().as_str() {
            "startswith" => Function::StartsWith,
            "endswith" => Function::EndsWith,
            "contains" => Function::Contains,
            "isof" => Function::IsOf,
            "tolower" => Function::ToLower,
            "toupper" => Function::ToUpper,
            _ => return Err(format!("the function '{name}' is not supported in $filter")),
        };
        self.at += 1; // '('
        let mut args = Vec::new();
        if self.peek() != Some(&Token::Close) {
            loop {
                args.push(self.or()?);
                match self.next() {
                    Some(Token::Comma) => continue,
                    Some(Token::Close) => break,
                    _ => return Err(format!("{name}( is not closed in $filter")),
                }
            }
        } else {
            self.at += 1;
        }
        let wanted = match function {
            Function::StartsWith | Function::EndsWith | Function::Contains => 2..=2,
            Function::IsOf => 1..=2,
            Function::ToLower | Function::ToUpper => 1..=1,
        };
        if !wanted.contains(&args.len()) {
            return Err(format!("{name} takes {wanted:?} arguments in $filter"));
        }
        Ok(Expr::Call(function, args))
    }
}

fn is_identifier_path(word: &str) -> bool {
    word.split('/').all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '@')
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.@".contains(c))
    })
}

fn is_guid_or_time(word: &str) -> bool {
    uuid::Uuid::parse_str(word).is_ok() || chrono::DateTime::parse_from_rfc3339(word).is_ok()
}

impl Expr {
    /// Whether an entity matches.
    pub fn matches(&self, entity: &Value) -> bool {
        truthy(&self.eval(entity))
    }

    fn eval(&self, entity: &Value) -> Value {
        match self {
            Expr::Property(path) => {
                let mut v = entity;
                for part in path {
                    v = &v[part.as_str()];
                }
                v.clone()
            }
            Expr::Literal(v) => v.clone(),
            Expr::And(a, b) => Value::Bool(a.matches(entity) && b.matches(entity)),
            Expr::Or(a, b) => Value::Bool(a.matches(entity) || b.matches(entity)),
            Expr::Not(a) => Value::Bool(!a.matches(entity)),
            Expr::Compare(a, op, b) => Value::Bool(compare(&a.eval(entity), *op, &b.eval(entity))),
            Expr::Call(f, args) => call(*f, args, entity),
        }
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn call(f: Function, args: &[Expr], entity: &Value) -> Value {
    let text = |i: usize| {
        args.get(i)
            .map(|a| a.eval(entity))
            .and_then(|v| v.as_str().map(str::to_lowercase))
    };
    match f {
        Function::StartsWith | Function::EndsWith | Function::Contains => {
            let (Some(s), Some(part)) = (text(0), text(1)) else {
                return Value::Bool(false);
            };
            Value::Bool(match f {
                Function::StartsWith => s.starts_with(&part),
                Function::EndsWith => s.ends_with(&part),
                _ => s.contains(&part),
            })
        }
        Function::IsOf => {
            let wanted = match args.last().map(|a| a.eval(entity)) {
                Some(Value::String(t)) => t,
                _ => return Value::Bool(false),
            };
            let wanted = wanted.trim_start_matches('#');
            let wanted = wanted.strip_prefix("graph.").map_or_else(
                || wanted.to_owned(),
                |rest| format!("microsoft.graph.{rest}"),
            );
            let actual = entity["@odata.type"].as_str().unwrap_or_default();
            Value::Bool(actual.trim_start_matches('#').eq_ignore_ascii_case(&wanted))
        }
        Function::ToLower => text(0).map_or(Value::Null, Value::String),
        Function::ToUpper => args
            .first()
            .map(|a| a.eval(entity))
            .and_then(|v| v.as_str().map(|s| Value::String(s.to_uppercase())))
            .unwrap_or(Value::Null),
    }
}

/// Orders two JSON values as OData compares them (numbers as numbers, date-times as
/// instants, strings ignoring case); `None` when they cannot be compared.
pub fn order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => {
            match (
                chrono::DateTime::parse_from_rfc3339(x),
                chrono::DateTime::parse_from_rfc3339(y),
            ) {
                (Ok(x), Ok(y)) => Some(x.cmp(&y)),
                _ => Some(x.to_lowercase().cmp(&y.to_lowercase())),
            }
        }
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        _ => None,
    }
}

fn compare(a: &Value, op: Op, b: &Value) -> bool {
    use std::cmp::Ordering::*;
    let null = |v: &Value| v.is_null();
    if null(a) || null(b) {
        let same = null(a) && null(b);
        return match op {
            Op::Eq => same,
            Op::Ne => !same,
            _ => false,
        };
    }
    let ordering = order(a, b);
    match op {
        Op::Eq => ordering == Some(Equal),
        Op::Ne => ordering != Some(Equal),
        Op::Gt => ordering == Some(Greater),
        Op::Ge => matches!(ordering, Some(Greater | Equal)),
        Op::Lt => ordering == Some(Less),
        Op::Le => matches!(ordering, Some(Less | Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn device() -> Value {
        json!({
            "@odata.type": "#microsoft.graph.managedDevice",
            "id": "0A1B2C3D-4E5F-4061-8273-948596A7B8C9",
            "deviceName": "LAB-01",
            "operatingSystem": "Windows",
            "osVersion": "10.0.22631.4460",
            "complianceState": "compliant",
            "managedDeviceOwnerType": "company",
            "lastSyncDateTime": "2026-11-24T09:30:00.000Z",
            "azureADDeviceId": null,
            "hardwareInformation": { "totalStorageSpace": 256 },
            "freeStorageSpaceInBytes": 1000
        })
    }

    fn check(filter: &str) -> bool {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&device())
    }

    #[test]
    fn the_filters_intune_scripts_write() {
        assert!(check("deviceName eq 'LAB-01'"));
        assert!(check("deviceName eq 'lab-01'"), "strings ignore case");
        assert!(!check("deviceName eq 'LAB-02'"));
        assert!(check("deviceName ne 'LAB-02'"));
        assert!(check("startswith(deviceName,'LAB')"));
        assert!(check("contains(osVersion, '22631')"));
        assert!(check("endswith(deviceName,'-01')"));
        assert!(check(
            "operatingSystem eq 'Windows' and complianceState eq 'compliant'"
        ));
        assert!(check("deviceName eq 'nope' or (freeStorageSpaceInBytes gt 999 and freeStorageSpaceInBytes le 1000)"));
        assert!(check("not (deviceName eq 'nope')"));
        assert!(check("lastSyncDateTime ge 2026-11-24T00:00:00Z"));
        assert!(!check("lastSyncDateTime lt 2026-11-24T09:00:00Z"));
        assert!(check(
            "managedDeviceOwnerType eq microsoft.graph.managedDeviceOwnerType'company'"
        ));
        assert!(check("id eq 0a1b2c3d-4e5f-4061-8273-948596a7b8c9"));
        assert!(check("azureADDeviceId eq null"));
        assert!(check("deviceName ne null"));
        assert!(check("hardwareInformation/totalStorageSpace eq 256"));
        assert!(check("isof('microsoft.graph.managedDevice')"));
        assert!(check("isof('graph.managedDevice')"));
        assert!(!check("isof('microsoft.graph.win32LobApp')"));
        assert!(check("tolower(deviceName) eq 'lab-01'"));
        assert_eq!(
            parse("deviceName eq 'it''s'").unwrap(),
            Expr::Compare(
                Box::new(Expr::Property(vec!["deviceName".into()])),
                Op::Eq,
                Box::new(Expr::Literal(Value::String("it's".into())))
            )
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,300}") {
            if let Ok(expr) = parse(&text) {
                let _ = expr.matches(&device());
            }
        }

        #[test]
        fn filter_shaped_text_is_parsed_or_refused_without_panicking(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "deviceName", "n", "a/b", "eq", "ne", "gt", "and", "or", "not", "(", ")",
                    ",", "'x'", "'it''s'", "'", "null", "true", "3", "-1.5e3", "startswith(",
                    "contains(", "isof(", "tolower(", "2026-11-24T09:00:00Z",
                    "0a1b2c3d-4e5f-4061-8273-948596a7b8c9", "enum'v'",
                ]),
                0..40,
            )
        ) {
            if let Ok(expr) = parse(&words.join(" ")) {
                let _ = expr.matches(&device());
            }
        }
    }

    #[test]
    fn what_is_not_understood_is_an_error_not_a_match_all() {
        for bad in [
            "deviceName like 'LAB'",
            "deviceName eq",
            "(deviceName eq 'x'",
            "deviceName eq 'unclosed",
            "substringof('a', deviceName)",
            "startswith(deviceName)",
            "deviceName eq 'a' garbage",
            "",
            "1 +",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}a eq 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
        assert!(parse(&"a eq 1 and ".repeat(1000)).is_err());
    }
}
