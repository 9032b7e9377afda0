// envoy.filters.http.compressor and envoy.filters.http.decompressor through a real proxy: gzip,
// brotli and zstd responses decoded with node:zlib, Envoy's rules for what is left uncompressed,
// the stats, HTTP/2 both sides, curl --compressed, and a decompressor in front of a compressing
// upstream.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { configure, httpListener, ROUTER, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from './harness.ts';

const COMPRESSOR = 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor';
const DECOMPRESSOR = 'type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor';
const LIB = {
  gzip: { name: 'text', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip', memory_level: 3, window_bits: 10 } },
  br: { name: 'text', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli' } },
  zstd: { name: 'text', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd' } },
};
const H2_UPSTREAM = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

const TEXT = JSON.stringify({ message: 'hello compression '.repeat(50) });

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request whose body comes back as sent on the wire (not decoded). */
function get(port: number, path: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET', body?: Buffer): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

/** An upstream answering `path` → [content-type, body, extra headers]; the rest gets TEXT as JSON. */
async function upstream(t: TestContext, routes: Record<string, [string | undefined, string | Buffer, http.OutgoingHttpHeaders?]> = {}) {
  const up = await startUpstream('up', (req, res) => {
    const r = routes[req.url ?? ''] ?? ['application/json', TEXT];
    const headers: http.OutgoingHttpHeaders = { ...r[2] };
    if (r[0]) headers['content-type'] = r[0];
    if (headers['transfer-encoding'] === undefined) headers['content-length'] = Buffer.byteLength(r[1]);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : r[1]);
    return true;
  });
  return up;
}

async function proxy(t: TestContext, filters: EnvoyJson[], upstreamPort: number, opts: { routeExtra?: EnvoyJson; clusterExtra?: EnvoyJson; hcmExtra?: EnvoyJson } = {}): Promise<Harness> {
  const h = await startTestRuntime(t);
  await configure(h, {
    clusters: [staticCluster('up', [upstreamPort], opts.clusterExtra)],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' }, ...opts.routeExtra }]), { http_filters: [...filters, ROUTER], ...opts.hcmExtra })],
  });
  return h;
}

function compressor(lib: EnvoyJson, extra: EnvoyJson = {}, name = 'envoy.filters.http.compressor'): EnvoyJson {
  return { name, typed_config: { '@type': COMPRESSOR, compressor_library: lib, ...extra } };
}

test('gzip: a JSON response is compressed (Content-Encoding, Vary, no Content-Length) and gunzips to what the upstream sent; stats as Envoy names them', async (t) => {
  const up = await upstream(t);
  t.after(() => up.close());
  const h = await proxy(t, [compressor(LIB.gzip, { response_direction_config: { common_config: { min_content_length: 100 } } })], up.port);
  const r = await get(h.port('l'), '/', { 'accept-encoding': 'gzip' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(r.headers.vary, 'Accept-Encoding');
  assert.equal(r.headers['content-length'], undefined);
  assert.equal(zlib.gunzipSync(r.body).toString(), TEXT);
  assert.ok(r.body.length < TEXT.length / 4, `compressed to ${r.body.length} of ${TEXT.length} bytes`);
  const p = 'http.l.compressor.text.gzip.response.';
  assert.equal(stat(h, `${p}compressed`), 1);
  assert.equal(stat(h, `${p}header_compressor_used`), 1);
  assert.equal(stat(h, `${p}total_uncompressed_bytes`), TEXT.length);
  assert.equal(stat(h, `${p}total_compressed_bytes`), r.body.length);
  assert.equal(stat(h, 'http.l.compressor.text.gzip.request.not_compressed'), 1);
  // Without Accept-Encoding: sent as is, counted, and Vary still says it could have been compressed.
  const plain = await get(h.port('l'), '/');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers.vary, 'Accept-Encoding');
  assert.equal(plain.body.toString(), TEXT);
  assert.equal(stat(h, `${p}no_accept_header`), 1);
  assert.equal(stat(h, `${p}not_compressed`), 1);
});

test('brotli and zstd: each answers its own Accept-Encoding; with both filters the higher q-value wins, * takes the first filter', async (t) => {
  const up = await upstream(t);
  t.after(() => up.close());
  const h = await proxy(t, [compressor(LIB.br, {}, 'br'), compressor(LIB.zstd, {}, 'zstd'), compressor(LIB.gzip, {}, 'gzip')], up.port);
  const port = h.port('l');
  const br = await get(port, '/', { 'accept-encoding': 'br' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(zlib.brotliDecompressSync(br.body).toString(), TEXT);
  const zs = await get(port, '/', { 'accept-encoding': 'zstd' });
  assert.equal(zs.headers['content-encoding'], 'zstd');
  assert.equal(zlib.zstdDecompressSync(zs.body).toString(), TEXT);
  assert.equal((await get(port, '/', { 'accept-encoding': 'gzip;q=0.5, zstd;q=0.8, br;q=0.1' })).headers['content-encoding'], 'zstd');
  assert.equal((await get(port, '/', { 'accept-encoding': 'gzip, br' })).headers['content-encoding'], 'gzip', 'a tie goes to the first listed');
  assert.equal((await get(port, '/', { 'accept-encoding': '*' })).headers['content-encoding'], 'br');
  assert.equal((await get(port, '/', { 'accept-encoding': 'br;q=0, *' })).headers['content-encoding'], 'zstd', 'q=0 rules br out, even under *');
  assert.equal((await get(port, '/', { 'accept-encoding': 'identity' })).headers['content-encoding'], undefined);
  assert.equal((await get(port, '/', { 'accept-encoding': 'deflate' })).headers['content-encoding'], undefined);
  assert.equal(stat(h, 'http.l.compressor.text.brotli.header_compressor_overshadowed'), 3);
  assert.equal(stat(h, 'http.l.compressor.text.gzip.header_identity'), 1);
  assert.equal(stat(h, 'http.l.compressor.text.gzip.header_not_valid'), 1);
  assert.equal(stat(h, 'http.l.compressor.text.brotli.header_wildcard'), 2);
});

test('choose_first: on a q-value tie the choose_first filter compresses', async (t) => {
  const up = await upstream(t);
  t.after(() => up.close());
  const h = await proxy(t, [compressor(LIB.gzip, {}, 'gzip'), compressor(LIB.br, { choose_first: true }, 'br')], up.port);
  assert.equal((await get(h.port('l'), '/', { 'accept-encoding': 'gzip, br' })).headers['content-encoding'], 'br');
  assert.equal((await get(h.port('l'), '/', { 'accept-encoding': 'gzip, br;q=0.9' })).headers['content-encoding'], 'gzip');
});

test('left uncompressed: small body, unlisted content type, HEAD, no-transform, already encoded, ETag with disable_on_etag_header; a strong ETag is removed, a weak one kept', async (t) => {
  const up = await upstream(t, {
    '/small': ['text/plain', 'tiny'],
    '/png': ['image/png', Buffer.alloc(500, 1)],
    '/html': ['text/html; charset=utf-8', TEXT],
    '/no-transform': ['text/plain', TEXT, { 'cache-control': 'public, no-transform' }],
    '/encoded': ['text/plain', TEXT, { 'content-encoding': 'x-custom' }],
    '/strong': ['text/plain', TEXT, { etag: '"abc"', vary: 'Origin' }],
    '/weak': ['text/plain', TEXT, { etag: 'W/"abc"' }],
    '/chunked': ['text/plain', TEXT, { 'transfer-encoding': 'chunked' }],
  });
  t.after(() => up.close());
  const h = await proxy(t, [compressor(LIB.gzip, { response_direction_config: { common_config: { content_type: ['text/plain', 'application/json'] } } })], up.port);
  const port = h.port('l');
  const ae = { 'accept-encoding': 'gzip' };
  const small = await get(port, '/small', ae);
  assert.equal(small.headers['content-encoding'], undefined);
  assert.equal(small.body.toString(), 'tiny');
  assert.equal(stat(h, 'http.l.compressor.text.gzip.response.content_length_too_small'), 1);
  const png = await get(port, '/png', ae);
  assert.equal(png.headers['content-encoding'], undefined);
  assert.equal(png.headers.vary, undefined, 'an unlisted type gets no Vary');
  assert.equal((await get(port, '/html', ae)).headers['content-encoding'], undefined, 'text/html is not in this content_type list');
  const head = await get(port, '/', ae, 'HEAD');
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(head.headers['content-length'], String(TEXT.length));
  assert.equal((await get(port, '/no-transform', ae)).headers['content-encoding'], undefined);
  const enc = await get(port, '/encoded', ae);
  assert.equal(enc.headers['content-encoding'], 'x-custom');
  assert.equal(enc.body.toString(), TEXT);
  const strong = await get(port, '/strong', ae);
  assert.equal(strong.headers['content-encoding'], 'gzip');
  assert.equal(strong.headers.etag, undefined);
  assert.equal(strong.headers.vary, 'Origin, Accept-Encoding');
  const weak = await get(port, '/weak', ae);
  assert.equal(weak.headers['content-encoding'], 'gzip');
  assert.equal(weak.headers.etag, 'W/"abc"');
  const chunked = await get(port, '/chunked', ae);
  assert.equal(chunked.headers['content-encoding'], 'gzip', 'a body of unknown length is compressed');
  assert.equal(zlib.gunzipSync(chunked.body).toString(), TEXT);

  const h2 = await proxy(t, [compressor(LIB.gzip, { response_direction_config: { disable_on_etag_header: true } })], up.port);
  const etag = await get(h2.port('l'), '/strong', ae);
  assert.equal(etag.headers['content-encoding'], undefined);
  assert.equal(etag.headers.etag, '"abc"');
  assert.equal(stat(h2, 'http.l.compressor.text.gzip.response.not_compressed_etag'), 1);
});

test('enabled follows its runtime key; per route: CompressorPerRoute disabled leaves a route uncompressed; overrides enable a filter disabled by default and remove Accept-Encoding upstream', async (t) => {
  const up = await upstream(t);
  t.after(() => up.close());
  const h = await startTestRuntime(t);
  const perRoute = (v: EnvoyJson) => ({ typed_per_filter_config: { 'envoy.filters.http.compressor': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute', ...v } } });
  await configure(h, {
    clusters: [staticCluster('up', [up.port])],
    listeners: [
      httpListener(
        'l',
        routeConfig('r', [
          { match: { prefix: '/off' }, route: { cluster: 'up' }, ...perRoute({ disabled: true }) },
          { match: { prefix: '/on' }, route: { cluster: 'up' }, ...perRoute({ overrides: { response_direction_config: { remove_accept_encoding_header: true } } }) },
          { match: { prefix: '/' }, route: { cluster: 'up' } },
        ]),
        { http_filters: [compressor(LIB.gzip, { response_direction_config: { common_config: { enabled: { default_value: false, runtime_key: 'compression_on' } } } }), ROUTER] },
      ),
    ],
  });
  const port = h.port('l');
  const ae = { 'accept-encoding': 'gzip' };
  assert.equal((await get(port, '/', ae)).headers['content-encoding'], undefined, 'disabled by default_value');
  // The runtime key (here the admin layer, as POST /runtime_modify sets it) overrides default_value.
  h.rt.ctx.runtime.modify([['compression_on', 'true']]);
  assert.equal((await get(port, '/', ae)).headers['content-encoding'], 'gzip', 'enabled by the runtime key');
  h.rt.ctx.runtime.modify([['compression_on', 'false']]);
  const on = await get(port, '/on', ae);
  assert.equal(on.headers['content-encoding'], 'gzip');
  assert.equal(up.requests.at(-1)!.headers['accept-encoding'], undefined, 'remove_accept_encoding_header');
  assert.equal((await get(port, '/off', ae)).headers['content-encoding'], undefined);
  assert.equal(up.requests.at(-1)!.headers['accept-encoding'], 'gzip');
});

test('request_direction_config: a request body is compressed on its way upstream', async (t) => {
  let got: Buffer | undefined;
  let gotHeaders: http.IncomingHttpHeaders = {};
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got = Buffer.concat(chunks);
      gotHeaders = req.headers;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const h = await proxy(t, [compressor(LIB.gzip, { request_direction_config: {} })], (server.address() as AddressInfo).port);
  const r = await get(h.port('l'), '/', { 'content-type': 'application/json' }, 'POST', Buffer.from(TEXT));
  assert.equal(r.status, 200);
  assert.equal(gotHeaders['content-encoding'], 'gzip');
  assert.equal(gotHeaders['content-length'], undefined);
  assert.equal(zlib.gunzipSync(got!).toString(), TEXT);
  assert.equal(stat(h, 'http.l.compressor.text.gzip.request.compressed'), 1);
});

test('HTTP/2 downstream and upstream: a streamed response is compressed as it flows (each chunk flushed), trailers kept', async (t) => {
  const parts = ['first part of the stream, long enough to compress. ', 'second part, sent later. ', 'third and last part.'];
  const server = http2.createServer();
  server.on('stream', (s) => {
    s.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
    s.on('wantTrailers', () => s.sendTrailers({ 'x-checksum': 'abc' }));
    let i = 0;
    const next = () => {
      if (i < parts.length) {
        s.write(parts[i++]);
        setTimeout(next, 20);
      } else s.end();
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const h = await proxy(t, [compressor(LIB.gzip)], (server.address() as AddressInfo).port, { clusterExtra: H2_UPSTREAM });
  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => session.close());
  const s = session.request({ ':path': '/', 'accept-encoding': 'gzip' });
  const gunzip = zlib.createGunzip();
  const decoded: string[] = [];
  gunzip.on('data', (c: Buffer) => decoded.push(c.toString()));
  let headers: http2.IncomingHttpHeaders = {};
  let trailers: http2.IncomingHttpHeaders = {};
  s.on('response', (hd) => (headers = hd));
  s.on('trailers', (tr) => (trailers = tr));
  // The first part decodes before the upstream has sent the last: nothing waits for the body's end.
  const firstDecoded = new Promise<string>((r) => gunzip.once('data', (c: Buffer) => r(c.toString())));
  s.on('data', (c: Buffer) => gunzip.write(c));
  assert.equal(await firstDecoded, parts[0]);
  await new Promise<void>((r) => s.on('end', () => r()));
  await new Promise<void>((r) => gunzip.end(r));
  assert.equal(headers['content-encoding'], 'gzip');
  assert.equal(decoded.join(''), parts.join(''));
  assert.equal(trailers['x-checksum'], 'abc');
});

test('decompressor in front of a compressing upstream: the client gets the plain body, Accept-Encoding advertised upstream, byte-count trailers over HTTP/2', async (t) => {
  const up = await startUpstream('gz', (req, res) => {
    const ae = String(req.headers['accept-encoding'] ?? '');
    const gz = /\bgzip\b/.test(ae);
    res.writeHead(200, { 'content-type': 'text/plain', ...(gz ? { 'content-encoding': 'gzip' } : {}) });
    res.end(gz ? zlib.gzipSync(TEXT) : TEXT);
    return true;
  });
  t.after(() => up.close());
  const filter = { name: 'envoy.filters.http.decompressor', typed_config: { '@type': DECOMPRESSOR, decompressor_library: { name: 'basic', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip' } } } };
  const h = await proxy(t, [filter], up.port);
  const r = await get(h.port('l'), '/', { 'accept-encoding': 'br;q=0.5' });
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.body.toString(), TEXT);
  assert.equal(up.requests.at(-1)!.headers['accept-encoding'], 'br;q=0.5,gzip');
  const p = 'http.l.decompressor.basic.gzip.response.';
  assert.equal(stat(h, `${p}decompressed`), 1);
  assert.equal(stat(h, `${p}total_uncompressed_bytes`), TEXT.length);
  assert.equal(stat(h, `${p}total_compressed_bytes`), zlib.gzipSync(TEXT).length);

  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => session.close());
  const s = session.request({ ':path': '/' });
  let body = '';
  let trailers: http2.IncomingHttpHeaders = {};
  s.on('data', (c: Buffer) => (body += c.toString()));
  s.on('trailers', (tr) => (trailers = tr));
  await new Promise<void>((r) => s.on('end', () => r()));
  assert.equal(body, TEXT);
  assert.equal(trailers['x-envoy-decompressor-basic-uncompressed-bytes'], String(TEXT.length));
  assert.equal(trailers['x-envoy-decompressor-basic-compressed-bytes'], String(zlib.gzipSync(TEXT).length));
});

test('decompressor and compressor together: a gzip upstream answered to a brotli client', async (t) => {
  const up = await startUpstream('gz', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    res.end(zlib.gzipSync(TEXT));
    return true;
  });
  t.after(() => up.close());
  const decompressor = { name: 'envoy.filters.http.decompressor', typed_config: { '@type': DECOMPRESSOR, decompressor_library: { name: 'gz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip' } } } };
  const h = await proxy(t, [compressor(LIB.br), decompressor], up.port);
  const r = await get(h.port('l'), '/', { 'accept-encoding': 'br' });
  assert.equal(r.headers['content-encoding'], 'br');
  assert.equal(zlib.brotliDecompressSync(r.body).toString(), TEXT);
});

test('curl --compressed through the proxy: gzip, br and zstd over HTTP/1.1 and HTTP/2', async (t) => {
  const up = await upstream(t);
  t.after(() => up.close());
  const h = await proxy(t, [compressor(LIB.zstd, {}, 'zstd'), compressor(LIB.br, {}, 'br'), compressor(LIB.gzip, {}, 'gzip')], up.port);
  const run = promisify(execFile);
  for (const [ae, proto] of [['gzip', '--http1.1'], ['br', '--http2-prior-knowledge'], ['zstd', '--http1.1']]) {
    const { stdout } = await run('curl', ['-s', '--compressed', proto, '-H', `accept-encoding: ${ae}`, '-D', '-', `http://127.0.0.1:${h.port('l')}/`]);
    const [head, body] = stdout.split(/\r?\n\r?\n/, 2);
    assert.match(head!, new RegExp(`content-encoding: ${ae}`, 'i'));
    assert.equal(body, TEXT);
  }
});

test('a large body to a client that reads late (after the upstream was held back) arrives whole: the codecs pause and resume', { timeout: 60_000 }, async (t) => {
  const body = Buffer.from(Array.from({ length: 6 }, () => randomBytes(1 << 20).toString('base64')).join(''));
  let sawFull!: () => void;
  const upstreamFull = new Promise<void>((r) => (sawFull = r));
  const up = await startUpstream('big', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let at = 0;
    const pump = () => {
      while (at < body.length) {
        const ok = res.write(body.subarray(at, (at += 64 * 1024)));
        if (!ok) {
          sawFull();
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return true;
  });
  t.after(() => up.close());
  const h = await proxy(t, [compressor(LIB.gzip)], up.port);
  const reply = await new Promise<Raw>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: h.port('l'), path: '/', headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
      // Not read until the upstream's writes had to wait: the proxy's side pauses and resumes.
      res.pause();
      const chunks: Buffer[] = [];
      void upstreamFull.then(() => {
        res.on('data', (c: Buffer) => chunks.push(c));
        res.resume();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
  assert.equal(reply.headers['content-encoding'], 'gzip');
  assert.ok(zlib.gunzipSync(reply.body).equals(body));
});

test('decompressor, request direction: a gzip request body reaches the upstream decoded; a corrupt gzip response is cut and counted', async (t) => {
  const up = await startUpstream('echo', (req, res, got) => {
    if (req.url === '/corrupt') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      res.end(Buffer.concat([zlib.gzipSync(TEXT).subarray(0, 10), Buffer.from('not gzip at all, not gzip at all')]));
      return true;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-got-encoding': String(req.headers['content-encoding'] ?? 'none') });
    res.end(got);
    return true;
  });
  t.after(() => up.close());
  const filter = { name: 'envoy.filters.http.decompressor', typed_config: { '@type': DECOMPRESSOR, decompressor_library: { name: 'gz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip' } } } };
  const h = await proxy(t, [filter], up.port);
  const r = await get(h.port('l'), '/', { 'content-encoding': 'gzip', 'content-type': 'text/plain' }, 'POST', zlib.gzipSync(TEXT));
  assert.equal(r.body.toString(), TEXT);
  assert.equal(r.headers['x-got-encoding'], 'none');
  assert.equal(stat(h, 'http.l.decompressor.gz.gzip.request.decompressed'), 1);
  const bad = await get(h.port('l'), '/corrupt');
  assert.equal(bad.status, 200);
  assert.ok(bad.body.length < TEXT.length);
  assert.equal(stat(h, 'http.l.decompressor.gz.gzip.decompressor_library.zlib_data_error'), 1);
});

test('config errors name their path: an unknown compressor library, a gzip window_bits out of range, a missing library', async (t) => {
  const h = await startTestRuntime(t);
  const listener = (tc: EnvoyJson) => httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]), { http_filters: [{ name: 'c', typed_config: { '@type': COMPRESSOR, ...tc } }, ROUTER] });
  const apply = (tc: EnvoyJson) => h.apply('type.googleapis.com/envoy.config.listener.v3.Listener', [listener(tc)]).join('\n');
  assert.match(apply({ compressor_library: { name: 'x', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip' } } }), /http_filters\[0\]\.typed_config\.compressor_library\.typed_config: unsupported compressor library/);
  assert.match(apply({ compressor_library: { name: 'x', typed_config: { ...LIB.gzip.typed_config, window_bits: 20 } } }), /compressor_library\.typed_config\.window_bits: must be an integer from 9 to 15, got 20/);
  assert.match(apply({}), /http_filters\[0\]\.typed_config\.compressor_library: a compressor filter needs compressor_library/);
});

test('a local reply is compressed too (a direct_response body), as Envoy runs its encoder filters on it', async (t) => {
  const h = await startTestRuntime(t);
  await configure(h, {
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: TEXT } } }]), { http_filters: [compressor(LIB.gzip), ROUTER] })],
  });
  const r = await get(h.port('l'), '/', { 'accept-encoding': 'gzip' });
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(zlib.gunzipSync(r.body).toString(), TEXT);
  assert.equal(r.headers['content-length'], String(r.body.length), 'the whole compressed body is known: its length is sent');
});

test('decompressor over HTTP/2 both sides: a gzip request body streams to an HTTP/2 upstream decoded', async (t) => {
  const server = http2.createServer();
  server.on('stream', (s, headers) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      s.respond({ ':status': 200, 'content-type': 'text/plain', 'x-got-encoding': String(headers['content-encoding'] ?? 'none') });
      s.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const filter = { name: 'envoy.filters.http.decompressor', typed_config: { '@type': DECOMPRESSOR, decompressor_library: { name: 'gz', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip' } } } };
  const h = await proxy(t, [filter], (server.address() as AddressInfo).port, { clusterExtra: H2_UPSTREAM });
  const session = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => session.close());
  const s = session.request({ ':path': '/', ':method': 'POST', 'content-encoding': 'gzip', 'content-type': 'text/plain' });
  const gz = zlib.gzipSync(TEXT);
  // In two parts, the second after the first went through.
  s.write(gz.subarray(0, 20));
  setImmediate(() => s.end(gz.subarray(20)));
  let body = '';
  let headers: http2.IncomingHttpHeaders = {};
  s.on('response', (hd) => (headers = hd));
  s.on('data', (c: Buffer) => (body += c.toString()));
  await new Promise<void>((r) => s.on('end', () => r()));
  assert.equal(headers['x-got-encoding'], 'none');
  assert.equal(body, TEXT);
});
