//! Package metadata: the typed view of one Meta payload.

use serde::{Deserialize, Serialize};

use crate::payload::meta::{Dependency, DependencyKind, Record, Tag, Value};

/// The metadata of one package, as carried by a Meta payload of a binary package, a repository
/// index entry or a build manifest entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Upstream version text.
    pub version: String,
    /// Recipe release number.
    pub release: u64,
    /// Build counter.
    pub build_release: u64,
    /// Architecture, e.g. `x86_64`.
    pub architecture: String,
    /// One-line summary.
    pub summary: String,
    /// Longer description.
    pub description: String,
    /// Project home page.
    pub homepage: String,
    /// SPDX licence ids.
    pub licenses: Vec<String>,
    /// Source package grouping id.
    pub source_id: String,
    /// Runtime dependencies.
    pub depends: Vec<Dependency>,
    /// What the package provides besides its own name.
    pub provides: Vec<Dependency>,
    /// What cannot be installed beside it.
    pub conflicts: Vec<Dependency>,
    /// Build dependencies (build manifests).
    pub build_depends: Vec<Dependency>,
    /// Repository index: location of the `.stone` relative to the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Repository index: lowercase hex SHA-256 of the `.stone` (the package id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Repository index: size of the `.stone` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Upstream source URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_uri: Option<String>,
    /// Path inside the upstream source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_path: Option<String>,
    /// Git ref of the upstream source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
    /// Records with tags this crate does not know, kept so that a rewrite loses nothing.
    #[serde(skip)]
    pub unknown: Vec<Record>,
}

/// A Meta payload lacks a field that every package must carry, or carries it with the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The field is absent.
    #[error("missing metadata field {0:?}")]
    Missing(Tag),
    /// The field has a primitive kind that cannot hold it.
    #[error("metadata field {0:?} has the wrong primitive kind")]
    WrongKind(Tag),
}

impl Package {
    /// The meta id `name-version-release.arch`, used for extraction directories.
    pub fn meta_id(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.architecture
        )
    }

    /// The file name boulder gives the package: `name-version-release-build-arch.stone`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}-{}-{}.stone",
            self.name, self.version, self.release, self.build_release, self.architecture
        )
    }

    /// Build the typed view from records. Repeated tags accumulate; unknown dependency kinds
    /// are dropped, as moss does.
    pub fn from_records(records: &[Record]) -> Result<Self, MetadataError> {
        let mut package = PartialPackage::default();
        for record in records {
            package.add(record)?;
        }
        package.finish()
    }

    /// Encode as records, in the canonical order of the upstream writer (plus the build and
    /// source fields it drops, so that manifests round-trip).
    pub fn to_records(&self) -> Vec<Record> {
        let text = |tag, value: &str| Record::new(tag, Value::String(value.to_owned()));
        let mut records = vec![
            text(Tag::Name, &self.name),
            text(Tag::Version, &self.version),
            Record::new(Tag::Release, Value::Uint64(self.release)),
            Record::new(Tag::BuildRelease, Value::Uint64(self.build_release)),
            text(Tag::Architecture, &self.architecture),
            text(Tag::Summary, &self.summary),
            text(Tag::Description, &self.description),
            text(Tag::SourceId, &self.source_id),
            text(Tag::Homepage, &self.homepage),
        ];
        if let Some(uri) = &self.uri {
            records.push(text(Tag::PackageUri, uri));
        }
        if let Some(hash) = &self.hash {
            records.push(text(Tag::PackageHash, hash));
        }
        if let Some(size) = self.size {
            records.push(Record::new(Tag::PackageSize, Value::Uint64(size)));
        }
        for (tag, value) in [
            (Tag::SourceUri, &self.source_uri),
            (Tag::SourcePath, &self.source_path),
            (Tag::SourceRef, &self.source_ref),
        ] {
            if let Some(value) = value {
                records.push(text(tag, value));
            }
        }
        records.extend(
            self.licenses
                .iter()
                .map(|license| text(Tag::License, license)),
        );
        fn dependencies(
            tag: Tag,
            list: &[Dependency],
            wrap: fn(Dependency) -> Value,
        ) -> impl Iterator<Item = Record> + '_ {
            list.iter()
                .map(move |dependency| Record::new(tag, wrap(dependency.clone())))
        }
        records.extend(dependencies(Tag::Depends, &self.depends, Value::Dependency));
        records.extend(
            dependencies(Tag::Provides, &self.provides, Value::Provider)
                .filter(|record| !self.is_own_name(&record.value)),
        );
        records.extend(dependencies(
            Tag::Conflicts,
            &self.conflicts,
            Value::Provider,
        ));
        records.extend(dependencies(
            Tag::BuildDepends,
            &self.build_depends,
            Value::Dependency,
        ));
        records.extend(self.unknown.iter().cloned());
        records
    }

    /// Whether a provider record only restates the implied `name(<Name>)`.
    fn is_own_name(&self, value: &Value) -> bool {
        matches!(value, Value::Provider(dependency)
            if dependency.kind == DependencyKind::Name && dependency.target == self.name)
    }
}

