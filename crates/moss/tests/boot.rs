//! Boot partition discovery on GPT images in files (written by sfdisk and by the `gpt` crate)
//! with fake sysfs/devfs trees, EFI variables and mount tables. What a sync writes is tested in
//! `boot_entries.rs`.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use moss::boot::{BootConfig, BootError, Source, discover};

mod common;

const ESP_GUID: &str = "0a1b2c3d-0000-4000-8000-000000000001";
const XBOOTLDR_GUID: &str = "0a1b2c3d-0000-4000-8000-000000000002";
const ROOT_GUID: &str = "0a1b2c3d-0000-4000-8000-000000000003";

/// A GPT disk image: ESP, optionally XBOOTLDR, then the root partition. Written with sfdisk
/// when it is installed (an independent writer), else with the `gpt` crate.
fn disk_image(path: &Path, xbootldr: bool) {
    disk_image_with(path, xbootldr, true);
}

fn disk_image_with(path: &Path, xbootldr: bool, sfdisk: bool) {
    let file = fs::File::create(path).unwrap();
    file.set_len(64 << 20).unwrap();
    drop(file);
    let mut partitions = vec![(
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        ESP_GUID,
        "ESP",
        16u64 << 20,
    )];
    if xbootldr {
        partitions.push((
            "BC13C2FF-59E6-4262-A352-B275FD6F7172",
            XBOOTLDR_GUID,
            "XBOOTLDR",
            16 << 20,
        ));
    }
    partitions.push((
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        ROOT_GUID,
        "root",
        16 << 20,
    ));
    if let Some(mut child) = sfdisk
        .then(|| {
            Command::new("sfdisk")
                .args(["--quiet", "--no-reread", "--no-tell-kernel"])
                .arg(path)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .ok()
        })
        .flatten()
    {
        use std::io::Write;
        let mut script = String::from("label: gpt\n");
        for (kind, guid, name, size) in &partitions {
            script.push_str(&format!(
                "size={}KiB, type={kind}, uuid={guid}, name=\"{name}\"\n",
                size >> 10
            ));
        }
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "sfdisk failed");
        return;
    }
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create(path)
        .unwrap();
    for (kind, guid, name, size) in &partitions {
        let kind = gpt::partition_types::Type {
            guid: kind.parse().unwrap(),
            os: gpt::partition_types::OperatingSystem::None,
        };
        let id = disk.add_partition(name, *size, kind, 0, None).unwrap();
        let mut partition = disk.partitions()[&id].clone();
        partition.part_guid = guid.parse().unwrap();
        let mut all = disk.partitions().clone();
        all.insert(id, partition);
        disk.update_partitions(all).unwrap();
    }
    disk.write().unwrap();
}

/// A fake machine: /sys, /dev (with the disk image as /dev/vda), a mount table.
struct Machine {
    _work: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    esp: PathBuf,
    xbootldr: PathBuf,
}

impl Machine {
    fn new(xbootldr: bool) -> Self {
        let work = tempfile::tempdir().unwrap();
        let base = work.path().to_path_buf();
        let sys = base.join("sys");
        let dev = base.join("dev");
        fs::create_dir_all(dev.join("disk/by-partuuid")).unwrap();
        fs::create_dir_all(sys.join("class/block")).unwrap();
        fs::create_dir_all(sys.join("dev/block")).unwrap();
        disk_image(&dev.join("vda"), xbootldr);
        let disk = sys.join("devices/virtual/block/vda");
        fs::create_dir_all(&disk).unwrap();
        symlink(
            "../../devices/virtual/block/vda",
            sys.join("class/block/vda"),
        )
        .unwrap();
        let guids: Vec<&str> = if xbootldr {
            vec![ESP_GUID, XBOOTLDR_GUID, ROOT_GUID]
        } else {
            vec![ESP_GUID, ROOT_GUID]
        };
        for (index, guid) in guids.iter().enumerate() {
            let number = index + 1;
            let name = format!("vda{number}");
            fs::create_dir_all(disk.join(&name)).unwrap();
            fs::write(disk.join(&name).join("partition"), format!("{number}\n")).unwrap();
            fs::write(disk.join(&name).join("dev"), format!("253:{number}\n")).unwrap();
            symlink(
                format!("../../devices/virtual/block/vda/{name}"),
                sys.join("class/block").join(&name),
            )
            .unwrap();
            symlink(
                format!("../../devices/virtual/block/vda/{name}"),
                sys.join("dev/block").join(format!("253:{number}")),
            )
            .unwrap();
            symlink(
                format!("../../{name}"),
                dev.join("disk/by-partuuid").join(guid),
            )
            .unwrap();
        }
        let root = base.join("root");
        let esp = base.join("efi dir");
        let xbootldr_dir = base.join("boot");
        for directory in [&root, &esp, &xbootldr_dir] {
            fs::create_dir_all(directory).unwrap();
        }
        Self {
            _work: work,
            base,
            root,
            esp,
            xbootldr: xbootldr_dir,
        }
    }

