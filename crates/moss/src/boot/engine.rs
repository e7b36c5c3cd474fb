//! Boot entries of an installation's states: planning, status and synchronisation.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use super::{
    BootConfig, BootError, Discovered, Location, discover,
    discover::root_tokens,
    entries::{
        Entry, Identity, admin_snippets, copy_if_changed, entry, is_ours, kernels, loader_conf,
        resolve, write_if_changed,
    },
    io,
};
use crate::{
    engine::{EngineError, Moss},
    events::{Event, Phase},
    vfs::Kind,
};

/// One entry as `moss boot status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryStatus {
    /// File name in `loader/entries`.
    pub file: String,
    /// The state it boots.
    pub state: u64,
    /// The kernel version.
    pub kernel: String,
    /// Whether it is the default entry.
    pub default: bool,
    /// Whether the boot partition holds it as planned.
    pub installed: bool,
}

/// What `moss boot status` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootStatus {
    /// `uefi` when the firmware is UEFI (sysfs has `firmware/efi`), else `bios`.
    pub firmware: &'static str,
    /// The boot loader that started the system (the `LoaderInfo` EFI variable), when known.
    pub bootloader: Option<String>,
    /// The ESP.
    pub esp: Option<Location>,
    /// The XBOOTLDR partition.
    pub xbootldr: Option<Location>,
    /// Where kernels and entries go.
    pub boot: Option<PathBuf>,
    /// The root tokens of the command line.
    pub root: Option<String>,
    /// The entries a sync writes, in menu order.
    pub entries: Vec<EntryStatus>,
    /// Why boot entries cannot be managed, when they cannot.
    pub error: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Entry files now present, in menu order.
    pub entries: Vec<String>,
    /// The default entry.
    pub default: Option<String>,
    /// Files written (entries, kernels, initrds, loader files).
    pub written: usize,
    /// Stale entries and kernel directories removed.
    pub removed: Vec<PathBuf>,
}

struct Planned {
    identity: Identity,
    entries: Vec<Entry>,
    bootloader: Option<PathBuf>,
}

impl Moss {
    /// The entries for the active state and the `config.keep` most recent other states (by id,
    /// so after a rollback the newer states stay bootable), newest first.
    async fn plan_boot(
        &self,
        config: &BootConfig,
        root_tokens: &str,
    ) -> Result<Planned, EngineError> {
        let states = self.kept_states(config).await?;
        let root = &self.installation.paths().root;
        let (admin, masks) = admin_snippets(root);
        let mut identity = None;
        let mut bootloader = None;
        let mut entries = Vec::new();
        for id in states {
            let tree = self.state_tree(id).await?;
            if identity.is_none() {
                identity = Some(Identity::of(&tree, &self.store));
                bootloader = match tree
                    .get("lib/systemd/boot/efi/systemd-bootx64.efi")
                    .map(|node| &node.kind)
                {
                    Some(Kind::Regular(digest)) => Some(self.store.asset_path(*digest)),
                    _ => None,
                };
            }
            let identity = identity.as_ref().expect("set above");
            let (kernels, vendor) = kernels(&tree, &self.store);
            for kernel in kernels {
                let mut options: Vec<String> = vec![root_tokens.to_owned(), "rw".to_owned()];
                options.extend(admin.iter().cloned());
                options.push(format!("moss.fstx={id}"));
                options.extend(
                    kernel
                        .cmdline
                        .iter()
                        .chain(vendor.iter())
                        .filter(|(name, _)| !masks.contains(name))
                        .map(|(_, text)| text.clone()),
                );
                options.retain(|option| !option.is_empty());
                entries.push(entry(identity, id, &kernel, &options.join(" ")));
            }
        }
        Ok(Planned {
            identity: identity.unwrap_or(Identity {
                id: "serpentos".to_owned(),
                name: "Serpent OS".to_owned(),
            }),
            entries,
            bootloader,
        })
    }

