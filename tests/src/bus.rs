//! A private system-like D-Bus with the real polkitd and `mossd` on a temporary root.
//!
//! Each [`TestBus`] runs its own `dbus-daemon` (the system bus's default policy plus the project's
//! `dbus/system.d` policy) and its own `polkitd`. polkit reads actions and rules from fixed
//! system paths, so the project's actions file and a test rule (root and members of the group
//! `mosstest` may do everything; nobody else) are installed there while any harness is alive and
//! removed by the last one.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The test group whose members polkit allows.
pub const TEST_GROUP: &str = "mosstest";
/// A member of [`TEST_GROUP`].
pub const TEST_USER: &str = "mosstester";

const ACTIONS_TARGET: &str = "/usr/share/polkit-1/actions/com.serpentos.moss.policy";
const RULES_TARGET: &str = "/etc/polkit-1/rules.d/49-moss-tests.rules";
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";

/// The project's root directory.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("project dir")
}

/// Build the workspace `packages` into the test's own target directory and profile; that
/// profile directory, where their binaries are.
pub fn build_packages(packages: &[&str]) -> PathBuf {
    // target/debug/deps/<test> -> target/debug
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let target_dir = profile_dir.parent().expect("target root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet"]);
    for package in packages {
        command.args(["-p", package]);
    }
    command
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(project_dir());
    // Benchmarks run from target/release: they measure release binaries.
    if profile_dir.ends_with("release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "building {packages:?} failed");
    profile_dir.to_owned()
}

/// The `mossd` and `moss` binaries, built once per test process.
pub fn binaries() -> &'static (PathBuf, PathBuf) {
    static BINARIES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let profile_dir = build_packages(&["mossd", "moss-client"]);
        (profile_dir.join("mossd"), profile_dir.join("moss"))
    })
}

/// Who runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// uid 0.
    Root,
    /// [`TEST_USER`], a member of [`TEST_GROUP`].
    Tester,
    /// uid 65534.
    Nobody,
}

impl Who {
    /// Wrap `program` so that it runs as this user.
    pub fn command(self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Self::Root => Command::new(program),
            Self::Tester => {
                let mut command = Command::new("setpriv");
                let (uid, gid) = tester_ids();
                command
                    .args([
                        format!("--reuid={uid}"),
                        format!("--regid={gid}"),
                        "--init-groups".into(),
                        "--".into(),
                    ])
                    .arg(program);
                command
            }
            Self::Nobody => {
                let mut command = Command::new("setpriv");
                command
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                    .arg(program);
                command
            }
        }
    }
}

fn tester_ids() -> (u32, u32) {
    let output = Command::new("id").args(["-u", TEST_USER]).output().unwrap();
    let uid = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    let output = Command::new("getent")
        .args(["group", TEST_GROUP])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout).to_string();
    let gid = line.split(':').nth(2).unwrap().parse().unwrap();
    (uid, gid)
}

/// Run `body` holding the harness lock (a file lock shared by every test process).
fn with_lock<T>(body: impl FnOnce(&mut u32) -> T) -> T {
    let directory = Path::new("/run/lock");
    fs::create_dir_all(directory).unwrap();
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(directory.join("moss-tests.lock"))
        .unwrap();
    let mut lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, error)| error)
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut *lock, &mut text).unwrap();
    let mut users: u32 = text.trim().parse().unwrap_or(0);
    let result = body(&mut users);
    lock.set_len(0).unwrap();
    std::io::Seek::seek(&mut *lock, std::io::SeekFrom::Start(0)).unwrap();
    write!(lock, "{users}").unwrap();
    result
}

