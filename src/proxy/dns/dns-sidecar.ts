// The sidecar's DNS proxy in REDIRECT mode (Istio's agent DNS): listens on 127.0.0.1:15053, where
// the capture rules send the pod's DNS, answers mesh names from the NameTable the control plane
// pushes over ADS (NDS), and forwards the rest to the pod's resolv.conf nameservers.
import type { Logger } from '../../core/log.ts';
import type { EnvoyJson } from '../../envoy/index.ts';
import type { ProxyRuntime } from '../runtime.ts';
import { startDnsProxy, type DnsProxy } from './dns-server.ts';
import { validateNameTable } from './dns-name-table.ts';

export interface SidecarDnsOptions {
  /** Istio: 15053; 0 picks a free port. */
  port: number;
  /** The workload's namespace (short names and `name.namespace` resolve through it). */
  namespace?: string;
  logger?: Logger;
}

/** Starts the DNS proxy with an empty table and feeds it each NDS push the runtime receives. */
export async function startSidecarDns(rt: ProxyRuntime, opts: SidecarDnsOptions): Promise<DnsProxy> {
  const dns = await startDnsProxy({ port: opts.port, table: { table: {} }, namespace: opts.namespace, logger: opts.logger });
  rt.nameTableSink = (table: EnvoyJson) => {
    try {
      validateNameTable(table);
      dns.update(table);
      opts.logger?.debug({ hosts: Object.keys(table.table).length }, 'DNS name table updated');
      return [];
    } catch (err) {
      return [`name table: ${(err as Error).message}`];
    }
  };
  return dns;
}
