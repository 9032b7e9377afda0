// What the agent logs for each report: an unhealthy workload while the proxy waits for its first
// config is how every start begins, so it is no warning; unhealthy after that is one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { until } from '../../../test/helpers/wait.ts';
import { startWorkloadHealth } from './workload-health-agent.ts';

test('an unhealthy start while the proxy is initializing is logged at info; unhealthy after healthy is a warning', async (t) => {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  let state: 'INITIALIZING' | 'LIVE' | 'FAILED' = 'INITIALIZING';
  const reports: boolean[] = [];
  const stop = startWorkloadHealth({
    metadata: { PROXY_CONFIG: { readinessProbe: { periodSeconds: 1, exec: { command: ['true'] } } } },
    report: (healthy) => reports.push(healthy),
    proxyNotReady: () => (state === 'LIVE' ? undefined : `its state is ${state}`),
    proxyStarting: () => state === 'INITIALIZING',
    log,
  });
  t.after(() => stop?.());
  await until('the first report', () => reports.length === 1);
  state = 'LIVE';
  await until('healthy once the proxy is live', () => reports.length === 2);
  state = 'FAILED';
  await until('unhealthy again', () => reports.length === 3);
  assert.deepEqual(reports, [false, true, false]);
  const health = lines.filter((l) => /workload is/.test(l.msg)).map((l) => [l.level, l.msg]);
  assert.deepEqual(health, [
    [30, 'workload is not ready yet (the proxy is starting); reporting to the control plane'],
    [30, 'workload is healthy; reporting to the control plane'],
    [40, 'workload is unhealthy; reporting to the control plane'],
  ]);
});