fn install_system_files() {
    with_lock(|users| {
        if *users == 0 || !Path::new(RULES_TARGET).exists() {
            let run = |program: &str, args: &[&str]| {
                let _ = Command::new(program)
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            };
            run("groupadd", &["--system", TEST_GROUP]);
            run(
                "useradd",
                &[
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "-G",
                    TEST_GROUP,
                    TEST_USER,
                ],
            );
            fs::create_dir_all("/usr/share/polkit-1/actions").unwrap();
            fs::copy(
                project_dir().join("dbus/polkit/com.serpentos.moss.policy"),
                ACTIONS_TARGET,
            )
            .unwrap();
            fs::create_dir_all("/etc/polkit-1/rules.d").unwrap();
            fs::write(
                RULES_TARGET,
                format!(
                    "// Installed by moss's test harness while its tests run.\n\
                     polkit.addRule(function(action, subject) {{\n\
                     \x20   if (action.id.indexOf(\"com.serpentos.moss.\") == 0 ||\n\
                     \x20       action.id.indexOf(\"org.freedesktop.packagekit.\") == 0) {{\n\
                     \x20       if (subject.isInGroup(\"{TEST_GROUP}\")) {{ return polkit.Result.YES; }}\n\
                     \x20       return polkit.Result.NO;\n\
                     \x20   }}\n\
                     }});\n"
                ),
            )
            .unwrap();
        }
        *users += 1;
    });
}

fn remove_system_files() {
    with_lock(|users| {
        *users = users.saturating_sub(1);
        if *users == 0 {
            let _ = fs::remove_file(RULES_TARGET);
            let _ = fs::remove_file(ACTIONS_TARGET);
            let _ = Command::new("userdel").arg(TEST_USER).status();
            let _ = Command::new("groupdel").arg(TEST_GROUP).status();
        }
    });
}

/// A private system bus with polkitd.
#[derive(Debug)]
pub struct TestBus {
    directory: tempfile::TempDir,
    /// The bus address for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
    dbus: Child,
    polkitd: Option<Child>,
}

impl TestBus {
    /// Start a bus and polkitd.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// Start a bus, with or without polkitd (to test what happens when polkit is unreachable).
    pub fn start_with(polkit: bool) -> Self {
        Self::start_inner(polkit, None)
    }

    /// Start a bus that activates mossd with the project's activation file (its `Exec` pointed
    /// at the built binary serving `root`, exiting after `idle_exit` idle seconds).
    pub fn start_activating(root: &Path, idle_exit: u64) -> Self {
        Self::start_inner(true, Some((root, idle_exit)))
    }

