//! The moss engine. This crate never prints or prompts: it returns typed results and errors
//! that the `moss` CLI and `mossd` render.
//!
//! The store, database, repositories, resolver and transactions arrive with the engine issue;
//! today it holds the layout safety rules and stone extraction.

pub mod extract;
pub mod layout_rules;

pub use stone;
