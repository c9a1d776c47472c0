//! The subset of the IoT Hub query language the simulator understands, parsed by a
//! small recursive-descent parser:
//!
//! ```text
//! query      := SELECT select FROM source [WHERE condition]
//! select     := '*' | projection (',' projection)*
//! projection := path [AS name]
//! source     := 'devices' | 'devices' '.' 'modules'
//! condition  := conjunct (OR conjunct)*
//! conjunct   := unary (AND unary)*
//! unary      := NOT unary | '(' condition ')' | path compare operand
//!             | path IN '[' literal (',' literal)* ']' | path NIN '[' ... ']'
//! operand    := literal | path
//! compare    := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//! path       := name ('.' name)*          names may start with '$'
//! literal    := 'text' | "text" | number | true | false | null
//! ```
//! Keywords are case-insensitive, and so are the twin's own top-level fields
//! (`DeviceId` reads `deviceId`). Anything else (GROUP BY, TOP, functions) is refused
//! with an error the server turns into IoT Hub's 400 body.
//!
//! A projection renders one JSON object per matching twin: each path's value under its
//! alias, or under the path's last name (`properties.reported.lastDesiredStatus` →
//! `lastDesiredStatus`; a top-level field under its canonical spelling). A path the twin
//! does not have is left out of the object, as IoT Hub leaves out undefined values.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::twin::TwinDoc;

/// The longest query text IoT Hub accepts.
pub const MAX_QUERY_LEN: usize = 8192;

/// What a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Devices,
    Modules,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub source: Source,
    pub select: Select,
    pub filter: Option<Condition>,
}

/// What each matching twin turns into.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `SELECT *`: the whole twin.
    All,
    /// `SELECT a, b.c AS x`: an object with these fields, in this order.
    Fields(Vec<Projection>),
}

/// One field of a projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub path: Vec<String>,
    /// The key in the result: the alias, else the path's last name.
    pub name: String,
}

/// A WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Vec<String>, CompareOp, Operand),
    In(Vec<String>, Vec<Value>),
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    /// Another property of the same twin (`properties.desired.$version = properties.reported.lastDesiredVersion`).
    Path(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Query features the simulated hub refuses with 400 ArgumentInvalid, to play a hub
/// that lacks them (Microsoft documents projections, but `$metadata` in WHERE appears
/// only in its samples). Both are accepted by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryRefusals {
    /// Refuse every SELECT other than `SELECT *`.
    #[serde(default)]
    pub projections: bool,
    /// Refuse WHERE clauses that read a `$metadata` path.
    #[serde(default)]
    pub metadata_filters: bool,
}

impl QueryRefusals {
    /// The reason the hub refuses `query`, if it does.
    pub fn check(&self, query: &Query) -> Result<(), QueryError> {
        if self.projections && query.has_projection() {
            return Err(QueryError(
                "projections are not supported by this hub; use SELECT *".into(),
            ));
        }
        if self.metadata_filters && query.filters_on_metadata() {
            return Err(QueryError(
                "$metadata properties cannot be used in the WHERE clause of this hub".into(),
            ));
        }
        Ok(())
    }
}

/// Why a query was refused; the text goes into the error body.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct QueryError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Num(f64),
    Star,
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Op(CompareOp),
}

fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '*' => push(&mut out, &mut i, Token::Star),
            '.' => push(&mut out, &mut i, Token::Dot),
            ',' => push(&mut out, &mut i, Token::Comma),
            '(' => push(&mut out, &mut i, Token::LParen),
            ')' => push(&mut out, &mut i, Token::RParen),
            '[' => push(&mut out, &mut i, Token::LBracket),
            ']' => push(&mut out, &mut i, Token::RBracket),
            '=' => push(&mut out, &mut i, Token::Op(CompareOp::Eq)),
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => (CompareOp::Ne, 2),
                    ('<', Some('>')) => (CompareOp::Ne, 2),
                    ('<', Some('=')) => (CompareOp::Le, 2),
                    ('>', Some('=')) => (CompareOp::Ge, 2),
                    ('<', _) => (CompareOp::Lt, 1),
                    ('>', _) => (CompareOp::Gt, 1),
                    _ => {
                        return Err(QueryError(format!(
                            "unexpected character '!' at position {i}"
                        )));
                    }
                };
                out.push(Token::Op(op));
                i += len;
            }
            '\'' | '"' => {
                let (s, next) = read_string(&chars, i)?;
                out.push(Token::Str(s));
                i = next;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || chars[i] == '.'
                        || chars[i] == 'e'
                        || chars[i] == 'E')
                {
                    i += 1;
                }
                let lexeme: String = chars[start..i].iter().collect();
                let n = lexeme
                    .parse::<f64>()
                    .map_err(|_| QueryError(format!("{lexeme:?} is not a number")))?;
                out.push(Token::Num(n));
            }
            c if c.is_alphabetic() || c == '$' || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric()
                        || chars[i] == '$'
                        || chars[i] == '_'
                        || chars[i] == '-')
                {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => {
                return Err(QueryError(format!(
                    "unexpected character {other:?} at position {i}"
                )));
            }
        }
    }
    Ok(out)
}

