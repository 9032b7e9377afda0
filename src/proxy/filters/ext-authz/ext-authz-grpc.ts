// The gRPC authorization service: envoy.service.auth.v3.Authorization/Check, a unary call through
// the service's cluster as Envoy's envoy_grpc client makes it (cluster-grpc: the cluster's load
// balancer, pool, protocol and transport socket, :authority, grpc-timeout, initial_metadata).
// CheckRequest carries AttributeContext (source/destination address and principal — URI SAN, else
// DNS SAN, else subject of each side's certificate —, source service from
// x-envoy-downstream-service-cluster, a connection's SNI as destination service, with
// include_peer_certificate the source certificate, with include_tls_session the SNI; request.http
// id/method/headers/path/host/scheme/protocol/body); status OK allows with ok_response's header
// mutations, any other status denies with denied_response; a failed call (transport error,
// timeout, non-OK grpc-status, OK without a CheckResponse) is an error.
import type { X509Certificate } from 'node:crypto';
import { envoyEnum } from '../../../envoy/index.ts';
import { rfc2253, sans } from '../../http/xfcc.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { callGrpcService, type GrpcMethod } from '../../upstream/cluster-grpc.ts';
import type { HeaderMap } from '../filter.ts';
import type { ExtAuthzConfig } from './ext-authz-config.ts';
import type { GrpcServiceConfig } from '../../config/grpc-service.ts';
import { checkHeaders, HeaderAction, mutateHeaders, type AuthzService, type CheckInput, type CheckResult, type HeaderMutation, type HeaderPair } from './ext-authz-check.ts';

const CHECK: GrpcMethod = { path: '/envoy.service.auth.v3.Authorization/Check', request: 'envoy.service.auth.v3.CheckRequest', response: 'envoy.service.auth.v3.CheckResponse' };

type Json = Record<string, unknown>;

/** AttributeContext.Peer.principal from a certificate, as Envoy: its first URI SAN, else first DNS SAN, else its subject (RFC 2253). */
function certificatePrincipal(cert: X509Certificate): string {
  const san = cert.subjectAltName;
  return sans(san, 'URI')[0] ?? sans(san, 'DNS')[0] ?? rfc2253(cert.subject);
}

function socketAddress(address: string, port: number): Json {
  return { socket_address: { address: address.startsWith('::ffff:') ? address.slice(7) : address, port_value: port } };
}

interface HeaderOption {
  header?: { key?: string; value?: string; raw_value?: string };
  append?: boolean;
  append_action?: string | number;
}

const ACTIONS: Readonly<Record<string, HeaderAction>> = {
  APPEND_IF_EXISTS_OR_ADD: HeaderAction.Append,
  ADD_IF_ABSENT: HeaderAction.AddIfAbsent,
  OVERWRITE_IF_EXISTS_OR_ADD: HeaderAction.Set,
  OVERWRITE_IF_EXISTS: HeaderAction.OverwriteIfExists,
};

/**
 * HeaderValueOption list → mutations (ext_authz: unset append means Set). Pseudo headers and Host
 * stay in: the filter decides (they can change the request head; mutation rules). Returns whether
 * an unknown append_action was seen.
 */
function headerOptions(list: unknown, out: HeaderMutation[]): boolean {
  let invalid = false;
  for (const o of (Array.isArray(list) ? list : []) as HeaderOption[]) {
    const key = o.header?.key?.toLowerCase();
    if (!key) continue;
    const value = o.header?.value ?? (o.header?.raw_value ? Buffer.from(o.header.raw_value, 'base64').toString() : '');
    let action: HeaderAction = o.append === true ? HeaderAction.Append : HeaderAction.Set;
    if (o.append === undefined && o.append_action !== undefined) {
      const a = ACTIONS[String(o.append_action)];
      if (a === undefined) invalid = true;
      action = a ?? HeaderAction.Set;
    }
    out.push({ key, value, action });
  }
  return invalid;
}

function statusCode(code: unknown, def: number): number {
  if (typeof code === 'number') return code || def;
  if (typeof code === 'string') return envoyEnum('envoy.type.v3.StatusCode').values[code] || def;
  return def;
}

export class GrpcAuthzService implements AuthzService {
  private readonly c: ExtAuthzConfig;
  private readonly s: GrpcServiceConfig;
  private readonly clusters: ClusterManager;

  constructor(c: ExtAuthzConfig, s: GrpcServiceConfig, clusters: ClusterManager) {
    this.c = c;
    this.s = s;
    this.clusters = clusters;
  }

