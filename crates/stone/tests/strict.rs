//! Strict mode: the fixtures and what our writer produces hold nothing upstream does not know;
//! an unknown tag is named (while the normal reader still skips it, as upstream does).

use std::path::PathBuf;

use stone::{Archive, FileType, Record, Tag, Value, Writer};

fn shared() -> PathBuf {
    let mut directory = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        if directory.join("shared/fixtures").is_dir() {
            return directory.join("shared");
        }
        assert!(directory.pop(), "shared/fixtures not found");
    }
}

#[test]
fn fixtures_and_written_indexes_pass_strict_mode() {
    let fixtures = shared().join("fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures.join("stones"))
        .unwrap()
        .flatten()
    {
        if entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "stone")
        {
            let archive = Archive::open(entry.path()).unwrap();
            assert_eq!(archive.check_strict(), Ok(()), "{}", entry.path().display());
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
    // A repository index as `moss index` writes it.
    let archive = Archive::open(fixtures.join("stones/pineapple-1-1-1-x86_64.stone")).unwrap();
    let mut package = archive.packages().unwrap().remove(0);
    package.uri = Some("pineapple-1-1-1-x86_64.stone".into());
    package.hash = Some("0".repeat(64));
    package.size = Some(426);
    let mut writer = Writer::new(FileType::Repository);
    writer.add_meta(package.to_records());
    let mut bytes = Vec::new();
    writer.write(&mut bytes).unwrap();
    let index = Archive::from_reader(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(index.check_strict(), Ok(()));
}

#[test]
fn unknown_parts_are_named_in_strict_mode_and_skipped_otherwise() {
    let archive =
        Archive::open(shared().join("fixtures/stones/pineapple-1-1-1-x86_64.stone")).unwrap();
    let mut records = archive.packages().unwrap().remove(0).to_records();
    records.push(Record::new(
        Tag::Unknown(99),
        Value::String("future".into()),
    ));
    let mut writer = Writer::new(FileType::Repository);
    writer.add_meta(records);
    let mut bytes = Vec::new();
    writer.write(&mut bytes).unwrap();
    let archive = Archive::from_reader(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.packages().unwrap()[0].name, "pineapple");
    let unknown = archive.check_strict().unwrap_err();
    assert_eq!(unknown, vec!["payload #0: meta tag 99".to_owned()]);
}
