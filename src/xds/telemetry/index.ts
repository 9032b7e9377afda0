// Telemetry in generated listeners: the `stats` HTTP filter stage (istio.stats), an HCM
// decorator adding the peer metadata filter first in the chain, access_log entries and the
// tracing block, and the istio.stats network filter for inbound TCP chains.
import type { EnvoyJson } from '../../envoy/index.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { HcmDecorator, HttpFilterStage } from '../translate/http-filters.ts';
import { accessLogEntries, modeOf, peerMetadataFilter, statsFilterConfig, tracingConfig } from './telemetry-config.ts';

export const statsStage: HttpFilterStage = {
  name: 'stats',
  build(ctx) {
    const cfg = statsFilterConfig(ctx.push, ctx.proxy, modeOf(ctx.kind));
    return cfg ? [{ name: 'istio.stats', typed_config: cfg }] : [];
  },
};

export const telemetryDecorator: HcmDecorator = (ctx, hcm) => {
  const mode = modeOf(ctx.kind);
  const filters = hcm.http_filters as EnvoyJson[];
  // Istio runs the metadata exchange first, so that also requests denied by authz carry the peer's labels.
  if (ctx.kind !== 'gateway' || filters.some((f) => f.name === 'istio.stats')) filters.unshift(peerMetadataFilter(mode));
  const logs = accessLogEntries(ctx.push, ctx.proxy, mode);
  if (logs.length) hcm.access_log = [...((hcm.access_log as EnvoyJson[] | undefined) ?? []), ...logs];
  const tracing = tracingConfig(ctx.push, ctx.proxy, mode);
  if (tracing) hcm.tracing = tracing;
};

/** The tcp_proxy filter of an inbound chain with the Telemetry/mesh access logs added. */
export function withTcpAccessLogs(push: PushContext, proxy: Proxy, tcpProxy: EnvoyJson): EnvoyJson {
  const logs = accessLogEntries(push, proxy, 'SERVER');
  if (!logs.length) return tcpProxy;
  return { ...tcpProxy, typed_config: { ...(tcpProxy.typed_config as EnvoyJson), access_log: logs } };
}

/** Network filters for an inbound TCP chain (before tcp_proxy). */
export function tcpTelemetryFilters(push: PushContext, proxy: Proxy): EnvoyJson[] {
  const cfg = statsFilterConfig(push, proxy, 'SERVER');
  return cfg ? [{ name: 'istio.stats', typed_config: cfg }] : [];
}
