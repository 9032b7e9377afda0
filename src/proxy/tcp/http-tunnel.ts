// tcp_proxy tunneling_config: the TCP stream carried in an HTTP request to an upstream proxy, as
// Envoy's HttpUpstream does (source/common/tcp_proxy/upstream.cc). On a connected upstream socket
// the proxy sends a CONNECT (or, with use_post, a POST to post_path) whose authority is the
// hostname format evaluated for the connection, plus headers_to_add. Over HTTP/1.1 each tunnel has
// a connection of its own; when the cluster speaks HTTP/2 each tunnel is a stream of the cluster's
// HTTP/2 pool (openPooledH2Tunnel), sharing its connections with the router and the other tunnels
// as Envoy's HttpConnPool does. The bytes flow once the proxy answers 2xx
// (HTTP/1.1) or exactly 200 (HTTP/2); any other answer, a reset or a close before it fails the
// tunnel, which tcp_proxy treats as an upstream connect failure. Response headers and trailers go
// to the connection's filter state when asked (propagate_response_headers/trailers).
import type net from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Reader } from '../config/reader.ts';
import type { StreamInfo } from '../stream-info.ts';
import { compileFormatter, readHeadersToAdd, type Formatter, type HeaderOps } from '../routing/header-ops.ts';
import type { HeaderMap } from '../filters/filter.ts';
import { http } from '../node-http.ts';
import type { Dispatcher } from 'undici';
import { UPSTREAM_SERVERNAME, type UpstreamPool } from '../upstream/upstream-pool.ts';
import { dispatchConnect, upstreamLocalAddress, type PooledStreamSlot } from '../upstream/pooled-connect.ts';

export const TUNNEL_RESPONSE_HEADERS_STATE = 'envoy.tcp_proxy.propagate_response_headers';
export const TUNNEL_RESPONSE_TRAILERS_STATE = 'envoy.tcp_proxy.propagate_response_trailers';

export interface TunnelingConfig {
  readonly hostname: Formatter;
  readonly usePost: boolean;
  readonly postPath: string;
  readonly headers: HeaderOps;
  readonly propagateHeaders: boolean;
  readonly propagateTrailers: boolean;
}

export function readTunnelingConfig(r: Reader): TunnelingConfig {
  const host = r.str('hostname');
  if (!host) r.issues.error(r.at('hostname'), 'tunneling_config needs a hostname (the authority of the CONNECT, e.g. "example.com:443")');
  const usePost = r.bool('use_post', false);
  const postPath = r.str('post_path');
  if (postPath && !usePost) r.issues.error(r.at('post_path'), "Can't set a post path when POST method isn't used (set use_post: true or leave post_path out)");
  if (r.has('request_id_extension')) r.issues.warn(r.at('request_id_extension'), 'request_id_extension is not supported: no request ID is generated for the tunnel');
  const config: TunnelingConfig = {
    hostname: compileFormatter(host, r.at('hostname'), r),
    usePost,
    postPath: postPath || '/',
    headers: readHeadersToAdd(r, 'headers_to_add'),
    propagateHeaders: r.bool('propagate_response_headers', false),
    propagateTrailers: r.bool('propagate_response_trailers', false),
  };
  r.done();
  return config;
}

/** The request headers of the tunnel besides method, authority, path and scheme. */
function extraHeaders(c: TunnelingConfig, info: StreamInfo): HeaderMap {
  const h: HeaderMap = {};
  if (!c.headers.empty) c.headers.apply(h, info, undefined);
  return h;
}

/** Why a tunnel failed before bytes could flow: the proxy's status (0 when none came) and the reason. */
export interface TunnelFailure {
  readonly status: number;
  readonly reason: string;
  /** A pooled tunnel refused by the cluster's circuit breaker while it waited for a connection. */
  readonly overflow?: boolean;
}

export type TunnelAnswer = (failure: TunnelFailure | undefined, stream: net.Socket | undefined) => void;

/**
 * Opens the tunnel over HTTP/1.1 on `up`, a connected (TLS done) upstream socket; calls back once,
 * with the stream that carries the bytes both ways (ending it half-closes the tunnel, destroying it
 * closes the upstream) or why it failed (`up` is then destroyed). Returns an abort, for a
 * downstream that went away meanwhile. `state` (the connection's filter state) receives the
 * response headers and trailers when configured.
 */
