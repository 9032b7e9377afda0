// Reads resources from YAML/JSON text, files and directories, keeping where each one was written.
// Every problem becomes a diagnostic; one bad document never stops the others from being read.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, isMap, isSeq, parseAllDocuments } from 'yaml';
import type { Document, Node } from 'yaml';
import { closest, distance } from 'fastest-levenshtein';
import type { Diagnostic } from './diagnostic.ts';
import { formatPath } from './diagnostic.ts';
import { KIND_INFO, OWNED_GROUPS, TOP_LEVEL_CONTENT, PARTLY_READ_GROUPS, WRITTEN_KINDS, apiVersionsOf, describeResource, displayKind, groupOf, kindOf, kindsWritten } from './kinds.ts';

export { describeResource };
import type { ObjectMeta, Resource, SourcePosition } from './resource.ts';
import { resourceKey } from './resource.ts';
import type { Locator } from './source-map.ts';
import { YamlLocator, rememberLocator } from './source-map.ts';
import type { ValidateOptions } from './validation/index.ts';
import { validateResource } from './validation/index.ts';

export interface LoadOptions extends ValidateOptions {
  /** Namespace of resources that name none (default `default`). */
  defaultNamespace?: string;
  /** Run structural and semantic validation (default true). Invalid resources are left out of `resources`. */
  validate?: boolean;
  /**
   * The same Kind/namespace/name twice: 'error' (default: a configuration must be unambiguous; the
   * first stays) or 'keep' (each document is checked on its own, as `istioctl validate` does).
   */
  duplicates?: 'error' | 'keep';
}

export interface LoadResult {
  resources: Resource[];
  diagnostics: Diagnostic[];
  /** The files read (loadPaths only). */
  files?: string[];
}

/** The code of the note for a document of a kind Rigging does not read (severity Info). */
export const SKIPPED_KIND = 'RIG0003';

/** Gateway API kinds Rigging does not read: warned about (a route that does nothing should say so), never taken for typos. */
const OTHER_GATEWAY_API_KINDS = new Set(['UDPRoute', 'BackendLBPolicy', 'XBackendTrafficPolicy', 'BackendTrafficPolicy', 'XMesh']);
/** The Gateway API's experimental group, where the ListenerSet of older Istio releases (XListenerSet) lives. */
const X_GATEWAY_API_GROUP = 'gateway.networking.x-k8s.io';
const ENVELOPE_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
const MAX_ALIASES = 1000;

/** Parses multi-document YAML (or JSON) text. `file` is used in positions. */
export function loadDocuments(text: string, file: string, opts: LoadOptions = {}): LoadResult {
  const lines = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const resources: Resource[] = [];
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true }) as Document.Parsed[];
    if (!Array.isArray(docs)) docs = [];
  } catch (err) {
    diagnostics.push({ severity: 'Error', code: 'RIG0001', message: `cannot parse: ${(err as Error).message}`, source: { file, line: 1, column: 1 } });
    return { resources, diagnostics };
  }
  for (const doc of docs) {
    const pos = (offset: number | undefined): SourcePosition => {
      const { line, col } = lines.linePos(offset ?? 0);
      return { file, line, column: col };
    };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        diagnostics.push({
          severity: 'Error',
          code: 'RIG0001',
          message: `YAML syntax error: ${e.message.split('\n')[0]}`,
          hint: 'fix the YAML syntax (indentation, quoting, duplicate keys); the other documents of this file are still read',
          source: pos(e.pos[0]),
        });
      }
      continue;
    }
    for (const w of doc.warnings) {
      diagnostics.push({ severity: 'Warning', code: 'RIG0001', message: `YAML: ${w.message.split('\n')[0]}`, source: pos(w.pos[0]) });
    }
    const root = doc.contents as Node | null;
    if (!root) continue;
    for (const node of itemsOf(root, pos, diagnostics)) {
      const locator = new YamlLocator(file, lines, node);
      let value: unknown;
      try {
        value = node.toJS(doc, { maxAliasCount: MAX_ALIASES });
      } catch (err) {
        diagnostics.push({ severity: 'Error', code: 'RIG0001', message: `cannot read document: ${(err as Error).message}`, source: pos(node.range?.[0]) });
        continue;
      }
      const built = toResource(value, locator, opts, diagnostics);
      if (built) resources.push(built);
    }
  }
  return { resources: opts.duplicates === 'keep' ? resources : dropDuplicates(resources, diagnostics), diagnostics };
}

