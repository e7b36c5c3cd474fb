#!/bin/sh
# Regenerate po/moss-gui.pot from the sources listed in POTFILES.in. xgettext has no Rust parser
# in Debian 12; its C parser reads Rust's string literals and calls well enough.
set -eu
cd "$(dirname "$0")/.."
xgettext --language=C --from-code=UTF-8 --keyword=gettext --keyword=fill:1 \
    --package-name=moss-gui --msgid-bugs-address=https://example.invalid/moss \
    --add-comments=Translators --files-from=po/POTFILES.in --output=po/moss-gui.pot
