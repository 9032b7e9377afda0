// `rig iptables`: Istio's sidecar init (istio-iptables) for the current network namespace.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import {
  DEFAULT_CONFIG,
  parseAddressList,
  parseCidrList,
  parseIdList,
  parsePort,
  parsePortList,
  nameserversFromResolvConf,
  type IptablesConfig,
} from '../../iptables/iptables-config.ts';
import { applyRules, backend, BACKEND_NAMES, cleanupRules, detectBackend, dryRun, type BackendName } from '../../iptables/index.ts';

interface Opts {
  envoyPort: string;
  inboundCapturePort: string;
  proxyUid: string;
  proxyGid?: string;
  includeInboundPorts: string;
  excludeInboundPorts: string;
  includeOutboundPorts: string;
  excludeOutboundPorts: string;
  includeOutboundIpRanges: string;
  excludeOutboundIpRanges: string;
  inboundPorts?: string;
  includeOutboundCidrs?: string;
  excludeOutboundCidrs?: string;
  redirectDns?: boolean;
  captureAllDns?: boolean;
  dnsServers?: string;
  dnsPort: string;
  ipv6?: boolean;
  dryRun?: boolean;
  cleanup?: boolean;
  iptablesBackend?: string;
  istioInboundInterceptionMode: string;
}

export function configFromOptions(o: Opts): IptablesConfig {
  if (o.istioInboundInterceptionMode.toUpperCase() !== 'REDIRECT') {
    throw new RigError('MESH_ERR_USAGE', `-m/--istio-inbound-interception-mode: "${o.istioInboundInterceptionMode}" is not supported; only REDIRECT (TPROXY, which keeps the client's source address, is not implemented)`);
  }
  const inboundPorts = o.inboundPorts ?? o.includeInboundPorts;
  const includeCidrs = o.includeOutboundCidrs ?? o.includeOutboundIpRanges;
  const excludeCidrs = o.excludeOutboundCidrs ?? o.excludeOutboundIpRanges;
  const uids = parseIdList('--proxy-uid', o.proxyUid);
  const redirectDns = o.redirectDns ?? false;
  let dnsServers: string[] = [];
  const captureAllDns = o.captureAllDns ?? false;
  if (redirectDns && !captureAllDns) {
    dnsServers = o.dnsServers !== undefined ? parseAddressList('--dns-servers', o.dnsServers) : nameserversFromResolvConf(readResolvConf());
    if (dnsServers.length === 0) throw new RigError('MESH_ERR_USAGE', '--redirect-dns: no nameserver in /etc/resolv.conf to capture; pass --dns-servers or --capture-all-dns');
  }
  return {
    ...DEFAULT_CONFIG,
    proxyPort: parsePort('--envoy-port', o.envoyPort),
    inboundCapturePort: parsePort('--inbound-capture-port', o.inboundCapturePort),
    proxyUids: uids,
    proxyGids: o.proxyGid !== undefined ? parseIdList('--proxy-gid', o.proxyGid) : uids,
    inboundPorts: inboundPorts.trim() === '*' ? '*' : parsePortList('--include-inbound-ports', inboundPorts),
    excludeInboundPorts: parsePortList('--exclude-inbound-ports', o.excludeInboundPorts),
    includeOutboundPorts: parsePortList('--include-outbound-ports', o.includeOutboundPorts),
    excludeOutboundPorts: parsePortList('--exclude-outbound-ports', o.excludeOutboundPorts),
    includeOutboundCidrs: includeCidrs.trim() === '*' ? '*' : parseCidrList('--include-outbound-ip-ranges', includeCidrs),
    excludeOutboundCidrs: parseCidrList('--exclude-outbound-ip-ranges', excludeCidrs),
    redirectDns,
    captureAllDns,
    dnsServers,
    dnsPort: parsePort('--dns-port', o.dnsPort),
    ipv6: o.ipv6 ?? false,
  };
}

function readResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

function backendOption(v: string | undefined): BackendName | undefined {
  if (v === undefined) return undefined;
  if (!(BACKEND_NAMES as readonly string[]).includes(v)) throw new RigError('MESH_ERR_USAGE', `--iptables-backend: "${v}" is not one of ${BACKEND_NAMES.join(', ')}`);
  return v as BackendName;
}