    fn start_inner(polkit: bool, activation: Option<(&Path, u64)>) -> Self {
        install_system_files();
        let directory = tempfile::Builder::new()
            .prefix("moss-bus.")
            .tempdir()
            .unwrap();
        let path = &directory.path().to_owned();
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let policy_dir = path.join("system.d");
        fs::create_dir_all(&policy_dir).unwrap();
        for entry in fs::read_dir(project_dir().join("dbus/system.d")).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), policy_dir.join(entry.file_name())).unwrap();
        }
        let socket = path.join("system_bus_socket");
        let mut config = bus_config(&socket, &policy_dir);
        if let Some((root, idle_exit)) = activation {
            let services = path.join("services");
            fs::create_dir_all(&services).unwrap();
            let name = "com.serpentos.Moss1.service";
            let file = fs::read_to_string(project_dir().join("dbus/system-services").join(name))
                .unwrap()
                .replace(
                    "Exec=/usr/libexec/mossd",
                    &format!(
                        "Exec={} --root {} --idle-exit {idle_exit}",
                        binaries().0.display(),
                        root.display()
                    ),
                );
            fs::write(services.join(name), file).unwrap();
            config = config.replace(
                "<includedir>",
                &format!(
                    "<servicedir>{}</servicedir>\n  <includedir>",
                    services.display()
                ),
            );
        }
        fs::write(path.join("bus.conf"), config).unwrap();
        let dbus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", path.join("bus.conf").display()))
            .args(["--nofork", "--nosyslog"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(path.join("dbus.log")).unwrap())
            .spawn()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        wait_for(|| socket.exists(), "the bus socket");
        let address = format!("unix:path={}", socket.display());
        let mut bus = Self {
            directory,
            address,
            dbus,
            polkitd: None,
        };
        if polkit {
            let child = Command::new(POLKITD)
                .arg("--no-debug")
                .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
                .stdout(Stdio::null())
                .stderr(fs::File::create(path.join("polkitd.log")).unwrap())
                .spawn()
                .expect("polkitd (apt-get install polkitd)");
            bus.polkitd = Some(child);
            bus.wait_for_name("org.freedesktop.PolicyKit1");
        }
        bus
    }

    /// The bus's directory (logs, scratch).
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Whether `name` has an owner on the bus.
    pub fn has_name(&self, name: &str) -> bool {
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(["status", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Wait until `name` is owned.
    pub fn wait_for_name(&self, name: &str) {
        wait_for(|| self.has_name(name), name);
    }

    /// A command run as `who` with this bus as its system bus.
    pub fn command(&self, who: Who, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = who.command(program);
        command.env("DBUS_SYSTEM_BUS_ADDRESS", &self.address);
        command.env("NO_COLOR", "1");
        command
    }

    /// `moss` as `who` against this bus.
    pub fn moss(&self, who: Who) -> Command {
        self.command(who, &binaries().1)
    }

    /// `busctl --system` as `who`.
    pub fn busctl(&self, who: Who) -> Command {
        let mut command = self.command(who, "busctl");
        command.arg("--system");
        command
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        if let Some(mut child) = self.polkitd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
        remove_system_files();
    }
}

fn bus_config(socket: &Path, policy_dir: &Path) -> String {
    fs::read_to_string(project_dir().join("dbus/private-bus.conf.in"))
        .expect("dbus/private-bus.conf.in")
        .replace("@SOCKET@", &socket.display().to_string())
        .replace("@POLICY@", &policy_dir.display().to_string())
}

/// Poll `ready` for up to 20 s.
pub fn wait_for(mut ready: impl FnMut() -> bool, what: &str) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `mossd`.
#[derive(Debug)]
pub struct Mossd {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
}

impl Mossd {
    /// Start `mossd --root ROOT` on `bus` with extra environment, and wait for its name.
    pub fn start(bus: &TestBus, root: &Path, environment: &[(&str, &str)]) -> Self {
        Self::start_with(bus, root, environment, &["--idle-exit", "0"])
    }

    /// Start with explicit extra arguments.
    pub fn start_with(
        bus: &TestBus,
        root: &Path,
        environment: &[(&str, &str)],
        arguments: &[&str],
    ) -> Self {
        static STARTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let number = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = bus.directory().join(format!("mossd-{number}.log"));
        let mut command = Command::new(&binaries().0);
        command
            .arg("--root")
            .arg(root)
            .args(arguments)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .env("MOSSD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        for (key, value) in environment {
            command.env(key, value);
        }
        let child = command.spawn().expect("start mossd");
        let mut mossd = Self {
            child: Some(child),
            log,
        };
        let started = Instant::now();
        while !bus.has_name(moss_proto_name()) {
            if let Some(child) = mossd.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("mossd exited with {status}: {}", mossd.log_text());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "mossd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mossd
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM it and wait for it to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().is_ok_and(|status| status.success())
    }

    /// Wait for it to exit by itself (idle exit), up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn moss_proto_name() -> &'static str {
    "com.serpentos.Moss1"
}

impl Drop for Mossd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A repository of the example stones (three real packages) indexed in a fresh directory that
/// every user can read.
pub fn example_repository(directory: &Path) -> PathBuf {
    let repository = directory.join("repo");
    fs::create_dir_all(&repository).unwrap();
    for entry in fs::read_dir(project_dir().join("examples/stones")).unwrap() {
        let entry = entry.unwrap();
        if entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "stone")
        {
            fs::copy(entry.path(), repository.join(entry.file_name())).unwrap();
        }
    }
    let status = Command::new(&binaries().1)
        .arg("index")
        .arg(&repository)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    repository.join("stone.index")
}
