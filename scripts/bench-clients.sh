#!/bin/sh
# Refreshes and added latency per request of real Kubernetes clients through
# our exec stanza (BENCHMARKS.md, "Real clients"): the sandbox's strict fake
# OpenUnison and API server (`sandbox serve`, 6 s tokens), a login with the
# plugin in PLUGIN_DIR through the sandbox's headless browser, then the test
# suite's client scripts (tests/clients/) for 20 s at 2 requests per second.
# The reference is the same script with a static `token:` user (a fake with
# 60 s tokens, so the one token lasts the run): the difference of the request
# times (mean and median) is what the plugin adds per request.
#
# Usage: scripts/bench-clients.sh [PLUGIN_DIR]    (default target/debug)
# Needs `cargo build --bins --examples` and the clients `scripts/test`
# installs into target/test-clients/.
set -eu

cd "$(dirname "$0")/.."
plugin_dir=$(cd "${1:-target/debug}" && pwd)
sandbox=$(pwd)/target/debug/examples/sandbox
python=$(pwd)/target/test-clients/python/bin/python
node_prefix=$(pwd)/target/test-clients/node
seconds=20
rate=2
for needed in "$plugin_dir/kubectl-oulogin" "$sandbox" "$python" "$node_prefix/node_modules/@kubernetes/client-node"; do
    [ -e "$needed" ] || { echo "missing: $needed (build with cargo, install the clients with scripts/test)" >&2; exit 1; }
done

work=$(mktemp -d)
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT INT TERM

# Starts `sandbox serve` with token lifetime $1 in $work/$2 and logs in there.
start_and_log_in() {
    dir=$work/$2
    mkdir -p "$dir/home"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$sandbox" serve --token-lifetime "$1" --port "$port" >"$dir/serve.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q '^Log in with' "$dir/serve.log" 2>/dev/null && break
        sleep 0.1
    done
    host=$(sed -n 's|^fake OpenUnison: *https://||p' "$dir/serve.log")
    ca=$(sed -n 's|^OpenUnison CA file: *||p' "$dir/serve.log")
    export HOME="$dir/home" KUBECONFIG="$dir/kubeconfig" KUBECACHEDIR="$dir/cache" PATH="$plugin_dir:$PATH"
    kubectl-oulogin --host "$host" --certificate-authority "$ca" --port "$port" \
        --browser-command "$sandbox browse --short --ca $ca" >/dev/null 2>"$dir/login.log"
}

# Refreshes the sandbox counted, after it stopped.
refreshes() {
    sed -n 's|^stopping: .* minted, \([0-9]*\) refreshes.*|\1|p' "$work/$1/serve.log"
}

# One JSON line from a client loop: python|node.
run_client() {
    case $1 in
        python) "$python" tests/clients/python_loop.py "$KUBECONFIG" "$seconds" "$rate" ;;
        node) node tests/clients/node_loop.mjs "$node_prefix" "$KUBECONFIG" "$seconds" "$rate" ;;
    esac | tail -n 1
}

# One table row: label, a client's JSON line, refreshes.
print_row() {
    echo "$2" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%-22s %8d %8d %10s %12.1f %12.1f" % (sys.argv[1], r["ok"] + r["failed"], r["failed"], sys.argv[2], r["mean_ms"], r["median_ms"]))
' "$1" "$3"
}

echo "plugin: $plugin_dir/kubectl-oulogin"
echo "$(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %8s %8s %10s %12s %12s\n' client requests failed refreshes "mean ms" "median ms"
for client in python node; do
    start_and_log_in 60s "$client-static"
    token=$(kubectl-oulogin token --session "$(echo "$host" | tr : _)" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"]["token"])')
    kubectl config set-credentials static --token="$token" >/dev/null
    kubectl config set-context --current --user=static >/dev/null
    static=$(run_client "$client")
    stop_server

    start_and_log_in 6s "$client-exec"
    exec_result=$(run_client "$client")
    stop_server
    print_row "$client, static token" "$static" -
    print_row "$client, exec stanza" "$exec_result" "$(refreshes "$client-exec")"
done
