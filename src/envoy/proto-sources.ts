// Where Rigging's Envoy types come from, and how they are compiled into the descriptors that
// src/envoy/protos.ts loads at run time (proto/envoy-descriptors.json, written by
// scripts/generate-envoy-descriptors.ts): the subset of Envoy's v3 API Rigging speaks, from the
// .proto files that ship inside @grpc/grpc-js-xds (folder deps/) and a few newer or Istio files of
// this repository. Parsing that .proto text took most of a proxy's start-up; loading the compiled
// types takes a fifth of it (below, in protos.ts).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
export const INCLUDE_DIRS = [
  // Newer versions of a few Envoy files than the bundled ones (proto/envoy-api/README lists them).
  path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../proto/envoy-api'),
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d)),
  path.dirname(require.resolve('protobufjs/package.json')),
];

/** The proto files Rigging uses; everything they import is loaded with them. */
export const PROTO_FILES = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/request_id/uuid/v3/uuid.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto',
  'envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/http/header_formatters/preserve_case/v3/preserve_case.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto',
  'envoy/service/ratelimit/v3/rls.proto',
  'envoy/extensions/filters/http/health_check/v3/health_check.proto',
  'envoy/extensions/filters/http/compressor/v3/compressor.proto',
  'envoy/extensions/filters/http/decompressor/v3/decompressor.proto',
  'envoy/extensions/compression/gzip/compressor/v3/gzip.proto',
  'envoy/extensions/compression/gzip/decompressor/v3/gzip.proto',
  'envoy/extensions/compression/brotli/compressor/v3/brotli.proto',
  'envoy/extensions/compression/brotli/decompressor/v3/brotli.proto',
  'envoy/extensions/compression/zstd/compressor/v3/zstd.proto',
  'envoy/extensions/compression/zstd/decompressor/v3/zstd.proto',
  'envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto',
  'envoy/extensions/filters/http/csrf/v3/csrf.proto',
  'envoy/extensions/filters/http/lua/v3/lua.proto',
  'envoy/extensions/filters/http/wasm/v3/wasm.proto',
  'envoy/extensions/filters/network/wasm/v3/wasm.proto',
  'envoy/service/runtime/v3/rtds.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/cluster_provided/v3/cluster_provided.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/resource_monitors/fixed_heap/v3/fixed_heap.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/tracers/opentelemetry/resource_detectors/v3/environment_resource_detector.proto',
  'envoy/extensions/tracers/opentelemetry/resource_detectors/v3/dynatrace_resource_detector.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
  // Istio's DNS name table (NDS), from this repository.
  path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../proto/istio/networking/nds/v1/nds.proto'),
  // Istio's ALPN override HTTP filter (istio.alpn), from this repository.
  path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../proto/istio/envoy/config/filter/http/alpn/v2alpha1/config.proto'),
];

// The well-known types (protobufjs bundles them): Struct carries peer metadata without any Envoy type.
export const WELL_KNOWN = ['any', 'struct', 'duration', 'timestamp', 'wrappers', 'empty'].map((n) => `google/protobuf/${n}.proto`);

function resolveProto(target: string): string {
  if (path.isAbsolute(target)) return target;
  for (const dir of INCLUDE_DIRS) {
    const candidate = path.join(dir, target);
    if (fs.existsSync(candidate)) return candidate;
  }
  return target;
}

/** A file's path as the descriptors name it: relative to the include directory (or repository) it is in. */
function fileKey(file: string): string {
  if (!path.isAbsolute(file)) return file;
  for (const dir of [...INCLUDE_DIRS, REPO_ROOT]) if (file.startsWith(dir + path.sep)) return path.relative(dir, file);
  return file;
}

