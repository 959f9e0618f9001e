#!/usr/bin/env bash
# Build the release archive of kubectl-oulogin for one Rust target, name it as
# krew-manifest.yaml expects, and fill the version and that platform's sha256
# into the manifest; copy the manifest into this project's krew index layout.
#
#   scripts/release.sh TARGET                  scripts/build-release.sh TARGET (static on Linux), then package
#   scripts/release.sh --binary PATH TARGET    package an already built binary (no cargo build)
#   scripts/release.sh --record-only TARGET    only hash an archive already in the dist directory
#                                              and record it in the manifest
# Options: --manifest FILE (default: krew-manifest.yaml), --dist DIR (default: dist/),
#          --index DIR (default: DIST/krew-index).
#
# Output: DIST/kubectl-oulogin-VERSION-TARGET.tar.gz (.zip for Windows targets)
# holding, at its top level, the binary, LICENSE, the man page
# kubectl-oulogin.1, the kubectl_complete-oulogin shim (not on Windows) and
# completions/ (the scripts checked in under completions/); plus a `.sha256`
# file beside it in `sha256sum` format. The archive is reproducible: sorted
# entries, fixed owner and mtime (SOURCE_DATE_EPOCH, else 0).
#
# The manifest is edited in place, line by line, so its comments and layout
# stay: `spec.version` and the version in every `uri` become the Cargo.toml
# version; the sha256 of the platform whose `uri` names TARGET is set. When the
# version changes, the other platforms' sha256 are reset to 64 zeros (no
# archive for the new version yet), which krew refuses to install.
#
# The krew index: the default krew index already holds a plugin named `oulogin`
# (TremoloSecurity's old, deprecated Go plugin), so this one ships through the
# project's own index, the Cargo.toml `repository`. krew reads an index's
# `plugins/NAME.yaml` (validate-krew-manifest wants the file named after the
# plugin), so each run also writes the manifest as it now stands to
# INDEX/plugins/NAME.yaml (NAME: the manifest's `metadata.name`). Users run
#   kubectl krew index add oulogin REPOSITORY
#   kubectl krew install oulogin/oulogin
#
# Other platforms: this machine builds its host target (x86_64-unknown-linux-gnu)
# and the Windows zip (x86_64-pc-windows-gnu, cross-compiled with mingw, the
# build scripts/test-windows tests under wine). A release is built by
# .github/workflows/release.yml, one job per archive on a native runner (bash,
# python3; Git Bash on Windows): linux x86_64 and aarch64 (in Debian
# containers), macOS aarch64 and x86_64, Windows x86_64 (windows-gnu; Windows
# on Arm runs it too, the manifest selects it for both). A final job runs
# `scripts/release.sh --record-only TARGET` for each archive and publishes the
# archives, their .sha256 files and the filled-in index manifest
# (`oulogin.yaml`) on the GitHub release `vVERSION` the `uri`s point at.
#
# Needs: cargo (unless --binary/--record-only), python3 >= 3.11 (tomllib).
set -euo pipefail

usage() {
    sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary=""
record_only=0
manifest="$root/krew-manifest.yaml"
dist="$root/dist"
index=""

while (($#)); do
    case "$1" in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        --record-only) record_only=1; shift ;;
        --manifest) manifest="${2:?--manifest needs a file}"; shift 2 ;;
        --dist) dist="${2:?--dist needs a directory}"; shift 2 ;;
        --index) index="${2:?--index needs a directory}"; shift 2 ;;
        -h | --help) usage ;;
        -*) echo "release.sh: unknown option \`$1\`" >&2; usage ;;
        *) break ;;
    esac
done
(($# == 1)) || usage
target="$1"
index="${index:-$dist/krew-index}"

# python3, or `python` where only that is a Python 3 (Windows).
python="$(command -v python3 || command -v python)" || { echo "release.sh: needs python3" >&2; exit 1; }
version="$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["package"]["version"])' "$root/Cargo.toml")"
case "$target" in
    *-windows-*) exe=".exe"; ext="zip" ;;
    *) exe=""; ext="tar.gz" ;;
esac
archive="$dist/kubectl-oulogin-$version-$target.$ext"
mkdir -p "$dist"

if ((!record_only)); then
    if [[ -z "$binary" ]]; then
        binary="$("$root/scripts/build-release.sh" "$target")"
    fi
    [[ -f "$binary" ]] || { echo "release.sh: no binary at \`$binary\`" >&2; exit 1; }

    stage="$(mktemp -d)"
    trap 'rm -rf "$stage"' EXIT
    install -m 0755 "$binary" "$stage/kubectl-oulogin$exe"
    install -m 0644 "$root/LICENSE" "$stage/LICENSE"
    install -m 0644 "$root/completions/kubectl-oulogin.1" "$stage/kubectl-oulogin.1"
    if [[ -z "$exe" ]]; then
        install -m 0755 "$root/completions/kubectl_complete-oulogin" "$stage/kubectl_complete-oulogin"
    fi
    mkdir "$stage/completions"
    for script in kubectl-oulogin.bash _kubectl-oulogin kubectl-oulogin.fish _kubectl-oulogin.ps1 kubectl-oulogin.elv; do
        install -m 0644 "$root/completions/$script" "$stage/completions/$script"
    done

    "$python" - "$stage" "$archive" "$ext" <<'PY'