export function openH1Tunnel(up: net.Socket, c: TunnelingConfig, info: StreamInfo, state: Record<string, unknown>, cb: TunnelAnswer): () => void {
  let answered = false;
  const answer: TunnelAnswer = (failure, stream) => {
    if (answered) return;
    answered = true;
    if (failure) up.destroy();
    cb(failure, stream);
  };
  const authority = c.hostname.constant ?? c.hostname.format(info, undefined);
  const extra = extraHeaders(c, info);
  if (c.usePost) postOverH1(up, authority, extra, c, state, answer);
  else connectOverH1(up, authority, extra, c, state, answer);
  return () => answer({ status: 0, reason: 'downstream closed before the tunnel was established' }, undefined);
}

function noop(): void {}

/**
 * Opens the tunnel as a stream of the cluster's HTTP/2 `pool` under the circuit breakers `slot`
 * holds (pooled-connect.ts): `attached` is told once it is on a connection (where Envoy's pool
 * charges the request: the pool itself counts the host's rq_total). Calls back as openH1Tunnel
 * (perhaps before returning); a refused or reset stream fails this tunnel only, the connection
 * stays. The connection's local address goes to `info` once the stream is answered.
 */
export function openPooledH2Tunnel(pool: UpstreamPool, slot: PooledStreamSlot, c: TunnelingConfig, info: StreamInfo, state: Record<string, unknown>, attached: () => void, cb: TunnelAnswer): () => void {
  const authority = c.hostname.constant ?? c.hostname.format(info, undefined);
  const headers = extraHeaders(c, info);
  if (!c.usePost) {
    // Envoy takes exactly 200 over HTTP/2.
    const abort = dispatchConnect(pool, slot, { authority, headers }, (status) => status === 200, attached, (a) => {
      if (a.localAddress) info.upstreamLocalAddress = a.localAddress;
      if (c.propagateHeaders && a.status) state[TUNNEL_RESPONSE_HEADERS_STATE] = { ':status': String(a.status), ...plainHeaders(a.headers) };
      if (!a.stream) return cb({ status: a.status, reason: a.reason, overflow: a.overflow }, undefined);
      if (c.propagateTrailers) a.stream.once('trailers', (t) => (state[TUNNEL_RESPONSE_TRAILERS_STATE] = plainHeaders(t)));
      cb(undefined, a.stream as unknown as net.Socket);
    });
    return () => abort('downstream closed before the tunnel was established');
  }
  const t = new PooledPost(c, info, state, slot, attached, cb);
  // undici takes the scheme from the pool's origin and :authority from host.
  pool.dispatch({ method: 'POST', path: c.postPath, headers: { ...headers, host: authority }, body: t.body, servername: UPSTREAM_SERVERNAME }, t);
  if (!slot.queued()) t.fail({ status: 0, reason: 'overflow', overflow: true });
  return () => t.fail({ status: 0, reason: 'downstream closed before the tunnel was established' });
}

/** The pool's handler of one POST tunnel stream: its response is the tunnel's downstream half. */
class PooledPost implements Dispatcher.DispatchHandler {
  readonly body = new PassThrough();
  private readonly c: TunnelingConfig;
  private readonly info: StreamInfo;
  private readonly state: Record<string, unknown>;
  private readonly slot: PooledStreamSlot;
  private readonly attached: () => void;
  private readonly cb: TunnelAnswer;
  private controller: Dispatcher.DispatchController | undefined;
  private answered = false;
  /** The tunnel's bytes, once established. */
  private post: Duplex | undefined;

  constructor(c: TunnelingConfig, info: StreamInfo, state: Record<string, unknown>, slot: PooledStreamSlot, attached: () => void, cb: TunnelAnswer) {
    this.c = c;
    this.info = info;
    this.state = state;
    this.slot = slot;
    this.attached = attached;
    this.cb = cb;
    this.body.on('error', noop);
  }

  /** Gives up on the stream (reset when it is open). */
  fail(failure: TunnelFailure): void {
    if (this.answered) return;
    this.controller?.abort(new Error(failure.reason));
    this.answer(failure, undefined);
  }