    /// Mount table: the root partition at the root, and the given partitions at their dirs.
    fn mount(&self, esp: bool, xbootldr: bool) {
        let root_partition = if self.xbootldr_in_table() { 3 } else { 2 };
        let escape = |path: &Path| path.display().to_string().replace(' ', "\\040");
        let mut text = format!(
            "21 1 253:{root_partition} / {} rw,relatime shared:1 - ext4 /dev/vda{root_partition} rw\n",
            escape(&self.root)
        );
        if esp {
            text.push_str(&format!(
                "22 21 253:1 / {} rw,relatime shared:2 - vfat /dev/vda1 rw,fmask=0077\n",
                escape(&self.esp)
            ));
        }
        if xbootldr {
            text.push_str(&format!(
                "23 21 253:2 / {} rw,relatime - vfat /dev/vda2 rw\n",
                escape(&self.xbootldr)
            ));
        }
        fs::write(self.base.join("mountinfo"), text).unwrap();
    }

    fn xbootldr_in_table(&self) -> bool {
        self.base.join("sys/class/block/vda3").exists()
    }

    fn config(&self) -> BootConfig {
        BootConfig {
            sysfs: self.base.join("sys"),
            devfs: self.base.join("dev"),
            mountinfo: self.base.join("mountinfo"),
            ..BootConfig::default()
        }
    }

    fn efi_variable(&self, uuid: &str) {
        let directory = self.base.join("sys/firmware/efi/efivars");
        fs::create_dir_all(&directory).unwrap();
        let mut bytes = vec![0x06, 0, 0, 0];
        for unit in uuid.encode_utf16().chain([0]) {
            bytes.extend(unit.to_le_bytes());
        }
        fs::write(
            directory.join("LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"),
            bytes,
        )
        .unwrap();
    }
}

#[test]
fn discovery_reads_the_gpt_of_the_root_disk() {
    let machine = Machine::new(true);
    machine.mount(true, true);
    let found = discover(&machine.config(), &machine.root).unwrap();
    assert_eq!(
        found.esp.mountpoint, machine.esp,
        "mount points are unescaped"
    );
    assert_eq!(found.esp.device.as_deref(), Some("/dev/vda1"));
    assert_eq!(found.esp.partuuid.as_deref(), Some(ESP_GUID));
    assert_eq!(found.esp.source, Source::Gpt);
    let xbootldr = found.xbootldr.as_ref().unwrap();
    assert_eq!(xbootldr.mountpoint, machine.xbootldr);
    assert_eq!(xbootldr.partuuid.as_deref(), Some(XBOOTLDR_GUID));
    assert_eq!(found.boot(), machine.xbootldr);
    assert_eq!(
        moss::boot::root_tokens(&machine.config(), &machine.root).unwrap(),
        format!("root=PARTUUID={ROOT_GUID}")
    );
    // Our reader agrees with the image's table.
    let table = moss::boot::read_gpt(&machine.base.join("dev/vda")).unwrap();
    let kinds: Vec<&str> = table
        .iter()
        .map(|partition| partition.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            moss::boot::ESP_TYPE,
            moss::boot::XBOOTLDR_TYPE,
            "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
        ]
    );
}

#[test]
fn images_written_by_sfdisk_and_by_the_gpt_crate_read_the_same() {
    let work = tempfile::tempdir().unwrap();
    let (first, second) = (
        work.path().join("sfdisk.img"),
        work.path().join("crate.img"),
    );
    disk_image_with(&first, true, true);
    disk_image_with(&second, true, false);
    let first = moss::boot::read_gpt(&first).unwrap();
    assert_eq!(first, moss::boot::read_gpt(&second).unwrap());
    let guids: Vec<&str> = first
        .iter()
        .map(|partition| partition.guid.as_str())
        .collect();
    assert_eq!(guids, [ESP_GUID, XBOOTLDR_GUID, ROOT_GUID]);
}

#[test]
fn without_xbootldr_everything_goes_to_the_esp() {
    let machine = Machine::new(false);
    machine.mount(true, false);
    let found = discover(&machine.config(), &machine.root).unwrap();
    assert_eq!(found.esp.mountpoint, machine.esp);
    assert_eq!(found.xbootldr, None);
    assert_eq!(found.boot(), machine.esp);
    assert_eq!(
        moss::boot::root_tokens(&machine.config(), &machine.root).unwrap(),
        format!("root=PARTUUID={ROOT_GUID}")
    );
}

#[test]
fn the_efi_variable_names_the_esp() {
    let machine = Machine::new(true);
    machine.mount(true, true);
    // Upper case, as firmware writes it.
    machine.efi_variable(&ESP_GUID.to_uppercase());
    let found = discover(&machine.config(), &machine.root).unwrap();
    assert_eq!(
        moss::boot::loader_variable(&machine.config(), "LoaderDevicePartUUID").as_deref(),
        Some(ESP_GUID.to_uppercase().as_str())
    );
    assert_eq!(found.esp.source, Source::EfiVariable);
    assert_eq!(found.esp.partuuid.as_deref(), Some(ESP_GUID));
    assert_eq!(found.esp.mountpoint, machine.esp);
    assert_eq!(found.xbootldr.unwrap().mountpoint, machine.xbootldr);
}

