//! The `moss` command line that messages suggest. In direct mode (`moss -D ROOT`) a hint must
//! name the same root, or the suggested command would act on another system (or ask mossd).

use std::{path::Path, sync::OnceLock};

static COMMAND: OnceLock<String> = OnceLock::new();

/// Say that this process works on `root` directly: hints then read `moss -D ROOT ...`. Set once,
/// by the command-line client; mossd never sets it (its clients use plain `moss`).
pub fn set_direct_root(root: &Path) {
    let text = root.display().to_string();
    let quoted = if text
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "/._-+,:@".contains(character))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    };
    let _ = COMMAND.set(format!("moss -D {quoted}"));
}

/// A suggested command, quoted for a message: `` `moss state list` `` or
/// `` `moss -D /srv/root state list` ``.
pub fn moss(arguments: &str) -> String {
    let command = COMMAND.get().map_or("moss", String::as_str);
    format!("`{command} {arguments}`")
}

#[cfg(test)]
mod tests {
    #[test]
    fn hints_name_plain_moss_until_a_root_is_set() {
        // One process, one setting: both halves in one test.
        assert_eq!(super::moss("state list"), "`moss state list`");
        super::set_direct_root(std::path::Path::new("/srv/my root"));
        assert_eq!(
            super::moss("state list"),
            "`moss -D '/srv/my root' state list`"
        );
    }
}
