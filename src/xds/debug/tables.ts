// istioctl-shaped tables for proxy-status and proxy-config, from /debug/syncz rows and Envoy
// ConfigDumps (the control plane's view or a proxy's own admin /config_dump: same shape).
import { X509Certificate } from 'node:crypto';
import type { EnvoyJson } from '../../envoy/index.ts';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function proxyStatusTable(rows: EnvoyJson[]): string {
  const sorted = [...rows].sort((a, b) => String(a.proxy).localeCompare(String(b.proxy)));
  return table(
    ['NAME', 'CLUSTER', 'CDS', 'LDS', 'EDS', 'RDS', 'ECDS', 'ISTIOD', 'VERSION'],
    sorted.map((r) => [String(r.proxy), String(r.cluster_id), String(r.cluster_status), String(r.listener_status), String(r.endpoint_status), String(r.route_status), String(r.extension_config_status ?? 'NOT SENT'), String(r.istiod), String(r.proxy_version || '-')]),
  );
}

function section(dump: EnvoyJson, kind: string): EnvoyJson {
  return ((dump.configs as EnvoyJson[] | undefined) ?? []).find((c) => String(c['@type']).endsWith(`.${kind}`)) ?? {};
}

export function clusterList(dump: EnvoyJson): EnvoyJson[] {
  const s = section(dump, 'ClustersConfigDump');
  return [...((s.static_clusters as EnvoyJson[]) ?? []), ...((s.dynamic_active_clusters as EnvoyJson[]) ?? [])].map((c) => c.cluster as EnvoyJson);
}

export function listenerList(dump: EnvoyJson): EnvoyJson[] {
  const s = section(dump, 'ListenersConfigDump');
  return [...((s.static_listeners as EnvoyJson[]) ?? []).map((l) => l.listener as EnvoyJson), ...((s.dynamic_listeners as EnvoyJson[]) ?? []).map((l) => (l.active_state as EnvoyJson | undefined)?.listener as EnvoyJson).filter(Boolean)];
}

export function routeList(dump: EnvoyJson): EnvoyJson[] {
  const s = section(dump, 'RoutesConfigDump');
  return [...((s.static_route_configs as EnvoyJson[]) ?? []), ...((s.dynamic_route_configs as EnvoyJson[]) ?? [])].map((r) => r.route_config as EnvoyJson);
}

export function endpointList(dump: EnvoyJson): EnvoyJson[] {
  const s = section(dump, 'EndpointsConfigDump');
  return [...((s.static_endpoint_configs as EnvoyJson[]) ?? []), ...((s.dynamic_endpoint_configs as EnvoyJson[]) ?? [])].map((e) => e.endpoint_config as EnvoyJson);
}

export function secretList(dump: EnvoyJson): EnvoyJson[] {
  const s = section(dump, 'SecretsConfigDump');
  return [...((s.static_secrets as EnvoyJson[]) ?? []), ...((s.dynamic_active_secrets as EnvoyJson[]) ?? [])].map((e) => e.secret as EnvoyJson);
}

/** The TypedExtensionConfigs of an EcdsConfigDump (the extension configs sent over ECDS, e.g. WasmPlugins). */
export function ecdsList(dump: EnvoyJson): EnvoyJson[] {
  return ((section(dump, 'EcdsConfigDump').ecds_filters as EnvoyJson[] | undefined) ?? []).map((e) => e.ecds_filter as EnvoyJson);
}

