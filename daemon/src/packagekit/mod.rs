//! The PackageKit face of mossd: `org.freedesktop.PackageKit` at `/org/freedesktop/PackageKit`,
//! so that pkcon, GNOME Software, KDE Discover and COSMIC Store work unmodified against moss.
//!
//! Queries are answered from the engine directly; changes become ordinary mossd transactions
//! (same worker, same polkit actions as the moss interface), and their events become PackageKit
//! properties and signals. Numeric values follow PackageKit 1.2.6 (`spec/dbus-peers.md` §2.6).

mod access;
mod downloads;
pub mod enums;
pub mod offline;
mod roles;
mod runner;
mod transaction;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use zbus::{
    Connection, interface, message::Header, object_server::SignalEmitter, wire::OwnedObjectPath,
};

pub use offline::Offline;
use transaction::PkTransaction;

use crate::{authority, daemon::Daemon};

/// Bus name.
pub const BUS_NAME: &str = "org.freedesktop.PackageKit";
/// Object path of the daemon object.
pub const OBJECT_PATH: &str = "/org/freedesktop/PackageKit";
/// The daemon interface.
pub const INTERFACE: &str = "org.freedesktop.PackageKit";
/// The transaction interface.
pub const TRANSACTION_INTERFACE: &str = "org.freedesktop.PackageKit.Transaction";

/// State shared by the PackageKit objects.
#[derive(Debug)]
pub struct Shared {
    /// The daemon.
    pub daemon: Arc<Daemon>,
    next: AtomicU64,
    /// Unfinished transaction paths.
    pub active: Mutex<Vec<String>>,
    /// When each role last succeeded (for `GetTimeSinceAction`).
    pub last_action: Mutex<std::collections::HashMap<u32, Instant>>,
    /// The uid that created each transaction object still on the bus.
    owners: Mutex<std::collections::HashMap<String, u32>>,
}

impl Shared {
    /// Shared state over `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Arc<Self> {
        Arc::new(Self {
            daemon,
            next: AtomicU64::new(1),
            active: Mutex::new(Vec::new()),
            last_action: Mutex::new(Default::default()),
            owners: Mutex::new(Default::default()),
        })
    }

    /// Note a new transaction object of `uid`, unless that uid holds too many already.
    fn claim(&self, path: &str, uid: u32) -> Result<(), String> {
        let mut owners = self
            .owners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let held = owners.values().filter(|owner| **owner == uid).count();
        if uid != 0 && held >= crate::limits::MAX_PACKAGEKIT_PER_CALLER {
            return Err(format!(
                "uid {uid} already holds {held} PackageKit transactions; finish or drop them first"
            ));
        }
        owners.insert(path.to_owned(), uid);
        Ok(())
    }

    /// A transaction object left the bus.
    pub fn release(&self, path: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(path);
    }

    /// Announce the list of unfinished transactions.
    pub async fn list_changed(&self, connection: &Connection) {
        let list = self
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        if let Ok(emitter) = SignalEmitter::new(connection, OBJECT_PATH) {
            let _ = emitter
                .emit(INTERFACE, "TransactionListChanged", &(list,))
                .await;
        }
    }

    /// Emit a daemon-level signal without arguments (`UpdatesChanged`, `RepoListChanged`).
    pub async fn announce(&self, connection: &Connection, signal: &str) {
        if let Ok(emitter) = SignalEmitter::new(connection, OBJECT_PATH) {
            let _ = emitter.emit(INTERFACE, signal, &()).await;
        }
    }
}

/// The daemon object.
#[derive(Debug)]
pub struct PackageKit {
    shared: Arc<Shared>,
}

