//! Lexer and parser for the Go `text/template` language (the parts docker users write:
//! actions, pipelines, variables, if/else/with/range/break/continue, trim markers, comments).

use super::TemplateError;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        pipe: Pipe,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub pos: usize,
    pub text: String,
    pub kind: ArgKind,
}

#[derive(Debug, Clone)]
pub enum ArgKind {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    Dot,
    Var(String),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Comma,
    Declare,
    Assign,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
    space_before: bool,
}

enum Item {
    Text(String),
    Action { pos: usize, tokens: Vec<Token> },
}

fn line_of(src: &str, pos: usize) -> usize {
    1 + src[..pos.min(src.len())].matches('\n').count()
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the source into text and lexed actions.
fn lex(src: &str) -> Result<Vec<Item>, TemplateError> {
    let bytes = src.as_bytes();
    let mut items = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    loop {
        let open = src[i..].find("{{").map(|o| o + i);
        let text_end = open.unwrap_or(src.len());
        let mut text = &src[i..text_end];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            return Ok(items);
        };
        let mut start = open + 2;
        if bytes.get(start) == Some(&b'-') && bytes.get(start + 1).is_some_and(|c| is_space(*c)) {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            start += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let (tokens, end, trim) = lex_action(src, start)?;
        trim_next = trim;
        if let Some(tokens) = tokens {
            items.push(Item::Action { pos: start, tokens });
        }
        i = end;
    }
}

/// Lexes one action starting after `{{`; returns its tokens (None for a comment), the offset
/// after `}}`, and whether it ends with a right trim marker.
fn lex_action(src: &str, start: usize) -> Result<(Option<Vec<Token>>, usize, bool), TemplateError> {
    let bytes = src.as_bytes();
    let unclosed = || {
        TemplateError::Parse(format!(
            "template: :{}: unclosed action",
            line_of(src, start)
        ))
    };
    let mut p = start;
    while p < bytes.len() && is_space(bytes[p]) {
        p += 1;
    }
    if src[p..].starts_with("/*") {
        let close = src[p + 2..].find("*/").ok_or_else(unclosed)? + p + 2;
        let mut q = close + 2;
        let mut trim = false;
        if src[q..].starts_with(" -}}") {
            trim = true;
            q += 4;
        } else if src[q..].starts_with("}}") {
            q += 2;
        } else {
            return Err(TemplateError::Parse(format!(
                "template: :{}: comment ends before closing delimiter",
                line_of(src, start)
            )));
        }
        return Ok((None, q, trim));
    }
    let mut tokens = Vec::new();
    let mut p = start;
    let mut space = false;
    loop {
        if p >= bytes.len() {
            return Err(unclosed());
        }
        let c = bytes[p];
        if is_space(c) {
            if src[p + 1..].starts_with("-}}") {
                return Ok((Some(tokens), p + 4, true));
            }
            space = true;
            p += 1;
            continue;
        }
        if src[p..].starts_with("}}") {
            return Ok((Some(tokens), p + 2, false));
        }
        let begin = p;
        let tok = match c {
            b'(' => {
                p += 1;
                Tok::LParen
            }
            b')' => {
                p += 1;
                Tok::RParen
            }
            b'|' => {
                p += 1;
                Tok::Pipe
            }
            b',' => {
                p += 1;
                Tok::Comma
            }
            b':' if bytes.get(p + 1) == Some(&b'=') => {
                p += 2;
                Tok::Declare
            }
            b'=' => {
                p += 1;
                Tok::Assign
            }
            b'"' => {
                let (s, end) = lex_quoted(src, p).ok_or_else(|| {
                    TemplateError::Parse(format!(
                        "template: :{}: unterminated quoted string",
                        line_of(src, p)
                    ))
                })?;
                p = end;
                Tok::Str(s)
            }
            b'`' => {
                let close = src[p + 1..].find('`').ok_or_else(|| {
                    TemplateError::Parse(format!(
                        "template: :{}: unterminated raw quoted string",
                        line_of(src, p)
                    ))
                })? + p
                    + 1;
                let s = src[p + 1..close].to_string();
                p = close + 1;
                Tok::Str(s)
            }
            b'\'' => {
                let rest = &src[p + 1..];
                let mut chars = rest.chars();
                let ch = match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(other) => other,
                        None => return Err(unclosed()),
                    },
                    Some(ch) => ch,
                    None => return Err(unclosed()),
                };
                let close = src[p + 1..].find('\'').ok_or_else(unclosed)?;
                p = p + 1 + close.max(1) + 1;
                Tok::Int(ch as i64)
            }
            b'.' if bytes
                .get(p + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                p += 1;
                let end = ident_end(bytes, p);
                let name = src[p..end].to_string();
                p = end;
                Tok::Field(name)
            }
            b'.' if !bytes.get(p + 1).is_some_and(|c| c.is_ascii_digit()) => {
                p += 1;
                Tok::Dot
            }
            b'$' => {
                let end = ident_end(bytes, p + 1);
                let name = src[p..end].to_string();
                p = end;
                Tok::Var(name)
            }
            c if c.is_ascii_digit()
                || c == b'.'
                || ((c == b'-' || c == b'+')
                    && bytes.get(p + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut end = p + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || matches!(bytes[end], b'.' | b'_' | b'+' | b'-'))
                {
                    if matches!(bytes[end], b'+' | b'-') && !matches!(bytes[end - 1], b'e' | b'E') {
                        break;
                    }
                    end += 1;
                }
                let text = src[p..end].replace('_', "");
                p = end;
                parse_number(&text).ok_or_else(|| {
                    TemplateError::Parse(format!(
                        "template: :{}: bad number syntax: \"{}\"",
                        line_of(src, begin),
                        &src[begin..end]
                    ))
                })?
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = ident_end(bytes, p);
                let name = src[p..end].to_string();
                p = end;
                Tok::Ident(name)
            }
            _ => {
                let ch = src[p..].chars().next().unwrap_or(' ');
                return Err(TemplateError::Parse(format!(
                    "template: :{}: unrecognized character in action: {ch:?}",
                    line_of(src, p)
                )));
            }
        };
        tokens.push(Token {
            tok,
            pos: begin,
            end: p,
            space_before: space,
        });
        space = false;
    }
}

