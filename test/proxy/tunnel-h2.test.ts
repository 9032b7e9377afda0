// HTTP/2 tunnels (RFC 8441 extended CONNECT, plain CONNECT) through the proxy: WebSocket over
// HTTP/2 to an HTTP/1.1 WebSocket server and to an HTTP/2 upstream, an HTTP/1.1 WebSocket client to
// an HTTP/2 upstream, TCP over an HTTP/2 CONNECT; refused without allow_connect or upgrade_configs.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { configure, httpListener, routeConfig, startRuntime, staticCluster } from './harness.ts';

/** One unfragmented text frame (payload < 126 bytes), masked as clients must. */
function frame(text: string, masked: boolean): Buffer {
  const p = Buffer.from(text);
  if (!masked) return Buffer.concat([Buffer.from([0x81, p.length]), p]);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length]), mask, Buffer.from(p.map((b, i) => b ^ mask[i % 4]))]);
}

function unframe(b: Buffer): string {
  const len = b[1] & 0x7f;
  if (!(b[1] & 0x80)) return b.subarray(2, 2 + len).toString();
  const mask = b.subarray(2, 6);
  return Buffer.from(b.subarray(6, 6 + len).map((x, i) => x ^ mask[i % 4])).toString();
}

async function h2Session(port: number, t: { after(fn: () => void): void }): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => s.destroy());
  await new Promise((r) => s.once('remoteSettings', r));
  return s;
}

/** Opens a CONNECT stream; resolves with its response status and the stream. */
function connect(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; stream: http2.ClientHttp2Stream }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'CONNECT', ...headers }, { endStream: false });
    stream.once('response', (h) => resolve({ status: Number(h[':status']), stream }));
    stream.once('error', reject);
  });
}

function nextData(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve) => stream.once('data', (c: Buffer) => resolve(c)));
}

test('extended CONNECT: WebSocket over HTTP/2 to HTTP/1.1 and HTTP/2 upstreams, HTTP/1.1 WebSocket to an HTTP/2 upstream, CONNECT over HTTP/2', async (t) => {
  // HTTP/1.1 WebSocket server (needs the Sec-WebSocket-Key the proxy makes up).
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`h1 echo ${m} ${req.url}`)));
  // HTTP/2 upstream that allows extended CONNECT and answers frames with frames.
  const h2up = http2.createServer({ settings: { enableConnectProtocol: true } });
  const protocols: string[] = [];
  h2up.on('stream', (s, h) => {
    protocols.push(`${h[':method']} ${h[':protocol']} ${h[':path']}`);
    s.respond({ ':status': 200, 'x-upstream': 'h2' });
    s.on('data', (c: Buffer) => s.write(frame(`h2 echo ${unframe(c)}`, false)));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => h2up.listen(0, '127.0.0.1', r));
  const tcp = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const h = await startRuntime();
  t.after(() => {
    h.close();
    wss.close();
    h2up.close();
    tcp.close();
  });
  const routes = routeConfig('r', [
    { match: { connect_matcher: {} }, route: { cluster: 'tcp', upgrade_configs: [{ upgrade_type: 'CONNECT' }] } },
    { match: { prefix: '/h2' }, route: { cluster: 'h2up' } },
    { match: { prefix: '/nows' }, route: { cluster: 'ws', upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] } },
    { match: { prefix: '/' }, route: { cluster: 'ws' } },
  ]);
  await configure(h, {
    clusters: [staticCluster('ws', [(wss.address() as AddressInfo).port]), staticCluster('h2up', [(h2up.address() as AddressInfo).port], { http2_protocol_options: {} }), staticCluster('tcp', [(tcp.address() as AddressInfo).port])],
    listeners: [
      httpListener('l', routes, { upgrade_configs: [{ upgrade_type: 'websocket' }], http2_protocol_options: { allow_connect: true } }),
      httpListener('no_connect', routes, { upgrade_configs: [{ upgrade_type: 'websocket' }] }),
    ],
  });
  const session = await h2Session(h.port('l'), t);
  assert.equal(session.remoteSettings.enableConnectProtocol, true);

  // RFC 8441 client (no Sec-WebSocket-Key) → HTTP/1.1 WebSocket server.
  const a = await connect(session, { ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat?room=1', ':authority': 'chat.local', 'sec-websocket-version': '13' });
  assert.equal(a.status, 200);
  a.stream.write(frame('hello', true));
  assert.equal(unframe(await nextData(a.stream)), 'h1 echo hello /chat?room=1');
  a.stream.close();

  // → HTTP/2 upstream: stays an extended CONNECT.
  const b = await connect(session, { ':protocol': 'websocket', ':scheme': 'http', ':path': '/h2/x', ':authority': 'chat.local', 'sec-websocket-version': '13' });
  assert.equal(b.status, 200);
  b.stream.write(frame('over h2', true));
  assert.equal(unframe(await nextData(b.stream)), 'h2 echo over h2');
  b.stream.close();
  assert.deepEqual(protocols, ['CONNECT websocket /h2/x']);

  // Plain CONNECT over HTTP/2: a TCP tunnel.
  const c = await connect(session, { ':authority': 'tcp.local:7' });
  assert.equal(c.status, 200);
  c.stream.write('raw bytes');
  assert.equal(String(await nextData(c.stream)), 'raw bytes');
  c.stream.close();

  // Upgrade disabled on the route: 403.
  const d = await connect(session, { ':protocol': 'websocket', ':scheme': 'http', ':path': '/nows', ':authority': 'chat.local' });
  assert.equal(d.status, 403);

  // HTTP/1.1 WebSocket client → HTTP/2 upstream: the proxy answers 101 with the right accept key.
  const ws = new WebSocket(`ws://127.0.0.1:${h.port('l')}/h2/from-h1`);
  t.after(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echoed = new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))));
  ws.send('ping');
  assert.equal(await echoed, 'h2 echo ping');
  assert.deepEqual(protocols, ['CONNECT websocket /h2/x', 'CONNECT websocket /h2/from-h1']);

  // Without allow_connect the proxy does not advertise extended CONNECT.
  const plain = await h2Session(h.port('no_connect'), t);
  assert.equal(plain.remoteSettings.enableConnectProtocol, false);

  // Each tunnel is one HTTP/2 stream in telemetry, recorded when it closes.
  const seen = (): string[] => h.streams.filter((i) => i.protocol === 'HTTP/2').map((i) => `${i.upstreamCluster ?? '-'} ${i.responseCode}`).sort();
  for (let i = 0; i < 100 && seen().length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen(), ['- 403', 'h2up 200', 'tcp 200', 'ws 200']);
});
