// per_connection_buffer_limit_bytes (Listener and Cluster) as Envoy's flow-control watermark: a
// connection's write buffer holds about that much before the proxy stops reading the peer filling
// it, and the listener's limit is the connection manager's request buffer limit (retries). Each
// flow test runs the same transfer through a listener (or cluster) with a small and with a large
// limit against a peer that never reads, and compares how much the sender got rid of: the kernel's
// socket buffers are the same in both runs, so the difference is what the proxy buffered.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { HCM, ROUTER, SECRET_TYPE, addr, configure, request, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from './harness.ts';
import { makePki, sdsSecrets } from './certs.ts';
import { listenLocal } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = 16 * KiB;
// Far above the kernel's share, which varies by several MiB from one loopback connection to another.
const LARGE = 32 * MiB;
/** More than any run can send before it stalls (the large limit plus the kernel's buffers). */
const TOTAL = 96 * MiB;
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/** Writes `total` bytes as fast as the socket takes them; `flushed` counts what reached the kernel. */
function flood(s: net.Socket, total: number): { readonly flushed: number } {
  const chunk = Buffer.alloc(64 * KiB, 'x');
  const state = { flushed: 0 };
  let sent = 0;
  const pump = (): void => {
    while (sent < total && !s.destroyed) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n), () => (state.flushed += n))) return void s.once('drain', pump);
    }
  };
  pump();
  return state;
}

/** The sender's count once it stopped moving (the transfer stalled on back-pressure). */
async function stalled(what: string, count: () => number): Promise<number> {
  let last = -1;
  let still = 0;
  return waitFor(
    what,
    () => {
      const n = count();
      still = n === last ? still + 1 : 0;
      last = n;
      return still >= 5 ? n : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  );
}

/** An upstream that answers any request with a `total`-byte body it pushes as fast as it can. */
async function floodingUpstream(t: { after(fn: () => unknown): void }, http: boolean): Promise<{ port: number; senders: { readonly flushed: number }[] }> {
  const senders: { readonly flushed: number }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    if (!http) return void senders.push(flood(s, TOTAL));
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${TOTAL}\r\n\r\n`);
      senders.push(flood(s, TOTAL));
    };
    s.on('data', onData);
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  return { port: await listenLocal(server, t), senders };
}

/** An upstream that accepts and never reads. */
async function deafUpstream(t: { after(fn: () => unknown): void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  return listenLocal(server, t);
}

/** A client that connects, sends `first` and never reads. */
function deafClient(t: { after(fn: () => unknown): void }, port: number, first: string): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.pause();
  s.on('error', () => undefined);
  t.after(() => s.destroy());
  return new Promise((resolve) =>
    s.once('connect', () => {
      if (first) s.write(first);
      resolve(s);
    }),
  );
}

function hcmListener(name: string, cluster: string, limit: number | undefined, entry: Record<string, unknown> = { route: { cluster } }): Record<string, unknown> {
  const hcm = { '@type': HCM, stat_prefix: name, route_config: routeConfig(name, [{ match: { prefix: '/' }, ...entry }]), http_filters: [ROUTER] };
  return {
    name,
    address: addr(0),
    ...(limit === undefined ? {} : { per_connection_buffer_limit_bytes: limit }),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }],
  };
}

function tcpListener(name: string, cluster: string, limit: number, chain: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    address: addr(0),
    per_connection_buffer_limit_bytes: limit,
    filter_chains: [{ ...chain, filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster } }] }],
  };
}

/** The difference the large limit makes is about LARGE - SMALL (the kernel's share cancels out). */
function assertLimitDrives(small: number, large: number): void {
  const extra = large - small;
  assert.ok(extra >= 0.7 * (LARGE - SMALL), `the large limit let only ${extra} more bytes through than the small one (small ${small}, large ${large})`);
  assert.ok(extra <= LARGE + 12 * MiB, `the large limit let ${extra} more bytes through than the small one: it did not stop reading near ${LARGE}`);
  assert.ok(large < TOTAL, 'the transfer never stalled');
}

async function downloadStall(t: { after(fn: () => unknown): void }, h: Harness, listener: string, http: { senders: { readonly flushed: number }[] }, first: string): Promise<number> {
  const before = http.senders.length;
  await deafClient(t, h.port(listener), first);
  const sender = await waitFor('the upstream to start sending', () => http.senders[before]);
  return stalled(`the upstream's send behind ${listener} to stall`, () => sender.flushed);
}

test('HTTP/1.1: the listener limit bounds what the proxy buffers for a slow client; the upstream is no longer read past it', { timeout: 60_000 }, async (t) => {
  const up = await floodingUpstream(t, true);
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('c', [up.port])], listeners: [hcmListener('small', 'c', SMALL), hcmListener('large', 'c', LARGE)] });
  const get = 'GET /big HTTP/1.1\r\nhost: x\r\n\r\n';
  const small = await downloadStall(t, h, 'small', up, get);
  const large = await downloadStall(t, h, 'large', up, get);
  assertLimitDrives(small, large);
});

