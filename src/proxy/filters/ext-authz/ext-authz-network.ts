// envoy.filters.network.ext_authz: asks a gRPC authorization service about each new connection
// (CheckRequest with the source/destination addresses, the peer's principal and, when asked, its
// certificate and the TLS session's SNI) before the
// terminal filter gets it; a denial or an error (unless failure_mode_allow) closes the connection.
// Skipped when filter_enabled_metadata does not match the connection's dynamic metadata (Istio
// CUSTOM on TCP: the network rbac filter's `istio_ext_authz_shadow_effective_policy_id`).
// Stats `ext_authz.<stat_prefix>.total|ok|denied|error|failure_mode_allowed|disabled|cx_closed|active`.
import { NETWORK_EXT_AUTHZ_TYPE } from '../../../envoy/index.ts';
import type { DownstreamConnection, NetworkFilterFactory } from '../../network/network-filter.ts';
import { readMetadataMatcher } from '../rbac/rbac-metadata.ts';
import { ALWAYS } from '../../config/fractional-percent.ts';
import { GRPC_CHECK_TIMEOUT_MS, NO_NAMES, readPeerDetails, type ExtAuthzConfig } from './ext-authz-config.ts';
import { readGrpcService } from '../../config/grpc-service.ts';
import { GrpcAuthzService } from './ext-authz-grpc.ts';

const NONE: Readonly<Record<string, string>> = Object.freeze({});

export const networkExtAuthzFactory: NetworkFilterFactory = {
  name: 'envoy.filters.network.ext_authz',
  typeUrls: [NETWORK_EXT_AUTHZ_TYPE],
  terminal: false,
  compile(r, ctx) {
    const statPrefix = r.str('stat_prefix');
    if (!statPrefix) r.issues.error(r.at('stat_prefix'), 'the network ext_authz filter needs a stat_prefix');
    const gs = r.obj('grpc_service');
    if (!gs) r.issues.error(r.at('grpc_service'), 'the network ext_authz filter needs a grpc_service');
    const service = gs ? readGrpcService(gs, 'authorization', GRPC_CHECK_TIMEOUT_MS) : { kind: 'grpc' as const, cluster: '', authority: '', timeoutMs: 0, initialMetadata: [], maxReceiveBytes: 0, skipEnvoyHeaders: false };
    const api = r.str('transport_api_version', 'V3');
    if (api !== 'V3' && api !== 'AUTO') r.issues.error(r.at('transport_api_version'), `only V3 is supported, got ${api}`);
    const fem = r.obj('filter_enabled_metadata');
    const enabledByMetadata = fem ? readMetadataMatcher(fem) : undefined;
    const c: ExtAuthzConfig = {
      service,
      failureModeAllow: r.bool('failure_mode_allow', false),
      failureModeAllowHeaderAdd: false,
      statusOnError: 403,
      clearRouteCache: false,
      validateMutations: false,
      denyAtDisable: { value: false },
      allowedHeaders: NO_NAMES,
      disallowedHeaders: NO_NAMES,
      enabledByMetadata,
      enabled: ALWAYS,
      metadataNamespaces: [],
      ingestMetadata: true,
      statPrefix,
      chargeClusterStats: false,
      rawHeaders: false,
      ...readPeerDetails(r, 'grpc'),
    };
    r.done();
    const authz = new GrpcAuthzService(c, service, ctx.proxy.clusters);
    const stats = ctx.proxy.stats;
    const p = `ext_authz.${statPrefix.replace(/\.$/, '')}.`;
    const s = {
      total: stats.counter(p + 'total'),
      ok: stats.counter(p + 'ok'),
      denied: stats.counter(p + 'denied'),
      error: stats.counter(p + 'error'),
      failureModeAllowed: stats.counter(p + 'failure_mode_allowed'),
      disabled: stats.counter(p + 'disabled'),
      cxClosed: stats.counter(p + 'cx_closed'),
      active: stats.gauge(p + 'active'),
    };
    const check = async (conn: DownstreamConnection, md: Record<string, unknown>): Promise<boolean> => {
      s.total.value++;
      s.active.value++;
      // Hold the client's bytes (Envoy stops reading) until the terminal filter takes the socket.
      conn.socket.pause();
      const ac = new AbortController();
      const onClose = () => ac.abort();
      conn.socket.once('close', onClose);
      try {
        const res = await authz.check({ conn: conn.info, partialBody: false, metadata: md, contextExtensions: NONE }, ac.signal);
        if (res.kind === 'ok') {
          s.ok.value++;
          return true;
        }
        if (res.kind === 'error') {
          s.error.value++;
          if (c.failureModeAllow) {
            s.failureModeAllowed.value++;
            return true;
          }
        } else s.denied.value++;
        s.cxClosed.value++;
        conn.socket.destroy();
        return false;
      } finally {
        s.active.value--;
        conn.socket.off('close', onClose);
      }
    };
    return {
      onConnection(conn) {
        const md = conn.dynamicMetadata ?? {};
        // Synchronously: bytes a listener filter read ahead (proxy_protocol, tls_inspector) flow on
        // the next tick, before a promise's continuation would hand the socket to the next filter.
        if (c.enabledByMetadata && !c.enabledByMetadata(md)) {
          s.disabled.value++;
          return true;
        }
        return check(conn, md);
      },
    };
  },
};
