//! What every command that touches tickets needs: the configuration and the store.

use std::path::Path;

use anyhow::Result;

use crate::activity::ActivityStore;
use crate::config::{self, Config};
use crate::plane::client::Patience;
use crate::plane::Client;
use crate::store::Store;

/// The loaded configuration and the store it names.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Config,
    pub store: Store,
    /// What each session is doing, beside the state file.
    pub activity: ActivityStore,
    /// How patient Plane requests made for this caller are: `None` for the command line and
    /// polls (retries, waits); the HTTP API's request paths send once within a short deadline.
    pub plane_patience: Option<Patience>,
}

impl App {
    /// Finds and loads the configuration (`--config`, `$PLANE_ORCH_CONFIG`, `./config.yaml`).
    ///
    /// # Errors
    /// The config file is missing or invalid (exit 2).
    pub fn load(config_flag: Option<&Path>) -> Result<App> {
        let path = config::locate(config_flag);
        let config = config::load(&path)?;
        if crate::logging::file_wanted() {
            crate::logging::attach_file(&config.log);
        }
        for warning in &config.warnings {
            log::warn!("{warning}");
        }
        Ok(App::from_config(config))
    }

    #[must_use]
    pub fn from_config(config: Config) -> App {
        let store = Store::new(config.state.path.clone())
            .keep_done_days(config.state.keep_done_days)
            .journal_above_kib(config.state.journal_above_kib);
        let activity = ActivityStore::for_state(&config.state.path);
        App {
            config,
            store,
            activity,
            plane_patience: None,
        }
    }

    /// The same app, its Plane requests made with `patience`.
    #[must_use]
    pub fn with_plane_patience(mut self, patience: Patience) -> App {
        self.plane_patience = Some(patience);
        self
    }

    /// A Plane client with this app's patience.
    ///
    /// # Errors
    /// `Error::Config` when the workspace or the key is missing.
    pub fn plane_client(&self) -> Result<Client> {
        let cfg = &self.config.plane;
        Client::with_patience(
            cfg,
            self.plane_patience.unwrap_or_else(|| Patience::of(cfg)),
        )
    }
}
