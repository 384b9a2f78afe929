//! `berth version`: docker's Client/Server report, rendered with docker's own template.

use anyhow::Result;
use clap::Args as ClapArgs;

use super::{GIT_COMMIT, VERSION, go_os_arch};
use crate::commands::inspect::INSPECT_FORMAT_HELP;
use crate::commands::{Ctx, out};
use crate::errors::CliError;
use crate::format::tabwriter::tabwrite;
use crate::format::template::{Map, MapKind, Template, Value, func};
use crate::format::time::reformat_ansic;

#[derive(ClapArgs, Debug)]
pub struct VersionArgs {
    #[arg(short, long, value_name = "string", help = INSPECT_FORMAT_HELP)]
    pub format: Option<String>,
}

/// docker's `defaultVersionTemplate`, without the client's platform name, Go version and
/// build time, which berth does not have.
const TEMPLATE: &str = r#"{{with .Client -}}
Client:
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Git commit:	{{.GitCommit}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- $detailsOrder := getDetailsOrder $component}}
  {{- range $key := $detailsOrder}}
  {{$key}}:	{{index $component.Details $key}}
   {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"#;

fn details_order(args: &[Value]) -> Result<Value, String> {
    let details = args.first().and_then(|c| c.get("Details"));
    let mut keys: Vec<String> = match details {
        Some(Value::Map(m)) => m.entries.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    };
    keys.sort();
    Ok(Value::List(keys.into_iter().map(Value::Str).collect()))
}

/// The client half, with docker's JSON field names.
pub fn client_version(api_version: &str) -> Value {
    let (os, arch) = go_os_arch();
    Value::Map(
        Map::new(MapKind::Struct("main.clientVersion".into()))
            .with("Version", VERSION)
            .with("ApiVersion", api_version)
            .with("DefaultAPIVersion", default_api_version())
            .with("GitCommit", GIT_COMMIT)
            .with("Os", os)
            .with("Arch", arch)
            .with("Context", "default"),
    )
}

pub fn default_api_version() -> String {
    let v = bollard::API_DEFAULT_VERSION;
    format!("{}.{}", v.major_version, v.minor_version)
}

/// The server half: the daemon's `/version`, with the engine's build time as docker shows it
/// and an `Engine` component added when the daemon lists none.
pub fn server_version(mut v: Value) -> Value {
    let Value::Map(server) = &mut v else { return v };
    let str_of = |m: &Map, k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut components = match server.get("Components") {
        Some(Value::List(l)) => l.clone(),
        _ => Vec::new(),
    };
    let mut found = false;
    for c in &mut components {
        if let Value::Map(cm) = c
            && cm.get("Name").and_then(Value::as_str) == Some("Engine")
        {
            found = true;
            if let Some(Value::Map(details)) = cm
                .entries
                .iter_mut()
                .find(|(k, _)| k == "Details")
                .map(|(_, v)| v)
                && let Some(bt) = details
                    .get("BuildTime")
                    .and_then(Value::as_str)
                    .map(reformat_ansic)
            {
                details.insert("BuildTime", Value::Str(bt));
            }
        }
    }
    if !found {
        let experimental = matches!(server.get("Experimental"), Some(Value::Bool(true)));
        let details = Map::new(MapKind::Json)
            .with("ApiVersion", str_of(server, "ApiVersion"))
            .with("MinAPIVersion", str_of(server, "MinAPIVersion"))
            .with("GitCommit", str_of(server, "GitCommit"))
            .with("GoVersion", str_of(server, "GoVersion"))
            .with("Os", str_of(server, "Os"))
            .with("Arch", str_of(server, "Arch"))
            .with("BuildTime", reformat_ansic(&str_of(server, "BuildTime")))
            .with("Experimental", experimental.to_string());
        components.push(Value::Map(
            Map::new(MapKind::Json)
                .with("Name", "Engine")
                .with("Version", str_of(server, "Version"))
                .with("Details", details),
        ));
    }
    server.insert("Components", Value::List(components));
    if server.get("Platform").is_none() {
        server.insert(
            "Platform",
            Value::Map(Map::new(MapKind::Json).with("Name", "")),
        );
    }
    v
}

/// Renders the report; `format` None is docker's default layout. A template that fails to run
/// still prints what it produced, then fails.
pub fn render(
    format: Option<&str>,
    client: Value,
    server: Option<Value>,
) -> Result<(String, Option<CliError>), CliError> {
    let text = match format {
        None | Some("") => TEMPLATE,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let tmpl = Template::parse_named(
        "version",
        text,
        vec![("getDetailsOrder", func(details_order))],
    )
    .map_err(|e| CliError::new(64, format!("template parsing error: {e}")))?;
    let data = Value::Map(
        Map::new(MapKind::Struct("system.versionInfo".into()))
            .with("Client", client)
            .with("Server", server.unwrap_or(Value::Nil)),
    );
    let (body, error) = match tmpl.execute(&data) {
        Ok(t) => (t, None),
        Err(e) => (String::new(), Some(CliError::msg(e.to_string()))),
    };
    Ok((tabwrite(&format!("{body}\n"), 20, 1), error))
}

pub async fn run(a: VersionArgs, ctx: &Ctx) -> Result<()> {
    let (api_version, server, error) = match ctx.client().await {
        Ok(client) => match client.get_value("/version").await {
            Ok((_, v)) => (client.api_version.clone(), Some(server_version(v)), None),
            Err(e) => (client.api_version.clone(), None, Some(e)),
        },
        Err(e) => (default_api_version(), None, Some(e)),
    };
    let (text, template_error) = render(a.format.as_deref(), client_version(&api_version), server)?;
    out(&text)?;
    match error.or(template_error) {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout() {
        let server = Value::from_json(
            r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24","Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2026-05-07T21:09:36.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.8","KernelVersion":"6.1","MinAPIVersion":"1.12","Os":"linux"}},{"Name":"runc","Version":"1.1.5","Details":{"GitCommit":"abc"}}],"Version":"20.10.24","ApiVersion":"1.41"}"#,
        )
        .unwrap();
        let (text, _) = render(None, client_version("1.41"), Some(server_version(server))).unwrap();
        let want_server = "Server:\n Engine:\n  Version:          20.10.24\n  API version:      1.41 (minimum version 1.12)\n  Go version:       go1.19.8\n  Git commit:       5d6db84\n  Built:            Thu May  7 21:09:36 2026\n  OS/Arch:          linux/amd64\n  Experimental:     false\n runc:\n  Version:          1.1.5\n  GitCommit:        abc\n";
        assert!(text.starts_with("Client:\n Version:           "), "{text}");
        assert!(
            text.contains(" API version:       1.41 (downgraded from "),
            "{text}"
        );
        assert!(text.ends_with(want_server), "{text}");
    }

    #[test]
    fn formats_and_missing_server() {
        let (text, _) = render(
            Some("{{.Client.APIVersion}}|{{.Server}}"),
            client_version("1.47"),
            None,
        )
        .unwrap();
        assert_eq!(text, "1.47|<no value>\n");
        let (json, _) = render(Some("json"), client_version("1.47"), None).unwrap();
        assert!(json.starts_with("{\"Client\":{\"Version\":"), "{json}");
        assert!(json.contains("\"Server\":null"), "{json}");
        let (text, _) = render(None, client_version("1.47"), None).unwrap();
        assert!(text.ends_with(" Context:           default\n"), "{text}");
        assert_eq!(
            render(Some("{{.Nope"), client_version("1"), None)
                .unwrap_err()
                .code,
            64
        );
        let (text, err) = render(Some("{{.Nope}}"), client_version("1"), None).unwrap();
        assert_eq!(text, "\n");
        assert_eq!(
            err.unwrap().message,
            "template: version:1:2: executing \"version\" at <.Nope>: can't evaluate field Nope in type system.versionInfo"
        );
    }
}
