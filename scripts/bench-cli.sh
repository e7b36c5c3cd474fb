#!/usr/bin/env bash
# End-to-end benchmark of the moss CLI in direct mode on the 200-package corpus of the engine
# issue: install the whole corpus from a file:// repository in one transaction, remove one
# package, roll back one state. Prints wall time and peak resident memory of each command.
#   scripts/bench-cli.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
shared=$(cd .. && pwd)/shared
work=${1:-$PWD/target/bench-cli}
cargo build --release --quiet -p moss-client
moss=$PWD/target/release/moss
mkdir -p "$work"
if [ ! -f "$work/corpus-200/stone.index" ]; then
    python3 "$shared/bench/stonegen.py" --out "$work/corpus-200" --packages 200 --seed 42 --files-per-package 250 >/dev/null
fi
rm -rf "$work/root" && mkdir -p "$work/root"
"$moss" index "$work/corpus-200" 2>/dev/null
"$moss" -D "$work/root" repo add corpus "file://$work/corpus-200/stone.index" --unsigned 2>/dev/null
names=$(python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(open(sys.argv[1]))["package_list"]))' "$work/corpus-200/corpus.json")
leaf=$(python3 - "$work/corpus-200/corpus.json" <<'PY'
import json, sys
corpus = json.load(open(sys.argv[1]))
needed = set()
for package in corpus["package_list"]:
    for dependency in package.get("depends", []):
        needed.add(dependency if "(" in dependency else "name(%s)" % dependency)
for package in corpus["package_list"]:
    provided = set(package.get("provides", [])) | {"name(%s)" % package["name"]}
    if not provided & needed:
        print(package["name"]); break
PY
)
measure() {
    local label=$1; shift
    /usr/bin/time -f "$label: %e s wall, %M KiB peak RSS" "$@" >/dev/null 2>"$work/time.log" || { cat "$work/time.log"; exit 1; }
    tail -1 "$work/time.log"
}
# shellcheck disable=SC2086
measure "install 200 packages" "$moss" -D "$work/root" install -y $names
measure "remove $leaf" "$moss" -D "$work/root" remove -y "$leaf"
measure "roll back one state" "$moss" -D "$work/root" state activate 1
echo "entries in /usr: $(find "$work/root/usr" | wc -l)"
