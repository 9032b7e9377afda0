// rig proxy's fetch of WasmPlugin modules, as Istio's agent does it (src/proxy/filters/wasm/wasm-fetch.ts):
// over http from a local server (sha256 check, gzip unboxing, retries of 5xx, errors naming the url
// and the reason), from a local OCI registry with a Bearer token challenge (the Wasm OCI artifact,
// Docker and OCI compat images, an index, a digest reference, a private repository with an
// imagePullSecret), and the cache's pull policies (IfNotPresent reuses, Always fetches again when the
// WasmPlugin's resource version changes; an oci :latest tag acts as Always).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { WasmModuleCache, type ModuleRequest } from '../../src/proxy/filters/wasm/wasm-fetch.ts';
import { blockedAddress } from '../../src/proxy/filters/wasm/wasm-fetch-http.ts';
import { listenLocal } from '../helpers/listen.ts';
import { compatImage, startTestRegistry, wasmArtifact } from '../helpers/oci-registry.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { addHeaderPlugin, buildPlugin, denyPlugin } from '../helpers/wasm-plugins.ts';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

function req(url: string, o: Partial<ModuleRequest> = {}): ModuleRequest {
  return { url, sha256: '', timeoutMs: 10_000, pullPolicy: 'UNSPECIFIED_POLICY', pullSecret: undefined, resourceName: 'default.plugin', resourceVersion: '1', ...o };
}

test('wasm fetch over http: sha256 checked, cached on disk, reused with IfNotPresent, fetched again with Always when the resource version changes', async (t) => {
  const module = await buildPlugin(addHeaderPlugin);
  const other = await buildPlugin(denyPlugin);
  const hits = new Map<string, number>();
  let flaky = 0;
  const server = http.createServer((rq, res) => {
    hits.set(rq.url!, (hits.get(rq.url!) ?? 0) + 1);
    if (rq.url === '/plugin.wasm') res.end(module);
    else if (rq.url === '/plugin.wasm.gz') res.end(zlib.gzipSync(other));
    else if (rq.url === '/flaky.wasm') res.writeHead(flaky++ === 0 ? 503 : 200).end(module);
    else if (rq.url === '/text') res.end('<html>not a module</html>');
    else if (rq.url === '/moved') res.writeHead(302, { location: '/plugin.wasm' }).end();
    else if (rq.url === '/to-metadata') res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end();
    else if (rq.url === '/huge') res.writeHead(200, { 'content-length': String(300 << 20) }).flushHeaders();
    else res.writeHead(404).end('no such plugin');
  });
  const port = await listenLocal(server, t);
  t.after(() => server.closeAllConnections());
  const base = `http://127.0.0.1:${port}`;
  const dir = tempDir(t, 'rig-wasm-cache-');
  const cache = new WasmModuleCache(dir);

  const first = await cache.fetch(req(`${base}/plugin.wasm`, { sha256: sha256(module) }));
  assert.ok(first.startsWith(dir + path.sep), first);
  assert.deepEqual(fs.readFileSync(first), module);
  assert.equal(path.basename(first), `${sha256(module)}.wasm`);
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`, { sha256: sha256(module), pullPolicy: 'Always', resourceVersion: '9' })), first, 'a sha256 names the module: no fetch whatever the policy');

  // Without sha256: the checksum last fetched for the url, per pull policy and resource version.
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`)), first);
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`, { resourceVersion: '2' })), first, 'IfNotPresent (default for http) ignores the resource version');
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`, { resourceVersion: '2', pullPolicy: 'IfNotPresent' })), first);
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`, { resourceVersion: '3', pullPolicy: 'Always' })), undefined, 'Always: a new resource version fetches again');
  assert.equal(hits.get('/plugin.wasm'), 1);
  const again = await Promise.all([cache.fetch(req(`${base}/plugin.wasm`, { resourceVersion: '3', pullPolicy: 'Always' })), cache.fetch(req(`${base}/plugin.wasm`, { resourceVersion: '3', pullPolicy: 'Always' }))]);
  assert.deepEqual(again, [first, first]);
  assert.equal(hits.get('/plugin.wasm'), 2, 'one fetch for two requests alike at once');
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`, { resourceVersion: '3', pullPolicy: 'Always' })), first, 'then cached for that resource version');

  // gzip unboxed; a 5xx tried again; errors name the url and the reason.
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(`${base}/plugin.wasm.gz`))), other);
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(`${base}/flaky.wasm`))), module);
  assert.equal(hits.get('/flaky.wasm'), 2);
  await assert.rejects(cache.fetch(req(`${base}/plugin.wasm`, { sha256: 'ab'.repeat(32), resourceName: 'x' })), new RegExp(`the module downloaded from ${base}/plugin.wasm has sha256 ${sha256(module)}, not the configured ${'ab'.repeat(32)}`));
  await assert.rejects(cache.fetch(req(`${base}/missing.wasm`)), new RegExp(`GET ${base}/missing.wasm answered 404`));
  await assert.rejects(cache.fetch(req(`${base}/text`)), new RegExp(`what was fetched from ${base}/text is not a Wasm module`));
  await assert.rejects(cache.fetch(req(`${base}/huge`)), /is 314572800 bytes, more than the 268435456 rig proxy accepts/);
  const closed = await freePort();
  await assert.rejects(cache.fetch(req(`http://127.0.0.1:${closed}/plugin.wasm`, { timeoutMs: 2000 })), new RegExp(`GET http://127.0.0.1:${closed}/plugin.wasm failed: ECONNREFUSED`));
  await assert.rejects(cache.fetch(req('ftp://example.com/plugin.wasm')), /over http:\/\/, https:\/\/ and oci:\/\/ only/);

  // Redirects are followed, but not to link-local or cloud metadata addresses (as Istio's agent).
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(`${base}/moved`))), module);
  await assert.rejects(cache.fetch(req(`${base}/to-metadata`)), /GET http:\/\/169\.254\.169\.254\/latest\/meta-data failed: connection blocked: 169\.254\.169\.254 is link-local/);
  await assert.rejects(cache.fetch(req('http://[fe80::1]/p.wasm')), /connection blocked: fe80::1 is link-local/);
  assert.equal(blockedAddress('::ffff:169.254.1.1'), 'link-local');
  assert.equal(blockedAddress('fd00:ec2::254'), 'a known cloud metadata address');
  assert.equal(blockedAddress('100.100.100.200'), 'a known cloud metadata address');
  assert.equal(blockedAddress('10.0.0.1'), undefined, 'private addresses stay allowed (in-cluster registries)');

  // Purged when untouched: looked up again, it is fetched again.
  cache.purge(Date.now() + 1);
  assert.equal(fs.existsSync(first), false);
  assert.equal(cache.lookup(req(`${base}/plugin.wasm`, { sha256: sha256(module) })), undefined);
});

