// The tracing provider fields beyond service and port, end to end through the control plane's
// translation and running sidecars: Zipkin's path, headers, enable64bitTraceId and
// traceContextOption (B3 with W3C) reach the collector and the application; OpenTelemetry over
// gRPC carries grpc.initialMetadata, and resourceDetectors.environment puts the proxy's
// OTEL_RESOURCE_ATTRIBUTES into the exported resource. The Dynatrace detector reads its
// enrichment files (here in a temporary directory).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { Issues, Reader } from '../../src/proxy/config/reader.ts';
import { flushSpans } from '../../src/proxy/telemetry/index.ts';
import { dynatraceResource, environmentResource } from '../../src/proxy/telemetry/otel-resource-detectors.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { decodeTraceRequest, type OtlpSpan } from '../helpers/otlp-collector.ts';
import { waitFor } from '../helpers/wait.ts';
import { SERVICES_YAML, startMesh, viaProxy } from './mesh.ts';

const TELEMETRY = `---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: { name: mesh-default, namespace: istio-system }\nspec:\n  tracing: [{ providers: [{ name: tracer }], randomSamplingPercentage: 100 }]\n`;

const serviceEntry = (host: string, number: number, protocol: string, port: number) =>
  `---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: collector, namespace: istio-system }\nspec:\n  hosts: [${host}]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n  ports: [{ number: ${number}, name: p, protocol: ${protocol} }]\n  endpoints: [{ address: 127.0.0.1, ports: { p: ${port} } }]\n`;

const WORKLOADS = (app: (q: http.IncomingMessage, s: http.ServerResponse) => void) => [
  { name: 'productpage-v1', labels: { app: 'productpage' }, sa: 'bookinfo-productpage' },
  { name: 'reviews-v1', labels: { app: 'reviews' }, sa: 'bookinfo-reviews', app },
];

test('zipkin: path, headers, 64-bit trace ids and B3 with W3C propagation', async (t) => {
  const exports: { url: string; headers: http.IncomingHttpHeaders; spans: { traceId: string; id: string; parentId?: string; kind: string }[] }[] = [];
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      exports.push({ url: req.url ?? '', headers: req.headers, spans: JSON.parse(Buffer.concat(chunks).toString()) as never });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => collector.close(() => r())));
  let seen: http.IncomingHttpHeaders = {};
  // The proxies run in this process: this is their environment.
  process.env.RIG_TEST_ZIPKIN_KEY = 'from-proxy-env';
  t.after(() => delete process.env.RIG_TEST_ZIPKIN_KEY);
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews']) + serviceEntry('zipkin.example.com', 9411, 'HTTP', (collector.address() as AddressInfo).port) + TELEMETRY,
    mesh: {
      extensionProviders: [
        {
          name: 'tracer',
          zipkin: { service: 'zipkin.example.com', port: 9411, path: '/custom/spans', timeout: '3s', enable64bitTraceId: true, traceContextOption: 'USE_B3_WITH_W3C_PROPAGATION', headers: [{ name: 'x-api-key', value: 'k-%ENVIRONMENT(RIG_TEST_ZIPKIN_KEY)%' }] },
        },
      ] as never,
    },
    workloads: WORKLOADS((q, s) => {
      seen = q.headers;
      s.end('ok');
    }),
  });
  t.after(() => mesh.close());

  assert.equal((await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/r')).status, 200);
  // The new trace is 64-bit: 16 digits in B3, the same id widened in traceparent (both written, as USE_B3_WITH_W3C_PROPAGATION).
  const b3 = String(seen['x-b3-traceid']);
  assert.match(b3, /^[0-9a-f]{16}$/);
  assert.match(String(seen.traceparent), new RegExp(`^00-0{16}${b3}-${String(seen['x-b3-spanid'])}-01$`));
  await Promise.all(Object.values(mesh.sidecars).map((s) => flushSpans(s.rt.stats)));
  const spans = await waitFor('two spans at the Zipkin collector', () => {
    const all = exports.flatMap((e) => e.spans);
    return all.length >= 2 ? all : undefined;
  });
  assert.deepEqual(new Set(spans.map((s) => s.traceId)), new Set([b3]));
  for (const e of exports) {
    assert.equal(e.url, '/custom/spans');
    // A value is a format string, evaluated by the proxy; the Host comes from collector_service's URI.
    assert.equal(e.headers['x-api-key'], 'k-from-proxy-env');
    assert.equal(e.headers.host, 'zipkin.example.com');
  }
});

