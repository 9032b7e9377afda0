// Loads the subset of Envoy's v3 API that Rigging speaks, from the .proto files that ship inside
// @grpc/grpc-js-xds (folder deps/). Field names keep Envoy's snake_case, and the well-known types
// follow the proto3 JSON mapping (Duration "1.5s", wrappers as plain values, Struct as JSON,
// Any with "@type"), so a decoded resource has exactly the shape of Envoy's YAML/JSON config.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { installJsonWrappers } from './wkt-json.ts';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE_DIRS = [
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
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/health_check/v3/health_check.proto',
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

let root: protobuf.Root | undefined;
/** Files of PROTO_FILES not loaded yet, by their package. */
let pending: Map<string, string[]> | undefined;
/** When an Envoy type was last looked up (performance.now()), since the last release; the well-known types don't count. */
let lastUse: number | undefined;

// The well-known types (protobufjs bundles them): Struct carries peer metadata without any Envoy type.
const WELL_KNOWN = ['any', 'struct', 'duration', 'timestamp', 'wrappers', 'empty'].map((n) => `google/protobuf/${n}.proto`);

function resolveProto(target: string): string {
  if (path.isAbsolute(target)) return target;
  for (const dir of INCLUDE_DIRS) {
    const candidate = path.join(dir, target);
    if (fs.existsSync(candidate)) return candidate;
  }
  return target;
}

function load(r: protobuf.Root, files: string[]): void {
  r.loadSync(files, { keepCase: true });
  r.resolveAll();
  compact(r);
}

/**
 * The root as loaded so far. Files load by package when a type of theirs is first wanted
 * (rootWith, and the Any wrapper when it meets a type URL): a proxy carries the types of the
 * features its config uses, e.g. 467 of 634 types for the bench's static bootstrap (1 MB less
 * heap). envoyRoot() still has them all.
 */
function partialRoot(): protobuf.Root {
  if (root) return root;
  installJsonWrappers((typeName) => void rootWith(typeName));
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => resolveProto(target);
  pending = new Map();
  for (const f of PROTO_FILES) {
    const pkg = /^package\s+([\w.]+)\s*;/m.exec(fs.readFileSync(resolveProto(f), 'utf8'))?.[1] ?? '';
    pending.set(pkg, [...(pending.get(pkg) ?? []), f]);
  }
  load(r, WELL_KNOWN);
  root = r;
  return r;
}

/**
 * Drops the loaded types; the next lookup loads what it needs again. A proxy decodes config at
 * start-up and on each change, and in between the types are dead weight: the benchmark's static
 * bootstrap leaves a heap of 11.1 MB with them, 7.6 MB without. Loading a sidecar's types again
 * takes ~100 ms. Nothing may keep a Type across a release (look types up per message).
 */
export function releaseEnvoyTypes(): void {
  root = undefined;
  pending = undefined;
  lastUse = undefined;
}

/**
 * Releases the types each time they have gone unused for `idleMs`, then calls `onReleased` (their
 * memory returns at the next full GC); returns a function that stops it.
 */
export function releaseEnvoyTypesWhenIdle(idleMs: number, onReleased?: () => void): () => void {
  const t = setInterval(() => {
    if (lastUse === undefined || performance.now() - lastUse < idleMs) return;
    releaseEnvoyTypes();
    onReleased?.();
  }, idleMs / 2);
  t.unref();
  return () => clearInterval(t);
}

/** The protobuf root with every type Rigging uses (loaded once, on first use). */
export function envoyRoot(): protobuf.Root {
  lastUse = performance.now();
  const r = partialRoot();
  if (pending?.size) {
    const rest = [...pending.values()].flat();
    pending.clear();
    load(r, rest);
  }
  return r;
}

/**
 * The root with `fullName` (a message or enum, nested or not) loaded if Rigging has it: the files
 * of its package first, every file when that is not enough (a type of an imported-only file).
 */
export function rootWith(fullName: string): protobuf.Root {
  // Peer metadata (a Struct) is decoded per connection; it needs no Envoy type loaded.
  if (!fullName.startsWith('google.protobuf.')) lastUse = performance.now();
  const r = partialRoot();
  if (!pending?.size || r.lookup(fullName)) return r;
  const files: string[] = [];
  for (const [pkg, list] of pending) {
    if (!fullName.startsWith(pkg + '.')) continue;
    files.push(...list);
    pending.delete(pkg);
  }
  if (files.length) {
    load(r, files);
    if (r.lookup(fullName)) return r;
  }
  return envoyRoot();
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

/** Looks an enum up by its full name, e.g. `envoy.type.v3.StatusCode`. */
export function envoyEnum(fullName: string): protobuf.Enum {
  return rootWith(fullName).lookupEnum(fullName);
}

/** Looks a message type up by its full name, e.g. `envoy.config.cluster.v3.Cluster`. */
export function messageType(fullName: string): protobuf.Type {
  return rootWith(fullName).lookupType(fullName);
}
