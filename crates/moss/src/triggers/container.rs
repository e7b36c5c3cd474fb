//! Running one trigger action, in a container or directly.
//!
//! The container is built from namespaces with nix, not by a helper program: new mount, PID,
//! IPC, UTS and network namespaces; its root is a fresh tmpfs holding the bound trees (for a
//! transaction trigger, only the staging `/usr`, read-write), empty scratch directories, its own
//! `/proc`, a `/dev` with the five harmless device nodes, and the usual `bin`/`lib` links.
//! Nothing else of the host is visible, and the network namespace has no interfaces up.

use std::{
    ffi::CString,
    io,
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use nix::{
    mount::{MntFlags, MsFlags},
    sched::CloneFlags,
    sys::stat::{Mode, SFlag},
};

use super::Action;

/// Links at the container's root, as on an installed system.
const LINKS: [(&str, &str); 5] = [
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib"),
    ("lib32", "usr/lib32"),
];

/// Device nodes of `/dev` (name, major, minor).
const DEVICES: [(&str, u64, u64); 5] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// The environment triggers get: fixed, so a daemon's or a user's environment never leaks in.
const ENVIRONMENT: [(&str, &str); 3] = [
    ("PATH", "/usr/bin:/usr/sbin"),
    ("LANG", "C.UTF-8"),
    ("HOME", "/root"),
];

/// What a container holds.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// An existing empty directory of the host where the container's root is mounted.
    pub root: PathBuf,
    /// Host directories bound read-write at these top-level container paths (`usr`, `etc`...).
    pub binds: Vec<(PathBuf, &'static str)>,
    /// Top-level container paths that get an empty tmpfs.
    pub scratch: Vec<&'static str>,
}

impl Sandbox {
    /// The host path of a container path, through the binds.
    fn host_path(&self, path: &str) -> Option<PathBuf> {
        let relative = path.trim_start_matches('/');
        let (top, rest) = relative.split_once('/').unwrap_or((relative, ""));
        self.binds
            .iter()
            .find(|(_, destination)| *destination == top)
            .map(|(source, _)| source.join(rest))
    }
}

/// How an action ended.
#[derive(Debug)]
pub struct Outcome {
    /// Whether it succeeded.
    pub success: bool,
    /// `exited with status 3`, `was killed by signal 9`...
    pub status: String,
    /// Standard output then standard error.
    pub output: String,
}

/// Run `action` in `sandbox`, or directly on the host when there is none (the live root `/`).
pub fn run_action(action: &Action, sandbox: Option<&Sandbox>) -> io::Result<Outcome> {
    match action {
        Action::Run { program, args } => {
            let mut command = Command::new(program);
            command
                .args(args)
                .env_clear()
                .envs(ENVIRONMENT)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let output = match sandbox {
                Some(sandbox) => contain(command, sandbox)?.wait_with_output()?,
                None => command.current_dir("/").output()?,
            };
            Ok(outcome(&output))
        }
        Action::Delete { paths } => {
            for path in paths {
                let host = match sandbox {
                    Some(sandbox) => sandbox.host_path(path).ok_or_else(|| {
                        io::Error::other(format!("{path} is outside the trees triggers may change"))
                    })?,
                    None => PathBuf::from(path),
                };
                let removed = match std::fs::symlink_metadata(&host) {
                    Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&host),
                    Ok(_) => std::fs::remove_file(&host),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(error) => Err(error),
                };
                removed.map_err(|error| io::Error::other(format!("deleting {path}: {error}")))?;
            }
            Ok(Outcome {
                success: true,
                status: "succeeded".to_owned(),
                output: String::new(),
            })
        }
    }
}

