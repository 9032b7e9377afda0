// The goal report (bench/report/goals.ts): what reads as met, not met, and n/a.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkGoals } from '../../bench/report/goals.ts';
import type { CaseResult } from '../../bench/cases/measure.ts';

function latencyCase(id: string, p50: number, p90: number, p99: number): CaseResult {
  return { id, title: id, protocol: 'h1', proxy: id === 'direct' ? 'none' : 'rig', hops: 2, status: 'ok', latency: { latency: { p50, p90, p99 } } as CaseResult['latency'] };
}

const row = (goals: ReturnType<typeof checkGoals>, goal: string) => {
  const found = goals.find((g) => g.goal === goal);
  assert.ok(found, `no row "${goal}"`);
  return found;
};

test('two-hop added latency: within the limit is met, past it is not met', () => {
  const goals = checkGoals([latencyCase('direct', 0.2, 0.3, 0.5), latencyCase('rig-2hop', 0.4, 0.9, 1.2)], null, 'not run');
  assert.equal(row(goals, 'two-hop added latency p50, plaintext, 1000 rps').status, 'met');
  assert.equal(row(goals, 'two-hop added latency p50, plaintext, 1000 rps').measured, '+0.200 ms');
  assert.equal(row(goals, 'two-hop added latency p90, plaintext, 1000 rps').status, 'not met');
  assert.equal(row(goals, 'two-hop added latency p99, plaintext, 1000 rps').status, 'met');
});

test('a case slightly faster than direct is met: the proxies added nothing measurable', () => {
  const goals = checkGoals([latencyCase('direct', 0.2, 0.3, 0.5), latencyCase('rig-2hop', 0.15, 0.3, 0.5)], null, 'not run');
  const p50 = row(goals, 'two-hop added latency p50, plaintext, 1000 rps');
  assert.equal(p50.status, 'met');
  assert.equal(p50.measured, '-0.050 ms');
});

test('a case faster than direct by more than the limit is n/a: the baseline window was disturbed', () => {
  // c1962dc's run: direct's p99 read 29 ms, the two-hop cases' ~3 ms.
  const goals = checkGoals([latencyCase('direct', 0.2, 0.35, 29.1), latencyCase('rig-2hop', 0.4, 0.6, 3.2), latencyCase('rig-2hop-mtls', 0.45, 0.7, 5.2)], null, 'not run');
  for (const label of ['plaintext', 'mTLS']) {
    const p99 = row(goals, `two-hop added latency p99, ${label}, 1000 rps`);
    assert.equal(p99.status, 'n/a');
    assert.match(p99.note!, /direct's p99 \(29\.100 ms\) was slower than rig-2hop(-mtls)?'s/);
    assert.match(p99.measured, /^-2[35]\.\d{3} ms$/);
  }
  assert.equal(row(goals, 'two-hop added latency p50, plaintext, 1000 rps').status, 'met');
});
