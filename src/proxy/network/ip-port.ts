// Envoy's "ip:port" form of an address: an IPv6 address in brackets ("[::1]:80").
export function formatIpPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
