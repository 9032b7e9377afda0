// log_format.omit_empty_values (SubstitutionFormatString): a command without a value prints
// nothing instead of `-` in a text format, and its key is left out of a JSON format.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE } from '../../src/envoy/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { configure, httpListener, LISTENER_TYPE, request, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const TEXT = '%REQ(:PATH)% [%REQ(X-MISSING)%] %RESPONSE_CODE%\n';
const JSON_FORMAT = { path: '%REQ(:PATH)%', missing: '%REQ(X-MISSING)%', code: '%RESPONSE_CODE%' };

function fileLog(file: string, logFormat: Record<string, unknown>) {
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format: logFormat } };
}

test('omit_empty_values: empty commands print nothing in text and leave their key out of JSON; without it, - and null', async (t) => {
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const dir = tempDir(t, 'rig-omit-empty-');
  const files = ['text', 'text-omit', 'json', 'json-omit'].map((n) => path.join(dir, `${n}.log`));
  const formats = [
    { text_format_source: { inline_string: TEXT } },
    { text_format_source: { inline_string: TEXT }, omit_empty_values: true },
    { json_format: JSON_FORMAT },
    { json_format: JSON_FORMAT, omit_empty_values: true },
  ];
  const route = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const listener = httpListener('l', route, { access_log: formats.map((f, i) => fileLog(files[i], f)) });
  await configure(h, { clusters: [staticCluster('app', [app.port])], listeners: [listener] });
  assert.equal((await request(h.port('l'), { path: '/a' })).status, 200);
  await until('every access log has its line', () => files.every((f) => fs.existsSync(f) && fs.readFileSync(f, 'utf8').endsWith('\n')));
  const [text, textOmit, json, jsonOmit] = files.map((f) => fs.readFileSync(f, 'utf8').trim());
  assert.equal(text, '/a [-] 200');
  assert.equal(textOmit, '/a [] 200');
  assert.deepEqual(JSON.parse(json), { path: '/a', missing: null, code: 200 });
  assert.deepEqual(JSON.parse(jsonOmit), { path: '/a', code: 200 });
});

test('log_format.formatters is refused with its path, not silently ignored', async (t) => {
  const h = await startTestRuntime(t);
  const file = path.join(tempDir(t, 'rig-formatters-'), 'a.log');
  const logFormat = { text_format_source: { inline_string: '%REQ(:PATH)%\n' }, formatters: [{ name: 'envoy.formatter.req_without_query', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery' } }] };
  const listener = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), { access_log: [fileLog(file, logFormat)] });
  assert.match(h.apply(LISTENER_TYPE, [listener]).join('\n'), /access_log\[0\]\.typed_config\.log_format\.formatters\[0\]\.typed_config\.@type: unknown or unsupported type/);
});
