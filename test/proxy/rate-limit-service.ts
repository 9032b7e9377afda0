// A real @grpc/grpc-js rate limit service (envoy.service.ratelimit.v3.RateLimitService) for the
// rate limit filter's tests: it counts hits per descriptor (its entries, in order) and answers
// OVER_LIMIT once a descriptor had more than `limit` hits; every status carries current_limit
// (`limit` per MINUTE), limit_remaining and duration_until_reset.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

export interface Entry {
  key: string;
  value: string;
}

export interface RateLimitRequest {
  domain: string;
  descriptors: { entries: Entry[] }[];
}

export interface RateLimitService {
  port: number;
  requests: RateLimitRequest[];
  /** Each call's metadata (request headers). */
  metadata: Record<string, unknown>[];
  /** Whether each call came with a deadline (grpc-timeout, which grpc-js keeps out of the metadata). */
  hadDeadline: boolean[];
  /** Hits so far by descriptor ("k=v,k2=v2"). */
  hits: Map<string, number>;
  /** Hits a descriptor may have before it is over the limit. */
  limit: number;
  /** Added to every answer. */
  responseHeaders: { key: string; value: string }[];
  requestHeaders: { key: string; value: string }[];
  /** raw_body of OVER_LIMIT answers. */
  body?: string;
  /** dynamic_metadata of every answer (proto-loader's Struct shape: { fields: { k: { stringValue } } }). */
  dynamicMetadata?: unknown;
  /** While set, calls are answered only after this many ms. */
  delayMs: number;
  close(): void;
}

export const descriptorKey = (entries: Entry[]) => entries.map((e) => `${e.key}=${e.value}`).join(',');

let service: grpc.ServiceDefinition | undefined;

function definition(): grpc.ServiceDefinition {
  if (service) return service;
  const def = protoLoader.loadSync('envoy/service/ratelimit/v3/rls.proto', { keepCase: true, longs: Number, enums: String, defaults: false, includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d)) });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { ratelimit: { v3: { RateLimitService: grpc.ServiceClientConstructor } } } } };
  return (service = pkg.envoy.service.ratelimit.v3.RateLimitService.service);
}

export async function startRateLimitService(limit: number, port = 0): Promise<RateLimitService> {
  const server = new grpc.Server();
  const rls: RateLimitService = { port: 0, requests: [], metadata: [], hadDeadline: [], hits: new Map(), limit, responseHeaders: [], requestHeaders: [], delayMs: 0, close: () => server.forceShutdown() };
  server.addService(definition(), {
    ShouldRateLimit(call: grpc.ServerUnaryCall<RateLimitRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
      rls.requests.push(call.request);
      rls.metadata.push(call.metadata.getMap());
      rls.hadDeadline.push(Number.isFinite(Number(call.getDeadline())));
      const statuses = call.request.descriptors.map((d) => {
        const key = descriptorKey(d.entries);
        const n = (rls.hits.get(key) ?? 0) + 1;
        rls.hits.set(key, n);
        const code = n > rls.limit ? 'OVER_LIMIT' : 'OK';
        return { code, current_limit: { requests_per_unit: rls.limit, unit: 'MINUTE' }, limit_remaining: Math.max(0, rls.limit - n), duration_until_reset: { seconds: 42 } };
      });
      const over = statuses.some((s) => s.code === 'OVER_LIMIT');
      const answer = {
        overall_code: over ? 'OVER_LIMIT' : 'OK',
        statuses,
        response_headers_to_add: rls.responseHeaders,
        request_headers_to_add: rls.requestHeaders,
        raw_body: over && rls.body ? Buffer.from(rls.body) : undefined,
        dynamic_metadata: rls.dynamicMetadata,
      };
      if (rls.delayMs) setTimeout(() => cb(null, answer), rls.delayMs);
      else cb(null, answer);
    },
  });
  rls.port = await new Promise<number>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return rls;
}
