// The rules of Istio's sidecar init (istio-iptables, REDIRECT mode), as a pure function of the
// config. Every rule lives in a chain of ours; the only rules in built-in chains are the jumps
// into them, so cleanup can remove exactly what was added.
import net from 'node:net';
import type { IptablesConfig } from './iptables-config.ts';

export type Table = 'nat' | 'raw';
export type Family = 4 | 6;

export interface TableRules {
  table: Table;
  /** Our chains, in creation order. */
  chains: string[];
  /** `-A <our chain> ...` lines. */
  rules: string[];
  /** `-A <built-in chain> ... -j <our chain>` lines. */
  jumps: string[];
}

export const CHAINS = {
  inbound: 'ISTIO_INBOUND',
  inRedirect: 'ISTIO_IN_REDIRECT',
  output: 'ISTIO_OUTPUT',
  redirect: 'ISTIO_REDIRECT',
  outputDns: 'ISTIO_OUTPUT_DNS',
  preroutingDns: 'ISTIO_PREROUTING_DNS',
} as const;

/** Every chain name this module may create, per table (cleanup looks for these). */
export const OWNED_CHAINS: Record<Table, string[]> = {
  nat: [CHAINS.inbound, CHAINS.inRedirect, CHAINS.output, CHAINS.redirect, CHAINS.outputDns],
  raw: [CHAINS.outputDns, CHAINS.preroutingDns],
};

// Conntrack zones that keep the app's DNS flows (app -> redirected to the proxy) apart from the
// proxy's upstream queries, which may carry the same 5-tuple (Istio's fix for UDP conntrack
// collisions). Upstream replies come back in the proxy's zone.
const DNS_ZONE_UPSTREAM = 1;
const DNS_ZONE_APP = 2;

function ofFamily(family: Family, cidrs: string[]): string[] {
  return cidrs.filter((c) => net.isIP(c.split('/')[0]) === family);
}

