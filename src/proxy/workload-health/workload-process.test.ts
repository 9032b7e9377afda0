// The agent and the workload's process (its pid file, as `rig up` keeps it): with a probe that
// always passes, a period of 1000 s and a failureThreshold of 1000, only the process can make the
// workload unhealthy, and only the file's watch can make that prompt. Real child processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../core/log.ts';
import { tempDir } from '../../../test/helpers/temp-dir.ts';
import { until } from '../../../test/helpers/wait.ts';
import { checkPidFile, readProbeEnv, AgentFileError } from './agent-files.ts';
import { startWorkloadHealth } from './workload-health-agent.ts';

function app(t: { after(fn: () => unknown): void }): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  return child;
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

function writePid(file: string, pid: number): void {
  fs.writeFileSync(`${file}.tmp`, String(pid));
  fs.renameSync(`${file}.tmp`, file);
}

test('the workload is unhealthy at once when its process exits, and healthy again once it runs and passes its probe', async (t) => {
  const pidFile = path.join(tempDir(t), 'app.pid');
  const reports: { healthy: boolean; message: string }[] = [];
  const stop = startWorkloadHealth({
    metadata: { PROXY_CONFIG: { readinessProbe: { periodSeconds: 1000, failureThreshold: 1000, exec: { command: ['true'] } } } },
    report: (healthy, message) => reports.push({ healthy, message }),
    pidFile,
    log: silentLogger,
  });
  t.after(() => stop?.());
  // Not started yet: down.
  await until('the first report', () => reports.length === 1);
  assert.deepEqual(reports[0], { healthy: false, message: `the workload's process is not running (no pid file ${pidFile})` });
  const first = app(t);
  writePid(pidFile, first.pid!);
  await until('healthy once the app runs', () => reports.length === 2);
  assert.deepEqual(reports[1], { healthy: true, message: '' });
  // The app dies; its runtime removes the file: unhealthy now, not 1000 failed probes later.
  first.kill('SIGKILL');
  await exited(first);
  fs.rmSync(pidFile);
  await until('unhealthy at its exit', () => reports.length === 3);
  assert.deepEqual(reports[2], { healthy: false, message: `the workload's process is not running (no pid file ${pidFile})` });
  // A file naming a process that is gone is down too.
  writePid(pidFile, first.pid!);
  await until('the stale pid seen', () => reports.length === 4);
  assert.deepEqual(reports[3], { healthy: false, message: `the workload's process ${first.pid} has exited` });
  const second = app(t);
  writePid(pidFile, second.pid!);
  await until('healthy after the restart', () => reports.length === 5);
  assert.equal(reports[4].healthy, true);
});

test('the agent\'s files are checked with a clear error', (t) => {
  const dir = tempDir(t);
  assert.throws(() => checkPidFile(path.join(dir, 'missing', 'app.pid')), (e: Error) => e instanceof AgentFileError && /--workload-pid-file .*: directory .*missing does not exist/.test(e.message));
  assert.equal(checkPidFile(path.join(dir, 'app.pid')), path.join(dir, 'app.pid'));
  const env = path.join(dir, 'env.json');
  fs.writeFileSync(env, '{"A":"1","B":2}');
  assert.throws(() => readProbeEnv(env), /--probe-env-file .*: values must be strings \(B is not\)/);
  fs.writeFileSync(env, '[1]');
  assert.throws(() => readProbeEnv(env), /must hold a JSON object/);
  assert.throws(() => readProbeEnv(path.join(dir, 'none.json')), /--probe-env-file .*none\.json: cannot read it: ENOENT/);
  fs.writeFileSync(env, '{"A":"1"}');
  assert.deepEqual(readProbeEnv(env), { A: '1' });
});