export function define(cmd: Command): void {
  const d = DEFAULT_CONFIG;
  cmd
    .summary('set up (or remove) transparent traffic capture in this network namespace')
    .description(
      "Programs the iptables rules of Istio's sidecar init container (REDIRECT mode) in the current network namespace:\n" +
        'inbound TCP to the inbound capture port, outbound TCP to the proxy port, except the proxy\'s own traffic\n' +
        '(by UID/GID). Needs root (CAP_NET_ADMIN). Without it, use the explicit proxy mode (rig up without --isolation netns).',
    )
    .option('-m, --istio-inbound-interception-mode <mode>', 'inbound interception mode (only REDIRECT is supported)', 'REDIRECT')
    .option('-p, --envoy-port <port>', 'port to which all outbound TCP traffic is redirected', String(d.proxyPort))
    .option('-z, --inbound-capture-port <port>', 'port to which all inbound TCP traffic is redirected', String(d.inboundCapturePort))
    .option('-u, --proxy-uid <uids>', 'UID(s) of the proxy, whose traffic is never captured (comma list)', d.proxyUids.join(','))
    .option('-g, --proxy-gid <gids>', 'GID(s) of the proxy, whose traffic is never captured (default: the UIDs)')
    .option('-b, --include-inbound-ports <ports>', 'inbound ports to capture: "*" for all, "" for none', '*')
    .option('-d, --exclude-inbound-ports <ports>', 'inbound ports never captured (with -b "*")', '')
    .option('-q, --include-outbound-ports <ports>', 'outbound ports always captured, whatever the CIDR lists say', '')
    .option('-o, --exclude-outbound-ports <ports>', 'outbound ports never captured', '')
    .option('-i, --include-outbound-ip-ranges <cidrs>', 'outbound destinations (CIDRs) to capture: "*" for all, "" for none', '*')
    .option('-x, --exclude-outbound-ip-ranges <cidrs>', 'outbound destinations (CIDRs) never captured', '')
    .option('--redirect-dns', 'capture DNS (UDP and TCP port 53) to the proxy\'s DNS port')
    .option('--capture-all-dns', 'capture DNS queries to any server, not only to --dns-servers')
    .option('--dns-servers <ips>', 'DNS servers whose queries are captured (default: the nameservers of /etc/resolv.conf)')
    .option('--dns-port <port>', 'the proxy\'s DNS port', String(d.dnsPort))
    .option('--ipv6', 'also program ip6tables')
    .option('--iptables-backend <name>', `iptables implementation: ${BACKEND_NAMES.join(' or ')} (default: detected)`)
    .addOption(new Option('--inbound-ports <ports>', 'alias of --include-inbound-ports').hideHelp())
    .addOption(new Option('--include-outbound-cidrs <cidrs>', 'alias of --include-outbound-ip-ranges').hideHelp())
    .addOption(new Option('--exclude-outbound-cidrs <cidrs>', 'alias of --exclude-outbound-ip-ranges').hideHelp())
    .option('-n, --dry-run', 'print the rules (iptables-restore format) instead of applying them')
    .option('--cleanup', 'remove the rules this command added (all of them, IPv4 and IPv6)')
    .action(async (o: Opts) => {
      const chosen = backendOption(o.iptablesBackend);
      if (o.cleanup) {
        if (o.dryRun) throw new RigError('MESH_ERR_USAGE', '--cleanup and --dry-run cannot be combined');
        const be = chosen ? backend(chosen) : await detectBackend();
        const found = await cleanupRules(be);
        process.stdout.write(found ? `removed the capture rules (iptables-${be.name})\n` : `no capture rules to remove (iptables-${be.name})\n`);
        return;
      }
      const cfg = configFromOptions(o);
      if (o.dryRun) {
        process.stdout.write(dryRun(cfg));
        return;
      }
      const be = chosen ? backend(chosen) : await detectBackend();
      await applyRules(be, cfg);
      process.stdout.write(`capture rules applied (iptables-${be.name}): outbound -> ${cfg.proxyPort}, inbound -> ${cfg.inboundCapturePort}${cfg.redirectDns ? `, DNS -> ${cfg.dnsPort}` : ''}\n`);
    });
}
