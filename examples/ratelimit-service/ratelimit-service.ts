// A small rate limit service for Envoy's (and rig proxy's) global rate limit filter:
// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit over gRPC, configured with
// envoyproxy/ratelimit's YAML format (limits.ts). It counts in this process's memory: one instance
// only, counters lost on restart — for trying Istio's global rate limit task on `rig up`, not a
// replacement for envoyproxy/ratelimit with Redis.
//
//   node ratelimit-service.ts config [more.yaml...]   (files, or folders of .yaml/.yml files)
//   (port: $PORT_GRPC, else $GRPC_PORT, else 8081; address: $HOST, else 0.0.0.0)
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Counters, readConfig, type Entry } from './limits.ts';

interface RateLimitRequest {
  domain: string;
  descriptors?: { entries?: Entry[] }[];
  hits_addend?: number;
}

const args = process.argv.slice(2);
if (!args.length) {
  process.stderr.write('usage: node ratelimit-service.ts CONFIG... (YAML files or folders of them, envoyproxy/ratelimit configuration: domain, descriptors)\n');
  process.exit(2);
}
/** The files named, and the .yaml/.yml files of the folders named, as envoyproxy/ratelimit reads its config folder. */
function configFiles(names: string[]): string[] {
  return names.flatMap((n) =>
    fs.statSync(n).isDirectory()
      ? fs.readdirSync(n).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(n, f))
      : [n],
  );
}
let counters: Counters;
try {
  const domains = new Map();
  for (const f of configFiles(args)) for (const [d, tree] of readConfig(fs.readFileSync(f, 'utf8'), f)) domains.set(d, tree);
  counters = new Counters(domains);
  process.stdout.write(`rate limit domains: ${[...domains.keys()].join(', ')}\n`);
} catch (e) {
  process.stderr.write(`ratelimit-service: ${(e as Error).message}\n`);
  process.exit(1);
}
setInterval(() => counters.sweep(), 60_000).unref();

const require = createRequire(import.meta.url);
const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const def = protoLoader.loadSync('envoy/service/ratelimit/v3/rls.proto', { keepCase: true, longs: Number, enums: String, defaults: false, includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)) });
const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { ratelimit: { v3: { RateLimitService: grpc.ServiceClientConstructor } } } } };

const server = new grpc.Server();
server.addService(pkg.envoy.service.ratelimit.v3.RateLimitService.service, {
  ShouldRateLimit(call: grpc.ServerUnaryCall<RateLimitRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
    const { domain, descriptors = [], hits_addend: hits = 0 } = call.request;
    let over = false;
    const statuses = descriptors.map((d) => {
      const entries = d.entries ?? [];
      const v = counters.hit(domain, entries, hits || 1);
      if (v.code === 'OVER_LIMIT') over = true;
      process.stdout.write(`${domain} ${entries.map((e) => `${e.key}=${e.value}`).join(',')} ${v.code}${v.limit ? ` (${v.remaining} left of ${v.limit.requestsPerUnit}/${v.limit.unit.toLowerCase()})` : ''}\n`);
      if (!v.limit) return { code: v.code };
      return {
        code: v.code,
        current_limit: { requests_per_unit: v.limit.requestsPerUnit, unit: v.limit.unit, name: v.limit.name },
        limit_remaining: v.remaining,
        duration_until_reset: { seconds: v.resetSeconds },
      };
    });
    cb(null, { overall_code: over ? 'OVER_LIMIT' : 'OK', statuses });
  },
});

const host = process.env.HOST ?? '0.0.0.0';
const port = Number(process.env.PORT_GRPC ?? process.env.GRPC_PORT ?? 8081);
server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    process.stderr.write(`ratelimit-service: cannot listen on ${host}:${port}: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`rate limit service (gRPC) on ${host}:${bound}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.tryShutdown(() => process.exit(0)));
