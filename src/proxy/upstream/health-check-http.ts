// HTTP active health checks (Envoy's http_health_check): a request to `path` with Host `host`
// (the cluster name when empty), User-Agent "Envoy/HC"; healthy when the status is in
// expected_statuses (default 200 only) and, if `receive` is set, the body contains those blocks.
// A status in retriable_statuses counts as a network failure (toward unhealthy_threshold); any
// other status fails the host at once. HTTP/1.1 keeps one connection per host (reuse_connection);
// codec_client_type HTTP2 uses one HTTP/2 session per host (h2c, or h2 over TLS whatever ALPN
// selected, as Envoy's codec comes from the config). Connections are the cluster's
// (health-check-transport.ts): its upstream_bind_config, tcp_keepalive (without it no
// SO_KEEPALIVE), TLS and PROXY header.
import type { ClientRequest, ClientRequestArgs } from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { http } from '../node-http.ts';
import type { Host } from './host.ts';
import { CheckResult, withTimeout, type Prober } from './health-check-prober.ts';
import { compilePayload, compilePayloads, payloadsMatch } from './health-check-payload.ts';
import type { CheckConnector } from './health-check-transport.ts';
import { CheckSessions } from './health-check-h2.ts';
import { list, object, string, uint, warnUnsupported, type ConfigIssues, type Json } from './lb/config-fields.ts';

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

/** Request options naming the host a probe is for: its connection is that host's transport. */
interface ProbeRequestArgs extends ClientRequestArgs {
  probeHost: Host;
}

/**
 * A keep-alive Agent (one connection per host) whose connections come from the checker's
 * connector, handed to the request once ready: a request written earlier would precede the PROXY
 * header (written on 'connect'). Node's keep-alive Agent would also turn SO_KEEPALIVE on for its
 * sockets (1 s idle); this one leaves keepalive as the connector set it.
 */
class ProbeAgent extends http.Agent {
  readonly #connector: CheckConnector;

  constructor(connector: CheckConnector) {
    super({ keepAlive: true, maxSockets: 1 });
    this.#connector = connector;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    let conn;
    try {
      conn = this.#connector.connect((options as ProbeRequestArgs).probeHost);
    } catch (e) {
      process.nextTick(() => callback?.(e as Error, undefined as unknown as Duplex));
      return undefined;
    }
    const { socket, ready } = conn;
    const onError = (e: Error) => callback?.(e, socket);
    socket.once('error', onError);
    socket.once(ready, () => {
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
  readonly #agent: ProbeAgent;
  readonly #sessions: CheckSessions;

  constructor(config: HttpCheckConfig, connector: CheckConnector) {
    this.#config = config;
    this.#agent = new ProbeAgent(connector);
    this.#sessions = new CheckSessions(connector);
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
      const args: ProbeRequestArgs = { host: host.address, port: host.port, method: c.method, path: c.path, headers: { ...c.headers, host: c.host }, agent: this.#agent, probeHost: host };
      req = http.request(args);
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

  #probeH2(host: Host, timeoutMs: number): Promise<CheckResult> {
    const c = this.#config;
    let stream: http2.ClientHttp2Stream | undefined;
    return withTimeout(timeoutMs, () => stream?.close(http2.constants.NGHTTP2_CANCEL), (done) => {
      let s;
      try {
        s = this.#sessions.get(host);
      } catch {
        return done(CheckResult.NetworkFailure);
      }
      stream = s.request({ ...c.headers, ':method': c.method, ':path': c.path, ':authority': c.host }, { endStream: c.send === undefined });
      if (c.send) stream.end(c.send);
      const chunks: Buffer[] = [];
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (d: Buffer) => {
        if (c.receive.length > 0) chunks.push(d);
      });
      stream.on('end', () => done(this.#classify(status, Buffer.concat(chunks))));
      // A reset, or the session's connection failing (a no-op after 'end').
      stream.on('close', () => done(CheckResult.NetworkFailure));
      stream.on('error', () => done(CheckResult.NetworkFailure));
    });
  }

  forget(host: Host): void {
    this.#sessions.forget(host);
  }

  close(): void {
    this.#agent.destroy();
    this.#sessions.close();
  }
}
