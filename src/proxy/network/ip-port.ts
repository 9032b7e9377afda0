// Envoy's "ip:port" form of an address: an IPv6 address in brackets ("[::1]:80"); a pipe is its path.
import { isPipe } from './pipe-address.ts';

export function formatIpPort(ip: string, port: number): string {
  if (isPipe(ip)) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
