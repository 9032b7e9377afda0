// An HTTP/2 upstream that resets a stream after some DATA of a response without content-length:
// the client must not get the truncated body as complete. Envoy resets the downstream stream (an
// HTTP/1.1 connection is closed) with UR, upstream_reset_after_response_started{remote_reset}.
// CANCEL and NO_ERROR are the codes Node reports as a clean end (other codes are errors);
// INTERNAL_ERROR for both. RST_STREAM(NO_ERROR) after END_STREAM (RFC 9113 §8.1: the server stops
// the request body) leaves a complete response: a 200 with its whole body, no flag, no reset counted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE } from '../../src/envoy/index.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';
import { frame, PREFACE } from '../helpers/h2-frames.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { configure, httpListener, routeConfig, request, startTestRuntime, staticCluster, type Harness } from './harness.ts';

const H2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } },
};
const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4 } as const;

/**
 * A raw h2c server: each request gets :status 200 (no content-length), one DATA frame, then
 * RST_STREAM with `code`. 'complete': the DATA frame carries END_STREAM (the RST follows it);
 * 'no-response': the RST comes alone.
 */
async function resettingServer(code: number, response: 'partial' | 'complete' | 'no-response' = 'partial'): Promise<{ port: number; close(): Promise<void> }> {
  const complete = response === 'complete';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let preface = false;
    sock.write(frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0)));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < PREFACE.length) return;
        buf = buf.subarray(PREFACE.length);
        preface = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const [type, flags] = [buf[3], buf[4]];
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + len);
        if (type === FRAME.SETTINGS && !(flags & 1)) sock.write(frame(FRAME.SETTINGS, 1, 0, Buffer.alloc(0)));
        if (type !== FRAME.HEADERS) continue;
        if (response !== 'no-response') {
          sock.write(frame(FRAME.HEADERS, 4, id, Buffer.from([0x88]))); // :status 200, END_HEADERS
          sock.write(frame(FRAME.DATA, complete ? 1 : 0, id, Buffer.from(complete ? 'whole-body' : 'partial-body')));
        }
        const rst = Buffer.alloc(4);
        rst.writeUInt32BE(code);
        setTimeout(() => sock.write(frame(FRAME.RST_STREAM, 0, id, rst)), 20);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** 'complete' when the client got a whole response, else 'reset'. */
function h1Get(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.on('data', () => undefined);
      res.on('error', () => resolve('reset'));
      res.on('end', () => resolve(res.complete ? 'complete' : 'reset'));
    });
    req.on('error', () => resolve('reset'));
  });
}

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve) => {
    const s = session.request({ ':path': path });
    s.on('data', () => undefined);
    s.on('error', () => resolve('reset'));
    s.on('close', () => resolve(s.rstCode === http2.constants.NGHTTP2_NO_ERROR ? 'complete' : 'reset'));
  });
}

test('an HTTP/2 upstream RST_STREAM after DATA resets the downstream stream (UR), CANCEL included', async (t) => {
  const { NGHTTP2_CANCEL: CANCEL, NGHTTP2_INTERNAL_ERROR: INTERNAL } = http2.constants;
  const cancel = await resettingServer(CANCEL);
  const internal = await resettingServer(INTERNAL);
  const h = await startTestRuntime(t, [cancel, internal]);
  await configure(h, {
    clusters: [staticCluster('cancel', [cancel.port], { typed_extension_protocol_options: H2_OPTIONS }), staticCluster('internal', [internal.port], { typed_extension_protocol_options: H2_OPTIONS })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: `/rst/${CANCEL}` }, route: { cluster: 'cancel' } }, { match: { prefix: '/' }, route: { cluster: 'internal' } }]))],
  });
  const port = h.port('l');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  assert.equal(await h1Get(port, `/rst/${CANCEL}`), 'reset', 'HTTP/1.1 client, CANCEL');
  assert.equal(await h1Get(port, `/rst/${INTERNAL}`), 'reset', 'HTTP/1.1 client, INTERNAL_ERROR');
  assert.equal(await h2Get(session, `/rst/${CANCEL}`), 'reset', 'HTTP/2 client, CANCEL');
  for (const path of [`/rst/${CANCEL}`, `/rst/${INTERNAL}`]) {
    const infos = h.streams.filter((s) => s.path === path);
    assert.ok(infos.length > 0, path);
    for (const info of infos) {
      assert.equal(formatResponseFlags(info.responseFlags), 'UR', path);
      assert.equal(info.responseCodeDetails, 'upstream_reset_after_response_started{remote_reset}', path);
    }
  }
});

/** Status, body and completeness of a chunked POST whose body ends only after the response did. */
function h1PostOpen(port: number, path: string): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body, complete: res.complete });
        req.end();
      });
    });
    req.on('error', () => resolve({ status: 0, body: '', complete: false }));
    req.write('request-part');
  });
}

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)?.value ?? 0;
}

