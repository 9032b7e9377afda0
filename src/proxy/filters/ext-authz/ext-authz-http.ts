// The HTTP authorization service (Envoy's raw HTTP ext_authz client): the check request repeats the
// original method, path (after path_prefix), Host and allowed headers (Host, Method, Path,
// Content-Length and Authorization always), carries headers_to_add and the buffered body, and goes
// through the service's cluster. 200 allows (allowed_upstream_headers onto the request,
// allowed_client_headers_on_success onto the response); 5xx or no answer is an error; any other
// status denies with the service's status, body and allowed_client_headers.
import type { ClusterManager } from '../../upstream/cluster-manager.ts';
import { requestThroughCluster } from '../../upstream/cluster-request.ts';
import type { HeaderMap } from '../filter.ts';
import type { ExtAuthzConfig, HttpServiceConfig } from './ext-authz-config.ts';
import { checkHeaders, HeaderAction, type AuthzService, type CheckInput, type CheckResult, type HeaderMutation } from './ext-authz-check.ts';

const ALWAYS_SENT: ReadonlySet<string> = new Set([':authority', ':method', ':path', 'content-length', 'authorization']);
/** Headers always allowed back to the client once allowed_client_headers is set (Envoy's list). */
const ALWAYS_TO_CLIENT: ReadonlySet<string> = new Set(['www-authenticate', 'location']);
/** Never copied into a local reply: it frames its own body and connection. */
const FRAMING: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'host', 'upgrade', 'proxy-connection', 'te', 'trailer']);
const HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove';

function values(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export class HttpAuthzService implements AuthzService {
  private readonly c: ExtAuthzConfig;
  private readonly s: HttpServiceConfig;
  private readonly clusters: ClusterManager;

  constructor(c: ExtAuthzConfig, s: HttpServiceConfig, clusters: ClusterManager) {
    this.c = c;
    this.s = s;
    this.clusters = clusters;
  }

  async check(input: CheckInput, signal: AbortSignal): Promise<CheckResult> {
    const s = this.s;
    const head = input.head!;
    const picked = checkHeaders(this.c, head, ALWAYS_SENT);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(picked)) if (k[0] !== ':' && k !== 'content-length' && !FRAMING.has(k)) headers[k] = v;
    headers.host = head.authority;
    if (input.body) headers['x-envoy-auth-partial-body'] = String(input.partialBody);
    for (const [k, v] of s.headersToAdd) headers[k] = v;
    const body = input.body ?? Buffer.alloc(0);
    headers['content-length'] = String(body.length);
    let res;
    try {
      res = await requestThroughCluster(this.clusters, { cluster: s.cluster, method: head.method, path: s.pathPrefix + head.path, headers, body: body.length ? body : undefined, timeoutMs: s.timeoutMs, signal });
    } catch (e) {
      return { kind: 'error', message: (e as Error).message };
    }
    if (res.status >= 500) return { kind: 'error', message: `authorization service answered ${res.status}` };
    if (res.status === 200) {
      const headers: HeaderMutation[] = [];
      const response: HeaderMutation[] = [];
      let remove: string[] = [];
      for (const [k, v] of Object.entries(res.headers)) {
        if (k === HEADERS_TO_REMOVE) {
          remove = values(v).flatMap((x) => x.split(',')).map((x) => x.trim().toLowerCase()).filter((x) => x);
          continue;
        }
        for (const value of values(v)) {
          if (s.allowedUpstream.match(k)) headers.push({ key: k, value, action: HeaderAction.Set });
          if (s.allowedUpstreamAppend.match(k)) headers.push({ key: k, value, action: HeaderAction.Append });
          if (s.allowedClientOnSuccess.match(k)) response.push({ key: k, value, action: HeaderAction.Append });
        }
      }
      return { kind: 'ok', headers, remove, response };
    }
    const out: HeaderMap = {};
    for (const [k, v] of Object.entries(res.headers)) {
      if (FRAMING.has(k) || v === undefined) continue;
      if (s.allowedClient.set && !s.allowedClient.match(k) && !ALWAYS_TO_CLIENT.has(k)) continue;
      out[k] = v;
    }
    return { kind: 'denied', status: res.status, headers: out, body: res.body.toString() };
  }
}
