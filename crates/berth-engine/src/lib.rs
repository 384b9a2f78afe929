#![recursion_limit = "256"]
//! The engine: the services behind the Docker Engine API. berthd turns requests into
//! calls on these; nothing here knows HTTP.

pub mod containers;
pub mod error;
pub mod events;
pub mod filters;
pub mod images;
pub mod system;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use berth_distribution::{ClientConfig, RegistryClient};
use berth_image::ImageStore;
use containers::{ContainerPaths, ContainerService};

pub use error::{EngineError, ErrorKind, Result};
use events::EventBus;
use images::ImageService;
use volumes::VolumeService;

/// Where the engine keeps its state and how it reaches registries.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state (`/run/berth`).
    pub exec_root: PathBuf,
    /// Registries reached over plain HTTP (host[:port] or CIDR), besides loopback.
    pub insecure_registries: Vec<String>,
    /// Daemon labels shown by `info`.
    pub labels: Vec<String>,
    /// The `berth-shim` binary that runs each container.
    pub shim_binary: PathBuf,
    /// A static init for `--init`, when one is available.
    pub init_binary: Option<PathBuf>,
    /// The runtime containers get unless they ask: `runc` or `microvm`.
    pub default_runtime: String,
    /// The micro-VM runtime's settings.
    pub vm: containers::microvm::VmSettings,
}

pub struct Engine {
    config: EngineConfig,
    images: Arc<ImageService>,
    events: Arc<EventBus>,
    volumes: Arc<VolumeService>,
    containers: Arc<ContainerService>,
    started: chrono::DateTime<chrono::Utc>,
}

impl Engine {
    pub fn open(config: EngineConfig) -> Result<Engine> {
        let store = Arc::new(ImageStore::open(&config.data_root)?);
        let events = Arc::new(EventBus::default());
        let registry = RegistryClient::new(ClientConfig {
            insecure_registries: config.insecure_registries.clone(),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        })
        .map_err(|e| EngineError::internal(format!("registry client: {e}")))?;
        let images = Arc::new(ImageService::new(store, events.clone(), registry));
        let volumes = Arc::new(VolumeService::open(
            config.data_root.join("volumes"),
            events.clone(),
        )?);
        let containers = ContainerService::new(
            ContainerPaths {
                data: config.data_root.join("containers"),
                exec: config.exec_root.join("c"),
                runtime_root: config.exec_root.join("rt"),
                shim: config.shim_binary.clone(),
                cgroupfs: PathBuf::from("/sys/fs/cgroup"),
                resolv_conf: PathBuf::from("/etc/resolv.conf"),
                init: config.init_binary.clone(),
            },
            containers::Runtimes {
                default: containers::microvm::runtime_of(
                    &bollard_stubs::models::HostConfig {
                        runtime: Some(config.default_runtime.clone()),
                        ..Default::default()
                    },
                    containers::microvm::RUNC,
                )?,
                vm: containers::microvm::VmAssets::new(
                    config.vm.clone(),
                    config.data_root.join("vm"),
                ),
            },
            images.clone(),
            volumes.clone(),
            events.clone(),
        )?;
        let users = Arc::downgrade(&containers);
        images.set_users(Arc::new(move |id| {
            users
                .upgrade()
                .map(|service| service.users_of_image(&id.to_string()))
                .unwrap_or_default()
        }));
        let vm_images = Arc::downgrade(&containers);
        images.set_layers_removed(Arc::new(move || {
            if let Some(service) = vm_images.upgrade() {
                service.sweep_vm_root_images();
            }
        }));
        Ok(Engine {
            config,
            images,
            events,
            volumes,
            containers,
            started: chrono::Utc::now(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn images(&self) -> &Arc<ImageService> {
        &self.images
    }

    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    pub fn volumes(&self) -> &Arc<VolumeService> {
        &self.volumes
    }

    pub fn containers(&self) -> &Arc<ContainerService> {
        &self.containers
    }

    pub fn started(&self) -> chrono::DateTime<chrono::Utc> {
        self.started
    }
}
