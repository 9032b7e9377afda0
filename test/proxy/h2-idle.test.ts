// HCM idle_timeout on downstream HTTP/2 sessions counts only time without active streams (Envoy):
// a stream waiting on a slow upstream outlives it; an idle session is then closed with GOAWAY.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import { configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

test('HTTP/2 idle_timeout: a slow response outlives it, the idle session is then closed with GOAWAY', async (t) => {
  const up = await startUpstream('slow', (_req, res) => {
    setTimeout(() => res.end('late'), 700);
    return true;
  });
  const h = await startTestRuntime(t, [up]);
  await configure(h, {
    clusters: [staticCluster('slow', [up.port])],
    listeners: [httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'slow' } }]), { common_http_protocol_options: { idle_timeout: '0.3s' } })],
  });
  const s = http2.connect(`http://127.0.0.1:${h.port('l')}`);
  t.after(() => s.destroy());
  const goaway = new Promise<number>((resolve) => s.once('goaway', (code: number) => resolve(code)));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  const body = await new Promise<string>((resolve, reject) => {
    const st = s.request({ ':path': '/' });
    let b = '';
    st.on('data', (c: Buffer) => (b += c));
    st.on('end', () => resolve(b));
    st.on('error', reject);
    st.end();
  });
  assert.equal(body, 'late');
  assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
  await closed;
});