/** Reads files and directories (recursively: *.yaml, *.yml, *.json); `-` reads standard input. */
export async function loadPaths(paths: readonly string[], opts: LoadOptions = {}): Promise<LoadResult> {
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  const files: string[] = [];
  for (const p of paths) {
    for (const file of await filesOf(p, diagnostics)) {
      files.push(file);
      let text: string;
      try {
        text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
      } catch (err) {
        diagnostics.push(fileError(file, err));
        continue;
      }
      const r = loadDocuments(text, file === '-' ? '<stdin>' : file, opts);
      resources.push(...r.resources);
      diagnostics.push(...r.diagnostics);
    }
  }
  return { resources: opts.duplicates === 'keep' ? resources : dropDuplicates(resources, diagnostics), diagnostics, files };
}

/** The configuration files under a path, sorted; a file named explicitly is read whatever its extension. */
export async function filesOf(path: string, diagnostics: Diagnostic[]): Promise<string[]> {
  if (path === '-') return ['-'];
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    diagnostics.push(fileError(path, err));
    return [];
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (err) {
    diagnostics.push(fileError(path, err));
    return [];
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const child = join(path, e.name);
    if (e.isDirectory()) out.push(...(await filesOf(child, diagnostics)));
    else if (isConfigFile(e.name)) out.push(child);
  }
  return out;
}

export function isConfigFile(name: string): boolean {
  return /\.(ya?ml|json)$/i.test(name) && !name.startsWith('.');
}

