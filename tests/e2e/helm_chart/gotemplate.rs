//! A renderer for the subset of Go templates and Sprig functions that the Helm chart uses, so
//! `deploy/helm/voltgate` is rendered and checked here although no `helm` binary can be had.
//!
//! It follows Helm where the chart depends on it (values are YAML numbers read as `float64`,
//! a missing map key reads as nil, a field of nil is an error, `and`/`or` stop early, `lookup`
//! finds nothing) and is stricter where Helm would render something silently wrong: any
//! construct, function, verb or argument type it does not know is an error, found when the
//! template is parsed wherever possible, so a chart change beyond the subset fails the check
//! until the renderer learns it. `.Files.Get` of a missing file is an error too (Helm gives "").

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A template value, shaped like what Helm's templates see.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// `.Files`: its only field is the `Get` method.
    Files,
    /// A method value, called with the arguments that follow it in a command.
    Method(&'static str),
}

/// The functions the renderer implements; any other name fails the parse.
const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "eq",
    "ne",
    "gt",
    "default",
    "empty",
    "quote",
    "printf",
    "print",
    "int",
    "int64",
    "toYaml",
    "indent",
    "nindent",
    "sha256sum",
    "trunc",
    "trimSuffix",
    "trimPrefix",
    "hasPrefix",
    "contains",
    "replace",
    "b64enc",
    "b64dec",
    "required",
    "fail",
    "lookup",
    "randAlphaNum",
    "include",
    "index",
    "list",
    "dict",
    "hasKey",
    "deepCopy",
    "mergeOverwrite",
];

/// How deep `include` and `template` may nest (Helm stops at 1000; the chart needs a few).
const MAX_DEPTH: usize = 64;

impl Value {
    /// A YAML document as Helm reads values: every number a `float64`, keys as strings.
    pub fn from_yaml(yaml: &serde_norway::Value) -> Result<Value, String> {
        use serde_norway::Value as Y;
        Ok(match yaml {
            Y::Null => Value::Nil,
            Y::Bool(b) => Value::Bool(*b),
            Y::Number(n) => Value::Float(
                n.as_f64()
                    .ok_or_else(|| format!("number {n} is not a float64"))?,
            ),
            Y::String(s) => Value::Str(s.clone()),
            Y::Sequence(items) => Value::List(
                items
                    .iter()
                    .map(Value::from_yaml)
                    .collect::<Result<_, _>>()?,
            ),
            Y::Mapping(map) => {
                let mut out = BTreeMap::new();
                for (key, value) in map {
                    let key = match key {
                        Y::String(s) => s.clone(),
                        Y::Bool(b) => b.to_string(),
                        Y::Number(n) => n.to_string(),
                        other => return Err(format!("mapping key {other:?} is not a scalar")),
                    };
                    out.insert(key, Value::from_yaml(value)?);
                }
                Value::Map(out)
            }
            Y::Tagged(tagged) => return Err(format!("YAML tag {} is not supported", tagged.tag)),
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Files => "chartutil.Files",
            Value::Method(_) => "method",
        }
    }

    /// Go's template truth: false, 0, nil and empty strings, lists and maps are false.
    fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Files | Value::Method(_) => true,
        }
    }

    fn str(&self, function: &str) -> Result<&str, String> {
        match self {
            Value::Str(s) => Ok(s),
            other => Err(format!(
                "{function}: wrong type for value; expected string; got {}",
                other.kind()
            )),
        }
    }

    fn int(&self, function: &str) -> Result<i64, String> {
        match self {
            Value::Int(i) => Ok(*i),
            other => Err(format!(
                "{function}: wrong type for value; expected int; got {}",
                other.kind()
            )),
        }
    }

    fn map(&self, function: &str) -> Result<&BTreeMap<String, Value>, String> {
        match self {
            Value::Map(m) => Ok(m),
            other => Err(format!(
                "{function}: wrong type for value; expected map[string]interface {{}}; got {}",
                other.kind()
            )),
        }
    }
}

/// Go's `%v` of a float64: the shortest digits, with an exponent from 1e+06 on (`1e+06`, the
/// Helm surprise of a large number printed straight from the values).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return "0".into();
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{f}")
    }
}

