// rig up's port allocator: the OS picks ports, and `rig up`s of one host never hand out the same
// one. The OS may give a port one allocator probed and released to another's probe before either
// sidecar bound it; the reservation file makes the second allocator skip it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PortAllocator, ephemeralRange, freePort, portIsFree } from '../../src/local/ports.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** A probe answering the given ports in turn, as the OS does when a released port is probed again. */
const scripted = (ports: number[]) => {
  let i = 0;
  return async () => ports[Math.min(i++, ports.length - 1)];
};

test('two allocators never hand out the same port; a released port can be handed out again', async (t) => {
  const dir = tempDir(t);
  const a = new PortAllocator('127.0.0.1', { reservations: dir, probe: scripted([40001, 40001, 40003, 40007, 40003]) });
  const b = new PortAllocator('127.0.0.1', { reservations: dir, probe: scripted([40001, 40003]) });
  t.after(() => [40001, 40003, 40007].forEach((p) => (a.release(p), b.release(p))));
  assert.equal(await a.allocate(), 40001);
  assert.equal(readFileSync(path.join(dir, '40001'), 'utf8'), String(process.pid));
  assert.equal(await b.allocate(), 40003, 'the port the other allocator holds is skipped');
  assert.equal(await a.allocate(), 40007, 'its own port and the other allocator\'s are skipped');
  b.release(40003);
  assert.equal(existsSync(path.join(dir, '40003')), false);
  assert.equal(await a.allocate(), 40003, 'released by the other allocator: free again');
  // Out of ports: a clear error, not a port another allocator holds.
  const c = new PortAllocator('127.0.0.1', { reservations: dir, probe: scripted([40001]) });
  await assert.rejects(c.allocate(), /no free port on 127\.0\.0\.1 after 50 tries/);
});

test('a reservation left by a process that is gone is taken over', async (t) => {
  const dir = tempDir(t);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  writeFileSync(path.join(dir, '40011'), dead);
  const a = new PortAllocator('127.0.0.1', { reservations: dir, probe: scripted([40011]) });
  t.after(() => a.release(40011));
  assert.equal(await a.allocate(), 40011);
  assert.equal(readFileSync(path.join(dir, '40011'), 'utf8'), String(process.pid));
});

test('the reservations of a process are removed when it exits', async (t) => {
  const dir = tempDir(t);
  const code = `import { PortAllocator } from ${JSON.stringify(path.resolve('src/local/ports.ts'))};
const a = new PortAllocator('127.0.0.1', { reservations: ${JSON.stringify(dir)} });
process.stdout.write(String(await a.allocate()));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const port = Number(r.stdout);
  assert.ok(port > 0, r.stdout);
  assert.equal(existsSync(path.join(dir, String(port))), false);
});

test('ports come from outside the ephemeral range, where no listen on port 0 or outgoing connection takes them', async (t) => {
  const dir = tempDir(t);
  const a = new PortAllocator('127.0.0.1', { reservations: dir });
  const { low, high } = ephemeralRange();
  const ports: number[] = [];
  for (let i = 0; i < 5; i++) ports.push(await a.allocate());
  t.after(() => ports.forEach((p) => a.release(p)));
  assert.equal(new Set(ports).size, 5);
  for (const p of ports) {
    assert.ok(p < low || p > high, `${p} is in the ephemeral range ${low}-${high}`);
    assert.equal(await portIsFree('127.0.0.1', p), true);
  }
});

test('concurrent freePort calls in one process get distinct ports', async () => {
  // 500 random picks among ~12768 ports collide with near certainty (birthday bound) unless
  // freePort remembers what it handed out.
  const ports = await Promise.all(Array.from({ length: 500 }, () => freePort()));
  assert.equal(new Set(ports).size, ports.length);
});
