//! The build container: user, mount, PID, IPC, UTS and (unless networking is allowed) network
//! namespaces, entered without `unsafe` by re-executing our own binary twice:
//!
//! 1. `boulder __container SPEC` (single-threaded, fresh from exec) unshares the namespaces,
//!    maps uid/gid 0 to the caller, and spawns
//! 2. `boulder __container-init SPEC`, PID 1 of the new PID namespace, which sets up the mounts,
//!    pivots into the root, and runs the command. When it exits the kernel kills whatever the
//!    command left behind.
//!
//! The binary must call [`dispatch`] first thing in `main`.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, unshare},
    sys::statvfs::{FsFlags, statvfs},
    unistd::{Gid, Uid, pivot_root, sethostname},
};
use serde::{Deserialize, Serialize};

/// Argument that selects stage 1.
pub const STAGE_ENTER: &str = "__container";
/// Argument that selects stage 2.
pub const STAGE_INIT: &str = "__container-init";

/// A bind mount into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Host path.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: PathBuf,
    /// Mount read-only.
    pub read_only: bool,
}

/// Everything the container needs, passed to the helper stages as a JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Host directory that becomes `/`.
    pub rootfs: PathBuf,
    /// Bind mounts, applied in order.
    pub binds: Vec<Bind>,
    /// Keep the host's network.
    pub networking: bool,
    /// Working directory inside.
    pub workdir: PathBuf,
    /// Program and arguments, resolved inside.
    pub command: Vec<String>,
    /// The whole environment of the command.
    pub env: Vec<(String, String)>,
}

/// Running the container failed (not the command in it: its status is returned).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Writing the spec or starting the helper failed.
    #[error("cannot start the build container with {}: {source}", helper.display())]
    Spawn {
        /// The helper binary.
        helper: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setup step inside the helper failed.
    #[error("container setup failed: {0}")]
    Setup(String),
}

/// Run a command in a container, giving each output line to `on_line` (stdout and stderr
/// interleaved line by line). Returns the command's exit code (128 + signal when killed).
pub fn run(
    helper: &Path,
    spec: &ContainerSpec,
    mut on_line: impl FnMut(&str),
) -> Result<i32, ContainerError> {
    let spawn_error = |source| ContainerError::Spawn {
        helper: helper.to_path_buf(),
        source,
    };
    let spec_file = tempfile::NamedTempFile::new().map_err(spawn_error)?;
    serde_json::to_writer(spec_file.as_file(), spec)
        .map_err(|error| ContainerError::Setup(error.to_string()))?;
    let mut child = Command::new(helper)
        .arg(STAGE_ENTER)
        .arg(spec_file.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    let forward = |stream: Box<dyn std::io::Read + Send>,
                   sender: std::sync::mpsc::Sender<String>| {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        })
    };
    let out_thread = forward(Box::new(stdout), sender.clone());
    let err_thread = forward(Box::new(stderr), sender);
    for line in receiver {
        on_line(&line);
    }
    let _ = out_thread.join();
    let _ = err_thread.join();
    let status = child.wait().map_err(spawn_error)?;
    Ok(exit_code(status))
}

/// Run a command in a container on the caller's terminal (stdin, stdout and stderr inherited):
/// the shell opened at a breakpoint.
pub fn run_interactive(helper: &Path, spec: &ContainerSpec) -> Result<i32, ContainerError> {
    let spawn_error = |source| ContainerError::Spawn {
        helper: helper.to_path_buf(),
        source,
    };
    let spec_file = tempfile::NamedTempFile::new().map_err(spawn_error)?;
    serde_json::to_writer(spec_file.as_file(), spec)
        .map_err(|error| ContainerError::Setup(error.to_string()))?;
    let status = Command::new(helper)
        .arg(STAGE_ENTER)
        .arg(spec_file.path())
        .status()
        .map_err(spawn_error)?;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Handle the helper stages. Returns `Some(result)` when `args` selected one: the exit code
/// to exit with, or a setup failure for the caller to report on stderr (which the parent reads
/// line by line and shows with the step) before exiting with 125.
pub fn dispatch(args: &[String]) -> Option<Result<i32, String>> {
    let stage = args.get(1)?;
    let spec_path = args.get(2)?;
    match stage.as_str() {
        STAGE_ENTER => Some(read_spec(spec_path).and_then(|spec| enter(&spec, spec_path))),
        STAGE_INIT => Some(read_spec(spec_path).and_then(|spec| init(&spec))),
        _ => None,
    }
}

fn read_spec(path: &str) -> Result<ContainerSpec, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("reading {path}: {error}"))?;
    serde_json::from_str(&text).map_err(|error| format!("parsing {path}: {error}"))
}

