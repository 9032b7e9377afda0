// Forwarding a query the mesh does not answer to the upstream resolvers (those of
// /etc/resolv.conf when the proxy starts), over the transport the client used.
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';

export interface Upstream {
  address: string;
  port: number;
}

/** Nameservers of a resolv.conf (port 53), in order; [] when the file is missing or lists none. */
export function upstreamsFromResolvConf(file = '/etc/resolv.conf'): Upstream[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const address = m?.[1].split('%')[0];
    if (address && net.isIP(address)) out.push({ address, port: 53 });
  }
  return out;
}

/** Sends one query over UDP; resolves with the response that carries the query's id. */
function udpExchange(up: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(up.address) ? 'udp6' : 'udp4');
    const id = query.readUInt16BE(0);
    const timer = setTimeout(() => done(new Error(`no answer from ${up.address}:${up.port} within ${timeoutMs} ms`)), timeoutMs);
    function done(err: Error | undefined, msg?: Buffer) {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(msg!);
    }
    sock.on('error', (err) => done(err));
    sock.on('message', (msg) => {
      if (msg.length >= 12 && msg.readUInt16BE(0) === id) done(undefined, msg);
    });
    // Connected, so that an ICMP port unreachable fails the exchange at once (ECONNREFUSED).
    sock.connect(up.port, up.address, () => sock.send(query));
  });
}

/** Sends one query over TCP (2-byte length prefix, RFC 1035 4.2.2). */
function tcpExchange(up: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: up.address, port: up.port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no answer from ${up.address}:${up.port} (tcp) within ${timeoutMs} ms`)), timeoutMs);
    function done(err: Error | undefined, msg?: Buffer) {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(msg!);
    }
    sock.on('error', (err) => done(err));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('end', () => done(new Error(`${up.address}:${up.port} closed the connection without an answer`)));
  });
}

/**
 * Tries each upstream in turn; resolves with the first response (its id is the query's),
 * rejects with the last error when none answers.
 */
export async function forwardQuery(upstreams: Upstream[], query: Buffer, transport: 'udp' | 'tcp', timeoutMs: number): Promise<Buffer> {
  if (upstreams.length === 0) throw new Error('no upstream resolver configured');
  let last: unknown;
  for (const up of upstreams) {
    try {
      return await (transport === 'udp' ? udpExchange : tcpExchange)(up, query, timeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
