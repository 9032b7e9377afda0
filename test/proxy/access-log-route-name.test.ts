// %ROUTE_NAME% is the route's name, and a route without one has none, as in Envoy: `-` in a text
// access log, null in a JSON one (Rigging made up `<vhost>/<index>` names Envoy never prints).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_ACCESS_LOG_TYPE } from '../../src/envoy/index.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { until } from '../helpers/wait.ts';
import { configure, httpListener, request, routeConfig, startTestRuntime } from './harness.ts';

test('%ROUTE_NAME%: the route name, or - (text) / null (JSON) for an unnamed route', async (t) => {
  const h = await startTestRuntime(t);
  const dir = tempDir(t, 'rig-route-name-');
  const text = path.join(dir, 'text.log');
  const json = path.join(dir, 'json.log');
  const log = (file: string, log_format: Record<string, unknown>) => ({ name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path: file, log_format } });
  const route = routeConfig('r', [
    { name: 'named', match: { path: '/named' }, direct_response: { status: 200 } },
    { match: { prefix: '/' }, direct_response: { status: 204 } },
  ]);
  const listener = httpListener('l', route, { access_log: [log(text, { text_format_source: { inline_string: '%ROUTE_NAME%\n' } }), log(json, { json_format: { route: '%ROUTE_NAME%' } })] });
  await configure(h, { listeners: [listener] });
  assert.equal((await request(h.port('l'), { path: '/named' })).status, 200);
  assert.equal((await request(h.port('l'), { path: '/other' })).status, 204);
  const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n') : []);
  await until('both requests logged twice', () => lines(text).length === 2 && lines(json).length === 2);
  assert.deepEqual(lines(text), ['named', '-']);
  assert.deepEqual(lines(json).map((l) => JSON.parse(l) as unknown), [{ route: 'named' }, { route: null }]);
});