test('tcp_proxy: the listener limit bounds what the proxy buffers for a slow client', { timeout: 60_000 }, async (t) => {
  const up = await floodingUpstream(t, false);
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('c', [up.port])], listeners: [tcpListener('small', 'c', SMALL), tcpListener('large', 'c', LARGE)] });
  const small = await downloadStall(t, h, 'small', up, '');
  const large = await downloadStall(t, h, 'large', up, '');
  assertLimitDrives(small, large);
});

test('TLS: the listener limit applies to the connections it terminates TLS on', { timeout: 60_000 }, async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const up = await floodingUpstream(t, false);
  const h = await startTestRuntime(t);
  assert.deepEqual(h.apply(SECRET_TYPE, sdsSecrets(pki.leaf('proxy', ['DNS:proxy.test']), pki.ca)), []);
  const terminate = {
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }] } },
    },
  };
  await configure(h, { clusters: [staticCluster('c', [up.port])], listeners: [tcpListener('small', 'c', SMALL, terminate), tcpListener('large', 'c', LARGE, terminate)] });
  const stall = async (listener: string): Promise<number> => {
    const before = up.senders.length;
    const s = tls.connect({ host: '127.0.0.1', port: h.port(listener), ca: pki.ca, servername: 'proxy.test' });
    s.on('error', () => undefined);
    t.after(() => s.destroy());
    s.pause();
    const sender = await waitFor('the upstream to start sending', () => up.senders[before]);
    return stalled(`the upstream's send behind ${listener} to stall`, () => sender.flushed);
  };
  assertLimitDrives(await stall('small'), await stall('large'));
});

test('HTTP/2: the listener limit bounds what each stream buffers for a client that does not read', { timeout: 60_000 }, async (t) => {
  const up = await floodingUpstream(t, true);
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('c', [up.port])], listeners: [hcmListener('small', 'c', SMALL), hcmListener('large', 'c', LARGE)] });
  const stall = async (listener: string): Promise<number> => {
    const before = up.senders.length;
    const session = http2.connect(`http://127.0.0.1:${h.port(listener)}`);
    session.on('error', () => undefined);
    t.after(() => session.destroy());
    const stream = session.request({ ':path': '/big' });
    stream.on('error', () => undefined);
    // Not read: the client's stream window closes, the proxy's stream keeps what it cannot send.
    stream.pause();
    const sender = await waitFor('the upstream to start sending', () => up.senders[before]);
    return stalled(`the upstream's send behind ${listener} to stall`, () => sender.flushed);
  };
  assertLimitDrives(await stall('small'), await stall('large'));
});

async function uploadStall(t: { after(fn: () => unknown): void }, port: number, head: string): Promise<number> {
  const s = await deafClient(t, port, head);
  const sender = flood(s, TOTAL);
  return stalled('the client upload to stall', () => sender.flushed);
}

test('HTTP/1.1: the cluster limit bounds what the proxy buffers for an upstream that does not read the request body', { timeout: 60_000 }, async (t) => {
  const deaf = await deafUpstream(t);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('cs', [deaf], { per_connection_buffer_limit_bytes: SMALL }), staticCluster('cl', [deaf], { per_connection_buffer_limit_bytes: LARGE })],
    listeners: [hcmListener('small', 'cs', SMALL), hcmListener('large', 'cl', SMALL)],
  });
  const post = `POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: ${TOTAL}\r\n\r\n`;
  const small = await uploadStall(t, h.port('small'), post);
  const large = await uploadStall(t, h.port('large'), post);
  assertLimitDrives(small, large);
});

