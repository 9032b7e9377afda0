// Route tables assembled from per-virtual-host pieces are byte-identical to protobufjs's encoding
// of the whole message, and a bad virtual host is reported with its path.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EnvoyJsonError, encodeMessage } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { encodeRouteConfiguration } from '../../src/xds/server/route-encoder.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RC = 'envoy.config.route.v3.RouteConfiguration';

function goldenRoutes(): EnvoyJson[] {
  const out: EnvoyJson[] = [];
  for (const f of fs.readdirSync(path.join(HERE, 'golden'))) {
    const doc = JSON.parse(fs.readFileSync(path.join(HERE, 'golden', f), 'utf8')) as Record<string, unknown>;
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        const o = v as EnvoyJson;
        if (Array.isArray(o.virtual_hosts) && typeof o.name === 'string') out.push(o);
        else Object.values(o).forEach(walk);
      }
    };
    walk(doc);
  }
  return out;
}

test('generated route tables encode to the same bytes as the whole-message encoding', () => {
  const tables = goldenRoutes();
  assert.ok(tables.length >= 5, `route tables in the golden files: ${tables.length}`);
  const extra: EnvoyJson[] = [
    { name: '', virtual_hosts: [{ name: 'a', domains: ['*'] }], validate_clusters: false },
    { virtual_hosts: [{ name: 'a', domains: ['a'] }, { name: 'b', domains: ['b'] }], ignore_port_in_host_matching: true, internal_only_headers: ['x-internal'] },
    { name: 'empty', virtual_hosts: [] },
    { name: 'none' },
  ];
  for (const rc of [...tables, ...extra]) {
    const whole = Buffer.from(encodeMessage(RC, rc));
    assert.deepEqual(Buffer.from(encodeRouteConfiguration(rc)), whole, String(rc.name));
    // Again, from the cached pieces.
    assert.deepEqual(Buffer.from(encodeRouteConfiguration(structuredClone(rc))), whole, String(rc.name));
  }
});

test('a virtual host that does not fit is reported with its path; other fields are checked too', () => {
  const bad = { name: '80', virtual_hosts: [{ name: 'ok', domains: ['*'] }, { name: 'bad', domains: ['*'], routez: [] }] };
  assert.throws(() => encodeRouteConfiguration(bad), (err: unknown) => err instanceof EnvoyJsonError && /virtual_hosts\[1\]\.routez/.test(err.message));
  assert.throws(() => encodeRouteConfiguration({ name: '80', virtual_hosts: [{ name: 'ok', domains: ['*'] }], validate_clusterz: true }), EnvoyJsonError);
  assert.throws(() => encodeRouteConfiguration({ name: '80', virtual_hosts: 'nope' }), EnvoyJsonError);
});
