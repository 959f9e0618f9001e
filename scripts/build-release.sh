#!/usr/bin/env bash
# Build kubectl-oulogin as it ships, for one Rust target, and print the path of
# the binary:
#
#   scripts/build-release.sh TARGET [CARGO BUILD ARGS...]
#
# runs `cargo build --release --locked --target TARGET [ARGS...]`. For Linux
# with glibc (`*-unknown-linux-gnu`) it adds `-C target-feature=+crt-static`:
# the binary links glibc statically (static-pie, ASLR kept) and needs no shared
# library. It starts in less time than a dynamically linked build (no dynamic
# loader, no libgcc_s/libm/libc to map: BENCHMARKS.md), which matters because
# kubectl runs `kubectl-oulogin token` before every request, and it runs on
# any Linux distribution, not only on those whose glibc is at least as new as
# the build machine's.
# src/platform/unix/nss.rs pins host and user lookups to glibc's built-in `files`/`dns`, so
# the static binary never loads an NSS module of the machine's glibc.
#
# `--target` is always passed so that the flag reaches only the target's
# artifacts, never build scripts or proc-macros (which cannot be static).
# Used by scripts/release.sh and scripts/bench.sh; cargo's output goes to stderr.
set -euo pipefail

target="${1:?usage: scripts/build-release.sh TARGET [CARGO BUILD ARGS...]}"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "$target" in
    *-unknown-linux-gnu) export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static"; static=1 ;;
    *) static=0 ;;
esac
case "$target" in
    *-windows-*) exe=".exe" ;;
    *) exe="" ;;
esac

cargo build --release --locked --target "$target" --manifest-path "$root/Cargo.toml" "$@" >&2
binary="${CARGO_TARGET_DIR:-$root/target}/$target/release/kubectl-oulogin$exe"
[[ -f "$binary" ]] || { echo "build-release.sh: no binary at \`$binary\`" >&2; exit 1; }

if ((static)); then
    # A static-pie has no program interpreter and no NEEDED entries.
    if readelf --program-headers --dynamic "$binary" | grep -Eq 'INTERP|\(NEEDED\)'; then
        echo "build-release.sh: \`$binary\` is dynamically linked; the static build did not take" >&2
        exit 1
    fi
fi
echo "$binary"