impl PackageKit {
    /// The daemon object over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// Serve the PackageKit objects on `connection` and ask for the name. A real packagekitd that
/// owns the name already wins: moss then serves only its own interface.
pub async fn serve(daemon: Arc<Daemon>, connection: &Connection) {
    let shared = Shared::new(daemon);
    let server = connection.object_server();
    if let Err(error) = server
        .at(OBJECT_PATH, PackageKit::new(shared.clone()))
        .await
    {
        tracing::warn!(%error, "cannot export the PackageKit interface");
        return;
    }
    if let Err(error) = server.at(OBJECT_PATH, Offline::new(shared.clone())).await {
        tracing::warn!(%error, "cannot export the PackageKit offline interface");
    }
    match connection.request_name(BUS_NAME).await {
        Ok(()) => tracing::info!("serving {BUS_NAME}"),
        Err(error) => {
            tracing::warn!(%error, "not serving {BUS_NAME} (another PackageKit owns it?)")
        }
    }
}

#[interface(name = "org.freedesktop.PackageKit")]
impl PackageKit {
    /// A new transaction object for the caller.
    async fn create_transaction(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let _call = self.shared.daemon.call();
        let caller = authority::caller(connection, &header)
            .await
            .map_err(|error| zbus::fdo::Error::AccessDenied(error.message()))?;
        let number = self.shared.next.fetch_add(1, Ordering::SeqCst);
        // The shape of packagekitd's paths (`/<n>_<8 letters a-f>`). The letters differ between
        // daemon runs: clients name per-transaction files after the path (/tmp/gpk-<path>.socket).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |duration| duration.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32)
            ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let letters: String = (0..8)
            .map(|index| (b'a' + ((seed >> (index * 5)) % 6) as u8) as char)
            .collect();
        let path = format!("/{number}_{letters}");
        self.shared
            .claim(&path, caller.uid)
            .map_err(zbus::fdo::Error::LimitsExceeded)?;
        let object = PkTransaction::new(self.shared.clone(), path.clone(), caller);
        if let Err(error) = connection.object_server().at(path.as_str(), object).await {
            self.shared.release(&path);
            return Err(zbus::fdo::Error::Failed(error.to_string()));
        }
        transaction::reap_if_unused(self.shared.clone(), connection.clone(), path.clone());
        OwnedObjectPath::try_from(path).map_err(|error| zbus::fdo::Error::Failed(error.to_string()))
    }

    /// Seconds since `role` last succeeded (`u32::MAX` if never).
    fn get_time_since_action(&self, role: u32) -> u32 {
        self.shared
            .last_action
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&role)
            .map_or(u32::MAX, |instant| {
                u32::try_from(instant.elapsed().as_secs()).unwrap_or(u32::MAX)
            })
    }

    fn get_transaction_list(&self) -> Vec<OwnedObjectPath> {
        self.shared
            .active
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .filter_map(|path| OwnedObjectPath::try_from(path.clone()).ok())
            .collect()
    }

    fn get_daemon_state(&self) -> String {
        format!(
            "mossd serving {} (PackageKit interface)",
            self.shared.daemon.root.display()
        )
    }

    /// Whether the caller could be authorised for a PackageKit action (1 yes, 2 no, 3 interactive).
    async fn can_authorize(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        action_id: String,
    ) -> u32 {
        let Some(action) = enums::moss_action(&action_id) else {
            return 2;
        };
        match authority::authorize(connection, &header, action).await {
            Ok(_) => 1,
            Err(_) => 2,
        }
    }

    fn state_has_changed(&self, _reason: String) {}

    fn suggest_daemon_quit(&self) {}

    #[zbus(signal)]
    async fn transaction_list_changed(
        emitter: &SignalEmitter<'_>,
        transactions: Vec<String>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn updates_changed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn repo_list_changed(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;

    #[zbus(property)]
    fn version_major(&self) -> u32 {
        1
    }

    #[zbus(property)]
    fn version_minor(&self) -> u32 {
        2
    }

    #[zbus(property)]
    fn version_micro(&self) -> u32 {
        6
    }

    #[zbus(property)]
    fn backend_name(&self) -> String {
        "moss".into()
    }

    #[zbus(property)]
    fn backend_description(&self) -> String {
        "moss: atomic, content-addressed package management for Serpent OS".into()
    }

    #[zbus(property)]
    fn backend_author(&self) -> String {
        "The moss developers".into()
    }

    #[zbus(property)]
    fn roles(&self) -> u64 {
        enums::ROLES
    }

    #[zbus(property)]
    fn groups(&self) -> u64 {
        0
    }

    #[zbus(property)]
    fn filters(&self) -> u64 {
        enums::FILTERS
    }

    #[zbus(property)]
    fn mime_types(&self) -> Vec<String> {
        vec!["application/x-stone-binary".into()]
    }

    #[zbus(property)]
    fn locked(&self) -> bool {
        self.shared.daemon.busy()
    }

    #[zbus(property)]
    fn network_state(&self) -> u32 {
        enums::network::ONLINE
    }

    #[zbus(property)]
    fn distro_id(&self) -> String {
        format!("serpentos;rolling;{}", std::env::consts::ARCH)
    }
}
