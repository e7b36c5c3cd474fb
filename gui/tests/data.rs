//! The desktop integration files: the AppStream metainfo validates, the desktop file names the
//! binary and icon, and the icon exists.

use std::{path::Path, process::Command};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");

#[test]
fn metainfo_validates_with_appstreamcli() {
    let output = Command::new("appstreamcli")
        .args(["validate", "--no-net"])
        .arg(Path::new(DATA).join("com.serpentos.Moss.metainfo.xml"))
        .output()
        .expect("appstreamcli (apt-get install appstream)");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn desktop_file_names_the_binary_and_an_existing_icon() {
    let desktop = std::fs::read_to_string(Path::new(DATA).join("com.serpentos.Moss.desktop"))
        .expect("the desktop file");
    assert!(desktop.lines().any(|line| line == "Exec=moss-gui"));
    assert!(
        desktop
            .lines()
            .any(|line| line == "Icon=com.serpentos.Moss")
    );
    let icon = Path::new(DATA).join("icons/hicolor/scalable/apps/com.serpentos.Moss.svg");
    let svg = std::fs::read_to_string(icon).expect("the icon");
    assert!(svg.contains("<svg"));
    assert_eq!(moss_gui::APP_ID, "com.serpentos.Moss");
}
