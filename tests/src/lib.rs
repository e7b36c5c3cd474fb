//! Shared helpers for the end-to-end tests in `tests/tests/`.

pub mod bus;
pub mod daemon_support;
pub mod display;

use std::path::PathBuf;

/// The `shared/` directory beside the project checkout, which holds fixtures and generators.
pub fn shared_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [manifest.join("../../shared"), manifest.join("../shared")];
    candidates
        .iter()
        .find(|candidate| candidate.join("fixtures").is_dir())
        .cloned()
        .unwrap_or_else(|| candidates[0].clone())
}
