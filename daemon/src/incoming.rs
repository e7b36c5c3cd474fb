//! Local stones coming in from callers. The daemon never opens a path a caller names with its
//! own rights: Moss1 callers pass open file descriptors; PackageKit's `InstallFiles` passes paths,
//! which a child process reads with the caller's uid, groups and nothing more. Either way the
//! bytes are copied into a root-only directory (what the engine reads is then the daemon's own
//! file, which the caller cannot change afterwards), off the runtime threads, under a size cap and
//! a time limit, and only after the caller was authorised.

use std::{
    fs,
    io::{Read, Write},
    os::{
        fd::{AsFd, OwnedFd},
        unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use moss_proto::Error;
use tokio::{io::AsyncReadExt, sync::Semaphore};

/// Bounds on what callers may hand in.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest stone accepted, in bytes.
    pub max_size: u64,
    /// Most stones in one call.
    pub max_files: usize,
    /// How long one copy may take.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // The largest real packages (toolchains, firmware) are a few hundred MiB.
            max_size: 2 << 30,
            max_files: 32,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Copies of caller stones, kept in `ROOT/.moss/daemon/v1/incoming` (mode 0700).
#[derive(Debug)]
pub struct Incoming {
    directory: PathBuf,
    limits: Limits,
    /// Copies at once: a copy stuck on a slow filesystem holds a permit, never a runtime thread,
    /// and the rest of the daemon goes on answering.
    permits: Arc<Semaphore>,
}

/// Copies that are removed when dropped, unless handed to a transaction.
#[derive(Debug, Default)]
pub struct Received {
    paths: Vec<PathBuf>,
}

impl Received {
    /// The copies.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Hand the copies over (the transaction removes them when it ends).
    pub fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.paths)
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = fs::remove_file(path);
        }
    }
}

impl Incoming {
    /// Incoming stones of the installation at `root`.
    pub fn new(root: &Path, limits: Limits) -> Self {
        Self {
            directory: root.join(".moss/daemon/v1/incoming"),
            limits,
            permits: Arc::new(Semaphore::new(2)),
        }
    }

    /// Refuse more files than one call may carry, before anything is read.
    pub fn check_count(&self, count: usize) -> Result<(), Error> {
        if count > self.limits.max_files {
            return Err(Error::LimitExceeded(format!(
                "{count} local stones in one request; at most {} are accepted, install them in \
                 several steps",
                self.limits.max_files
            )));
        }
        Ok(())
    }

