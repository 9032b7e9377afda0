// Envoy's Lua sandbox (test/proxy/envoy-examples/lua.yaml, its library in lua/lib/) run by `rig
// proxy -c` from the sandbox's working directory, as its verify.sh checks it: the request carries
// foo: bar from the required library, the response the size of its body. And `rig proxy -c` with a
// Lua syntax error refuses to start, naming the field and the line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runRig, spawnRig, stopProcess } from '../helpers/cli.ts';
import { RIG_START_TIMEOUT_MS, type ProxyPorts } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { request, startUpstream } from './harness.ts';

const EXAMPLES = path.join(import.meta.dirname, 'envoy-examples');

test('Lua sandbox: require("lib.mylibrary") adds foo: bar to the request; response-body-size is the body length', async (t) => {
  const web = await startUpstream('web_service');
  t.after(() => web.close());
  const dir = tempDir(t, 'lua-sandbox-');
  fs.cpSync(path.join(EXAMPLES, 'lua'), dir, { recursive: true });
  const yaml = fs.readFileSync(path.join(EXAMPLES, 'lua.yaml'), 'utf8').replace('port_value: 8000 ', 'port_value: 0 ').replace('port_value: 80 ', `port_value: ${web.port} `);
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), yaml);
  const portsFile = path.join(dir, 'ports.json');
  const child = spawnRig(['proxy', '-c', 'envoy.yaml', '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--ports-file', portsFile], { cwd: dir });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.after(() => stopProcess(child));
  const ports = (await waitForPortsFile(portsFile, RIG_START_TIMEOUT_MS, () => child.exitCode !== null).catch((e: Error) => {
    throw new Error(`${e.message}\n${log}`);
  })) as unknown as ProxyPorts;
  const r = await request(ports.listeners.main!);
  assert.equal(r.status, 200);
  assert.equal(r.json().headers.foo, 'bar');
  assert.equal(r.headers['response-body-size'], String(Buffer.byteLength(r.body)));
});

test('rig proxy -c refuses a Lua script with a syntax error, naming the field and the line', async (t) => {
  const dir = tempDir(t, 'lua-sandbox-');
  const yaml = fs
    .readFileSync(path.join(EXAMPLES, 'lua.yaml'), 'utf8')
    .replace('port_value: 8000 ', 'port_value: 0 ')
    .replace('request_handle:headers():add("foo", mylibrary.foobar())', 'request_handle:headers():add("foo", mylibrary.foobar()');
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), yaml);
  fs.cpSync(path.join(EXAMPLES, 'lua'), dir, { recursive: true });
  const r = await runRig(['proxy', '-c', 'envoy.yaml', '--admin-port', '0', '--ready-port', '0', '--stats-port', '0'], { cwd: dir });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /http_filters\[0\]\.typed_config\.inline_code: the Lua script does not load: inline_code:5: '\)' expected \(to close '\(' at line 4\) near 'end'/);
});
