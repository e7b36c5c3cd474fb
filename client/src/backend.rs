//! Where commands go: the engine opened in this process (direct mode, `-D ROOT`) or `mossd`
//! over D-Bus (the default). Both answer with the engine's types, so every command renders the
//! same way in both modes.

use moss::{
    Moss,
    operations::Plan,
    queries::{FileHit, PackageDetails, PackageSummary, StateSummary},
    requests::{Change, Outcome},
    state::Issue,
    state_query::StateDetails,
};
use moss_proto::wire::Repository;

use crate::remote::Daemon;

/// The installation a command works on.
#[derive(Debug)]
pub enum Backend<'a> {
    /// Opened in this process.
    Direct(&'a Moss),
    /// Served by mossd.
    Daemon(Daemon),
}

impl Backend<'_> {
    /// Installed packages.
    pub async fn installed(&self, explicit_only: bool) -> anyhow::Result<Vec<PackageSummary>> {
        Ok(match self {
            Self::Direct(moss) => moss.list_installed(explicit_only).await?,
            Self::Daemon(daemon) => convert(daemon.manager.list_installed(explicit_only).await)?,
        })
    }

    /// Available packages.
    pub async fn available(&self) -> anyhow::Result<Vec<PackageSummary>> {
        Ok(match self {
            Self::Direct(moss) => moss.list_available().await?,
            Self::Daemon(daemon) => convert(daemon.manager.list_available().await)?,
        })
    }

    /// Package details.
    pub async fn details(
        &self,
        requests: &[String],
        files: bool,
    ) -> anyhow::Result<Vec<PackageDetails>> {
        match self {
            Self::Direct(moss) => Ok(moss.package_details(requests, files).await?),
            Self::Daemon(daemon) => {
                let requests: Vec<&str> = requests.iter().map(String::as_str).collect();
                let details = daemon
                    .manager
                    .info(&requests, files)
                    .await
                    .map_err(crate::remote::error)?;
                details
                    .into_iter()
                    .map(|details| PackageDetails::try_from(details).map_err(Into::into))
                    .collect()
            }
        }
    }

    /// Search names and summaries.
    pub async fn search(
        &self,
        keyword: &str,
        installed_only: bool,
    ) -> anyhow::Result<Vec<PackageSummary>> {
        Ok(match self {
            Self::Direct(moss) => moss.search(keyword, installed_only).await?,
            Self::Daemon(daemon) => convert(daemon.manager.search(keyword, installed_only).await)?,
        })
    }

    /// Search file paths.
    pub async fn search_file(&self, needle: &str) -> anyhow::Result<Vec<FileHit>> {
        Ok(match self {
            Self::Direct(moss) => moss.search_file(needle).await?,
            Self::Daemon(daemon) => convert(daemon.manager.search_file(needle).await)?,
        })
    }

    /// States, newest first.
    pub async fn states(&self) -> anyhow::Result<Vec<StateSummary>> {
        Ok(match self {
            Self::Direct(moss) => moss.list_states().await?,
            Self::Daemon(daemon) => convert(daemon.manager.list_states().await)?,
        })
    }

    /// One state in full.
    pub async fn state_details(&self, id: u64) -> anyhow::Result<StateDetails> {
        Ok(match self {
            Self::Direct(moss) => moss.state_details(id).await?,
            Self::Daemon(daemon) => {
                let text = daemon
                    .manager
                    .state_query(id)
                    .await
                    .map_err(crate::remote::error)?;
                serde_json::from_str(&text)?
            }
        })
    }

    /// The system model a state recorded (`None`: the active state).
    pub async fn state_model(&self, id: Option<u64>) -> anyhow::Result<String> {
        Ok(match self {
            Self::Direct(moss) => moss.state_model(id).await?,
            Self::Daemon(daemon) => daemon
                .manager
                .state_export(id.unwrap_or(0))
                .await
                .map_err(crate::remote::error)?,
        })
    }

    /// Configured repositories.
    pub async fn repositories(&self) -> anyhow::Result<Vec<Repository>> {
        Ok(match self {
            Self::Direct(moss) => moss.repositories()?.iter().map(Repository::from).collect(),
            Self::Daemon(daemon) => daemon
                .manager
                .list_repositories()
                .await
                .map_err(crate::remote::error)?,
        })
    }

    /// Problems in the store and trees.
    pub async fn verify(&self) -> anyhow::Result<Vec<Issue>> {
        Ok(match self {
            Self::Direct(moss) => moss.verify().await?,
            Self::Daemon(daemon) => daemon
                .manager
                .verify()
                .await
                .map_err(crate::remote::error)?
                .into_iter()
                .map(|problem| Issue {
                    state: (problem.state != 0).then_some(problem.state),
                    path: problem.path,
                    problem: problem.problem,
                    digest: None,
                    system: false,
                })
                .collect(),
        })
    }

    /// The plan of an install, remove or sync.
    pub async fn plan(&self, change: &Change) -> anyhow::Result<Plan> {
        match self {
            Self::Direct(moss) => Ok(moss.plan_change(change).await?.unwrap_or_default()),
            Self::Daemon(daemon) => daemon.plan(change).await,
        }
    }

    /// Carry out a change.
    pub async fn perform(&self, change: Change) -> anyhow::Result<Outcome> {
        self.perform_with(change, false).await
    }

    /// Carry out a change; `force` lets it lose what recovery needs (`--force`).
    pub async fn perform_with(&self, change: Change, force: bool) -> anyhow::Result<Outcome> {
        match self {
            Self::Direct(moss) => {
                moss.set_force(force);
                let outcome = moss.perform(&change).await;
                moss.set_force(false);
                Ok(outcome?)
            }
            Self::Daemon(daemon) => daemon.perform_with(change, force).await,
        }
    }
}

fn convert<Wire, Engine: From<Wire>>(
    result: zbus::Result<Vec<Wire>>,
) -> anyhow::Result<Vec<Engine>> {
    Ok(result
        .map_err(crate::remote::error)?
        .into_iter()
        .map(Engine::from)
        .collect())
}
