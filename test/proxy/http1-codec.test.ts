// HTTP/1.1 codec behaviour through the proxy on raw sockets: pipelined requests answered in
// order, Expect: 100-continue answered by the proxy (as Envoy by default), and requests the codec
// refuses recorded in telemetry with response flag DPE.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';
import { ResponseFlag, formatResponseFlags } from '../../src/proxy/response-flags.ts';

function readUntil(s: net.Socket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (c: Buffer): void => {
      text += c.toString('latin1');
      if (done(text)) {
        s.off('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.once('close', () => resolve(text));
  });
}

test('pipelined requests, Expect: 100-continue, and codec errors recorded as DPE', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]))] });
  const port = h.port('l');
  const open = async (): Promise<net.Socket> => {
    const s = net.connect(port, '127.0.0.1');
    t.after(() => s.destroy());
    await new Promise((r) => s.once('connect', r));
    return s;
  };

  // Two requests in one write: two responses, in order.
  let s = await open();
  const both = readUntil(s, (x) => (x.match(/"server":"up"/g) ?? []).length === 2);
  s.write('GET /first HTTP/1.1\r\nhost: a\r\n\r\nGET /second HTTP/1.1\r\nhost: a\r\n\r\n');
  const text = await both;
  assert.ok(text.indexOf('"/first"') > 0 && text.indexOf('"/first"') < text.indexOf('"/second"'), text);

  // Expect: 100-continue: the proxy says 100 Continue, then the body goes upstream without Expect.
  s = await open();
  const cont = readUntil(s, (x) => x.includes('\r\n\r\n'));
  s.write('POST /upload HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n');
  assert.match(await cont, /^HTTP\/1\.1 100 Continue\r\n/);
  const final = readUntil(s, (x) => x.includes('"server":"up"'));
  s.write('hello');
  assert.match(await final, /^HTTP\/1\.1 200 /);
  const echoed = up.requests.at(-1)!;
  assert.equal(echoed.body, 'hello');
  assert.equal(echoed.headers.expect, undefined);

  // A request line the codec refuses: 400, and a StreamInfo with DPE for the access logs / metrics.
  s = await open();
  const bad = readUntil(s, (x) => x.includes('\r\n\r\n'));
  s.write('GET /a b c HTTP/1.1\r\n\r\n');
  assert.match(await bad, /^HTTP\/1\.1 400 /);
  for (let i = 0; i < 50 && h.streams.at(-1)?.responseCode !== 400; i++) await new Promise((r) => setTimeout(r, 10));
  const info = h.streams.at(-1)!;
  assert.equal(info.responseCode, 400);
  assert.equal(info.responseFlags, ResponseFlag.DownstreamProtocolError);
  assert.equal(formatResponseFlags(info.responseFlags), 'DPE');
  assert.match(info.responseCodeDetails ?? '', /^http1\.codec_error/);
});
