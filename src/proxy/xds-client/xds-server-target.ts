// Where and how to reach the control plane, read from the bootstrap's dynamic_resources:
// ads_config (state-of-the-world GRPC) → envoy_grpc.cluster_name → that static cluster's address
// and its TLS transport socket (trusted CA, SNI, optional client certificate), or google_grpc.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { UPSTREAM_TLS_TYPE, type EnvoyJson } from '../../envoy/index.ts';
import { RigError } from '../../core/errors.ts';

type Json = Record<string, unknown>;

export interface XdsServerTarget {
  /** gRPC target, e.g. `dns:127.0.0.1:15010` or `unix:/path`. */
  target: string;
  /** For logs and the admin state. */
  display: string;
  credentials: grpc.ChannelCredentials;
  /** Whether the channel uses TLS (tokens are sent only then). */
  secure: boolean;
  channelOptions: grpc.ChannelOptions;
  /** Problems that do not stop the client but that the operator must know (unsupported fields). */
  warnings: string[];
}

function obj(v: unknown): Json | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

function fail(path: string, message: string): never {
  throw new RigError('MESH_ERR_INVALID_CONFIG', `bootstrap ${path}: ${message}`);
}

/** Reads an Envoy DataSource (filename, inline_string, inline_bytes). */
function dataSource(v: unknown, path: string): Buffer | undefined {
  const ds = obj(v);
  if (!ds) return undefined;
  if (typeof ds.filename === 'string') {
    try {
      return fs.readFileSync(ds.filename);
    } catch (err) {
      fail(`${path}.filename`, `cannot read ${ds.filename}: ${(err as Error).message}`);
    }
  }
  if (typeof ds.inline_string === 'string') return Buffer.from(ds.inline_string);
  if (typeof ds.inline_bytes === 'string') return Buffer.from(ds.inline_bytes, 'base64');
  fail(path, 'expected filename, inline_string or inline_bytes');
}

function tlsCredentials(socket: Json, path: string, warnings: string[]): { credentials: grpc.ChannelCredentials; sni?: string } {
  const typed = obj(socket.typed_config);
  if (!typed || typed['@type'] !== UPSTREAM_TLS_TYPE) fail(`${path}.typed_config`, `only ${UPSTREAM_TLS_TYPE} is supported for the xDS cluster`);
  const common = obj(typed.common_tls_context) ?? {};
  const validation = obj(common.validation_context);
  if (obj(common.validation_context_sds_secret_config) || obj(common.combined_validation_context)) {
    fail(`${path}.typed_config.common_tls_context`, 'the xDS cluster needs validation_context.trusted_ca (SDS cannot serve it before xDS is up)');
  }
  const ca = dataSource(validation?.trusted_ca, `${path}.typed_config.common_tls_context.validation_context.trusted_ca`);
  const certs = Array.isArray(common.tls_certificates) ? common.tls_certificates : [];
  const first = obj(certs[0]);
  const cert = first ? dataSource(first.certificate_chain, `${path}.typed_config.common_tls_context.tls_certificates[0].certificate_chain`) : undefined;
  const key = first ? dataSource(first.private_key, `${path}.typed_config.common_tls_context.tls_certificates[0].private_key`) : undefined;
  if (Array.isArray(common.tls_certificate_sds_secret_configs) && common.tls_certificate_sds_secret_configs.length) {
    warnings.push(`${path}.typed_config.common_tls_context.tls_certificate_sds_secret_configs is not supported for the xDS connection; no client certificate is sent`);
  }
  const sni = typeof typed.sni === 'string' && typed.sni ? typed.sni : undefined;
  return { credentials: grpc.credentials.createSsl(ca ?? null, key ?? null, cert ?? null), sni };
}

