// OTLP/gRPC span export as Envoy's envoy_grpc client sends it: one `rig proxy` process whose
// listeners trace to four grpc-js collectors implementing TraceService/Export through their
// clusters. A plaintext HTTP/2 collector checks :authority (envoy_grpc.authority), the
// initial_metadata (a `-bin` value arrives as its bytes), the OTLP user-agent, the deadline from
// grpc-timeout and the decoded span; a collector behind mTLS (the cluster's transport socket)
// checks the client certificate and Envoy's default :authority (the cluster name) and that no
// timeout means no grpc-timeout; a collector answering UNAVAILABLE counts reports_failed; an
// HTTP/1 collector cluster is never called, its failed reports logged with what it needs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { grpcTimeoutHeader } from '../../src/proxy/upstream/cluster-grpc.ts';
import { startGrpcServer } from '../helpers/grpc-server.ts';
import { listenLocal } from '../helpers/listen.ts';
import { decodeTraceRequest, SPAN_KIND, type OtlpSpan } from '../helpers/otlp-collector.ts';
import { startRigProxyFromFile } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';
import { makePki } from '../proxy/certs.ts';
import { CLUSTER_TYPE, httpListener, LISTENER_TYPE, routeConfig, startTestRuntime, staticCluster } from '../proxy/harness.ts';

const OTEL = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
const HTTP_OPTIONS = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

interface ExportCall {
  authority: string;
  metadata: grpc.Metadata;
  /** ms left until the call's deadline when it arrived (Infinity: no grpc-timeout). */
  remainingMs: number;
  peerCn: string | undefined;
  spans: OtlpSpan[];
}

const raw = (b: Buffer) => b;
const TRACE_SERVICE = { Export: { path: EXPORT_PATH, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } };

/** A TraceService collector recording each call; `fail` answers with that status instead. */
async function startCollector(t: { after(fn: () => unknown): void }, opts: { credentials?: grpc.ServerCredentials; fail?: grpc.status } = {}): Promise<{ port: number; calls: ExportCall[] }> {
  const calls: ExportCall[] = [];
  const port = await startGrpcServer(
    t,
    TRACE_SERVICE,
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const deadline = call.getDeadline();
        const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
        calls.push({
          authority: call.getHost(),
          metadata: call.metadata,
          remainingMs: deadlineMs - Date.now(),
          peerCn: [call.getAuthContext().sslPeerCertificate?.subject?.CN ?? []].flat()[0],
          spans: decodeTraceRequest(call.request, 'protobuf'),
        });
        if (opts.fail !== undefined) cb({ code: opts.fail, details: 'collector overloaded' });
        else cb(null, Buffer.alloc(0));
      },
    },
    opts.credentials,
  );
  return { port, calls };
}

function tracing(cluster: string, grpcService: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    random_sampling: { value: 100 },
    provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL, service_name: 'checkout.shop', grpc_service: { envoy_grpc: { cluster_name: cluster }, ...grpcService } } },
  };
}

test('grpc-timeout as Envoy writes it: milliseconds, else the next unit up, at most 8 digits', () => {
  assert.equal(grpcTimeoutHeader(250), '250m');
  assert.equal(grpcTimeoutHeader(0.4), '1m');
  assert.equal(grpcTimeoutHeader(99_999_999), '99999999m');
  assert.equal(grpcTimeoutHeader(100_000_000), '100000S');
  assert.equal(grpcTimeoutHeader(100_000_000_001), '1666667M');
  assert.equal(grpcTimeoutHeader(1e13), '2777778H');
  assert.equal(grpcTimeoutHeader(1e18), '99999999H');
});

