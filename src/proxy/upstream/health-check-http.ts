// HTTP active health checks (Envoy's http_health_check): a request to `path` with Host `host`
// (the cluster name when empty), User-Agent "Envoy/HC"; healthy when the status is in
// expected_statuses (default 200 only) and, if `receive` is set, the body contains those blocks.
// A status in retriable_statuses counts as a network failure (toward unhealthy_threshold); any
// other status fails the host at once. HTTP/1.1 keeps one connection per host (reuse_connection);
// codec_client_type HTTP2 uses one h2c session per host. Connections have the cluster's
// tcp_keepalive and, without it, no SO_KEEPALIVE: Envoy's health checker connects with the
// cluster's socket options. Behind upstream_proxy_protocol each connection starts with the PROXY header.
import type { ClientRequest, ClientRequestArgs } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { keepaliveOnConnect, type TcpKeepalive } from '../network/tcp-keepalive.ts';
import { http } from '../node-http.ts';
import type { Host } from './host.ts';
import { CheckResult, withTimeout, type Prober } from './health-check-prober.ts';
import { compilePayload, compilePayloads, payloadsMatch } from './health-check-payload.ts';
import { list, object, string, uint, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';
import { formatIpPort } from '../network/ip-port.ts';
import { connectWithProxyHeader, type ProxyHeaderOptions } from './upstream-proxy-protocol.ts';

interface Range {
  start: number;
  end: number;
}

export interface HttpCheckConfig {
  path: string;
  host: string;
  method: string;
  expected: Range[];
  retriable: Range[];
  headers: Record<string, string>;
  removeHeaders: string[];
  send?: Buffer;
  receive: Buffer[];
  http2: boolean;
}

function ranges(v: unknown, path: string, issues: ConfigIssues): Range[] {
  return list(v, path, issues).flatMap((r, i) => {
    const o = object(r, `${path}[${i}]`, issues);
    const start = uint(o, 'start', `${path}[${i}]`, issues, 0);
    const end = uint(o, 'end', `${path}[${i}]`, issues, 0);
    if (start < 100 || end > 600 || end <= start) {
      issues.errors.push(`${path}[${i}]: expected 100 <= start < end <= 600 (end is exclusive), got [${start}, ${end})`);
      return [];
    }
    return [{ start, end }];
  });
}

const inRanges = (status: number, rs: readonly Range[]) => rs.some((r) => status >= r.start && status < r.end);

export function compileHttpCheck(o: Json, path: string, clusterName: string, issues: ConfigIssues): HttpCheckConfig {
  warnUnsupported(o, ['host', 'path', 'send', 'receive', 'request_headers_to_add', 'request_headers_to_remove', 'expected_statuses', 'retriable_statuses', 'codec_client_type', 'method'], path, issues);
  const p = string(o, 'path', path, issues);
  if (!p) issues.errors.push(`${path}.path: required (e.g. "/healthz")`);
  const headers: Record<string, string> = { 'user-agent': 'Envoy/HC' };
  list(o.request_headers_to_add, `${path}.request_headers_to_add`, issues).forEach((h, i) => {
    const hp = `${path}.request_headers_to_add[${i}]`;
    const hv = object(object(h, hp, issues)?.header, `${hp}.header`, issues);
    const key = string(hv, 'key', `${hp}.header`, issues);
    if (key) headers[key.toLowerCase()] = string(hv, 'value', `${hp}.header`, issues) ?? '';
  });
  const removeHeaders = list(o.request_headers_to_remove, `${path}.request_headers_to_remove`, issues).map((h) => String(h).toLowerCase());
  for (const h of removeHeaders) delete headers[h];
  const codec = string(o, 'codec_client_type', path, issues) ?? 'HTTP1';
  if (codec !== 'HTTP1' && codec !== 'HTTP2') issues.errors.push(`${path}.codec_client_type: ${codec} is not supported, use HTTP1 or HTTP2`);
  const expected = ranges(o.expected_statuses, `${path}.expected_statuses`, issues);
  return {
    path: p ?? '/',
    host: string(o, 'host', path, issues) || clusterName,
    method: string(o, 'method', path, issues) ?? 'GET',
    expected: expected.length > 0 ? expected : [{ start: 200, end: 201 }],
    retriable: ranges(o.retriable_statuses, `${path}.retriable_statuses`, issues),
    headers,
    removeHeaders,
    send: compilePayload(object(o.send, `${path}.send`, issues), `${path}.send`, issues),
    receive: compilePayloads(o.receive, `${path}.receive`, issues),
    http2: codec === 'HTTP2',
  };
}

/**
 * Node's keep-alive Agent turns SO_KEEPALIVE on for every socket it opens (its keepAlive option
 * reaches net.connect) and keeps (1 s idle); this one leaves a socket's keepalive as its connect
 * set it (the cluster's tcp_keepalive, or off).
 */
class ProbeAgent extends http.Agent {
  readonly #keepalive: TcpKeepalive | undefined;
  readonly #proxyHeader: ProxyHeaderOptions | undefined;

  constructor(keepalive: TcpKeepalive | undefined, proxyHeader: ProxyHeaderOptions | undefined) {
    super({ keepAlive: true, maxSockets: 1 });
    this.#keepalive = keepalive;
    this.#proxyHeader = proxyHeader;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    if (this.#proxyHeader) return this.#connectBehindHeader(this.#proxyHeader, options, callback);
    const socket = super.createConnection({ ...options, keepAlive: false } as ClientRequestArgs, callback);
    return socket instanceof net.Socket ? keepaliveOnConnect(socket, this.#keepalive) : socket;
  }

  /**
   * Handed to the request once connected: a request written while connecting would go out before
   * the header, which is written on 'connect' (v1 names the connection's own ports).
   */
  #connectBehindHeader(header: ProxyHeaderOptions, options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const socket = keepaliveOnConnect(connectWithProxyHeader(header, { host: options.host ?? undefined, port: Number(options.port) }), this.#keepalive);
    const onError = (e: Error) => callback?.(e, socket);
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      callback?.(null, socket);
    });
    return undefined;
  }

  override keepSocketAlive(socket: Duplex): void {
    const s = socket as net.Socket & { setKeepAlive: net.Socket['setKeepAlive'] };
    s.setKeepAlive = () => s;
    try {
      return super.keepSocketAlive(socket);
    } finally {
      delete (s as Partial<typeof s>).setKeepAlive;
    }
  }
}

