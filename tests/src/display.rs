//! A headless desktop for the window's end-to-end tests: an Xvfb display, and `moss-gui` driven
//! through AT-SPI by `tests/gui/drive.py` inside its own session bus (with the accessibility
//! bus it activates), against a [`crate::bus::TestBus`].

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
};

use crate::bus::{TestBus, Who, build_packages, project_dir};

/// The `moss-gui` binary, built once per test process.
pub fn gui_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_packages(&["moss-gui"]).join("moss-gui"))
}

/// An Xvfb display.
#[derive(Debug)]
pub struct Display {
    child: Child,
    /// `:N`.
    pub name: String,
}

impl Display {
    /// Start Xvfb on a display number it picks itself (`-displayfd` reports it once the server
    /// accepts connections), 1280×800, with a black root (`-br`, so that screenshots trim to
    /// the window), without the reset after the last client leaves (clients that come and go,
    /// like the accessibility bus launcher, would otherwise make the next one fail), open to every local user (`-ac`) so that the refused-user test can draw on
    /// it too.
    pub fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24"])
            .args(["-nolisten", "tcp", "-ac", "-br", "-noreset"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt-get install xvfb)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("Xvfb's stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("Xvfb's display number");
        let number: u32 = line.trim().parse().expect("a display number from Xvfb");
        Self {
            child,
            name: format!(":{number}"),
        }
    }

    /// Run the driver's `scenario` as `who`: a session bus (`dbus-run-session`), this display,
    /// `bus` as the system bus; screenshots go to `screenshots`. Returns its output.
    pub fn drive(&self, bus: &TestBus, who: Who, scenario: &str, screenshots: &Path) -> Output {
        let home = tempfile::Builder::new()
            .prefix("moss-gui-home.")
            .tempdir()
            .unwrap()
            .keep();
        fs::create_dir_all(screenshots).unwrap();
        if who == Who::Nobody {
            for path in [&home, &screenshots.to_path_buf()] {
                let _ = Command::new("chown").arg("65534:65534").arg(path).status();
            }
        }
        fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut command = bus.command(who, "dbus-run-session");
        command
            .args(["--", "/usr/bin/python3"])
            .arg(project_dir().join("tests/gui/drive.py"))
            .arg(scenario)
            .arg(gui_binary())
            .arg(screenshots)
            .env("DISPLAY", &self.name)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("GDK_BACKEND", "x11")
            // Xvfb has no GPU: draw with cairo, as GTK would fall back to anyway.
            .env("GSK_RENDERER", "cairo")
            .env("GSETTINGS_BACKEND", "memory")
            .env("GTK_A11Y", "atspi")
            .env("LANG", "C.UTF-8")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("AT_SPI_BUS_ADDRESS");
        let output = command.output().expect("run the GUI driver");
        let _ = fs::remove_dir_all(&home);
        output
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        // SIGTERM: Xvfb then removes its socket and lock file.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The `key: value` lines of the driver's output for `key`.
pub fn values<'a>(output: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}: ");
    output
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}
