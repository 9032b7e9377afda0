// HTTP/2 downstream requests served from node:http2's core stream API (h2-server-stream.ts): what
// node's compat layer did for the proxy before is still done: Expect: 100-continue answered with a
// 100 and any other expectation with 417, HEAD answered without a body, upstream trailers relayed
// after the body, and a response without trailers ended cleanly.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const H2 = { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } } };

interface H2Reply {
  informational: number[];
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}

function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    const out: H2Reply = { informational: [], headers: {}, body: '', trailers: undefined };
    s.on('headers', (h) => out.informational.push(Number(h[':status'])));
    s.on('response', (h) => (out.headers = h));
    s.on('trailers', (t) => (out.trailers = t));
    s.on('data', (c: Buffer) => (out.body += c.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    if (body !== undefined) {
      // Expect: 100-continue: the body only after the 100.
      if (headers.expect === '100-continue') s.once('continue', () => s.end(body));
      else s.end(body);
    }
  });
}

function connect(t: TestContext, port: number): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => session.close());
  return session;
}

test('HTTP/2 downstream: Expect 100-continue, other expectations (417), HEAD', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }])], listeners: [httpListener('l', 'r')] });
  const session = connect(t, h.port('l'));

  const cont = await h2Request(session, { ':method': 'POST', ':path': '/upload', expect: '100-continue' }, 'hello');
  assert.deepEqual(cont.informational, [100]);
  assert.equal(cont.headers[':status'], 200);
  const echo = JSON.parse(cont.body);
  assert.equal(echo.body, 'hello');
  assert.equal(echo.headers.expect, undefined, 'Expect is hop by hop');

  const other = await h2Request(session, { ':method': 'POST', ':path': '/upload', expect: 'something-else' }, 'x');
  assert.equal(other.headers[':status'], 417);
  assert.equal(up.requests.length, 1, 'a failed expectation never reaches the upstream');

  const head = await h2Request(session, { ':method': 'HEAD', ':path': '/head' });
  assert.equal(head.headers[':status'], 200);
  assert.equal(head.body, '');
  assert.equal(up.requests.at(-1)!.method, 'HEAD');
});

test('HTTP/2 both ways: upstream trailers follow the body; a response without trailers ends cleanly', async (t) => {
  const server = http2.createServer((req, res) => {
    if (req.url === '/trailers') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part one, ');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end('part two');
    } else {
      res.writeHead(201, { 'x-plain': 'yes' });
      res.end('no trailers');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const h = await startTestRuntime(t);
  await configure(h, { clusters: [staticCluster('up', [port], H2)], routes: [routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }])], listeners: [httpListener('l', 'r')] });
  const session = connect(t, h.port('l'));

  const withTrailers = await h2Request(session, { ':path': '/trailers' });
  assert.equal(withTrailers.headers[':status'], 200);
  assert.equal(withTrailers.body, 'part one, part two');
  assert.equal(withTrailers.trailers?.['x-checksum'], 'abc123');

  const plain = await h2Request(session, { ':path': '/plain' });
  assert.equal(plain.headers[':status'], 201);
  assert.equal(plain.headers['x-plain'], 'yes');
  assert.equal(plain.body, 'no trailers');
  assert.equal(plain.trailers, undefined);
});
