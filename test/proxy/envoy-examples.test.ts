// Envoy's own sandbox and documentation configs (test/proxy/envoy-examples/*.yaml), run by
// `rig proxy -c` with only their ports changed: each test sends what the sandbox's docs send and
// checks what the docs say Envoy answers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { test, type TestContext } from 'node:test';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { request, startUpstream } from './harness.ts';
import { makePki } from './certs.ts';

const EXAMPLES = path.join(import.meta.dirname, 'envoy-examples');

/** Example file `name` with each `port_value: N` of `ports` replaced (0 = the OS picks). */
function adapt(name: string, ports: Record<number, number>): string {
  let yaml = fs.readFileSync(path.join(EXAMPLES, name), 'utf8');
  for (const [from, to] of Object.entries(ports)) yaml = yaml.replaceAll(`port_value: ${from} `, `port_value: ${to} `);
  return yaml;
}

/** Starts `rig proxy -c` on example `name`, its ports adapted; the listeners' bound ports come back in the order of the file. */
async function runExample(t: TestContext, name: string, ports: Record<number, number>) {
  const file = path.join(tempDir(t, 'envoy-example-'), path.basename(name));
  fs.writeFileSync(file, adapt(name, ports));
  const proxy = await startRigProxyFromFile(t, file);
  return { ...proxy, listenerPorts: Object.values(proxy.ports.listeners) };
}

test('front-proxy: listeners without a name get one, each service answers on its prefix, the runtime layer is named in a warning', async (t) => {
  const service1 = await startUpstream('service1');
  const service2 = await startUpstream('service2');
  t.after(() => Promise.all([service1.close(), service2.close()]));
  const proxy = await runExample(t, 'front-proxy.yaml', { 8080: 0, 8001: service1.port, 8002: service2.port, 8003: 0 });
  const [port] = proxy.listenerPorts;
  assert.equal((await request(port!, { path: '/service/1' })).json().server, 'service1');
  assert.equal((await request(port!, { path: '/service/2' })).json().server, 'service2');
  assert.equal((await request(port!, { path: '/service/3' })).status, 404);
  const listeners = await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/listeners?format=json`)).json();
  assert.match(JSON.stringify(listeners), /[0-9a-f]{8}-[0-9a-f]{4}-/, 'the unnamed listener has a UUID for a name, as in Envoy');
  assert.match(proxy.log(), /layered_runtime\.layers\[0\]\.static_layer: these keys switch Envoy features rig proxy does not have, and have no effect: envoy\.resource_limits\.listener\.example_listener_name\.connection_limit/);
});

test('ext_authz sandbox, HTTP service: 403 without a token, 200 with one and x-current-user sent upstream', async (t) => {
  const upstream = await startUpstream('upstream-service');
  const users: Record<string, string> = { 'Bearer token1': 'user1' };
  const authz = await startUpstream('ext_authz', (req, res) => {
    const user = users[req.headers.authorization ?? ''];
    res.writeHead(user ? 200 : 403, user ? { 'x-current-user': user } : {});
    res.end();
    return true;
  });
  t.after(() => Promise.all([upstream.close(), authz.close()]));
  const proxy = await runExample(t, 'ext-authz-http.yaml', { 8000: 0, 8080: upstream.port, 9002: authz.port });
  const [port] = proxy.listenerPorts;
  assert.equal((await request(port!, { path: '/service' })).status, 403);
  const ok = await request(port!, { path: '/service', headers: { authorization: 'Bearer token1' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().headers['x-current-user'], 'user1');
});

test('dynamic-config-fs sandbox: lds.yaml with `filters:` as one map (Envoy reads a list of one) serves; editing cds.yaml moves traffic', async (t) => {
  const service1 = await startUpstream('service1');
  const service2 = await startUpstream('service2');
  t.after(() => Promise.all([service1.close(), service2.close()]));
  const dir = tempDir(t, 'envoy-example-');
  fs.writeFileSync(path.join(dir, 'lds.yaml'), adapt('dynamic-config-fs/lds.yaml', { 10000: 0 }));
  fs.writeFileSync(path.join(dir, 'cds.yaml'), adapt('dynamic-config-fs/cds.yaml', { 8080: service1.port }));
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), adapt('dynamic-config-fs/envoy.yaml', { 19000: 0 }).replaceAll('/var/lib/envoy/', dir + '/'));
  const proxy = await startRigProxyFromFile(t, path.join(dir, 'envoy.yaml'));
  const port = proxy.ports.listeners.listener_0!;
  assert.equal((await request(port)).json().server, 'service1');
  // The sandbox's next step: point the cluster elsewhere by editing cds.yaml (moved into place).
  fs.writeFileSync(path.join(dir, 'cds.next'), adapt('dynamic-config-fs/cds.yaml', { 8080: service2.port }));
  fs.renameSync(path.join(dir, 'cds.next'), path.join(dir, 'cds.yaml'));
  let server = '';
  for (let i = 0; i < 600 && server !== 'service2'; i++) {
    server = (await request(port)).json().server;
    if (server !== 'service2') await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(server, 'service2', `cds.yaml was not reloaded:\n${proxy.log()}`);
});

test('gzip sandbox: /file.json is gzip-compressed (as the sandbox checks with curl), /file.txt is not (text/plain is not listed); the compressor stats count both', async (t) => {
  const json = JSON.stringify({ files: Array.from({ length: 40 }, (_, i) => ({ name: `file-${i}`, size: i * 100 })) });
  const text = 'plain text, '.repeat(40);
  const service = await startUpstream('service', (req, res) => {
    const isJson = req.url === '/file.json';
    const body = isJson ? json : text;
    res.writeHead(200, { 'content-type': isJson ? 'application/json' : 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  });
  t.after(() => service.close());
  const proxy = await runExample(t, 'gzip.yaml', { 10000: 0, 8080: service.port });
  const port = proxy.listenerPorts[0]!;
  const fetchRaw = (path: string) =>
    new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path, headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
  const compressed = await fetchRaw('/file.json');
  assert.equal(compressed.headers['content-encoding'], 'gzip');
  assert.equal(compressed.headers.vary, 'Accept-Encoding');
  assert.equal(zlib.gunzipSync(compressed.body).toString(), json);
  const plain = await fetchRaw('/file.txt');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), text);
  const stats = await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`)).text();
  assert.match(stats, /http\.ingress_http\.compressor\.text_optimized\.gzip\.response\.compressed: 1\b/);
  assert.match(stats, /http\.ingress_http\.compressor\.text_optimized\.gzip\.response\.not_compressed: 1\b/);
  assert.match(stats, /http\.ingress_http\.compressor\.text_optimized\.gzip\.response\.total_uncompressed_bytes: \d+/);
});

