//! The moss engine. This crate never prints or prompts: it returns typed results and errors,
//! and reports progress through [`events::Reporter`], which the `moss` CLI and `mossd` render.

pub mod blit;
pub mod boot;
mod build_root;
pub mod cancel;
pub mod catalogue;
pub mod db;
pub mod engine;
pub mod error_kind;
/// Progress events; they live in `moss-types` so that clients read them without the engine.
pub use moss_types::events;
pub mod extract;
pub mod failpoint;
pub mod hint;
mod incremental;
pub mod installation;
pub mod installer;
pub mod journal;
pub mod layout_rules;
pub mod model;
pub mod operations;
pub mod package_fetch;
pub mod queries;
pub mod recovery_guard;
pub mod repositories;
pub mod repository;
pub mod requests;
pub mod resolve;
pub mod state;
pub mod state_query;
pub mod store;
mod system_model;
pub mod transaction;
pub mod triggers;
pub mod vfs;

pub use engine::{EngineError, Moss};
pub use error_kind::ErrorKind;
pub use stone;