/** istioctl's `proxy-config ecds` summary: each config's name and the type of its typed_config. */
export function ecdsTable(dump: EnvoyJson): string {
  const rows = ecdsList(dump)
    .map((c) => [String(c.name), String((c.typed_config as EnvoyJson | undefined)?.['@type'] ?? '-').replace(/^type\.googleapis\.com\//, '')])
    .sort((a, b) => a[0].localeCompare(b[0]));
  return table(['ECDS NAME', 'TYPE'], rows);
}

function istioConfig(md: unknown): string {
  const cfg = ((md as EnvoyJson | undefined)?.filter_metadata as EnvoyJson | undefined)?.istio as EnvoyJson | undefined;
  const path = cfg?.config as string | undefined;
  if (!path) return '-';
  const m = /namespaces\/([^/]+)\/[^/]+\/([^/]+)$/.exec(path);
  return m ? `${m[2]}.${m[1]}` : path;
}

export function clustersTable(dump: EnvoyJson): string {
  const rows = clusterList(dump).map((c) => {
    const parts = String(c.name).split('|');
    const type = String(c.type ?? 'EDS');
    if (parts.length === 4) return [parts[3] || '-', parts[1], parts[2] || '-', parts[0], type, istioConfig(c.metadata)];
    return [String(c.name), '-', '-', '-', type, '-'];
  });
  return table(['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE'], rows);
}

function chainMatch(m: EnvoyJson | undefined): string {
  if (!m || !Object.keys(m).length) return 'ALL';
  const out: string[] = [];
  if (m.destination_port !== undefined) out.push(`Port: ${m.destination_port}`);
  if (m.server_names) out.push(`SNI: ${(m.server_names as string[]).join(',')}`);
  if (m.transport_protocol) out.push(`Trans: ${m.transport_protocol}`);
  if (m.application_protocols) out.push(`App: ${(m.application_protocols as string[]).join(',')}`);
  if (m.prefix_ranges) out.push(`Addr: ${(m.prefix_ranges as EnvoyJson[]).map((p) => `${p.address_prefix}/${p.prefix_len}`).join(',')}`);
  return out.join('; ');
}

function chainDestination(c: EnvoyJson): string {
  const f = ((c.filters as EnvoyJson[] | undefined) ?? [])[0];
  const tc = (f?.typed_config ?? {}) as EnvoyJson;
  if (tc.rds) return `Route: ${(tc.rds as EnvoyJson).route_config_name}`;
  if (tc.route_config) return `Inline Route: ${(tc.route_config as EnvoyJson).name ?? ''}`;
  if (tc.cluster) return `Cluster: ${tc.cluster}`;
  if (tc.weighted_clusters) return `Clusters: ${((tc.weighted_clusters as EnvoyJson).clusters as EnvoyJson[]).map((w) => `${w.name}(${w.weight})`).join(', ')}`;
  return f ? String(f.name) : '-';
}

export function listenersTable(dump: EnvoyJson): string {
  const rows: string[][] = [];
  for (const l of listenerList(dump)) {
    const sa = ((l.address as EnvoyJson | undefined)?.socket_address ?? {}) as EnvoyJson;
    const api = (l.api_listener as EnvoyJson | undefined)?.api_listener as EnvoyJson | undefined;
    if (api) {
      rows.push([String(l.name), '-', 'API listener', api.rds ? `Route: ${(api.rds as EnvoyJson).route_config_name}` : '-']);
      continue;
    }
    for (const c of (l.filter_chains as EnvoyJson[] | undefined) ?? []) rows.push([String(sa.address ?? '-'), String(sa.port_value ?? '-'), chainMatch(c.filter_chain_match as EnvoyJson | undefined), chainDestination(c)]);
    if (l.default_filter_chain) rows.push([String(sa.address ?? '-'), String(sa.port_value ?? '-'), 'ALL (default)', chainDestination(l.default_filter_chain as EnvoyJson)]);
  }
  return table(['ADDRESSES', 'PORT', 'MATCH', 'DESTINATION'], rows);
}

function routeMatch(m: EnvoyJson): string {
  if (m.connect_matcher) return 'CONNECT';
  if (m.path !== undefined) return String(m.path);
  if (m.safe_regex) return `regex ${(m.safe_regex as EnvoyJson).regex}`;
  return `${m.prefix ?? '/'}*`;
}

function domains(list: string[]): string {
  return list.length <= 2 ? list.join(', ') : `${list.slice(0, 2).join(', ')} + ${list.length - 2} more...`;
}

export function routesTable(dump: EnvoyJson): string {
  const rows: string[][] = [];
  for (const rc of routeList(dump)) {
    for (const vh of (rc.virtual_hosts as EnvoyJson[] | undefined) ?? []) {
      for (const r of (vh.routes as EnvoyJson[] | undefined) ?? []) rows.push([String(rc.name), String(vh.name), domains((vh.domains as string[]) ?? []), routeMatch((r.match ?? {}) as EnvoyJson), istioConfig(r.metadata)]);
    }
  }
  return table(['NAME', 'VHOST NAME', 'DOMAINS', 'MATCH', 'VIRTUAL SERVICE'], rows);
}

export function endpointsTable(dump: EnvoyJson): string {
  const rows: string[][] = [];
  for (const cla of endpointList(dump)) {
    for (const loc of (cla.endpoints as EnvoyJson[] | undefined) ?? []) {
      for (const e of (loc.lb_endpoints as EnvoyJson[] | undefined) ?? []) {
        const sa = (((e.endpoint as EnvoyJson).address as EnvoyJson).socket_address ?? {}) as EnvoyJson;
        rows.push([`${sa.address}:${sa.port_value}`, String(e.health_status ?? 'HEALTHY'), 'OK', String(cla.cluster_name)]);
      }
    }
  }
  return table(['ENDPOINT', 'STATUS', 'OUTLIER CHECK', 'CLUSTER'], rows);
}

function pemOf(src: EnvoyJson | undefined): string | undefined {
  if (!src) return undefined;
  if (typeof src.inline_bytes === 'string') return Buffer.from(src.inline_bytes, 'base64').toString();
  if (typeof src.inline_string === 'string') return src.inline_string;
  return undefined;
}

export function secretsTable(dump: EnvoyJson): string {
  const rows = secretList(dump).map((s) => {
    const tc = s.tls_certificate as EnvoyJson | undefined;
    const pem = pemOf((tc?.certificate_chain ?? (s.validation_context as EnvoyJson | undefined)?.trusted_ca) as EnvoyJson | undefined);
    const type = tc ? 'Cert Chain' : 'CA';
    try {
      const cert = new X509Certificate(pem ?? '');
      const now = Date.now();
      const valid = now >= Date.parse(cert.validFrom) && now <= Date.parse(cert.validTo);
      return [String(s.name), type, 'ACTIVE', String(valid), cert.serialNumber.toLowerCase(), new Date(cert.validTo).toISOString(), new Date(cert.validFrom).toISOString()];
    } catch {
      return [String(s.name), type, 'ACTIVE', 'false', '-', '-', '-'];
    }
  });
  return table(['RESOURCE NAME', 'TYPE', 'STATUS', 'VALID CERT', 'SERIAL NUMBER', 'NOT AFTER', 'NOT BEFORE'], rows);
}
