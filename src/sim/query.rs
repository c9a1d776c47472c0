//! The subset of the IoT Hub query language the simulator understands, parsed by a
//! small recursive-descent parser:
//!
//! ```text
//! query     := SELECT '*' FROM source [WHERE condition]
//! source    := 'devices' | 'devices' '.' 'modules'
//! condition := conjunct (OR conjunct)*
//! conjunct  := unary (AND unary)*
//! unary     := NOT unary | '(' condition ')' | path compare literal | path IN '[' literal (',' literal)* ']'
//! compare   := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//! path      := name ('.' name)*          names may start with '$'
//! literal   := 'text' | "text" | number | true | false | null
//! ```
//! Keywords are case-insensitive. Anything else (projections, GROUP BY, functions) is
//! refused with an error the server turns into IoT Hub's 400 body.

use std::cmp::Ordering;

use serde_json::Value;

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
    pub filter: Option<Condition>,
}

/// A WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare(Vec<String>, CompareOp, Value),
    In(Vec<String>, Vec<Value>),
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
        if self.peek() != Some(&Token::Star) {
            return Err(self.unexpected(
                "the simulator supports only SELECT * (no projections or aggregates)",
            ));
        }
        self.pos += 1;
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
        Ok(Query { source, filter })
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
        if self.at_keyword("IN") {
            self.pos += 1;
            self.expect(Token::LBracket, "'[' after IN")?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.expect(Token::RBracket, "']' closing the IN list")?;
            return Ok(Condition::In(path, values));
        }
        match self.next() {
            Some(Token::Op(op)) => Ok(Condition::Compare(path, op, self.literal()?)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("expected a comparison operator or IN"))
            }
        }
    }

    fn path(&mut self) -> Result<Vec<String>, QueryError> {
        let mut path = Vec::new();
        loop {
            match self.next() {
                Some(Token::Word(w)) if !is_reserved(&w) => path.push(w),
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
    ["AND", "OR", "NOT", "IN", "SELECT", "FROM", "WHERE"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
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

impl Condition {
    /// Whether the twin satisfies the condition. A missing property satisfies no comparison.
    pub fn matches(&self, twin: &TwinDoc) -> bool {
        match self {
            Condition::And(a, b) => a.matches(twin) && b.matches(twin),
            Condition::Or(a, b) => a.matches(twin) || b.matches(twin),
            Condition::Not(c) => !c.matches(twin),
            Condition::Compare(path, op, literal) => twin
                .lookup(path)
                .is_some_and(|v| compare(v.as_ref(), *op, literal)),
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
            ("SELECT deviceId FROM devices", "SELECT *"),
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

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn query_shaped_text_never_panics_the_parser(
            text in "(SELECT|select|\\*|FROM|devices|\\.|modules|WHERE|AND|OR|NOT|IN|\\(|\\)|\\[|\\]|,|=|!=|<>|<=|>=|<|>|'a'|\"b\"|'|1|-2\\.5|true|null|tags|deviceId|\\$x| ){0,40}"
        ) {
            if let Ok(Query { filter: Some(f), .. }) = parse(&text) {
                let _ = f.matches(&twin("a", None, "s"));
            }
        }
    }
}
