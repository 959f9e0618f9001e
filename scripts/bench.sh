#!/usr/bin/env bash
# The benchmark of issue 8 (not part of the test suite): builds in release
# mode as a release does, starts the strict fake OpenUnison and Kubernetes API
# server (the test suite's `tests/fake/`, grace period 0) inside
# `examples/bench.rs`, and prints the machine and a table of medians over
# repeated runs, each beside its reference measured in the same run.
#
#   scripts/bench.sh            full run (a few minutes on 2 cores)
#   scripts/bench.sh --quick    fewer repetitions, for a smoke test
#
# Needs cargo, readelf and kubectl (found on PATH, else /usr/bin/kubectl);
# results go to stdout (cargo's build output to stderr); BENCHMARKS.md records one run.
set -euo pipefail
cd "$(dirname "$0")/.."

kubectl_path=$(command -v kubectl || echo /usr/bin/kubectl)
if [[ ! -x $kubectl_path ]]; then
    echo "bench: kubectl is needed (not on PATH, not at /usr/bin/kubectl)" >&2
    exit 1
fi

# The plugin measured is the one that ships (scripts/build-release.sh: static
# on Linux), built on its own: building it together with the examples would
# turn on the dev-dependencies' features (tokio's multi-threaded runtime) in it
# too, and measure a different binary. The examples get the same flags.
host="$(rustc -vV | sed -n 's/^host: //p')"
plugin="$(scripts/build-release.sh "$host")"
scripts/build-release.sh "$host" --examples >/dev/null
examples="$(dirname "$plugin")/examples"

echo "## Machine"
echo
echo '```'
echo "\$ nproc"; nproc
echo "\$ free -h"; free -h
echo "\$ uname -a"; uname -a
echo "\$ kubectl version --client"; "$kubectl_path" version --client 2>&1
echo "\$ rustc --version"; rustc --version
echo "\$ scripts/build-release.sh $host   # the plugin measured, as a release builds it"; echo "$plugin"
echo "\$ uptime   # load before the run"; uptime
echo '```'
echo
echo "## Results"
echo
"$examples/bench" --plugin "$plugin" --kubectl "$kubectl_path" "$@"
echo
echo '```'
echo "\$ uptime   # load after the run"; uptime
echo '```'
