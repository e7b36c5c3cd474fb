//! Repositories: configuration files, fetching indexes and packages, writing indexes.
