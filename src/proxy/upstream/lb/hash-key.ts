// The string a consistent-hash balancer hashes for a host, as Envoy picks it: the endpoint's
// metadata `envoy.lb: { hash_key }` when present, else the hostname with use_hostname_for_hashing,
// else the address string ("1.2.3.4:80", "[::1]:80").
import type { Host } from '../host.ts';
import { formatIpPort } from '../../network/ip-port.ts';

export function hostHashKey(h: Host, useHostname: boolean): string {
  const key = h.metadata['envoy.lb']?.hash_key;
  if (typeof key === 'string' && key !== '') return key;
  if (useHostname && h.hostname) return h.hostname;
  if (h.port === 0 && h.address.startsWith('/')) return h.address;
  return formatIpPort(h.address, h.port);
}

/** A uniformly random 64-bit hash, for requests without a hash policy value. */
export function randomHash(random: () => number): bigint {
  return (BigInt(Math.floor(random() * 0x100000000)) << 32n) | BigInt(Math.floor(random() * 0x100000000));
}
