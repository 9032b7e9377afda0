// Admin GET /runtime (Envoy's JSON: layers, entries with final_value and layer_values) and
// POST /runtime_modify?k=v&... (admin layer values; an empty value removes one; the pairs may also
// come as an application/x-www-form-urlencoded body, as Envoy takes them).
import type http from 'node:http';
import { NoAdminLayerError, type EnvoyRuntime } from '../envoy-runtime/index.ts';

const USAGE = 'usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n       use an empty value to remove a previously added override\n';

type Send = (res: http.ServerResponse, status: number, body: string | object) => void;

export function runtimeDump(runtime: EnvoyRuntime, res: http.ServerResponse, send: Send): void {
  send(res, 200, runtime.dump());
}

export function runtimeModify(runtime: EnvoyRuntime, req: http.IncomingMessage, query: URLSearchParams, res: http.ServerResponse, send: Send): void {
  if (req.method !== 'POST') return send(res, 405, 'use POST\n');
  const apply = (params: URLSearchParams): void => {
    const pairs = [...params];
    if (!pairs.length) return send(res, 400, USAGE);
    try {
      runtime.modify(pairs);
    } catch (e) {
      if (e instanceof NoAdminLayerError) return send(res, 503, `${e.message}\n`);
      throw e;
    }
    send(res, 200, 'OK\n');
  };
  if (query.size || !String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return apply(query);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => apply(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
}
