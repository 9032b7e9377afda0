// Istio's TCP metadata exchange between two sidecars configured by the control plane (STRICT
// mTLS, a TCP service): ALPN istio-peer-exchange, a preamble each way that neither application
// sees, and TCP metrics on both reporters carrying the other side's workload labels.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { startMesh, SERVICES_YAML, scrape } from './mesh.ts';
import { PREAMBLE_MAGIC, decodePayload } from '../../src/proxy/telemetry/peer-exchange-preamble.ts';
import { until } from '../helpers/wait.ts';

const STRICT = `---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec: { mtls: { mode: STRICT } }\n`;

/** Sends `payload` through a TCP connection, half-closes, and collects everything sent back. */
function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => c.end(payload));
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => resolve(Buffer.concat(chunks)));
    c.on('error', reject);
  });
}

/** The value of the one series of `name` whose labels include all of `want`. */
function series(text: string, name: string, want: Record<string, string>): number | undefined {
  const found: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) found.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(want)}: ${found.length} series`);
  return found[0];
}

test('TCP between sidecars: metadata exchange over ALPN istio-peer-exchange fills both reporters’ peer labels', async (t) => {
  const seen: Buffer[] = [];
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage']) + '---\n' + SERVICES_YAML(['reviews'], 'default', 'tcp') + STRICT,
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, sa: 'bookinfo-productpage', upstreams: ['reviews:9080'] },
      {
        name: 'reviews-v2',
        labels: { app: 'reviews', version: 'v2' },
        sa: 'bookinfo-reviews',
        // Echo; records what the application received, to prove no preamble reaches it.
        tcpApp: (s) => {
          const got: Buffer[] = [];
          s.on('data', (d: Buffer) => {
            got.push(d);
            s.write(d);
          });
          s.on('end', () => {
            seen.push(Buffer.concat(got));
            s.end();
          });
        },
      },
    ],
  });
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];
  const rv = mesh.sidecars['reviews-v2'];
  const port = pp.upstreams['reviews:9080'];

  assert.equal((await roundTrip(port, Buffer.from('hello mesh!'))).toString(), 'hello mesh!');
  // A large payload crosses many TLS records: the bytes after the preamble are relayed untouched.
  const big = Buffer.alloc(256 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  assert.ok((await roundTrip(port, big)).equals(big));
  await until('both connections reported closed', async () => series(await scrape(rv.stats), 'istio_tcp_connections_closed_total', { reporter: 'destination' }) === 2 && series(await scrape(pp.stats), 'istio_tcp_connections_closed_total', { reporter: 'source' }) === 2, { timeoutMs: 5000, intervalMs: 50 });
  assert.deepEqual(
    seen.map((b) => b.length),
    [11, big.length],
    'the application receives exactly what the client sent',
  );

  const peers = {
    source_workload: 'productpage-v1',
    source_app: 'productpage',
    source_version: 'v1',
    source_workload_namespace: 'default',
    source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
    destination_workload: 'reviews-v2',
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_workload_namespace: 'default',
    destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    destination_service: 'reviews.default.svc.cluster.local',
    destination_service_name: 'reviews',
    request_protocol: 'tcp',
    response_flags: '-',
  };
  const server = await scrape(rv.stats);
  const dst = { ...peers, reporter: 'destination', connection_security_policy: 'mutual_tls' };
  assert.equal(series(server, 'istio_tcp_connections_opened_total', dst), 2);
  assert.equal(series(server, 'istio_tcp_connections_closed_total', dst), 2);
  // Application bytes only: the preambles are not counted.
  assert.equal(series(server, 'istio_tcp_received_bytes_total', dst), 11 + big.length);
  assert.equal(series(server, 'istio_tcp_sent_bytes_total', dst), 11 + big.length);

  const client = await scrape(pp.stats);
  const src = { ...peers, reporter: 'source', connection_security_policy: 'unknown' };
  assert.equal(series(client, 'istio_tcp_connections_opened_total', src), 2);
  assert.equal(series(client, 'istio_tcp_connections_closed_total', src), 2);
  assert.equal(series(client, 'istio_tcp_received_bytes_total', src), 11 + big.length);
  assert.equal(series(client, 'istio_tcp_sent_bytes_total', src), 11 + big.length);

  for (const text of [server, client]) {
    assert.match(text, /^envoy_metadata_exchange_alpn_protocol_found 2$/m);
    assert.match(text, /^envoy_metadata_exchange_metadata_added 2$/m);
    assert.doesNotMatch(text, /^envoy_metadata_exchange_(initial_)?header_not_found [1-9]/m);
  }
});

test('a plaintext client reaches a TCP port without the exchange: no preamble is written, peer labels unknown', async (t) => {
  const PERMISSIVE = `---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: istio-system }\nspec: { mtls: { mode: PERMISSIVE } }\n`;
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['reviews'], 'default', 'tcp') + PERMISSIVE,
    workloads: [{ name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, sa: 'bookinfo-reviews', tcpApp: (s) => s.pipe(s) }],
  });
  t.after(() => mesh.close());
  const rv = mesh.sidecars['reviews-v2'];
  assert.equal((await roundTrip(rv.inbound, Buffer.from('plain'))).toString(), 'plain');
  await until('the connection reported closed', async () => series(await scrape(rv.stats), 'istio_tcp_connections_closed_total', { reporter: 'destination' }) === 1, { timeoutMs: 5000, intervalMs: 50 });
  const text = await scrape(rv.stats);
  assert.equal(series(text, 'istio_tcp_received_bytes_total', { reporter: 'destination', source_workload: 'unknown', destination_workload: 'reviews-v2', connection_security_policy: 'none' }), 5);
});

test('Telemetry reportingInterval: byte counts of an open TCP connection are reported while it lives', async (t) => {
  const yaml = SERVICES_YAML(['productpage']) + '---\n' + SERVICES_YAML(['reviews'], 'default', 'tcp') + STRICT + `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: mesh, namespace: istio-system }\nspec:\n  metrics: [{ reportingInterval: 0.1s }]\n`;
  const mesh = await startMesh({
    yaml,
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage' }, sa: 'bookinfo-productpage', upstreams: ['reviews:9080'] },
      { name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, sa: 'bookinfo-reviews', tcpApp: (s) => s.pipe(s) },
    ],
  });
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];
  const rv = mesh.sidecars['reviews-v2'];
  const c = net.connect(pp.upstreams['reviews:9080'], '127.0.0.1');
  t.after(() => c.destroy());
  await new Promise<void>((resolve, reject) => {
    c.once('data', () => resolve());
    c.once('error', reject);
    c.write('still open');
  });
  for (const [stats, reporter] of [[rv.stats, 'destination'], [pp.stats, 'source']] as const) {
    await until(`${reporter} bytes while the connection is open`, async () => series(await scrape(stats), 'istio_tcp_received_bytes_total', { reporter, destination_workload: 'reviews-v2' }) === 10, { timeoutMs: 5000, intervalMs: 50 });
    const text = await scrape(stats);
    assert.equal(series(text, 'istio_tcp_sent_bytes_total', { reporter }), 10);
    assert.equal(series(text, 'istio_tcp_connections_opened_total', { reporter }), 1);
    assert.equal(series(text, 'istio_tcp_connections_closed_total', { reporter }) ?? 0, 0, 'still open');
  }
  c.end();
  await until('closed', async () => series(await scrape(rv.stats), 'istio_tcp_connections_closed_total', { reporter: 'destination' }) === 1, { timeoutMs: 5000, intervalMs: 50 });
  assert.equal(series(await scrape(rv.stats), 'istio_tcp_received_bytes_total', { reporter: 'destination' }), 10, 'no byte counted twice');
});

/** An mTLS client to a sidecar's inbound port offering Istio's ALPN, as another sidecar would. */
function meshClient(port: number, leaf: { cert: string; key: string }, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: leaf.cert, key: leaf.key, ca, ALPNProtocols: ['istio-peer-exchange', 'istio'], rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
}

test('peer exchange with hand-made mTLS peers: a lazy client of a server-first application, a client without preamble', async (t) => {
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['reviews'], 'default', 'tcp') + STRICT,
    workloads: [{ name: 'reviews-v2', labels: { app: 'reviews', version: 'v2' }, sa: 'bookinfo-reviews', tcpApp: (s) => s.end('220 banner\r\n') }],
  });
  t.after(() => mesh.close());
  const rv = mesh.sidecars['reviews-v2'];
  const leaf = mesh.pki.leaf('client', ['URI:spiffe://cluster.local/ns/default/sa/lazy']);

  // A lazy client (Envoy writes its preamble with its first bytes) of a server-first protocol: the
  // sidecar writes its own preamble at once, waits for the client's a bounded time, then connects
  // the application, whose banner follows the preamble.
  const lazy = await meshClient(rv.inbound, leaf, mesh.pki.ca);
  t.after(() => lazy.destroy());
  assert.equal(lazy.alpnProtocol, 'istio-peer-exchange');
  const got: Buffer[] = [];
  lazy.on('data', (d: Buffer) => got.push(d));
  await new Promise((r) => lazy.once('end', r));
  const all = Buffer.concat(got);
  const size = all.readUInt32BE(4);
  assert.equal(all.readUInt32BE(0), PREAMBLE_MAGIC);
  assert.equal(decodePayload(all.subarray(8, 8 + size))?.labels.workload, 'reviews-v2', "the server's preamble carries its workload");
  assert.equal(all.subarray(8 + size).toString(), '220 banner\r\n');

  // A client whose first bytes are not a preamble: they reach the application unchanged (counted).
  const plain = await meshClient(rv.inbound, leaf, mesh.pki.ca);
  t.after(() => plain.destroy());
  plain.resume();
  plain.end('HELO\r\n');
  await new Promise((r) => plain.once('close', r));
  await until('both connections closed', async () => series(await scrape(rv.stats), 'istio_tcp_connections_closed_total', { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/default/sa/lazy' }) === 2, { timeoutMs: 5000, intervalMs: 50 });
  const text = await scrape(rv.stats);
  assert.equal(series(text, 'istio_tcp_received_bytes_total', { reporter: 'destination', source_workload: 'unknown', source_principal: 'spiffe://cluster.local/ns/default/sa/lazy' }), 6);
  assert.match(text, /^envoy_metadata_exchange_initial_header_not_found 2$/m);
});
