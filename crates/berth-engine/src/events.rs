//! The event bus behind `GET /events`: live subscribers plus a bounded history so
//! `--since` can replay recent events, as dockerd does.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use berth_api::types::{EventActor, EventMessage};
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

pub struct EventBus {
    sender: broadcast::Sender<EventMessage>,
    history: Mutex<VecDeque<EventMessage>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(HISTORY).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

impl EventBus {
    /// Publishes an event of `kind` (`image`, `container`, …) about `id`.
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let time_nano = now.timestamp_nanos_opt().unwrap_or_default();
        let legacy = matches!(kind, "image" | "container");
        let msg = EventMessage {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: None,
            kind: kind.to_string(),
            action: action.to_string(),
            actor: EventActor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano,
        };
        let mut h = self.history.lock().expect("event history lock");
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(msg.clone());
        drop(h);
        let _ = self.sender.send(msg);
    }

    /// Publishes an image event; the actor's `name` attribute is the image reference.
    pub fn image(&self, action: &str, id: &str, name: Option<&str>) {
        let mut attrs = BTreeMap::new();
        if let Some(n) = name {
            attrs.insert("name".to_string(), n.to_string());
        }
        self.publish("image", action, id, attrs);
    }

    /// Publishes a volume event (`create`, `destroy`, `mount`, `unmount`, `prune`) about the
    /// volume `name`, with dockerd's attributes (`driver`, `container`, `destination`, …).
    pub fn volume(&self, action: &str, name: &str, attributes: BTreeMap<String, String>) {
        self.publish("volume", action, name, attributes);
    }

    /// Past events (oldest first) and a receiver for the ones that follow, without a gap.
    pub fn subscribe(&self) -> (Vec<EventMessage>, broadcast::Receiver<EventMessage>) {
        let h = self.history.lock().expect("event history lock");
        let rx = self.sender.subscribe();
        (h.iter().cloned().collect(), rx)
    }
}
