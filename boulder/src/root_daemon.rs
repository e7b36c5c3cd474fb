//! The build root composed by `mossd` over D-Bus (`ComposeBuildRoot`, polkit action
//! `com.serpentos.moss.build-root`): the daemon installs the packages with its installation's
//! repositories, sharing its store, so a build needs no repository configuration of its own.

use std::{collections::HashMap, path::Path};

use futures_util::StreamExt;
use moss_proto::{ManagerProxy, TransactionProxy, status};

use crate::{
    container::prepare_host_style_root,
    root::{BuildRoot, Composed, RootError},
};

/// Ask mossd for the build root.
#[derive(Debug, Clone, Default)]
pub struct DaemonRoot {
    /// Bus address; `None` is the system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set).
    pub address: Option<String>,
}

fn failed(what: &str) -> impl Fn(zbus::Error) -> RootError + '_ {
    move |error| RootError::Daemon(format!("{what}: {error}"))
}

impl DaemonRoot {
    async fn connect(&self) -> Result<zbus::Connection, RootError> {
        match &self.address {
            Some(address) => zbus::connection::Builder::address(address.as_str())
                .build()
                .await
                .map_err(failed("connecting to the bus")),
            None => zbus::Connection::system()
                .await
                .map_err(failed("connecting to the system bus")),
        }
    }

    /// Whether mossd answers on the bus (used to choose this root by default).
    pub fn is_available(&self) -> bool {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        runtime.block_on(async {
            let Ok(connection) = self.connect().await else {
                return false;
            };
            let Ok(manager) = ManagerProxy::new(&connection).await else {
                return false;
            };
            manager.version().await.is_ok()
        })
    }

    async fn compose_async(&self, directory: &Path, packages: &[String]) -> Result<(), RootError> {
        let connection = self.connect().await?;
        let manager = ManagerProxy::new(&connection)
            .await
            .map_err(failed("reaching mossd"))?;
        let names: Vec<&str> = packages.iter().map(String::as_str).collect();
        let directory = directory.to_string_lossy();
        let path = manager
            .compose_build_root(&directory, &names, HashMap::new())
            .await
            .map_err(failed("ComposeBuildRoot"))?;
        let transaction = TransactionProxy::builder(&connection)
            .path(path)
            .build()
            .await
            .map_err(failed("the transaction"))?;
        // Subscribe before starting so that the end cannot be missed.
        let mut finished = transaction
            .receive_finished()
            .await
            .map_err(failed("subscribing"))?;
        transaction
            .start()
            .await
            .map_err(failed("starting the transaction"))?;
        let (mut state, mut message, _) =
            transaction.result().await.map_err(failed("the result"))?;
        if !status::is_final(&state) {
            match finished.next().await {
                Some(signal) => {
                    let arguments = signal.args().map_err(failed("the Finished signal"))?;
                    state = (*arguments.status()).to_owned();
                    message = (*arguments.message()).to_owned();
                }
                None => {
                    (state, message, _) =
                        transaction.result().await.map_err(failed("the result"))?;
                }
            }
        }
        if state == status::SUCCEEDED {
            Ok(())
        } else {
            Err(RootError::Daemon(format!(
                "mossd could not compose the build root ({state}): {message}"
            )))
        }
    }
}

impl BuildRoot for DaemonRoot {
    fn describe(&self) -> String {
        "mossd (ComposeBuildRoot)".to_owned()
    }

    fn compose(
        &self,
        rootfs: &Path,
        packages: &[String],
        networking: bool,
    ) -> Result<Composed, RootError> {
        let io = |source| RootError::Io {
            path: rootfs.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(rootfs).map_err(io)?;
        let rootfs = std::fs::canonicalize(rootfs).map_err(io)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io)?;
        runtime.block_on(self.compose_async(&rootfs, packages))?;
        prepare_host_style_root(&rootfs, networking).map_err(io)?;
        Ok(Composed::default())
    }
}
