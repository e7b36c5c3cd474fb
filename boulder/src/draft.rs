//! `boulder recipe new`: a draft recipe from a source archive.
//!
//! The archive is fetched into the upstream cache (so the first build does not download it
//! again), hashed, and unpacked into a temporary directory; the build system is detected by
//! scoring well-known files; name and version come from the URL. No network look-ups beyond
//! the download itself.

use std::{collections::BTreeSet, path::Path, process::Command};

use regex::Regex;

use crate::{
    recipe::last_segment,
    upstream::{UpstreamCache, UpstreamError, sha256_file},
};

/// Drafting failed.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// Fetching.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Unpacking or reading.
    #[error("{0}")]
    Io(String),
}

/// A detected build system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// configure/make.
    Autotools,
    /// Cargo.
    Cargo,
    /// CMake.
    Cmake,
    /// Meson.
    Meson,
    /// PEP 517 python.
    Pep517,
    /// setup.py.
    Setuptools,
    /// Makefile.PL.
    Perl,
    /// A plain Makefile and nothing else.
    Make,
}

impl std::fmt::Display for System {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            System::Autotools => "autotools",
            System::Cargo => "cargo",
            System::Cmake => "cmake",
            System::Meson => "meson",
            System::Pep517 => "pep517",
            System::Setuptools => "setuptools",
            System::Perl => "perl",
            System::Make => "make",
        })
    }
}

/// The draft.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Detected name.
    pub name: String,
    /// Detected version.
    pub version: String,
    /// SHA-256 of the archive.
    pub hash: String,
    /// Build system.
    pub system: System,
    /// Build dependencies found by scanning.
    pub builddeps: BTreeSet<String>,
    /// The `stone.yaml` text.
    pub text: String,
}

/// Name and version from an archive URL: GitHub tag/release archives, else `name-version.ext`.
pub fn name_and_version(url: &str) -> (String, String) {
    let github = Regex::new(r"^https://github\.com/([^/]+)/([^/]+)/(?:archive/refs/tags/|releases/download/)v?([0-9][^/]*?)(?:/.*|\.tar\..*|\.zip|\.tgz)$")
        .expect("valid regex");
    if let Some(captures) = github.captures(url) {
        return (captures[2].to_lowercase(), captures[3].to_owned());
    }
    let gitlab =
        Regex::new(r"^https://[^/]*gitlab[^/]*/(?:[^/]+/)*([^/]+)/-/archive/v?([0-9][^/]*)/[^/]+$")
            .expect("valid regex");
    if let Some(captures) = gitlab.captures(url) {
        return (captures[1].to_lowercase(), captures[2].to_owned());
    }
    // PyPI source distributions: the package is `python-<name>`.
    let pypi = Regex::new(r"^https://files\.pythonhosted\.org/packages/.*/([A-Za-z0-9_.-]+?)-([0-9][A-Za-z0-9.]*)\.(?:tar\.gz|zip)$")
        .expect("valid regex");
    if let Some(captures) = pypi.captures(url) {
        let name = captures[1].to_lowercase().replace('_', "-");
        let name = if name.starts_with("python-") {
            name
        } else {
            format!("python-{name}")
        };
        return (name, captures[2].to_owned());
    }
    let basic = Regex::new(
        r"^([A-Za-z0-9_+-]+?)-v?([0-9][A-Za-z0-9._+-]*?)\.(tar\.[a-z0-9]+|tgz|tbz2|txz|zip|tar)$",
    )
    .expect("valid regex");
    let file = last_segment(url);
    match basic.captures(&file) {
        Some(captures) => (captures[1].to_lowercase(), captures[2].to_owned()),
        None => (
            file.split('.').next().unwrap_or("unknown").to_lowercase(),
            "UPDATE VERSION".to_owned(),
        ),
    }
}

/// Score the build systems over an unpacked tree; depth 0 is the top-level archive directory.
pub fn detect(tree: &Path) -> (System, BTreeSet<String>) {
    let mut scores = [0i32; 8];
    let order = [
        System::Autotools,
        System::Cargo,
        System::Cmake,
        System::Meson,
        System::Pep517,
        System::Setuptools,
        System::Perl,
        System::Make,
    ];
    let mut deps = BTreeSet::new();
    let pkg_check = Regex::new(r"PKG_CHECK_MODULES\(\s*\[?\w+\]?\s*,\s*\[?([A-Za-z0-9_.+-]+)")
        .expect("valid regex");
    let find_package = Regex::new(r"find_package\(\s*([A-Za-z0-9_]+)").expect("valid regex");
    let dependency = Regex::new(r"dependency\(\s*'([^']+)'").expect("valid regex");
    let mut pending = vec![(tree.to_path_buf(), -1i32)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if depth < 4 && name != ".git" {
                    pending.push((path, depth + 1));
                }
                continue;
            }
            let top = depth <= 0;
            let text = || std::fs::read_to_string(&path).unwrap_or_default();
            match name.as_str() {
                "configure.ac" if top => {
                    scores[0] += 10;
                    deps.extend(
                        pkg_check
                            .captures_iter(&text())
                            .map(|c| format!("pkgconfig({})", &c[1])),
                    );
                }
                "configure" | "Makefile.am" if top => scores[0] += 10,
                "Makefile" if top => {
                    scores[0] += 10;
                    scores[7] += 15;
                }
                "Cargo.toml" => scores[1] += 100,
                "CMakeLists.txt" if top => {
                    scores[2] += 20;
                    deps.extend(
                        find_package
                            .captures_iter(&text())
                            .map(|c| format!("cmake({})", &c[1])),
                    );
                }
                "meson.build" if top => {
                    scores[3] += 100;
                    deps.extend(
                        dependency
                            .captures_iter(&text())
                            .map(|c| format!("pkgconfig({})", &c[1])),
                    );
                }
                "meson_options.txt" => scores[3] += 100,
                "pyproject.toml" | "setup.cfg" => scores[4] += 100,
                "setup.py" => scores[5] += 100,
                "Makefile.PL" => scores[6] += 100,
                _ => {}
            }
        }
    }
    // A bare Makefile without configure is plain make; otherwise the highest score wins, ties to
    // the later system.
    if scores[0] == 10 && scores[7] == 15 {
        scores[0] = 0;
    } else {
        scores[7] = 0;
    }
    let mut best = (System::Autotools, 0);
    for (system, score) in order.iter().zip(scores) {
        if score >= best.1 && score > 0 {
            best = (*system, score);
        }
    }
    (best.0, deps)
}