test('wasm fetch from an OCI registry: the Wasm artifact, Docker and OCI compat images, an index, a digest reference, a private repository with an imagePullSecret', async (t) => {
  const module = await buildPlugin(addHeaderPlugin);
  const registry = await startTestRegistry(t);
  const cache = new WasmModuleCache(tempDir(t, 'rig-wasm-cache-'));
  const art = wasmArtifact(module);
  const artifactDigest = registry.push('wasm/artifact', 'v1', art.manifest, art.blobs);
  const docker = compatImage(module, 'docker');
  registry.push('wasm/docker', 'v1', docker.manifest, docker.blobs);
  const oci = compatImage(module, 'oci');
  const ociDigest = registry.push('wasm/oci', 'v1', oci.manifest, oci.blobs);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${ociDigest}`, size: 1, platform: { os: 'linux', architecture: 'amd64' } }] }));
  registry.pushManifest('wasm/oci', 'multi', 'application/vnd.oci.image.index.v1+json', index);
  const priv = compatImage(module, 'oci');
  registry.push('team/private', 'v1', priv.manifest, priv.blobs);
  registry.privateRepos.set('team/private', 'robot:s3cret');
  const bad = { manifest: { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: art.manifest && (art.manifest as { config: object }).config, layers: [(art.manifest as { layers: object[] }).layers[0]] }, blobs: art.blobs };
  registry.push('wasm/one-layer', 'v1', bad.manifest, bad.blobs);
  const oci_ = (ref: string) => `oci://${registry.host}/${ref}`;

  const artifactFile = await cache.fetch(req(oci_('wasm/artifact:v1'), { sha256: artifactDigest }));
  assert.deepEqual(fs.readFileSync(artifactFile), module);
  assert.equal(path.basename(artifactFile), `${artifactDigest}.wasm`, 'an image is cached under its manifest digest');
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(oci_('wasm/docker:v1')))), module);
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(oci_('wasm/oci:v1')))), module);
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(oci_('wasm/oci:multi')))), module);
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(oci_(`wasm/artifact@sha256:${artifactDigest}`)))), module);
  assert.ok(registry.requests.includes('/token'), 'anonymous pulls went through the token challenge');

  await assert.rejects(cache.fetch(req(oci_('wasm/artifact:v1'), { sha256: 'cd'.repeat(32), resourceName: 'x' })), new RegExp(`the image ${oci_('wasm/artifact:v1')} has digest sha256:${artifactDigest}, not the configured ${'cd'.repeat(32)}`));
  await assert.rejects(cache.fetch(req(oci_('wasm/nope:v1'))), /manifests\/v1 answered 404/);
  await assert.rejects(cache.fetch(req(oci_('wasm/one-layer:v1'))), /is not a Wasm image: neither a compat image .* nor a Wasm OCI artifact \(2 layers, one application\/vnd\.module\.wasm\.content\.layer\.v1\+wasm\); it has 1 layer/);
  await assert.rejects(cache.fetch(req(oci_('team/private:v1'))), /token service .* answered 401 to an anonymous pull \(set imagePullSecret/);
  await assert.rejects(cache.fetch(req(oci_('team/private:v1'), { pullSecret: '' })), /its imagePullSecret was not found/);
  const secret = JSON.stringify({ auths: { [`http://${registry.host}`]: { auth: Buffer.from('robot:s3cret').toString('base64') } } });
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(oci_('team/private:v1'), { pullSecret: secret }))), module);
  await assert.rejects(cache.fetch(req(oci_('team/private:v1'), { pullSecret: 'not json', resourceName: 'y' })), /not a docker config/);

  // A :latest tag without a policy acts as Always: a new resource version resolves the manifest
  // again, but the layers are not downloaded again for a digest already cached.
  registry.push('wasm/artifact', 'latest', art.manifest, art.blobs);
  const blobs = () => registry.requests.filter((r) => r.startsWith('/v2/wasm/artifact/blobs/')).length;
  const latest = req(oci_('wasm/artifact:latest'), { resourceName: 'default.latest' });
  await cache.fetch(latest);
  const blobsAfter = blobs();
  assert.equal(cache.lookup(latest), artifactFile);
  assert.equal(cache.lookup({ ...latest, resourceVersion: '2' }), undefined);
  assert.equal(await cache.fetch({ ...latest, resourceVersion: '2' }), artifactFile);
  assert.equal(blobs(), blobsAfter, 'the manifest digest was cached: no layer downloaded');
  assert.equal(cache.lookup({ ...latest, resourceVersion: '2', pullPolicy: 'IfNotPresent' }), artifactFile);
});

