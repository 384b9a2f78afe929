//! A Go `text/template` engine for `--format`: the language docker users write (fields,
//! pipelines, variables, `if`/`with`/`range`, trim markers) and docker's function set.

mod exec;
mod funcs;
mod parse;
pub mod value;

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

pub use funcs::Func;
pub use value::{Map, MapKind, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateError {
    /// The template does not parse (docker: `template parsing error: …`).
    Parse(String),
    /// Running it failed (a missing field, a bad function argument…).
    Exec(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Parse(m) | TemplateError::Exec(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TemplateError {}

pub struct Template {
    name: String,
    missing_key_error: bool,
    src: String,
    nodes: Vec<parse::Node>,
    funcs: HashMap<String, Func>,
}

impl Template {
    /// Parses with Go's builtins and docker's functions.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        Template::parse_with(src, Vec::new())
    }

    /// Parses with extra functions (`getDetailsOrder`…).
    pub fn parse_with(src: &str, extra: Vec<(&str, Func)>) -> Result<Template, TemplateError> {
        let mut funcs = funcs::builtins();
        for (name, f) in extra {
            funcs.insert(name.to_string(), f);
        }
        let nodes = parse::parse(src, &|name| funcs.contains_key(name))?;
        Ok(Template {
            name: String::new(),
            missing_key_error: false,
            src: src.to_string(),
            nodes,
            funcs,
        })
    }

    /// A named template (`version`): Go puts the name in its error messages.
    pub fn parse_named(
        name: &str,
        src: &str,
        extra: Vec<(&str, Func)>,
    ) -> Result<Template, TemplateError> {
        let mut t = Template::parse_with(src, extra).map_err(|e| rename(e, name))?;
        t.name = name.to_string();
        Ok(t)
    }

    /// Go's `Option("missingkey=error")`, which docker's inspect uses.
    pub fn missing_key_error(mut self) -> Template {
        self.missing_key_error = true;
        self
    }

    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        self.run(data, false)
    }

    /// Renders a table header: functions such as `upper` or `json` leave the names as they
    /// are, and fields the context has no header for are named from the field.
    pub fn execute_header(&self, header: &Value) -> Result<String, TemplateError> {
        self.run(header, true)
    }

    fn run(&self, data: &Value, header: bool) -> Result<String, TemplateError> {
        let overrides = header.then(funcs::header_overrides);
        let mut exec = exec::Exec {
            src: &self.src,
            funcs: &self.funcs,
            overrides: overrides.as_ref(),
            header_mode: header,
            missing_key_error: self.missing_key_error,
            vars: Vec::new(),
            out: String::new(),
        };
        match exec.run(&self.nodes, data) {
            Ok(()) => Ok(exec.out),
            Err(e) => Err(rename(e, &self.name)),
        }
    }
}

fn rename(err: TemplateError, name: &str) -> TemplateError {
    if name.is_empty() {
        return err;
    }
    let fix = |m: String| {
        m.replacen("template: :", &format!("template: {name}:"), 1)
            .replacen("executing \"\"", &format!("executing {name:?}"), 1)
    };
    match err {
        TemplateError::Parse(m) => TemplateError::Parse(fix(m)),
        TemplateError::Exec(m) => TemplateError::Exec(fix(m)),
    }
}

/// Wraps a closure as a template function.
pub fn func(f: impl Fn(&[Value]) -> Result<Value, String> + 'static) -> Func {
    Rc::new(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tmpl: &str, data: &Value) -> String {
        Template::parse(tmpl)
            .unwrap()
            .missing_key_error()
            .execute(data)
            .unwrap()
    }

    fn image() -> Value {
        Value::from_json(
            r#"{"Id":"sha256:76b8","RepoTags":["busybox:latest","my/bb:v1"],"Size":1982277,
                "Config":{"Cmd":["sh","-c","echo"],"Env":null,"Labels":{"b":"2","a":"1"}},
                "Os":"linux","RootFS":{"Type":"layers","Layers":["sha256:ec31"]},"Empty":""}"#,
        )
        .unwrap()
    }

    #[test]
    fn fields_print_like_go() {
        let v = image();
        assert_eq!(run("{{.Config.Cmd}}", &v), "[sh -c echo]");
        assert_eq!(run("{{.Id}}|{{.Size}}", &v), "sha256:76b8|1982277");
        assert_eq!(run("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        assert_eq!(run("{{.Config.Env}}", &v), "<no value>");
        assert_eq!(run("{{json .Config.Cmd}}", &v), r#"["sh","-c","echo"]"#);
        assert_eq!(
            run("{{json .RootFS}}", &v),
            r#"{"Type":"layers","Layers":["sha256:ec31"]}"#
        );
        assert_eq!(run(r#"{{index .Config.Labels "a"}}"#, &v), "1");
        assert_eq!(run(r#"{{index .Config.Labels "zz"}}"#, &v), "<no value>");
    }

    #[test]
    fn control_structures() {
        let v = image();
        assert_eq!(
            run("{{range .RepoTags}}<{{.}}>{{end}}", &v),
            "<busybox:latest><my/bb:v1>"
        );
        assert_eq!(
            run("{{range $i, $t := .RepoTags}}{{$i}}={{$t}} {{end}}", &v),
            "0=busybox:latest 1=my/bb:v1 "
        );
        assert_eq!(run("{{range .Config.Env}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(run(r#"{{if eq .Os "linux"}}L{{else}}N{{end}}"#, &v), "L");
        assert_eq!(
            run(r#"{{if .Empty}}a{{else if .Os}}b{{else}}c{{end}}"#, &v),
            "b"
        );
        assert_eq!(run("{{with .Config}}{{.Cmd}}{{end}}", &v), "[sh -c echo]");
        assert_eq!(
            run(
                "{{range .RepoTags}}{{if eq . \"my/bb:v1\"}}{{break}}{{end}}{{.}} {{end}}",
                &v
            ),
            "busybox:latest "
        );
        assert_eq!(run("{{$x := .Os}}{{$x = upper $x}}{{$x}}", &v), "LINUX");
        assert_eq!(
            run("{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}", &v),
            "a1b2"
        );
    }

    #[test]
    fn functions_and_pipes() {
        let v = image();
        assert_eq!(
            run("{{println .Id}}{{upper .Os}}{{lower \"ABC\"}}", &v),
            "sha256:76b8\nLINUXabc"
        );
        assert_eq!(
            run(r#"{{join .RepoTags ","}}"#, &v),
            "busybox:latest,my/bb:v1"
        );
        assert_eq!(run(r#"{{.Os | printf "%s!"}}"#, &v), "linux!");
        assert_eq!(run("{{len .RepoTags}}", &v), "2");
        assert_eq!(run(r#"{{(index .RepoTags 1) | upper}}"#, &v), "MY/BB:V1");
        assert_eq!(run(r#"{{split "a,b" ","}}"#, &v), "[a b]");
        assert_eq!(
            run(r#"{{pad .Os 1 2}}|{{truncate .Os 2}}|{{title .Os}}"#, &v),
            " linux  |li|Linux"
        );
        assert_eq!(
            run(
                r#"{{if and .Os (not .Empty)}}y{{end}}{{or .Empty "dflt"}}"#,
                &v
            ),
            "ydflt"
        );
        assert_eq!(run("{{ .Os -}}\n  {{- .Os }}", &v), "linuxlinux");
        assert_eq!(run("a{{/* comment */}}b", &v), "ab");
        assert_eq!(run(r#"{{if ne .Config nil}}set{{end}}"#, &v), "set");
        assert_eq!(run(r#"{{json .}}"#, &Value::Str("<x>".into())), "\"<x>\"");
    }

    #[test]
    fn errors_like_go() {
        let v = image();
        assert_eq!(
            Template::parse("{{.Foo}}").unwrap().execute(&v).unwrap(),
            "<no value>"
        );
        let err = Template::parse("{{.Foo}}")
            .unwrap()
            .missing_key_error()
            .execute(&v)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo""#
        );
        let ctx = Value::Map(
            Map::new(MapKind::Context("*formatter.imageContext".into())).with("ID", "x"),
        );
        let err = Template::parse("{{.ID}}\t{{.Foo}}")
            .unwrap()
            .execute(&ctx)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"template: :1:10: executing "" at <.Foo>: can't evaluate field Foo in type *formatter.imageContext"#
        );
        assert_eq!(
            Template::parse("{{.ID").err().unwrap().to_string(),
            "template: :1: unclosed action"
        );
        assert_eq!(
            Template::parse("{{foo .ID}}").err().unwrap().to_string(),
            "template: :1: function \"foo\" not defined"
        );
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert_eq!(
            Template::parse("{{json.}}").err().unwrap().to_string(),
            "template: :1: unexpected <.> in operand"
        );
    }

    #[test]
    fn headers_keep_names() {
        let header = Value::Map(
            Map::new(MapKind::Context("*formatter.imageContext".into()))
                .with("ID", "IMAGE ID")
                .with("Repository", "REPOSITORY"),
        );
        let t = Template::parse("{{.ID}}\t{{upper .Repository}}\t{{json .Tag}}\t{{.CreatedSince}}")
            .unwrap();
        assert_eq!(
            t.execute_header(&header).unwrap(),
            "IMAGE ID\tREPOSITORY\tTAG\tCREATED SINCE"
        );
    }
}