function fileError(file: string, err: unknown): Diagnostic {
  const code = (err as NodeJS.ErrnoException).code;
  const message = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
  return { severity: 'Error', code: 'RIG0005', message: `cannot read ${file}: ${message}`, hint: 'check the path given with -f', source: { file, line: 0, column: 0 } };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A document is one resource, a `kind: List` of resources, or a top-level sequence of resources. */
function itemsOf(root: Node, pos: (o: number | undefined) => SourcePosition, diagnostics: Diagnostic[]): Node[] {
  if (isSeq(root)) return root.items as Node[];
  if (isMap(root) && root.get('kind') === 'List') {
    const items = root.get('items', true);
    if (isSeq(items)) return items.items as Node[];
    diagnostics.push({ severity: 'Error', code: 'RIG0002', message: 'a List must have `items`, a sequence of resources', source: pos(root.range?.[0]) });
    return [];
  }
  return [root];
}

function toResource(value: unknown, locator: Locator, opts: LoadOptions, diagnostics: Diagnostic[]): Resource | undefined {
  const at = locator.locate([]);
  const envelopeError = (message: string, hint: string, path: (string | number)[] = []): undefined => {
    const obj = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    const resource = obj && typeof obj.kind === 'string' ? describe(obj.kind, obj) : undefined;
    diagnostics.push({ severity: 'Error', code: 'RIG0002', message, hint, source: locator.locate(path) ?? at, resource, path: path.length ? formatPath(path) : undefined });
    return undefined;
  };
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    return envelopeError('a document must be a mapping with apiVersion, kind, metadata and spec', 'write a Kubernetes-style resource');
  }
  const obj = value as Record<string, unknown>;
  const { apiVersion, kind: written } = obj;
  if (typeof written !== 'string' || written === '') return envelopeError('missing `kind`', `add a kind, one of: ${WRITTEN_KINDS.join(', ')}`, ['kind']);
  if (typeof apiVersion !== 'string' || apiVersion === '') return envelopeError('missing `apiVersion`', 'add the apiVersion, e.g. networking.istio.io/v1', ['apiVersion']);
  const group = groupOf(apiVersion);
  const candidates = kindsWritten(written);
  if (!candidates.length) {
    if (group === X_GATEWAY_API_GROUP && written === 'XListenerSet') {
      diagnostics.push({ severity: 'Warning', code: SKIPPED_KIND, message: `${apiVersion} XListenerSet (the experimental ListenerSet) is not read; ignored`, hint: 'write it as apiVersion gateway.networking.k8s.io/v1, kind ListenerSet (Gateway API v1.5), the ListenerSet current istiod reads', source: at, resource: describe(written, obj) });
      return undefined;
    }
    if (PARTLY_READ_GROUPS.has(group) && OTHER_GATEWAY_API_KINDS.has(written)) {
      const read = Object.values(KIND_INFO).filter((i) => i.group === group).map((i) => i.written ?? i.kind);
      diagnostics.push({ severity: 'Warning', code: SKIPPED_KIND, message: `${apiVersion} ${written} is not supported by Rigging; ignored`, hint: `Rigging reads ${read.join(', ')} of ${group}; this resource has no effect`, source: at, resource: describe(written, obj) });
      return undefined;
    }
    const near = closest(written, WRITTEN_KINDS as string[]);
    const likelyTypo = distance(written, near) <= 2;
    if (likelyTypo || OWNED_GROUPS.has(group)) {
      return envelopeError(`unknown kind "${written}" for ${apiVersion}`, likelyTypo ? `did you mean "${near}"?` : `Rigging reads: ${WRITTEN_KINDS.join(', ')}`, ['kind']);
    }
    // Manifests shared with Kubernetes carry Deployments, ServiceAccounts…: noted, not warned about.
    diagnostics.push({ severity: 'Info', code: SKIPPED_KIND, message: `${apiVersion} ${written} is not a kind Rigging reads; ignored`, hint: 'nothing to do if the file is shared with Kubernetes; otherwise remove it', source: at, resource: describe(written, obj) });
    return undefined;
  }
  const kind = kindOf(group, written);
  const accepted = kind ? apiVersionsOf(kind) : candidates.flatMap(apiVersionsOf);
  if (!kind || !accepted.includes(apiVersion)) {
    return envelopeError(`${written} is not served as ${apiVersion}`, `use apiVersion ${accepted.map((v) => `"${v}"`).join(' or ')}`, ['apiVersion']);
  }
  const meta = obj.metadata;
  if (meta === undefined || meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    return envelopeError(`${written} has no metadata`, 'add metadata with at least a name', ['metadata']);
  }
  const m = meta as Record<string, unknown>;
  if (typeof m.name !== 'string' || m.name === '') return envelopeError(`${written} has no metadata.name`, 'give the resource a name', ['metadata', 'name']);
  const namespaced = KIND_INFO[kind].namespaced;
  if (m.namespace !== undefined && typeof m.namespace !== 'string') return envelopeError('metadata.namespace must be a string', 'write the namespace as a plain name', ['metadata', 'namespace']);
  const metadata: ObjectMeta = {
    name: m.name,
    namespace: namespaced ? ((m.namespace as string | undefined) || opts.defaultNamespace || 'default') : '',
  };
  const labels = stringMap(m.labels, ['metadata', 'labels'], locator, diagnostics);
  const annotations = stringMap(m.annotations, ['metadata', 'annotations'], locator, diagnostics);
  if (labels === null || annotations === null) return undefined;
  if (labels) metadata.labels = labels;
  if (annotations) metadata.annotations = annotations;
  if (!readMetadataExtras(m, metadata, locator, diagnostics, describe(displayKind(kind), obj))) return undefined;
  const content = TOP_LEVEL_CONTENT[kind];
  const resource: Resource = {
    apiVersion,
    kind,
    metadata,
    spec: (content ? Object.fromEntries(content.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]])) : (obj.spec ?? {})) as Record<string, unknown>,
    source: at,
  };
  const ident = `${displayKind(kind)} ${metadata.namespace ? metadata.namespace + '/' : ''}${metadata.name}`;
  const topLevel = content ? new Set([...ENVELOPE_FIELDS].filter((f) => f !== 'spec').concat(content)) : ENVELOPE_FIELDS;
  let ok = true;
  for (const key of Object.keys(obj)) {
    if (topLevel.has(key)) continue;
    ok = false;
    const near = closest(key, [...topLevel]);
    diagnostics.push({
      severity: 'Error',
      code: 'IST0106',
      message: `unknown top-level field "${key}"`,
      hint: distance(key, near) <= 3 ? `did you mean "${near}"?` : 'a resource has apiVersion, kind, metadata and spec',
      source: locator.locate([key], { key: true }),
      resource: ident,
      path: key,
    });
  }
  if (opts.validate !== false) {
    const found = validateResource(resource, obj, locator, opts);
    diagnostics.push(...found);
    if (found.some((d) => d.severity === 'Error')) ok = false;
  }
  if (!ok) return undefined;
  rememberLocator(resource, locator);
  return resource;
}