fn push(out: &mut Vec<Token>, i: &mut usize, t: Token) {
    out.push(t);
    *i += 1;
}

/// Reads a quoted string starting at `start`; a doubled quote inside stands for one.
fn read_string(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let quote = chars[start];
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                s.push(quote);
                i += 2;
                continue;
            }
            return Ok((s, i + 1));
        }
        s.push(chars[i]);
        i += 1;
    }
    Err(QueryError(format!(
        "unterminated string starting at position {start}"
    )))
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.at_keyword(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {kw}")))
        }
    }

    fn expect(&mut self, t: Token, what: &str) -> Result<(), QueryError> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {what}")))
        }
    }

    fn unexpected(&self, what: &str) -> QueryError {
        match self.peek() {
            Some(t) => QueryError(format!(
                "{what}, found {} (token {})",
                describe(t),
                self.pos + 1
            )),
            None => QueryError(format!("{what}, found the end of the query")),
        }
    }

    fn query(&mut self) -> Result<Query, QueryError> {
        self.keyword("SELECT")?;
        let select = self.select()?;
        self.keyword("FROM")?;
        let source = self.source()?;
        let filter = if self.at_keyword("WHERE") {
            self.pos += 1;
            Some(self.condition()?)
        } else {
            None
        };
        if self.peek().is_some() {
            return Err(self.unexpected(
                "expected the end of the query (GROUP BY and ORDER BY are not supported)",
            ));
        }
        Ok(Query {
            source,
            select,
            filter,
        })
    }

    fn select(&mut self) -> Result<Select, QueryError> {
        if self.peek() == Some(&Token::Star) {
            self.pos += 1;
            return Ok(Select::All);
        }
        if self.at_keyword("TOP") {
            return Err(self.unexpected("SELECT TOP is not supported by the simulator"));
        }
        let mut fields: Vec<Projection> = Vec::new();
        loop {
            let field = self.projection()?;
            if fields.iter().any(|f| f.name == field.name) {
                return Err(QueryError(format!(
                    "the projection names {:?} twice; give one of them another name with AS",
                    field.name
                )));
            }
            fields.push(field);
            if self.peek() != Some(&Token::Comma) {
                return Ok(Select::Fields(fields));
            }
            self.pos += 1;
        }
    }

    fn projection(&mut self) -> Result<Projection, QueryError> {
        if matches!(self.tokens.get(self.pos + 1), Some(Token::LParen)) {
            return Err(self.unexpected(
                "functions and aggregates are not supported by the simulator; expected a property path",
            ));
        }
        let path = self.path()?;
        let name = if self.at_keyword("AS") {
            self.pos += 1;
            match self.next() {
                Some(Token::Word(w)) if !is_reserved(&w) => w,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("expected a name after AS"));
                }
            }
        } else {
            default_name(&path)
        };
        Ok(Projection { path, name })
    }

    fn source(&mut self) -> Result<Source, QueryError> {
        if !self.at_keyword("devices") {
            return Err(self.unexpected("expected devices or devices.modules after FROM"));
        }
        self.pos += 1;
        if self.peek() == Some(&Token::Dot) {
            self.pos += 1;
            if !self.at_keyword("modules") {
                return Err(self.unexpected("expected modules after devices."));
            }
            self.pos += 1;
            return Ok(Source::Modules);
        }
        Ok(Source::Devices)
    }

    fn condition(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.conjunct()?;
        while self.at_keyword("OR") {
            self.pos += 1;
            let right = self.conjunct()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunct(&mut self) -> Result<Condition, QueryError> {
        let mut left = self.unary()?;
        while self.at_keyword("AND") {
            self.pos += 1;
            let right = self.unary()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, QueryError> {
        if self.at_keyword("NOT") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.condition()?;
            self.expect(Token::RParen, "')'")?;
            return Ok(inner);
        }
        let path = self.path()?;
        let negated = self.at_keyword("NIN");
        if self.at_keyword("IN") || negated {
            self.pos += 1;
            self.expect(Token::LBracket, "'[' after IN")?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.expect(Token::RBracket, "']' closing the IN list")?;
            let within = Condition::In(path, values);
            return Ok(if negated {
                Condition::Not(Box::new(within))
            } else {
                within
            });
        }
        match self.next() {
            Some(Token::Op(op)) => Ok(Condition::Compare(path, op, self.operand()?)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expected a comparison operator, IN or NIN"))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, QueryError> {
        match self.peek() {
            Some(Token::Word(w)) if !is_literal_word(w) => Ok(Operand::Path(self.path()?)),
            _ => Ok(Operand::Literal(self.literal()?)),
        }
    }

    /// A dotted path. Only its first name may not be a keyword: after a dot any name is
    /// a property (`tags.group`, `properties.reported.order`).
    fn path(&mut self) -> Result<Vec<String>, QueryError> {
        let mut path = Vec::new();
        loop {
            match self.next() {
                Some(Token::Word(w)) if !path.is_empty() || !is_reserved(&w) => path.push(w),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected("expected a property path such as tags.site"));
                }
            }
            if self.peek() != Some(&Token::Dot) {
                return Ok(path);
            }
            self.pos += 1;
        }
    }

    fn literal(&mut self) -> Result<Value, QueryError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Value::String(s)),
            Some(Token::Num(n)) => Ok(number(n)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expected a literal ('text', number, true, false or null)"))
            }
        }
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "AND", "OR", "NOT", "IN", "NIN", "SELECT", "FROM", "WHERE", "AS", "GROUP", "ORDER", "BY",
        "TOP",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

fn is_literal_word(word: &str) -> bool {
    ["true", "false", "null"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
}

/// The result key of an unaliased projection: a top-level twin field in its canonical
/// spelling, otherwise the path's last name as written.
fn default_name(path: &[String]) -> String {
    match path {
        [only] => TwinDoc::canonical_field(only).map_or_else(|| only.clone(), str::to_string),
        _ => path.last().cloned().unwrap_or_default(),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("'{w}'"),
        Token::Str(s) => format!("string '{s}'"),
        Token::Num(n) => format!("number {n}"),
        Token::Star => "'*'".into(),
        Token::Dot => "'.'".into(),
        Token::Comma => "','".into(),
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::LBracket => "'['".into(),
        Token::RBracket => "']'".into(),
        Token::Op(op) => format!("operator {op:?}"),
    }
}

/// Parses query text.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    if text.len() > MAX_QUERY_LEN {
        return Err(QueryError(format!(
            "the query is longer than {MAX_QUERY_LEN} characters"
        )));
    }
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0 };
    p.query()
}

