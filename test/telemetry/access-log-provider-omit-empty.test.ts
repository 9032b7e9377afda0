// MeshConfig envoyFileAccessLog.omitEmptyValues (Istio's EnvoyFileAccessLogProvider field, beside
// logFormat): accepted and checked, carried to the file access log's log_format.omit_empty_values,
// and honoured by a running sidecar in JSON (the key of an empty command is left out) and text
// (an empty command prints nothing instead of `-`).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LISTENER_TYPE, type EnvoyJson } from '../../src/envoy/index.ts';
import { parseMeshConfig } from '../../src/model/mesh-config.ts';
import { GENERATORS } from '../../src/xds/server/generators.ts';
import { buildPush, explicitSidecar, parseYaml } from '../xds/fixtures.ts';
import { startMesh, SERVICES_YAML, viaProxy } from './mesh.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';

function meshError(fileLog: Record<string, unknown>): string {
  try {
    parseMeshConfig({ extensionProviders: [{ name: 'log', envoyFileAccessLog: fileLog }] });
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

test('envoyFileAccessLog.omitEmptyValues is accepted where Istio has it, checked, and a misplaced one says where it goes', () => {
  assert.equal(meshError({ path: '/dev/stdout', omitEmptyValues: true, logFormat: { labels: { a: '%REQ(x-a)%' } } }), '');
  assert.equal(meshError({ omitEmptyValues: false, logFormat: { text: '%REQ(x-a)%' } }), '');
  assert.match(meshError({ omitEmptyValues: 'yes' }), /extensionProviders\[0\]\.envoyFileAccessLog\.omitEmptyValues: expected true or false/);
  assert.match(meshError({ logFormat: { text: '%REQ(x-a)%', omitEmptyValues: true } }), /envoyFileAccessLog\.logFormat\.omitEmptyValues: unknown field; Istio's field is extensionProviders\[0\]\.envoyFileAccessLog\.omitEmptyValues/);
  assert.match(meshError({ logFormat: { json: {} } }), /envoyFileAccessLog\.logFormat\.json: unknown field \(known: text, labels\)/);
});

/** The file access logs of a sidecar's outbound connection manager for this mesh config. */
function outboundLogs(mesh: Record<string, unknown>): EnvoyJson[] {
  const pp = explicitSidecar('productpage-v1-0', 'default', { app: 'productpage' }, 'bookinfo-productpage', [{ port: 9080, name: 'http' }]);
  const push = buildPush(parseYaml(SERVICES_YAML(['productpage'])), [pp], { mesh: parseMeshConfig(mesh) });
  const logs: EnvoyJson[] = [];
  JSON.stringify(GENERATORS[LISTENER_TYPE].generate(push, pp, undefined), (_k, v: unknown) => {
    const h = v as EnvoyJson | undefined;
    if (String(h?.['@type']).endsWith('HttpConnectionManager') && !String(h?.stat_prefix).startsWith('inbound')) logs.push(...((h?.access_log as EnvoyJson[] | undefined) ?? []).map((l) => l.typed_config as EnvoyJson));
    return v;
  });
  return logs;
}

test('the control plane writes omit_empty_values; an own `envoy` provider without logFormat or omitEmptyValues keeps the mesh format, as Istio', () => {
  const mesh = { accessLogEncoding: 'JSON', accessLogFormat: '{"code":"%RESPONSE_CODE%"}' };
  const [omit] = outboundLogs({ ...mesh, extensionProviders: [{ name: 'json', envoyFileAccessLog: { path: '/tmp/a.log', omitEmptyValues: true, logFormat: { labels: {} } } }], defaultProviders: { accessLogging: ['json'] } });
  assert.equal(omit.path, '/tmp/a.log');
  assert.equal((omit.log_format as EnvoyJson).omit_empty_values, true);
  assert.ok(((omit.log_format as EnvoyJson).json_format as EnvoyJson).response_code, 'labels: {} is Istio\'s default JSON format');
  const [own] = outboundLogs({ ...mesh, extensionProviders: [{ name: 'envoy', envoyFileAccessLog: { path: '/tmp/b.log' } }], defaultProviders: { accessLogging: ['envoy'] } });
  assert.deepEqual(own.log_format, { json_format: { code: '%RESPONSE_CODE%' } });
  const [ownOmit] = outboundLogs({ ...mesh, extensionProviders: [{ name: 'envoy', envoyFileAccessLog: { path: '/tmp/b.log', omitEmptyValues: true } }], defaultProviders: { accessLogging: ['envoy'] } });
  assert.equal((ownOmit.log_format as EnvoyJson).omit_empty_values, true);
  assert.ok(((ownOmit.log_format as EnvoyJson).text_format_source as EnvoyJson).inline_string, 'with omitEmptyValues it is the provider\'s own (default text) format');
});

async function lines(file: string, n: number): Promise<string[]> {
  let out: string[] = [];
  await until(`${n} lines in ${file}`, () => (out = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []).length >= n);
  return out;
}

test('a sidecar writes omitEmptyValues logs: JSON without the keys of empty commands, text without dashes', async (t) => {
  const dir = tempDir(t, 'rig-omit-empty-');
  const json = path.join(dir, 'omit.json');
  const text = path.join(dir, 'omit.log');
  const keep = path.join(dir, 'keep.log');
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews']),
    mesh: {
      extensionProviders: [
        { name: 'omit-json', envoyFileAccessLog: { path: json, omitEmptyValues: true, logFormat: { labels: { code: '%RESPONSE_CODE%', xff: '%REQ(X-FORWARDED-FOR)%', tag: '%REQ(X-TAG)%' } } } },
        { name: 'omit-text', envoyFileAccessLog: { path: text, omitEmptyValues: true, logFormat: { text: '[%REQ(X-TAG)%] [%REQ(X-FORWARDED-FOR)%] %RESPONSE_CODE%' } } },
        { name: 'keep-text', envoyFileAccessLog: { path: keep, logFormat: { text: '[%REQ(X-TAG)%] [%REQ(X-FORWARDED-FOR)%] %RESPONSE_CODE%' } } },
      ],
      defaultProviders: { accessLogging: ['omit-json', 'omit-text', 'keep-text'] },
    },
    workloads: [
      { name: 'productpage-v1', labels: { app: 'productpage', version: 'v1' }, sa: 'bookinfo-productpage' },
      { name: 'reviews-v1', labels: { app: 'reviews', version: 'v1' }, sa: 'bookinfo-reviews', app: (_q, s) => void s.end('ok') },
    ],
  });
  t.after(() => mesh.close());
  const pp = mesh.sidecars['productpage-v1'];
  assert.equal((await viaProxy(pp.outbound, 'http://reviews:9080/a', { 'x-tag': 't1' })).status, 200);

  // Two proxies (productpage outbound, reviews inbound) log the request in each file.
  const entries = (await lines(json, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
  const outbound = entries.find((e) => !('xff' in e));
  assert.ok(outbound, `the client side has no x-forwarded-for and so no xff key: ${JSON.stringify(entries)}`);
  assert.deepEqual(outbound, { code: 200, tag: 't1' });
  assert.ok((await lines(text, 2)).includes('[t1] [] 200'), fs.readFileSync(text, 'utf8'));
  assert.ok((await lines(keep, 2)).includes('[t1] [-] 200'), 'without omitEmptyValues an empty command is still -');
});
