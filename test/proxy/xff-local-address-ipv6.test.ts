// IPv6 addresses in x-forwarded-for. The proxy's own address (Envoy's LocalInfo address) follows
// --local-address-ip-version: with v6 the machine's first non-loopback IPv6 address, else ::1. A
// listener on ::1 with use_remote_address appends it for its loopback peer ::1, as Envoy does, and
// so do the gRPC calls the proxy makes itself (here an OTLP span export). Real sockets: the in-process proxy runtime, a
// grpc-js collector recording the export's metadata, an upstream echoing the headers it got.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { ipVersionOfInstanceIps, localAddress, setLocalAddressIpVersion } from '../../src/proxy/local-address.ts';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { addr, configure, httpListener, routeConfig, startTestRuntime, startUpstream, staticCluster } from './harness.ts';

const hasIpv6Loopback = (() => {
  try {
    return /inet6 ::1\//.test(execFileSync('ip', ['-6', 'addr', 'show', 'lo'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
})();
const SKIP = hasIpv6Loopback ? false : 'this machine has no IPv6 loopback (ip -6 addr show lo lists no ::1)';

const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
const raw = (b: Buffer) => b;
const TRACE_SERVICE = { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } };

function getV6(port: number): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '::1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve((JSON.parse(body) as { headers: Record<string, string> }).headers));
    });
    req.on('error', reject);
  });
}

test('with --local-address-ip-version v6 the proxy address is IPv6: appended for a ::1 peer on a listener on ::1, and on its gRPC calls', { skip: SKIP }, async (t) => {
  setLocalAddressIpVersion('v6');
  t.after(() => setLocalAddressIpVersion('v4'));
  const firstV6 = Object.values(os.networkInterfaces())
    .flatMap((l) => l ?? [])
    .find((a) => a.family === 'IPv6' && !a.internal)?.address;
  assert.equal(localAddress(), firstV6 ?? '::1');

  const metadata: grpc.Metadata[] = [];
  const collector = await startGrpcServer(t, TRACE_SERVICE, {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      metadata.push(call.metadata);
      cb(null, Buffer.alloc(0));
    },
  });
  const app = await startUpstream('app');
  const h = await startTestRuntime(t, [app]);
  const routes = routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const tracing = { random_sampling: { value: 100 }, provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, grpc_service: { envoy_grpc: { cluster_name: 'otel' } } } } };
  await configure(h, {
    clusters: [staticCluster('app', [app.port]), staticCluster('otel', [collector], { http2_protocol_options: {} })],
    listeners: [httpListener('edge', routes, { use_remote_address: true, tracing }, { address: addr(0, '::1') })],
  });

  const seen = await getV6(h.port('edge'));
  // As Envoy: a loopback peer (::1) is replaced by the proxy's own address, IPv6 with v6.
  assert.equal(seen['x-forwarded-for'], firstV6 ?? '::1', "the proxy's own IPv6 address for the ::1 peer");
  assert.equal(seen['x-envoy-internal'], 'true', '::1 is internal');

  await waitFor('the span export', async () => {
    await flushSpans(h.rt.stats);
    return metadata.length > 0 || undefined;
  });
  const xff = metadata[0].get('x-forwarded-for');
  assert.deepEqual(xff, [firstV6 ?? '::1'], "the proxy's own address, IPv6");
  assert.ok(net.isIPv6(String(xff[0])));
  assert.deepEqual(metadata[0].get('x-envoy-internal'), ['true']);
});

test("the default IP version of a proxy built from flags follows Istio's agent: v6 only when every instance IP is IPv6", () => {
  assert.equal(ipVersionOfInstanceIps('fd00::2'), 'v6');
  assert.equal(ipVersionOfInstanceIps('fd00::2,2001:db8::1'), 'v6');
  assert.equal(ipVersionOfInstanceIps('fd00::2,10.0.0.1'), 'v4');
  assert.equal(ipVersionOfInstanceIps('127.0.0.1'), 'v4');
  assert.equal(ipVersionOfInstanceIps(''), 'v4');
});
