//! V2's query options over JSON records: `$filter`, `$orderby`, `$select`.
//!
//! Paths use `/` (and `.`, which V2 integrations also send) into nested objects and into arrays,
//! where a comparison holds when any element satisfies it. String comparisons are lexicographic,
//! which is what paging by id (`id gt '<last id>'`) relies on.

use std::cmp::Ordering;

use serde_json::Value;

/// A parse error with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

fn error(position: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        position,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: Vec<String>,
        op: Op,
        value: Value,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, QueryError> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((pos, Token::LParen));
                i += 1;
            }
            ')' => {
                tokens.push((pos, Token::RParen));
                i += 1;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(error(pos, "unterminated string literal")),
                        Some((_, '\'')) if chars.get(i + 1).map(|c| c.1) == Some('\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some((_, '\'')) => {
                            i += 1;
                            break;
                        }
                        Some((_, ch)) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                tokens.push((pos, Token::Str(text)));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|c| c.1).collect();
                let n = text
                    .parse()
                    .map_err(|_| error(pos, format!("invalid number {text:?}")))?;
                tokens.push((pos, Token::Num(n)));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].1.is_alphanumeric() || matches!(chars[i].1, '_' | '/' | '.'))
                {
                    i += 1;
                }
                tokens.push((
                    pos,
                    Token::Ident(chars[start..i].iter().map(|c| c.1).collect()),
                ));
            }
            other => return Err(error(pos, format!("unexpected character {other:?}"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.1)
    }

    fn pos(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |t| t.0)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w == word)
    }

    fn or(&mut self) -> Result<Filter, QueryError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, QueryError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, QueryError> {
        if self.keyword("not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::RParen) {
                return Err(error(self.pos(), "expected `)`"));
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Filter, QueryError> {
        let path = match self.peek() {
            Some(Token::Ident(p)) => parse_path(p),
            _ => return Err(error(self.pos(), "expected a field path")),
        };
        self.at += 1;
        let op = match self.peek() {
            Some(Token::Ident(w)) => match w.as_str() {
                "eq" => Op::Eq,
                "ne" => Op::Ne,
                "gt" => Op::Gt,
                "ge" => Op::Ge,
                "lt" => Op::Lt,
                "le" => Op::Le,
                other => {
                    return Err(error(
                        self.pos(),
                        format!("unsupported operator {other:?} (eq, ne, gt, ge, lt, le)"),
                    ));
                }
            },
            _ => return Err(error(self.pos(), "expected an operator")),
        };
        self.at += 1;
        let value = match self.peek() {
            Some(Token::Str(s)) => Value::String(s.clone()),
            Some(Token::Num(n)) => {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
            Some(Token::Ident(w)) if w == "true" => Value::Bool(true),
            Some(Token::Ident(w)) if w == "false" => Value::Bool(false),
            Some(Token::Ident(w)) if w == "null" => Value::Null,
            _ => {
                return Err(error(
                    self.pos(),
                    "expected a literal ('text', a number, true, false or null)",
                ));
            }
        };
        self.at += 1;
        Ok(Filter::Compare { path, op, value })
    }
}

fn parse_path(path: &str) -> Vec<String> {
    path.split(['/', '.'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a `$filter` expression.
pub fn parse_filter(input: &str) -> Result<Filter, QueryError> {
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(error(0, "empty $filter"));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end: input.len(),
    };
    let filter = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(error(parser.pos(), "unexpected input after the expression"));
    }
    Ok(filter)
}

/// Every value at `path`, fanning out over arrays.
fn resolve<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                resolve(item, path, out);
            }
        }
        _ => match path.split_first() {
            None => out.push(value),
            Some((head, rest)) => {
                if let Some(child) = value.get(head) {
                    resolve(child, rest, out);
                }
            }
        },
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

pub fn matches(filter: &Filter, record: &Value) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, record) && matches(b, record),
        Filter::Or(a, b) => matches(a, record) || matches(b, record),
        Filter::Not(inner) => !matches(inner, record),
        Filter::Compare { path, op, value } => {
            let mut found = Vec::new();
            resolve(record, path, &mut found);
            if found.is_empty() {
                found.push(&Value::Null);
            }
            let test = |candidate: &&Value| {
                let ord = compare(candidate, value);
                match op {
                    Op::Eq => ord == Some(Ordering::Equal),
                    Op::Ne => ord != Some(Ordering::Equal),
                    Op::Gt => ord == Some(Ordering::Greater),
                    Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                    Op::Lt => ord == Some(Ordering::Less),
                    Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                }
            };
            if *op == Op::Ne {
                found.iter().all(test)
            } else {
                found.iter().any(test)
            }
        }
    }
}

