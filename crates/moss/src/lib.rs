//! The moss engine. This crate never prints or prompts: it returns typed results and errors,
//! and reports progress through [`events::Reporter`], which the `moss` CLI and `mossd` render.

pub mod events;
pub mod extract;
pub mod layout_rules;
pub mod repository;
pub mod resolve;

pub use stone;
