// HttpConnectionManager.request_id_extension (envoy.request_id.uuid, Envoy's default): a static
// bootstrap carrying it is taken, and the tracing decision follows Envoy's: by default the
// x-request-id's first 8 hex digits mod 10000 pick the random_sampling sample and the reason is
// packed into the UUID (position 14: 9 sampled, 4 none), so a later hop keeps the decision;
// pack_trace_reason: false leaves the id alone and ignores a packed reason;
// use_request_id_for_trace_sampling: false traces every request, as Envoy. Observed on a real
// `rig proxy -c` process: the id and the B3 sampling flag the upstream receives.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { runRig } from '../helpers/cli.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { httpListener, request, routeConfig, startUpstream, staticCluster } from './harness.ts';

const ZIPKIN = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';
const UUID = 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig';

// First 8 hex digits 0x00000400 = 1024 (in a 20 % sample), 0x00001770 = 6000 (out of it).
const IN_SAMPLE = '00000400-1111-4222-8333-444444444444';
const OUT_OF_SAMPLE = '00001770-1111-4222-8333-444444444444';
const OUT_PACKED = '00001770-1111-9222-8333-444444444444';

function listener(name: string, randomPercent: number, requestId?: EnvoyJson): EnvoyJson {
  const tracing = {
    random_sampling: { value: randomPercent },
    provider: { name: 'envoy.tracers.zipkin', typed_config: { '@type': ZIPKIN, collector_cluster: 'zipkin', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON' } },
  };
  const extension = requestId ? { request_id_extension: { typed_config: { '@type': UUID, ...requestId } } } : {};
  return httpListener(name, routeConfig(name, [{ match: { prefix: '/' }, route: { cluster: 'app' } }]), { tracing, ...extension }, { traffic_direction: 'OUTBOUND' });
}

test('request_id_extension: request-id sampling and trace reason packing, as Envoy', async (t) => {
  const app = await startUpstream('app');
  const zipkin = await startUpstream('zipkin');
  t.after(() => Promise.all([app.close(), zipkin.close()]));
  const dir = tempDir(t, 'rig-request-id-');
  const file = path.join(dir, 'bootstrap.json');
  const boot = {
    node: { id: 'sidecar~127.0.0.1~client-0.ns~ns.svc.cluster.local', cluster: 'client', metadata: { NAMESPACE: 'ns' } },
    static_resources: {
      listeners: [
        listener('default', 20),
        listener('explicit', 20, { pack_trace_reason: true, use_request_id_for_trace_sampling: true }),
        listener('nopack', 20, { pack_trace_reason: false }),
        listener('random', 0, { use_request_id_for_trace_sampling: false }),
        listener('all', 100),
      ],
      clusters: [staticCluster('app', [app.port]), staticCluster('zipkin', [zipkin.port])],
    },
  };
  fs.writeFileSync(file, JSON.stringify(boot));
  const proxy = await startRigProxyFromFile(t, file);
  assert.doesNotMatch(proxy.log(), /request_id|warn/i);

  const call = async (name: string, rid?: string) => {
    const before = app.requests.length;
    const r = await request(proxy.ports.listeners[name], { headers: rid ? { 'x-request-id': rid } : {} });
    assert.equal(r.status, 200);
    const seen = app.requests[before].headers;
    return { rid: String(seen['x-request-id']), sampled: seen['x-b3-sampled'] };
  };

  for (const name of ['default', 'explicit']) {
    // In the sample: traced, the reason packed ('9'); the same id always gets the same decision.
    for (let i = 0; i < 2; i++) assert.deepEqual(await call(name, IN_SAMPLE), { rid: '00000400-1111-9222-8333-444444444444', sampled: '1' }, name);
    assert.deepEqual(await call(name, OUT_OF_SAMPLE), { rid: OUT_OF_SAMPLE, sampled: '0' }, name);
    // An earlier hop sampled it: the packed reason is kept whatever the id's value.
    assert.deepEqual(await call(name, OUT_PACKED), { rid: OUT_PACKED, sampled: '1' }, name);
  }
  // pack_trace_reason: false: the same sample, the id untouched, a packed reason means nothing.
  assert.deepEqual(await call('nopack', IN_SAMPLE), { rid: IN_SAMPLE, sampled: '1' });
  assert.deepEqual(await call('nopack', OUT_PACKED), { rid: OUT_PACKED, sampled: '0' });
  // use_request_id_for_trace_sampling: false: Envoy's connection manager traces every request.
  assert.deepEqual(await call('random', OUT_OF_SAMPLE), { rid: OUT_OF_SAMPLE, sampled: '1' });
  // A generated UUIDv4 carries the reason too.
  const generated = await call('all');
  assert.match(generated.rid, /^[0-9a-f]{8}-[0-9a-f]{4}-9[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(generated.sampled, '1');
});

test('request_id_extension: another extension type is refused with its path', async (t) => {
  const dir = tempDir(t, 'rig-request-id-bad-');
  const file = path.join(dir, 'bootstrap.json');
  const bad = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, direct_response: { status: 200 } }]), { request_id_extension: { typed_config: { '@type': 'type.googleapis.com/google.protobuf.Struct', value: {} } } });
  fs.writeFileSync(file, JSON.stringify({ static_resources: { listeners: [bad] } }));
  const r = await runRig(['proxy', '-c', file, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /request_id_extension\.typed_config\.@type: unsupported request ID extension type\.googleapis\.com\/google\.protobuf\.Struct/);
});
