// Istio's DNS name table (NDS, CONTRACTS §6) for a sidecar that captures DNS: every service the
// proxy can see, by host, with its VIP. Kubernetes services carry shortname + namespace so the
// sidecar resolves `svc`, `svc.ns` and `svc.ns.svc` too; ServiceEntry hosts (wildcards as
// `*.suffix`) are `External`. Hosts without an address (0.0.0.0: headless, wildcard without
// addresses) are left out, so their names go to the upstream resolver.
import type { EnvoyJson } from '../../envoy/index.ts';
import type { Proxy } from '../../model/proxy.ts';
import type { PushContext } from '../../model/push-context.ts';

interface NameInfo {
  ips: string[];
  registry: 'Kubernetes' | 'External';
  shortname?: string;
  namespace?: string;
}

/** The proxy's name table, or none for proxies that do not capture DNS (explicit mode, gateways). */
export function buildNameTable(push: PushContext, proxy: Proxy): EnvoyJson[] {
  if (proxy.interceptionMode === 'NONE' || proxy.type === 'router') return [];
  const table: Record<string, NameInfo> = {};
  for (const s of push.visibleServices(proxy)) {
    if (!s.address || s.address === '0.0.0.0' || s.address === '::') continue;
    const prev = table[s.hostname];
    if (prev) {
      if (!prev.ips.includes(s.address)) prev.ips.push(s.address);
      continue;
    }
    table[s.hostname] = s.source === 'Service' ? { ips: [s.address], registry: 'Kubernetes', shortname: s.name, namespace: s.namespace } : { ips: [s.address], registry: 'External' };
  }
  return [{ table }];
}