test('wasm fetch over https: a certificate no trusted CA signed is refused, naming the url; WASM_INSECURE_REGISTRIES lists hosts fetched from without checking it', async (t) => {
  const module = await buildPlugin(addHeaderPlugin);
  const dir = tempDir(t, 'rig-wasm-https-');
  execFileSync('openssl', ['req', '-x509', '-sha256', '-nodes', '-days', '1', '-newkey', 'rsa:2048', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', 'key.pem', '-out', 'cert.pem'], { cwd: dir, stdio: 'ignore' });
  const server = https.createServer({ cert: fs.readFileSync(path.join(dir, 'cert.pem')), key: fs.readFileSync(path.join(dir, 'key.pem')) }, (_rq, res) => res.end(module));
  const port = await listenLocal(server, t);
  t.after(() => server.closeAllConnections());
  const cache = new WasmModuleCache(path.join(dir, 'cache'));
  const url = `https://127.0.0.1:${port}/plugin.wasm`;
  await assert.rejects(cache.fetch(req(url)), new RegExp(`GET ${url} failed: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)`));
  const saved = process.env.WASM_INSECURE_REGISTRIES;
  t.after(() => (saved === undefined ? delete process.env.WASM_INSECURE_REGISTRIES : (process.env.WASM_INSECURE_REGISTRIES = saved)));
  process.env.WASM_INSECURE_REGISTRIES = `registry.example, 127.0.0.1:${port}`;
  assert.deepEqual(fs.readFileSync(await cache.fetch(req(url, { resourceVersion: '2' }))), module);
});

test("wasm fetch over http follows Istio's agent settings: WASM_HTTP_REQUEST_MAX_RETRIES and WASM_HTTP_REQUEST_TIMEOUT; a value that does not parse fails the fetch naming it", async (t) => {
  const requests: string[] = [];
  const server = http.createServer((rq, res) => {
    requests.push(rq.url!);
    if (rq.url === '/down.wasm') res.writeHead(503).end('down');
    // /silent.wasm never answers: only the per-request timeout ends a try.
  });
  const port = await listenLocal(server, t);
  t.after(() => server.closeAllConnections());
  const names = ['WASM_HTTP_REQUEST_MAX_RETRIES', 'WASM_HTTP_REQUEST_TIMEOUT'] as const;
  const saved = names.map((n) => process.env[n]);
  t.after(() => names.forEach((n, i) => (saved[i] === undefined ? delete process.env[n] : (process.env[n] = saved[i]))));
  const cache = new WasmModuleCache(tempDir(t, 'rig-wasm-cache-'));

  process.env.WASM_HTTP_REQUEST_MAX_RETRIES = '2';
  await assert.rejects(cache.fetch(req(`http://127.0.0.1:${port}/down.wasm`)), /answered 503 \(after 2 attempts\)/);
  assert.deepEqual(requests, ['/down.wasm', '/down.wasm'], 'two tries, not the default five');

  // Each try gives up after 100 ms, well within the fetch's 10 s: two tries, then the error.
  process.env.WASM_HTTP_REQUEST_TIMEOUT = '100ms';
  requests.length = 0;
  await assert.rejects(cache.fetch(req(`http://127.0.0.1:${port}/silent.wasm`)), /after 2 attempts/);
  assert.deepEqual(requests, ['/silent.wasm', '/silent.wasm']);

  process.env.WASM_HTTP_REQUEST_MAX_RETRIES = 'many';
  await assert.rejects(cache.fetch(req(`http://127.0.0.1:${port}/down.wasm`)), /WASM_HTTP_REQUEST_MAX_RETRIES: "many" is not a whole number/);
});
