// When a DNS cluster resolves again, as Envoy's DNS cluster decides it (dns-refresh.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refreshAfterAnswerMs, refreshAfterFailureMs, type DnsRefresh } from '../../../src/proxy/upstream/dns-refresh.ts';

const RATE: DnsRefresh = { refreshMs: 60_000, respectTtl: false, jitterMs: 0 };

test('after an answer: the TTL with respect_dns_ttl (0 keeps the refresh rate), plus a jitter below dns_jitter', () => {
  assert.equal(refreshAfterAnswerMs(RATE, 5), 60_000);
  assert.equal(refreshAfterAnswerMs({ ...RATE, respectTtl: true }, 5), 5000);
  assert.equal(refreshAfterAnswerMs({ ...RATE, respectTtl: true }, 0), 60_000);
  // A TTL beyond what a timer holds (2^31 - 1 ms) is capped, never overflowed.
  assert.equal(refreshAfterAnswerMs({ ...RATE, respectTtl: true }, 2 ** 31 - 1), 2 ** 31 - 1);
  for (let i = 0; i < 200; i++) {
    const ms = refreshAfterAnswerMs({ ...RATE, respectTtl: true, jitterMs: 100 }, 5);
    assert.ok(ms >= 5000 && ms < 5100 && Number.isInteger(ms), String(ms));
  }
});

test('after failures: dns_refresh_rate, or dns_failure_refresh_rate as a jittered exponential backoff capped at max_interval', () => {
  assert.equal(refreshAfterFailureMs({ ...RATE, jitterMs: 100 }, 3), 60_000);
  const failure = { ...RATE, failure: { baseIntervalMs: 1000, maxIntervalMs: 5000 } };
  for (const [n, ceiling] of [[1, 1000], [2, 2000], [3, 4000], [4, 5000], [10, 5000]] as const) {
    for (let i = 0; i < 100; i++) {
      const ms = refreshAfterFailureMs(failure, n);
      assert.ok(ms >= 0 && ms < ceiling, `failure ${n}: ${ms}`);
    }
  }
});