#[test]
fn unmounted_or_missing_partitions_are_errors_and_configuration_overrides() {
    let machine = Machine::new(true);
    machine.mount(false, true);
    let error = discover(&machine.config(), &machine.root).unwrap_err();
    assert!(
        matches!(&error, BootError::NotMounted { device, .. } if device == "/dev/vda1"),
        "{error}"
    );
    assert!(error.to_string().contains("--esp DIR"), "{error}");
    machine.mount(true, false);
    let error = discover(&machine.config(), &machine.root).unwrap_err();
    assert!(
        matches!(
            &error,
            BootError::NotMounted {
                what: "XBOOTLDR",
                ..
            }
        ),
        "{error}"
    );
    // A root on no known disk: no ESP, said so.
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(
        machine.base.join("mountinfo"),
        "1 0 0:5 / /nowhere rw - tmpfs tmpfs rw\n",
    )
    .unwrap();
    let error = discover(&machine.config(), elsewhere.path()).unwrap_err();
    assert!(matches!(error, BootError::NoEsp { .. }), "{error}");
    // Named directories win over everything.
    let config = BootConfig {
        esp: Some(machine.esp.clone()),
        xbootldr: Some(machine.xbootldr.clone()),
        ..machine.config()
    };
    let found = discover(&config, elsewhere.path()).unwrap();
    assert_eq!(found.esp.source, Source::Configuration);
    assert_eq!(found.esp.mountpoint, machine.esp);
    assert_eq!(found.boot(), machine.xbootldr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_writes_entries_to_the_discovered_partitions() {
    let machine = Machine::new(true);
    machine.mount(true, true);
    let root = &machine.root;
    fs::create_dir_all(root.join("etc/moss")).unwrap();
    fs::write(
        root.join("etc/moss/boot.yaml"),
        format!(
            "sysfs: {}\ndevfs: {}\nmountinfo: {}\n",
            machine.base.join("sys").display(),
            machine.base.join("dev").display(),
            machine.base.join("mountinfo").display()
        ),
    )
    .unwrap();
    let stones = machine.base.join("stones");
    let package = common::stone(
        &stones,
        "linux",
        "1",
        &[
            common::file("lib/os-release", "ID=serpentos\nNAME=\"Serpent OS\"\n"),
            common::file("lib/kernel/6.1.0/vmlinuz", "kernel"),
            common::file("lib/kernel/6.1.0/50-default.initrd", "initrd"),
        ],
        &[],
    );
    let moss = moss::Moss::open(root, std::sync::Arc::new(moss::events::Silent))
        .await
        .unwrap();
    let unpacked = moss
        .add_stones(vec![(package, None, "local".to_owned())])
        .await
        .unwrap();
    moss.apply(
        vec![moss::db::Selection {
            package: unpacked[0].id.clone(),
            explicit: true,
            reason: None,
        }],
        "Install",
    )
    .await
    .unwrap();
    // Kernels and entries on XBOOTLDR, loader.conf on the ESP (a mount point with a space).
    let entry = fs::read_to_string(
        machine
            .xbootldr
            .join("loader/entries/serpentos-1-6.1.0.conf"),
    )
    .unwrap();
    assert!(
        entry.ends_with(&format!(
            "options root=PARTUUID={ROOT_GUID} rw moss.fstx=1\n"
        )),
        "{entry}"
    );
    assert_eq!(
        fs::read_to_string(machine.esp.join("loader/loader.conf")).unwrap(),
        "default serpentos-1-6.1.0.conf\n"
    );
    assert!(!machine.esp.join("loader/entries").exists());
    // What firmware and loader this is, from the (fake) efivars.
    machine.efi_variable(&ESP_GUID.to_uppercase());
    let variables = machine.base.join("sys/firmware/efi/efivars");
    let mut info = vec![6, 0, 0, 0];
    for unit in "systemd-boot 257".encode_utf16().chain([0]) {
        info.extend(unit.to_le_bytes());
    }
    fs::write(
        variables.join("LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"),
        info,
    )
    .unwrap();
    let status = moss
        .boot_status(&BootConfig::load(root).unwrap())
        .await
        .unwrap();
    assert_eq!(status.firmware, "uefi");
    assert_eq!(status.bootloader.as_deref(), Some("systemd-boot 257"));
    assert_eq!(status.esp.unwrap().source, Source::EfiVariable);
    assert_eq!(
        status.root.as_deref(),
        Some(format!("root=PARTUUID={ROOT_GUID}").as_str())
    );
    assert!(status.entries.iter().all(|entry| entry.installed));
}
