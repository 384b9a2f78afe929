//! Output formatting shared by all commands: docker's `--format` handling (`table …`, `json`,
//! Go templates), units, tables, JSON and the progress stream.

pub mod json;
pub mod jsonmessage;
pub mod tabwriter;
pub mod template;
pub mod time;
pub mod units;

use crate::errors::CliError;
use template::{Template, Value};

/// `table` / `json` / a template, as docker's `formatter.Format`.
#[derive(Debug, Clone, PartialEq)]
pub struct Format(pub String);

impl Format {
    pub fn is_table(&self) -> bool {
        self.0.starts_with("table")
    }

    pub fn is_json(&self) -> bool {
        self.0 == "json"
    }

    /// The template text docker runs: `table` stripped, `json` → `{{json .}}`, spaces trimmed,
    /// and the two-character sequences `\t` and `\n` turned into tab and newline.
    pub fn template_text(&self) -> String {
        let text = if self.is_table() {
            &self.0["table".len()..]
        } else if self.is_json() {
            "{{json .}}"
        } else {
            &self.0
        };
        text.trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n")
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
}

/// Parses a template the way docker reports its errors.
pub fn parse_template(text: &str) -> Result<Template, CliError> {
    Template::parse(text).map_err(|e| CliError::new(1, format!("template parsing error: {e}")))
}

/// docker's `formatter.Context.Write`: runs the format for each row and, for tables, puts the
/// header (the template run over `header`) on top and aligns columns like docker's tabwriter.
/// Nothing is returned for output when a row fails.
pub fn render_rows(format: &Format, header: &Value, rows: &[Value]) -> Result<String, CliError> {
    let tmpl = parse_template(&format.template_text())?;
    let mut body = String::new();
    for row in rows {
        let line = tmpl
            .execute(row)
            .map_err(|e| CliError::new(1, format!("template parsing error: {e}")))?;
        body.push_str(&line);
        body.push('\n');
    }
    if !format.is_table() {
        return Ok(body);
    }
    let mut text = tmpl.execute_header(header).unwrap_or_default();
    text.push('\n');
    text.push_str(&body);
    Ok(tabwriter::tabwrite(&text, 10, 3))
}

/// Runs a template once over `data` (`inspect -f`, `version -f`, `info -f`) with docker's
/// `template parsing error:` prefix on failure.
pub fn render_one(tmpl: &Template, data: &Value) -> Result<String, CliError> {
    tmpl.execute(data)
        .map_err(|e| CliError::new(1, format!("template parsing error: {e}")))
}

#[cfg(test)]
mod tests {
    use super::template::{Map, MapKind};
    use super::*;

    fn ctx(id: &str, repo: &str) -> Value {
        Value::Map(
            Map::new(MapKind::Context("*formatter.imageContext".into()))
                .with("ID", id)
                .with("Repository", repo),
        )
    }

    fn header() -> Value {
        ctx("IMAGE ID", "REPOSITORY")
    }

    #[test]
    fn table_with_header() {
        let f = Format("table {{.ID}}\\t{{.Repository}}".into());
        let out = render_rows(&f, &header(), &[ctx("abc", "busybox")]).unwrap();
        assert_eq!(out, "IMAGE ID   REPOSITORY\nabc        busybox\n");
    }

    #[test]
    fn json_and_plain() {
        let f = Format("json".into());
        let out = render_rows(&f, &header(), &[ctx("abc", "<none>")]).unwrap();
        assert_eq!(
            out,
            "{\"ID\":\"abc\",\"Repository\":\"\\u003cnone\\u003e\"}\n"
        );
        let f = Format("{{.ID}}:{{.Repository}}".into());
        assert_eq!(
            render_rows(&f, &header(), &[ctx("a", "b")]).unwrap(),
            "a:b\n"
        );
    }

    #[test]
    fn row_errors_print_nothing() {
        let f = Format("table {{.Nope}}".into());
        let err = render_rows(&f, &header(), &[ctx("a", "b")]).unwrap_err();
        assert!(
            err.message
                .starts_with("template parsing error: template: :1:2:")
        );
    }
}
