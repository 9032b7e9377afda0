// Fields that are valid Istio but that Rigging's control plane does not apply (yet): each one is
// a warning with its position, so a configuration never loses an effect silently. Keep this list
// in step with src/xds/translate (a field that becomes supported leaves the list).
import type { FieldPath } from '../source-map.ts';
import type * as T from '../types/networking.ts';
import type { Reporter } from './reporter.ts';

function warn(r: Reporter, path: FieldPath, what: string, effect: string): void {
  r.warn(path, `${what} is not supported by Rigging and has no effect`, effect);
}

export function unsupportedVirtualService(spec: T.VirtualServiceSpec, r: Reporter): void {
  spec.http?.forEach((h, i) => {
    const at = ['spec', 'http', i];
    if (h.fault?.delay?.exponentialDelay !== undefined) warn(r, [...at, 'fault', 'delay', 'exponentialDelay'], 'fault.delay.exponentialDelay (not implemented by Istio either)', 'use fixedDelay');
  });
  for (const kind of ['tcp', 'tls'] as const) {
    spec[kind]?.forEach((route, i) => {
      route.match?.forEach((m, j) => {
        // istiod never reads it: sidecars' matchTCP/matchTLS (pilot/pkg/networking/core/tls.go), gateways' l4SingleMatch (gateway.go).
        if (m.sourceSubnet !== undefined) warn(r, ['spec', kind, i, 'match', j, 'sourceSubnet'], 'match.sourceSubnet (not implemented by Istio either)', 'the match applies to every source');
      });
    });
  }
}

function trafficPolicy(tp: T.TrafficPolicy | undefined, path: FieldPath, r: Reporter): void {
  if (!tp) return;
  const fromFiles = (tp.tls?.mode === 'SIMPLE' || tp.tls?.mode === 'MUTUAL') && !tp.tls.credentialName && !tp.tls.insecureSkipVerify;
  if (tp.tls?.caCrl !== undefined && !fromFiles) warn(r, [...path, 'tls', 'caCrl'], 'tls.caCrl without SIMPLE or MUTUAL verification from files (istiod ignores it with ISTIO_MUTUAL, credentialName or insecureSkipVerify too)', 'the server certificate is not checked against a CRL');
  tp.portLevelSettings?.forEach((p, i) => trafficPolicy(p, [...path, 'portLevelSettings', i], r));
}

export function unsupportedDestinationRule(spec: T.DestinationRuleSpec, r: Reporter): void {
  trafficPolicy(spec.trafficPolicy, ['spec', 'trafficPolicy'], r);
  spec.subsets?.forEach((s, i) => trafficPolicy(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy'], r));
}

export function unsupportedGateway(spec: T.GatewaySpec, r: Reporter): void {
  spec.servers?.forEach((s, i) => {
    // istio/api networking/v1alpha3/gateway.proto marks it "NOT IMPLEMENTED" ($hide_from_docs); istiod's gateway listeners never read it.
    if (s.defaultEndpoint !== undefined) warn(r, ['spec', 'servers', i, 'defaultEndpoint'], 'server.defaultEndpoint (not implemented by Istio either)', 'gateway traffic follows the VirtualServices bound to it');
    if (s.tls?.caCrl !== undefined) ignoredServerCrl(s.tls, ['spec', 'servers', i, 'tls', 'caCrl'], r);
  });
}

/** A server's caCrl checks client certificates from files or the mesh CA; istiod leaves it out elsewhere. */
function ignoredServerCrl(tls: T.ServerTLSSettings, path: FieldPath, r: Reporter): void {
  if (tls.credentialName) warn(r, path, 'tls.caCrl with credentialName (as in Istio)', "the credential's own certificate authority applies, without revocation checks");
  else if (tls.mode !== 'MUTUAL' && tls.mode !== 'OPTIONAL_MUTUAL' && tls.mode !== 'ISTIO_MUTUAL') warn(r, path, `tls.caCrl in ${tls.mode ?? 'SIMPLE'} mode (no client certificate is checked)`, 'nothing is revoked');
}

/** The warnings of one resource kind (nothing for kinds whose fields are all applied). */
export function reportUnsupported(kind: string, spec: unknown, r: Reporter): void {
  switch (kind) {
    case 'VirtualService':
      return unsupportedVirtualService(spec as T.VirtualServiceSpec, r);
    case 'DestinationRule':
      return unsupportedDestinationRule(spec as T.DestinationRuleSpec, r);
    case 'Gateway':
      return unsupportedGateway(spec as T.GatewaySpec, r);
  }
}
