//! Finding the ESP, the XBOOTLDR partition and the root partition.
//!
//! Sources, in order: the configuration; the `LoaderDevicePartUUID` EFI variable (the ESP the
//! firmware booted from); the GPT of the disk holding the root (partition type GUIDs). Mount
//! points come from mountinfo. Every host path comes from [`BootConfig`], so fake sysfs/devfs
//! trees, mount tables and GPT images in plain files stand in for real hardware in tests.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{BootConfig, BootError, ESP_TYPE, XBOOTLDR_TYPE};

/// How a partition was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Named by the configuration or the command line.
    Configuration,
    /// Named by the `LoaderDevicePartUUID` EFI variable.
    EfiVariable,
    /// Found by its type GUID in the GPT of the root's disk.
    Gpt,
}

/// A boot partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// Its device (`/dev/sda1`), when known.
    pub device: Option<String>,
    /// Its partition GUID, when known.
    pub partuuid: Option<String>,
    /// How it was found.
    pub source: Source,
}

/// The boot partitions of an installation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Discovered {
    /// The EFI System Partition.
    pub esp: Location,
    /// The Extended Boot Loader partition, if any.
    pub xbootldr: Option<Location>,
}

impl Discovered {
    /// Where kernels and entries go: XBOOTLDR when there is one, else the ESP.
    pub fn boot(&self) -> &Path {
        self.xbootldr
            .as_ref()
            .map_or(&self.esp.mountpoint, |location| &location.mountpoint)
    }
}

/// One partition of a GPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// Its number (1-based).
    pub number: u32,
    /// Type GUID, lowercase.
    pub kind: String,
    /// Partition GUID, lowercase.
    pub guid: String,
}

/// Read the partition table of a disk (a device or an image file).
pub fn read_gpt(disk: &Path) -> Result<Vec<GptPartition>, String> {
    let mut last = String::new();
    for size in [
        gpt::disk::LogicalBlockSize::Lb512,
        gpt::disk::LogicalBlockSize::Lb4096,
    ] {
        match gpt::GptConfig::new()
            .writable(false)
            .logical_block_size(size)
            .open(disk)
        {
            Ok(table) => {
                return Ok(table
                    .partitions()
                    .iter()
                    .filter(|(_, partition)| partition.is_used())
                    .map(|(number, partition)| GptPartition {
                        number: *number,
                        kind: partition.part_type_guid.guid.to_string().to_lowercase(),
                        guid: partition.part_guid.to_string().to_lowercase(),
                    })
                    .collect());
            }
            Err(error) => last = error.to_string(),
        }
    }
    Err(format!("{} has no readable GPT ({last})", disk.display()))
}

struct Mount {
    device: String,
    mountpoint: PathBuf,
    source: String,
}

fn unescape(field: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\'
            && let Some(digits) = field.get(index + 1..index + 4)
            && let Ok(value) = u8::from_str_radix(digits, 8)
        {
            out.push(value);
            index += 4;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts(config: &BootConfig) -> Result<Vec<Mount>, BootError> {
    let text = fs::read_to_string(&config.mountinfo)
        .map_err(super::io("reading the mount table", &config.mountinfo))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().position(|field| *field == "-")?;
            Some(Mount {
                device: fields.get(2)?.to_string(),
                mountpoint: PathBuf::from(unescape(fields.get(4)?)),
                source: fields.get(separator + 2)?.to_string(),
            })
        })
        .collect())
}

/// The kernel name (`sda1`) of a mounted device.
fn mount_name(config: &BootConfig, mount: &Mount) -> Option<String> {
    fs::canonicalize(config.sysfs.join("dev/block").join(&mount.device))
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .or_else(|| {
            mount
                .source
                .strip_prefix("/dev/")
                .and_then(|rest| Path::new(rest).file_name())
                .map(|name| name.to_string_lossy().into_owned())
        })
}