test('tcp_proxy: the cluster limit bounds what the proxy buffers for an upstream that does not read', { timeout: 60_000 }, async (t) => {
  const deaf = await deafUpstream(t);
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('cs', [deaf], { per_connection_buffer_limit_bytes: SMALL }), staticCluster('cl', [deaf], { per_connection_buffer_limit_bytes: LARGE })],
    listeners: [tcpListener('small', 'cs', SMALL), tcpListener('large', 'cl', SMALL)],
  });
  const small = await uploadStall(t, h.port('small'), '');
  const large = await uploadStall(t, h.port('large'), '');
  assertLimitDrives(small, large);
});

test('CONNECT tunnels: the cluster limit bounds what the proxy buffers for an upstream that does not read', { timeout: 60_000 }, async (t) => {
  const deaf = await deafUpstream(t);
  const h = await startTestRuntime(t);
  const listener = (name: string, cluster: string) => hcmListener(name, cluster, SMALL, { match: { connect_matcher: {} }, route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT' }] } });
  await configure(h, {
    clusters: [staticCluster('cs', [deaf], { per_connection_buffer_limit_bytes: SMALL }), staticCluster('cl', [deaf], { per_connection_buffer_limit_bytes: LARGE })],
    listeners: [listener('small', 'cs'), listener('large', 'cl')],
  });
  const stall = async (port: number): Promise<number> => {
    const s = await deafClient(t, port, 'CONNECT deaf.test:1 HTTP/1.1\r\nhost: deaf.test:1\r\n\r\n');
    // The 200 comes once the upstream connection is up; the bytes after it go through the tunnel.
    await new Promise((r) => s.once('readable', r));
    const sender = flood(s, TOTAL);
    return stalled('the tunnelled upload to stall', () => sender.flushed);
  };
  assertLimitDrives(await stall(h.port('small')), await stall(h.port('large')));
});

test('the listener limit is the request buffer limit for retries: a larger body is not replayed, a route limit wins', { timeout: 30_000 }, async (t) => {
  let calls = 0;
  // Every other request fails: the first attempt of each request gets 503, its retry 200.
  const up = await startUpstream('up', (_req, res) => {
    if (calls++ % 2 === 0) {
      res.writeHead(503, { 'content-length': '0' }).end();
      return true;
    }
  });
  const h = await startTestRuntime(t, [up]);
  const retry = { route: { cluster: 'c', retry_policy: { retry_on: '5xx', num_retries: 1 } } };
  await configure(h, {
    clusters: [staticCluster('c', [up.port])],
    listeners: [hcmListener('l', 'c', SMALL, retry), hcmListener('default', 'c', undefined, retry), hcmListener('route-limit', 'c', undefined, { ...retry, per_request_buffer_limit_bytes: SMALL / 4 })],
  });
  const post = (listener: string, bytes: number) => request(h.port(listener), { method: 'POST', path: '/', body: 'b'.repeat(bytes), headers: { 'content-length': String(bytes) } });

  calls = 0;
  assert.equal((await post('l', SMALL / 2)).status, 200, 'a body within the listener limit is retried');
  assert.equal(calls, 2);
  calls = 0;
  assert.equal((await post('l', 4 * SMALL)).status, 503, 'a body over the listener limit cannot be replayed');
  assert.equal(calls, 1);
  calls = 0;
  assert.equal((await post('default', 4 * SMALL)).status, 200, 'without the field the limit is 1 MiB');
  assert.equal(calls, 2);
  calls = 0;
  assert.equal((await post('route-limit', SMALL / 2)).status, 503, "the route's per_request_buffer_limit_bytes applies before the listener's");
  assert.equal(calls, 1);
});

test('per_connection_buffer_limit_bytes must be a positive 32-bit byte count, on listeners and clusters', async (t) => {
  const h = await startTestRuntime(t);
  for (const bad of [0, -1, 1.5, 2 ** 32, 'lots']) {
    const errs = h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [{ ...tcpListener('l', 'c', 1), per_connection_buffer_limit_bytes: bad }]);
    assert.match(errs.join('\n'), /per_connection_buffer_limit_bytes.*(whole number of bytes|expected a number)/, `listener, ${String(bad)}`);
    const cerrs = h.apply('type.googleapis.com/envoy.config.cluster.v3.Cluster', [staticCluster('c', [1], { per_connection_buffer_limit_bytes: bad })]);
    assert.match(cerrs.join('\n'), /per_connection_buffer_limit_bytes.*(whole number of bytes|expected a number)/, `cluster, ${String(bad)}`);
  }
  assert.deepEqual(h.apply('type.googleapis.com/envoy.config.cluster.v3.Cluster', [staticCluster('c', [1], { per_connection_buffer_limit_bytes: { value: 32768 } })]), []);
});
