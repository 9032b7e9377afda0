// Control-plane metrics with istiod's names (pilot_*), on a registry of their own.
import client from 'prom-client';

export interface ControlPlaneMetrics {
  registry: client.Registry;
  xdsConnected: client.Gauge<'version'>;
  pushes: client.Counter<'type'>;
  pushTime: client.Histogram<'type'>;
  convergence: client.Histogram;
  rejects: client.Counter<'type'>;
  internalErrors: client.Counter;
  expiredNonce: client.Counter<'type'>;
  pushTriggers: client.Counter<'type'>;
  pushContextInit: client.Histogram;
  configSize: client.Histogram<'type'>;
  services: client.Gauge;
  virtualServices: client.Gauge;
  destinationRuleSubsets: client.Gauge;
  endpoints: client.Gauge;
  configEvents: client.Counter<'type' | 'event'>;
  configErrors: client.Gauge;
}

/** `configErrors` reports the config store's current number of rejected problems. */
export function createMetrics(configErrors?: () => number): ControlPlaneMetrics {
  const registry = new client.Registry();
  const registers = [registry];
  const m: ControlPlaneMetrics = {
    registry,
    xdsConnected: new client.Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', labelNames: ['version'], registers }),
    pushes: new client.Counter({ name: 'pilot_xds_pushes', help: 'Pilot build and send errors for lds, rds, cds and eds.', labelNames: ['type'], registers }),
    pushTime: new client.Histogram({ name: 'pilot_xds_push_time', help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds.', labelNames: ['type'], buckets: [0.001, 0.01, 0.1, 1, 3, 5, 10, 20, 30], registers }),
    convergence: new client.Histogram({ name: 'pilot_proxy_convergence_time', help: 'Delay in seconds between config change and a proxy receiving all required configuration.', buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30], registers }),
    rejects: new client.Counter({ name: 'pilot_total_xds_rejects', help: 'Total number of XDS responses from pilot rejected by proxy.', labelNames: ['type'], registers }),
    internalErrors: new client.Counter({ name: 'pilot_total_xds_internal_errors', help: 'Total number of internal XDS errors in pilot.', registers }),
    expiredNonce: new client.Counter({ name: 'pilot_xds_expired_nonce', help: 'Total number of XDS requests with an expired nonce.', labelNames: ['type'], registers }),
    pushTriggers: new client.Counter({ name: 'pilot_push_triggers', help: 'Total number of times a push was triggered, labeled by reason for the push.', labelNames: ['type'], registers }),
    pushContextInit: new client.Histogram({ name: 'pilot_pushcontext_init_seconds', help: 'Total time in seconds Pilot takes to init pushContext.', buckets: [0.01, 0.1, 0.5, 1, 3, 5], registers }),
    configSize: new client.Histogram({ name: 'pilot_xds_config_size_bytes', help: 'Distribution of configuration sizes pushed to clients', labelNames: ['type'], buckets: [1, 10000, 1000000, 4000000, 10000000, 40000000], registers }),
    services: new client.Gauge({ name: 'pilot_services', help: 'Total services known to pilot.', registers }),
    virtualServices: new client.Gauge({ name: 'pilot_virt_services', help: 'Total virtual services known to pilot.', registers }),
    destinationRuleSubsets: new client.Gauge({ name: 'pilot_destrule_subsets', help: 'Duplicate subsets across destination rules for same host', registers }),
    endpoints: new client.Gauge({ name: 'pilot_endpoints', help: 'Total endpoints known to the control plane (Rigging).', registers }),
    configEvents: new client.Counter({ name: 'pilot_k8s_cfg_events', help: 'Events from the config store.', labelNames: ['type', 'event'], registers }),
    configErrors: new client.Gauge({ name: 'pilot_total_rejected_configs', help: 'Configuration problems (errors) currently rejected by the config store.', registers, collect() {
        if (configErrors) this.set(configErrors());
      } }),
  };
  return m;
}