impl Query {
    /// Whether the query selects fields rather than `*`.
    pub fn has_projection(&self) -> bool {
        matches!(self.select, Select::Fields(_))
    }

    /// Whether the WHERE clause reads a `$metadata` path (such as
    /// `properties.reported.$metadata.$lastUpdated`).
    pub fn filters_on_metadata(&self) -> bool {
        self.filter.as_ref().is_some_and(Condition::reads_metadata)
    }

    /// Whether the twin belongs in the result.
    pub fn matches(&self, twin: &TwinDoc) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(twin))
    }

    /// The object a projection makes of `twin` (paths the twin lacks are left out);
    /// `None` for `SELECT *`.
    pub fn project(&self, twin: &TwinDoc) -> Option<Map<String, Value>> {
        let Select::Fields(fields) = &self.select else {
            return None;
        };
        Some(
            fields
                .iter()
                .filter_map(|f| Some((f.name.clone(), twin.lookup(&f.path)?.into_owned())))
                .collect(),
        )
    }
}

impl Condition {
    fn reads_metadata(&self) -> bool {
        let meta = |path: &[String]| path.iter().any(|p| p == "$metadata");
        match self {
            Condition::And(a, b) | Condition::Or(a, b) => a.reads_metadata() || b.reads_metadata(),
            Condition::Not(c) => c.reads_metadata(),
            Condition::Compare(path, _, Operand::Path(other)) => meta(path) || meta(other),
            Condition::Compare(path, _, Operand::Literal(_)) | Condition::In(path, _) => meta(path),
        }
    }

