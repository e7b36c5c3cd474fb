//! `moss state query ID`: everything about one state (its packages, when and by what kind of
//! change it was made, and the boot entries it gets), answered the same in direct mode and
//! through mossd.

use serde::{Deserialize, Serialize};

use crate::engine::{EngineError, Moss};

/// One state in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDetails {
    /// State id.
    pub id: u64,
    /// Creation time, UTC seconds.
    pub created: i64,
    /// The kind of change that made it (`Install`, `Remove`, `Sync`, ...).
    pub kind: String,
    /// Free text.
    pub description: Option<String>,
    /// Whether it is the active state.
    pub active: bool,
    /// Its packages, by name.
    pub packages: Vec<StatePackage>,
    /// The boot entries a sync writes for it: one per kernel its tree holds.
    pub boot_entries: Vec<StateBootEntry>,
}

/// One package of a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePackage {
    /// Package id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Upstream version.
    pub version: String,
    /// Recipe release.
    pub release: u64,
    /// Build release.
    pub build_release: u64,
    /// Whether the user asked for it.
    pub explicit: bool,
}

/// One boot entry of a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateBootEntry {
    /// File name in `loader/entries`.
    pub file: String,
    /// The kernel version it boots.
    pub kernel: String,
}

impl Moss {
    /// State `id` in full; an unknown id is [`EngineError::UnknownState`].
    pub async fn state_details(&self, id: u64) -> Result<StateDetails, EngineError> {
        let state = self
            .db
            .state(id)
            .await?
            .ok_or(EngineError::UnknownState(id))?;
        let ids: Vec<String> = state
            .selections
            .iter()
            .map(|selection| selection.package.clone())
            .collect();
        let stored = self.db.packages_by_id(&ids).await?;
        let mut packages: Vec<StatePackage> = stored
            .into_iter()
            .map(|package| {
                let explicit = state
                    .selections
                    .iter()
                    .any(|selection| selection.package == package.id && selection.explicit);
                StatePackage {
                    id: package.id,
                    name: package.meta.name,
                    version: package.meta.version,
                    release: package.meta.release,
                    build_release: package.meta.build_release,
                    explicit,
                }
            })
            .collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        let boot_entries = self
            .boot_entries_of(id)
            .await?
            .into_iter()
            .map(|(file, kernel)| StateBootEntry { file, kernel })
            .collect();
        Ok(StateDetails {
            id,
            created: state.created,
            kind: state.summary,
            description: state.description,
            active: self.active_state() == Some(id),
            packages,
            boot_entries,
        })
    }
}
