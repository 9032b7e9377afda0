// The overload manager: a real `rig proxy` process with Envoy's overload_manager bootstrap section
// sheds requests under an artificially low heap limit; in-process, a real event-loop block sheds
// requests (503 OM, Connection: close) and recovers, and real heap growth parks new connections
// unread, ends keep-alive (HTTP/1 Connection: close, HTTP/2 GOAWAY) and recovers when it shrinks;
// reject_incoming_connections closes new connections.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { stringify } from 'yaml';
import { runRig } from '../helpers/cli.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { configure, deadPort, httpListener, request, routeConfig, startRuntime, startUpstream, staticCluster } from '../proxy/harness.ts';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { readOverloadConfig, OverloadAction } from '../../src/proxy/overload/overload-config.ts';
import { OverloadManager } from '../../src/proxy/overload/overload-manager.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { until } from '../helpers/wait.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const HEAP = 'envoy.resource_monitors.fixed_heap';
const LAG = 'rig.resource_monitors.event_loop_lag';
const heapMonitor = (bytes: number) => ({ name: HEAP, typed_config: { '@type': 'type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig', max_heap_size_bytes: bytes } });
const lagMonitor = (lag: string) => ({ name: LAG, typed_config: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: { max_lag: lag } } });

function compile(raw: object) {
  const issues = new Issues();
  const c = readOverloadConfig(new Reader(raw, 'overload_manager', issues));
  return { c, issues };
}

async function setup(t: { after(fn: () => unknown): void }, overload: object) {
  const up = await startUpstream('up');
  const h = await startRuntime();
  const { c, issues } = compile(overload);
  assert.deepEqual(issues.errors, []);
  const om = new OverloadManager(c, h.rt.stats);
  h.rt.ctx.overload = om;
  t.after(async () => {
    om.stop();
    h.close();
    await up.close();
  });
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]))] });
  return { h, om, up, port: h.port('l') };
}

function stat(h: { rt: { stats: { all(): { name: string; value: number }[] } } }, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

test('event-loop lag above max_lag sheds new requests with 503 OM and Connection: close, then recovers', async (t) => {
  const trigger = [{ name: LAG, threshold: { value: 1 } }];
  const { h, om, up, port } = await setup(t, {
    refresh_interval: '3600s',
    resource_monitors: [lagMonitor('0.2s')],
    actions: [{ name: OverloadAction.StopAcceptingRequests, triggers: trigger }, { name: OverloadAction.DisableHttpKeepAlive, triggers: trigger }],
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  let r = await request(port, { agent });
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'keep-alive');

  const until = Date.now() + 500;
  while (Date.now() < until); // block the event loop: the lag monitor sees ~500 ms
  await new Promise((res) => setTimeout(res, 50));
  om.refresh();
  assert.ok(om.isActive(OverloadAction.StopAcceptingRequests));
  assert.equal(stat(h, `overload.${OverloadAction.StopAcceptingRequests}.active`), 1);
  assert.ok(stat(h, `overload.${LAG}.pressure`) >= 100);
  r = await request(port, { agent });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'envoy overloaded');
  assert.equal(r.headers.connection, 'close');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'OM');
  assert.equal(stat(h, 'overload.shed_requests'), 1);
  assert.equal(up.requests.length, 1, 'shed requests never reach the upstream');

  // Recovery on the first refresh below the threshold (retried: a loaded machine may lag on its own).
  for (let i = 0; i < 100 && om.isActive(OverloadAction.StopAcceptingRequests); i++) {
    await new Promise((res) => setTimeout(res, 50));
    om.refresh();
  }
  assert.equal(om.isActive(OverloadAction.StopAcceptingRequests), false, 'below the threshold again');
  r = await request(port, { agent });
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'keep-alive');
});