#[derive(Default)]
struct PartialPackage {
    name: Option<String>,
    version: Option<String>,
    release: Option<u64>,
    build_release: Option<u64>,
    architecture: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    homepage: Option<String>,
    source_id: Option<String>,
    licenses: Vec<String>,
    depends: Vec<Dependency>,
    provides: Vec<Dependency>,
    conflicts: Vec<Dependency>,
    build_depends: Vec<Dependency>,
    uri: Option<String>,
    hash: Option<String>,
    size: Option<u64>,
    source_uri: Option<String>,
    source_path: Option<String>,
    source_ref: Option<String>,
    unknown: Vec<Record>,
}

impl PartialPackage {
    fn add(&mut self, record: &Record) -> Result<(), MetadataError> {
        let tag = record.tag;
        let text = || {
            record
                .value
                .as_str()
                .map(str::to_owned)
                .ok_or(MetadataError::WrongKind(tag))
        };
        let number = || record.value.as_u64().ok_or(MetadataError::WrongKind(tag));
        let dependency = || match &record.value {
            Value::Dependency(dependency) | Value::Provider(dependency) => {
                Ok((!matches!(dependency.kind, DependencyKind::Unknown(_)))
                    .then(|| dependency.clone()))
            }
            _ => Err(MetadataError::WrongKind(tag)),
        };
        match tag {
            Tag::Name => self.name = Some(text()?),
            Tag::Version => self.version = Some(text()?),
            Tag::Architecture => self.architecture = Some(text()?),
            Tag::Summary => self.summary = Some(text()?),
            Tag::Description => self.description = Some(text()?),
            Tag::Homepage => self.homepage = Some(text()?),
            Tag::SourceId => self.source_id = Some(text()?),
            Tag::Release => self.release = Some(number()?),
            Tag::BuildRelease => self.build_release = Some(number()?),
            Tag::License => self.licenses.push(text()?),
            Tag::PackageUri => self.uri = Some(text()?),
            Tag::PackageHash => self.hash = Some(text()?),
            Tag::PackageSize => self.size = Some(number()?),
            Tag::SourceUri => self.source_uri = Some(text()?),
            Tag::SourcePath => self.source_path = Some(text()?),
            Tag::SourceRef => self.source_ref = Some(text()?),
            Tag::Depends => self.depends.extend(dependency()?),
            Tag::Provides => self.provides.extend(dependency()?),
            Tag::Conflicts => self.conflicts.extend(dependency()?),
            Tag::BuildDepends => self.build_depends.extend(dependency()?),
            Tag::Unknown(_) => self.unknown.push(record.clone()),
        }
        Ok(())
    }

    fn finish(self) -> Result<Package, MetadataError> {
        fn required<T>(value: Option<T>, tag: Tag) -> Result<T, MetadataError> {
            value.ok_or(MetadataError::Missing(tag))
        }
        let name = required(self.name, Tag::Name)?;
        let mut provides = self.provides;
        // `name(<Name>)` is implied; keep the list free of it so that a round trip is stable.
        provides
            .retain(|provider| !(provider.kind == DependencyKind::Name && provider.target == name));
        Ok(Package {
            version: required(self.version, Tag::Version)?,
            release: required(self.release, Tag::Release)?,
            build_release: required(self.build_release, Tag::BuildRelease)?,
            architecture: required(self.architecture, Tag::Architecture)?,
            summary: required(self.summary, Tag::Summary)?,
            description: required(self.description, Tag::Description)?,
            homepage: required(self.homepage, Tag::Homepage)?,
            source_id: required(self.source_id, Tag::SourceId)?,
            name,
            licenses: self.licenses,
            depends: self.depends,
            provides,
            conflicts: self.conflicts,
            build_depends: self.build_depends,
            uri: self.uri,
            hash: self.hash,
            size: self.size,
            source_uri: self.source_uri,
            source_path: self.source_path,
            source_ref: self.source_ref,
            unknown: self.unknown,
        })
    }
}