/** Resolves the ADS server from a v3 bootstrap; throws a RigError naming the field when it cannot. */
export function xdsServerTarget(bootstrap: EnvoyJson): XdsServerTarget {
  const warnings: string[] = [];
  const dyn = obj(bootstrap.dynamic_resources) ?? fail('dynamic_resources', 'missing: nothing tells the proxy where the control plane is');
  const ads = obj(dyn.ads_config) ?? fail('dynamic_resources.ads_config', 'missing: only ADS is supported for dynamic resources');
  const apiType = ads.api_type ?? 'GRPC';
  if (apiType !== 'GRPC') fail('dynamic_resources.ads_config.api_type', `${String(apiType)} is not supported; use GRPC (state of the world)`);
  for (const key of ['cds_config', 'lds_config'] as const) {
    const src = obj(dyn[key]);
    if (src && !obj(src.ads)) warnings.push(`dynamic_resources.${key} is not {ads: {}}; Rigging fetches ${key === 'cds_config' ? 'clusters' : 'listeners'} over ADS only`);
  }
  const services = Array.isArray(ads.grpc_services) ? ads.grpc_services : [];
  const svc = obj(services[0]) ?? fail('dynamic_resources.ads_config.grpc_services', 'expected one gRPC service');
  if (services.length > 1) warnings.push('dynamic_resources.ads_config.grpc_services: only the first entry is used');
  const google = obj(svc.google_grpc);
  if (google) {
    const uri = typeof google.target_uri === 'string' && google.target_uri ? google.target_uri : fail('dynamic_resources.ads_config.grpc_services[0].google_grpc.target_uri', 'missing');
    return { target: uri, display: uri, credentials: grpc.credentials.createInsecure(), secure: false, channelOptions: {}, warnings };
  }
  const clusterName = obj(svc.envoy_grpc)?.cluster_name;
  if (typeof clusterName !== 'string' || !clusterName) fail('dynamic_resources.ads_config.grpc_services[0]', 'expected envoy_grpc.cluster_name or google_grpc.target_uri');
  const clusters = Array.isArray(obj(bootstrap.static_resources)?.clusters) ? (obj(bootstrap.static_resources)!.clusters as unknown[]) : [];
  const index = clusters.findIndex((c) => obj(c)?.name === clusterName);
  if (index < 0) fail('dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name', `no static cluster named "${clusterName}"`);
  const path = `static_resources.clusters[${index}]`;
  const cluster = obj(clusters[index])!;
  const la = obj(cluster.load_assignment);
  const locality = obj(Array.isArray(la?.endpoints) ? la.endpoints[0] : undefined);
  const ep = obj(obj(Array.isArray(locality?.lb_endpoints) ? locality.lb_endpoints[0] : undefined)?.endpoint);
  const address = obj(ep?.address) ?? fail(`${path}.load_assignment`, 'expected endpoints[0].lb_endpoints[0].endpoint.address');
  let target: string;
  const sock = obj(address.socket_address);
  const pipe = obj(address.pipe);
  if (sock) {
    const host = sock.address;
    const port = sock.port_value;
    if (typeof host !== 'string' || !host) fail(`${path}.load_assignment...socket_address.address`, 'missing');
    if (typeof port !== 'number' || port <= 0 || port > 65535) fail(`${path}.load_assignment...socket_address.port_value`, `invalid port ${String(port)}`);
    target = `dns:${host.includes(':') ? `[${host}]` : host}:${port}`;
  } else if (pipe && typeof pipe.path === 'string') {
    target = `unix:${pipe.path}`;
  } else {
    fail(`${path}.load_assignment...endpoint.address`, 'expected socket_address or pipe');
  }
  const socket = obj(cluster.transport_socket);
  if (socket && socket.name !== 'envoy.transport_sockets.raw_buffer' && obj(socket.typed_config)) {
    const { credentials, sni } = tlsCredentials(socket, `${path}.transport_socket`, warnings);
    const channelOptions: grpc.ChannelOptions = sni ? { 'grpc.ssl_target_name_override': sni, 'grpc.default_authority': sni } : {};
    return { target, display: `${target.replace(/^dns:/, '')} (TLS)`, credentials, secure: true, channelOptions, warnings };
  }
  return { target, display: target.replace(/^dns:/, ''), credentials: grpc.credentials.createInsecure(), secure: false, channelOptions: {}, warnings };
}
