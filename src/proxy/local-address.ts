// The proxy's own address, as Envoy's LocalInfo has it (Network::Utility::getLocalAddress for the
// IP version of --local-address-ip-version, v4 by default): the first non-loopback address of that
// family on the machine's interfaces (an IPv6 one without its scope id), else 127.0.0.1 or ::1.
// Envoy puts it in x-forwarded-for on the gRPC calls it makes itself (envoy_grpc without
// skip_envoy_headers). Read once, as Envoy reads it at start.
import os from 'node:os';
import { isIPv6 } from 'node:net';

export type IpVersion = 'v4' | 'v6';

let version: IpVersion = 'v4';
let cached: string | undefined;

/** Envoy's --local-address-ip-version; set once at start, before the first localAddress(). */
export function setLocalAddressIpVersion(v: IpVersion): void {
  version = v;
  cached = undefined;
}

/**
 * The version Istio's agent passes to Envoy: v6 when every instance IP (node metadata
 * INSTANCE_IPS, a comma list) is IPv6, else v4.
 */
export function ipVersionOfInstanceIps(instanceIps: string): IpVersion {
  const ips = instanceIps.split(',').filter((ip) => ip !== '');
  return ips.length > 0 && ips.every((ip) => isIPv6(ip)) ? 'v6' : 'v4';
}

export function localAddress(): string {
  if (cached === undefined) {
    const family = version === 'v6' ? 'IPv6' : 'IPv4';
    const found = Object.values(os.networkInterfaces())
      .flatMap((list) => list ?? [])
      .find((a) => a.family === family && !a.internal);
    cached = found?.address ?? (version === 'v6' ? '::1' : '127.0.0.1');
  }
  return cached;
}
