// The agent's health checker over a real exec probe (`test -f`), its seconds shortened: reports
// only changes, after successThreshold / failureThreshold attempts in a row; failures that are not
// consecutive never turn a workload unhealthy; a proxy that is not ready fails the check.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../../test/helpers/temp-dir.ts';
import { until } from '../../../test/helpers/wait.ts';
import { WorkloadHealthChecker, type HealthEvent } from './workload-health-checker.ts';

const SECOND_MS = 20;
/** Attempts are a spawned command each: a whole real second or more on a loaded machine. */
const TIMEOUT_S = 250;

function checker(t: { after(fn: () => unknown): void }, o: Omit<ConstructorParameters<typeof WorkloadHealthChecker>[0], 'onChange' | 'secondMs'>) {
  const events: HealthEvent[] = [];
  const c = new WorkloadHealthChecker({ ...o, secondMs: SECOND_MS, onChange: (e) => events.push(e) });
  t.after(() => c.stop());
  c.start();
  return { c, events };
}

test('reports unhealthy, then healthy, then unhealthy as the file comes and goes; each change once', async (t) => {
  const file = path.join(tempDir(t), 'ready');
  const { events } = checker(t, { probe: { periodSeconds: 1, timeoutSeconds: TIMEOUT_S, successThreshold: 2, failureThreshold: 2, exec: { command: ['test', '-f', file] } } });
  await until('the first report', () => events.length === 1);
  assert.deepEqual(events[0], { healthy: false, message: `command "test -f ${file}" exited with status 1` });
  fs.writeFileSync(file, '');
  await until('healthy', () => events.length === 2);
  assert.deepEqual(events[1], { healthy: true, message: '' });
  fs.rmSync(file);
  await until('unhealthy again', () => events.length === 3);
  assert.equal(events[2].healthy, false);
  // Still failing: nothing more is reported.
  await new Promise((r) => setTimeout(r, 10 * SECOND_MS));
  assert.equal(events.length, 3);
});

test('failures that are not consecutive do not reach the failure threshold', async (t) => {
  const dir = tempDir(t);
  const counter = path.join(dir, 'n');
  fs.writeFileSync(counter, '0');
  // Attempts 1, 3, 5, 7 fail; the others pass.
  const script = `n=$(cat ${counter}); echo $((n+1)) > ${counter}; [ $((n % 2)) -eq 0 ]`;
  const { events } = checker(t, { probe: { periodSeconds: 1, timeoutSeconds: TIMEOUT_S, failureThreshold: 2, exec: { command: ['sh', '-c', script] } } });
  await until('eight attempts', () => Number(fs.readFileSync(counter, 'utf8')) >= 8);
  assert.deepEqual(events, [{ healthy: true, message: '' }]);
});

test('a proxy that is not ready fails the check without running the probe', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'ready');
  fs.writeFileSync(file, '');
  let notReady: string | undefined = 'its state is INITIALIZING';
  const ran = path.join(dir, 'ran');
  const { events } = checker(t, { probe: { initialDelaySeconds: 5, periodSeconds: 1, timeoutSeconds: TIMEOUT_S, failureThreshold: 1, exec: { command: ['sh', '-c', `touch ${ran}; test -f ${file}`] } }, proxyNotReady: () => notReady });
  await until('the first report', () => events.length === 1);
  assert.deepEqual(events[0], { healthy: false, message: 'the proxy is not ready: its state is INITIALIZING' });
  assert.equal(fs.existsSync(ran), false, 'the probe does not run while the proxy is not ready');
  notReady = undefined;
  await until('healthy', () => events.length === 2);
  assert.deepEqual(events[1], { healthy: true, message: '' });
});

test('without thresholds, as Istio\'s agent: one passing attempt reports healthy, the next failing one unhealthy', async (t) => {
  const dir = tempDir(t);
  const counter = path.join(dir, 'n');
  fs.writeFileSync(counter, '0');
  // Attempt 1 passes, every later one fails.
  const script = `n=$(cat ${counter}); echo $((n+1)) > ${counter}; [ "$n" -eq 0 ]`;
  const attempts: number[] = [];
  const events: HealthEvent[] = [];
  // The attempt a report follows: the next one starts only after the report.
  const c = new WorkloadHealthChecker({ probe: { periodSeconds: 1, timeoutSeconds: TIMEOUT_S, exec: { command: ['sh', '-c', script] } }, secondMs: SECOND_MS, onChange: (e) => (events.push(e), attempts.push(Number(fs.readFileSync(counter, 'utf8')))) });
  t.after(() => c.stop());
  c.start();
  await until('two reports', () => events.length === 2);
  assert.deepEqual(events.map((e) => e.healthy), [true, false]);
  assert.deepEqual(attempts, [1, 2], 'failureThreshold defaults to 1 (Kubernetes\' 3 would wait for attempt 4)');
});
