// A proxy loads the libraries of optional features only when its config uses them (issue 10,
// proxy memory): jose (jwt_authn), wasmoon (the Lua filter's VM), cel-js (CEL expressions), the OpenTelemetry SDK (a tracing
// provider), re2js (RE2-only regex syntax), yaml (YAML files), and never Node's bundled undici
// (an ES import of node:http would load it). Checked on a real `rig proxy` process through a
// module hook that lists every module it loads.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { spawnRig, stopProcess } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { httpListener, routeConfig } from './harness.ts';

const HOOK = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
const out = process.env.RIG_TEST_MODULES_FILE;
registerHooks({ load(url, ctx, next) { appendFileSync(out, url + '\\n'); return next(url, ctx); } });
const t = setInterval(() => {
  if (!process.moduleLoadList.includes('NativeModule internal/deps/undici/undici')) return;
  appendFileSync(out, 'node:internal/deps/undici/undici\\n');
  clearInterval(t);
}, 50);
t.unref();
`;

const OPTIONAL = ['/node_modules/jose/', '/node_modules/wasmoon/', '/node_modules/@marcbachmann/cel-js/', '/node_modules/@opentelemetry/sdk-trace-base/', '/node_modules/re2js/', '/node_modules/yaml/', 'node:internal/deps/undici/undici'];

function bootstrap(regex?: string): object {
  const match = regex ? { safe_regex: { regex } } : { prefix: '/' };
  return {
    node: { id: 'lazy~127.0.0.1~lazy.default~default.svc.cluster.local', cluster: 'lazy' },
    static_resources: { listeners: [httpListener('in', routeConfig('r', [{ match, direct_response: { status: 200 } }]))] },
  };
}

/** Starts `rig proxy -c file` under the hook; resolves with the modules it loaded once it listens (and a moment more). */
async function modulesLoaded(t: TestContext, dir: string, configFile: string): Promise<string[]> {
  const hook = path.join(dir, 'hook.mjs');
  const list = path.join(dir, 'modules.txt');
  fs.writeFileSync(hook, HOOK);
  fs.writeFileSync(list, '');
  const portsFile = path.join(dir, 'ports.json');
  const env = { ...process.env, RIG_TEST_MODULES_FILE: list, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${hook}` };
  const child = spawnRig(['proxy', '-c', configFile, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--ports-file', portsFile], { env });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.after(() => stopProcess(child));
  await waitForPortsFile(portsFile, 30_000, () => child.exitCode !== null).catch((err: Error) => {
    throw new Error(`rig proxy -c ${configFile}: ${err.message}\n${log}`);
  });
  await new Promise((r) => setTimeout(r, 300));
  return fs.readFileSync(list, 'utf8').split('\n').filter(Boolean);
}

test('a JSON bootstrap without optional features loads none of their libraries', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(bootstrap()));
  const loaded = await modulesLoaded(t, dir, file);
  assert.ok(loaded.some((u) => u.endsWith('/src/proxy/runtime.ts')), 'the hook saw the proxy load');
  for (const m of OPTIONAL) assert.deepEqual(loaded.filter((u) => u.includes(m)), [], `${m} loaded`);
});

test('a YAML bootstrap with an RE2-only route regex loads yaml and re2js, and still no more', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'bootstrap.yaml');
  fs.writeFileSync(file, stringify(bootstrap('/\\pL+')));
  const loaded = await modulesLoaded(t, dir, file);
  for (const m of OPTIONAL) {
    const want = m.includes('/yaml/') || m.includes('/re2js/');
    assert.equal(loaded.some((u) => u.includes(m)), want, `${m} ${want ? 'not ' : ''}loaded`);
  }
});