export class HttpProber implements Prober {
  readonly #config: HttpCheckConfig;
  readonly #keepalive: TcpKeepalive | undefined;
  readonly #proxyHeader: ProxyHeaderOptions | undefined;
  readonly #agent: ProbeAgent;
  readonly #sessions = new Map<Host, http2.ClientHttp2Session>();

  constructor(config: HttpCheckConfig, keepalive?: TcpKeepalive, proxyHeader?: ProxyHeaderOptions) {
    this.#config = config;
    this.#keepalive = keepalive;
    this.#proxyHeader = proxyHeader;
    this.#agent = new ProbeAgent(keepalive, proxyHeader);
  }

  #classify(status: number, body: Buffer): CheckResult {
    const c = this.#config;
    if (inRanges(status, c.expected)) return payloadsMatch(body, c.receive) ? CheckResult.Success : CheckResult.ActiveFailure;
    return inRanges(status, c.retriable) ? CheckResult.NetworkFailure : CheckResult.ActiveFailure;
  }

  probe(host: Host, timeoutMs: number): Promise<CheckResult> {
    return this.#config.http2 ? this.#probeH2(host, timeoutMs) : this.#probeH1(host, timeoutMs);
  }

  #probeH1(host: Host, timeoutMs: number): Promise<CheckResult> {
    const c = this.#config;
    let req: ClientRequest | undefined;
    return withTimeout(timeoutMs, () => req?.destroy(), (done) => {
      req = http.request({ host: host.address, port: host.port, method: c.method, path: c.path, headers: { ...c.headers, host: c.host }, agent: this.#agent });
      req.on('error', () => done(CheckResult.NetworkFailure));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        if (c.receive.length > 0) res.on('data', (d: Buffer) => chunks.push(d));
        else res.resume();
        res.on('end', () => done(this.#classify(res.statusCode ?? 0, Buffer.concat(chunks))));
        res.on('error', () => done(CheckResult.NetworkFailure));
      });
      req.end(c.send);
    });
  }

  #session(host: Host): http2.ClientHttp2Session {
    let s = this.#sessions.get(host);
    if (s && !s.closed && !s.destroyed) return s;
    const authority = formatIpPort(host.address, host.port);
    const ka = this.#keepalive;
    const pp = this.#proxyHeader;
    const opts = { host: host.address, port: host.port };
    s = http2.connect(`http://${authority}`, { createConnection: () => keepaliveOnConnect(pp ? connectWithProxyHeader(pp, opts) : net.connect(opts), ka) });
    s.on('error', () => this.#sessions.delete(host));
    s.on('close', () => {
      if (this.#sessions.get(host) === s) this.#sessions.delete(host);
    });
    s.unref();
    this.#sessions.set(host, s);
    return s;
  }

  #probeH2(host: Host, timeoutMs: number): Promise<CheckResult> {
    const c = this.#config;
    let stream: http2.ClientHttp2Stream | undefined;
    return withTimeout(timeoutMs, () => stream?.close(http2.constants.NGHTTP2_CANCEL), (done) => {
      const s = this.#session(host);
      s.once('error', () => done(CheckResult.NetworkFailure));
      stream = s.request({ ...c.headers, ':method': c.method, ':path': c.path, ':authority': c.host }, { endStream: c.send === undefined });
      if (c.send) stream.end(c.send);
      const chunks: Buffer[] = [];
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (d: Buffer) => {
        if (c.receive.length > 0) chunks.push(d);
      });
      stream.on('end', () => done(this.#classify(status, Buffer.concat(chunks))));
      stream.on('error', () => done(CheckResult.NetworkFailure));
    });
  }

  forget(host: Host): void {
    this.#sessions.get(host)?.destroy();
    this.#sessions.delete(host);
  }

  close(): void {
    this.#agent.destroy();
    for (const s of this.#sessions.values()) s.destroy();
    this.#sessions.clear();
  }
}