fn outcome(output: &Output) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let status = match (output.status.code(), output.status.signal()) {
        (Some(0), _) => "succeeded".to_owned(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended abnormally".to_owned(),
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    // Keep the end: that is where programs say what went wrong.
    const LIMIT: usize = 16 * 1024;
    if text.len() > LIMIT {
        let mut start = text.len() - LIMIT;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text = format!("[...]{}", &text[start..]);
    }
    Outcome {
        success: output.status.success(),
        status,
        output: text.trim_end().to_owned(),
    }
}

/// One step of building the container, with every path prepared before the fork (nothing may
/// allocate between fork and exec).
enum Step {
    Directory(CString, u32),
    Link(CString, CString),
    Bind(CString, CString),
    Tmpfs(CString, CString),
    Device(CString, u64, u64),
    /// Without privileges (in a user namespace) device nodes cannot be made: bind the host's.
    DeviceBind(CString, CString),
    Proc(CString),
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn c_text(text: &str) -> CString {
    CString::new(text).expect("constant text has no NUL")
}

fn steps(sandbox: &Sandbox, unprivileged: bool) -> io::Result<(CString, Vec<Step>)> {
    let root = &sandbox.root;
    let mut steps = vec![Step::Tmpfs(c_path(root)?, c_text("mode=0755"))];
    let mut tops: Vec<&str> = sandbox
        .binds
        .iter()
        .map(|(_, top)| *top)
        .chain(sandbox.scratch.iter().copied())
        .collect();
    tops.extend(["proc", "dev", "tmp", ".oldroot"]);
    tops.sort_unstable();
    tops.dedup();
    for top in &tops {
        steps.push(Step::Directory(c_path(&root.join(top))?, 0o755));
    }
    for (name, target) in LINKS {
        steps.push(Step::Link(c_text(target), c_path(&root.join(name))?));
    }
    for (source, top) in &sandbox.binds {
        steps.push(Step::Bind(c_path(source)?, c_path(&root.join(top))?));
    }
    for top in &sandbox.scratch {
        steps.push(Step::Tmpfs(c_path(&root.join(top))?, c_text("mode=0755")));
    }
    if !sandbox.scratch.contains(&"tmp") {
        steps.push(Step::Tmpfs(c_path(&root.join("tmp"))?, c_text("mode=1777")));
    }
    steps.push(Step::Tmpfs(c_path(&root.join("dev"))?, c_text("mode=0755")));
    for (name, major, minor) in DEVICES {
        let target = c_path(&root.join("dev").join(name))?;
        steps.push(if unprivileged {
            Step::DeviceBind(c_path(&Path::new("/dev").join(name))?, target)
        } else {
            Step::Device(target, major, minor)
        });
    }
    steps.push(Step::Link(
        c_text("/proc/self/fd"),
        c_path(&root.join("dev/fd"))?,
    ));
    steps.push(Step::Proc(c_path(&root.join("proc"))?));
    Ok((c_path(root)?, steps))
}

/// Start `command` inside a new container.
///
/// The only unsafe code of the triggers: a `pre_exec` hook. In the forked child it enters new
/// namespaces, forks once more (a new PID namespace applies to children only, so the program
/// must be a child to be PID 1 in it; the middle process waits and passes the exit status on),
/// builds the root from the prepared steps and pivots into it. Between fork and exec it calls
/// only system calls on data prepared beforehand: no allocation, no locks.
#[allow(unsafe_code)]
fn contain(mut command: Command, sandbox: &Sandbox) -> io::Result<std::process::Child> {
    // As root the namespaces need no user namespace; anyone else gets one mapping them to
    // root inside (their own uid and gid), so triggers also run for `moss -D` without privileges.
    let unprivileged = !nix::unistd::geteuid().is_root();
    let (root, steps) = steps(sandbox, unprivileged)?;
    let maps = [
        (c_text("/proc/self/setgroups"), c_text("deny")),
        (
            c_text("/proc/self/uid_map"),
            CString::new(format!("0 {} 1", nix::unistd::geteuid())).map_err(io::Error::other)?,
        ),
        (
            c_text("/proc/self/gid_map"),
            CString::new(format!("0 {} 1", nix::unistd::getegid())).map_err(io::Error::other)?,
        ),
    ];
    let hostname = c_text("moss-triggers");
    let old_root = c_text(".oldroot");
    let old_root_absolute = c_text("/.oldroot");
    let slash = c_text("/");
    let dot = c_text(".");
    let errno = |error: nix::errno::Errno| io::Error::from_raw_os_error(error as i32);
    let setup = move || -> io::Result<()> {
        let mut flags = CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNET;
        if unprivileged {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        nix::sched::unshare(flags).map_err(errno)?;
        if unprivileged {
            for (file, text) in &maps {
                let fd = nix::fcntl::open(
                    file.as_c_str(),
                    nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)?;
                nix::unistd::write(&fd, text.as_bytes()).map_err(errno)?;
            }
        }
        // SAFETY: see the function's comment; the parent side only waits and exits.
        match unsafe { nix::unistd::fork() }.map_err(errno)? {
            nix::unistd::ForkResult::Parent { child } => {
                let code = match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => {
                        // Die the same way, so the status moss sees names the signal.
                        let _ = nix::sys::signal::raise(signal);
                        128 + signal as i32
                    }
                    _ => 127,
                };
                // SAFETY: ends the middle process without running any of the parent's
                // exit handlers.
                unsafe { nix::libc::_exit(code) };
            }
            nix::unistd::ForkResult::Child => {}
        }
        nix::mount::mount(
            None::<&std::ffi::CStr>,
            slash.as_c_str(),
            None::<&std::ffi::CStr>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&std::ffi::CStr>,
        )
        .map_err(errno)?;
        for step in &steps {
            match step {
                Step::Directory(path, mode) => {
                    nix::unistd::mkdir(path.as_c_str(), Mode::from_bits_truncate(*mode))
                        .map_err(errno)?
                }
                Step::Link(target, path) => {
                    nix::unistd::symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, path.as_c_str())
                        .map_err(errno)?
                }
                Step::Bind(source, target) => nix::mount::mount(
                    Some(source.as_c_str()),
                    target.as_c_str(),
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_BIND,
                    None::<&std::ffi::CStr>,
                )
                .map_err(errno)?,
                Step::Tmpfs(target, options) => nix::mount::mount(
                    Some(c"tmpfs"),
                    target.as_c_str(),
                    Some(c"tmpfs"),
                    MsFlags::MS_NOSUID,
                    Some(options.as_c_str()),
                )
                .map_err(errno)?,
                Step::Device(path, major, minor) => nix::sys::stat::mknod(
                    path.as_c_str(),
                    SFlag::S_IFCHR,
                    Mode::from_bits_truncate(0o666),
                    nix::sys::stat::makedev(*major, *minor),
                )
                .map_err(errno)?,
                Step::DeviceBind(source, target) => {
                    nix::fcntl::open(
                        target.as_c_str(),
                        nix::fcntl::OFlag::O_CREAT
                            | nix::fcntl::OFlag::O_WRONLY
                            | nix::fcntl::OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o666),
                    )
                    .map_err(errno)?;
                    nix::mount::mount(
                        Some(source.as_c_str()),
                        target.as_c_str(),
                        None::<&std::ffi::CStr>,
                        MsFlags::MS_BIND,
                        None::<&std::ffi::CStr>,
                    )
                    .map_err(errno)?
                }
                Step::Proc(target) => nix::mount::mount(
                    Some(c"proc"),
                    target.as_c_str(),
                    Some(c"proc"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    None::<&std::ffi::CStr>,
                )
                .map_err(errno)?,
            }
        }
        nix::unistd::sethostname(std::ffi::OsStr::from_bytes(hostname.as_bytes()))
            .map_err(errno)?;
        nix::unistd::chdir(root.as_c_str()).map_err(errno)?;
        match nix::unistd::pivot_root(dot.as_c_str(), old_root.as_c_str()) {
            Ok(()) => {
                nix::unistd::chdir(slash.as_c_str()).map_err(errno)?;
                nix::mount::umount2(old_root_absolute.as_c_str(), MntFlags::MNT_DETACH)
                    .map_err(errno)?;
            }
            // The initramfs's root cannot be pivoted away from, and the offline rollback at
            // boot (`moss fstx` in the initrd) runs there: move the new root over `/` and
            // chroot into it, as switch_root does. The old root stays underneath, out of
            // reach of every path.
            Err(nix::errno::Errno::EINVAL) => {
                nix::mount::mount(
                    Some(dot.as_c_str()),
                    slash.as_c_str(),
                    None::<&std::ffi::CStr>,
                    MsFlags::MS_MOVE,
                    None::<&std::ffi::CStr>,
                )
                .map_err(errno)?;
                nix::unistd::chroot(dot.as_c_str()).map_err(errno)?;
                nix::unistd::chdir(slash.as_c_str()).map_err(errno)?;
            }
            Err(error) => return Err(errno(error)),
        }
        nix::unistd::unlinkat(
            nix::fcntl::AT_FDCWD,
            old_root_absolute.as_c_str(),
            nix::unistd::UnlinkatFlags::RemoveDir,
        )
        .map_err(errno)?;
        nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        Ok(())
    };
    // SAFETY: `setup` only makes system calls on data prepared above (see the comment).
    unsafe { command.pre_exec(setup) };
    command.spawn()
}
