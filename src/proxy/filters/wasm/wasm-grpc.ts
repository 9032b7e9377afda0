// gRPC callouts of Proxy-Wasm plugins (proxy_grpc_call, proxy_grpc_stream) as Envoy's envoy_grpc
// async client makes them: an HTTP/2 POST through one of the proxy's clusters (its load balancer and
// pool), the request body a stream of length-prefixed messages the plugin sends. A unary call ends in
// one proxy_on_grpc_receive (OK and one message) or one proxy_on_grpc_close (any other end); a stream
// reports its initial metadata, each message, its trailing metadata and its close, as Envoy's
// GrpcStreamClientHandler. The target is a cluster name or a serialized GrpcService (envoy_grpc).
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { decodeMessage } from '../../../envoy/index.ts';
import { Issues, Reader } from '../../config/reader.ts';
import { readGrpcService } from '../../config/grpc-service.ts';
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { grpcFrame, grpcTimeoutHeader } from '../../upstream/cluster-grpc.ts';
import { firstHeaderValue as first } from '../../http/first-header-value.ts';
import type { HeaderMap } from '../filter.ts';
import type { HostContext } from './wasm-vm.ts';

const EMPTY = Buffer.alloc(0);

export const GrpcStatus = { Ok: 0, Unknown: 2, DeadlineExceeded: 4, Unimplemented: 12, Internal: 13, Unavailable: 14, Unauthenticated: 16, PermissionDenied: 7 } as const;

/** Where a callout goes: the cluster, its :authority, a timeout (0: none) and metadata to send. */
export interface GrpcTarget {
  readonly cluster: string;
  readonly authority: string;
  readonly timeoutMs: number;
  readonly metadata: readonly (readonly [string, string])[];
}

/**
 * The target of `upstream`: a cluster's name, else a serialized envoy.config.core.v3.GrpcService
 * (envoy_grpc only). A string: why it cannot be used. `warn` gets the fields of a GrpcService rig
 * proxy does not use.
 */
export function grpcTarget(clusters: ClusterManager, upstream: Buffer, warn: (msg: string) => void): GrpcTarget | string {
  const name = upstream.toString('utf8');
  let target: GrpcTarget;
  if (clusters.get(name)) target = { cluster: name, authority: name, timeoutMs: 0, metadata: [] };
  else {
    let json: unknown;
    try {
      json = decodeMessage('envoy.config.core.v3.GrpcService', upstream);
    } catch {
      return `"${name}" is neither a cluster nor a serialized GrpcService`;
    }
    const issues = new Issues();
    const s = readGrpcService(new Reader(json, 'grpc_service', issues), 'wasm plugin gRPC', 0);
    for (const w of issues.warnings) warn(w);
    if (issues.errors.length) return issues.errors.join('; ');
    target = { cluster: s.cluster, authority: s.authority, timeoutMs: s.timeoutMs, metadata: s.initialMetadata };
  }
  const cluster = clusters.get(target.cluster);
  if (!cluster) return `cluster ${target.cluster} is not configured`;
  if (!cluster.config.http2) return `cluster ${target.cluster} does not speak HTTP/2, which gRPC needs`;
  return target;
}

/** What happens to a callout, for the VM to run the plugin's callbacks. */
export interface GrpcCalloutOwner {
  grpcInitialMetadata(c: GrpcCallout, headers: HeaderMap): void;
  grpcMessage(c: GrpcCallout, message: Buffer): void;
  grpcTrailingMetadata(c: GrpcCallout, trailers: HeaderMap): void;
  grpcClose(c: GrpcCallout, status: number, message: string): void;
}

/** gRPC status for an HTTP status that is not 200 (Envoy's Grpc::Utility::httpToGrpcStatus). */
function httpToGrpc(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.Internal;
    case 401:
      return GrpcStatus.Unauthenticated;
    case 403:
      return GrpcStatus.PermissionDenied;
    case 404:
      return GrpcStatus.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.Unavailable;
    default:
      return GrpcStatus.Unknown;
  }
}

export class GrpcCallout implements Dispatcher.DispatchHandler {
  readonly token: number;
  /** The root context of the context that made it, whose callbacks it runs (as Envoy). */
  readonly ctx: HostContext;
  /** The context that made it, told when the VM fails. */
  readonly origin: HostContext;
  readonly unary: boolean;
  private readonly owner: GrpcCalloutOwner;
  private readonly body = new PassThrough();
  private controller: Dispatcher.DispatchController | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Response bytes not yet a whole message. */
  private partial: Buffer = EMPTY;
  private httpStatus = 0;
  /** grpc-status / grpc-message of a trailers-only response (in its headers). */
  private headStatus: string | undefined;
  private headMessage: string | undefined;
  /** A unary call's answer, reported once the call ended OK. */
  private answer: Buffer | undefined;
  /** The plugin half-closed the stream (or the unary request was sent whole). */
  localClosed = false;
  /** The callout ended: closed by the remote, failed, or cancelled. */
  ended = false;