fn ident_end(bytes: &[u8], mut p: usize) -> usize {
    while p < bytes.len() && (bytes[p].is_ascii_alphanumeric() || bytes[p] == b'_') {
        p += 1;
    }
    p
}

fn parse_number(text: &str) -> Option<Tok> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok().map(Tok::Int);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Tok::Int(i));
    }
    text.parse::<f64>().ok().map(Tok::Float)
}

fn lex_quoted(src: &str, start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + 1 + i + 1)),
            '\n' => return None,
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    'x' | 'u' | 'U' => {
                        let len = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut hex = String::new();
                        for _ in 0..len {
                            hex.push(chars.next()?.1);
                        }
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// Parses a template; `is_func` says which function names exist (Go checks at parse time).
pub fn parse(src: &str, is_func: &dyn Fn(&str) -> bool) -> Result<Vec<Node>, TemplateError> {
    let items = lex(src)?;
    let mut parser = Parser {
        src,
        items,
        next: 0,
        is_func,
    };
    let (nodes, end) = parser.list()?;
    if let Some((word, pos, _)) = end {
        return Err(parser.err(pos, &format!("unexpected {{{{{word}}}}}")));
    }
    Ok(nodes)
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    next: usize,
    is_func: &'a dyn Fn(&str) -> bool,
}

/// A list ends at `{{end}}` or `{{else …}}`: the keyword, its position and the tokens after it.
type ListEnd = Option<(String, usize, Vec<Token>)>;

impl Parser<'_> {
    fn err(&self, pos: usize, msg: &str) -> TemplateError {
        TemplateError::Parse(format!("template: :{}: {msg}", line_of(self.src, pos)))
    }

    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut nodes = Vec::new();
        while self.next < self.items.len() {
            let item = std::mem::replace(&mut self.items[self.next], Item::Text(String::new()));
            self.next += 1;
            match item {
                Item::Text(t) => nodes.push(Node::Text(t)),
                Item::Action { pos, tokens } => {
                    let keyword = match tokens.first().map(|t| &t.tok) {
                        Some(Tok::Ident(w)) => w.clone(),
                        _ => String::new(),
                    };
                    let rest = tokens.get(1..).unwrap_or_default().to_vec();
                    match keyword.as_str() {
                        "end" | "else" => return Ok((nodes, Some((keyword, pos, rest)))),
                        "if" | "with" => nodes.push(self.conditional(&keyword, pos, rest)?),
                        "range" => nodes.push(self.range(pos, rest)?),
                        "break" => nodes.push(Node::Break),
                        "continue" => nodes.push(Node::Continue),
                        "define" | "template" | "block" => {
                            return Err(
                                self.err(pos, &format!("{{{{{keyword}}}}} is not supported"))
                            );
                        }
                        _ => {
                            if tokens.is_empty() {
                                return Err(self.err(pos, "missing value for command"));
                            }
                            nodes.push(Node::Action(self.pipeline(pos, &tokens, false)?));
                        }
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    fn conditional(
        &mut self,
        keyword: &str,
        pos: usize,
        tokens: Vec<Token>,
    ) -> Result<Node, TemplateError> {
        if tokens.is_empty() {
            return Err(self.err(pos, &format!("missing value for {keyword}")));
        }
        let pipe = self.pipeline(pos, &tokens, false)?;
        let (then, end) = self.list()?;
        let els = match end {
            None => return Err(self.err(self.src.len(), "unexpected EOF")),
            Some((w, _, _)) if w == "end" => Vec::new(),
            Some((_, else_pos, rest)) => match rest.first().map(|t| &t.tok) {
                // `{{else if x}}` / `{{else with x}}` chain: they share the final {{end}}.
                Some(Tok::Ident(w)) if w == "if" || w == "with" => {
                    let w = w.clone();
                    vec![self.conditional(&w, else_pos, rest[1..].to_vec())?]
                }
                _ => {
                    let (els, end) = self.list()?;
                    match end {
                        Some((w, _, _)) if w == "end" => els,
                        Some((w, p, _)) => {
                            return Err(self.err(p, &format!("unexpected {{{{{w}}}}}")));
                        }
                        None => return Err(self.err(self.src.len(), "unexpected EOF")),
                    }
                }
            },
        };
        Ok(if keyword == "if" {
            Node::If { pipe, then, els }
        } else {
            Node::With { pipe, then, els }
        })
    }

    fn range(&mut self, pos: usize, tokens: Vec<Token>) -> Result<Node, TemplateError> {
        if tokens.is_empty() {
            return Err(self.err(pos, "missing value for range"));
        }
        let pipe = self.pipeline(pos, &tokens, true)?;
        let (body, end) = self.list()?;
        let els = match end {
            None => return Err(self.err(self.src.len(), "unexpected EOF")),
            Some((w, _, _)) if w == "end" => Vec::new(),
            Some((_, _, _)) => {
                let (els, end) = self.list()?;
                match end {
                    Some((w, _, _)) if w == "end" => els,
                    Some((w, p, _)) => return Err(self.err(p, &format!("unexpected {{{{{w}}}}}"))),
                    None => return Err(self.err(self.src.len(), "unexpected EOF")),
                }
            }
        };
        Ok(Node::Range { pipe, body, els })
    }

    fn pipeline(
        &self,
        pos: usize,
        tokens: &[Token],
        allow_two: bool,
    ) -> Result<Pipe, TemplateError> {
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = tokens;
        match tokens {
            [
                Token {
                    tok: Tok::Var(v), ..
                },
                Token {
                    tok: op @ (Tok::Declare | Tok::Assign),
                    ..
                },
                ..,
            ] => {
                decl.push(v.clone());
                assign = *op == Tok::Assign;
                rest = &tokens[2..];
            }
            [
                Token {
                    tok: Tok::Var(a), ..
                },
                Token {
                    tok: Tok::Comma, ..
                },
                Token {
                    tok: Tok::Var(b), ..
                },
                Token {
                    tok: Tok::Declare | Tok::Assign,
                    ..
                },
                ..,
            ] if allow_two => {
                decl.push(a.clone());
                decl.push(b.clone());
                rest = &tokens[4..];
            }
            _ => {}
        }
        let mut cmds = Vec::new();
        for part in split_top(rest, |t| t == &Tok::Pipe) {
            if part.is_empty() {
                return Err(self.err(pos, "missing value for command"));
            }
            cmds.push(self.command(part)?);
        }
        if cmds.is_empty() {
            return Err(self.err(pos, "missing value for command"));
        }
        Ok(Pipe { decl, assign, cmds })
    }

    fn command(&self, tokens: &[Token]) -> Result<Cmd, TemplateError> {
        let mut args = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            // Operands are separated by spaces: `json.` is not `json .`.
            if i > 0 && !t.space_before {
                let shown = match &t.tok {
                    Tok::Dot => "<.>".to_string(),
                    _ => format!("{:?}", &self.src[t.pos..t.end]),
                };
                return Err(self.err(t.pos, &format!("unexpected {shown} in operand")));
            }
            let (mut kind, mut end_idx) = match &t.tok {
                Tok::Dot => (ArgKind::Dot, i + 1),
                Tok::Field(f) => (ArgKind::Field(vec![f.clone()]), i + 1),
                Tok::Var(v) => (ArgKind::Var(v.clone(), Vec::new()), i + 1),
                Tok::Str(s) => (ArgKind::Str(s.clone()), i + 1),
                Tok::Int(n) => (ArgKind::Int(*n), i + 1),
                Tok::Float(f) => (ArgKind::Float(*f), i + 1),
                Tok::Ident(w) => match w.as_str() {
                    "true" | "false" => (ArgKind::Bool(w == "true"), i + 1),
                    "nil" => (ArgKind::Nil, i + 1),
                    _ if (self.is_func)(w) => (ArgKind::Func(w.clone()), i + 1),
                    _ => return Err(self.err(t.pos, &format!("function {w:?} not defined"))),
                },
                Tok::LParen => {
                    let close = matching_paren(tokens, i)
                        .ok_or_else(|| self.err(t.pos, "unclosed left paren"))?;
                    let inner = self.pipeline(t.pos, &tokens[i + 1..close], false)?;
                    (ArgKind::Sub(Box::new(inner), Vec::new()), close + 1)
                }
                other => {
                    return Err(
                        self.err(t.pos, &format!("unexpected {} in command", describe(other)))
                    );
                }
            };
            // Fields chained without a space: `.A.B`, `$x.A`, `(pipe).A`. Go places the chain
            // at its second element (errors say `:1:9` for `{{.Config.Foo}}`).
            let mut pos = t.pos;
            while let Some(next) = tokens.get(end_idx) {
                let Tok::Field(f) = &next.tok else { break };
                if next.space_before {
                    break;
                }
                match &mut kind {
                    ArgKind::Field(chain) | ArgKind::Var(_, chain) | ArgKind::Sub(_, chain) => {
                        chain.push(f.clone())
                    }
                    _ => return Err(self.err(next.pos, "unexpected . after term")),
                }
                if pos == t.pos {
                    pos = next.pos;
                }
                end_idx += 1;
            }
            let end = tokens[end_idx - 1].end;
            args.push(Arg {
                pos,
                text: self.src[t.pos..end].to_string(),
                kind,
            });
            i = end_idx;
        }
        Ok(Cmd { args })
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::RParen => "\")\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Pipe => "\"|\"".into(),
        other => format!("{other:?}"),
    }
}

fn matching_paren(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at separators that are not inside parentheses.
fn split_top(tokens: &[Token], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth -= 1,
            _ if depth == 0 && is_sep(&t.tok) => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < tokens.len() || !parts.is_empty() {
        parts.push(&tokens[start..]);
    }
    parts
}
