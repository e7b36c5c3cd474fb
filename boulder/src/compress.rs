//! `compressman`: man and info pages are stored zstd-compressed (`<name>.zst`, level 16), with
//! their mtimes kept and symlinks to them re-pointed. Unlike upstream, man section 9 counts and
//! the suffix is `.zst`, not `..zst` (spec §7.9).

use std::{
    io,
    path::{Path, PathBuf},
};

/// Whether an installed path is a man page (a `man` component, a name ending in `.1` … `.9`)
/// or an info page (`*.info` below an `info` component).
pub fn is_compressible(path: &str) -> bool {
    let components: Vec<&str> = path.split('/').collect();
    let name = components.last().copied().unwrap_or_default();
    let man = components.contains(&"man")
        && name
            .rsplit_once('.')
            .is_some_and(|(_, section)| matches!(section.as_bytes().first(), Some(b'1'..=b'9')));
    let info = components.contains(&"info") && name.ends_with(".info");
    man || info
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &path, out)?;
        } else {
            out.push((path, entry.path()));
        }
    }
    Ok(())
}

/// Compress every man and info page below `install_root`; returns how many files changed.
pub fn compress_pages(install_root: &Path) -> io::Result<usize> {
    let mut files = Vec::new();
    walk(install_root, "", &mut files)?;
    let mut changed = 0;
    for (path, host) in &files {
        if !is_compressible(path) {
            continue;
        }
        let metadata = std::fs::symlink_metadata(host)?;
        let target = PathBuf::from(format!("{}.zst", host.display()));
        if metadata.file_type().is_symlink() {
            // Point the link at the compressed page, under the compressed name.
            let link = std::fs::read_link(host)?;
            let link_text = link.to_string_lossy();
            let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
            let resolved = if link.is_absolute() {
                link.clone()
            } else {
                parent.join(&link)
            };
            let new_link = if is_compressible(&resolved.to_string_lossy()) {
                format!("{link_text}.zst")
            } else {
                link_text.into_owned()
            };
            std::fs::remove_file(host)?;
            std::os::unix::fs::symlink(new_link, &target)?;
        } else if metadata.is_file() {
            let input = std::fs::read(host)?;
            let output = zstd::bulk::compress(&input, 16)?;
            std::fs::write(&target, output)?;
            let file = std::fs::File::options().write(true).open(&target)?;
            file.set_modified(metadata.modified()?)?;
            std::fs::set_permissions(&target, metadata.permissions())?;
            std::fs::remove_file(host)?;
        } else {
            continue;
        }
        changed += 1;
    }
    Ok(changed)
}
