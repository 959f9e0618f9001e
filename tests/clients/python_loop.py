"""Reads the default namespace through the official Python client (`kubernetes`
on PyPI) at a steady rate for a while, with the kubeconfig given, and prints
one JSON line: {"ok": N, "failed": N, "mean_ms": F, "median_ms": F, "started": T, "ended": T,
"errors": [...]}, where `started` (before the kubeconfig is loaded) and `ended`
are seconds since the epoch.

Usage: python python_loop.py KUBECONFIG SECONDS RATE_PER_SECOND
"""

import json
import sys
import time

from kubernetes import client, config

kubeconfig, seconds, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
started_at = time.time()
# Runs the exec plugin once now, and (the client counts a credential as expired
# five minutes before its expirationTimestamp) again before every request.
config.load_kube_config(config_file=kubeconfig)
core = client.CoreV1Api()

ok, failed, errors, elapsed = 0, 0, [], []
interval = 1.0 / rate
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    started = time.monotonic()
    try:
        core.read_namespace("default")
        ok += 1
    except Exception as error:  # every failure counts, whatever its kind
        failed += 1
        errors.append(f"{type(error).__name__}: {error}"[:300])
    elapsed.append(time.monotonic() - started)
    time.sleep(max(0.0, interval - (time.monotonic() - started)))

mean_ms = 1000 * sum(elapsed) / len(elapsed) if elapsed else 0
median_ms = 1000 * sorted(elapsed)[len(elapsed) // 2] if elapsed else 0
result = {"ok": ok, "failed": failed, "mean_ms": round(mean_ms, 2), "median_ms": round(median_ms, 2)}
result.update({"started": started_at, "ended": time.time()})
print(json.dumps({**result, "errors": errors[:5]}))
