//! The shim's log: `tracing` events as plain lines on stderr (`shim.log`).
//!
//! A subscriber of a few dozen lines instead of tracing-subscriber's formatter: the shim
//! lives as long as its container, and the formatter's code is resident memory every
//! container pays for (measured with the static shim: the formatter and its filter were
//! a fifth of the binary).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Writes events at `max` and more severe to stderr.
pub struct LineLogger {
    max: Level,
    next_span: AtomicU64,
}

impl LineLogger {
    pub fn new(max: Level) -> LineLogger {
        LineLogger {
            max,
            next_span: AtomicU64::new(1),
        }
    }

    /// One line: time, level, message, then `name=value` for each field.
    pub fn format(level: &Level, event: &Event<'_>, time: &str) -> String {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = format!("{time} {level:>5} {}", fields.message);
        line.push_str(&fields.rest);
        line.push('\n');
        line
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for LineLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let line = LineLogger::format(event.metadata().level(), event, &time);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures formatted lines instead of writing them.
    struct Capture(Arc<Mutex<Vec<String>>>, LineLogger);

    impl Subscriber for Capture {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            self.1.enabled(metadata)
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            self.1.new_span(span)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let line = LineLogger::format(event.metadata().level(), event, "T");
            self.0.lock().unwrap().push(line);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn events_become_lines_and_the_level_filters() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let capture = Capture(lines.clone(), LineLogger::new(Level::INFO));
        tracing::subscriber::with_default(capture, || {
            tracing::info!(code = 3, oom = false, "container exited");
            tracing::debug!("not shown");
            tracing::warn!(stream = ?"stdout", "read output: {}", "broken pipe");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "T  INFO container exited code=3 oom=false\n",
                "T  WARN read output: broken pipe stream=\"stdout\"\n",
            ]
        );
    }
}
