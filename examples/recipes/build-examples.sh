#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
#
# Build the example recipes with boulder against the host's /usr (--host-root) and index them:
#
#     examples/recipes/build-examples.sh OUTDIR
#
# OUTDIR/<recipe>/ receives each recipe's .stone files and manifests, OUTDIR/stone.index the
# repository index (moss -D ROOT repo add examples file://OUTDIR/stone.index --unsigned).
# BOULDER names the boulder binary (default: `boulder` on PATH, else target/debug/boulder);
# BOULDER_CACHE the source and work cache (default: OUTDIR/.cache, skipped by the indexer).
set -eu

out=${1:?usage: build-examples.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${BOULDER:-}" ]; then
    BOULDER=$(command -v boulder || echo "$here/../../target/debug/boulder")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${BOULDER_CACHE:-$out/.cache}

# host-runtime first: it provides libc and the loader the others depend on.
for recipe in host-runtime greet fortune-lite motd; do
    "$BOULDER" build "$here/$recipe" --host-root --output "$out/$recipe" --cache-dir "$cache"
done
"$BOULDER" index "$out"
