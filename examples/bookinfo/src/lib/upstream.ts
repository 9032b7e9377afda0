// Calls to other Bookinfo services. Written once for every way the app runs:
// - explicit mode (`rig up`): HTTP_PROXY points at the sidecar's outbound port; the agent sends
//   absolute-form requests (`GET http://reviews:9080/reviews/0`) to it, so the sidecar sees the
//   full request and applies L7 routing. (fetch would tunnel with CONNECT instead.)
// - transparent interception / Kubernetes: no HTTP_PROXY; `reviews` resolves through DNS.
// `proxyEnv` also honours NO_PROXY, so calls the workload makes to itself stay direct.
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, proxyEnv: process.env });

export interface UpstreamResponse {
  status: number;
  body: unknown;
}

/** GETs a JSON document; rejects on network errors, timeouts and bodies that are not JSON. */
export function getJson(url: string, headers: Record<string, string>, timeoutMs: number): Promise<UpstreamResponse> {
  return requestJson('GET', url, headers, timeoutMs);
}

export function requestJson(method: string, url: string, headers: Record<string, string>, timeoutMs: number, body?: string): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        if ((res.headers['content-type'] ?? '').includes('json')) {
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new Error(`${url}: invalid JSON in response (status ${res.statusCode})`));
          }
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The base URL of a peer service from `<NAME>_HOSTNAME` / `<NAME>_SERVICE_PORT` (Bookinfo's variables). */
export function serviceUrl(name: string): string {
  const upper = name.toUpperCase();
  const host = process.env[`${upper}_HOSTNAME`] ?? name;
  const port = process.env[`${upper}_SERVICE_PORT`] ?? '9080';
  const domain = process.env.SERVICES_DOMAIN ? `.${process.env.SERVICES_DOMAIN}` : '';
  return `http://${host}${domain}:${port}`;
}