const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** The files a .proto file imports, as descriptor keys. */
function importsOf(file: string): string[] {
  const source = fs.readFileSync(resolveProto(file), 'utf8');
  return [...source.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map((m) => fileKey(resolveProto(m[1])));
}

/** A file protobufjs carries itself, as JSON (the well-known types). */
export function isBundled(file: string): boolean {
  return Object.prototype.hasOwnProperty.call(protobuf.common, file);
}

/** One compiled .proto file: the files it imports and the top-level types it defines, by namespace. */
export interface DescriptorFile {
  imports: string[];
  nested: Record<string, unknown>;
}

/**
 * What protos.ts loads: each package of PROTO_FILES with its files (a package's types load
 * together, on first use), and every file those import, compiled. Files protobufjs bundles as JSON
 * (the well-known types) are only named: protobufjs has them.
 */
export interface EnvoyDescriptors {
  packages: Record<string, string[]>;
  files: Record<string, DescriptorFile>;
}

/** Compiles PROTO_FILES (and their imports) into descriptors; see protos.ts for how they load. */
export function compileEnvoyDescriptors(): EnvoyDescriptors {
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => resolveProto(target);
  r.loadSync([...WELL_KNOWN, ...PROTO_FILES], { keepCase: true });
  r.resolveAll();
  compact(r);
  const files: Record<string, DescriptorFile> = {};
  const fileOf = (key: string): DescriptorFile => (files[key] ??= { imports: isBundled(key) ? [] : importsOf(key), nested: {} });
  for (const f of r.files) fileOf(fileKey(f));
  const place = (ns: protobuf.Namespace, at: string[]) => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type || o instanceof protobuf.Enum || o instanceof protobuf.Service) {
        if (!o.filename) continue; // bundled by protobufjs
        let nested = fileOf(fileKey(o.filename)).nested;
        for (const name of at) nested = ((nested[name] ??= { nested: {} }) as { nested: Record<string, unknown> }).nested;
        nested[o.name] = o.toJSON({ keepComments: false });
      } else if (o instanceof protobuf.Namespace) place(o, [...at, o.name]);
      // Extension fields (validate and udpa annotations on descriptor options) are left out: their
      // options are compacted away, so nothing reads them.
    }
  };
  place(r, []);
  const packages: Record<string, string[]> = {};
  for (const f of PROTO_FILES) {
    const pkg = /^package\s+([\w.]+)\s*;/m.exec(fs.readFileSync(resolveProto(f), 'utf8'))?.[1] ?? '';
    (packages[pkg] ??= []).push(fileKey(resolveProto(f)));
  }
  return { packages, files };
}

/**
 * Drops what neither side reads once the root is resolved: the options of every type, field and
 * enum (Envoy's validate/udpa annotations, ~1000 of them) except the two protobufjs still reads
 * later (proto3_optional, packed), and copies the reserved names of types and enums, the only
 * parsed tokens left that keep their whole .proto source alive (as V8 sliced strings: an enum's
 * kept cluster.proto and validate.proto, 0.17 MB). Heap of the root 6.3 → 4.6 MB, in 3 ms.
 */
function compact(o: protobuf.ReflectionObject): void {
  const opts = o.options;
  if (opts) {
    const keep: Record<string, unknown> = {};
    if (opts.proto3_optional !== undefined) keep.proto3_optional = opts.proto3_optional;
    if (opts.packed !== undefined) keep.packed = opts.packed;
    o.options = Object.keys(keep).length ? keep : undefined;
  }
  o.parsedOptions = undefined;
  if (o instanceof protobuf.Type) {
    if (o.reserved) o.reserved = JSON.parse(JSON.stringify(o.reserved)) as typeof o.reserved;
    for (const f of o.fieldsArray) compact(f);
    for (const x of o.oneofsArray) compact(x);
  } else if (o instanceof protobuf.Enum) {
    o.valuesOptions = undefined;
    if (o.reserved) o.reserved = JSON.parse(JSON.stringify(o.reserved)) as typeof o.reserved;
  } else if (o instanceof protobuf.Service) for (const m of o.methodsArray) compact(m);
  if (o instanceof protobuf.Namespace) for (const c of o.nestedArray) compact(c);
}

