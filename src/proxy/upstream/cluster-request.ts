// Requests the proxy makes on its own behalf (JWKS fetches, ext_authz checks) through one of its
// clusters, as Envoy's async HTTP/gRPC clients do: a host picked by the cluster's load balancer,
// that host's connection pool and transport socket (mTLS included). The one place outside the
// router that knows the pool's dispatch API.
import type { Dispatcher } from 'undici';
import type { ClusterManager } from './cluster-manager.ts';
import { UPSTREAM_SERVERNAME, type HeaderValue } from './upstream-pool.ts';

export interface ClusterRequest {
  readonly cluster: string;
  readonly method: string;
  /** Request-target (origin form). */
  readonly path: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body?: Buffer;
  /** Whole-request deadline (connect, head and body). */
  readonly timeoutMs: number;
  /** Cancels the request (e.g. the downstream stream that needed it is gone). */
  readonly signal?: AbortSignal;
}

export interface ClusterResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  readonly trailers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Longer response bodies fail the request: JWKS documents and authorization answers are small. */
const MAX_BODY = 1 << 20;

/** Sends one request through `req.cluster`; resolves with the whole response, rejects with a readable Error. */
export function requestThroughCluster(clusters: ClusterManager, req: ClusterRequest): Promise<ClusterResponse> {
  if (req.signal?.aborted) return Promise.reject(new Error('request cancelled'));
  const cluster = clusters.get(req.cluster);
  if (!cluster) return Promise.reject(new Error(`cluster ${req.cluster} is not configured`));
  const host = cluster.pick(undefined);
  if (!host) {
    cluster.s.cxNoneHealthy.value++;
    return Promise.reject(new Error(`cluster ${req.cluster} has no healthy host`));
  }
  cluster.s.rqTotal.value++;
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    /** Settles once; the caller's signal (often long-lived: a listener version's init) keeps no listener of it. */
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', cancelled);
      return true;
    };
    const fail = (e: Error): void => {
      if (!settle()) return;
      controller?.abort(e);
      reject(e);
    };
    const cancelled = (): void => fail(new Error('request cancelled'));
    const timer = setTimeout(() => {
      cluster.s.rqTimeout.value++;
      fail(new Error(`no response from cluster ${req.cluster} within ${req.timeoutMs} ms`));
    }, req.timeoutMs);
    req.signal?.addEventListener('abort', cancelled, { once: true });
    // Envoy's async clients have no istio.alpn override: over TLS the pool offers the cluster's ALPN.
    cluster.pool(host, cluster.config.http2).dispatch(
      { method: req.method, path: req.path, headers: req.headers, body: req.body ?? null, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs, servername: UPSTREAM_SERVERNAME },
      {
        onRequestStart(c) {
          controller = c;
          if (settled) c.abort(new Error('request cancelled'));
        },
        onResponseStart(_c, statusCode, h) {
          status = statusCode;
          headers = h as Record<string, string | string[] | undefined>;
        },
        onResponseData(_c, chunk: Buffer) {
          size += chunk.length;
          if (size > MAX_BODY) fail(new Error(`response from cluster ${req.cluster} is longer than ${MAX_BODY} bytes`));
          else chunks.push(chunk);
        },
        onResponseEnd(_c, trailers) {
          if (!settle()) return;
          cluster.s.rqCompleted.value++;
          cluster.s.codes.record(status);
          resolve({ status, headers, body: Buffer.concat(chunks), trailers: (trailers ?? {}) as Record<string, string | string[] | undefined> });
        },
        onResponseError(_c, err: Error) {
          fail(new Error(`request through cluster ${req.cluster} failed: ${err.message}`, { cause: err }));
        },
      },
    );
  });
}
