//! What every command that touches tickets needs: the configuration and the store.

use std::path::Path;

use anyhow::Result;

use crate::activity::ActivityStore;
use crate::config::{self, Config};
use crate::store::Store;

/// The loaded configuration and the store it names.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Config,
    pub store: Store,
    /// What each session is doing, beside the state file.
    pub activity: ActivityStore,
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
        let store =
            Store::new(config.state.path.clone()).keep_done_days(config.state.keep_done_days);
        let activity = ActivityStore::for_state(&config.state.path);
        App {
            config,
            store,
            activity,
        }
    }
}
