//! Dependency resolution on resolvo.
