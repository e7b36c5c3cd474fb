//! Test packages written with our own writer: files and symlinks below `/usr`. Shared by the
//! engine's tests and, through a `#[path]` module, by the CLI's.

use std::{
    fs,
    path::{Path, PathBuf},
};

use stone::{ContentSource, Entry, FileType, Layout, Package, Writer};

/// One file of a test package: target below `/usr`, mode, contents.
pub type File = (String, u32, Vec<u8>);

/// A regular file.
pub fn file(target: &str, text: &str) -> File {
    (target.to_owned(), 0o100644, text.as_bytes().to_vec())
}

/// An executable.
pub fn program(target: &str, bytes: Vec<u8>) -> File {
    (target.to_owned(), 0o100755, bytes)
}

/// Write `NAME-VERSION.stone` in `directory` holding `files` (and symlinks: target, link text).
pub fn stone(
    directory: &Path,
    name: &str,
    version: &str,
    files: &[File],
    links: &[(&str, &str)],
) -> PathBuf {
    let package = Package {
        name: name.to_owned(),
        version: version.to_owned(),
        release: 1,
        build_release: 1,
        architecture: "x86_64".to_owned(),
        summary: format!("{name} summary"),
        description: format!("{name} description"),
        homepage: "https://example.org".to_owned(),
        licenses: vec!["MPL-2.0".to_owned()],
        source_id: name.to_owned(),
        ..Package::default()
    };
    let mut writer = Writer::new(FileType::Binary);
    writer.add_meta(package.to_records());
    for (target, mode, bytes) in files {
        writer
            .add_file(target.clone(), *mode, ContentSource::Bytes(bytes.clone()))
            .unwrap();
    }
    for (target, text) in links {
        writer.add_layout(Layout {
            uid: 0,
            gid: 0,
            mode: 0o120777,
            tag: 0,
            entry: Entry::Symlink {
                source: (*text).to_owned(),
                target: (*target).to_owned(),
            },
        });
    }
    fs::create_dir_all(directory).unwrap();
    let path = directory.join(format!("{name}-{version}.stone"));
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    fs::write(&path, out).unwrap();
    path
}
