// STRICT_DNS / LOGICAL_DNS clusters refresh as Envoy's do: with respect_dns_ttl after the answer's
// TTL (a TTL of 0 leaves dns_refresh_rate), without it every dns_refresh_rate; after a failure by
// dns_failure_refresh_rate. `rig proxy -c` runs
// in a mount namespace whose /etc/resolv.conf names rig's own DNS server (src/proxy/dns), three of
// them chained so that names answer with TTLs of 1 s, 1 h and 0; the test changes every record and
// reads each cluster's hosts from the admin /clusters.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startDnsProxy, type DnsProxy } from '../../src/proxy/dns/dns-server.ts';
import type { NameTable } from '../../src/proxy/dns/dns-name-table.ts';
import { waitForPortsFile } from '../../src/local/ports-file.ts';
import { RIG_MAIN, REPO_ROOT, stopProcess } from '../helpers/cli.ts';
import { RIG_START_TIMEOUT_MS } from '../helpers/rig-proxy.ts';
import { tempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (a mount namespace for the proxy’s resolv.conf)';
  if (process.getuid?.() !== 0) return 'needs root (a mount namespace, and a DNS server on port 53); CI runs as root';
  try {
    execFileSync('sh', ['-c', 'command -v unshare'], { stdio: 'ignore' });
  } catch {
    return 'unshare is not installed (Debian package util-linux)';
  }
  return undefined;
}

const OLD = '127.0.0.2';
const NEW = '127.0.0.3';

/** name → TTL of its answers (s); the clusters below use these names. */
const NAMES: Record<string, number> = { 'ttl.short.test': 1, 'logical.short.test': 1, 'rate.short.test': 1, 'ttl.long.test': 3600, 'rate.long.test': 3600, 'ttl.zero.test': 0, 'late.short.test': 1 };
/** Unknown at first (SERVFAIL: the last server has no upstream), answered after the change. */
const LATE = 'late.short.test';

function table(ttl: number, ip: string, late = true): NameTable {
  return { table: Object.fromEntries(Object.entries(NAMES).filter(([name, t]) => t === ttl && (late || name !== LATE)).map(([name]) => [name, { ips: [ip] }])) };
}

function dnsCluster(name: string, host: string, type: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    type,
    connect_timeout: '1s',
    dns_lookup_family: 'V4_ONLY',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: 8080 } } } }] }] },
    ...extra,
  };
}

const CLUSTERS = [
  // respect_dns_ttl: the TTL (1 s) decides, not the hour-long refresh rate.
  dnsCluster('ttl-short', 'ttl.short.test', 'STRICT_DNS', { respect_dns_ttl: true, dns_refresh_rate: '3600s' }),
  dnsCluster('logical-ttl-short', 'logical.short.test', 'LOGICAL_DNS', { respect_dns_ttl: true, dns_refresh_rate: '3600s' }),
  // Without it the refresh rate decides, whatever the TTL.
  dnsCluster('rate-long', 'rate.short.test', 'STRICT_DNS', { dns_refresh_rate: '3600s' }),
  dnsCluster('rate-short', 'rate.long.test', 'STRICT_DNS', { dns_refresh_rate: '1s' }),
  // With it, an hour-long TTL outlasts a 1 s refresh rate; a TTL of 0 leaves the refresh rate.
  dnsCluster('ttl-long', 'ttl.long.test', 'STRICT_DNS', { respect_dns_ttl: true, dns_refresh_rate: '1s' }),
  dnsCluster('ttl-zero', 'ttl.zero.test', 'STRICT_DNS', { respect_dns_ttl: true, dns_refresh_rate: '1s', dns_jitter: '0.1s' }),
  // A failed resolution is retried by dns_failure_refresh_rate, not the hour-long refresh rate.
  dnsCluster('failure-backoff', LATE, 'STRICT_DNS', { dns_refresh_rate: '3600s', dns_failure_refresh_rate: { base_interval: '0.5s', max_interval: '1s' } }),
  // A name the DNS servers do not answer (SERVFAIL here) comes from the system lookup: /etc/hosts.
  dnsCluster('hosts-file', 'localhost', 'STRICT_DNS', { respect_dns_ttl: true }),
];