/** A raw HTTP/1 request (Connection: close) on a fresh connection: what came back within `waitMs`, and whether the proxy closed it. */
function rawGet(port: number, waitMs: number): { connected: Promise<void>; done: Promise<{ raw: string; closed: boolean }> } {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  const connected = new Promise<void>((r) => s.once('connect', () => r()));
  s.write('GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n');
  let raw = '';
  s.on('data', (c) => (raw += c.toString('latin1')));
  const done = new Promise<{ raw: string; closed: boolean }>((resolve) => {
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ raw, closed: false });
    }, waitMs);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ raw, closed: true });
    });
  });
  return { connected, done };
}

test('real heap growth past fixed_heap: new connections wait unread, keep-alive ends (HTTP/1 Connection: close, HTTP/2 GOAWAY), all recovers when the heap shrinks', async (t) => {
  for (let i = 0; i < 3; i++) gc();
  const base = process.memoryUsage().heapUsed;
  const trigger = [{ name: HEAP, threshold: { value: 0.95 } }];
  const { h, om, port } = await setup(t, {
    refresh_interval: '0.02s',
    resource_monitors: [heapMonitor(base + 40 * 1024 * 1024)],
    actions: [{ name: OverloadAction.StopAcceptingConnections, triggers: trigger }, { name: OverloadAction.DisableHttpKeepAlive, triggers: trigger }],
  });
  om.start();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  assert.equal((await request(port, { agent })).headers.connection, 'keep-alive');
  const h2 = http2.connect(`http://127.0.0.1:${port}`);
  h2.on('error', () => undefined);
  t.after(() => h2.destroy());
  let goaway = false;
  h2.on('goaway', () => (goaway = true));
  const h2get = () =>
    new Promise<number>((resolve) => {
      const s = h2.request({ ':path': '/' });
      s.on('response', (hd) => resolve(Number(hd[':status'])));
      s.on('error', () => resolve(0));
      s.resume();
    });
  assert.equal(await h2get(), 200);

  // ~56 MB of live JS heap: pressure > 1 on the next refresh.
  let ballast: number[] | undefined = Array.from({ length: 7_000_000 }, (_, i) => i + 0.5);
  await until('the heap monitor saw the growth', () => om.isActive(OverloadAction.StopAcceptingConnections), { timeoutMs: 10000, intervalMs: 20 });
  assert.ok(stat(h, `overload.${HEAP}.pressure`) >= 95);

  // Established connections are still served, but not kept.
  const r = await request(port, { agent });
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, 'close');
  assert.equal(await h2get(), 200);
  await until('the HTTP/2 session got GOAWAY and closed after its stream', () => goaway && h2.closed, { timeoutMs: 10000, intervalMs: 20 });

  // A new connection: the TCP handshake completes (as in the kernel backlog) but nothing is read.
  const parked = rawGet(port, 10_000);
  await parked.connected;
  await until('the connection is parked', () => stat(h, 'overload.parked_connections') === 1, { timeoutMs: 10000, intervalMs: 20 });
  const cxBefore = stat(h, 'http.l.downstream_cx_total');

  // Recovery: the heap shrinks, the parked connection is served in its turn, keep-alive is back.
  ballast = undefined;
  for (let i = 0; i < 3; i++) gc();
  await until(`the heap shrank (${ballast ?? 'released'})`, () => !om.isActive(OverloadAction.StopAcceptingConnections), { timeoutMs: 10000, intervalMs: 20 });
  const served = await parked.done;
  assert.match(served.raw, /^HTTP\/1\.1 200 /, 'the parked connection was served after recovery');
  assert.equal(stat(h, 'overload.parked_connections'), 0);
  assert.equal(stat(h, 'http.l.downstream_cx_total'), cxBefore + 1);
  const after = await request(port, { agent });
  assert.equal(after.status, 200);
  assert.equal(after.headers.connection, 'keep-alive');
});

