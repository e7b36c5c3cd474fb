//! Fetching and verifying sources, with a cache keyed by URL and hash.
//!
//! Plain files live at `<cache>/fetched/<k[0..5]>/<k[-5..]>/<k>` where `k` is the SHA-256 of
//! the URL followed by the expected hash, so a changed hash for the same URL is a new entry. A
//! cached file is re-hashed before use; a mismatch means it is fetched again. Git upstreams are
//! bare mirrors under `<cache>/git/`.
//!
//! Besides `http(s)://` and `file:///abs/path`, a `file:relative/path` URL (no slashes after the
//! colon) names a file relative to the recipe's directory, so a recipe can ship its own
//! source archive.

use std::{
    fs::File,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};

use crate::recipe::Upstream;

/// Fetching failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The content does not have the recipe's hash.
    #[error("hash mismatch for {url}: expected {expected}, got {actual}")]
    HashMismatch {
        /// The URL.
        url: String,
        /// Recipe hash.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// Downloading failed.
    #[error("downloading {url}: {message}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A git command failed.
    #[error("git {action} for {url} failed: {message}")]
    Git {
        /// What git was doing.
        action: String,
        /// The repository.
        url: String,
        /// Its stderr.
        message: String,
    },
    /// Local I/O.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> UpstreamError {
    let path = path.to_path_buf();
    move |source| UpstreamError::Io {
        context,
        path,
        source,
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// The upstream cache.
#[derive(Debug, Clone)]
pub struct UpstreamCache {
    root: PathBuf,
}

impl UpstreamCache {
    /// A cache rooted at `root` (created on demand).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where a plain upstream is stored.
    pub fn plain_path(&self, url: &str, hash: &str) -> PathBuf {
        let key = hex(&Sha256::new()
            .chain_update(url)
            .chain_update(hash)
            .finalize());
        self.root
            .join("fetched")
            .join(&key[..5])
            .join(&key[key.len() - 5..])
            .join(&key)
    }

    /// Where a git mirror is stored: `<host>_<path with '/' as '.'>`.
    pub fn git_path(&self, url: &str) -> PathBuf {
        let parsed = url::Url::parse(url).ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let path = parsed
            .as_ref()
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|| url.to_owned());
        let name = format!("{host}_{}", path.trim_matches('/').replace('/', "."));
        self.root.join("git").join(name)
    }

    /// Fetch (or reuse) an upstream and place it in `sourcedir` under its file name. Returns
    /// the resolved identity: the hash for plain files, the commit id for git.
    pub fn fetch(
        &self,
        upstream: &Upstream,
        recipe_dir: &Path,
        sourcedir: &Path,
    ) -> Result<String, UpstreamError> {
        std::fs::create_dir_all(sourcedir).map_err(io("creating", sourcedir))?;
        match upstream {
            Upstream::Plain { url, hash, .. } => {
                let stored = self.plain_path(url, hash);
                let cached = stored.exists()
                    && sha256_file(&stored).map_err(io("hashing", &stored))? == *hash;
                if !cached {
                    self.download(url, Some(hash.as_str()), recipe_dir, &stored)?;
                }
                let placed = sourcedir.join(upstream.file_name());
                let _ = std::fs::remove_file(&placed);
                if std::fs::hard_link(&stored, &placed).is_err() {
                    std::fs::copy(&stored, &placed).map_err(io("copying to", &placed))?;
                }
                Ok(hash.clone())
            }
            Upstream::Git { url, git_ref, .. } => {
                let mirror = self.git_path(url);
                let commit = self.mirror(url, git_ref, &mirror)?;
                let checkout = sourcedir.join(upstream.file_name());
                if checkout.exists() {
                    std::fs::remove_dir_all(&checkout).map_err(io("removing", &checkout))?;
                }
                git(
                    url,
                    "clone",
                    Command::new("git")
                        .arg("clone")
                        .arg("--quiet")
                        .arg(&mirror)
                        .arg(&checkout),
                )?;
                git(
                    url,
                    "checkout",
                    Command::new("git")
                        .arg("-C")
                        .arg(&checkout)
                        .args(["checkout", "--quiet", &commit]),
                )?;
                Ok(commit)
            }
        }
    }

    /// Download a file whose hash is not known yet (drafting a recipe): store it under the key of
    /// the hash it turns out to have. Returns the stored path and the hash.
    pub fn fetch_new(
        &self,
        url: &str,
        recipe_dir: &Path,
    ) -> Result<(PathBuf, String), UpstreamError> {
        let staging = self.root.join("fetched").join("new");
        match self.download(url, None, recipe_dir, &staging) {
            Ok(()) | Err(UpstreamError::HashMismatch { .. }) => {}
            Err(other) => return Err(other),
        }
        let partial = staging.with_extension("partial");
        let hash = sha256_file(&partial).map_err(io("hashing", &partial))?;
        let stored = self.plain_path(url, &hash);
        if let Some(parent) = stored.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        std::fs::rename(&partial, &stored).map_err(io("storing", &stored))?;
        Ok((stored, hash))
    }

    fn download(
        &self,
        url: &str,
        expected: Option<&str>,
        recipe_dir: &Path,
        stored: &Path,
    ) -> Result<(), UpstreamError> {
        let parent = stored.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        let partial = stored.with_extension("partial");
        let mut file = File::create(&partial).map_err(io("creating", &partial))?;
        let mut hasher = Sha256::new();
        if let Some(rest) = url.strip_prefix("file:") {
            let source = if rest.starts_with('/') {
                url::Url::parse(url)
                    .ok()
                    .and_then(|parsed| parsed.to_file_path().ok())
                    .unwrap_or_else(|| PathBuf::from(rest))
            } else {
                recipe_dir.join(rest)
            };
            let mut input = File::open(&source).map_err(io("opening", &source))?;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = input.read(&mut buffer).map_err(io("reading", &source))?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
                file.write_all(&buffer[..read])
                    .map_err(io("writing", &partial))?;
            }
        } else {
            http_download(url, &mut file, &mut hasher)?;
        }
        file.sync_all().map_err(io("writing", &partial))?;
        let actual = hex(&hasher.finalize());
        let Some(expected) = expected else {
            // The caller takes the partial file and names it by its hash.
            return Err(UpstreamError::HashMismatch {
                url: url.to_owned(),
                expected: String::new(),
                actual,
            });
        };
        if actual != expected {
            let _ = std::fs::remove_file(&partial);
            return Err(UpstreamError::HashMismatch {
                url: url.to_owned(),
                expected: expected.to_owned(),
                actual,
            });
        }
        std::fs::rename(&partial, stored).map_err(io("storing", stored))
    }

    /// Make sure the mirror has the ref; returns the commit id.
    fn mirror(&self, url: &str, git_ref: &str, mirror: &Path) -> Result<String, UpstreamError> {
        let is_bare = mirror.join("HEAD").exists() && mirror.join("objects").exists();
        if mirror.exists() && !is_bare {
            std::fs::remove_dir_all(mirror).map_err(io("removing", mirror))?;
        }
        if !mirror.exists() {
            if let Some(parent) = mirror.parent() {
                std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
            }
            git(
                url,
                "clone --mirror",
                Command::new("git")
                    .args(["clone", "--quiet", "--mirror", url])
                    .arg(mirror),
            )?;
        }
        let object = format!("{git_ref}^{{commit}}");
        let resolve = || {
            Command::new("git")
                .arg("-C")
                .arg(mirror)
                .args(["rev-parse", "--verify", "--quiet", &object])
                .output()
        };
        let mut output = resolve().map_err(io("running git in", mirror))?;
        if !output.status.success() {
            git(
                url,
                "fetch",
                Command::new("git")
                    .arg("-C")
                    .arg(mirror)
                    .args(["fetch", "--quiet", "origin"]),
            )?;
            output = resolve().map_err(io("running git in", mirror))?;
        }
        if !output.status.success() {
            return Err(UpstreamError::Git {
                action: format!("rev-parse {git_ref}"),
                url: url.to_owned(),
                message: "the ref does not exist".to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

fn git(url: &str, action: &str, command: &mut Command) -> Result<(), UpstreamError> {
    let output = command.output().map_err(|error| UpstreamError::Git {
        action: action.to_owned(),
        url: url.to_owned(),
        message: error.to_string(),
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(UpstreamError::Git {
            action: action.to_owned(),
            url: url.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn http_download(url: &str, file: &mut File, hasher: &mut Sha256) -> Result<(), UpstreamError> {
    let error = |message: String| UpstreamError::Download {
        url: url.to_owned(),
        message,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| error(e.to_string()))?;
    runtime.block_on(async {
        use futures_util::StreamExt;
        let response = reqwest::get(url).await.map_err(|e| error(e.to_string()))?;
        let response = response
            .error_for_status()
            .map_err(|e| error(e.to_string()))?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| error(e.to_string()))?;
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(|e| error(e.to_string()))?;
        }
        Ok(())
    })
}

/// Rewrite git refs in recipe text to the commits they resolved to, keeping the rest of the
/// text as it is: `git|URL : v1.0` becomes `git|URL : <commit> # v1.0`, and in the map form
/// the `ref:` line changes the same way. `pins` holds (URL, ref as written, commit).
pub fn pin_git_refs(text: &str, pins: &[(String, String, String)]) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    for (url, old_ref, commit) in pins {
        let marker = format!("git|{url}");
        let Some(index) = lines.iter().position(|line| line.contains(&marker)) else {
            continue;
        };
        let pinned = format!("{commit} # {old_ref}");
        let line = &lines[index];
        let after = &line[line.find(&marker).unwrap_or(0) + marker.len()..];
        let value = after
            .split_once(':')
            .map(|(_, value)| value.trim())
            .unwrap_or_default();
        if !value.is_empty() {
            let start = line.len() - after.len() + after.find(':').unwrap_or(0) + 1;
            let newline = if line.ends_with('\n') { "\n" } else { "" };
            lines[index] = format!("{} {pinned}{newline}", &line[..start]);
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        for next in lines.iter_mut().skip(index + 1) {
            let next_indent = next.len() - next.trim_start().len();
            if !next.trim().is_empty() && next_indent <= indent {
                break;
            }
            if let Some(rest) = next.trim_start().strip_prefix("ref")
                && let Some(colon) = rest.find(':')
                && rest[..colon].trim().is_empty()
            {
                let start = next.len() - rest.len() + colon + 1;
                let newline = if next.ends_with('\n') { "\n" } else { "" };
                *next = format!("{} {pinned}{newline}", &next[..start]);
                break;
            }
        }
    }
    lines.concat()
}
