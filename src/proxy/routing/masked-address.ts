// The masked_remote_address rate limit action's value: the peer address masked to a prefix, as a
// CIDR string ("10.1.2.0/24", "2001:db8::/64"), IPv4-mapped IPv6 addresses treated as IPv4.
import net from 'node:net';

function maskV4(ip: string, len: number): string {
  const n = ip.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
  const masked = len === 0 ? 0 : (n & (~0 << (32 - len))) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (masked >>> s) & 255).join('.')}/${len}`;
}

function v6Groups(ip: string): number[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const a = head ? head.split(':') : [];
  const b = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - a.length - b.length).fill('0');
  return [...a, ...fill, ...b].map((g) => parseInt(g, 16));
}

function formatV6(groups: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function maskV6(ip: string, len: number): string {
  const groups = v6Groups(ip).map((g, i) => {
    const bits = Math.max(0, Math.min(16, len - i * 16));
    return bits === 0 ? 0 : g & ((0xffff << (16 - bits)) & 0xffff);
  });
  return `${formatV6(groups)}/${len}`;
}

export function maskAddress(ip: string, v4Len: number, v6Len: number): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return maskV4(mapped[1], v4Len);
  if (net.isIPv4(ip)) return maskV4(ip, v4Len);
  return maskV6(ip, v6Len);
}
