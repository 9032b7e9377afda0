// Http1ProtocolOptions.header_key_format on both HTTP/1.1 hops, as Envoy's codecs: a raw TCP
// client and a raw TCP upstream around rig proxy, so the bytes (and the case of each name) are
// seen as written. Without it names go out in lower case; proper_case_words proper-cases what a
// connection writes; preserve_case records the case a message came in with and the next HTTP/1
// hop writes it that way (names the proxy added follow formatter_type_on_envoy_headers), and
// forward_reason_phrase keeps the upstream's reason phrase. HTTP/2 has lower-case names only.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, staticCluster } from './harness.ts';
import { listenLocal } from '../helpers/listen.ts';
import { waitFor } from '../helpers/wait.ts';

const HTTP_OPTS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const PRESERVE = 'type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig';
const REQUEST = 'GET /p HTTP/1.1\r\nHost: t\r\nX-Mixed-CASE: v\r\nUser-Agent: raw-client\r\nConnection: close\r\n\r\n';
const RESPONSE = 'HTTP/1.1 200 Everything Fine\r\nX-Upstream-Header: A\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok';

/** A raw upstream answering RESPONSE to every request; the request heads it received. */
async function rawUpstream(t: { after(fn: () => unknown): void }): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  // The proxy keeps its upstream connection open: closed here so that the server's close can finish.
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const server = net.createServer((s) => {
    sockets.add(s);
    let buf = '';
    s.on('error', () => undefined);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      heads.push(buf.slice(0, end + 2));
      buf = buf.slice(end + 4);
      s.write(RESPONSE);
    });
  });
  return { port: await listenLocal(server, t), heads };
}

/** One raw exchange; the whole response (the proxy closes after it: Connection: close). */
function rawExchange(port: number, request = REQUEST): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

/** Header names of a head, in order, as written. */
function names(head: string): string[] {
  return head.split('\r\n').slice(1).filter((l) => l.includes(':')).map((l) => l.slice(0, l.indexOf(':')));
}

function preserveCase(cfg: Record<string, unknown> = {}): Record<string, unknown> {
  return { stateful_formatter: { name: 'preserve_case', typed_config: { '@type': PRESERVE, ...cfg } } };
}

function clusterH1(keyFormat: Record<string, unknown>): Record<string, unknown> {
  return { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTS, explicit_http_config: { http_protocol_options: { header_key_format: keyFormat } } } } };
}

async function setup(t: { after(fn: () => unknown): void }, hcmKeyFormat?: Record<string, unknown>, clusterKeyFormat?: Record<string, unknown>) {
  const up = await rawUpstream(t);
  const h = await startTestRuntime(t);
  const hcm = { upgrade_configs: [{ upgrade_type: 'websocket' }], ...(hcmKeyFormat ? { http_protocol_options: { header_key_format: hcmKeyFormat } } : {}) };
  await configure(h, {
    clusters: [staticCluster('up', [up.port], clusterKeyFormat ? clusterH1(clusterKeyFormat) : {})],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]), hcm)],
  });
  return { up, port: h.port('l') };
}

test('without header_key_format: names go both ways in lower case, the reason phrase is the standard one', async (t) => {
  const { up, port } = await setup(t);
  const res = await rawExchange(port);
  const sent = names(up.heads[0]);
  assert.ok(sent.includes('x-mixed-case') && sent.includes('host') && sent.includes('user-agent'), up.heads[0]);
  assert.ok(sent.every((n) => n === n.toLowerCase()), up.heads[0]);
  assert.match(res, /^HTTP\/1\.1 200 OK\r\n/);
  const got = names(res);
  assert.ok(got.includes('x-upstream-header') && got.includes('content-type'), res);
  assert.ok(got.every((n) => n === n.toLowerCase()), res);
});

test('preserve_case on the connection manager and the cluster (as istiod): each message keeps the case it came in with', async (t) => {
  const { up, port } = await setup(t, preserveCase(), preserveCase());
  const res = await rawExchange(port);
  const sent = names(up.heads[0]);
  for (const n of ['Host', 'X-Mixed-CASE', 'User-Agent']) assert.ok(sent.includes(n), `${n} upstream in ${up.heads[0]}`);
  // Added by the proxy: lower case (formatter_type_on_envoy_headers DEFAULT).
  assert.ok(sent.includes('x-request-id') && sent.includes('x-forwarded-proto'), up.heads[0]);
  assert.match(res, /^HTTP\/1\.1 200 OK\r\n/, 'forward_reason_phrase is off by default');
  const got = names(res);
  for (const n of ['X-Upstream-Header', 'Content-Type', 'Content-Length']) assert.ok(got.includes(n), `${n} downstream in ${res}`);
  assert.ok(got.includes('x-envoy-upstream-service-time') && got.includes('date'), res);
});

