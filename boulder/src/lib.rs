//! boulder: builds stone packages from `stone.yaml` recipes.
//!
//! The pipeline: [`recipe`] parses a recipe; [`macros`] and [`script`] expand its phases for each
//! target with flags from [`tuning`]; [`upstream`] fetches and verifies sources; [`root`] composes
//! the build root; [`container`] runs the phases in namespaces; [`collect`] walks the install tree
//! and splits it into packages, [`analysis`] derives providers and dependencies, and [`emit`]
//! writes the `.stone` files and manifests. [`build`] drives it all. [`deb`] converts Debian
//! packages into stones (the VM test's system).

pub mod analysis;
pub mod build;
pub mod cache;
pub mod chroot;
pub mod collect;
pub mod compress;
pub mod container;
pub mod deb;
pub mod draft;
pub mod emit;
pub mod macros;
pub mod phases;
pub mod profile;
pub mod recipe;
pub mod recipe_check;
pub mod recipe_edit;
pub mod root;
pub mod root_daemon;
pub mod script;
pub mod tuning;
pub mod upstream;
pub mod yaml;