test('an HTTP/2 upstream RST_STREAM(NO_ERROR) before END_STREAM is a reset (UR); after END_STREAM the response is complete', async (t) => {
  const { NGHTTP2_NO_ERROR: NO_ERROR } = http2.constants;
  const cut = await resettingServer(NO_ERROR);
  const whole = await resettingServer(NO_ERROR, 'complete');
  const none = await resettingServer(NO_ERROR, 'no-response');
  const h = await startTestRuntime(t, [cut, whole, none]);
  const h2Cluster = (name: string, port: number) => staticCluster(name, [port], { typed_extension_protocol_options: H2_OPTIONS });
  const logFile = path.join(tempDir(t, 'rig-h2-reset-'), 'access.log');
  const accessLog = { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: logFile, log_format: { text_format_source: { inline_string: '%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n' } } } };
  await configure(h, {
    clusters: [h2Cluster('cut', cut.port), h2Cluster('whole', whole.port), h2Cluster('none', none.port)],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/cut' }, route: { cluster: 'cut' } }, { match: { prefix: '/none' }, route: { cluster: 'none' } }, { match: { prefix: '/' }, route: { cluster: 'whole' } }]), { access_log: [accessLog] })],
  });
  const port = h.port('l');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.destroy());
  assert.equal(await h1Get(port, '/cut/h1'), 'reset', 'HTTP/1.1 client');
  assert.equal(await h2Get(session, '/cut/h2'), 'reset', 'HTTP/2 client');
  for (const info of h.streams.filter((s) => s.path?.startsWith('/cut'))) {
    assert.equal(formatResponseFlags(info.responseFlags), 'UR', info.path);
    assert.equal(info.responseCodeDetails, 'upstream_reset_after_response_started{remote_reset}', info.path);
  }
  assert.equal(h.streams.filter((s) => s.path?.startsWith('/cut')).length, 2);
  assert.equal(stat(h, 'cluster.cut.upstream_rq_rx_reset'), 2);

  // Before any response: 503 UR, a remote reset (retriable with retry_on reset), not an ended stream.
  const r = await request(port, { path: '/none' });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: remote reset');
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), 'UR');
  assert.equal(stat(h, 'cluster.none.upstream_rq_rx_reset'), 1);

  // Complete responses followed by RST_STREAM(NO_ERROR): a GET (request already ended) and a POST
  // whose body is still open when the upstream stops it.
  assert.equal(await h1Get(port, '/whole/get'), 'complete', 'HTTP/1.1 GET');
  assert.equal(await h2Get(session, '/whole/h2'), 'complete', 'HTTP/2 GET');
  assert.deepEqual(await h1PostOpen(port, '/whole/post'), { status: 200, body: 'whole-body', complete: true }, 'HTTP/1.1 POST, body still open');
  const wholeInfos = h.streams.filter((s) => s.path?.startsWith('/whole'));
  assert.equal(wholeInfos.length, 3);
  for (const info of wholeInfos) {
    assert.equal(formatResponseFlags(info.responseFlags), '-', info.path);
    assert.equal(info.responseCode, 200, info.path);
  }
  assert.equal(stat(h, 'cluster.whole.upstream_rq_rx_reset'), 0);

  const lines = (): string[] => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : []);
  await until('six access log lines', () => lines().length === 6);
  assert.deepEqual(lines().sort(), [
    '/cut/h1 200 UR upstream_reset_after_response_started{remote_reset}',
    '/cut/h2 200 UR upstream_reset_after_response_started{remote_reset}',
    '/none 503 UR upstream_reset_before_response_started{remote_reset}',
    '/whole/get 200 - via_upstream',
    '/whole/h2 200 - via_upstream',
    '/whole/post 200 - via_upstream',
  ]);
});

test('an HTTP/2 upstream reset that is retried is still counted in upstream_rq_rx_reset, once per reset stream', async (t) => {
  const up = http2.createServer();
  let n = 0;
  up.on('stream', (s) => {
    s.on('error', () => undefined);
    if (++n === 1) s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else {
      s.respond({ ':status': 200 });
      s.end('second try');
    }
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const h = await startTestRuntime(t, [{ close: () => new Promise<void>((r) => up.close(() => r())) }]);
  await configure(h, {
    clusters: [staticCluster('app', [(up.address() as AddressInfo).port], { typed_extension_protocol_options: H2_OPTIONS })],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app', retry_policy: { retry_on: 'reset', num_retries: 1, retry_back_off: { base_interval: '0.001s' } } } }]))],
  });
  const body = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: h.port('l'), path: '/', agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (b += c));
      res.on('end', () => resolve(`${res.statusCode} ${b}`));
    }).on('error', reject);
  });
  assert.equal(body, '200 second try');
  assert.equal(n, 2);
  assert.equal(stat(h, 'cluster.app.upstream_rq_retry'), 1);
  assert.equal(stat(h, 'cluster.app.upstream_rq_rx_reset'), 1);
  assert.equal(formatResponseFlags(h.streams.at(-1)!.responseFlags), '-');
});
