// UpstreamTlsContext.max_session_keys: the proxy keeps up to that many sessions per upstream host
// and offers each new connection a fresh one first. Observed on the TLS server (the proxy's side of
// resumption is not visible to a test): with a single-use session cache, 4 kept sessions resume 4
// concurrent connections and 1 cannot; with reusable TLS 1.3 tickets even 1 kept session resumes
// them all. Connections go through tcp_proxy, one upstream connection per downstream one.
import assert from 'node:assert/strict';
import { constants } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { addr, configure, startTestRuntime, staticCluster } from './harness.ts';
import { makePki, type TestPki } from './certs.ts';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

interface Backend {
  readonly port: number;
  /** isSessionReused() of each accepted connection, in order. */
  readonly reused: boolean[];
}

/**
 * A TLS server answering "hi". singleUse: TLS 1.2 with session ids only (no tickets) and a cache
 * that forgets a session once resumed, as a server enforcing single-use sessions; else TLS 1.3 with
 * node's stateless tickets.
 */
async function startBackend(t: { after(fn: () => unknown): void }, pki: TestPki, singleUse: boolean): Promise<Backend> {
  const leaf = pki.leaf('backend', ['DNS:backend.mesh']);
  const reused: boolean[] = [];
  const opts: tls.TlsOptions = singleUse ? { maxVersion: 'TLSv1.2', secureOptions: constants.SSL_OP_NO_TICKET } : { minVersion: 'TLSv1.3' };
  const server = tls.createServer({ cert: leaf.cert, key: leaf.key, ...opts }, (s) => {
    reused.push(s.isSessionReused());
    s.on('error', () => undefined);
    s.write('hi');
  });
  if (singleUse) {
    const cache = new Map<string, Buffer>();
    server.on('newSession', (id: Buffer, data: Buffer, cb: () => void) => {
      cache.set(id.toString('hex'), data);
      cb();
    });
    server.on('resumeSession', (id: Buffer, cb: (err: Error | null, data: Buffer | null) => void) => {
      const data = cache.get(id.toString('hex')) ?? null;
      cache.delete(id.toString('hex'));
      cb(null, data);
    });
  }
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, reused };
}

/** `n` concurrent connections through the tcp_proxy listener, each until the backend's "hi", then closed. */
async function wave(port: number, n: number): Promise<void> {
  const sockets = Array.from({ length: n }, () => net.connect(port, '127.0.0.1'));
  try {
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            s.once('data', () => resolve());
            s.once('error', reject);
            s.once('close', () => reject(new Error('closed before the backend answered')));
          }),
      ),
    );
  } finally {
    for (const s of sockets) s.destroy();
  }
}

/** Listener `name` → tcp_proxy → cluster `name` (backend over TLS with `maxSessionKeys`). */
function tcpProxyTo(name: string, backend: Backend, ca: string, maxSessionKeys: number): { listener: Record<string, unknown>; cluster: Record<string, unknown> } {
  const transport = { name: 'envoy.transport_sockets.tls', typed_config: { '@type': UPSTREAM_TLS, sni: 'backend.mesh', max_session_keys: maxSessionKeys, common_tls_context: { validation_context: { trusted_ca: { inline_string: ca } } } } };
  return {
    cluster: staticCluster(name, [backend.port], { transport_socket: transport }),
    listener: { name, address: addr(0), filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: name, cluster: name } }] }] },
  };
}

test('max_session_keys 4 resumes 4 concurrent connections where 1 cannot (single-use sessions)', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const four = await startBackend(t, pki, true);
  const one = await startBackend(t, pki, true);
  const h = await startTestRuntime(t);
  const a = tcpProxyTo('four', four, pki.ca, 4);
  const b = tcpProxyTo('one', one, pki.ca, 1);
  await configure(h, { clusters: [a.cluster, b.cluster], listeners: [a.listener, b.listener] });

  for (const [name, backend] of [['four', four], ['one', one]] as const) {
    await wave(h.port(name), 4);
    assert.deepEqual(backend.reused, [false, false, false, false], `${name}: the first connections are full handshakes`);
    await wave(h.port(name), 4);
  }
  assert.deepEqual(four.reused.slice(4), [true, true, true, true], 'each of the 4 kept sessions resumed one connection');
  const resumedWithOne = one.reused.slice(4).filter(Boolean).length;
  assert.ok(resumedWithOne >= 1 && resumedWithOne < 4, `one kept session cannot resume 4 connections on a single-use server (resumed ${resumedWithOne})`);
});

test('max_session_keys 1 with reusable TLS 1.3 tickets: an offered ticket is offered again rather than none', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backend = await startBackend(t, pki, false);
  const h = await startTestRuntime(t);
  const c = tcpProxyTo('tickets', backend, pki.ca, 1);
  await configure(h, { clusters: [c.cluster], listeners: [c.listener] });
  await wave(h.port('tickets'), 1);
  await wave(h.port('tickets'), 4);
  assert.deepEqual(backend.reused, [false, true, true, true, true]);
});
