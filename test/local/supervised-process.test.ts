// The supervisor's process handling with real processes: restart with back-off, a command that
// cannot start, readiness probes, and stopping a whole process group.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { freePort } from '../../src/local/ports.ts';
import { httpProbe } from '../../src/local/probe.ts';
import { SupervisedProcess, type ProcessSpec } from '../../src/local/supervised-process.ts';
import type { ProcessState } from '../../src/local/status.ts';

/** Running (a zombie waiting for a parent that does not reap it counts as gone). */
function isAlive(pid: number | undefined): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'rig-sup-'));
const started: SupervisedProcess[] = [];
after(async () => {
  await Promise.all(started.map((p) => p.stop(500)));
  rmSync(dir, { recursive: true, force: true });
});

function supervise(spec: Partial<ProcessSpec> & Pick<ProcessSpec, 'command' | 'args'>): SupervisedProcess {
  const p = new SupervisedProcess({ name: 'test', env: process.env, cwd: dir, logFile: path.join(dir, `${started.length}.log`), ...spec });
  started.push(p);
  return p;
}

function until(p: SupervisedProcess, pred: (p: SupervisedProcess) => boolean, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (pred(p)) return resolve();
    const timer = setTimeout(() => reject(new Error(`timed out in state ${p.state} (${p.message})`)), timeoutMs);
    const check = () => {
      if (!pred(p)) return;
      clearTimeout(timer);
      p.off('state', check);
      resolve();
    };
    p.on('state', check);
  });
}

describe('SupervisedProcess', () => {
  it('restarts a process that exits, reporting the crash with its last output', async () => {
    const p = supervise({ command: process.execPath, args: ['-e', 'console.log("boom"); process.exit(3)'] });
    const states: ProcessState[] = [];
    p.on('state', (s) => states.push(s));
    await p.start();
    await until(p, (x) => x.restarts >= 1 && x.state === 'crashed');
    assert.ok(states.includes('crashed'));
    assert.match(p.message ?? '', /exited with code 3 \(last output: boom\); restarting in/);
  });

  it('reports a command that does not exist as failed, without restarting it', async () => {
    const p = supervise({ command: 'rig-no-such-command-xyz', args: [] });
    await p.start();
    await until(p, (x) => x.state === 'failed');
    assert.match(p.message ?? '', /command "rig-no-such-command-xyz" not found/);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(p.restarts, 0);
    assert.equal(p.state, 'failed');
  });

  it('becomes ready when its readiness probe passes', async () => {
    const port = await freePort();
    const server = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
    const p = supervise({ command: process.execPath, args: ['-e', `setTimeout(() => { ${server} }, 300)`], readiness: httpProbe('127.0.0.1', port, '/') });
    await p.start();
    assert.equal(p.state, 'starting');
    await until(p, (x) => x.state === 'ready');
  });

  it('stops the whole process group, children included', async () => {
    const p = supervise({ command: 'sh', args: ['-c', 'sleep 300 & echo $!; wait'] });
    let grandchild = 0;
    const line = new Promise<void>((resolve) => {
      p.spec.print = (l) => {
        grandchild = Number(l);
        resolve();
      };
    });
    await p.start();
    await line;
    assert.ok(isAlive(grandchild));
    await p.stop(2000);
    assert.equal(p.state, 'stopped');
    assert.equal(isAlive(p.pid), false);
    // Give the kernel a moment to reap the grandchild after SIGTERM to its group.
    for (let i = 0; i < 50 && isAlive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(isAlive(grandchild), false);
  });

  it('does not outlive a supervisor killed with SIGKILL: the orphan guard stops its process group', async () => {
    // The supervisor is a separate node process, so that it can die without running any exit hook.
    const module = new URL('../../src/local/supervised-process.ts', import.meta.url).href;
    const script = `
      import { SupervisedProcess } from ${JSON.stringify(module)};
      const p = new SupervisedProcess({ name: 'app', command: 'sh', args: ['-c', 'sleep 300 & echo $!; wait'],
        env: process.env, cwd: ${JSON.stringify(dir)}, logFile: ${JSON.stringify(path.join(dir, 'killed.log'))},
        print: (line) => console.log(p.pid + ' ' + line) });
      await p.start();`;
    const supervisor = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [out] = (await once(supervisor.stdout!, 'data')) as [Buffer];
    const [leader, grandchild] = out.toString().trim().split(' ').map(Number);
    assert.ok(isAlive(leader) && isAlive(grandchild), `app ${leader} and its child ${grandchild} run`);
    supervisor.kill('SIGKILL');
    await once(supervisor, 'exit');
    for (let i = 0; i < 250 && (isAlive(leader) || isAlive(grandchild)); i++) await new Promise((r) => setTimeout(r, 20));
    const left = [leader, grandchild].filter(isAlive);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    assert.deepEqual(left, [], 'processes left running after the supervisor was killed');
  });
});
