// Reads the default namespace through the official JavaScript client
// (`@kubernetes/client-node` from npm) at a steady rate for a while, with the
// kubeconfig given, and prints one JSON line:
// {"ok": N, "failed": N, "mean_ms": F, "median_ms": F, "started": T, "ended": T, "errors": [...]},
// where `started` (before the kubeconfig is loaded) and `ended` are seconds
// since the epoch.
//
// Usage: node node_loop.mjs CLIENT_DIR KUBECONFIG SECONDS RATE_PER_SECOND
// where CLIENT_DIR is the npm prefix the client was installed into.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [clientDir, kubeconfig, seconds, rate] = process.argv.slice(2);
const startedAt = Date.now() / 1000;
const entry = createRequire(join(clientDir, 'package.json')).resolve('@kubernetes/client-node');
const k8s = await import(pathToFileURL(entry).href);

const config = new k8s.KubeConfig();
config.loadFromFile(kubeconfig);
// Runs the exec plugin when its cached credential reaches its expirationTimestamp.
const core = config.makeApiClient(k8s.CoreV1Api);

let ok = 0;
let failed = 0;
const errors = [];
const elapsed = [];
const interval = 1000 / Number(rate);
const deadline = Date.now() + 1000 * Number(seconds);
while (Date.now() < deadline) {
  const started = Date.now();
  try {
    await core.readNamespace({ name: 'default' });
    ok += 1;
  } catch (error) {
    failed += 1;
    errors.push(String(error).slice(0, 300));
  }
  elapsed.push(Date.now() - started);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, interval - (Date.now() - started))));
}

const mean = elapsed.length ? elapsed.reduce((a, b) => a + b, 0) / elapsed.length : 0;
const median = elapsed.length ? [...elapsed].sort((a, b) => a - b)[Math.floor(elapsed.length / 2)] : 0;
const result = {
  ok,
  failed,
  mean_ms: Math.round(mean * 100) / 100,
  median_ms: median,
  started: startedAt,
  ended: Date.now() / 1000,
};
console.log(JSON.stringify({ ...result, errors: errors.slice(0, 5) }));
