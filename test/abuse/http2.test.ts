// HTTP/2 abuse against the real proxy: PING and SETTINGS floods from a client that never reads,
// a CONTINUATION flood, an empty DATA frame flood (CVE-2019-9518) and rapid reset (CVE-2023-44487):
// each ends with the connection closed, the proxy keeps serving, and no stream, upstream request,
// file descriptor or heap growth is left behind.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster, type Harness } from '../proxy/harness.ts';
import { assertBackToBaseline, leakBaseline } from '../helpers/leak-baseline.ts';
import { frame, PREFACE } from '../helpers/h2-frames.ts';

const EMPTY_SETTINGS = frame(4, 0, 0, Buffer.alloc(0));

/** Writes `batch` again and again on a raw connection that never reads; true when the proxy closed it. */
async function flood(port: number, opening: Buffer, batch: Buffer, maxBatches: number): Promise<boolean> {
  const s = net.connect(port, '127.0.0.1');
  s.pause();
  let closed = false;
  s.on('close', () => (closed = true));
  s.on('error', () => undefined);
  s.write(Buffer.concat([PREFACE, EMPTY_SETTINGS, opening]));
  for (let i = 0; i < maxBatches && !closed; i++) {
    s.write(batch);
    await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 20));
  s.destroy();
  return closed;
}

async function get(port: number): Promise<number> {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<number>((resolve, reject) => {
      const r = c.request({ ':path': '/' });
      r.on('response', (h) => resolve(Number(h[':status'])));
      r.on('error', reject);
      r.resume();
      r.end();
    });
  } finally {
    c.close();
  }
}

function stat(h: Harness, name: string): number {
  return h.rt.stats.all().find((s) => s.name === name)!.value;
}

test('HTTP/2 floods and rapid reset close the offending connection; the proxy keeps serving and leaks nothing', async (t) => {
  const up = await startUpstream('up');
  const h = await startTestRuntime(t, [up]);
  await configure(h, { clusters: [staticCluster('up', [up.port])], listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'up' } }]))] });
  const port = h.port('l');
  assert.equal(await get(port), 200);
  const base = await leakBaseline();

  const pings = Buffer.concat(Array.from({ length: 1000 }, () => frame(6, 0, 0, Buffer.alloc(8))));
  assert.ok(await flood(port, Buffer.alloc(0), pings, 200), 'PING flood: connection closed');
  const settings = Buffer.concat(Array.from({ length: 1000 }, () => EMPTY_SETTINGS));
  assert.ok(await flood(port, Buffer.alloc(0), settings, 200), 'SETTINGS flood: connection closed');
  // HEADERS without END_HEADERS, then endless CONTINUATION frames each adding "x-a: b".
  const headers = frame(1, 0, 1, Buffer.from([0x82, 0x84, 0x86, 0x41, 1, 0x61]));
  const continuation = Buffer.concat(Array.from({ length: 100 }, () => frame(9, 0, 1, Buffer.from([0x40, 3, 0x78, 0x2d, 0x61, 1, 0x62]))));
  assert.ok(await flood(port, headers, continuation, 2000), 'CONTINUATION flood: connection closed');
  // An open stream (HEADERS without END_STREAM), then endless empty DATA frames on it.
  const open = frame(1, 0x4, 1, Buffer.from([0x83, 0x84, 0x86, 0x41, 1, 0x61]));
  const empties = Buffer.concat(Array.from({ length: 1000 }, () => frame(0, 0, 1, Buffer.alloc(0))));
  assert.ok(await flood(port, open, empties, 2000), 'empty DATA frame flood: connection closed');

  // Rapid reset: open and cancel streams as fast as possible on one session.
  const before = up.requests.length;
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on('error', () => undefined);
  let sent = 0;
  for (; sent < 20000 && !c.destroyed; sent++) {
    const r = c.request({ ':path': '/' });
    r.on('error', () => undefined);
    r.close(http2.constants.NGHTTP2_CANCEL);
    if (sent % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < 100 && !c.destroyed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(c.destroyed, `the proxy ended the session (after ${sent} resets)`);
  assert.ok(up.requests.length - before < sent / 10, `few reset streams reached the upstream (${up.requests.length - before} of ${sent})`);

  assert.equal(await get(port), 200, 'the proxy still serves');
  for (let i = 0; i < 100 && stat(h, 'http.l.downstream_rq_active') !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(stat(h, 'http.l.downstream_rq_active'), 0, 'no stream left active');
  await assertBackToBaseline(base, { maxHeapGrowth: 16 * 1024 * 1024, after: `the floods and ${sent} resets` });
});
