//! `berth inspect`: any object by name or ID, and the inspect output shared by the
//! `<noun> inspect` commands (docker's `inspect.Inspect`): the daemon's JSON indented with four
//! spaces in an array, `--format json` compact, or a template over the raw object.

use anyhow::Result;
use clap::Args as ClapArgs;

use crate::client::{Client, path_escape};
use crate::commands::{Ctx, out};
use crate::errors::{Args, CliError};
use crate::format::json::{compact, indent};
use crate::format::template::{Template, Value};

pub const INSPECT_FORMAT_HELP: &str = "Format output using a custom template:\n\
'json':             Print in JSON format\n\
'TEMPLATE':         Print output using the given Go template.\n\
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

const TYPES: [&str; 10] = [
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
];

#[derive(ClapArgs, Debug)]
pub struct InspectArgs {
    #[arg(short, long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(value_name = "NAME|ID")]
    pub names: Vec<String>,
}

enum Output {
    Indented(Vec<String>),
    Compact(Vec<String>),
    Template(Template, String),
}

/// Collects inspected objects and prints them like docker.
pub struct Inspector {
    output: Output,
    errors: Vec<String>,
}

impl Inspector {
    /// A template that does not parse is exit status 64, as in docker.
    pub fn new(format: Option<&str>) -> Result<Inspector, CliError> {
        let output = match format.unwrap_or("") {
            "" => Output::Indented(Vec::new()),
            "json" => Output::Compact(Vec::new()),
            f => {
                let tmpl = Template::parse(f)
                    .map_err(|e| CliError::new(64, format!("template parsing error: {e}")))?
                    .missing_key_error();
                Output::Template(tmpl, String::new())
            }
        };
        Ok(Inspector {
            output,
            errors: Vec::new(),
        })
    }

    pub fn add(&mut self, raw: String) {
        match &mut self.output {
            Output::Indented(v) | Output::Compact(v) => v.push(raw),
            Output::Template(tmpl, buf) => {
                let result = Value::from_json(&raw)
                    .map_err(|e| format!("unable to read inspect data: {e}"))
                    .and_then(|v| {
                        tmpl.execute(&v)
                            .map_err(|e| format!("template parsing error: {e}"))
                    });
                match result {
                    Ok(text) => {
                        buf.push_str(&text);
                        buf.push('\n');
                    }
                    Err(e) => self.errors.push(e),
                }
            }
        }
    }

    pub fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    /// Prints everything collected, then fails with the errors (exit 1).
    pub fn finish(self) -> Result<()> {
        let text = match self.output {
            Output::Indented(v) if v.is_empty() => "[]\n".to_string(),
            Output::Compact(v) if v.is_empty() => "[]\n".to_string(),
            Output::Indented(v) => format!("{}\n", indent(&format!("[{}]", v.join(",")), "    ")),
            Output::Compact(v) => format!("{}\n", compact(&format!("[{}]", v.join(",")))),
            Output::Template(_, buf) if buf.is_empty() => "\n".to_string(),
            Output::Template(_, buf) => buf,
        };
        out(&text)?;
        if !self.errors.is_empty() {
            return Err(CliError::msg(self.errors.join("\n")).into());
        }
        Ok(())
    }
}

/// The daemon's JSON for one object of a type, or its not-found message as `Err`.
pub async fn fetch(
    client: &Client,
    kind: &str,
    name: &str,
    size: bool,
) -> Result<Result<String, String>, CliError> {
    let name = path_escape(name);
    let path = match kind {
        "container" => format!(
            "/containers/{name}/json{}",
            if size { "?size=1" } else { "" }
        ),
        "image" => format!("/images/{name}/json"),
        "network" => format!("/networks/{name}"),
        "volume" => format!("/volumes/{name}"),
        "plugin" => format!("/plugins/{name}/json"),
        "node" => format!("/nodes/{name}"),
        "service" => format!("/services/{name}"),
        "task" => format!("/tasks/{name}"),
        "secret" => format!("/secrets/{name}"),
        _ => format!("/configs/{name}"),
    };
    client.get_text(&path).await
}

/// Inspects `names` of one type.
pub async fn inspect_typed(
    ctx: &Ctx,
    kind: &str,
    names: &[String],
    format: Option<&str>,
    size: bool,
) -> Result<()> {
    let mut inspector = Inspector::new(format)?;
    let client = ctx.client().await?;
    for name in names {
        match fetch(client, kind, name, size).await? {
            Ok(raw) => inspector.add(raw),
            Err(message) => inspector.error(format!("Error response from daemon: {message}")),
        }
    }
    inspector.finish()
}

pub async fn run(a: InspectArgs, ctx: &Ctx) -> Result<()> {
    ctx.args(Args::Min(1), a.names.len())?;
    if let Some(kind) = a.kind.as_deref().filter(|k| !k.is_empty()) {
        if !TYPES.contains(&kind) {
            let all: Vec<String> = TYPES.iter().map(|t| format!("{t:?}")).collect();
            return Err(CliError::msg(format!(
                "unknown type: {kind:?}: must be one of {}",
                all.join(", ")
            ))
            .into());
        }
        return inspect_typed(ctx, kind, &a.names, a.format.as_deref(), a.size).await;
    }
    let mut inspector = Inspector::new(a.format.as_deref())?;
    let client = ctx.client().await?;
    'names: for name in &a.names {
        for kind in ["container", "image", "network", "volume"] {
            if let Ok(raw) = fetch(client, kind, name, a.size).await? {
                inspector.add(raw);
                continue 'names;
            }
        }
        inspector.error(format!("Error: No such object: {name}"));
    }
    inspector.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(i: Inspector) -> String {
        match i.output {
            Output::Indented(v) => indent(&format!("[{}]", v.join(",")), "    "),
            Output::Compact(v) => compact(&format!("[{}]", v.join(","))),
            Output::Template(_, buf) => buf,
        }
    }

    #[test]
    fn templates_run_on_raw_objects() {
        let mut i = Inspector::new(Some("{{.Config.Cmd}} {{.Id}}")).unwrap();
        i.add(r#"{"Id":"sha256:ab","Config":{"Cmd":["sh","-c","echo"]}}"#.into());
        i.add(r#"{"Id":"sha256:cd"}"#.into());
        assert_eq!(i.errors.len(), 1);
        assert!(
            i.errors[0].contains("map has no entry for key \"Config\""),
            "{:?}",
            i.errors
        );
        assert_eq!(output(i), "[sh -c echo] sha256:ab\n");
    }

    #[test]
    fn indented_and_compact() {
        let mut i = Inspector::new(None).unwrap();
        i.add("{\"Id\":\"a\",\"L\":[]}".into());
        i.add("{\"Id\":\"b\"}".into());
        assert_eq!(
            output(i),
            "[\n    {\n        \"Id\": \"a\",\n        \"L\": []\n    },\n    {\n        \"Id\": \"b\"\n    }\n]"
        );
        let mut i = Inspector::new(Some("json")).unwrap();
        i.add("{ \"Id\": \"a\" }\n".into());
        assert_eq!(output(i), "[{\"Id\":\"a\"}]");
    }

    #[test]
    fn bad_templates_exit_64() {
        let err = Inspector::new(Some("{{.Id")).err().unwrap();
        assert_eq!(err.code, 64);
        assert_eq!(
            err.message,
            "template parsing error: template: :1: unclosed action"
        );
    }
}