  constructor(owner: GrpcCalloutOwner, token: number, ctx: HostContext, origin: HostContext, unary: boolean) {
    this.owner = owner;
    this.token = token;
    this.ctx = ctx;
    this.origin = origin;
    this.unary = unary;
    this.body.on('error', noop);
  }

  /** Starts the call; false when the cluster has no healthy host. */
  start(clusters: ClusterManager, target: GrpcTarget, path: string, metadata: readonly (readonly [string, string])[], timeoutMs: number): boolean {
    const cluster = clusters.get(target.cluster)!;
    const host = cluster.pick(undefined);
    if (!host) {
      cluster.s.cxNoneHealthy.value++;
      return false;
    }
    const headers: Record<string, string | string[]> = { host: target.authority, 'content-type': 'application/grpc', te: 'trailers', 'x-envoy-internal': 'true' };
    const timeout = timeoutMs || target.timeoutMs;
    if (timeout > 0) {
      headers['grpc-timeout'] = grpcTimeoutHeader(timeout);
      this.timer = setTimeout(onDeadline, timeout, this);
    }
    for (const list of [target.metadata, metadata]) {
      for (const [k, v] of list) {
        const key = k.toLowerCase();
        const value = key.endsWith('-bin') ? Buffer.from(v, 'latin1').toString('base64') : v;
        const cur = headers[key];
        headers[key] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
      }
    }
    cluster.s.rqTotal.value++;
    cluster.pool(host, true).dispatch({ method: 'POST', path, headers, body: this.body, headersTimeout: 0, bodyTimeout: 0 }, this);
    return true;
  }

  send(message: Buffer, endStream: boolean): void {
    if (this.localClosed || this.ended) return;
    this.body.write(grpcFrame(message));
    if (endStream) this.closeLocal();
  }

  /** Half-closes the request (its last message sent). */
  closeLocal(): void {
    if (this.localClosed) return;
    this.localClosed = true;
    this.body.end();
  }

  /** Abandons the callout: no more callbacks. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    this.controller?.abort(new Error('gRPC callout cancelled'));
    this.body.destroy();
  }

  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private close(status: number, message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    if (this.unary && status === GrpcStatus.Ok && this.answer) this.owner.grpcMessage(this, this.answer);
    else this.owner.grpcClose(this, status, message);
  }

  deadline(): void {
    if (this.ended) return;
    this.controller?.abort(new Error('gRPC callout deadline exceeded'));
    this.close(GrpcStatus.DeadlineExceeded, 'deadline exceeded');
  }

  // === the response (undici's DispatchHandler) ===

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (this.ended) c.abort(new Error('gRPC callout cancelled'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (this.ended) return;
    this.httpStatus = status;
    this.headStatus = first(headers['grpc-status']);
    this.headMessage = first(headers['grpc-message']);
    if (status === 200 && this.headStatus === undefined && !this.unary) this.owner.grpcInitialMetadata(this, { ':status': String(status), ...headers });
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.ended || this.httpStatus !== 200) return;
    let buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    while (!this.ended && buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const end = 5 + buf.readUInt32BE(1);
      const message = Buffer.from(buf.subarray(5, end));
      buf = buf.subarray(end);
      if (this.unary) this.answer = message;
      else this.owner.grpcMessage(this, message);
    }
    this.partial = buf.length ? Buffer.from(buf) : EMPTY;
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.ended) return;
    let any = false;
    for (const _k in trailers) {
      any = true;
      break;
    }
    if (any && !this.unary) this.owner.grpcTrailingMetadata(this, { ...trailers });
    if (this.ended) return;
    const status = first(trailers['grpc-status']) ?? this.headStatus;
    const message = first(trailers['grpc-message']) ?? this.headMessage ?? '';
    if (this.httpStatus !== 200) this.close(httpToGrpc(this.httpStatus), `HTTP ${this.httpStatus}`);
    else if (status === undefined || !/^\d+$/.test(status)) this.close(GrpcStatus.Unknown, 'no grpc-status');
    else if (this.unary && Number(status) === GrpcStatus.Ok && !this.answer) this.close(GrpcStatus.Internal, 'no response message');
    else this.close(Number(status), decodeGrpcMessage(message));
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.close(GrpcStatus.Unavailable, err.message);
  }
}

function onDeadline(c: GrpcCallout): void {
  c.deadline();
}

function decodeGrpcMessage(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

function noop(): void {}
