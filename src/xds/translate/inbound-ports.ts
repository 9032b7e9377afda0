// The ports a sidecar serves inbound: the workload's ports (protocol from the Services that target
// them), or, when its Sidecar resource lists `ingress` listeners, exactly those — with their
// protocol, where the traffic goes (defaultEndpoint), whether the listener binds for real
// (captureMode NONE, on `bind`), TLS termination for callers outside the mesh, and connection pool.
import type { ConnectionPoolSettings, IstioIngressListener, ServerTLSSettings } from '../../api/index.ts';
import { warnOnce } from '../../model/config-warnings.ts';
import type { PushContext } from '../../model/push-context.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { Service, ServicePort } from '../../model/service.ts';
import { normalizeProtocol, protocolOf, selectorMatches } from '../../model/service.ts';

/** Istio's prefix of a Unix domain socket address (model.UnixAddressPrefix): `unix:///path`, `unix://@abstract`. */
export const UNIX_PREFIX = 'unix://';

export interface InboundPort {
  port: number;
  /** Where the application listens (`127.0.0.1:appPort` unless `endpointAddress` says otherwise). */
  appPort: number;
  protocol: ServicePort['protocol'];
  name?: string;
  /** Sidecar ingress defaultEndpoint `0.0.0.0:P`: the workload's own address. */
  endpointAddress?: string;
  /** Sidecar ingress defaultEndpoint `unix:///path` (or `unix://@name`): the application's Unix domain socket, an Envoy pipe address. */
  pipe?: string;
  /** Sidecar ingress captureMode NONE: a listener bound on `bind` (default 0.0.0.0) instead of a virtualInbound chain. */
  bind?: string;
  /** Sidecar ingress `bind`, captured too: as istiod, it names the HTTP stat prefix (`inbound_<bind>_<port>`). */
  statBind?: string;
  tls?: ServerTLSSettings;
  connectionPool?: ConnectionPoolSettings;
  /** The first service whose port targets this one (Istio's instance hostname: names inbound spans). */
  host?: string;
}

/** The workload ports a sidecar serves inbound (explicit mode: those with an inbound port), with their protocol. */
export function inboundPorts(push: PushContext, proxy: Proxy): InboundPort[] {
  const sidecar = push.sidecarFor(proxy);
  if (sidecar?.spec.ingress?.length) {
    const where = `Sidecar ${sidecar.metadata.namespace}/${sidecar.metadata.name}`;
    return sidecar.spec.ingress.flatMap((l, i) => ingressPort(push, proxy, l, `${where} ingress[${i}]`, sidecar.spec.inboundConnectionPool) ?? []);
  }
  const pool = sidecar?.spec.inboundConnectionPool;
  const out: InboundPort[] = [];
  for (const wp of proxy.workloadPorts) {
    const proto = inboundProtocol(push, proxy, wp.port, wp.name, wp.protocol);
    const host = targetingServices(push, proxy, wp.port, wp.name).next().value?.svc.hostname;
    if (proxy.explicit) {
      const appPort = proxy.explicit.appPorts[String(wp.port)];
      if (proxy.explicit.inboundPorts[String(wp.port)] === undefined || appPort === undefined) continue;
      out.push({ port: wp.port, appPort, protocol: proto, name: wp.name, connectionPool: pool, host });
    } else out.push({ port: wp.port, appPort: wp.port, protocol: proto, name: wp.name, connectionPool: pool, host });
  }
  return out;
}

function ingressPort(push: PushContext, proxy: Proxy, l: IstioIngressListener, where: string, pool: ConnectionPoolSettings | undefined): InboundPort | undefined {
  const port = l.port.number;
  if (port === undefined) return undefined;
  const protocol = l.port.protocol ? normalizeProtocol(l.port.protocol) : inboundProtocol(push, proxy, port, l.port.name, undefined);
  let appPort = proxy.explicit ? proxy.explicit.appPorts[String(port)] : port;
  let endpointAddress: string | undefined;
  let pipe: string | undefined;
  const de = l.defaultEndpoint;
  if (de?.startsWith(UNIX_PREFIX)) pipe = de.slice(UNIX_PREFIX.length);
  else if (de) {
    const i = de.lastIndexOf(':');
    appPort = Number(de.slice(i + 1));
    const host = de.slice(0, i);
    if (host === '0.0.0.0' || host === '[::]') endpointAddress = proxy.ipAddresses[0];
  }
  if (proxy.explicit && (proxy.explicit.inboundPorts[String(port)] === undefined || (appPort === undefined && !pipe))) {
    warnOnce('lds', `${where}: port ${port} has no inbound port in this explicit-mode proxy (RIG_EXPLICIT.inboundPorts); not served`);
    return undefined;
  }
  if (proxy.explicit && (l.bind || l.captureMode)) warnOnce('lds', `${where}: bind and captureMode do not apply in explicit mode (the proxy listens on its inbound port ${proxy.explicit.inboundPorts[String(port)]})`);
  const bind = !proxy.explicit && l.captureMode === 'NONE' ? l.bind || '0.0.0.0' : undefined;
  if (l.tls && l.tls.mode !== 'SIMPLE' && l.tls.mode !== 'MUTUAL') warnOnce('lds', `${where}: tls mode ${l.tls.mode ?? '(unset)'} is not supported on sidecar ingress (Istio supports SIMPLE and MUTUAL); Istio mTLS applies`);
  const tls = l.tls?.mode === 'SIMPLE' || l.tls?.mode === 'MUTUAL' ? l.tls : undefined;
  const host = targetingServices(push, proxy, port, l.port.name).next().value?.svc.hostname;
  const statBind = proxy.explicit ? undefined : l.bind || undefined;
  return { port, appPort: appPort ?? port, protocol, name: l.port.name, endpointAddress, pipe, bind, statBind, tls, connectionPool: l.connectionPool ?? pool, host };
}

/** Istio takes the protocol of an inbound port from the services that target it; then from the port's own declaration. */
function inboundProtocol(push: PushContext, proxy: Proxy, port: number, name: string | undefined, declared: string | undefined): ServicePort['protocol'] {
  for (const { sp } of targetingServices(push, proxy, port, name)) if (sp.protocol !== 'UNKNOWN') return sp.protocol;
  const explicitProto = declared && declared.toUpperCase() !== 'TCP' ? declared : undefined;
  return protocolOf(name, undefined, explicitProto);
}

/** The services selecting this proxy whose ports target workload port `port` (named `name`). */
function* targetingServices(push: PushContext, proxy: Proxy, port: number, name: string | undefined): Generator<{ svc: Service; sp: ServicePort }> {
  for (const svc of push.servicesIn(proxy.namespace)) {
    if (!svc.selector || !selectorMatches(svc.selector, proxy.labels)) continue;
    for (const sp of svc.ports) {
      const target = typeof sp.targetPort === 'number' ? sp.targetPort : typeof sp.targetPort === 'string' ? (sp.targetPort === name ? port : Number(sp.targetPort)) : sp.port;
      if (target === port) yield { svc, sp };
    }
  }
}