test('rig proxy exports OTLP/gRPC through the collector cluster: authority, metadata, timeout, mTLS, grpc-status', async (t) => {
  const pki = makePki('OTel Collector CA');
  t.after(() => pki.cleanup());
  const collectorCert = pki.leaf('otel-collector', ['DNS:otel-collector.observability']);
  const proxyCert = pki.leaf('rig-proxy', ['URI:spiffe://cluster.local/ns/shop/sa/checkout']);
  const mtls = grpc.ServerCredentials.createSsl(Buffer.from(pki.ca), [{ cert_chain: Buffer.from(collectorCert.cert), private_key: Buffer.from(collectorCert.key) }], true);

  const plain = await startCollector(t);
  const secure = await startCollector(t, { credentials: mtls });
  const failing = await startCollector(t, { fail: grpc.status.UNAVAILABLE });
  const h1 = await startCollector(t);
  const app = http.createServer((q, s) => s.end(String(q.headers.traceparent)));
  const appPort = await listenLocal(app, t);
  process.env.RIG_TEST_OTLP_TENANT = 'team-a';
  t.after(() => delete process.env.RIG_TEST_OTLP_TENANT);

  const h2 = { http2_protocol_options: {} };
  const listener = (name: string, trace: Record<string, unknown>) => ({
    ...httpListener(name, routeConfig(name, [{ match: { prefix: '/' }, route: { cluster: 'app' }, decorator: { operation: `${name}-op` } }]), { stat_prefix: `inbound_${name}`, tracing: trace }),
    traffic_direction: 'INBOUND',
  });
  const boot = {
    node: { id: 'sidecar~127.0.0.1~checkout-0.shop~shop.svc.cluster.local', cluster: 'checkout', metadata: { NAMESPACE: 'shop', LABELS: { app: 'checkout' } } },
    static_resources: {
      listeners: [
        listener(
          'plain',
          tracing('otel', {
            envoy_grpc: { cluster_name: 'otel', authority: 'otel-collector.observability:4317' },
            timeout: '90s',
            initial_metadata: [
              { key: 'Authorization', value: 'Bearer s3cret' },
              { key: 'x-tenant', value: '%ENVIRONMENT(RIG_TEST_OTLP_TENANT)%' },
              { key: 'x-token-bin', raw_value: Buffer.from([0, 1, 2, 255]).toString('base64') },
            ],
          }),
        ),
        listener('secure', tracing('otel-tls')),
        listener('failing', tracing('otel-failing', { timeout: '5s' })),
        listener('h1', tracing('otel-h1', { timeout: '5s' })),
      ],
      clusters: [
        staticCluster('app', [appPort]),
        staticCluster('otel', [plain.port], h2),
        staticCluster('otel-tls', [secure.port], {
          typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': HTTP_OPTIONS, explicit_http_config: h2 } },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: {
              '@type': TLS,
              sni: 'otel-collector.observability',
              common_tls_context: {
                tls_certificates: [{ certificate_chain: { inline_string: proxyCert.cert }, private_key: { inline_string: proxyCert.key } }],
                validation_context: { trusted_ca: { inline_string: pki.ca }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'otel-collector.observability' } }] },
              },
            },
          },
        }),
        staticCluster('otel-failing', [failing.port], h2),
        staticCluster('otel-h1', [h1.port]),
      ],
    },
  };
  const dir = tempDir(t, 'rig-otlp-grpc-');
  fs.writeFileSync(path.join(dir, 'boot.json'), JSON.stringify(boot));
  const proxy = await startRigProxyFromFile(t, path.join(dir, 'boot.json'));
  const stats = async () => {
    const text = await (await fetch(`http://127.0.0.1:${proxy.ports.admin}/stats`)).text();
    return Object.fromEntries(text.split('\n').filter((l) => l.startsWith('tracing.opentelemetry.')).map((l) => [l.slice(22, l.indexOf(':')), Number(l.slice(l.indexOf(':') + 1))]));
  };
  const get = async (listenerName: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`http://127.0.0.1:${proxy.ports.listeners[listenerName]}/orders/7`, { headers });
    assert.equal(r.status, 200);
    return r.text();
  };

  // Plaintext HTTP/2: envoy_grpc.authority, initial_metadata, user-agent, grpc-timeout, the span.
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const upstreamTraceparent = await get('plain', { traceparent: `00-${traceId}-b7ad6b7169203331-01` });
  const call = await waitFor(() => `an export to the plaintext collector (proxy log: ${proxy.log()})`, () => plain.calls[0], 15_000);
  assert.equal(call.authority, 'otel-collector.observability:4317');
  assert.deepEqual(call.metadata.get('authorization'), ['Bearer s3cret']);
  assert.deepEqual(call.metadata.get('x-tenant'), ['team-a']);
  assert.deepEqual(call.metadata.get('x-token-bin'), [Buffer.from([0, 1, 2, 255])], 'a -bin value travels base64-encoded and arrives as its bytes');
  assert.match(String(call.metadata.get('user-agent')[0]), /^OTel-OTLP-Exporter-Rigging\/\d+\.\d+\.\d+/);
  assert.ok(call.remainingMs > 80_000 && call.remainingMs <= 90_000, `the call's deadline comes from grpc-timeout 90000m (${call.remainingMs} ms left)`);
  assert.equal(call.peerCn, undefined);
  assert.equal(call.spans.length, 1);
  const [span] = call.spans;
  assert.equal(span.traceId, traceId);
  assert.equal(span.parentSpanId, 'b7ad6b7169203331');
  assert.equal(upstreamTraceparent, `00-${traceId}-${span.spanId}-01`, 'the exported span is the upstream request\'s parent');
  assert.equal(span.name, 'plain-op');
  assert.equal(span.kind, SPAN_KIND.SERVER);
  assert.equal(span.resource['service.name'], 'checkout.shop');
  assert.equal(span.attributes['http.method'], 'GET');
  assert.equal(span.attributes['http.status_code'], '200');
  assert.equal(span.attributes.upstream_cluster, 'app');

  // mTLS through the cluster's transport socket; :authority defaults to the cluster name; no timeout, no grpc-timeout.
  await get('secure');
  const secureCall = await waitFor(() => `an export to the mTLS collector (proxy log: ${proxy.log()})`, () => secure.calls[0], 15_000);
  assert.equal(secureCall.peerCn, 'rig-proxy', 'the collector saw the cluster\'s client certificate');
  assert.equal(secureCall.authority, 'otel-tls');
  assert.equal(secureCall.remainingMs, Infinity);
  assert.equal(secureCall.spans[0]?.name, 'secure-op');
  // The collector has the call; the proxy counts the report once the collector's answer is back.
  const sent = await waitFor(() => `both reports counted (proxy log: ${proxy.log()})`, async () => {
    const s = await stats();
    return s.reports_sent === 2 ? s : undefined;
  }, 15_000);
  assert.deepEqual(sent, { reports_failed: 0, reports_sent: 2, reports_skipped_no_cluster: 0, spans_dropped: 0, spans_sent: 2 });

  // A collector answering grpc-status 14 (a trailers-only response): the report failed, its span dropped.
  await get('failing');
  await waitFor(() => `a failed report (proxy log: ${proxy.log()})`, async () => ((await stats()).reports_failed === 1 ? true : undefined), 15_000);
  assert.equal(failing.calls.length, 1, 'the failing collector was called');
  assert.equal(failing.calls[0].spans[0]?.name, 'failing-op');
  assert.deepEqual(await stats(), { reports_failed: 1, reports_sent: 2, reports_skipped_no_cluster: 0, spans_dropped: 1, spans_sent: 2 });
  assert.match(proxy.log(), /"cluster":"otel-failing","err":"[^"]*grpc-status 14 \(collector overloaded\)","msg":"span export failed; spans are dropped/);

  // A collector cluster without HTTP/2: its exports fail unsent, with a warning saying what the cluster needs.
  await get('h1');
  await waitFor(() => `a second failed report (proxy log: ${proxy.log()})`, async () => ((await stats()).reports_failed === 2 ? true : undefined), 15_000);
  assert.equal(h1.calls.length, 0);
  assert.match(proxy.log(), /"cluster":"otel-h1","err":"cluster otel-h1 does not speak HTTP\/2, which gRPC needs: give it http2_protocol_options/);
  assert.deepEqual(await stats(), { reports_failed: 2, reports_sent: 2, reports_skipped_no_cluster: 0, spans_dropped: 2, spans_sent: 2 });
});

test('an OTLP/gRPC tracer whose collector cluster is not HTTP/2 is warned about when the listener arrives', async (t) => {
  const h = await startTestRuntime(t);
  const listener = httpListener('l', routeConfig('r', [{ match: { prefix: '/' }, route: { cluster: 'otel' } }]), { tracing: tracing('otel') });
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('otel', [4317])]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener]), []);
  assert.match((h.rt.warnings.get(LISTENER_TYPE) ?? []).join('\n'), /grpc_service\.envoy_grpc\.cluster_name: the collector cluster otel is not HTTP\/2: OTLP\/gRPC exports will fail until it has http2_protocol_options/);
  assert.deepEqual(h.apply(CLUSTER_TYPE, [staticCluster('otel', [4317], { http2_protocol_options: {} })]), []);
  assert.deepEqual(h.apply(LISTENER_TYPE, [listener]), []);
  assert.deepEqual(h.rt.warnings.get(LISTENER_TYPE), []);
});