    fn prepare(&self) -> Result<(), Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.directory)
            .and_then(|()| fs::set_permissions(&self.directory, fs::Permissions::from_mode(0o700)))
            .map_err(|error| {
                Error::Failed(format!(
                    "cannot create {}: {error}",
                    self.directory.display()
                ))
            })
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        tokio::time::timeout(self.limits.timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy("mossd is busy receiving other local stones; retry".into()))?
            .map_err(|_| Error::Failed("mossd is shutting down".into()))
    }

    /// Copy stones the caller opened and passed as descriptors.
    pub async fn receive(&self, files: Vec<OwnedFd>) -> Result<Received, Error> {
        self.check_count(files.len())?;
        let mut received = Received::default();
        if files.is_empty() {
            return Ok(received);
        }
        self.prepare()?;
        for (position, file) in files.into_iter().enumerate() {
            let permit = self.permit().await?;
            let directory = self.directory.clone();
            let limits = self.limits;
            let copy = tokio::task::spawn_blocking(move || {
                let result = copy_descriptor(file, &directory, limits.max_size);
                drop(permit);
                result
            });
            let path = tokio::time::timeout(self.limits.timeout, copy)
                .await
                .map_err(|_| {
                    Error::InvalidArgument(format!(
                        "local stone #{} could not be read within {} s",
                        position + 1,
                        self.limits.timeout.as_secs()
                    ))
                })?
                .map_err(|error| Error::Failed(format!("the copy was interrupted: {error}")))?
                .map_err(|problem| {
                    Error::InvalidArgument(format!("local stone #{}: {problem}", position + 1))
                })?;
            received.paths.push(path);
        }
        Ok(received)
    }

    /// Copy stones named by path (PackageKit's `InstallFiles`), each read by a child process
    /// running as `uid` with that user's groups: the caller can only hand in what it may read.
    pub async fn read_as(&self, uid: u32, paths: &[String]) -> Result<Received, Error> {
        self.check_count(paths.len())?;
        let mut received = Received::default();
        if paths.is_empty() {
            return Ok(received);
        }
        self.prepare()?;
        let program = std::env::current_exe()
            .map_err(|error| Error::Failed(format!("cannot find the mossd binary: {error}")))?;
        for path in paths {
            let _permit = self.permit().await?;
            let target = self.copy_as(&program, uid, path).await?;
            received.paths.push(target);
        }
        Ok(received)
    }

    async fn copy_as(&self, program: &Path, uid: u32, path: &str) -> Result<PathBuf, Error> {
        let mut child = tokio::process::Command::new(program)
            .arg("--read-as")
            .arg(uid.to_string())
            .arg("--read-limit")
            .arg(self.limits.max_size.to_string())
            .arg("--")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| Error::Failed(format!("cannot start the file reader: {error}")))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (file, target) = tempfile::Builder::new()
            .prefix("local-")
            .suffix(".stone")
            .tempfile_in(&self.directory)
            .map_err(|error| Error::Failed(format!("cannot store a local stone: {error}")))?
            .keep()
            .map_err(|error| Error::Failed(format!("cannot keep a local stone: {error}")))?;
        let cleanup = Received {
            paths: vec![target.clone()],
        };
        let limit = self.limits.max_size;
        let copy = async {
            let mut writer = tokio::fs::File::from_std(file);
            let mut buffer = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                let count = stdout.read(&mut buffer).await?;
                if count == 0 {
                    break;
                }
                total += count as u64;
                if total > limit {
                    return Err(std::io::Error::other(format!(
                        "it is larger than the {limit} bytes accepted"
                    )));
                }
                tokio::io::AsyncWriteExt::write_all(&mut writer, &buffer[..count]).await?;
            }
            tokio::io::AsyncWriteExt::flush(&mut writer).await?;
            let mut message = String::new();
            stderr.read_to_string(&mut message).await?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, message))
        };
        let (status, message) = tokio::time::timeout(self.limits.timeout, copy)
            .await
            .map_err(|_| {
                Error::InvalidArgument(format!(
                    "{path} could not be read within {} s",
                    self.limits.timeout.as_secs()
                ))
            })?
            .map_err(|error| Error::InvalidArgument(format!("cannot read {path}: {error}")))?;
        if !status.success() {
            let message = message.trim();
            return Err(if status.code() == Some(NOT_READABLE) {
                Error::NotFound(message.to_owned())
            } else {
                Error::InvalidArgument(format!("cannot read {path}: {message}"))
            });
        }
        Ok(cleanup.keep().remove(0))
    }
}

/// Why a passed descriptor is refused.
fn copy_descriptor(file: OwnedFd, directory: &Path, max_size: u64) -> Result<PathBuf, String> {
    let source = fs::File::from(file);
    let metadata = source
        .metadata()
        .map_err(|error| format!("unusable file descriptor: {error}"))?;
    check_regular(&metadata.file_type(), metadata.len(), max_size)?;
    let access = nix::fcntl::fcntl(source.as_fd(), nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|error| format!("unusable file descriptor: {error}"))?;
    let mode = nix::fcntl::OFlag::from_bits_truncate(access) & nix::fcntl::OFlag::O_ACCMODE;
    if mode == nix::fcntl::OFlag::O_WRONLY {
        return Err("the descriptor is not open for reading".into());
    }
    let (mut target, path) = tempfile::Builder::new()
        .prefix("local-")
        .suffix(".stone")
        .tempfile_in(directory)
        .map_err(|error| format!("cannot store it: {error}"))?
        .keep()
        .map_err(|error| format!("cannot store it: {error}"))?;
    let cleanup = Received {
        paths: vec![path.clone()],
    };
    // From offset 0 whatever the caller's offset is, and never more than the cap: a file that
    // grows while it is read is cut off and then fails the stone checks.
    let mut reader = std::io::BufReader::new(PositionedReader {
        file: &source,
        offset: 0,
    })
    .take(max_size + 1);
    let copied = std::io::copy(&mut reader, &mut target)
        .and_then(|copied| target.flush().map(|()| copied))
        .map_err(|error| format!("cannot read it: {error}"))?;
    if copied > max_size {
        return Err(format!("it is larger than the {max_size} bytes accepted"));
    }
    Ok(cleanup.keep().remove(0))
}