fn mountpoint_of(config: &BootConfig, mounts: &[Mount], name: &str) -> Option<PathBuf> {
    mounts
        .iter()
        .rev()
        .find(|mount| mount_name(config, mount).as_deref() == Some(name))
        .map(|mount| mount.mountpoint.clone())
}

/// The disk (`sda`) a partition (`sda1`) belongs to, and the partition's number.
fn disk_of(config: &BootConfig, name: &str) -> Option<(String, u32)> {
    let device = fs::canonicalize(config.sysfs.join("class/block").join(name)).ok()?;
    let number = fs::read_to_string(device.join("partition"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let disk = device.parent()?.file_name()?.to_string_lossy().into_owned();
    Some((disk, number))
}

/// The kernel name of a partition, by GUID (devfs links) or by number (sysfs).
fn partition_name(config: &BootConfig, disk: &str, partition: &GptPartition) -> Option<String> {
    if let Ok(path) = fs::canonicalize(config.devfs.join("disk/by-partuuid").join(&partition.guid))
    {
        return path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
    }
    let directory = fs::canonicalize(config.sysfs.join("class/block").join(disk)).ok()?;
    fs::read_dir(directory)
        .ok()?
        .flatten()
        .find(|entry| {
            fs::read_to_string(entry.path().join("partition"))
                .is_ok_and(|text| text.trim() == partition.number.to_string())
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
}

/// The mount holding `root`: the one with the longest mount point that is a prefix of it.
fn root_mount<'a>(mounts: &'a [Mount], root: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|mount| root.starts_with(&mount.mountpoint))
        .max_by_key(|mount| mount.mountpoint.components().count())
}

/// The GPT partitions of the disk holding `name`, with that disk's name.
fn table_of(config: &BootConfig, name: &str) -> Result<(String, u32, Vec<GptPartition>), String> {
    let (disk, number) =
        disk_of(config, name).ok_or_else(|| format!("{name} is not a partition of a disk"))?;
    let table = read_gpt(&config.devfs.join(&disk))?;
    Ok((disk, number, table))
}

fn located(
    config: &BootConfig,
    mounts: &[Mount],
    name: String,
    partuuid: Option<String>,
    source: Source,
    what: &'static str,
    flag: &'static str,
) -> Result<Location, BootError> {
    let device = format!("/dev/{name}");
    let mountpoint = mountpoint_of(config, mounts, &name).ok_or(BootError::NotMounted {
        what,
        device: device.clone(),
        flag,
    })?;
    Ok(Location {
        mountpoint,
        device: Some(device),
        partuuid,
        source,
    })
}

/// A string EFI variable of systemd-boot's vendor GUID (`LoaderInfo`, `LoaderDevicePartUUID`):
/// 4 bytes of attributes, then UTF-16LE text ending in NUL.
pub fn loader_variable(config: &BootConfig, name: &str) -> Option<String> {
    let bytes = fs::read(
        config
            .sysfs
            .join("firmware/efi/efivars")
            .join(format!("{name}-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")),
    )
    .ok()?;
    let units: Vec<u16> = bytes
        .get(4..)?
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|unit| *unit != 0)
        .collect();
    Some(String::from_utf16(&units).ok()?.trim().to_owned())
}

/// The ESP from the EFI variable, when the firmware set it.
fn esp_from_variable(config: &BootConfig) -> Option<(String, String)> {
    let uuid = loader_variable(config, "LoaderDevicePartUUID")?.to_lowercase();
    Some((by_partuuid(config, &uuid)?, uuid))
}

/// The kernel name a `/dev/disk/by-partuuid` link points at (the link text names it: `../../sda1`).
fn by_partuuid(config: &BootConfig, uuid: &str) -> Option<String> {
    let target = fs::read_link(config.devfs.join("disk/by-partuuid").join(uuid)).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Find the boot partitions of the installation at `root`.
pub fn discover(config: &BootConfig, root: &Path) -> Result<Discovered, BootError> {
    let configured = |path: &PathBuf| Location {
        mountpoint: path.clone(),
        device: None,
        partuuid: None,
        source: Source::Configuration,
    };
    if let Some(esp) = &config.esp {
        // An ESP named by hand comes with its XBOOTLDR named by hand, or none.
        return Ok(Discovered {
            esp: configured(esp),
            xbootldr: config.xbootldr.as_ref().map(configured),
        });
    }
    let mounts = mounts(config)?;
    let (esp, esp_disk_table) = if let Some((name, uuid)) = esp_from_variable(config) {
        let table = table_of(config, &name).ok();
        let esp = located(
            config,
            &mounts,
            name,
            Some(uuid),
            Source::EfiVariable,
            "EFI System",
            "esp",
        )?;
        (esp, table)
    } else {
        let root_name = root_mount(&mounts, root)
            .and_then(|mount| mount_name(config, mount))
            .ok_or_else(|| BootError::NoEsp {
                reason: format!(
                    "no mount in {} holds {}",
                    config.mountinfo.display(),
                    root.display()
                ),
            })?;
        let (disk, number, table) =
            table_of(config, &root_name).map_err(|reason| BootError::NoEsp { reason })?;
        let partition = table
            .iter()
            .find(|partition| partition.kind == ESP_TYPE)
            .ok_or_else(|| BootError::NoEsp {
                reason: format!("the GPT of /dev/{disk} has no partition of the ESP type"),
            })?;
        let name = partition_name(config, &disk, partition).ok_or_else(|| BootError::NoEsp {
            reason: format!(
                "no device for partition {} of /dev/{disk}",
                partition.number
            ),
        })?;
        let esp = located(
            config,
            &mounts,
            name,
            Some(partition.guid.clone()),
            Source::Gpt,
            "EFI System",
            "esp",
        )?;
        (esp, Some((disk, number, table)))
    };
    let xbootldr = match (&config.xbootldr, esp_disk_table) {
        (Some(path), _) => Some(configured(path)),
        (None, Some((disk, _, table))) => {
            match table
                .iter()
                .find(|partition| partition.kind == XBOOTLDR_TYPE)
            {
                Some(partition) => {
                    let name = partition_name(config, &disk, partition).ok_or_else(|| {
                        BootError::NotMounted {
                            what: "XBOOTLDR",
                            device: format!("partition {} of /dev/{disk}", partition.number),
                            flag: "xbootldr",
                        }
                    })?;
                    Some(located(
                        config,
                        &mounts,
                        name,
                        Some(partition.guid.clone()),
                        Source::Gpt,
                        "XBOOTLDR",
                        "xbootldr",
                    )?)
                }
                None => None,
            }
        }
        (None, None) => None,
    };
    Ok(Discovered { esp, xbootldr })
}

/// The root tokens of the kernel command line: the configured ones, else
/// `root=PARTUUID=<guid>` of the GPT partition holding `root`.
pub fn root_tokens(config: &BootConfig, root: &Path) -> Result<String, BootError> {
    if let Some(tokens) = &config.root {
        return Ok(tokens.clone());
    }
    let failed = |reason: String| BootError::RootDevice { reason };
    let mounts = mounts(config)?;
    let mount = root_mount(&mounts, root).ok_or_else(|| {
        failed(format!(
            "no mount in {} holds {}",
            config.mountinfo.display(),
            root.display()
        ))
    })?;
    let name = mount_name(config, mount)
        .ok_or_else(|| failed(format!("the device of {} is unknown", mount.source)))?;
    let (disk, number, table) = table_of(config, &name).map_err(failed)?;
    let partition = table
        .iter()
        .find(|partition| partition.number == number)
        .ok_or_else(|| failed(format!("the GPT of /dev/{disk} has no partition {number}")))?;
    Ok(format!("root=PARTUUID={}", partition.guid))
}