  private checkRequest(input: CheckInput): Json {
    const { head, conn } = input;
    const filterMetadata: Json = {};
    for (const ns of this.c.metadataNamespaces) if (input.metadata[ns] !== undefined) filterMetadata[ns] = input.metadata[ns];
    // The client certificate is parsed only when its PEM is sent or it has no URI SAN.
    const peer = conn.peerCertificate && (this.c.includePeerCertificate || conn.peerPrincipal === undefined) ? conn.peerCertificate() : undefined;
    const source: Json = { address: socketAddress(conn.remoteAddress, conn.remotePort), principal: conn.peerPrincipal ?? (peer ? certificatePrincipal(peer) : '') };
    if (this.c.includePeerCertificate && peer) source.certificate = encodeURIComponent(peer.toString());
    const service = head?.headers['x-envoy-downstream-service-cluster'];
    if (service) source.service = Array.isArray(service) ? service[0] : service;
    const local = conn.localCertificate?.();
    const destination: Json = { address: socketAddress(conn.localAddress, conn.localPort), principal: local ? certificatePrincipal(local) : '' };
    // A connection check names the server name the client asked for as the destination service.
    if (!head && conn.sni) destination.service = conn.sni;
    const attributes: Json = {
      source,
      destination,
      context_extensions: input.contextExtensions,
      metadata_context: { filter_metadata: filterMetadata },
    };
    // As Envoy: present (possibly empty) for any TLS connection, with the SNI the client sent.
    if (this.c.includeTlsSession && conn.tls) attributes.tls_session = conn.sni ? { sni: conn.sni } : {};
    if (!head) return { attributes };
    const http: Json = {
      id: input.requestId ?? '',
      method: head.method,
      path: head.path,
      host: head.authority,
      scheme: head.scheme,
      protocol: input.protocol,
      size: input.size ?? -1,
    };
    const headers = checkHeaders(this.c, head, undefined);
    if (input.body) headers['x-envoy-auth-partial-body'] = String(input.partialBody);
    // encode_raw_headers: header_map keeps repeated headers apart, values as bytes.
    if (this.c.rawHeaders) http.header_map = { headers: Object.entries(headers).flatMap(([key, v]) => (Array.isArray(v) ? v : [v]).map((x) => ({ key, raw_value: Buffer.from(x, 'latin1').toString('base64') }))) };
    else http.headers = headers;
    if (input.body) {
      if (this.c.body?.packAsBytes) http.raw_body = input.body.toString('base64');
      else http.body = input.body.toString();
    }
    attributes.request = { time: new Date().toISOString(), http };
    return { attributes };
  }

  async check(input: CheckInput, signal: AbortSignal): Promise<CheckResult> {
    const answer = await callGrpcService(this.clusters, this.s, CHECK, this.checkRequest(input), this.s.timeoutMs, signal);
    if ('error' in answer) return { kind: 'error', message: answer.error };
    const r = answer.response as Json;
    const dynamicMetadata = this.c.ingestMetadata ? (r.dynamic_metadata as Json | undefined) : undefined;
    const code = Number((r.status as Json | undefined)?.code ?? 0);
    if (code === 0) {
      const ok = (r.ok_response ?? {}) as Json;
      const headers: HeaderMutation[] = [];
      const response: HeaderMutation[] = [];
      const invalidRequest = headerOptions(ok.headers, headers);
      const invalidAction = headerOptions(ok.response_headers_to_add, response) || invalidRequest;
      const remove = ((ok.headers_to_remove ?? []) as string[]).map((h) => h.toLowerCase()).filter((h) => h);
      const querySet = ((ok.query_parameters_to_set ?? []) as { key?: string; value?: string }[]).filter((q) => q.key).map((q): HeaderPair => [q.key!, q.value ?? '']);
      const queryRemove = (ok.query_parameters_to_remove ?? []) as string[];
      // The deprecated ok_response.dynamic_metadata overrides CheckResponse.dynamic_metadata.
      const metadata = this.c.ingestMetadata ? ((ok.dynamic_metadata as Json | undefined) ?? dynamicMetadata) : undefined;
      return { kind: 'ok', headers, remove, querySet, queryRemove, response, invalidAction, dynamicMetadata: metadata };
    }
    const denied = (r.denied_response ?? {}) as Json;
    const mutations: HeaderMutation[] = [];
    headerOptions(denied.headers, mutations);
    const headers2: HeaderMap = {};
    for (const m of mutations) if (m.key[0] !== ':') mutateHeaders(headers2, m);
    return { kind: 'denied', status: statusCode((denied.status as Json | undefined)?.code, 403), headers: headers2, body: String(denied.body ?? ''), dynamicMetadata };
  }
}
