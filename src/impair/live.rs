//! What a splice or relay runs for impairment: the [`Registry`] of its stages and the
//! control socket that changes them.

use std::path::Path;
use std::sync::Arc;

use super::spec::Spec;
use super::stage::Registry;
use crate::control::{ControlConfig, Server};
use crate::splice::StageFactory;
use crate::{Error, Result};

/// The impairment options of a splice or relay, resolved from the command line.
#[derive(Debug, Clone, Default)]
pub struct ImpairConfig {
    /// What each direction starts with (A→B, B→A).
    pub specs: [Spec; 2],
    /// Makes every random choice repeatable.
    pub seed: Option<u64>,
    /// The control socket and the QMP targets of `down` / `up` / `flap`.
    pub control: ControlConfig,
}

/// A running registry and its control socket; dropping it closes the socket.
pub struct Live {
    registry: Arc<Registry>,
    server: Result<Server, Error>,
}

impl Live {
    /// Opens the control socket; the stages come from [`Live::stages`]. A socket asked for
    /// with `--control` that cannot be opened is an error; the default one (whose directory
    /// an unprivileged user without `$XDG_RUNTIME_DIR` cannot create) is not: the splice
    /// then runs without live control, and [`Live::control`] says why.
    pub fn start(config: ImpairConfig) -> Result<Live> {
        let registry = Arc::new(Registry::new(config.seed, config.specs));
        let chosen = config.control.path.is_some();
        let server = Server::start(config.control, registry.clone());
        if chosen && let Err(e) = server {
            return Err(e);
        }
        Ok(Live { registry, server })
    }

    /// Makes each direction's impairment stage, registered under the link's name.
    pub fn stages(&self) -> StageFactory {
        let registry = Arc::clone(&self.registry);
        Arc::new(move |index, link, direction| vec![registry.stage(index, &link.name, direction)])
    }

    /// The registry, for status lines and the report.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The registry, shared, for a caller that builds its stages itself (a relay).
    pub fn registry_handle(&self) -> Arc<Registry> {
        Arc::clone(&self.registry)
    }

    /// Where the control socket listens, or why there is none.
    pub fn control(&self) -> std::result::Result<&Path, &Error> {
        self.server.as_ref().map(Server::path)
    }
}
