//! boulder: builds stone packages from `stone.yaml` recipes.
//!
//! The pipeline: [`recipe`] parses a recipe; [`macros`] and [`script`] expand its phases for each
//! target with flags from [`tuning`]; [`upstream`] fetches and verifies sources; [`root`] composes
//! the build root; [`container`] runs the phases in namespaces; [`collect`] walks the install tree
//! and splits it into packages, [`analysis`] derives providers and dependencies, and [`emit`]
//! writes the `.stone` files and manifests. [`build`] drives it all.

pub mod recipe;
pub mod macros;
pub mod script;
pub mod tuning;
pub mod yaml;
pub mod collect;
pub mod analysis;
pub mod container;
pub mod emit;
pub mod root;
pub mod upstream;
pub mod build;
pub mod draft;
pub mod phases;
pub mod recipe_check;
