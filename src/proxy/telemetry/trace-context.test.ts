import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Propagation, injectContext } from './trace-context.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const P = 'a2fb4a1d1a96d312';
const CALLER = {
  traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
  tracestate: 'old=1',
  b3: `${'1'.repeat(32)}-${'2'.repeat(16)}-1`,
  'x-b3-traceid': '1'.repeat(32),
  'x-b3-spanid': '2'.repeat(16),
  'x-b3-parentspanid': '3'.repeat(16),
  'x-b3-sampled': '1',
  'x-b3-flags': '1',
  'x-other': 'kept',
};

test('injectContext replaces every propagation header of the caller with the tracer format', () => {
  const w3c: Record<string, string> = { ...CALLER };
  injectContext(w3c, Propagation.W3C, T, S, P, false, undefined, false);
  assert.deepEqual(w3c, { traceparent: `00-${T}-${S}-00`, 'x-other': 'kept' });

  const b3: Record<string, string> = { ...CALLER };
  injectContext(b3, Propagation.B3, '0'.repeat(16) + T.slice(16), S, undefined, true, undefined, false);
  assert.deepEqual(b3, { 'x-b3-traceid': T.slice(16), 'x-b3-spanid': S, 'x-b3-sampled': '1', 'x-other': 'kept' });

  const both: Record<string, string> = { ...CALLER };
  injectContext(both, Propagation.B3_W3C, T, S, P, true, 'ours=2', true);
  assert.deepEqual(both, {
    traceparent: `00-${T}-${S}-01`,
    tracestate: 'ours=2',
    b3: `${T}-${S}-1-${P}`,
    'x-b3-traceid': T,
    'x-b3-spanid': S,
    'x-b3-parentspanid': P,
    'x-b3-sampled': '1',
    'x-other': 'kept',
  });
});

test('injectContext finds a lone stale header of any format', () => {
  for (const name of Object.keys(CALLER).filter((k) => k !== 'x-other')) {
    const h: Record<string, string> = { 'x-request-id': 'r', [name]: CALLER[name as keyof typeof CALLER] };
    injectContext(h, Propagation.W3C, T, S, undefined, true, undefined, false);
    assert.deepEqual(h, { 'x-request-id': 'r', traceparent: `00-${T}-${S}-01` }, name);
  }
});