/// What `{{ value }}` prints (Helm then drops `<no value>`).
fn print_value(value: &Value) -> String {
    match value {
        Value::Nil => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_float(*f),
        Value::Str(s) => s.clone(),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(print_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Map(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", print_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Files => "{files}".into(),
        Value::Method(name) => name.to_string(),
    }
}

/// Go's `strconv.Quote`, as `%q` and Sprig's `quote` write a string.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A scalar string that YAML reads back as the same string without quotes.
fn plain_yaml_safe(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", ".nan",
        "=", "<<",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    !(s.trim() != s
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || first.is_ascii_digit()
        || (first == '.' || first == '+') && s.len() > 1
        || s.contains(": ")
        || s.ends_with(':')
        || s.contains(" #")
        || s.chars().any(|c| c.is_control())
        || RESERVED.contains(&s.to_ascii_lowercase().as_str())
        || s.parse::<f64>().is_ok())
}

fn yaml_scalar(value: &Value) -> Result<String, String> {
    Ok(match value {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        Value::Float(f) => format!("{f}"),
        Value::Str(s) if plain_yaml_safe(s) => s.clone(),
        Value::Str(s) => serde_json::to_string(s).expect("a string serialises"),
        Value::List(l) if l.is_empty() => "[]".into(),
        Value::Map(m) if m.is_empty() => "{}".into(),
        other => return Err(format!("toYaml: cannot write a {}", other.kind())),
    })
}

/// Helm's `toYaml`: block style, keys sorted, lists at their key's indentation, no final newline.
fn to_yaml(value: &Value) -> Result<String, String> {
    fn block(value: &Value, indent: usize, out: &mut Vec<String>) -> Result<(), String> {
        let pad = " ".repeat(indent);
        match value {
            Value::Map(map) if !map.is_empty() => {
                for (key, inner) in map {
                    let key = yaml_scalar(&Value::Str(key.clone()))?;
                    match inner {
                        Value::Map(m) if !m.is_empty() => {
                            out.push(format!("{pad}{key}:"));
                            block(inner, indent + 2, out)?;
                        }
                        Value::List(l) if !l.is_empty() => {
                            out.push(format!("{pad}{key}:"));
                            block(inner, indent, out)?;
                        }
                        scalar => out.push(format!("{pad}{key}: {}", yaml_scalar(scalar)?)),
                    }
                }
            }
            Value::List(items) if !items.is_empty() => {
                for item in items {
                    let mut lines = Vec::new();
                    block(item, 0, &mut lines)?;
                    for (i, line) in lines.iter().enumerate() {
                        let lead = if i == 0 { "- " } else { "  " };
                        out.push(format!("{pad}{lead}{line}"));
                    }
                }
            }
            scalar => out.push(format!("{pad}{}", yaml_scalar(scalar)?)),
        }
        Ok(())
    }
    let mut lines = Vec::new();
    block(value, 0, &mut lines)?;
    Ok(lines.join("\n"))
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `.a.b` (empty: the dot itself).
    Field(Vec<String>),
    /// `$name.a.b` (`$` alone has the empty name).
    Var(String, Vec<String>),
    /// `.a.b` right after a `)`.
    Chain(Vec<String>),
    Literal(Value),
    Open,
    Close,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Term {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Function(String),
    Literal(Value),
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipe {
    line: usize,
    decl: Vec<String>,
    /// `:=` declares, `=` assigns.
    declare: bool,
    commands: Vec<Vec<Term>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Output(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    With(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    Template(String, Option<Pipe>, usize),
}

enum Segment {
    Text(String),
    Action(Vec<Token>, usize),
}

fn field_chain(chars: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    while i < chars.len() && chars[i] == '.' {
        let start = i + 1;
        let mut end = start;
        while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
            end += 1;
        }
        if end == start {
            break;
        }
        fields.push(chars[start..end].iter().collect());
        i = end;
    }
    (fields, i)
}

fn tokenize(action: &str, line: usize) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = action.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |msg: String| Err(format!("line {line}: {msg} in {{{{{action}}}}}"));
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
                if i < chars.len() && chars[i] == '.' {
                    let (fields, next) = field_chain(&chars, i);
                    tokens.push(Token::Chain(fields));
                    i = next;
                }
            }
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '.' if chars
                .get(i + 1)
                .is_some_and(|c| c.is_alphabetic() || *c == '_') =>
            {
                let (fields, next) = field_chain(&chars, i);
                tokens.push(Token::Field(fields));
                i = next;
            }
            '.' => {
                tokens.push(Token::Field(Vec::new()));
                i += 1;
            }
            '$' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let (fields, next) = field_chain(&chars, end);
                tokens.push(Token::Var(name, fields));
                i = next;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err("unterminated string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            let escaped = match chars.get(i + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('"') => '"',
                                Some('\\') => '\\',
                                other => return err(format!("escape \\{other:?} not supported")),
                            };
                            text.push(escaped);
                            i += 2;
                        }
                        Some(c) => {
                            text.push(*c);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Literal(Value::Str(text)));
                i += 1;
            }
            '`' => {
                let start = i + 1;
                let Some(len) = chars[start..].iter().position(|c| *c == '`') else {
                    return err("unterminated raw string".into());
                };
                tokens.push(Token::Literal(Value::Str(
                    chars[start..start + len].iter().collect(),
                )));
                i = start + len + 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if let Ok(int) = text.parse::<i64>() {
                    tokens.push(Token::Literal(Value::Int(int)));
                } else if let Ok(float) = text.parse::<f64>() {
                    tokens.push(Token::Literal(Value::Float(float)));
                } else {
                    return err(format!("number {text} not supported"));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(match word.as_str() {
                    "true" => Token::Literal(Value::Bool(true)),
                    "false" => Token::Literal(Value::Bool(false)),
                    "nil" => Token::Literal(Value::Nil),
                    _ => Token::Ident(word),
                });
            }
            other => return err(format!("character {other:?} not supported")),
        }
    }
    Ok(tokens)
}

/// Splits a template into text and actions, applying the `{{-` and `-}}` trim markers and
/// dropping comments.
fn segments(source: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut rest = source;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let text = if trim_next { rest.trim_start() } else { rest };
            out.push(Segment::Text(text.to_string()));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        line += rest[..open].matches('\n').count();
        let mut inner = &rest[open + 2..];
        if inner.starts_with("- ") || inner.starts_with("-\n") || inner.starts_with("-\t") {
            text = text.trim_end();
            inner = &inner[2..];
        }
        out.push(Segment::Text(text.to_string()));
        // As in Go, a comment starts right after the delimiter and its trim marker.
        let (action, after) = if inner.starts_with("/*") {
            let end = inner
                .find("*/")
                .ok_or_else(|| format!("line {line}: unclosed comment"))?;
            let after_comment = &inner[end + 2..];
            let close = after_comment
                .find("}}")
                .ok_or_else(|| format!("line {line}: unclosed action"))?;
            let between = &after_comment[..close];
            if !between.is_empty() && between != " -" {
                return Err(format!(
                    "line {line}: text after a comment inside its action"
                ));
            }
            (None, &after_comment[close..])
        } else {
            let chars: Vec<(usize, char)> = inner.char_indices().collect();
            let mut k = 0;
            let mut end = None;
            while k < chars.len() {
                let (at, c) = chars[k];
                match c {
                    '"' => {
                        k += 1;
                        while k < chars.len() && chars[k].1 != '"' {
                            if chars[k].1 == '\\' {
                                k += 1;
                            }
                            k += 1;
                        }
                    }
                    '`' => {
                        k += 1;
                        while k < chars.len() && chars[k].1 != '`' {
                            k += 1;
                        }
                    }
                    '}' if inner[at..].starts_with("}}") => {
                        end = Some(at);
                        break;
                    }
                    _ => {}
                }
                k += 1;
            }
            let end = end.ok_or_else(|| format!("line {line}: unclosed action"))?;
            (Some(&inner[..end]), &inner[end..])
        };
        let right_trim = match action {
            Some(a) => a.ends_with(" -") || a.ends_with("\n-") || a.ends_with("\t-"),
            None => inner[..inner.len() - after.len()].ends_with(" -"),
        };
        if let Some(action) = action {
            let action = if right_trim {
                &action[..action.len() - 1]
            } else {
                action
            };
            out.push(Segment::Action(tokenize(action, line)?, line));
        }
        line += inner[..inner.len() - after.len()].matches('\n').count();
        trim_next = right_trim;
        rest = &after[2..];
    }
    Ok(out)
}