import gzip, os, sys, tarfile, zipfile

stage, archive, ext = sys.argv[1:]
mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
entries = []
for directory, dirs, files in os.walk(stage):
    dirs.sort()
    for name in sorted(dirs + files):
        path = os.path.join(directory, name)
        entries.append((os.path.relpath(path, stage).replace(os.sep, "/"), path))
entries.sort()
partial = archive + ".partial"
if ext == "zip":
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
        for name, path in entries:
            if os.path.isdir(path):
                continue
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (os.stat(path).st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as data:
                out.writestr(info, data.read())
else:
    with open(partial, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as out:
            for name, path in entries:
                info = out.gettarinfo(path, arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = mtime
                info.mode = 0o755 if info.isdir() else os.stat(path).st_mode & 0o777
                if info.isfile():
                    with open(path, "rb") as data:
                        out.addfile(info, data)
                else:
                    out.addfile(info)
os.replace(partial, archive)
PY
fi

[[ -f "$archive" ]] || { echo "release.sh: no archive at \`$archive\`" >&2; exit 1; }

"$python" - "$archive" "$manifest" "$version" "$target" "$index" <<'PY'
import hashlib, os, re, sys

archive, manifest, version, target, index_dir = sys.argv[1:]
with open(archive, "rb") as data:
    sha256 = hashlib.sha256(data.read()).hexdigest()
with open(archive + ".sha256", "w") as out:
    out.write(f"{sha256}  {os.path.basename(archive)}\n")

with open(manifest) as text:
    lines = text.read().splitlines(keepends=True)
zeros = "0" * 64
version_line = re.compile(r"^(  version: )v(\S+)(\s*)$")
# Quoted: an all-digit checksum would otherwise be a YAML number, which krew rejects.
sha_line = re.compile(r"^(\s+sha256: )(\S+)(\s*)$")
old_version = next((m.group(2) for m in map(version_line.match, lines) if m), None)
if old_version is None:
    sys.exit(f"release.sh: `{manifest}` has no `spec.version` line")
# Each platform entry names its target in its uri, on a line before its sha256.
uri_line = re.compile(
    r"^(\s+uri: \S*/download/)v" + re.escape(old_version) + r"/kubectl-oulogin-" + re.escape(old_version)
    + r"-([A-Za-z0-9_.-]+?)(\.tar\.gz|\.zip)(\s*)$"
)
version_changed = old_version != version
found = 0
uris = 0
current = None  # the target of the platform entry being read
for index, line in enumerate(lines):
    if line.lstrip().startswith("- selector:"):
        current = None
    if m := version_line.match(line):
        lines[index] = f"{m.group(1)}v{version}{m.group(3)}"
    elif m := uri_line.match(line):
        uris += 1
        current = m.group(2)
        lines[index] = f"{m.group(1)}v{version}/kubectl-oulogin-{version}-{current}{m.group(3)}{m.group(4)}"
    elif (m := sha_line.match(line)) and current is not None:
        if current == target:
            lines[index] = f'{m.group(1)}"{sha256}"{m.group(3)}'
            found += 1
        elif version_changed:
            lines[index] = f'{m.group(1)}"{zeros}"{m.group(3)}'
if uris != sum(1 for line in lines if line.lstrip().startswith("uri:")):
    sys.exit(f"release.sh: `{manifest}` has a uri that is not `.../download/v{old_version}/kubectl-oulogin-{old_version}-TARGET.tar.gz|.zip`")
if found != 1:
    sys.exit(f"release.sh: `{manifest}` has {found} platforms with a uri for `{target}` (want exactly 1)")
# metadata.name, for the index file's name.
name = None
in_metadata = False
for line in lines:
    if not line.startswith(" "):
        in_metadata = line.rstrip() == "metadata:"
    elif in_metadata and (m := re.match(r"^  name: (\S+)\s*$", line)):
        name = m.group(1)
if not name or not re.fullmatch(r"[\w-]+", name):
    sys.exit(f"release.sh: `{manifest}` has no usable `metadata.name`")
for path in (manifest, os.path.join(index_dir, "plugins", name + ".yaml")):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w") as out:
        out.writelines(lines)
    os.replace(partial, path)
print(
    f"{archive}\nsha256 {sha256}\nrecorded for {target} v{version} in {manifest}\n"
    f"krew index: {os.path.join(index_dir, 'plugins', name + '.yaml')}",
    file=sys.stderr,
)
PY
