// `rig apply` / `rig delete`: the configuration applied to a local mesh lives in the state
// directory's `applied/` folder, one file per resource (`<kind>.<namespace>.<name>.yaml`), which
// the running `rig up` watches; applying replaces the resource, deleting removes its file.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { displayKind, groupOf, kindOf, workloadCwd, writtenDocument, type Resource, type WorkloadSpec } from '../api/index.ts';

export function appliedFileName(r: Pick<Resource, 'kind' | 'metadata'>): string {
  const ns = r.metadata.namespace || '_cluster';
  return `${displayKind(r.kind).toLowerCase()}.${ns}.${r.metadata.name}.yaml`;
}

export function applyResource(dir: string, r: Resource): 'created' | 'configured' {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, appliedFileName(r));
  const existed = existsSync(file);
  const { resourceVersion: _rv, creationTimestamp: _ct, ...metadata } = r.metadata;
  // A Workload's cwd is relative to the file it came from: keep it pointing there.
  const spec = r.kind === 'Workload' ? { ...r.spec, cwd: workloadCwd({ spec: r.spec as unknown as WorkloadSpec, source: r.source }) } : r.spec;
  const doc = writtenDocument({ ...r, spec }, metadata);
  const tmp = path.join(dir, `.${process.pid}-${Date.now()}.rig-tmp`);
  writeFileSync(tmp, stringify(doc));
  renameSync(tmp, file);
  return existed ? 'configured' : 'created';
}

/** Removes an applied resource; false when it was not applied with `rig apply`. */
export function deleteResource(dir: string, r: Pick<Resource, 'kind' | 'metadata'>): boolean {
  const file = path.join(dir, appliedFileName(r));
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}

/** What is in the applied directory, as `Kind namespace/name` (the file name when it does not parse). */
export function appliedResources(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      try {
        const r = parse(readFileSync(path.join(dir, f), 'utf8')) as Partial<Resource> | null;
        if (r?.kind && r.metadata?.name) {
          const kind = kindOf(groupOf(r.apiVersion), r.kind);
          return `${kind ? displayKind(kind) : r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;
        }
      } catch {
        // named by its file below
      }
      return f;
    });
}