/// The templates a file defines, by name.
type Defines = BTreeMap<String, Vec<Node>>;

/// The `else` or `end` action that closed a list, with its line; `None` at the end of the file.
type Ending = Option<(Vec<Token>, usize)>;

struct Parser {
    segments: Vec<Segment>,
    at: usize,
    defines: Defines,
}

fn parse_pipe(tokens: &[Token], line: usize) -> Result<Pipe, String> {
    let mut decl = Vec::new();
    let mut declare = false;
    let mut rest = tokens;
    match tokens {
        [Token::Var(a, fa), Token::Comma, Token::Var(b, fb), Token::Declare, tail @ ..]
            if fa.is_empty() && fb.is_empty() =>
        {
            decl = vec![a.clone(), b.clone()];
            declare = true;
            rest = tail;
        }
        [Token::Var(a, fa), op @ (Token::Declare | Token::Assign), tail @ ..] if fa.is_empty() => {
            decl = vec![a.clone()];
            declare = *op == Token::Declare;
            rest = tail;
        }
        _ => {}
    }
    let (commands, used) = parse_commands(rest, line)?;
    if used != rest.len() {
        return Err(format!("line {line}: unexpected {:?}", rest[used]));
    }
    Ok(Pipe {
        line,
        decl,
        declare,
        commands,
    })
}

/// Commands up to the end of `tokens` or an unmatched `)`; returns them and the tokens used.
fn parse_commands(tokens: &[Token], line: usize) -> Result<(Vec<Vec<Term>>, usize), String> {
    let mut commands = vec![Vec::new()];
    let mut i = 0;
    while i < tokens.len() {
        let term = match &tokens[i] {
            Token::Close => break,
            Token::Pipe => {
                commands.push(Vec::new());
                i += 1;
                continue;
            }
            Token::Ident(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(format!("line {line}: function {name:?} not defined"));
                }
                Term::Function(name.clone())
            }
            Token::Field(fields) => Term::Field(fields.clone()),
            Token::Var(name, fields) => Term::Var(name.clone(), fields.clone()),
            Token::Literal(value) => Term::Literal(value.clone()),
            Token::Open => {
                let (inner, used) = parse_commands(&tokens[i + 1..], line)?;
                i += 1 + used;
                if tokens.get(i) != Some(&Token::Close) {
                    return Err(format!("line {line}: unclosed parenthesis"));
                }
                let chain = match tokens.get(i + 1) {
                    Some(Token::Chain(fields)) => {
                        i += 1;
                        fields.clone()
                    }
                    _ => Vec::new(),
                };
                Term::Sub(
                    Box::new(Pipe {
                        line,
                        decl: Vec::new(),
                        declare: false,
                        commands: inner,
                    }),
                    chain,
                )
            }
            other => return Err(format!("line {line}: unexpected {other:?}")),
        };
        commands
            .last_mut()
            .expect("one command at least")
            .push(term);
        i += 1;
    }
    if commands.iter().any(Vec::is_empty) {
        return Err(format!("line {line}: missing command in a pipeline"));
    }
    Ok((commands, i))
}

impl Parser {
    /// Nodes up to an `else` or `end`, returned with that action's tokens (None at the end).
    fn list(&mut self) -> Result<(Vec<Node>, Ending), String> {
        let mut nodes = Vec::new();
        while self.at < self.segments.len() {
            let segment =
                std::mem::replace(&mut self.segments[self.at], Segment::Text(String::new()));
            self.at += 1;
            let (tokens, line) = match segment {
                Segment::Text(text) => {
                    if !text.is_empty() {
                        nodes.push(Node::Text(text));
                    }
                    continue;
                }
                Segment::Action(tokens, line) => (tokens, line),
            };
            let keyword = match tokens.first() {
                Some(Token::Ident(word)) => word.as_str(),
                _ => "",
            };
            match keyword {
                "end" | "else" => return Ok((nodes, Some((tokens, line)))),
                "if" | "with" => {
                    let is_if = keyword == "if";
                    let mut branches = Vec::new();
                    let mut condition = parse_pipe(&tokens[1..], line)?;
                    let otherwise = loop {
                        let (body, end) = self.list()?;
                        branches.push((condition, body));
                        let (end, end_line) =
                            end.ok_or(format!("line {line}: unclosed {keyword}"))?;
                        match end.as_slice() {
                            [Token::Ident(e)] if e == "end" => break Vec::new(),
                            [Token::Ident(e)] if e == "else" => {
                                let (body, end) = self.list()?;
                                match end {
                                    Some((t, _)) if t == [Token::Ident("end".into())] => {
                                        break body
                                    }
                                    _ => {
                                        return Err(format!(
                                            "line {end_line}: else not closed by end"
                                        ))
                                    }
                                }
                            }
                            [Token::Ident(e), Token::Ident(k), rest @ ..]
                                if e == "else" && k == keyword =>
                            {
                                condition = parse_pipe(rest, end_line)?;
                            }
                            _ => {
                                return Err(format!("line {end_line}: {end:?} not supported here"))
                            }
                        }
                    };
                    nodes.push(if is_if {
                        Node::If(branches, otherwise)
                    } else {
                        Node::With(branches, otherwise)
                    });
                }
                "range" => {
                    let pipe = parse_pipe(&tokens[1..], line)?;
                    let (body, end) = self.list()?;
                    let otherwise = match end {
                        Some((t, _)) if t == [Token::Ident("end".into())] => Vec::new(),
                        Some((t, l)) if t == [Token::Ident("else".into())] => {
                            let (otherwise, end) = self.list()?;
                            match end {
                                Some((t, _)) if t == [Token::Ident("end".into())] => otherwise,
                                _ => return Err(format!("line {l}: range else not closed")),
                            }
                        }
                        _ => return Err(format!("line {line}: range not closed by end")),
                    };
                    nodes.push(Node::Range(pipe, body, otherwise));
                }
                "define" => {
                    let name = match &tokens[1..] {
                        [Token::Literal(Value::Str(name))] => name.clone(),
                        _ => return Err(format!("line {line}: define needs one quoted name")),
                    };
                    let (body, end) = self.list()?;
                    match end {
                        Some((t, _)) if t == [Token::Ident("end".into())] => {}
                        _ => return Err(format!("line {line}: define {name:?} not closed by end")),
                    }
                    if self.defines.insert(name.clone(), body).is_some() {
                        return Err(format!("line {line}: {name:?} defined twice"));
                    }
                }
                "template" => {
                    let (name, rest) = match &tokens[1..] {
                        [Token::Literal(Value::Str(name)), rest @ ..] => (name.clone(), rest),
                        _ => return Err(format!("line {line}: template needs a quoted name")),
                    };
                    let pipe = if rest.is_empty() {
                        None
                    } else {
                        Some(parse_pipe(rest, line)?)
                    };
                    nodes.push(Node::Template(name, pipe, line));
                }
                "" => nodes.push(Node::Output(parse_pipe(&tokens, line)?)),
                other if FUNCTIONS.contains(&other) => {
                    nodes.push(Node::Output(parse_pipe(&tokens, line)?))
                }
                other => return Err(format!("line {line}: `{other}` is not supported")),
            }
        }
        Ok((nodes, None))
    }
}