/// Fetch, hash, unpack and detect; returns the draft.
pub fn draft(source: &str, cache_dir: &Path) -> Result<Draft, DraftError> {
    let url = if source.contains("://") {
        source.to_owned()
    } else {
        let path = std::fs::canonicalize(source)
            .map_err(|error| DraftError::Io(format!("{source}: {error}")))?;
        url::Url::from_file_path(&path)
            .map_err(|()| DraftError::Io(format!("{source}: not an absolute path")))?
            .to_string()
    };
    let scratch = tempfile::tempdir().map_err(|error| DraftError::Io(error.to_string()))?;
    let archive = scratch.path().join(last_segment(&url));
    let hash = if let Ok(path) = url::Url::parse(&url)
        .and_then(|u| u.to_file_path().map_err(|()| url::ParseError::EmptyHost))
    {
        std::fs::copy(&path, &archive)
            .map_err(|error| DraftError::Io(format!("{}: {error}", path.display())))?;
        sha256_file(&archive).map_err(|error| DraftError::Io(error.to_string()))?
    } else {
        // Stored in the upstream cache under its real hash, so the first build reuses it.
        let (stored, hash) = UpstreamCache::new(cache_dir).fetch_new(&url, scratch.path())?;
        std::fs::copy(&stored, &archive)
            .map_err(|error| DraftError::Io(format!("{}: {error}", stored.display())))?;
        hash
    };
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(&tree).map_err(|error| DraftError::Io(error.to_string()))?;
    let status = Command::new("tar")
        .arg("xf")
        .arg(&archive)
        .arg("-C")
        .arg(&tree)
        .status()
        .map_err(|error| DraftError::Io(format!("running tar: {error}")))?;
    if !status.success() {
        return Err(DraftError::Io(format!(
            "cannot unpack {}",
            archive.display()
        )));
    }
    let (system, builddeps) = detect(&tree);
    let (name, version) = name_and_version(&url);
    let homepage = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(head, _)| head)
        .to_owned();
    let text = render(&name, &version, &homepage, &url, &hash, system, &builddeps);
    Ok(Draft {
        name,
        version,
        hash,
        system,
        builddeps,
        text,
    })
}

fn render(
    name: &str,
    version: &str,
    homepage: &str,
    url: &str,
    hash: &str,
    system: System,
    builddeps: &BTreeSet<String>,
) -> String {
    let (setup, build, install, extra) = match system {
        System::Autotools => ("%configure", "%make", "%make_install", ""),
        System::Make => ("", "%make", "%make_install PREFIX=%(prefix)", ""),
        System::Cargo => (
            "%cargo_fetch",
            "%cargo_build",
            "%cargo_install",
            "networking  : true\n",
        ),
        System::Cmake => ("%cmake", "%cmake_build", "%cmake_install", ""),
        System::Meson => ("%meson", "%meson_build", "%meson_install", ""),
        System::Pep517 => ("", "%pyproject_build", "%pyproject_install", ""),
        System::Setuptools => ("%python_setup", "", "%python_install", ""),
        System::Perl => ("%perl_setup", "%make", "%make_install", ""),
    };
    let mut text = format!(
        "#\n# SPDX-FileCopyrightText: © {} Serpent OS Developers\n#\n# SPDX-License-Identifier: MPL-2.0\n#\n\
         name        : {name}\nversion     : '{version}'\nrelease     : 1\nhomepage    : {homepage}\n\
         upstreams   :\n    - {url} : {hash}\nsummary     : UPDATE SUMMARY\ndescription : |\n    UPDATE DESCRIPTION\n\
         license     : UPDATE LICENSE\n{extra}",
        2026
    );
    if !builddeps.is_empty() {
        text.push_str("builddeps   :\n");
        for dep in builddeps {
            text.push_str(&format!("    - {dep}\n"));
        }
    }
    for (key, value) in [("setup", setup), ("build", build), ("install", install)] {
        if !value.is_empty() {
            text.push_str(&format!("{key:<12}: |\n    {value}\n"));
        }
    }
    text
}
