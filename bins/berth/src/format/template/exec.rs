//! Executes a parsed template against a [`Value`], with Go's semantics and error texts.

use std::collections::HashMap;

use super::TemplateError;
use super::funcs::{Func, derived_header};
use super::parse::{Arg, ArgKind, Cmd, Node, Pipe};
use super::value::{MapKind, Value};

pub struct Exec<'a> {
    pub src: &'a str,
    pub funcs: &'a HashMap<String, Func>,
    pub overrides: Option<&'a HashMap<String, Func>>,
    /// Table headers: a formatter context answers every field, naming unknown ones itself.
    pub header_mode: bool,
    /// Go's `missingkey=error` (docker's inspect): a missing map key fails instead of giving
    /// `<no value>`.
    pub missing_key_error: bool,
    pub vars: Vec<(String, Value)>,
    pub out: String,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

impl Exec<'_> {
    pub fn run(&mut self, nodes: &[Node], data: &Value) -> Result<(), TemplateError> {
        self.vars.push(("$".to_string(), data.clone()));
        self.walk(nodes, data)?;
        Ok(())
    }

    fn error(&self, arg: &Arg, msg: &str) -> TemplateError {
        let before = &self.src[..arg.pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => arg.pos - (nl + 1),
            None => arg.pos,
        };
        TemplateError::Exec(format!(
            "template: :{line}:{col}: executing \"\" at <{}>: {msg}",
            arg.text
        ))
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let val = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&val.print());
                    }
                }
                Node::If { pipe, then, els } | Node::With { pipe, then, els } => {
                    let mark = self.vars.len();
                    let val = self.pipe(pipe, dot)?;
                    let flow = if val.truth() {
                        let next_dot = if matches!(node, Node::With { .. }) {
                            &val
                        } else {
                            dot
                        };
                        self.walk(then, next_dot)?
                    } else {
                        self.walk(els, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range { pipe, body, els } => {
                    let mark = self.vars.len();
                    let flow = self.range(pipe, body, els, dot)?;
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        els: &[Node],
        dot: &Value,
    ) -> Result<Flow, TemplateError> {
        // Evaluate without declaring: the declared variables take key and element.
        let bare = Pipe {
            decl: Vec::new(),
            assign: false,
            cmds: pipe.cmds.clone(),
        };
        let val = self.pipe(&bare, dot)?;
        let items: Vec<(Value, Value)> = match &val {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(m) if m.kind == MapKind::Json => m
                .sorted()
                .into_iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Nil => Vec::new(),
            other => {
                let arg = &pipe.cmds[0].args[0];
                return Err(self.error(arg, &format!("range can't iterate over {}", other.print())));
            }
        };
        if items.is_empty() {
            return self.walk(els, dot);
        }
        for (key, elem) in items {
            let mark = self.vars.len();
            match pipe.decl.as_slice() {
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
                _ => {}
            }
            let flow = self.walk(body, &elem)?;
            self.vars.truncate(mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut val: Option<Value> = None;
        for cmd in &pipe.cmds {
            val = Some(self.command(cmd, dot, val)?);
        }
        let val = val.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some((_, slot)) => *slot = val.clone(),
                    None => {
                        return Err(TemplateError::Exec(format!(
                            "template: :1: undefined variable: {name}"
                        )));
                    }
                }
            } else {
                self.vars.push((name.clone(), val.clone()));
            }
        }
        Ok(val)
    }

    fn command(
        &mut self,
        cmd: &Cmd,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        let first = &cmd.args[0];
        if let ArgKind::Func(name) = &first.kind {
            let mut args = Vec::with_capacity(cmd.args.len());
            for a in &cmd.args[1..] {
                args.push(self.arg(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return self.call(first, name, &args);
        }
        if let (ArgKind::Field(_), 2, None) = (&first.kind, cmd.args.len(), &piped) {
            let method = self.arg(first, dot)?;
            if let Value::Map(table) = &method
                && method.is_method()
            {
                let key = self.arg(&cmd.args[1], dot)?;
                let key = key.as_str().unwrap_or_default().to_string();
                return Ok(table
                    .get(&key)
                    .cloned()
                    .unwrap_or(Value::Str(String::new())));
            }
        }
        if cmd.args.len() > 1 || piped.is_some() {
            return Err(self.error(
                first,
                &format!("can't give argument to non-function {}", first.text),
            ));
        }
        if let ArgKind::Nil = first.kind {
            return Err(self.error(first, "nil is not a command"));
        }
        self.arg(first, dot)
    }

    fn call(&mut self, arg: &Arg, name: &str, args: &[Value]) -> Result<Value, TemplateError> {
        let func = self
            .overrides
            .and_then(|o| o.get(name))
            .or_else(|| self.funcs.get(name))
            .ok_or_else(|| self.error(arg, &format!("function {name:?} not defined")))?;
        func(args).map_err(|e| self.error(arg, &format!("error calling {name}: {e}")))
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        match &arg.kind {
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Field(chain) => self.fields(arg, dot.clone(), chain),
            ArgKind::Var(name, chain) => {
                let val = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.error(arg, &format!("undefined variable: {name}")))?;
                self.fields(arg, val, chain)
            }
            ArgKind::Func(name) => self.call(arg, name, &[]),
            ArgKind::Str(s) => Ok(Value::Str(s.clone())),
            ArgKind::Int(i) => Ok(Value::Int(*i)),
            ArgKind::Float(f) => Ok(Value::Float(*f)),
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Nil => Ok(Value::Nil),
            ArgKind::Sub(pipe, chain) => {
                let val = self.pipe(pipe, dot)?;
                self.fields(arg, val, chain)
            }
        }
    }

    fn fields(&self, arg: &Arg, mut val: Value, chain: &[String]) -> Result<Value, TemplateError> {
        for name in chain {
            val = match &val {
                // Go field names (`.APIVersion`, `.Time`) also find their JSON keys.
                Value::Map(m) => match m.get(name).or_else(|| m.get_ignore_case(name)) {
                    Some(v) => v.clone(),
                    None if self.header_mode && m.kind != MapKind::Json => {
                        Value::Str(derived_header(name))
                    }
                    None if m.kind == MapKind::Json && !self.missing_key_error => Value::Nil,
                    None => {
                        let msg = match m.kind {
                            MapKind::Json => format!("map has no entry for key {name:?}"),
                            _ => format!("can't evaluate field {name} in type {}", m.type_name()),
                        };
                        return Err(self.error(arg, &msg));
                    }
                },
                Value::Nil => {
                    return Err(self.error(
                        arg,
                        &format!("nil pointer evaluating interface {{}}.{name}"),
                    ));
                }
                other => {
                    let msg = format!("can't evaluate field {name} in type {}", other.type_name());
                    return Err(self.error(arg, &msg));
                }
            };
        }
        Ok(val)
    }
}
