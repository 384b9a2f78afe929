//! `--change` instructions of `docker import` and `docker commit`: the Dockerfile
//! instructions that only change the image config.

use std::collections::BTreeMap;

use berth_image::config::ContainerConfig;
use serde_json::Value;

use crate::error::{EngineError, Result};

/// Applies one instruction line (`CMD ["sh"]`, `ENV A=1 B=2`, `EXPOSE 80/tcp`, …) to `cfg`.
pub fn apply_change(cfg: &mut ContainerConfig, line: &str) -> Result<()> {
    let line = line.trim();
    let (instr, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let args = args.trim();
    let bad = |why: &str| EngineError::invalid(format!("dockerfile parse error on line 1: {why}"));
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(command_form(args)?),
        "ENTRYPOINT" => cfg.entrypoint = Some(command_form(args)?),
        "SHELL" => {
            cfg.shell = Some(
                json_array(args)
                    .ok_or_else(|| bad("SHELL requires the arguments to be in JSON form"))?,
            )
        }
        "ENV" => {
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(args, "ENV")? {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(args, "LABEL")? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in args.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports.insert(p, Value::Object(Default::default()));
            }
        }
        "VOLUME" => {
            let vols = cfg.volumes.get_or_insert_with(BTreeMap::new);
            let list = json_array(args)
                .unwrap_or_else(|| args.split_whitespace().map(str::to_string).collect());
            for v in list {
                vols.insert(v, Value::Object(Default::default()));
            }
        }
        "USER" => cfg.user = Some(args.to_string()),
        "WORKDIR" => cfg.working_dir = Some(args.to_string()),
        "STOPSIGNAL" => cfg.stop_signal = Some(args.to_string()),
        "ONBUILD" => cfg
            .on_build
            .get_or_insert_with(Vec::new)
            .push(args.to_string()),
        other => return Err(bad(&format!("{other} is not a valid change command"))),
    }
    Ok(())
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Exec form (`["a","b"]`) as is; shell form wrapped in `/bin/sh -c`.
fn command_form(args: &str) -> Result<Vec<String>> {
    Ok(json_array(args).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), args.to_string()]))
}

/// `k=v k2="v 2"` pairs, or the legacy `k v…` form.
fn key_values(args: &str, instr: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(args);
    if words.is_empty() {
        return Err(EngineError::invalid(format!(
            "dockerfile parse error on line 1: {instr} requires at least one argument"
        )));
    }
    if !words[0].contains('=') {
        let (k, v) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (unquote(k), unquote(v)))
                .ok_or_else(|| {
                    EngineError::invalid(format!(
                        "dockerfile parse error on line 1: {instr} names can not be blank"
                    ))
                })
        })
        .collect()
}

/// Splits on whitespace outside quotes, keeping the quotes (removed by [`unquote`]).
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match (c, quote) {
            ('\\', _) => {
                cur.push(c);
                escaped = true;
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                cur.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                cur.push(c);
            }
            (c, None) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (c, _) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            (c, _) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = ContainerConfig::default();
        for l in [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /start",
            r#"ENV A=1 B="two words""#,
            "ENV C 3 4",
            r#"LABEL org.x="y z" k=v"#,
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "WORKDIR /srv",
            "USER nobody",
        ] {
            apply_change(&mut c, l).unwrap();
        }
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/start"]);
        assert_eq!(c.env.unwrap(), vec!["A=1", "B=two words", "C=3 4"]);
        assert_eq!(c.labels.unwrap()["org.x"], "y z");
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(c.exposed_ports.unwrap().contains_key("53/udp"));
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert!(apply_change(&mut ContainerConfig::default(), "RUN rm -rf /").is_err());
    }
}