/// Only regular files within the cap: a pipe, FIFO, socket or device (`/dev/zero`) could block
/// the copy forever or never end.
pub fn check_regular(kind: &fs::FileType, size: u64, max_size: u64) -> Result<(), String> {
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a pipe or FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(format!("it is {what}; pass a regular .stone file"));
    }
    if size > max_size {
        return Err(format!(
            "it is {size} bytes, larger than the {max_size} bytes accepted"
        ));
    }
    Ok(())
}

struct PositionedReader<'a> {
    file: &'a fs::File,
    offset: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = std::os::unix::fs::FileExt::read_at(self.file, buffer, self.offset)?;
        self.offset += count as u64;
        Ok(count)
    }
}

/// Exit status of `mossd --read-as` when the caller cannot read the file.
pub const NOT_READABLE: i32 = 66;

/// `mossd --read-as UID --read-limit BYTES -- PATH`: become `uid` (its groups, its primary
/// group, no capabilities) and copy PATH to stdout, refusing anything but a regular file within
/// the limit. Runs in a child of the daemon, never in the daemon itself.
pub fn read_as_main(uid: u32, limit: u64, path: &Path) -> std::process::ExitCode {
    match become_user(uid).and_then(|()| copy_out(path, limit)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err((code, message)) => {
            let _ = writeln!(std::io::stderr(), "{message}");
            std::process::ExitCode::from(code as u8)
        }
    }
}

fn become_user(uid: u32) -> Result<(), (i32, String)> {
    use nix::unistd::{Gid, Uid, User, getgrouplist, setgid, setgroups, setuid};
    let failed = |what: &str, error: nix::Error| (70, format!("cannot {what}: {error}"));
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|error| failed("look up the caller", error))?
        .ok_or_else(|| (70, format!("uid {uid} has no user entry")))?;
    let name = std::ffi::CString::new(user.name.clone())
        .map_err(|_| (70, format!("the user name of uid {uid} is not valid")))?;
    let groups: Vec<Gid> =
        getgrouplist(&name, user.gid).map_err(|error| failed("list the caller's groups", error))?;
    setgroups(&groups).map_err(|error| failed("take the caller's groups", error))?;
    setgid(user.gid).map_err(|error| failed("take the caller's group", error))?;
    setuid(user.uid).map_err(|error| failed("take the caller's uid", error))?;
    // Dropped for good: getting root back must fail.
    if uid != 0 && setuid(Uid::from_raw(0)).is_ok() {
        return Err((70, "privileges could not be dropped".into()));
    }
    Ok(())
}

fn copy_out(path: &Path, limit: u64) -> Result<(), (i32, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    // Non-blocking, so that opening a FIFO does not wait for a writer.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|error| (NOT_READABLE, format!("cannot open {name}: {error}")))?;
    let metadata = file
        .metadata()
        .map_err(|error| (NOT_READABLE, format!("cannot read {name}: {error}")))?;
    check_regular(&metadata.file_type(), metadata.len(), limit)
        .map_err(|problem| (65, format!("{name}: {problem}")))?;
    let mut stdout = std::io::stdout().lock();
    std::io::copy(&mut (&file).take(limit + 1), &mut stdout)
        .map_err(|error| (74, format!("cannot read {name}: {error}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_accepted() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("x.stone");
        fs::write(&file, b"stone").unwrap();
        let kind = fs::metadata(&file).unwrap().file_type();
        assert!(check_regular(&kind, 5, 10).is_ok());
        assert!(check_regular(&kind, 11, 10).unwrap_err().contains("larger"));
        let dir_kind = fs::metadata(directory.path()).unwrap().file_type();
        assert!(
            check_regular(&dir_kind, 0, 10)
                .unwrap_err()
                .contains("directory")
        );
        let zero = fs::metadata("/dev/zero").unwrap().file_type();
        assert!(check_regular(&zero, 0, 10).unwrap_err().contains("device"));
    }

    #[tokio::test]
    async fn a_pipe_is_refused_at_once_and_a_file_is_copied() {
        let root = tempfile::tempdir().unwrap();
        let incoming = Incoming::new(root.path(), Limits::default());
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let error = incoming.receive(vec![reader]).await.unwrap_err();
        assert!(error.message().contains("pipe"), "{}", error.message());
        let source = root.path().join("given.stone");
        fs::write(&source, b"some bytes").unwrap();
        let opened = OwnedFd::from(fs::File::open(&source).unwrap());
        let received = incoming.receive(vec![opened]).await.unwrap();
        let copy = received.paths()[0].clone();
        assert_eq!(fs::read(&copy).unwrap(), b"some bytes");
        drop(received);
        assert!(!copy.exists(), "copies are removed unless kept");
    }
}