test('double-proxy sandbox, frontend: `type: strict_dns` and a one-map tls_certificates as written; TCP goes to the backend over mutual TLS', async (t) => {
  const pki = makePki();
  t.after(() => pki.cleanup());
  const backendLeaf = pki.leaf('backend', ['DNS:proxy-postgres-backend.example.com']);
  const client = pki.leaf('frontend', ['DNS:proxy-postgres-frontend.example.com']);
  fs.mkdirSync(path.join(pki.dir, 'certs'));
  fs.writeFileSync(path.join(pki.dir, 'certs/clientcert.pem'), client.cert);
  fs.writeFileSync(path.join(pki.dir, 'certs/clientkey.pem'), client.key);
  fs.writeFileSync(path.join(pki.dir, 'certs/cacert.pem'), pki.ca);
  // The backend: answers what it reads, reversed, to a client whose certificate the CA signed.
  const backend = tls.createServer({ ...backendLeaf, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (s) => s.on('data', (d: Buffer) => s.end(d.toString().split('').reverse().join(''))));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.after(() => backend.close());
  const file = path.join(pki.dir, 'frontend.yaml');
  fs.writeFileSync(file, adapt('double-proxy-frontend.yaml', { 5432: 0, 5433: (backend.address() as AddressInfo).port }).replaceAll('filename: certs/', `filename: ${pki.dir}/certs/`));
  const proxy = await startRigProxyFromFile(t, file);
  const socket = net.connect(proxy.ports.listeners.postgres_listener!, '127.0.0.1');
  socket.end('hello');
  let reply = '';
  for await (const chunk of socket) reply += String(chunk);
  assert.equal(reply, 'olleh');
});

test('healthchecks sandbox: the cluster serves once its active HTTP check passes; event_log_path, which rig lacks, is named in a warning', async (t) => {
  const sidecar = await startUpstream('sidecar');
  t.after(() => sidecar.close());
  const proxy = await runExample(t, 'healthchecks.yaml', { 7500: 0, 7502: sidecar.port });
  const reply = await request(proxy.listenerPorts[0]!, { path: '/service' });
  assert.equal(reply.json().server, 'sidecar');
  assert.ok(sidecar.requests.some((r) => r.url === '/healthcheck'), 'the active health check probed /healthcheck');
  assert.match(proxy.log(), /health_checks\[0\]\.event_log_path: not supported/);
});

test('CORS sandbox, backend: open echoes any origin and answers preflights, disabled adds nothing, restricted allows only *.envoyproxy.io', async (t) => {
  const backend = await startUpstream('backend');
  t.after(() => backend.close());
  const proxy = await runExample(t, 'cors-backend.yaml', { 10000: 0, 8080: backend.port });
  const port = proxy.listenerPorts[0]!;
  const origin = 'http://example.com';
  const allowed = async (path: string, from = origin) => (await request(port, { path, headers: { origin: from } })).headers['access-control-allow-origin'];
  assert.equal(await allowed('/cors/open'), origin);
  const preflight = await request(port, { path: '/cors/open', method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
  assert.equal(preflight.status, 200);
  assert.equal(preflight.headers['access-control-allow-methods'], 'GET');
  assert.equal(await allowed('/cors/disabled'), undefined);
  assert.equal(await allowed('/cors/restricted'), undefined);
  assert.equal(await allowed('/cors/restricted', 'https://www.envoyproxy.io'), 'https://www.envoyproxy.io');
  const stats = await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`)).text();
  assert.match(stats, /http\.ingress_http\.cors\.origin_invalid: 1\b/);
});
