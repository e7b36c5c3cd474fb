//! `boulder recipe check`: everything that can be verified without building.

use crate::{
    build::HOST_ARCH,
    macros::Macros,
    phases::{self, BuildContext, PhaseError},
    recipe::Recipe,
};

/// A recipe that parses but cannot build.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Phases, tuning or macros.
    #[error(transparent)]
    Phase(#[from] PhaseError),
    /// A regex in `rundeps-exclude` or `provides-exclude` is invalid.
    #[error("package `{package}`: invalid regex `{pattern}`: {message}")]
    Regex {
        /// Package entry.
        package: String,
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
    /// Nothing to build on this host.
    #[error("the recipe builds for no target of this {HOST_ARCH} host")]
    NoTargets,
}

/// Expand every phase of every target and job, resolve tuning, and compile the regexes.
pub fn check(recipe: &Recipe, macros: &Macros) -> Result<(), CheckError> {
    let targets = recipe.targets(HOST_ARCH);
    if targets.is_empty() {
        return Err(CheckError::NoTargets);
    }
    let context = BuildContext {
        jobs: 1,
        source_date_epoch: 0,
    };
    for target in &targets {
        phases::jobs(macros, recipe, target, &context)?;
    }
    let entries = std::iter::once(("%(name)", &recipe.package)).chain(
        recipe
            .packages
            .iter()
            .map(|(name, package)| (name.as_str(), package)),
    );
    for (name, package) in entries {
        for pattern in package
            .rundeps_exclude
            .iter()
            .chain(&package.provides_exclude)
        {
            regex::Regex::new(pattern).map_err(|error| CheckError::Regex {
                package: name.to_owned(),
                pattern: pattern.clone(),
                message: error.to_string(),
            })?;
        }
    }
    Ok(())
}