/// Parses one template file: its top-level nodes and the templates it defines.
fn parse(source: &str) -> Result<(Vec<Node>, Defines), String> {
    let mut parser = Parser {
        segments: segments(source)?,
        at: 0,
        defines: BTreeMap::new(),
    };
    let (nodes, end) = parser.list()?;
    if let Some((tokens, line)) = end {
        return Err(format!("line {line}: {tokens:?} without a block"));
    }
    Ok((nodes, parser.defines))
}

// ---------------------------------------------------------------------------------------------
// The chart

/// A chart read from disk: every template parsed, the default values and the files `.Files` sees.
pub struct Chart {
    name: String,
    chart: Value,
    values: Value,
    /// Template files by Helm's name for them (`voltgate/templates/service.yaml`).
    files_by_template: BTreeMap<String, Vec<Node>>,
    defines: BTreeMap<String, Vec<Node>>,
    files: BTreeMap<String, String>,
}

/// The output of one render: each template file's text (partials left out), and NOTES.txt.
pub struct Rendered {
    pub manifests: BTreeMap<String, String>,
    pub notes: String,
}

fn read_dir_files(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if path.is_dir() {
            read_dir_files(&path, &format!("{prefix}{name}/"), out)?;
        } else {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.insert(format!("{prefix}{name}"), text);
        }
    }
    Ok(())
}

