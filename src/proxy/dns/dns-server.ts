// The sidecar's DNS proxy (Istio's agent DNS, port 15053): answers A/AAAA queries for mesh
// hostnames from the name table, forwards everything else upstream, over UDP and TCP.
// A failing upstream gives the client SERVFAIL, never an exception.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, Packet, Question } from 'dns-packet';
import { RigError } from '../../core/errors.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import { compileNameTable, type CompiledNameTable, type NameTable } from './dns-name-table.ts';
import { forwardQuery, upstreamsFromResolvConf, type Upstream } from './dns-upstream.ts';

export interface DnsProxyOptions {
  /** 0 picks a free port (see DnsProxy.port). Istio: 15053. */
  port: number;
  /** Address to bind (default 127.0.0.1; the capture rules redirect to loopback). */
  bind?: string;
  table: NameTable;
  /** Upstream resolvers (default: /etc/resolv.conf's nameservers when the proxy starts). */
  upstream?: Upstream[];
  /** The pod's namespace and search domains (short names; see compileNameTable). */
  namespace?: string;
  searchDomains?: string[];
  /** TTL of mesh answers, seconds (Istio: 30). */
  ttl?: number;
  upstreamTimeoutMs?: number;
  logger?: Logger;
}

export interface DnsProxyStats {
  queries: number;
  answeredLocally: number;
  forwarded: number;
  upstreamFailures: number;
  malformed: number;
}

export interface DnsProxy {
  readonly port: number;
  readonly address: string;
  readonly stats: DnsProxyStats;
  /** Replaces the name table (throws NameTableError on a bad table; the old one stays). */
  update(table: NameTable): void;
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;
const UDP_LIMIT = 512;
/** The UDP payload size we advertise and accept at most (the DNS flag day 2020 value). */
const EDNS_PAYLOAD = 1232;
const TCP_IDLE_MS = 10_000;

export async function startDnsProxy(opts: DnsProxyOptions): Promise<DnsProxy> {
  const bind = opts.bind ?? '127.0.0.1';
  const ttl = opts.ttl ?? 30;
  const timeoutMs = opts.upstreamTimeoutMs ?? 2000;
  const upstream = opts.upstream ?? upstreamsFromResolvConf();
  const log = opts.logger ?? silentLogger;
  const compile = (t: NameTable) => compileNameTable(t, { namespace: opts.namespace, searchDomains: opts.searchDomains });
  let names: CompiledNameTable = compile(opts.table);
  const stats: DnsProxyStats = { queries: 0, answeredLocally: 0, forwarded: 0, upstreamFailures: 0, malformed: 0 };

  function reply(query: Packet, rcode: number, answers: Answer[] = [], authoritative = false, truncated = false): Buffer {
    const rd = (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    const flags = rd | dnsPacket.RECURSION_AVAILABLE | (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | rcode;
    // A query with EDNS (an OPT record) gets one back (RFC 6891 7).
    const additionals: Answer[] = ednsOf(query) ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_PAYLOAD, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as Answer] : [];
    return dnsPacket.encode({ id: query.id, type: 'response', flags, questions: query.questions, answers, additionals });
  }

  /** The local answer for a query, or undefined to forward it. */
  function answerLocally(q: Question): Answer[] | undefined {
    if (q.class !== 'IN' || (q.type !== 'A' && q.type !== 'AAAA')) return undefined;
    const hit = names.lookup(q.name);
    if (!hit) return undefined;
    const ips = q.type === 'A' ? hit.v4 : hit.v6;
    // A known name without addresses of the asked family is NODATA (NOERROR, no answers).
    return ips.map((data) => ({ name: q.name, type: q.type, class: 'IN', ttl, data }) as Answer);
  }

  async function handle(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    stats.queries++;
    let query: Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      stats.malformed++;
      // Too short to carry an id: drop, as a resolver would.
      if (msg.length < 12) return undefined;
      return dnsPacket.encode({ id: msg.readUInt16BE(0), type: 'response', flags: RCODE.FORMERR, questions: [] });
    }
    if (query.type !== 'query') return undefined;
    const questions = query.questions ?? [];
    if (questions.length !== 1) return reply(query, questions.length === 0 ? RCODE.FORMERR : RCODE.NOTIMP);
    const local = answerLocally(questions[0]);
    if (local) {
      stats.answeredLocally++;
      const out = reply(query, RCODE.NOERROR, local, true);
      // Over UDP, an answer larger than the client accepts is truncated: it retries over TCP.
      const limit = Math.min(EDNS_PAYLOAD, Math.max(UDP_LIMIT, ednsOf(query)?.udpPayloadSize ?? UDP_LIMIT));
      return transport === 'udp' && out.length > limit ? reply(query, RCODE.NOERROR, [], true, true) : out;
    }
    stats.forwarded++;
    try {
      return await forwardQuery(upstream, msg, transport, timeoutMs);
    } catch (err) {
      stats.upstreamFailures++;
      log.debug({ name: questions[0].name, err: (err as Error).message }, 'upstream DNS failed; answering SERVFAIL');
      return reply(query, RCODE.SERVFAIL);
    }
  }

  const tcpConns = new Set<net.Socket>();
  const onUdp = (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    handle(msg, 'udp').then(
      (out) => out && udp.send(out, rinfo.port, rinfo.address),
      (err: unknown) => log.warn({ err }, 'DNS query failed'),
    );
  };
  const onTcp = (sock: net.Socket) => {
    tcpConns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on('close', () => tcpConns.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        handle(msg, 'tcp').then(
          (out) => {
            if (!out || sock.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length);
            sock.write(Buffer.concat([len, out]));
          },
          (err: unknown) => log.warn({ err }, 'DNS query failed'),
        );
      }
    });
  };
  const { udp, tcp } = await bindBoth(opts.port, bind, onUdp, onTcp).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') throw new RigError('MESH_ERR_PORT_IN_USE', `DNS proxy: ${bind}:${opts.port} is already in use (UDP or TCP); choose another DNS port`);
    throw err;
  });
  udp.on('error', (err) => log.warn({ err }, 'DNS UDP socket error'));
  const port = udp.address().port;
  log.info({ bind, port, names: names.size, upstream }, 'DNS proxy listening');

  return {
    port,
    address: bind,
    stats,
    update(table: NameTable) {
      names = compile(table);
      log.info({ names: names.size }, 'DNS name table updated');
    },
    close() {
      for (const s of tcpConns) s.destroy();
      return Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]).then(() => undefined);
    },
  };
}

/** Binds UDP and TCP on the same port; with port 0, retries when the TCP side of the picked port is taken. */
async function bindBoth(
  port: number,
  bind: string,
  onUdp: (udp: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => void,
  onTcp: (sock: net.Socket) => void,
): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket({ type: net.isIPv6(bind) ? 'udp6' : 'udp4' });
    udp.on('message', onUdp(udp));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', (err) => {
        udp.close();
        reject(err);
      });
      udp.bind(port, bind, () => {
        udp.removeAllListeners('error');
        resolve();
      });
    });
    const tcp = net.createServer(onTcp);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(udp.address().port, bind, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      return { udp, tcp };
    } catch (err) {
      udp.close();
      if (port !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 10) throw err;
    }
  }
}

function ednsOf(query: Packet): { udpPayloadSize: number } | undefined {
  return (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize: number } | undefined;
}