/// Stage 1: new namespaces, identity mapping of the caller to root, then stage 2 as PID 1.
fn enter(spec: &ContainerSpec, spec_path: &str) -> Result<i32, String> {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let uid = Uid::current();
    let gid = Gid::current();
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if !spec.networking {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|error| format!("unshare: {error}"))?;
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|error| format!("writing {file}: {error}"))
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("0 {uid} 1\n"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1\n"))?;
    let exe = std::env::current_exe().map_err(|error| format!("locating boulder: {error}"))?;
    let status = Command::new(exe)
        .arg(STAGE_INIT)
        .arg(spec_path)
        .status()
        .map_err(|error| format!("starting the container init: {error}"))?;
    Ok(exit_code(status))
}

fn inside(rootfs: &Path, path: &Path) -> PathBuf {
    rootfs.join(path.strip_prefix("/").unwrap_or(path))
}

/// Flags a read-only remount must keep: the kernel refuses to drop locked ones in a user
/// namespace.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let mut flags = MsFlags::empty();
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if stat.flags().contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    flags
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    if source.is_dir() {
        std::fs::create_dir_all(target)
            .map_err(|error| format!("creating {}: {error}", target.display()))?;
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("creating {}: {error}", parent.display()))?;
        }
        if !target.exists() {
            std::fs::write(target, b"")
                .map_err(|error| format!("creating {}: {error}", target.display()))?;
        }
    }
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|error| {
        format!(
            "binding {} to {}: {error}",
            source.display(),
            target.display()
        )
    })?;
    if read_only {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(source),
            None::<&str>,
        )
        .map_err(|error| format!("making {} read-only: {error}", target.display()))?;
    }
    Ok(())
}

/// Stage 2, PID 1: mounts, pivot, run.
fn init(spec: &ContainerSpec) -> Result<i32, String> {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let root = &spec.rootfs;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|error| format!("making / private: {error}"))?;
    mount(
        Some(root),
        root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|error| format!("binding the root {}: {error}", root.display()))?;
    for entry in &spec.binds {
        bind(&entry.source, &inside(root, &entry.target), entry.read_only)?;
    }
    for dir in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(root.join(dir))
            .map_err(|error| format!("creating /{dir}: {error}"))?;
    }
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|error| format!("mounting /proc: {error}"))?;
    mount(
        Some("tmpfs"),
        &root.join("tmp"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(|error| format!("mounting /tmp: {error}"))?;
    mount(
        Some("/dev"),
        &root.join("dev"),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|error| format!("binding /dev: {error}"))?;
    // A sysfs of our own shows our network namespace (only `lo`); the kernel allows it only
    // when we own that namespace, so with the host's network the host's /sys is bound instead.
    let sysfs = mount(
        Some("sysfs"),
        &root.join("sys"),
        Some("sysfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    if sysfs.is_err() {
        mount(
            Some("/sys"),
            &root.join("sys"),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|error| format!("binding /sys: {error}"))?;
    }
    if !spec.networking {
        // Loopback only; a missing `ip` just leaves it down.
        for ip in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"] {
            if Path::new(ip).exists() {
                let _ = Command::new(ip)
                    .args(["link", "set", "lo", "up"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                break;
            }
        }
    }
    std::env::set_current_dir(root).map_err(|error| format!("entering the root: {error}"))?;
    pivot_root(".", ".").map_err(|error| format!("pivot_root: {error}"))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|error| format!("detaching the old root: {error}"))?;
    std::env::set_current_dir("/").map_err(|error| format!("entering /: {error}"))?;
    let _ = sethostname("boulder");
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let workdir = if spec.workdir.is_dir() {
        spec.workdir.clone()
    } else {
        PathBuf::from("/")
    };
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| "no command given".to_owned())?;
    let status = Command::new(program)
        .args(args)
        .current_dir(workdir)
        .env_clear()
        .envs(spec.env.iter().map(|(key, value)| (key, value)))
        .status()
        .map_err(|error| format!("running {program}: {error}"))?;
    Ok(exit_code(status))
}

/// Lay out a minimal root around a host `/usr` (bound later): merged-usr symlinks and the
/// files tools expect in `/etc`.
pub fn prepare_host_style_root(rootfs: &Path, networking: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(rootfs.join("usr"))?;
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("lib32", "usr/lib32"),
    ] {
        let path = rootfs.join(link);
        if std::fs::symlink_metadata(&path).is_err() {
            symlink(target, &path)?;
        }
    }
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n",
    )?;
    std::fs::write(etc.join("group"), "root:x:0:\nnogroup:x:65534:\n")?;
    std::fs::write(
        etc.join("hosts"),
        "127.0.0.1 localhost boulder\n::1 localhost boulder\n",
    )?;
    if networking && let Ok(resolv) = std::fs::read("/etc/resolv.conf") {
        std::fs::write(etc.join("resolv.conf"), resolv)?;
    }
    for dir in ["root", "var/tmp", "mason"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    Ok(())
}
