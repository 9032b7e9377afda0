// envoy.filters.network.rbac: the same engine on a connection's L4 attributes (peer identity,
// addresses, ports, SNI) and its dynamic metadata (e.g. proxy_protocol TLV rules); header/path
// rules never match. A denial closes the connection before the terminal filter sees it.
// Stats: <stat_prefix>rbac.allowed|denied|shadow_* (Istio: "tcp.").
import { NETWORK_RBAC_TYPE } from '../../envoy/index.ts';
import { evaluateRbac, readRbacConfig } from '../filters/rbac/rbac-filter.ts';
import type { NetworkFilterFactory } from './network-filter.ts';

const NO_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});

export const rbacNetworkFilterFactory: NetworkFilterFactory = {
  name: 'envoy.filters.network.rbac',
  typeUrls: [NETWORK_RBAC_TYPE],
  terminal: false,
  compile(r, ctx) {
    const statPrefix = r.str('stat_prefix');
    if (!statPrefix) r.issues.error(r.at('stat_prefix'), 'the network RBAC filter needs a stat_prefix');
    const c = readRbacConfig(r, ctx.proxy.stats, statPrefix);
    const mode = r.str('enforcement_type', 'ONE_TIME_ON_FIRST_BYTE');
    if (mode !== 'ONE_TIME_ON_FIRST_BYTE') r.issues.error(r.at('enforcement_type'), `enforcement_type ${mode} is not supported by rig proxy (ONE_TIME_ON_FIRST_BYTE only)`);
    r.done();
    return {
      onConnection(conn) {
        const out = evaluateRbac(c, { conn: conn.info, remoteIp: conn.info.remoteAddress, metadata: conn.dynamicMetadata ?? NO_METADATA });
        if (Object.keys(out.metadata).length) {
          const md = (conn.dynamicMetadata ??= {});
          md['envoy.filters.network.rbac'] = { ...(md['envoy.filters.network.rbac'] as object | undefined), ...out.metadata };
        }
        if (out.allowed) return true;
        conn.socket.destroy();
        return false;
      },
    };
  },
};
