//! Self-contained recovery: moss must be able to repair the system it runs on. A new state
//! that loses `/usr/bin/moss`, the C library or the only kernel of the active state leaves a
//! system that cannot list its states or roll back (or boot), so such a transaction is refused
//! unless forced; forced, it goes ahead with a warning naming what goes. With a static
//! `/usr/bin/moss` (see the README), even a system without a C library can still roll back.

use std::{
    collections::HashSet,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::{
    db::Selection,
    engine::{EngineError, Moss},
    events::Event,
};

/// The moss binary, relative to `/usr`.
const MOSS: &str = "bin/moss";
/// The C library and its loader, relative to `/usr`.
const C_LIBRARY: [&str; 3] = [
    "lib/libc.so.6",
    "lib64/libc.so.6",
    "lib/ld-linux-x86-64.so.2",
];

/// A change refused because the new state could not recover itself.
#[derive(Debug, thiserror::Error)]
#[error(
    "the new state would lack {}, which the active state has: without them this system cannot run moss to list its states or roll back; keep them installed, or pass --force to go ahead anyway",
    .missing.join(", ")
)]
pub struct UnrecoverableError {
    /// What would go, described for people (`/usr/bin/moss`, `the C library (...)`).
    pub missing: Vec<String>,
}

/// Whether the next changes may lose what recovery needs (`--force`).
#[derive(Debug, Default)]
pub struct Force(AtomicBool);

impl Moss {
    /// Let the following changes lose `/usr/bin/moss`, the C library or the kernel (with a
    /// warning naming them) until set back; mossd sets it for one forced transaction.
    pub fn set_force(&self, force: bool) {
        self.force.0.store(force, Ordering::SeqCst);
    }

    /// Refuse a new state with these selections when it loses what recovery needs, unless
    /// forced (then warn).
    pub(crate) async fn check_recoverable(
        &self,
        selections: &[Selection],
    ) -> Result<(), EngineError> {
        let missing = self.missing_essentials(selections).await?;
        if missing.is_empty() {
            return Ok(());
        }
        if self.force.0.load(Ordering::SeqCst) {
            self.reporter.report(Event::Warning {
                message: format!(
                    "forced: the new state lacks {}; roll back with a static moss ({})",
                    missing.join(", "),
                    crate::hint::moss("state activate ID")
                ),
            });
            return Ok(());
        }
        Err(UnrecoverableError { missing }.into())
    }

    /// What the active state has and a state of `selections` would not: decided from the
    /// layouts of the packages that go and come (their contents never change under one id),
    /// so the common change costs a few layout reads, not a composed tree.
    async fn missing_essentials(
        &self,
        selections: &[Selection],
    ) -> Result<Vec<String>, EngineError> {
        let Some(active) = self.active_state() else {
            return Ok(Vec::new());
        };
        let Some(state) = self.db.state(active).await? else {
            return Ok(Vec::new());
        };
        let old: HashSet<&str> = ids(&state.selections);
        let new: HashSet<&str> = ids(selections);
        let removed: Vec<String> = old.difference(&new).map(|id| (*id).to_owned()).collect();
        if removed.is_empty() {
            return Ok(Vec::new());
        }
        let added: Vec<String> = new.difference(&old).map(|id| (*id).to_owned()).collect();
        let gone = self.paths_of(&removed).await?;
        let mut essentials: Vec<&str> = vec![MOSS];
        essentials.extend(C_LIBRARY);
        let mut at_risk: Vec<&str> = essentials
            .into_iter()
            .filter(|path| gone.contains(*path))
            .collect();
        let kernel_gone = gone.iter().any(|path| is_kernel(path));
        if at_risk.is_empty() && !kernel_gone {
            return Ok(Vec::new());
        }
        // Still there when an added or kept package ships it too.
        let kept: Vec<String> = old.intersection(&new).map(|id| (*id).to_owned()).collect();
        let mut present = self.paths_of(&added).await?;
        present.extend(self.paths_of(&kept).await?);
        at_risk.retain(|path| !present.contains(*path));
        let mut missing: Vec<String> = at_risk
            .into_iter()
            .map(|path| {
                if path == MOSS {
                    "/usr/bin/moss".to_owned()
                } else {
                    format!("the C library (/usr/{path})")
                }
            })
            .collect();
        if kernel_gone && !present.iter().any(|path| is_kernel(path)) {
            let mut versions: Vec<&str> = gone
                .iter()
                .filter(|path| is_kernel(path))
                .filter_map(|path| path.split('/').nth(2))
                .collect();
            versions.sort_unstable();
            missing.push(format!(
                "the kernel the active state boots ({})",
                versions.join(", ")
            ));
        }
        Ok(missing)
    }

    async fn paths_of(&self, ids: &[String]) -> Result<HashSet<String>, EngineError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        Ok(self
            .db
            .layouts(ids)
            .await?
            .into_iter()
            .flat_map(|(_, layouts)| layouts)
            .filter_map(|layout| layout.entry.target().map(str::to_owned))
            .collect())
    }
}

fn ids(selections: &[Selection]) -> HashSet<&str> {
    selections
        .iter()
        .map(|selection| selection.package.as_str())
        .collect()
}

/// `lib/kernel/<version>/vmlinuz`.
fn is_kernel(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["lib", "kernel", _, "vmlinuz"])
}