export function generateRules(cfg: IptablesConfig, family: Family): TableRules[] {
  const localhost = family === 4 ? '127.0.0.1/32' : '::1/128';
  const passthroughSource = family === 4 ? '127.0.0.6/32' : '::6/128';
  const inboundEnabled = cfg.inboundPorts === '*' || cfg.inboundPorts.length > 0;
  const dnsServers = ofFamily(family, cfg.dnsServers.map((a) => (a.includes('/') ? a : `${a}/${family === 4 ? 32 : 128}`)));
  const dnsMatches = cfg.captureAllDns ? [''] : dnsServers.map((d) => ` -d ${d}`);

  const nat: TableRules = { table: 'nat', chains: [CHAINS.inbound, CHAINS.redirect, CHAINS.inRedirect, CHAINS.output], rules: [], jumps: [] };
  const add = (chain: string, spec: string) => nat.rules.push(`-A ${chain} ${spec}`);

  add(CHAINS.redirect, `-p tcp -j REDIRECT --to-ports ${cfg.proxyPort}`);
  add(CHAINS.inRedirect, `-p tcp -j REDIRECT --to-ports ${cfg.inboundCapturePort}`);

  // Inbound: everything arriving for the pod, or only the listed ports.
  if (inboundEnabled) {
    nat.jumps.push(`-A PREROUTING -p tcp -j ${CHAINS.inbound}`);
    if (cfg.inboundPorts === '*') {
      for (const p of cfg.excludeInboundPorts) add(CHAINS.inbound, `-p tcp -m tcp --dport ${p} -j RETURN`);
      add(CHAINS.inbound, `-p tcp -j ${CHAINS.inRedirect}`);
    } else {
      for (const p of cfg.inboundPorts) add(CHAINS.inbound, `-p tcp -m tcp --dport ${p} -j ${CHAINS.inRedirect}`);
    }
  }

  // Outbound.
  nat.jumps.push(`-A OUTPUT -p tcp -j ${CHAINS.output}`);
  for (const p of cfg.excludeOutboundPorts) add(CHAINS.output, `-p tcp -m tcp --dport ${p} -j RETURN`);
  // The proxy's connections to an inbound app use 127.0.0.6 as source: never capture them.
  add(CHAINS.output, `-s ${passthroughSource} -o lo -j RETURN`);
  const owners: [string, number[]][] = [
    ['--uid-owner', cfg.proxyUids],
    ['--gid-owner', cfg.proxyGids],
  ];
  for (const [match, ids] of owners) {
    for (const id of ids) {
      // The proxy calling its own pod's address (a service VIP that resolved to this pod) goes
      // through inbound processing, as it would from another pod.
      if (inboundEnabled) add(CHAINS.output, `! -d ${localhost} -o lo -m owner ${match} ${id} -j ${CHAINS.inRedirect}`);
      // The app calling its own pod address (or anything on lo) is not captured.
      add(CHAINS.output, `-o lo -m owner ! ${match} ${id} -j RETURN`);
      // The proxy's own upstream connections are never captured again.
      add(CHAINS.output, `-m owner ${match} ${id} -j RETURN`);
    }
  }
  if (cfg.redirectDns) for (const d of dnsMatches) add(CHAINS.output, `-p tcp -m tcp --dport 53${d} -j REDIRECT --to-ports ${cfg.dnsPort}`);
  add(CHAINS.output, `-d ${localhost} -j RETURN`);
  for (const c of ofFamily(family, cfg.excludeOutboundCidrs)) add(CHAINS.output, `-d ${c} -j RETURN`);
  for (const p of cfg.includeOutboundPorts) add(CHAINS.output, `-p tcp -m tcp --dport ${p} -j ${CHAINS.redirect}`);
  if (cfg.includeOutboundCidrs === '*') add(CHAINS.output, `-j ${CHAINS.redirect}`);
  else for (const c of ofFamily(family, cfg.includeOutboundCidrs)) add(CHAINS.output, `-d ${c} -j ${CHAINS.redirect}`);

  const tables = [nat];
  if (cfg.redirectDns) {
    nat.chains.push(CHAINS.outputDns);
    nat.jumps.push(`-A OUTPUT -p udp -m udp --dport 53 -j ${CHAINS.outputDns}`);
    const raw: TableRules = { table: 'raw', chains: [CHAINS.outputDns, CHAINS.preroutingDns], rules: [], jumps: [] };
    raw.jumps.push(`-A OUTPUT -p udp -j ${CHAINS.outputDns}`, `-A PREROUTING -p udp -j ${CHAINS.preroutingDns}`);
    for (const [match, ids] of owners) {
      for (const id of ids) {
        add(CHAINS.outputDns, `-p udp -m udp --dport 53 -m owner ${match} ${id} -j RETURN`);
        raw.rules.push(`-A ${CHAINS.outputDns} -p udp -m udp --dport 53 -m owner ${match} ${id} -j CT --zone ${DNS_ZONE_UPSTREAM}`);
        raw.rules.push(`-A ${CHAINS.outputDns} -p udp -m udp --sport ${cfg.dnsPort} -m owner ${match} ${id} -j CT --zone ${DNS_ZONE_APP}`);
      }
    }
    for (const d of dnsMatches) {
      add(CHAINS.outputDns, `-p udp -m udp --dport 53${d} -j REDIRECT --to-ports ${cfg.dnsPort}`);
      // The first CT rule a packet meets sets its zone: the proxy's were handled above.
      raw.rules.push(`-A ${CHAINS.outputDns} -p udp -m udp --dport 53${d} -j CT --zone ${DNS_ZONE_APP}`);
      raw.rules.push(`-A ${CHAINS.preroutingDns} -p udp -m udp --sport 53${d.replace('-d', '-s')} -j CT --zone ${DNS_ZONE_UPSTREAM}`);
    }
    tables.push(raw);
  }
  return tables;
}

/** The rules as iptables-save text (what --dry-run prints and iptables-restore reads). */
export function formatRules(tables: TableRules[]): string {
  const out: string[] = [];
  for (const t of tables) {
    out.push(`*${t.table}`, ...t.chains.map((c) => `:${c} - [0:0]`), ...t.rules, ...t.jumps, 'COMMIT');
  }
  return out.join('\n') + '\n';
}
