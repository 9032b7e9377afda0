// Authorization servers for the ext_authz tests: a real @grpc/grpc-js envoy.service.auth.v3
// Authorization server that decides by the request header x-verdict (allow / deny / fail).
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HTTP_RBAC_TYPE } from '../../src/envoy/index.ts';
import type { EnvoyJson } from '../../src/envoy/index.ts';
import { staticCluster } from '../proxy/harness.ts';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

export interface CheckCall {
  attributes: {
    context_extensions?: Record<string, string>;
    source: { address: { socket_address: { address: string; port_value: number } }; principal?: string; certificate?: string; service?: string };
    destination?: { principal?: string; service?: string };
    tls_session?: { sni?: string };
    request?: { http: { method: string; path: string; host: string; headers: Record<string, string>; id: string; protocol: string; size?: number; body?: string; raw_body?: Buffer; header_map?: { headers: { key: string; raw_value: Buffer }[] } } };
  };
}

export interface GrpcAuthz {
  port: number;
  seen: CheckCall[];
  /** The request metadata (headers) of each call, as grpc-js gives them (`-bin` values as Buffers). */
  metadata: Record<string, unknown>[];
  /** The answer to connection checks (no HTTP request in the CheckRequest). */
  tcpVerdict: 'allow' | 'deny' | 'fail';
  /** Replaces the ok_response of allowed checks. */
  okResponse?: unknown;
  close(): void;
}

/** With `tls`, the server speaks only TLS and requires a client certificate signed by `tls.ca`. */
export async function startGrpcAuthz(tls?: { ca: string; cert: string; key: string }): Promise<GrpcAuthz> {
  const def = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: true, longs: Number, enums: String, defaults: false, includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d)) });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  const seen: CheckCall[] = [];
  const server = new grpc.Server();
  const authz: GrpcAuthz = { port: 0, seen, metadata: [], tcpVerdict: 'allow', close: () => server.forceShutdown() };
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check(call: grpc.ServerUnaryCall<CheckCall, unknown>, cb: grpc.sendUnaryData<unknown>) {
      seen.push(call.request);
      authz.metadata.push(call.metadata.getMap());
      const http = call.request.attributes.request?.http;
      const verdict = http ? (http.headers?.['x-verdict'] ?? http.header_map?.headers.find((x) => x.key === 'x-verdict')?.raw_value.toString()) : authz.tcpVerdict;
      if (verdict === 'fail') return cb({ code: grpc.status.UNAVAILABLE, details: 'authz down' });
      if (verdict === 'deny') {
        return cb(null, { status: { code: 7 }, denied_response: { status: { code: 'Unauthorized' }, headers: [{ header: { key: 'x-deny-reason', value: 'grpc says no' } }], body: 'denied over gRPC' } });
      }
      cb(null, {
        status: { code: 0 },
        ok_response: authz.okResponse ?? { headers: [{ header: { key: 'x-user', value: 'bob' } }], headers_to_remove: ['x-drop-me'], response_headers_to_add: [{ header: { key: 'x-authz-grpc', value: 'yes' } }] },
        // proto-loader's google.protobuf types (protobufjs' bundled ones) keep lowerCamelCase names.
        dynamic_metadata: { fields: { user: { stringValue: 'bob' } } },
      });
    },
  });
  const creds = tls ? grpc.ServerCredentials.createSsl(Buffer.from(tls.ca), [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }], true) : grpc.ServerCredentials.createInsecure();
  authz.port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? rej(e) : res(p))));
  return authz;
}

/** A cluster for a gRPC authorization server: HTTP/2, as Envoy's envoy_grpc client needs (Istio: a grpc port). */
export function grpcCluster(name: string, port: number): EnvoyJson {
  return staticCluster(name, [port], { http2_protocol_options: {} });
}

/** Istio's shadow RBAC for CUSTOM policies: here, paths under /secure are sent to the authz service. */
export const SHADOW_RBAC = {
  name: 'envoy.filters.http.rbac',
  typed_config: {
    '@type': HTTP_RBAC_TYPE,
    shadow_rules: { action: 'DENY', policies: { 'istio-ext-authz-ns[foo]-policy[ext]-rule[0]': { permissions: [{ url_path: { path: { prefix: '/secure' } } }], principals: [{ any: true }] } } },
    shadow_rules_stat_prefix: 'istio_ext_authz_',
  },
};

/** ext_authz enabled by the shadow RBAC's effective policy id, as istiod configures it. */
export const ENABLED_METADATA = { filter: 'envoy.filters.http.rbac', path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }], value: { string_match: { prefix: 'istio-ext-authz' } } };
