// Access logs configured by the control plane: mesh accessLogFile with Istio's JSON fields for
// every request, and a workload-level Telemetry sending only errors (CEL `response.code >= 400`)
// to an envoyFileAccessLog provider in Istio's text format. Lines are parsed field by field,
// including the response flags of a fault-injected (FI) and a circuit-broken (UO) request.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startMesh, SERVICES_YAML, viaProxy } from './mesh.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const CONFIG = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings-fault, namespace: default }
spec:
  hosts: [ratings]
  http: [{ fault: { abort: { httpStatus: 500, percentage: { value: 100 } } }, route: [{ destination: { host: ratings } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-breaker, namespace: default }
spec:
  host: reviews
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } } }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: reviews-errors, namespace: default }
spec:
  selector: { matchLabels: { app: reviews } }
  accessLogging: [{ providers: [{ name: errors-text }], filter: { expression: "response.code >= 400" } }]
`;

async function readLines(file: string, n: number): Promise<string[]> {
  let lines: string[] = [];
  for (let i = 0; i < 100; i++) {
    lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length >= n) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return lines;
}

test('access logs: Istio JSON fields, CEL-filtered text log, FI and UO response flags', async (t) => {
  const dir = tempDir(t, 'rig-accesslog-');
  const json = path.join(dir, 'access.json');
  const errors = path.join(dir, 'errors.log');
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews', 'ratings']) + CONFIG,
    mesh: { accessLogFile: json, accessLogEncoding: 'JSON', extensionProviders: [{ name: 'errors-text', envoyFileAccessLog: { path: errors } }] },
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, sa: 'bookinfo-productpage' },
      {
        name: 'reviews-v1',
        labels: { app: 'reviews', version: 'v1' },
        sa: 'bookinfo-reviews',
        app: (q, s) => {
          if (q.url === '/err') return void s.writeHead(500).end('broken');
          setTimeout(() => s.end('reviews ok'), q.url === '/slow' ? 400 : 0);
        },
      },
      { name: 'ratings-v1', labels: { app: 'ratings', version: 'v1' }, sa: 'bookinfo-ratings' },
    ],
  });
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];
  const rv = mesh.sidecars['reviews-v1'];

  const ok = await viaProxy(pp.outbound, 'http://reviews:9080/ok?x=1', { 'user-agent': 'access-log-test', 'x-request-id': '11111111-2222-4333-8444-555555555555' });
  assert.equal(ok.status, 200);
  assert.equal((await viaProxy(pp.outbound, 'http://ratings:9080/ratings/1')).status, 500);
  assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/err')).status, 500);
  const burst = await Promise.all([0, 1, 2, 3, 4].map(() => viaProxy(pp.outbound, 'http://reviews:9080/slow')));
  const overflowed = burst.filter((r) => r.status === 503).length;
  assert.ok(overflowed >= 1, `the circuit breaker refused some of ${burst.map((r) => r.status).join(',')}`);

  // JSON (mesh accessLogFile, accessLogEncoding JSON): productpage logs every outbound request.
  const entries = (await readLines(json, 3 + burst.length)).map((l) => JSON.parse(l) as Record<string, unknown>);
  // Only productpage writes JSON (reviews' Telemetry selects the text provider; ratings is never reached).
  const outbound = entries;
  const first = outbound.find((e) => e.path === '/ok?x=1')!;
  assert.ok(first, JSON.stringify(entries));
  assert.deepEqual(Object.keys(first).sort(), ['authority', 'bytes_received', 'bytes_sent', 'connection_termination_details', 'downstream_local_address', 'downstream_remote_address', 'duration', 'method', 'path', 'protocol', 'request_id', 'requested_server_name', 'response_code', 'response_code_details', 'response_flags', 'route_name', 'start_time', 'upstream_cluster', 'upstream_host', 'upstream_local_address', 'upstream_service_time', 'upstream_transport_failure_reason', 'user_agent', 'x_forwarded_for']);
  assert.equal(first.method, 'GET');
  assert.equal(first.protocol, 'HTTP/1.1');
  assert.equal(first.response_code, 200);
  assert.equal(first.response_flags, '-');
  assert.equal(first.response_code_details, 'via_upstream');
  assert.equal(first.bytes_received, 0);
  assert.equal(first.bytes_sent, 'reviews ok'.length);
  assert.equal(typeof first.duration, 'number');
  assert.match(String(first.upstream_service_time), /^\d+$/);
  assert.equal(first.user_agent, 'access-log-test');
  assert.equal(first.request_id, '11111111-2222-4333-8444-555555555555');
  assert.equal(first.authority, 'reviews:9080');
  assert.equal(first.upstream_host, `127.0.0.1:${rv.inbound}`);
  assert.equal(first.upstream_cluster, 'outbound|9080||reviews.default.svc.cluster.local');
  assert.equal(first.x_forwarded_for, null);
  assert.ok(Math.abs(Date.parse(String(first.start_time)) - Date.now()) < 60_000);

  const fault = outbound.find((e) => e.path === '/ratings/1')!;
  assert.equal(fault.response_code, 500);
  assert.equal(fault.response_flags, 'FI');
  assert.equal(fault.response_code_details, 'fault_filter_abort');
  assert.equal(fault.upstream_host, null, 'an aborted request never reaches an upstream');

  const uo = outbound.filter((e) => e.path === '/slow' && e.response_flags === 'UO');
  assert.equal(uo.length, overflowed);
  assert.equal(uo[0].response_code, 503);
  assert.equal(uo[0].response_code_details, 'upstream_reset_before_response_started{overflow}');

  // Text (envoyFileAccessLog provider selected by the reviews Telemetry): only the 500 passed the CEL filter.
  const text = await readLines(errors, 1);
  await new Promise((r) => setTimeout(r, 200));
  const all = fs.readFileSync(errors, 'utf8').split('\n').filter(Boolean);
  assert.equal(all.length, 1, all.join('\n'));
  const m = /^\[(\S+)\] "(\S+) (\S+) (\S+)" (\d+) (\S+) (\S+) (\S+) "([^"]*)" (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)$/.exec(text[0]);
  assert.ok(m, text[0]);
  const [, start, method, p, proto, code, flags, details, , , , bytesSent, , , , , reqId, authority, upHost, upCluster] = m;
  assert.ok(!Number.isNaN(Date.parse(start)));
  assert.deepEqual([method, p, proto, code, flags, details], ['GET', '/err', 'HTTP/1.1', '500', '-', 'via_upstream']);
  assert.equal(bytesSent, String('broken'.length));
  assert.match(reqId, /^[0-9a-f-]{36}$/);
  assert.equal(authority, 'reviews:9080');
  assert.equal(upHost, `127.0.0.1:${rv.app}`);
  assert.equal(upCluster, 'inbound|9080||');
});
