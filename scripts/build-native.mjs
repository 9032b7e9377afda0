#!/usr/bin/env node
// Builds native/ (SO_ORIGINAL_DST, and the proxy's trim of its resident executable pages) with
// node-gyp at install time. It never fails the install: without the addon, transparent
// interception (REDIRECT mode) is unavailable and the proxy keeps the node executable's start-up
// pages resident, but the explicit proxy mode works. Plain JavaScript so any Node that npm runs can execute it.
// Headers come from a local directory (npm's `nodedir`, the running Node's own include/, or
// /usr/include/node); node-gyp is never allowed to download them. The addon uses Node-API, so
// headers of another Node major version build a module that loads in this one.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'native');
const retry = 'retry with `npm run build:native` (needs g++, make, python3 and Node headers, e.g. the Debian package libnode-dev or nodejs)';

function fail(what) {
  process.stderr.write(
    `\nrigging: the native addon (native/, SO_ORIGINAL_DST for transparent interception) was not built: ${what}\n` +
      'rigging: everything else works, including the explicit proxy mode (INTERCEPTION_MODE NONE); only\n' +
      '         `rig up --isolation netns` and REDIRECT-mode sidecars need the addon (without it, proxies\n' +
      '         also keep ~20 MB more of the node executable resident).\n' +
      `rigging: ${retry}.\n\n`,
  );
  process.exit(0);
}

if (process.env.RIG_SKIP_NATIVE) fail('RIG_SKIP_NATIVE is set');
const built = path.join(nativeDir, 'build', 'Release', 'rig_native.node');

// Up to date (newer than its sources, and it loads): nothing to do, unless --force. This keeps a
// repeated `npm install` from deleting a module that running processes may be loading.
function upToDate() {
  if (!existsSync(built)) return false;
  const mtime = statSync(built).mtimeMs;
  const sources = [path.join(nativeDir, 'binding.gyp'), ...readdirSync(path.join(nativeDir, 'src')).map((f) => path.join(nativeDir, 'src', f))];
  if (sources.some((f) => statSync(f).mtimeMs > mtime)) return false;
  try {
    createRequire(import.meta.url)(built);
    return true;
  } catch {
    return false;
  }
}
if (!process.argv.includes('--force') && process.platform === 'linux' && upToDate()) {
  process.stdout.write(`rigging: native addon up to date (${path.relative(root, built)}; \`npm run build:native\` rebuilds it)\n`);
  process.exit(0);
}

if (process.platform !== 'linux') fail(`SO_ORIGINAL_DST is Linux-only (this is ${process.platform})`);

function hasHeaders(dir) {
  return dir && existsSync(path.join(dir, 'include', 'node', 'node_api.h'));
}
const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local'];
const nodedir = candidates.find(hasHeaders);
if (!nodedir) fail(`no Node headers found (looked for include/node/node_api.h under ${candidates.filter(Boolean).join(', ')})`);

function findNodeGyp() {
  const fromEnv = process.env.npm_config_node_gyp;
  if (fromEnv && existsSync(fromEnv)) return [process.execPath, fromEnv];
  // npm bundles node-gyp: <npm>/node_modules/node-gyp, found from npm's real path.
  const npmBin = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout?.trim();
  if (npmBin) {
    const npmDir = path.resolve(path.dirname(realpathSync(npmBin)), '..');
    const bundled = path.join(npmDir, 'node_modules/node-gyp/bin/node-gyp.js');
    if (existsSync(bundled)) return [process.execPath, bundled];
  }
  const which = spawnSync('sh', ['-c', 'command -v node-gyp'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return [which.stdout.trim()];
  return undefined;
}
const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found (it ships with npm)');

const [cmd, ...pre] = gyp;
const res = spawnSync(cmd, [...pre, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], {
  cwd: nativeDir,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (res.error) fail(`could not run node-gyp: ${res.error.message}`);
if (res.status !== 0) fail(`node-gyp rebuild exited with status ${res.status} (see the compiler output above)`);

try {
  createRequire(import.meta.url)(built);
} catch (err) {
  fail(`the built module does not load: ${err.message}`);
}
process.stdout.write(`rigging: native addon built (${path.relative(root, built)}, headers from ${nodedir})\n`);
