import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { nativeAddonUnavailableReason } from '../../src/proxy/native-addon.ts';

const ADDON = new URL('../../src/proxy/native-addon.ts', import.meta.url).pathname;

// In a child process: the flag is the child's own loop's, and a wrong write into libuv's fields
// crashes the child, not the test runner.
const CHILD = `
import { nativeAddon } from ${JSON.stringify(ADDON)};
import { performance } from 'node:perf_hooks';
import net from 'node:net';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const idleOver = async (ms) => { const a = performance.eventLoopUtilization(); await sleep(ms); return performance.eventLoopUtilization(a).idle; };
const echo = () => new Promise((resolve, reject) => {
  const server = net.createServer((c) => c.pipe(c)).listen(0, '127.0.0.1', () => {
    const c = net.connect(server.address().port, '127.0.0.1', () => c.end('ping'));
    let got = '';
    c.on('data', (d) => (got += d)).on('end', () => { server.close(); resolve(got); }).on('error', reject);
  });
});
const idleBefore = await idleOver(200);
const stopped = nativeAddon().stopLoopIdleTime();
const again = nativeAddon().stopLoopIdleTime();
const idleAfter = await idleOver(200);
console.log(JSON.stringify({ idleBefore, stopped, again, idleAfter, echo: await echo() }));
`;

test('stopLoopIdleTime turns off libuv idle-time accounting, once, and the loop still waits and serves', { skip: nativeAddonUnavailableReason() }, () => {
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', CHILD], { encoding: 'utf8' })) as {
    idleBefore: number;
    stopped: boolean;
    again: boolean;
    idleAfter: number;
    echo: string;
  };
  assert.ok(out.idleBefore > 100, `libuv counted ${out.idleBefore} ms idle over a 200 ms wait before the call`);
  assert.equal(out.stopped, true);
  assert.equal(out.again, false, 'a second call finds the flag already off and leaves the loop alone');
  assert.equal(out.idleAfter, 0, 'no idle time is counted once it is off');
  assert.equal(out.echo, 'ping');
});
