// Two sources feed the proxy's secrets: the xDS client (SDS over ADS, e.g. gateway credentials
// `kubernetes://<name>`) and the workload identity (`default`, `ROOTCA`, made in process as
// Istio's agent does). Each hands over its own complete set; the proxy gets their union.
import { SECRET_TYPE, type EnvoyJson } from '../../envoy/index.ts';
import type { XdsSink } from './xds-sink.ts';

export interface SecretSinks {
  /** For the XdsClient. */
  xds: XdsSink;
  /** For the IdentityManager. */
  identity: XdsSink;
}

export function shareSecrets(sink: XdsSink): SecretSinks {
  const sets = { xds: new Map<string, EnvoyJson>() as ReadonlyMap<string, EnvoyJson>, identity: new Map<string, EnvoyJson>() as ReadonlyMap<string, EnvoyJson> };
  const source = (own: keyof typeof sets, other: keyof typeof sets): XdsSink => ({
    apply(typeUrl, resources, version) {
      if (typeUrl !== SECRET_TYPE) return sink.apply(typeUrl, resources, version);
      const clash = [...resources.keys()].filter((n) => sets[other].has(n));
      if (clash.length) return clash.map((n) => `secret "${n}" is also provided by the ${other === 'identity' ? 'workload identity' : 'control plane'}`);
      const errors = sink.apply(SECRET_TYPE, new Map([...sets[other], ...resources]), version);
      if (errors.length === 0) sets[own] = resources;
      return errors;
    },
    refused: (typeUrl) => sink.refused?.(typeUrl),
    ackAfter: (typeUrl) => sink.ackAfter?.(typeUrl),
    routeNamesInUse: () => sink.routeNamesInUse?.() ?? new Set(),
    extensionNamesInUse: () => sink.extensionNamesInUse?.() ?? new Set(),
    watchRouteNamesInUse: (changed) => sink.watchRouteNamesInUse?.(changed),
  });
  return { xds: source('xds', 'identity'), identity: source('identity', 'xds') };
}