test('DNS clusters: respect_dns_ttl refreshes after the TTL (0: the refresh rate), without it dns_refresh_rate rules; a failure retries by dns_failure_refresh_rate', { skip: skipReason() }, async (t) => {
  const servers: DnsProxy[] = [];
  t.after(async () => {
    for (const s of servers) await s.close();
  });
  // Names of 1 s are answered on port 53 (where resolv.conf points); the others are forwarded on.
  const zero = await startDnsProxy({ port: 0, table: table(0, OLD), ttl: 0, upstream: [] });
  servers.push(zero);
  const long = await startDnsProxy({ port: 0, table: table(3600, OLD), ttl: 3600, upstream: [{ address: zero.address, port: zero.port }] });
  servers.push(long);
  const address = `127.53.${(process.pid % 250) + 1}.1`;
  const short = await startDnsProxy({ port: 53, bind: address, table: table(1, OLD, false), ttl: 1, upstream: [{ address: long.address, port: long.port }] });
  servers.push(short);

  const dir = tempDir(t, 'rig-dns-refresh-');
  const resolvConf = path.join(dir, 'resolv.conf');
  fs.writeFileSync(resolvConf, `nameserver ${address}\n`);
  const boot = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(boot, JSON.stringify({ admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }, static_resources: { clusters: CLUSTERS } }));
  const portsFile = path.join(dir, 'ports.json');
  const proxyArgs = [RIG_MAIN, 'proxy', '-c', boot, '--admin-port', '0', '--ready-port', '0', '--stats-port', '0', '--ports-file', portsFile];
  // The proxy alone sees the test's resolv.conf: a bind mount in a mount namespace of its own.
  const child = spawn('unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, process.execPath, ...proxyArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  t.after(() => stopProcess(child));
  const ports = (await waitForPortsFile(portsFile, RIG_START_TIMEOUT_MS, () => child.exitCode !== null).catch((err: Error) => {
    throw new Error(`${err.message}\n${log}`);
  })) as unknown as { admin: number };

  const hosts = async (): Promise<Record<string, string[]>> => {
    const res = await fetch(`http://127.0.0.1:${ports.admin}/clusters?format=json`);
    const body = (await res.json()) as { cluster_statuses: { name: string; host_statuses?: { address: { socket_address: { address: string } } }[] }[] };
    return Object.fromEntries(body.cluster_statuses.map((c) => [c.name, (c.host_statuses ?? []).map((h) => h.address.socket_address.address)]));
  };
  const names = CLUSTERS.map((c) => String(c.name)).filter((n) => n !== 'failure-backoff' && n !== 'hosts-file');
  const all = (ip: string, which: string[]) => async () => {
    const h = await hosts();
    return which.every((n) => h[n]?.length === 1 && h[n][0] === ip) ? h : undefined;
  };
  await waitFor(() => `every cluster at ${OLD}\n${log}`, all(OLD, names), RIG_START_TIMEOUT_MS);
  await waitFor(() => `hosts-file at 127.0.0.1\n${log}`, async () => ((await hosts())['hosts-file']?.[0] === '127.0.0.1' ? true : undefined));
  assert.deepEqual((await hosts())['failure-backoff'], []);

  zero.update(table(0, NEW));
  long.update(table(3600, NEW));
  short.update(table(1, NEW));
  const refreshed = ['ttl-short', 'logical-ttl-short', 'rate-short', 'ttl-zero', 'failure-backoff'];
  const seen = await waitFor(() => `${refreshed.join(', ')} at ${NEW}\n${log}`, all(NEW, refreshed), 30_000);
  // Once those have asked again, the clusters whose hour has not passed still have the old answer.
  assert.deepEqual({ 'rate-long': seen['rate-long'], 'ttl-long': seen['ttl-long'] }, { 'rate-long': [OLD], 'ttl-long': [OLD] });
});
