//! Shared by the `extract` criterion bench and the `extract_ratio` example: the benchmark
//! package (generated once with the shared `stonegen.py`, cached under `target/`) and the three
//! measured operations.
//!
//! * [`raw_zstd`]: the content payload's stored bytes read from the file and decompressed by the
//!   same zstd crate (window log max 31) into a discarding buffer, nothing else: the ceiling.
//! * [`verify`]: the stone reader's full path with a [`DiscardSink`]: open, walk payloads, then
//!   decompress, XXH3-128 every file, XXH3-64 the stored bytes, check the plain size.
//! * [`extract`]: the same, with a sink that writes one file per index entry to a directory.
#![allow(dead_code, clippy::print_stderr)]

use std::{
    env,
    fs::{self, File},
    io::{self, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::Command,
};

use stone::{Archive, ContentPayload, ContentSink, DiscardSink, IndexEntry};

/// stonegen arguments of the benchmark package: one package, 10k layout files, realistic sizes:
/// 9 588 regular files, 8 778 unique bodies (index entries), 208.5 MiB of plain content,
/// 118.8 MiB stored (zstd level 3).
const SEED: u32 = 42;
const FILES: u32 = 10_000;

/// `target/` of the workspace, or `$CARGO_TARGET_DIR`.
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The shared folder holding `bench/stonegen.py`, or `$STONE_BENCH_SHARED`.
fn shared_dir() -> PathBuf {
    env::var_os("STONE_BENCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The benchmark package: `$STONE_BENCH_FILE` if set, else the cached generated package,
/// generated on first use (needs `python3` with `xxhash` and `zstandard`).
pub fn bench_stone() -> PathBuf {
    if let Some(file) = env::var_os("STONE_BENCH_FILE") {
        return PathBuf::from(file);
    }
    let cache = target_dir().join("stone-bench");
    let stone = cache.join(format!("extract-s{SEED}-f{FILES}.stone"));
    if stone.is_file() {
        return stone;
    }
    let out = cache.join(format!("gen-s{SEED}-f{FILES}"));
    let script = shared_dir().join("bench/stonegen.py");
    eprintln!(
        "generating the benchmark package with {} into {} (once)",
        script.display(),
        out.display()
    );
    let status = Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(&out)
        .args(["--packages", "1", "--seed", &SEED.to_string()])
        .args(["--files-per-package", &FILES.to_string(), "--exact-files"])
        .args(["--size-model", "realistic", "--no-index", "--quiet"])
        .status()
        .unwrap_or_else(|error| panic!("cannot run python3 {}: {error}", script.display()));
    assert!(
        status.success(),
        "stonegen failed ({status}); `pip install xxhash zstandard` and retry"
    );
    let generated = fs::read_dir(&out)
        .expect("stonegen output directory")
        .map(|entry| entry.expect("directory entry").path())
        .find(|path| path.extension().is_some_and(|ext| ext == "stone"))
        .expect("stonegen wrote no .stone");
    fs::rename(&generated, &stone).expect("move the generated package into the cache");
    stone
}

/// What the measurements need to know about the package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The file.
    pub path: PathBuf,
    /// The content payload.
    pub content: ContentPayload,
    /// Index entries (files delivered to a sink).
    pub entries: usize,
}

impl Package {
    /// Open `path` and find its content payload.
    pub fn open(path: &Path) -> Self {
        let archive = Archive::open(path).expect("open the benchmark package");
        let content = archive
            .content()
            .expect("the package has a content payload");
        let entries = archive.index().count();
        Self {
            path: path.to_owned(),
            content,
            entries,
        }
    }

    /// Plain (decompressed) content bytes.
    pub fn plain_size(&self) -> u64 {
        self.content.header.plain_size
    }

    /// Stored (compressed) content bytes.
    pub fn stored_size(&self) -> u64 {
        self.content.header.stored_size
    }
}

/// (a) Decompress the content payload straight from the file, discarding the output.
pub fn raw_zstd(package: &Package) -> u64 {
    let mut file = File::open(&package.path).expect("open the benchmark package");
    file.seek(SeekFrom::Start(package.content.offset))
        .expect("seek to the content");
    let stored = BufReader::with_capacity(256 * 1024, file.take(package.stored_size()));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(stored).expect("zstd decoder");
    decoder.window_log_max(31).expect("window log max");
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let count = decoder.read(&mut buffer).expect("decompress");
        if count == 0 {
            break;
        }
        total += count as u64;
    }
    assert_eq!(total, package.plain_size());
    total
}

/// (c) The stone reader: decompress and check everything, write nothing.
pub fn verify(package: &Package) -> u64 {
    let mut archive = Archive::open(&package.path).expect("open the benchmark package");
    archive.unpack(&mut DiscardSink).expect("unpack");
    package.plain_size()
}

/// (b) The stone reader writing every index entry to its own file under `directory`.
pub fn extract(package: &Package, directory: &Path) -> u64 {
    let mut archive = Archive::open(&package.path).expect("open the benchmark package");
    let mut sink = FileSink::new(directory);
    archive.unpack(&mut sink).expect("unpack");
    assert_eq!(sink.files, package.entries);
    package.plain_size()
}

/// Writes one file per index entry, 256 files per subdirectory (`xx/NNNNNN`), as an installer
/// writing into a fresh tree would.
#[derive(Debug)]
pub struct FileSink {
    root: PathBuf,
    files: usize,
    current: Option<(PathBuf, File)>,
}

impl FileSink {
    /// Write below `root`, which must exist.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            files: 0,
            current: None,
        }
    }
}

impl ContentSink for FileSink {
    fn begin(&mut self, _entry: &IndexEntry) -> io::Result<()> {
        let directory = self.root.join(format!("{:02x}", self.files / 256));
        if self.files.is_multiple_of(256) {
            fs::create_dir(&directory)?;
        }
        let path = directory.join(format!("{:06}", self.files));
        let file = File::options().write(true).create_new(true).open(&path)?;
        self.current = Some((path, file));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.write_all(bytes),
            None => Err(io::Error::other("write outside an entry")),
        }
    }

    fn finish(&mut self, _entry: &IndexEntry) -> io::Result<()> {
        self.current = None;
        self.files += 1;
        Ok(())
    }

    fn abort(&mut self, _entry: &IndexEntry) {
        if let Some((path, _)) = self.current.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// A fresh, empty directory for one extraction, under `$STONE_BENCH_TMP` or the system temp dir.
pub fn scratch() -> tempfile::TempDir {
    match env::var_os("STONE_BENCH_TMP") {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("create a scratch directory")
}

/// MiB per second.
pub fn mib_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / seconds
}