  private answer(failure: TunnelFailure | undefined, stream: net.Socket | undefined): void {
    if (this.answered) return;
    this.answered = true;
    if (failure) {
      this.body.destroy();
      this.slot.release();
    }
    this.cb(failure, stream);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // Given up while it waited for a connection: it leaves before it is on one.
    if (this.answered) return controller.abort(new Error('tunnel abandoned'));
    this.controller = controller;
    this.slot.attach();
    this.attached();
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.answered) return controller.abort(new Error('tunnel abandoned'));
    this.info.upstreamLocalAddress = upstreamLocalAddress(controller);
    if (this.c.propagateHeaders) this.state[TUNNEL_RESPONSE_HEADERS_STATE] = { ':status': String(status), ...plainHeaders(headers) };
    if (status !== 200) return this.fail({ status, reason: `tunnel refused by upstream: ${status}` });
    const body = this.body;
    this.post = new Duplex({
      allowHalfOpen: true,
      read: () => controller.resume(),
      write: (chunk: Buffer, _enc, done) => (body.write(chunk) ? done() : body.once('drain', done)),
      final: (done) => {
        body.end();
        done();
      },
      destroy: (err, done) => {
        controller.abort(err ?? new Error('tunnel closed'));
        done(err);
      },
    });
    this.answer(undefined, this.post as unknown as net.Socket);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.post && !this.post.push(chunk)) controller.pause();
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.c.propagateTrailers) this.state[TUNNEL_RESPONSE_TRAILERS_STATE] = plainHeaders(trailers);
    this.post?.push(null);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.post) this.post.destroy(err);
    else this.fail({ status: 0, reason: err.message });
  }
}

const MAX_HEAD = 64 * 1024;

/** CONNECT over HTTP/1.1, written and read here: the response head's bytes, then the raw stream. */
function connectOverH1(up: net.Socket, authority: string, extra: HeaderMap, c: TunnelingConfig, state: Record<string, unknown>, answer: TunnelAnswer): void {
  let out = `CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n`;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) for (const x of Array.isArray(v) ? v : [v]) out += `${k}: ${x}\r\n`;
  up.write(out + '\r\n');
  let buf: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD) answer({ status: 0, reason: 'tunnel response head too large' }, undefined);
      return;
    }
    up.off('data', onData);
    up.off('close', onClose);
    up.pause();
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    const status = m ? Number(m[1]) : 0;
    if (c.propagateHeaders) {
      const h: Record<string, string> = { ':status': String(status) };
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      state[TUNNEL_RESPONSE_HEADERS_STATE] = h;
    }
    // RFC 9110 §9.3.6, as Envoy: any 2xx establishes the tunnel.
    if (status < 200 || status > 299) return answer({ status, reason: m ? `tunnel refused by upstream: ${status}` : 'invalid tunnel response' }, undefined);
    const rest = buf.subarray(end + 4);
    if (rest.length) up.unshift(rest);
    answer(undefined, up);
  };
  const onClose = (): void => answer({ status: 0, reason: 'upstream closed before the tunnel response' }, undefined);
  up.on('data', onData);
  up.once('close', onClose);
  up.resume();
}

/** POST over HTTP/1.1, through node's client: a chunked request body, the response body framed as it says. */
function postOverH1(up: net.Socket, authority: string, extra: HeaderMap, c: TunnelingConfig, state: Record<string, unknown>, answer: TunnelAnswer): void {
  const req = http.request({ createConnection: () => up, method: 'POST', path: c.postPath, headers: { ...extra, host: authority } });
  req.on('error', (e) => answer({ status: 0, reason: e.message }, undefined));
  req.once('close', () => answer({ status: 0, reason: 'upstream closed before the tunnel response' }, undefined));
  req.once('response', (res: IncomingMessage) => {
    const status = res.statusCode ?? 0;
    if (c.propagateHeaders) state[TUNNEL_RESPONSE_HEADERS_STATE] = { ':status': String(status), ...plainHeaders(res.headers) };
    if (status < 200 || status > 299) {
      res.resume();
      return answer({ status, reason: `tunnel refused by upstream: ${status}` }, undefined);
    }
    if (c.propagateTrailers) res.once('end', () => (state[TUNNEL_RESPONSE_TRAILERS_STATE] = plainHeaders(res.trailers)));
    answer(undefined, Duplex.from({ readable: res, writable: req }) as unknown as net.Socket);
  });
  req.flushHeaders();
}

function plainHeaders(h: IncomingHttpHeaders | NodeJS.Dict<string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}