/// One `$orderby` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub path: Vec<String>,
    pub descending: bool,
}

pub fn parse_orderby(input: &str) -> Result<Vec<OrderKey>, QueryError> {
    let mut keys = Vec::new();
    let mut offset = 0;
    for part in input.split(',') {
        let mut words = part.split_whitespace();
        let path = words
            .next()
            .ok_or_else(|| error(offset, "empty $orderby key"))?;
        let descending = match words.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(error(
                    offset,
                    format!("expected asc or desc after {path:?}, got {other:?}"),
                ));
            }
        };
        if words.next().is_some() {
            return Err(error(
                offset,
                format!("unexpected words in $orderby key {part:?}"),
            ));
        }
        keys.push(OrderKey {
            path: parse_path(path),
            descending,
        });
        offset += part.len() + 1;
    }
    Ok(keys)
}

/// Orders two records by the keys; missing values sort last.
pub fn order(keys: &[OrderKey], a: &Value, b: &Value) -> Ordering {
    for key in keys {
        let first = |v: &Value| {
            let mut out = Vec::new();
            resolve(v, &key.path, &mut out);
            out.first().map(|v| (*v).clone())
        };
        let ord = match (first(a), first(b)) {
            (Some(x), Some(y)) => compare(&x, &y).unwrap_or(Ordering::Equal),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        let ord = if key.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// A record as `$select` shows it: its selected top-level fields (and `id`). It is written
/// straight from the stored record, so a page of a large tenant is not copied to be trimmed.
#[derive(Debug)]
pub struct Selected<'a> {
    record: &'a Value,
    fields: &'a [String],
}

impl<'a> Selected<'a> {
    pub fn new(record: &'a Value, fields: &'a [String]) -> Self {
        Selected { record, fields }
    }

    fn keeps(&self, key: &str) -> bool {
        key == "id" || self.fields.iter().any(|f| f == key)
    }
}

impl serde::Serialize for Selected<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.record {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(None)?;
                for (key, value) in map.iter().filter(|(k, _)| self.keeps(k)) {
                    out.serialize_entry(key, value)?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(filter: &str, record: &Value) -> bool {
        matches(&parse_filter(filter).expect("parses"), record)
    }

    #[test]
    fn comparisons_and_logic() {
        let r = json!({"id":"b","n":5,"ok":true,"name":"O'Neil",
            "defaultCommunication":{"phoneNormalisedNumber":"+41441234567"},
            "isContactPersonFor":[{"accountId":"a1"},{"accountId":"a2"}]});
        assert!(holds("id eq 'b'", &r));
        assert!(holds("id gt 'a' and id lt 'c'", &r));
        assert!(!holds("id gt 'b'", &r));
        assert!(holds("n ge 5 and n le 5 and n ne 4", &r));
        assert!(holds("ok eq true", &r));
        assert!(holds("name eq 'O''Neil'", &r));
        assert!(holds(
            "defaultCommunication/phoneNormalisedNumber eq '+41441234567'",
            &r
        ));
        assert!(holds(
            "defaultCommunication.phoneNormalisedNumber eq '+41441234567'",
            &r
        ));
        assert!(holds("isContactPersonFor/accountId eq 'a2'", &r));
        assert!(!holds("isContactPersonFor/accountId eq 'a3'", &r));
        assert!(holds("not(id eq 'x') and (id eq 'x' or n eq 5)", &r));
        assert!(holds("missing eq null", &r));
        assert!(!holds("missing eq 'x'", &r));
    }

    #[test]
    fn errors_have_positions() {
        let e = parse_filter("id eq").expect_err("incomplete");
        assert_eq!(e.position, 5);
        let e = parse_filter("id like 'x'").expect_err("operator");
        assert!(e.message.contains("like"), "{e}");
        assert!(parse_filter("id eq 'open").is_err());
        assert!(parse_filter("(id eq 'a'").is_err());
        assert!(parse_filter("id eq 'a' id").is_err());
        assert!(parse_filter("").is_err());
        assert!(parse_filter("id eq 'a' ; drop").is_err());
    }

    #[test]
    fn ordering_and_selection() {
        let keys = parse_orderby("startDateTime desc, id").expect("parses");
        let a = json!({"id":"1","startDateTime":"2026-01-01"});
        let b = json!({"id":"2","startDateTime":"2026-02-01"});
        assert_eq!(order(&keys, &a, &b), Ordering::Greater);
        assert!(parse_orderby("id sideways").is_err());
        let record = json!({"id":"1","a":1,"b":2});
        let fields = ["a".to_string()];
        let s = serde_json::to_value(Selected::new(&record, &fields)).expect("serializes");
        assert_eq!(s, json!({"id":"1","a":1}));
    }
}
