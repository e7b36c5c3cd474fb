//! Arbitrary bytes through the whole reader: open, metadata, layouts, index, content.
//! Every outcome must be `Ok` or a typed error; a panic, hang or abort is a bug.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use stone::{Archive, DiscardSink};

fuzz_target!(|data: &[u8]| {
    let mut archive = match Archive::from_reader(Cursor::new(data)) {
        Ok(archive) => archive,
        Err(error) => {
            // Messages are built from untrusted fields: rendering them must not panic either.
            let _ = error.to_string();
            return;
        }
    };
    let _ = archive.file_type();
    if let Err(error) = archive.packages() {
        let _ = error.to_string();
    }
    for layout in archive.layouts() {
        let _ = format!("{layout:?}");
    }
    let _ = archive.index().count();
    let _ = archive.attributes().count();
    if let Err(error) = archive.unpack(&mut DiscardSink) {
        let _ = error.to_string();
    }
});
