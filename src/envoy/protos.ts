// Loads the subset of Envoy's v3 API that Rigging speaks, compiled from its .proto files into
// proto/envoy-descriptors.json (src/envoy/proto-sources.ts says which files, and
// scripts/generate-envoy-descriptors.ts writes it). Field names keep Envoy's snake_case, and the
// well-known types follow the proto3 JSON mapping (Duration "1.5s", wrappers as plain values,
// Struct as JSON, Any with "@type"), so a decoded resource has exactly the shape of Envoy's
// YAML/JSON config. Loading the compiled types, rather than parsing the .proto text, took a
// sidecar's types from ~300 to ~60 ms of start-up CPU (every type: ~400 to ~75 ms).
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { installJsonWrappers } from './wkt-json.ts';
import { isBundled, WELL_KNOWN, type EnvoyDescriptors } from './proto-sources.ts';

export { PROTO_FILES } from './proto-sources.ts';

const DESCRIPTORS_FILE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../proto/envoy-descriptors.json');

let root: protobuf.Root | undefined;
/** Packages of PROTO_FILES not loaded yet, with their files. */
let pending: Map<string, string[]> | undefined;
/** The files already in the root. */
let loadedFiles: Set<string> | undefined;
/** When an Envoy type was last looked up (performance.now()), since the last release; the well-known types don't count. */
let lastUse: number | undefined;

function readDescriptors(): EnvoyDescriptors {
  return JSON.parse(fs.readFileSync(DESCRIPTORS_FILE, 'utf8')) as EnvoyDescriptors;
}

/** Adds `files` and every file they import, compiled or bundled, to the root. */
function load(r: protobuf.Root, files: string[]): void {
  // Read again each time (a few ms, a few times per config change) rather than kept between loads.
  let descriptors: EnvoyDescriptors | undefined;
  const visit = (file: string) => {
    if (loadedFiles!.has(file)) return;
    loadedFiles!.add(file);
    if (isBundled(file)) return void r.loadSync(file, { keepCase: true });
    const d = (descriptors ??= readDescriptors()).files[file];
    if (!d) throw new Error(`${DESCRIPTORS_FILE}: no compiled file ${file}; run node scripts/generate-envoy-descriptors.ts`);
    for (const i of d.imports) visit(i);
    addNested(r, d.nested);
  };
  for (const f of files) visit(f);
  // Not resolved here: protobufjs resolves a type's fields when the type is first used (setup,
  // and json.ts's field index), so only the types a config uses pay for it (resolveAll on every
  // loaded type was half of the load).
}

/** Adds compiled types under `ns`, creating the namespaces on their path (each type is in one file, so none exists yet). */
function addNested(ns: protobuf.Namespace, nested: Record<string, unknown>): void {
  for (const [name, json] of Object.entries(nested)) {
    const kind = json as { fields?: unknown; values?: unknown; methods?: unknown; nested?: Record<string, unknown> };
    if (kind.fields !== undefined) ns.add(protobuf.Type.fromJSON(name, json as protobuf.IType));
    else if (kind.values !== undefined) ns.add(protobuf.Enum.fromJSON(name, json as protobuf.IEnum));
    else if (kind.methods !== undefined) ns.add(protobuf.Service.fromJSON(name, json as protobuf.IService));
    else addNested(ns.define(name), kind.nested ?? {});
  }
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
  pending = new Map(Object.entries(readDescriptors().packages));
  loadedFiles = new Set();
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
  loadedFiles = undefined;
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

/** Looks an enum up by its full name, e.g. `envoy.type.v3.StatusCode`. */
export function envoyEnum(fullName: string): protobuf.Enum {
  return rootWith(fullName).lookupEnum(fullName);
}

/** Looks a message type up by its full name, e.g. `envoy.config.cluster.v3.Cluster`. */
export function messageType(fullName: string): protobuf.Type {
  return rootWith(fullName).lookupType(fullName);
}
