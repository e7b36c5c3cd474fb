//! Downloaded packages as PackageKit clients receive them: under their own file names (the last
//! component of the repository's URL, as in the index), in a directory the client can read, so
//! that `pkcon download DIR` copies `nano-8.0-1-1-x86_64.stone`, not a file named by its hash.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// How long published files stay for the client to copy.
const KEEP: Duration = Duration::from_secs(600);

static NEXT: AtomicU64 = AtomicU64::new(1);

/// Link (or copy) each downloaded file to its package file name in a fresh directory under
/// `ROOT/.moss/daemon/v1/downloads`, and return the paths to report. A file that cannot be
/// published is reported from the cache as it is.
pub async fn publish(
    moss: &moss::Moss,
    root: &Path,
    ids: &[String],
    files: &[String],
) -> Vec<String> {
    let available = moss.available().await.unwrap_or_default();
    let directory = root.join(".moss/daemon/v1/downloads").join(format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let created = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&directory)
        .and_then(|()| fs::set_permissions(&directory, fs::Permissions::from_mode(0o755)));
    let mut published = Vec::new();
    for (id, file) in ids.iter().zip(files) {
        let name = available
            .iter()
            .find(|package| package.meta.hash.as_deref() == Some(id.as_str()))
            .and_then(|package| file_name(&package.url));
        let target = match (&created, name) {
            (Ok(()), Some(name)) => {
                let target = directory.join(name);
                let linked = fs::hard_link(file, &target)
                    .or_else(|_| fs::copy(file, &target).map(|_| ()))
                    .and_then(|()| fs::set_permissions(&target, fs::Permissions::from_mode(0o644)));
                match linked {
                    Ok(()) => target,
                    Err(error) => {
                        tracing::warn!(%error, file, "cannot publish a download under its name");
                        PathBuf::from(file)
                    }
                }
            }
            _ => PathBuf::from(file),
        };
        published.push(target.display().to_string());
    }
    if created.is_ok() {
        tokio::spawn(async move {
            tokio::time::sleep(KEEP).await;
            let _ = fs::remove_dir_all(&directory);
        });
    }
    published
}

/// The last path component of a package URL, when it is a usable file name.
fn file_name(url: &url::Url) -> Option<String> {
    let last = url.path_segments()?.next_back()?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()?
        .into_owned();
    let usable = !decoded.is_empty()
        && decoded != "."
        && decoded != ".."
        && !decoded.contains('/')
        && !decoded.chars().any(char::is_control);
    usable.then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_url_and_stay_inside_the_directory() {
        let url = url::Url::parse("https://repo.example/x86_64/nano-8.0-1-1-x86_64.stone").unwrap();
        assert_eq!(
            file_name(&url).as_deref(),
            Some("nano-8.0-1-1-x86_64.stone")
        );
        let sneaky = url::Url::parse("https://repo.example/a/..%2F..%2Fetc%2Fpasswd").unwrap();
        assert_eq!(file_name(&sneaky), None);
        let dots = url::Url::parse("file:///srv/repo/%2E%2E").unwrap();
        assert_eq!(file_name(&dots), None);
    }
}