test('preserve_case options: forward_reason_phrase, formatter_type_on_envoy_headers PROPER_CASE', async (t) => {
  const opts = { forward_reason_phrase: true, formatter_type_on_envoy_headers: 'PROPER_CASE' };
  const { up, port } = await setup(t, preserveCase(opts), preserveCase(opts));
  const res = await rawExchange(port);
  const sent = names(up.heads[0]);
  assert.ok(sent.includes('X-Mixed-CASE') && sent.includes('X-Request-Id') && sent.includes('X-Forwarded-Proto'), up.heads[0]);
  assert.match(res, /^HTTP\/1\.1 200 Everything Fine\r\n/);
  const got = names(res);
  assert.ok(got.includes('X-Upstream-Header') && got.includes('X-Envoy-Upstream-Service-Time') && got.includes('Date'), res);
});

test('preserve_case on one side only: the connection that read the message decides', async (t) => {
  // Connection manager only: the request keeps its case upstream; the response (read by the cluster) is lower case.
  const a = await setup(t, preserveCase());
  const resA = await rawExchange(a.port);
  assert.ok(names(a.up.heads[0]).includes('X-Mixed-CASE'), a.up.heads[0]);
  assert.ok(names(resA).includes('x-upstream-header'), resA);
  // Cluster only: the response keeps the upstream's case downstream; the request goes in lower case.
  const b = await setup(t, undefined, preserveCase());
  const resB = await rawExchange(b.port);
  assert.ok(names(b.up.heads[0]).includes('x-mixed-case'), b.up.heads[0]);
  assert.ok(names(resB).includes('X-Upstream-Header'), resB);
});

test('proper_case_words: what each configured connection writes is proper-cased', async (t) => {
  const { up, port } = await setup(t, { proper_case_words: {} }, { proper_case_words: {} });
  const res = await rawExchange(port);
  const sent = names(up.heads[0]);
  for (const n of ['Host', 'X-Mixed-Case', 'User-Agent', 'X-Request-Id', 'X-Forwarded-Proto']) assert.ok(sent.includes(n), `${n} upstream in ${up.heads[0]}`);
  assert.match(res, /^HTTP\/1\.1 200 OK\r\n/);
  const got = names(res);
  for (const n of ['X-Upstream-Header', 'Content-Type', 'X-Envoy-Upstream-Service-Time', 'Date', 'Connection']) assert.ok(got.includes(n), `${n} downstream in ${res}`);
});

test('HTTP/2 downstream: no case to keep (lower case upstream with preserve_case, proper case with proper_case_words)', async (t) => {
  for (const [format, expected] of [
    [preserveCase(), 'x-mixed-case'],
    [{ proper_case_words: {} }, 'X-Mixed-Case'],
  ] as const) {
    const { up, port } = await setup(t, preserveCase(), format);
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const res = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const s = client.request({ ':path': '/p', 'x-mixed-case': 'v' });
      s.on('response', (h) => resolve(h));
      s.on('error', reject);
      s.resume();
    });
    client.close();
    assert.equal(res[':status'], 200);
    // HTTP/2 names are lower case on the wire whatever the upstream sent.
    assert.equal(res['x-upstream-header'], 'A');
    assert.ok(names(up.heads[0]).includes(expected), up.heads[0]);
  }
});

test('a WebSocket upgrade request goes upstream in the case it came in with (preserve_case on the connection manager)', async (t) => {
  const { up, port } = await setup(t, preserveCase());
  const client = net.connect(port, '127.0.0.1', () => client.write('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
  client.on('error', () => undefined);
  t.after(() => client.destroy());
  const head = await waitFor(() => 'the upgrade request at the upstream', () => up.heads[0], 10_000);
  const sent = names(head);
  for (const n of ['Host', 'Upgrade', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version']) assert.ok(sent.includes(n), `${n} upstream in ${head}`);
});