    /// Whether the twin satisfies the condition. A missing property satisfies no comparison.
    pub fn matches(&self, twin: &TwinDoc) -> bool {
        match self {
            Condition::And(a, b) => a.matches(twin) && b.matches(twin),
            Condition::Or(a, b) => a.matches(twin) || b.matches(twin),
            Condition::Not(c) => !c.matches(twin),
            Condition::Compare(path, op, Operand::Literal(literal)) => twin
                .lookup(path)
                .is_some_and(|v| compare(v.as_ref(), *op, literal)),
            Condition::Compare(path, op, Operand::Path(other)) => {
                match (twin.lookup(path), twin.lookup(other)) {
                    (Some(a), Some(b)) => compare(a.as_ref(), *op, b.as_ref()),
                    _ => false,
                }
            }
            Condition::In(path, values) => twin.lookup(path).is_some_and(|v| {
                values
                    .iter()
                    .any(|lit| compare(v.as_ref(), CompareOp::Eq, lit))
            }),
        }
    }
}

fn compare(value: &Value, op: CompareOp, literal: &Value) -> bool {
    let ordering = match (value, literal) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (ordering, op) {
        (None, CompareOp::Ne) => !matches!(value, Value::Object(_) | Value::Array(_)),
        (None, _) => false,
        (Some(o), CompareOp::Eq) => o == Ordering::Equal,
        (Some(o), CompareOp::Ne) => o != Ordering::Equal,
        (Some(o), CompareOp::Lt) => o == Ordering::Less,
        (Some(o), CompareOp::Le) => o != Ordering::Greater,
        (Some(o), CompareOp::Gt) => o == Ordering::Greater,
        (Some(o), CompareOp::Ge) => o != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn twin(device: &str, module: Option<&str>, site: &str) -> TwinDoc {
        let mut t = TwinDoc::new(device, module, "e");
        t.tags = Some(
            json!({"site": site, "floor": 3})
                .as_object()
                .cloned()
                .unwrap(),
        );
        t.iot_edge = Some(true);
        t
    }

    #[test]
    fn parses_the_queries_edgewatch_sends() {
        let q = parse("SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent' AND deviceId IN ['a', 'b']").unwrap();
        assert_eq!(q.source, Source::Modules);
        let f = q.filter.unwrap();
        assert!(f.matches(&twin("a", Some("$edgeAgent"), "x")));
        assert!(!f.matches(&twin("c", Some("$edgeAgent"), "x")));
        assert!(!f.matches(&twin("a", Some("$edgeHub"), "x")));
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_override() {
        let t = twin("a", None, "plant-b");
        let loose = parse("select * from devices where tags.site = 'plant-a' and deviceId = 'z' or deviceId = 'a'").unwrap();
        assert!(loose.filter.unwrap().matches(&t));
        let grouped = parse("SELECT * FROM devices WHERE tags.site = 'plant-a' AND (deviceId = 'z' OR deviceId = 'a')").unwrap();
        assert!(!grouped.filter.unwrap().matches(&t));
    }

    #[test]
    fn keywords_are_property_names_after_a_dot() {
        let mut t = twin("a", None, "s");
        t.tags = Some(
            json!({"group": "g1", "order": 2, "as": true})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let q = parse("SELECT tags.group, tags.order AS o FROM devices WHERE tags.as = true AND tags.group IN ['g1']").unwrap();
        assert!(q.matches(&t));
        assert_eq!(
            Value::Object(q.project(&t).unwrap()),
            json!({"group": "g1", "o": 2})
        );
        assert!(parse("SELECT group FROM devices").is_err());
    }

    #[test]
    fn comparisons_on_numbers_booleans_and_missing_paths() {
        let t = twin("a", None, "s");
        let m = |q: &str| parse(q).unwrap().filter.unwrap().matches(&t);
        assert!(m("SELECT * FROM devices WHERE capabilities.iotEdge = true"));
        assert!(m(
            "SELECT * FROM devices WHERE tags.floor >= 3 AND tags.floor < 4"
        ));
        assert!(m("SELECT * FROM devices WHERE NOT tags.floor > 3"));
        assert!(!m("SELECT * FROM devices WHERE tags.missing = 'x'"));
        assert!(m("SELECT * FROM devices WHERE tags.site != 'other'"));
        assert!(m("SELECT * FROM devices WHERE tags.site = \"s\""));
        assert!(m(
            "SELECT * FROM devices WHERE tags.site = 's' OR tags.x = 'it''s'"
        ));
    }

    #[test]
    fn unsupported_queries_are_refused_with_a_reason() {
        for (q, needle) in [
            ("SELECT count() FROM devices", "functions"),
            ("SELECT TOP 3 * FROM devices", "TOP"),
            ("SELECT deviceId, deviceId FROM devices", "twice"),
            ("SELECT a.x, b.x FROM devices", "twice"),
            ("SELECT deviceId AS FROM devices", "name after AS"),
            ("SELECT deviceId, FROM devices", "property path"),
            ("SELECT * FROM jobs", "devices"),
            ("SELECT * FROM devices GROUP BY tags.site", "GROUP BY"),
            ("SELECT * FROM devices WHERE", "property path"),
            ("SELECT * FROM devices WHERE tags.site = ", "literal"),
            ("SELECT * FROM devices WHERE (tags.a = 1", "')'"),
            ("SELECT * FROM devices WHERE tags.a = 'open", "unterminated"),
            (
                "SELECT * FROM devices WHERE tags.a ~ 1",
                "unexpected character",
            ),
            ("SELECT * FROM devices WHERE deviceId IN ['a' 'b']", "']'"),
            ("", "SELECT"),
        ] {
            let err = parse(q).unwrap_err().0;
            assert!(err.contains(needle), "{q:?} → {err}");
        }
        assert!(
            parse(&format!(
                "SELECT * FROM devices WHERE deviceId = '{}'",
                "a".repeat(9000)
            ))
            .is_err()
        );
    }

    fn module_twin() -> TwinDoc {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let mut t = TwinDoc::new("dev-1", Some("$edgeAgent"), "e");
        t.set_desired(
            json!({"modules": {"m": {"image": "a"}}})
                .as_object()
                .cloned()
                .unwrap(),
            at("2026-03-01T10:00:00Z"),
        );
        t.set_reported(
            json!({"lastDesiredVersion": 2, "lastDesiredStatus": {"code": 200}, "modules": {"m": {"runtimeStatus": "running"}}})
                .as_object()
                .cloned()
                .unwrap(),
            at("2026-03-01T11:00:00.5Z"),
        );
        t.set_reported(
            json!({"lastDesiredVersion": 2, "lastDesiredStatus": {"code": 200}, "modules": {"m": {"runtimeStatus": "failed"}}})
                .as_object()
                .cloned()
                .unwrap(),
            at("2026-03-01T12:00:00Z"),
        );
        t
    }

    fn project(q: &str, t: &TwinDoc) -> Value {
        Value::Object(parse(q).unwrap().project(t).unwrap())
    }

    #[test]
    fn projections_render_by_alias_or_last_name_and_leave_out_missing_paths() {
        let t = module_twin();
        assert_eq!(
            project(
                "SELECT deviceId, moduleId, properties.reported.lastDesiredStatus, properties.reported.nope FROM devices.modules",
                &t
            ),
            json!({"deviceId": "dev-1", "moduleId": "$edgeAgent", "lastDesiredStatus": {"code": 200}})
        );
        assert_eq!(
            project(
                "select DeviceId, VERSION, etag, connectionState, lastActivityTime, properties.desired.$version AS desiredVersion from devices.modules",
                &t
            ),
            json!({
                "deviceId": "dev-1", "version": 4, "etag": "AAAAAAAAAAQ=",
                "connectionState": "Disconnected", "lastActivityTime": "0001-01-01T00:00:00Z",
                "desiredVersion": 2
            })
        );
        let meta = project(
            "SELECT properties.reported.$metadata.$lastUpdated AS reportedAt, properties.reported.$metadata.modules.m.runtimeStatus FROM devices.modules",
            &t,
        );
        assert_eq!(meta["reportedAt"], "2026-03-01T12:00:00.0000000Z");
        assert_eq!(
            meta["runtimeStatus"],
            json!({"$lastUpdated": "2026-03-01T12:00:00.0000000Z"})
        );
        let reported = project("SELECT properties.reported FROM devices.modules", &t);
        assert_eq!(reported["reported"]["$version"], 3);
        assert!(reported["reported"]["$metadata"]["lastDesiredVersion"].is_object());
        assert!(
            parse("SELECT * FROM devices")
                .unwrap()
                .project(&t)
                .is_none()
        );
    }

    #[test]
    fn metadata_timestamps_compare_as_strings() {
        let t = module_twin();
        let m = |q: &str| parse(q).unwrap().matches(&t);
        assert!(m(
            "SELECT * FROM devices.modules WHERE properties.reported.$metadata.$lastUpdated >= '2026-03-01T12:00:00.0000000Z'"
        ));
        assert!(
            !m(
                "SELECT * FROM devices.modules WHERE properties.reported.$metadata.$lastUpdated >= '2026-03-01T12:00:00Z'"
            ),
            "a watermark without the 7 fractional digits sorts after every value of its second"
        );
        assert!(m(
            "SELECT * FROM devices.modules WHERE properties.reported.$metadata.lastDesiredVersion.$lastUpdated < '2026-03-01T11:00:00.6000000Z'"
        ));
        assert!(m(
            "SELECT * FROM devices.modules WHERE properties.reported.$metadata.modules.m.runtimeStatus.$lastUpdated > '2026-03-01T11:30:00.0000000Z'"
        ));
        assert!(m(
            "SELECT * FROM devices.modules WHERE properties.desired.$metadata.$lastUpdatedVersion = 2"
        ));
        assert!(m(
            "SELECT * FROM devices.modules WHERE properties.desired.$version = properties.reported.lastDesiredVersion"
        ));
        assert!(!m(
            "SELECT * FROM devices.modules WHERE properties.desired.$version > properties.reported.lastDesiredVersion"
        ));
        assert!(m(
            "SELECT * FROM devices.modules WHERE connectionState IN ['Disconnected', 'x'] AND moduleId NIN ['$edgeHub']"
        ));
    }

    #[test]
    fn features_the_hub_may_refuse_are_recognised() {
        let q = |text: &str| parse(text).unwrap();
        let projected = q("SELECT deviceId FROM devices");
        let meta = q(
            "SELECT * FROM devices.modules WHERE NOT (properties.reported.$metadata.$lastUpdated < 'x')",
        );
        let plain = q("SELECT * FROM devices WHERE properties.desired.$version > 1");
        assert!(projected.has_projection() && !projected.filters_on_metadata());
        assert!(meta.filters_on_metadata() && !meta.has_projection());
        assert!(!plain.has_projection() && !plain.filters_on_metadata());
        let strict = QueryRefusals {
            projections: true,
            metadata_filters: true,
        };
        assert!(
            strict
                .check(&projected)
                .unwrap_err()
                .0
                .contains("projections")
        );
        assert!(strict.check(&meta).unwrap_err().0.contains("$metadata"));
        assert!(strict.check(&plain).is_ok());
        assert!(QueryRefusals::default().check(&meta).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn query_shaped_text_never_panics_the_parser(
            text in "(SELECT|select|\\*|FROM|devices|\\.|modules|WHERE|AND|OR|NOT|IN|NIN|AS|TOP|\\(|\\)|\\[|\\]|,|=|!=|<>|<=|>=|<|>|'a'|\"b\"|'|1|-2\\.5|true|null|tags|deviceId|properties|reported|desired|\\$metadata|\\$lastUpdated|\\$version|\\$x| ){0,40}"
        ) {
            if let Ok(q) = parse(&text) {
                let t = module_twin();
                let _ = q.matches(&t);
                let _ = q.project(&t);
                let _ = q.matches(&twin("a", None, "s"));
            }
        }

        #[test]
        fn projection_queries_never_panic_and_only_name_the_selected_keys(
            paths in proptest::collection::vec("(deviceId|moduleId|version|etag|tags|properties|reported|desired|\\$metadata|\\$lastUpdated|\\$version|modules|m|lastDesiredStatus|code)(\\.(properties|reported|desired|\\$metadata|\\$lastUpdated|\\$version|modules|m|lastDesiredStatus|code)){0,4}", 1..5)
        ) {
            let text = format!("SELECT {} FROM devices.modules", paths.join(", "));
            if let Ok(q) = parse(&text) {
                let fields = q.project(&module_twin()).unwrap_or_default();
                if let Select::Fields(selected) = &q.select {
                    proptest::prop_assert!(fields.keys().all(|k| selected.iter().any(|s| &s.name == k)));
                }
            }
        }
    }
}