const METADATA_FIELDS = ['name', 'namespace', 'labels', 'annotations', 'creationTimestamp'];
// Written by the Kubernetes API server (or kubectl) into manifests exported from a cluster;
// they mean nothing to a configuration file.
const SERVER_SET_METADATA = new Set(['uid', 'resourceVersion', 'generation', 'managedFields', 'selfLink', 'ownerReferences', 'finalizers', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generateName']);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * creationTimestamp is kept: ties between competing policies break by age, as in Istio. Fields the
 * API server sets are noted and dropped; anything else in metadata is an unknown field.
 */
function readMetadataExtras(m: Record<string, unknown>, metadata: ObjectMeta, locator: Locator, diagnostics: Diagnostic[], resource: string | undefined): boolean {
  let ok = true;
  for (const [key, value] of Object.entries(m)) {
    const path = ['metadata', key];
    const source = locator.locate(path, { key: true });
    if (key === 'creationTimestamp') {
      if (value === null) continue;
      if (typeof value !== 'string' || !RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
        diagnostics.push({ severity: 'Error', code: 'IST0106', message: 'metadata.creationTimestamp must be an RFC 3339 time', hint: 'write it as "2024-01-31T12:00:00Z", or leave it out', source: locator.locate(path), resource, path: formatPath(path) });
        ok = false;
        continue;
      }
      metadata.creationTimestamp = new Date(value).toISOString();
    } else if (SERVER_SET_METADATA.has(key)) {
      diagnostics.push({ severity: 'Info', code: 'RIG0006', message: `metadata.${key} is set by the Kubernetes API server; ignored`, hint: 'nothing to do; remove it to keep the file clean', source, resource, path: formatPath(path) });
    } else if (!METADATA_FIELDS.includes(key)) {
      const near = closest(key, METADATA_FIELDS);
      diagnostics.push({ severity: 'Error', code: 'IST0106', message: `unknown field "metadata.${key}"`, hint: distance(key, near) <= 3 ? `did you mean "${near}"?` : `metadata has ${METADATA_FIELDS.join(', ')}`, source, resource, path: formatPath(path) });
      ok = false;
    }
  }
  return ok;
}

function stringMap(v: unknown, path: string[], locator: Locator, diagnostics: Diagnostic[]): Record<string, string> | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) {
    diagnostics.push({ severity: 'Error', code: 'IST0106', message: `${path.join('.')} must be a map of strings`, hint: 'write key: "value" pairs', source: locator.locate(path), path: path.join('.') });
    return null;
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') {
      diagnostics.push({ severity: 'Error', code: 'IST0106', message: `${path.join('.')}.${k} must be a string, not ${val === null ? 'null' : typeof val}`, hint: `quote the value: ${k}: "${String(val)}"`, source: locator.locate([...path, k]), path: formatPath([...path, k]) });
      return null;
    }
    out[k] = val;
  }
  return out;
}

function describe(kind: string, obj: Record<string, unknown>): string | undefined {
  const m = obj.metadata as Record<string, unknown> | undefined;
  return m && typeof m.name === 'string' ? `${kind} ${typeof m.namespace === 'string' ? m.namespace + '/' : ''}${m.name}` : undefined;
}

/** The same Kind/namespace/name twice is an error naming both places; the first one is kept. */
function dropDuplicates(resources: Resource[], diagnostics: Diagnostic[]): Resource[] {
  const seen = new Map<string, Resource>();
  const out: Resource[] = [];
  for (const r of resources) {
    const key = resourceKey(r);
    const first = seen.get(key);
    if (first) {
      diagnostics.push(duplicateDiagnostic(r, first));
      continue;
    }
    seen.set(key, r);
    out.push(r);
  }
  return out;
}

function duplicateDiagnostic(r: Resource, first: Resource): Diagnostic {
  const where = (s?: SourcePosition) => (s ? `${s.file}:${s.line}:${s.column}` : 'another source');
  return {
    severity: 'Error',
    code: 'RIG0004',
    message: `${describeResource(r)} is defined twice: here and at ${where(first.source)}`,
    hint: 'rename one of them or remove the duplicate; the one at the first place stays in force',
    source: r.source,
    resource: describeResource(r),
  };
}


