// Slow request bodies: a client that stops sending mid-body gets 408 (flag SI) after
// stream_idle_timeout, and, on HTTP/1, its connection is closed (the rest of the body would
// otherwise be read as the next request, or hold the connection forever). On HTTP/2 only the
// stream ends; the session carries on. A keep-alive client whose request completed is not closed.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { formatResponseFlags } from '../../src/proxy/response-flags.ts';

async function setup(t: { after(fn: () => unknown): void }, filters: boolean) {
  const up = await startUpstream('up');
  const h = await startRuntime();
  t.after(async () => {
    h.close();
    await up.close();
  });
  // With retries the proxy buffers small bodies before routing; without, it streams them.
  const route = filters ? { cluster: 'up', retry_policy: { retry_on: '5xx', num_retries: 1 } } : { cluster: 'up' };
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route }]), { stream_idle_timeout: '0.3s' })] });
  return { h, up, port: h.port('l') };
}

/** Writes `bytes` on a raw connection; resolves with what came back once the proxy closes it, or after `waitMs`. */
function exchange(port: number, bytes: string, waitMs: number): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let raw = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ raw, closed: false });
    }, waitMs);
    s.on('data', (c) => (raw += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ raw, closed: true });
    });
  });
}

const flags = (h: Harness): string => formatResponseFlags(h.streams.at(-1)!.responseFlags);

for (const buffered of [false, true]) {
  test(`HTTP/1: a body that stalls gets 408 SI and a close (${buffered ? 'buffered for retries' : 'streamed'})`, async (t) => {
    const { h, up, port } = await setup(t, buffered);
    // 10 of 100 announced bytes, then nothing: the proxy must answer and close well before 5 s.
    const r = await exchange(port, 'POST /upload HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n0123456789', 5000);
    assert.match(r.raw, /^HTTP\/1\.1 408 /);
    assert.match(r.raw, /\r\nconnection: close\r\n/i);
    assert.ok(r.closed, 'the connection is closed after the 408');
    assert.equal(flags(h), 'SI');
    assert.equal(up.requests.length, 0, 'the upstream never saw a complete request');

    // A complete request on a keep-alive connection stays open after its response.
    const ok = await exchange(port, 'POST /upload HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\nhi', 800);
    assert.match(ok.raw, /^HTTP\/1\.1 200 /);
    assert.equal(ok.closed, false);
  });
}

test('HTTP/2: a stalled body gets 408 SI on its stream; the session goes on', async (t) => {
  const { h, port } = await setup(t, false);
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  const status = await new Promise<number>((resolve) => {
    const s = c.request({ ':path': '/upload', ':method': 'POST', 'content-length': '100' });
    s.on('error', () => undefined);
    s.on('response', (hd) => resolve(Number(hd[':status'])));
    s.write('0123456789');
  });
  assert.equal(status, 408);
  assert.equal(flags(h), 'SI');
  const again = await new Promise<number>((resolve) => {
    const s = c.request({ ':path': '/' });
    s.on('response', (hd) => resolve(Number(hd[':status'])));
    s.resume();
    s.end();
  });
  assert.equal(again, 200);
  assert.equal(c.destroyed, false);
});