/// Helm's coalescing of user values over the chart's: maps merge, `null` deletes, else replace.
pub fn coalesce(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        (Value::Map(base), Value::Map(overrides)) => {
            for (key, value) in overrides {
                match value {
                    Value::Nil => {
                        base.remove(key);
                    }
                    Value::Map(_) if matches!(base.get(key), Some(Value::Map(_))) => {
                        coalesce(base.get_mut(key).expect("checked"), value)
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overrides) => *base = overrides.clone(),
    }
}

impl Chart {
    pub fn load(dir: &Path) -> Result<Chart, String> {
        let read_yaml = |name: &str| -> Result<Value, String> {
            let path = dir.join(name);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let yaml: serde_norway::Value =
                serde_norway::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
            Value::from_yaml(&yaml)
        };
        let meta = read_yaml("Chart.yaml")?;
        let meta = meta.map("Chart.yaml")?;
        let mut chart = BTreeMap::new();
        for (key, field) in [
            ("apiVersion", "APIVersion"),
            ("name", "Name"),
            ("version", "Version"),
            ("appVersion", "AppVersion"),
            ("description", "Description"),
            ("type", "Type"),
            ("keywords", "Keywords"),
        ] {
            chart.insert(
                field.to_string(),
                meta.get(key).cloned().unwrap_or(Value::Nil),
            );
        }
        let name = meta
            .get("name")
            .ok_or("Chart.yaml has no name")?
            .str("Chart.yaml name")?
            .to_string();
        let values = read_yaml("values.yaml")?;

        let mut sources = BTreeMap::new();
        read_dir_files(
            &dir.join("templates"),
            &format!("{name}/templates/"),
            &mut sources,
        )?;
        let mut files_by_template = BTreeMap::new();
        let mut defines = BTreeMap::new();
        for (template, source) in &sources {
            let (nodes, defined) = parse(source).map_err(|e| format!("{template}: {e}"))?;
            for (define, body) in defined {
                if defines.insert(define.clone(), body).is_some() {
                    return Err(format!("{template}: {define:?} defined twice"));
                }
            }
            files_by_template.insert(template.clone(), nodes);
        }
        let mut files = BTreeMap::new();
        if dir.join("files").is_dir() {
            read_dir_files(&dir.join("files"), "files/", &mut files)?;
        }
        Ok(Chart {
            name,
            chart: Value::Map(chart),
            values,
            files_by_template,
            defines,
            files,
        })
    }

    /// The chart's default values.
    pub fn default_values(&self) -> &Value {
        &self.values
    }

    /// `helm template RELEASE CHART -n NAMESPACE -f overrides`, with a fresh install.
    pub fn render(
        &self,
        release: &str,
        namespace: &str,
        overrides: &Value,
    ) -> Result<Rendered, String> {
        let mut values = self.values.clone();
        coalesce(&mut values, overrides);
        let mut manifests = BTreeMap::new();
        let mut notes = String::new();
        for (template, nodes) in &self.files_by_template {
            let base = template.rsplit('/').next().unwrap_or_default();
            if base.starts_with('_') {
                continue;
            }
            let top = Value::Map(BTreeMap::from([
                ("Values".to_string(), values.clone()),
                ("Chart".to_string(), self.chart.clone()),
                (
                    "Release".to_string(),
                    Value::Map(BTreeMap::from([
                        ("Name".to_string(), Value::Str(release.into())),
                        ("Namespace".to_string(), Value::Str(namespace.into())),
                        ("Service".to_string(), Value::Str("Helm".into())),
                        ("IsInstall".to_string(), Value::Bool(true)),
                        ("IsUpgrade".to_string(), Value::Bool(false)),
                        ("Revision".to_string(), Value::Int(1)),
                    ])),
                ),
                (
                    "Template".to_string(),
                    Value::Map(BTreeMap::from([
                        ("Name".to_string(), Value::Str(template.clone())),
                        (
                            "BasePath".to_string(),
                            Value::Str(format!("{}/templates", self.name)),
                        ),
                    ])),
                ),
                ("Files".to_string(), Value::Files),
            ]));
            let mut out = String::new();
            let mut vars = vec![(String::new(), top.clone())];
            let mut run = Run {
                chart: self,
                depth: 0,
            };
            run.exec(nodes, &top, &mut vars, &mut out)
                .map_err(|e| format!("{template}: {e}"))?;
            let out = out.replace("<no value>", "");
            if base == "NOTES.txt" {
                notes = out;
            } else {
                manifests.insert(template.clone(), out);
            }
        }
        Ok(Rendered { manifests, notes })
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

struct Run<'a> {
    chart: &'a Chart,
    depth: usize,
}

type Vars = Vec<(String, Value)>;

fn walk(mut value: Value, fields: &[String]) -> Result<Value, String> {
    for field in fields {
        value = match value {
            Value::Map(mut map) => map.remove(field).unwrap_or(Value::Nil),
            Value::Nil => return Err(format!("nil pointer evaluating interface {{}}.{field}")),
            Value::Files if field == "Get" => Value::Method("Files.Get"),
            other => {
                return Err(format!(
                    "can't evaluate field {field} in type {}",
                    other.kind()
                ))
            }
        };
    }
    Ok(value)
}

fn lookup_var(vars: &Vars, name: &str) -> Result<Value, String> {
    vars.iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("undefined variable ${name}"))
}

impl Run<'_> {
    fn exec(
        &mut self,
        nodes: &[Node],
        dot: &Value,
        vars: &mut Vars,
        out: &mut String,
    ) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Output(pipe) => {
                    let value = self.pipe(pipe, dot, vars)?;
                    if pipe.decl.is_empty() {
                        out.push_str(&print_value(&value));
                    }
                }
                Node::If(branches, otherwise) | Node::With(branches, otherwise) => {
                    let is_with = matches!(node, Node::With(..));
                    let mark = vars.len();
                    let mut taken = false;
                    for (condition, body) in branches {
                        let value = self.pipe(condition, dot, vars)?;
                        if value.truth() {
                            let inner_dot = if is_with { value } else { dot.clone() };
                            self.exec(body, &inner_dot, vars, out)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.exec(otherwise, dot, vars, out)?;
                    }
                    vars.truncate(mark);
                }
                Node::Range(pipe, body, otherwise) => {
                    let mark = vars.len();
                    let mut bare = pipe.clone();
                    bare.decl.clear();
                    let value = self.pipe(&bare, dot, vars)?;
                    let items: Vec<(Value, Value)> = match value {
                        Value::Nil => Vec::new(),
                        Value::List(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v))
                            .collect(),
                        Value::Map(map) => {
                            map.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()
                        }
                        other => {
                            return Err(format!(
                                "line {}: range can't iterate over {}",
                                pipe.line,
                                other.kind()
                            ))
                        }
                    };
                    if items.is_empty() {
                        self.exec(otherwise, dot, vars, out)?;
                    }
                    for (key, item) in items {
                        match pipe.decl.as_slice() {
                            [] => {}
                            [v] => vars.push((v.clone(), item.clone())),
                            [k, v] => {
                                vars.push((k.clone(), key));
                                vars.push((v.clone(), item.clone()));
                            }
                            _ => unreachable!("at most two range variables parse"),
                        }
                        self.exec(body, &item, vars, out)?;
                        vars.truncate(mark);
                    }
                }
                Node::Template(name, pipe, line) => {
                    let data = match pipe {
                        Some(pipe) => self.pipe(pipe, dot, vars)?,
                        None => Value::Nil,
                    };
                    let text = self
                        .include(name, data)
                        .map_err(|e| format!("line {line}: {e}"))?;
                    out.push_str(&text);
                }
            }
        }
        Ok(())
    }

    fn include(&mut self, name: &str, data: Value) -> Result<String, String> {
        let nodes = self
            .chart
            .defines
            .get(name)
            .or_else(|| self.chart.files_by_template.get(name))
            .ok_or_else(|| format!("no template {name:?}"))?;
        if self.depth >= MAX_DEPTH {
            return Err(format!("{name}: templates nest deeper than {MAX_DEPTH}"));
        }
        self.depth += 1;
        let mut out = String::new();
        let mut vars = vec![(String::new(), data.clone())];
        let result = self.exec(nodes, &data, &mut vars, &mut out);
        self.depth -= 1;
        result.map_err(|e| format!("in {name:?}: {e}"))?;
        Ok(out)
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value, vars: &mut Vars) -> Result<Value, String> {
        let mut value = None;
        for command in &pipe.commands {
            value = Some(
                self.command(command, dot, vars, value)
                    .map_err(|e| format!("line {}: {e}", pipe.line))?,
            );
        }
        let value = value.expect("a pipeline has a command");
        match (pipe.decl.as_slice(), pipe.declare) {
            ([], _) => {}
            ([name], true) => vars.push((name.clone(), value.clone())),
            ([name], false) => {
                let slot = vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("line {}: undefined variable ${name}", pipe.line))?;
                slot.1 = value.clone();
            }
            _ => return Err(format!("line {}: two variables outside range", pipe.line)),
        }
        Ok(value)
    }

    fn term(&mut self, term: &Term, dot: &Value, vars: &mut Vars) -> Result<Value, String> {
        match term {
            Term::Field(fields) => walk(dot.clone(), fields),
            Term::Var(name, fields) => walk(lookup_var(vars, name)?, fields),
            Term::Literal(value) => Ok(value.clone()),
            Term::Function(name) => self.call(name, &[], dot, vars, None),
            Term::Sub(pipe, fields) => {
                let value = self.pipe(pipe, dot, vars)?;
                walk(value, fields)
            }
        }
    }

    fn command(
        &mut self,
        command: &[Term],
        dot: &Value,
        vars: &mut Vars,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        let (first, args) = command.split_first().expect("a command has a term");
        if let Term::Function(name) = first {
            return self.call(name, args, dot, vars, piped);
        }
        let value = self.term(first, dot, vars)?;
        if let Value::Method(method) = value {
            let mut values = Vec::new();
            for arg in args {
                values.push(self.term(arg, dot, vars)?);
            }
            values.extend(piped);
            return self.method(method, &values);
        }
        if !args.is_empty() || piped.is_some() {
            return Err(format!("can't give argument to non-function {first:?}"));
        }
        Ok(value)
    }

    fn method(&mut self, method: &str, args: &[Value]) -> Result<Value, String> {
        match (method, args) {
            ("Files.Get", [Value::Str(path)]) => self
                .chart
                .files
                .get(path)
                .map(|text| Value::Str(text.clone()))
                .ok_or_else(|| format!(".Files.Get: no file {path:?} in the chart")),
            _ => Err(format!("{method}: arguments {args:?} not supported")),
        }
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Term],
        dot: &Value,
        vars: &mut Vars,
        piped: Option<Value>,
    ) -> Result<Value, String> {
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(piped.is_some());
            if total == 0 {
                return Err(format!("{name}: needs arguments"));
            }
            let mut last = Value::Nil;
            for i in 0..total {
                last = match args.get(i) {
                    Some(arg) => self.term(arg, dot, vars)?,
                    None => piped.clone().expect("the piped value is the last argument"),
                };
                if (name == "and") != last.truth() {
                    return Ok(last);
                }
            }
            return Ok(last);
        }
        let mut values = Vec::new();
        for arg in args {
            values.push(self.term(arg, dot, vars)?);
        }
        values.extend(piped);
        self.function(name, values)
    }

    fn function(&mut self, name: &str, args: Vec<Value>) -> Result<Value, String> {
        let arity = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{name}: wants {n} arguments, got {}", args.len()))
            }
        };
        let empty = |v: &Value| !v.truth();
        Ok(match name {
            "not" => {
                arity(1)?;
                Value::Bool(!args[0].truth())
            }
            "eq" | "ne" => {
                if args.len() < 2 || (name == "ne" && args.len() != 2) {
                    return Err(format!("{name}: wrong number of arguments"));
                }
                let basic = |v: &Value| {
                    matches!(
                        v,
                        Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_)
                    )
                };
                let mut equal = false;
                for other in &args[1..] {
                    if !basic(&args[0]) || !basic(other) || args[0].kind() != other.kind() {
                        return Err(format!(
                            "{name}: incompatible types for comparison: {} and {}",
                            args[0].kind(),
                            other.kind()
                        ));
                    }
                    equal |= args[0] == *other;
                }
                Value::Bool(if name == "eq" { equal } else { !equal })
            }
            "gt" => {
                arity(2)?;
                match (&args[0], &args[1]) {
                    (Value::Int(a), Value::Int(b)) => Value::Bool(a > b),
                    (Value::Float(a), Value::Float(b)) => Value::Bool(a > b),
                    (Value::Str(a), Value::Str(b)) => Value::Bool(a > b),
                    (a, b) => {
                        return Err(format!(
                            "gt: incompatible types for comparison: {} and {}",
                            a.kind(),
                            b.kind()
                        ))
                    }
                }
            }
            "default" => match args.as_slice() {
                [d] => d.clone(),
                [d, given] => {
                    if empty(given) {
                        d.clone()
                    } else {
                        given.clone()
                    }
                }
                _ => return Err("default: wants 1 or 2 arguments".into()),
            },
            "empty" => {
                arity(1)?;
                Value::Bool(empty(&args[0]))
            }
            "quote" => Value::Str(
                args.iter()
                    .filter(|v| **v != Value::Nil)
                    .map(|v| go_quote(&print_value(v)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "printf" => {
                let (format, rest) = args.split_first().ok_or("printf: no format")?;
                Value::Str(printf(format.str("printf")?, rest)?)
            }
            "print" => {
                let mut out = String::new();
                for (i, arg) in args.iter().enumerate() {
                    let is_str = |v: &Value| matches!(v, Value::Str(_));
                    if i > 0 && !is_str(arg) && !is_str(&args[i - 1]) {
                        out.push(' ');
                    }
                    out.push_str(&print_value(arg));
                }
                Value::Str(out)
            }
            "int" | "int64" => {
                arity(1)?;
                Value::Int(match &args[0] {
                    Value::Nil => 0,
                    Value::Bool(b) => i64::from(*b),
                    Value::Int(i) => *i,
                    Value::Float(f) => f.trunc() as i64,
                    Value::Str(s) => s
                        .trim()
                        .parse()
                        .map_err(|_| format!("{name}: {s:?} is not an integer"))?,
                    other => return Err(format!("{name}: cannot convert a {}", other.kind())),
                })
            }
            "toYaml" => {
                arity(1)?;
                Value::Str(to_yaml(&args[0])?)
            }
            "indent" | "nindent" => {
                arity(2)?;
                let pad =
                    " ".repeat(usize::try_from(args[0].int(name)?).map_err(|e| e.to_string())?);
                let text = format!(
                    "{pad}{}",
                    args[1].str(name)?.replace('\n', &format!("\n{pad}"))
                );
                Value::Str(if name == "nindent" {
                    format!("\n{text}")
                } else {
                    text
                })
            }
            "sha256sum" => {
                arity(1)?;
                let digest = Sha256::digest(args[0].str(name)?.as_bytes());
                Value::Str(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
            "trunc" => {
                arity(2)?;
                let n = args[0].int(name)?;
                let s = args[1].str(name)?;
                let len = s.len() as i64;
                Value::Str(if n < 0 && len + n > 0 {
                    s[(len + n) as usize..].to_string()
                } else if n >= 0 && len > n {
                    s[..n as usize].to_string()
                } else {
                    s.to_string()
                })
            }
            "trimSuffix" | "trimPrefix" | "hasPrefix" | "contains" => {
                arity(2)?;
                let (affix, s) = (args[0].str(name)?, args[1].str(name)?);
                match name {
                    "trimSuffix" => Value::Str(s.strip_suffix(affix).unwrap_or(s).to_string()),
                    "trimPrefix" => Value::Str(s.strip_prefix(affix).unwrap_or(s).to_string()),
                    "hasPrefix" => Value::Bool(s.starts_with(affix)),
                    _ => Value::Bool(s.contains(affix)),
                }
            }
            "replace" => {
                arity(3)?;
                Value::Str(
                    args[2]
                        .str(name)?
                        .replace(args[0].str(name)?, args[1].str(name)?),
                )
            }
            "b64enc" => {
                arity(1)?;
                Value::Str(BASE64.encode(args[0].str(name)?))
            }
            "b64dec" => {
                arity(1)?;
                let bytes = BASE64
                    .decode(args[0].str(name)?)
                    .map_err(|e| format!("b64dec: {e}"))?;
                Value::Str(String::from_utf8(bytes).map_err(|e| format!("b64dec: {e}"))?)
            }
            "required" => {
                arity(2)?;
                let message = args[0].str(name)?;
                match &args[1] {
                    Value::Nil => return Err(message.to_string()),
                    Value::Str(s) if s.is_empty() => return Err(message.to_string()),
                    value => value.clone(),
                }
            }
            "fail" => {
                arity(1)?;
                return Err(args[0].str(name)?.to_string());
            }
            "lookup" => {
                arity(4)?;
                for arg in &args {
                    arg.str(name)?;
                }
                Value::Map(BTreeMap::new())
            }
            "randAlphaNum" => {
                arity(1)?;
                let n = usize::try_from(args[0].int(name)?).map_err(|e| e.to_string())?;
                const ALPHABET: &[u8] =
                    b"TestValue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSUWXYZ";
                Value::Str(
                    (0..n)
                        .map(|i| ALPHABET[i % ALPHABET.len()] as char)
                        .collect(),
                )
            }
            "include" => {
                arity(2)?;
                let template = args[0].str(name)?.to_string();
                Value::Str(self.include(&template, args[1].clone())?)
            }
            "index" => {
                let (collection, keys) = args.split_first().ok_or("index: no collection")?;
                let mut value = collection.clone();
                for key in keys {
                    value = match (value, key) {
                        (Value::Map(mut map), Value::Str(k)) => map.remove(k).unwrap_or(Value::Nil),
                        (Value::List(list), Value::Int(i)) => list
                            .get(usize::try_from(*i).map_err(|e| e.to_string())?)
                            .cloned()
                            .ok_or_else(|| format!("index: {i} out of range"))?,
                        (value, key) => {
                            return Err(format!(
                                "index: cannot index a {} with a {}",
                                value.kind(),
                                key.kind()
                            ))
                        }
                    };
                }
                value
            }
            "list" => Value::List(args),
            "dict" => {
                if args.len() % 2 != 0 {
                    return Err("dict: a key without a value".into());
                }
                let mut map = BTreeMap::new();
                for pair in args.chunks(2) {
                    map.insert(pair[0].str(name)?.to_string(), pair[1].clone());
                }
                Value::Map(map)
            }
            "hasKey" => {
                arity(2)?;
                Value::Bool(args[0].map(name)?.contains_key(args[1].str(name)?))
            }
            "deepCopy" => {
                arity(1)?;
                args[0].clone()
            }
            "mergeOverwrite" => {
                let (first, sources) = args.split_first().ok_or("mergeOverwrite: no arguments")?;
                let mut merged = first.map(name)?.clone();
                for source in sources {
                    merge_overwrite(&mut merged, source.map(name)?);
                }
                Value::Map(merged)
            }
            other => return Err(format!("function {other:?} is not implemented")),
        })
    }
}

/// mergo's merge with override, as Sprig's `mergeOverwrite`: maps merge deeply, an empty source
/// value never replaces anything.
fn merge_overwrite(dst: &mut BTreeMap<String, Value>, src: &BTreeMap<String, Value>) {
    for (key, value) in src {
        match (dst.get_mut(key), value) {
            (Some(Value::Map(inner)), Value::Map(source)) => merge_overwrite(inner, source),
            (_, value) if !value.truth() => {}
            (_, value) => {
                dst.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Go's `fmt.Sprintf` for the verbs the chart uses: `%s` and `%q` of strings, `%d` of integers,
/// `%v` of anything, `%%`. Any other verb, a wrong type or a wrong count is an error (Go would
/// write `%!d(float64=9000)` into the manifest).
fn printf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("printf: format ends in %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = next
            .next()
            .ok_or_else(|| format!("printf: %{verb} has no argument in {format:?}"))?;
        match (verb, arg) {
            ('s', Value::Str(s)) => out.push_str(s),
            ('q', Value::Str(s)) => out.push_str(&go_quote(s)),
            ('d', Value::Int(i)) => out.push_str(&i.to_string()),
            ('v', value) => out.push_str(&print_value(value)),
            (verb, value) => {
                return Err(format!(
                    "printf: %{verb} of a {} in {format:?}",
                    value.kind()
                ))
            }
        }
    }
    if next.next().is_some() {
        return Err(format!("printf: more arguments than verbs in {format:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `source` as the only template of a scratch chart, with `values`.
    fn render(source: &str, values: &str) -> Result<String, String> {
        let (nodes, defines) = parse(source)?;
        let values: serde_norway::Value = serde_norway::from_str(values).unwrap();
        let chart = Chart {
            name: "t".into(),
            chart: Value::Map(BTreeMap::new()),
            values: Value::from_yaml(&values)?,
            files_by_template: BTreeMap::from([("t/templates/t.yaml".to_string(), nodes)]),
            defines,
            files: BTreeMap::from([("files/a.txt".to_string(), "{{ $labels.x }}\n".to_string())]),
        };
        let rendered = chart.render("r", "ns", &Value::Map(BTreeMap::new()))?;
        Ok(rendered.manifests["t/templates/t.yaml"].clone())
    }

    #[test]
    fn trim_markers_pipelines_and_variables() {
        let out = render(
            "a:\n  {{- $x := .Values.n | int }}\n  b: {{ printf \"%d-%s\" $x (.Values.s | trimSuffix \"-\") | quote }}\n{{- /* gone */}}\n",
            "n: 3\ns: x-",
        )
        .unwrap();
        assert_eq!(out, "a:\n  b: \"3-x\"\n");
    }

    #[test]
    fn range_over_a_map_is_in_key_order_with_else() {
        let source = "{{- range $k, $v := .Values.m }}{{ $k }}={{ $v }};{{ else }}none{{ end }}";
        assert_eq!(render(source, "m: {b: 2, a: x}").unwrap(), "a=x;b=2;");
        assert_eq!(render(source, "m: {}").unwrap(), "none");
    }

    #[test]
    fn if_else_if_with_and_define() {
        let source = "{{- define \"n\" }}[{{ . }}]{{ end -}}\n{{ if eq .Values.t \"a\" }}A{{ else if .Values.u }}{{ include \"n\" .Values.u }}{{ else }}C{{ end }}{{ with .Values.w }}{{ .k }}{{ end }}";
        assert_eq!(render(source, "t: a\nu: 1\nw: {k: v}").unwrap(), "Av");
        assert_eq!(render(source, "t: b\nu: 1\nw: null").unwrap(), "[1]");
        assert_eq!(render(source, "t: b\nu: 0\nw: {}").unwrap(), "C");
    }

    #[test]
    fn and_stops_at_the_first_false_argument() {
        let source = "{{ if and .Values.a .Values.a.b }}yes{{ else }}no{{ end }}";
        assert_eq!(render(source, "a: null").unwrap(), "no");
        assert_eq!(render(source, "a: {b: 1}").unwrap(), "yes");
    }

    #[test]
    fn files_are_data_and_not_templates() {
        assert_eq!(
            render("{{ .Files.Get \"files/a.txt\" }}", "{}").unwrap(),
            "{{ $labels.x }}\n"
        );
        let err = render("{{ .Files.Get \"files/b.txt\" }}", "{}").unwrap_err();
        assert!(err.contains("no file"), "{err}");
    }

    #[test]
    fn numbers_print_the_way_go_prints_a_float64() {
        assert_eq!(
            render(
                "{{ .Values.a }} {{ .Values.b }} {{ .Values.c }}",
                "a: 9000\nb: 1000000\nc: 0.5"
            )
            .unwrap(),
            "9000 1e+06 0.5"
        );
        let err = render("{{ printf \"%d\" .Values.a }}", "a: 9000").unwrap_err();
        assert!(err.contains("%d of a float64"), "{err}");
    }

    #[test]
    fn to_yaml_writes_what_yaml_reads_back() {
        let values = "m:\n  s: \"1\"\n  t: 'yes'\n  l: [a, {b: c, d: [1, 2]}]\n  e: {}\n  q: 'a: b'\n  n: 3\n";
        let out = render("{{ toYaml .Values.m }}", values).unwrap();
        let parsed: serde_norway::Value = serde_norway::from_str(&out).unwrap();
        let expected: serde_norway::Value = serde_norway::from_str(values).unwrap();
        assert_eq!(parsed, expected["m"], "{out}");
    }

    #[test]
    fn gt_compares_like_go_and_refuses_mixed_kinds() {
        assert_eq!(
            render(
                "{{ gt (int .Values.n) 1 }} {{ gt 1 1 }} {{ gt .Values.n 2.5 }}",
                "n: 3"
            )
            .unwrap(),
            "true false true"
        );
        assert!(render("{{ gt .Values.n 1 }}", "n: 3")
            .unwrap_err()
            .contains("incompatible"));
    }

    #[test]
    fn unknown_functions_and_constructs_fail() {
        for source in [
            "{{ tpl .Values.a . }}",
            "{{ block \"x\" . }}{{ end }}",
            "{{ range .Values.l }}{{ break }}{{ end }}",
            "{{ .Values.a | upper }}",
            "{{ 'c' }}",
            "{{ if .Values.a }}",
            "{{ /* a comment after a space */ }}",
            "{{/* text after a comment */ x }}",
            "{{ end }}",
        ] {
            assert!(render(source, "a: x\nl: [1]").is_err(), "{source} rendered");
        }
    }

    #[test]
    fn runtime_mistakes_fail() {
        for (source, expected) in [
            (
                "{{ .Values.a.b.c }}",
                "nil pointer evaluating interface {}.b",
            ),
            ("{{ .Values.s.x }}", "can't evaluate field x"),
            ("{{ .Values.n | indent 2 }}", "expected string; got float64"),
            ("{{ eq .Values.n 1 }}", "incompatible types"),
            ("{{ required \"need a\" .Values.a }}", "need a"),
            ("{{ fail \"stop\" }}", "stop"),
            ("{{ $y }}", "undefined variable"),
            ("{{ .Values.s 1 }}", "non-function"),
        ] {
            let err = render(source, "s: x\nn: 1").unwrap_err();
            assert!(err.contains(expected), "{source}: {err}");
        }
    }

    #[test]
    fn quote_and_lookup_and_merge() {
        assert_eq!(
            render("{{ quote \"a\\\"b\" 1 }}", "{}").unwrap(),
            "\"a\\\"b\" \"1\""
        );
        assert_eq!(
            render(
                "{{ if lookup \"v1\" \"Secret\" \"ns\" \"x\" }}found{{ end }}",
                "{}"
            )
            .unwrap(),
            ""
        );
        assert_eq!(
            render("{{ toYaml (mergeOverwrite (deepCopy .Values.p) (dict \"h\" (dict \"s\" \"H\"))) }}", "p: {h: {p: /x}, t: 1}").unwrap(),
            "h:\n  p: /x\n  s: H\nt: 1"
        );
    }
}