test('opentelemetry over gRPC: initialMetadata on the export, OTEL_RESOURCE_ATTRIBUTES in the resource', async (t) => {
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment=staging,team=check%20out,service.version=1.2';
  t.after(() => delete process.env.OTEL_RESOURCE_ATTRIBUTES);
  const got: { metadata: grpc.Metadata; spans: OtlpSpan[] }[] = [];
  const raw = (b: Buffer) => b;
  const port = await startGrpcServer(
    t,
    { Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        got.push({ metadata: call.metadata, spans: decodeTraceRequest(call.request, 'protobuf') });
        cb(null, Buffer.alloc(0));
      },
    },
  );
  const mesh = await startMesh({
    yaml: SERVICES_YAML(['productpage', 'reviews']) + serviceEntry('otel.example.com', 4317, 'GRPC', port) + TELEMETRY,
    mesh: {
      extensionProviders: [
        {
          name: 'tracer',
          opentelemetry: { service: 'otel.example.com', port: 4317, grpc: { timeout: '5s', initialMetadata: [{ name: 'Authentication', value: 'token-xxxxx' }] }, resourceDetectors: { environment: {}, dynatrace: {} } },
        },
      ] as never,
    },
    workloads: WORKLOADS((_q, s) => s.end('ok')),
  });
  t.after(() => mesh.close());
  assert.equal((await viaProxy(mesh.sidecars['productpage-v1'].outbound, 'http://reviews:9080/r')).status, 200);
  await Promise.all(Object.values(mesh.sidecars).map((s) => flushSpans(s.rt.stats)));
  await waitFor('two spans at the gRPC collector', () => (got.flatMap((g) => g.spans).length >= 2 ? true : undefined));
  for (const g of got) {
    assert.deepEqual(g.metadata.get('authentication'), ['token-xxxxx']);
    for (const s of g.spans) {
      assert.equal(s.resource['deployment.environment'], 'staging');
      assert.equal(s.resource.team, 'check out');
      assert.equal(s.resource['service.version'], '1.2');
      assert.match(String(s.resource['service.name']), /^(productpage|reviews)\.default$/, 'the tracer keeps its service name');
    }
  }
});

test('resource detectors: OTEL_RESOURCE_ATTRIBUTES pairs, Dynatrace enrichment files through the OneAgent indirection', (t) => {
  const issues = new Issues();
  const r = new Reader({}, 'resource_detectors[0]', issues);
  assert.deepEqual(environmentResource(r, 'env', 'a=1, b = x%2Cy ,bad,=v,c=%E0%A4%A'), { a: '1', b: 'x,y' });
  assert.equal(issues.warnings.length, 3, issues.warnings.join('\n'));
  assert.match(issues.warnings[0], /^env: OTEL_RESOURCE_ATTRIBUTES: "bad" is not a key=value pair/);

  const dir = tempDir(t, 'rig-dt-');
  const meta = `${dir}/dt_metadata_real.properties`;
  fs.writeFileSync(`${dir}/indirect`, `${meta}\n`);
  fs.writeFileSync(meta, 'dt.entity.process_group_instance=PROCESS_GROUP_INSTANCE-95C5FBF859599282\n# comment=no\n');
  fs.writeFileSync(`${dir}/host.properties`, 'dt.entity.host=HOST-ABC\r\nhost.name = node-1\n\n');
  assert.deepEqual(dynatraceResource(r, 'dt', { indirect: `${dir}/indirect`, direct: [`${dir}/missing.properties`, `${dir}/host.properties`] }), {
    'dt.entity.process_group_instance': 'PROCESS_GROUP_INSTANCE-95C5FBF859599282',
    'dt.entity.host': 'HOST-ABC',
    'host.name': 'node-1',
  });
  assert.deepEqual(dynatraceResource(r, 'dt', { indirect: `${dir}/none`, direct: [`${dir}/missing.properties`] }), {});
  assert.match(issues.warnings.at(-1)!, /^dt: the Dynatrace resource detector found no enrichment file/);
});