test('reject_incoming_connections closes new connections at once; parked connections are closed when the manager stops', async (t) => {
  const { h, om, port } = await setup(t, {
    refresh_interval: '3600s',
    resource_monitors: [heapMonitor(1024)],
    actions: [{ name: OverloadAction.RejectIncomingConnections, triggers: [{ name: HEAP, scaled: { scaling_threshold: 0.5, saturation_threshold: 0.9 } }] }],
  });
  assert.equal((await request(port)).status, 200, 'nothing happens before the first refresh');
  om.refresh();
  await assert.rejects(request(port), /ECONNRESET|socket hang up/);
  assert.equal(stat(h, 'overload.rejected_connections'), 1);

  const { c: c2 } = compile({ refresh_interval: '3600s', resource_monitors: [heapMonitor(1024)], actions: [{ name: OverloadAction.StopAcceptingConnections, triggers: [{ name: HEAP, threshold: { value: 0.9 } }] }] });
  const stopper = new OverloadManager(c2, h.rt.stats);
  t.after(() => stopper.stop());
  h.rt.ctx.overload = stopper;
  stopper.refresh();
  const parked = rawGet(port, 10_000);
  await until('the connection is parked', () => stat(h, 'overload.parked_connections') === 1, { timeoutMs: 10000, intervalMs: 20 });
  stopper.stop();
  const o = await parked.done;
  assert.deepEqual(o, { raw: '', closed: true }, 'closed unanswered when the manager stops');
  h.rt.ctx.overload = undefined;
  assert.equal((await request(port)).status, 200);
});

test('invalid overload_manager config is reported with paths', () => {
  const { issues } = compile({
    resource_monitors: [{ name: 'envoy.resource_monitors.injected_resource', typed_config: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: {} } }, heapMonitor(0)],
    actions: [{ name: 'envoy.overload_actions.shrink_heap', triggers: [{ name: HEAP, threshold: { value: 2 } }] }, { name: OverloadAction.StopAcceptingRequests, triggers: [] }],
  });
  const all = issues.errors.join('\n');
  assert.match(all, /resource monitor "envoy.resource_monitors.injected_resource" is not supported/);
  assert.match(all, /resource_monitors\[1\]\.typed_config\.max_heap_size_bytes: fixed_heap needs a positive max_heap_size_bytes/);
  assert.match(all, /actions\[0\]\.name: overload action "envoy.overload_actions.shrink_heap" is not supported/);
  assert.match(all, /threshold value must be in \[0, 1\]/);
  assert.match(all, /actions\[1\]\.triggers: an overload action needs at least one trigger/);
});

test('rig proxy with overload_manager in its bootstrap sheds requests under an artificially low heap limit', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rig-overload-'));
  const up = await startUpstream('up');
  const listenPort = await deadPort();
  const listener = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]));
  (listener as { address: unknown }).address = { socket_address: { address: '127.0.0.1', port_value: listenPort } };
  const boot = {
    static_resources: { listeners: [listener], clusters: [staticCluster('up', [up.port])] },
    overload_manager: { refresh_interval: '0.05s', resource_monitors: [heapMonitor(1)], actions: [{ name: OverloadAction.StopAcceptingRequests, triggers: [{ name: HEAP, threshold: { value: 0.95 } }] }] },
  };
  const file = path.join(dir, 'envoy.yaml');
  fs.writeFileSync(file, stringify(boot));
  t.after(async () => {
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const { log } = await startRigProxyFromFile(t, file);
  // Until the first refresh the proxy forwards; afterwards every new request is shed.
  let r = await request(listenPort);
  let forwarded = 0;
  for (let i = 0; i < 500 && r.status !== 503; i++) {
    forwarded++;
    await new Promise((res) => setTimeout(res, 20));
    r = await request(listenPort);
  }
  assert.equal(r.status, 503, log());
  assert.equal(r.body, 'envoy overloaded');
  for (let i = 0; i < 5; i++) assert.equal((await request(listenPort)).status, 503);
  assert.equal(up.requests.length, forwarded, 'shed requests never reach the upstream');
  assert.doesNotMatch(log(), /overload_manager is not supported/);

  // A bad overload_manager stops rig proxy with the field path.
  fs.writeFileSync(file, stringify({ ...boot, overload_manager: { resource_monitors: [heapMonitor(0)], actions: [] } }));
  const bad = await runRig(['proxy', '-c', file, '--admin-port', '0', '--ready-port', '0']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /overload_manager\.resource_monitors\[0\]\.typed_config\.max_heap_size_bytes/);
});