    /// The entries state `id` gets when it is kept: `(file name, kernel version)` for every
    /// kernel of its tree, whatever the boot configuration (the file name depends only on the
    /// state, the kernel and the OS id of its tree).
    pub(crate) async fn boot_entries_of(
        &self,
        id: u64,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let tree = self.state_tree(id).await?;
        let identity = Identity::of(&tree, &self.store);
        let (kernels, _) = kernels(&tree, &self.store);
        Ok(kernels
            .iter()
            .map(|kernel| {
                let planned = entry(&identity, id, kernel, "");
                (planned.file, kernel.version.clone())
            })
            .collect())
    }

    /// The states that get entries: the active one, then the `keep` most recent others.
    async fn kept_states(&self, config: &BootConfig) -> Result<Vec<u64>, EngineError> {
        let active = self.active_state();
        let mut others: Vec<u64> = self
            .db
            .states()
            .await?
            .into_iter()
            .map(|state| state.id)
            .filter(|id| Some(*id) != active)
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        others.truncate(config.keep);
        Ok(active.into_iter().chain(others).collect())
    }

    /// Whether any kept state has a kernel: looked up in the trees on disk where they are (a
    /// directory listing), in the state's composed tree otherwise, so that installations without
    /// kernels (containers, build roots, tests) pay next to nothing after each change.
    async fn kept_states_have_kernels(&self, config: &BootConfig) -> Result<bool, EngineError> {
        let paths = self.installation.paths();
        let active = self.active_state();
        for id in self.kept_states(config).await? {
            let usr = if Some(id) == active {
                paths.usr()
            } else {
                paths.archive(id).join("usr")
            };
            let found = if crate::installation::read_state_id(&usr) == Some(id) {
                fs::read_dir(usr.join("lib/kernel"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|entry| entry.path().join("vmlinuz").is_file())
            } else {
                let tree = self.state_tree(id).await?;
                !kernels(&tree, &self.store).0.is_empty()
            };
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// What the boot partitions hold and what a sync would write.
    pub async fn boot_status(&self, config: &BootConfig) -> Result<BootStatus, EngineError> {
        let root = self.installation.paths().root.clone();
        let discovered = discover(config, &root);
        let tokens = root_tokens(config, &root);
        let mut status = BootStatus {
            firmware: if config.sysfs.join("firmware/efi").is_dir() {
                "uefi"
            } else {
                "bios"
            },
            bootloader: super::loader_variable(config, "LoaderInfo"),
            esp: None,
            xbootldr: None,
            boot: None,
            root: tokens.as_ref().ok().cloned(),
            entries: Vec::new(),
            error: None,
        };
        let discovered = match discovered {
            Ok(discovered) => discovered,
            Err(error) => {
                status.error = Some(error.to_string());
                return Ok(status);
            }
        };
        status.boot = Some(discovered.boot().to_path_buf());
        let planned = self
            .plan_boot(config, tokens.as_deref().unwrap_or("root=?"))
            .await?;
        let entries_directory = resolve(discovered.boot(), "loader/entries");
        let default = planned.entries.first().map(|entry| entry.file.clone());
        status.entries = planned
            .entries
            .iter()
            .map(|entry| EntryStatus {
                file: entry.file.clone(),
                state: entry.state,
                kernel: entry.kernel.version.clone(),
                default: Some(&entry.file) == default.as_ref(),
                installed: fs::read_to_string(entries_directory.join(&entry.file))
                    .is_ok_and(|text| text == entry.text),
            })
            .collect();
        if let Err(error) = tokens {
            status.error = Some(error.to_string());
        }
        status.esp = Some(discovered.esp);
        status.xbootldr = discovered.xbootldr;
        Ok(status)
    }

    /// Write the entries, kernels and `loader.conf`, and remove what no kept state needs.
    pub async fn sync_boot(&self, config: &BootConfig) -> Result<SyncReport, EngineError> {
        let root = self.installation.paths().root.clone();
        let discovered = discover(config, &root)?;
        let tokens = root_tokens(config, &root)?;
        let planned = self.plan_boot(config, &tokens).await?;
        self.reporter.report(Event::PhaseStarted {
            phase: Phase::Boot,
            total: planned.entries.len() as u64,
        });
        let report = tokio::task::spawn_blocking(move || write(&discovered, &planned))
            .await
            .map_err(|error| EngineError::Other(format!("boot sync was interrupted: {error}")))??;
        self.reporter
            .report(Event::PhaseFinished { phase: Phase::Boot });
        Ok(report)
    }

    /// After a change: sync when any kept state has a kernel, reporting (not failing on) a
    /// problem, since the change itself is done. Silent upstream; a warning here.
    pub(crate) async fn sync_boot_after_change(&self) {
        let root = self.installation.paths().root.clone();
        let result = async {
            let config = BootConfig::load(&root)?;
            if !self.kept_states_have_kernels(&config).await? {
                return Ok(None);
            }
            self.sync_boot(&config).await.map(Some)
        }
        .await;
        if let Err(error) = result {
            self.reporter.report(Event::Warning {
                message: format!(
                    "boot entries were not updated: {error}; fix it and run {}",
                    crate::hint::moss("boot sync")
                ),
            });
        }
    }
}

fn write(discovered: &Discovered, planned: &Planned) -> Result<SyncReport, BootError> {
    let boot = discovered.boot();
    let esp = &discovered.esp.mountpoint;
    for location in [Some(esp.as_path()), Some(boot)].into_iter().flatten() {
        if !location.is_dir() {
            return Err(io("using the boot partition", location)(
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    }
    let identity = &planned.identity;
    let mut report = SyncReport::default();
    let mut written = 0;
    let mut count = |changed: bool| written += usize::from(changed);
    if let Some(bootloader) = &planned.bootloader {
        for target in ["EFI/systemd/systemd-bootx64.efi", "EFI/BOOT/BOOTX64.EFI"] {
            count(copy_if_changed(bootloader, &resolve(esp, target))?);
        }
    }
    let mut directories = BTreeSet::new();
    let entries_directory = resolve(boot, "loader/entries");
    for entry in &planned.entries {
        let directory = resolve(
            boot,
            &format!("EFI/{}/{}", identity.id, entry.kernel.directory),
        );
        if directories.insert(entry.kernel.directory.clone()) {
            count(copy_if_changed(
                &entry.kernel.vmlinuz,
                &directory.join("vmlinuz"),
            )?);
            for (name, source) in &entry.kernel.initrds {
                count(copy_if_changed(source, &directory.join(name))?);
            }
        }
        count(write_if_changed(
            &entries_directory.join(&entry.file),
            entry.text.as_bytes(),
        )?);
        report.entries.push(entry.file.clone());
    }
    // systemd-boot reads loader.conf from the ESP, whatever holds the entries.
    if let Some(first) = planned.entries.first() {
        let loader = resolve(esp, "loader/loader.conf");
        let current = fs::read_to_string(&loader).unwrap_or_default();
        count(write_if_changed(
            &loader,
            loader_conf(&current, &first.file).as_bytes(),
        )?);
        report.default = Some(first.file.clone());
    }
    // Collect on both partitions: entries moss wrote before and kernels no entry uses.
    let kept: BTreeSet<&str> = report.entries.iter().map(String::as_str).collect();
    let mut places = vec![esp.to_path_buf()];
    if boot != esp.as_path() {
        places.push(boot.to_path_buf());
    }
    for place in places {
        let is_boot = place == boot;
        let entries = resolve(&place, "loader/entries");
        for file in fs::read_dir(&entries).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if is_ours(identity, &name) && !(is_boot && kept.contains(name.as_str())) {
                fs::remove_file(file.path()).map_err(io("removing", &file.path()))?;
                report.removed.push(file.path());
            }
        }
        let kernels = resolve(&place, &format!("EFI/{}", identity.id));
        for directory in fs::read_dir(&kernels).into_iter().flatten().flatten() {
            let name = directory.file_name().to_string_lossy().into_owned();
            if directory.path().is_dir() && !(is_boot && directories.contains(&name)) {
                fs::remove_dir_all(directory.path()).map_err(io("removing", &directory.path()))?;
                report.removed.push(directory.path());
            }
        }
    }
    report.removed.sort();
    report.written = written;
    sync(boot);
    sync(esp);
    Ok(report)
}

fn sync(path: &Path) {
    if let Ok(file) = fs::File::open(path) {
        let _ = nix::unistd::syncfs(&file);
    }
}
