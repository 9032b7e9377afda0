// Observability in the proxy: Istio's stats filter (HTTP and TCP), the HTTP and TCP peer metadata
// exchanges and the OpenTelemetry-based Zipkin/OTLP tracer. (Access log filters and extra format
// commands plug into the core's access loggers: access-log-filter.ts, access-log-operators.ts.)
import { registerHttpFilter } from '../filters/registry.ts';
import { registerNetworkFilter } from '../network/network-filter.ts';
import { httpStatsFilterFactory, tcpStatsFilterFactory } from './stats-filter.ts';
import { metadataExchangeAliasFactory, peerMetadataFilterFactory } from './peer-metadata-filter.ts';
import { setupTracers } from './otel-tracer.ts';
import { tcpMetadataExchangeFactory, upstreamMetadataExchangeFactory } from './tcp-metadata-exchange.ts';
import { registerClusterHook } from '../upstream/cluster-hooks.ts';

export { attachTelemetry, telemetryOf, ProxyTelemetry } from './proxy-telemetry.ts';
export { createStatsHandler, prometheusText, PROMETHEUS_CONTENT_TYPE } from './prometheus-endpoint.ts';
export { flushSpans } from './span-export.ts';

export function setup(): void {
  registerHttpFilter(httpStatsFilterFactory);
  registerHttpFilter(peerMetadataFilterFactory);
  registerHttpFilter(metadataExchangeAliasFactory);
  registerNetworkFilter(tcpStatsFilterFactory);
  registerNetworkFilter(tcpMetadataExchangeFactory);
  registerClusterHook(upstreamMetadataExchangeFactory);
  setupTracers();
}
