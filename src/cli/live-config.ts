// The configuration a running control plane serves, read back for `rig analyze` as istioctl reads
// a live cluster: every resource of its store (/debug/configz: Services, ServiceEntries, Workloads
// and the Services `rig up` adds for its gateways included, so the services and selectors the
// mesh resolves are the ones analyzed), the workloads of the connected proxies (/debug/adsz) and
// the root namespace of its mesh config (/debug/mesh).
// The registry's services (/debug/registryz) are built from those same Service and ServiceEntry
// resources, so they are not read again: analyzing the resources lets a file replace one of them.
import type { Resource, RunningWorkload } from '../api/index.ts';
import { groupOf, kindOf, resourceKey } from '../api/index.ts';
import { RigError } from '../core/errors.ts';
import type { AdszEntry } from '../xds/debug/describe-common.ts';
import type { ConfigzEntry } from '../xds/debug/resource-table.ts';

export interface LiveConfig {
  /** Where it was read from (the control plane's monitoring address). */
  url: string;
  resources: Resource[];
  workloads: RunningWorkload[];
  /** Istio's root namespace in the control plane's mesh config (/debug/mesh). */
  rootNamespace: string;
}

/** Reads the live configuration; undefined when nothing answers at `url` (no control plane is running there). */
export async function readLiveConfig(url: string): Promise<LiveConfig | undefined> {
  if (!(await answers(url))) return undefined;
  const { getJson, rootNamespace } = await import('../xds/debug/controlplane-client.ts');
  const entries = (await getJson(url, 'debug/configz')) as ConfigzEntry[];
  if (!Array.isArray(entries)) throw new RigError('MESH_ERR_UNAVAILABLE', `${url}/debug/configz did not answer a list of resources: is it a Rigging control plane?`);
  const connections = (await getJson(url, 'debug/adsz')) as AdszEntry[];
  return { url, resources: entries.flatMap(toResource), workloads: await connectedWorkloads(connections), rootNamespace: await rootNamespace(url) };
}

/** A configz entry as the analyzer's Resource: the internal kind, without status or the control plane's bookkeeping (its file position: messages name live resources by kind, namespace and name). */
function toResource(e: ConfigzEntry): Resource[] {
  const kind = kindOf(groupOf(e.apiVersion), e.kind);
  if (!kind) throw new RigError('MESH_ERR_UNAVAILABLE', `the control plane serves a ${e.kind} (${e.apiVersion ?? 'no apiVersion'}) ${e.metadata.namespace ?? ''}/${e.metadata.name}, a kind this rig does not read: are they the same version (rig version)?`);
  const { resourceVersion: _version, ...metadata } = e.metadata;
  return [{ apiVersion: e.apiVersion ?? 'v1', kind, metadata: { ...metadata, namespace: metadata.namespace ?? '' }, spec: e.spec ?? {} }];
}

/** The namespace and labels of each connected proxy, read from its node as the control plane reads it. */
async function connectedWorkloads(connections: readonly AdszEntry[]): Promise<RunningWorkload[]> {
  const { parseNode } = await import('../model/proxy.ts');
  return connections.map((c) => {
    const p = parseNode({ id: c.node, metadata: c.metadata });
    return { namespace: p.namespace, labels: p.labels };
  });
}

/** Whether anything listens at `url` (a refused or unanswered connection: no control plane there). */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('ready', url.endsWith('/') ? url : url + '/'), { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/** The live resources with the files' over them: a file's resource replaces the live one of the same kind, namespace and name (istioctl's "what if I applied these"). */
export function overlay(live: readonly Resource[], files: readonly Resource[]): Resource[] {
  const replaced = new Set(files.map(resourceKey));
  return [...live.filter((r) => !replaced.has(resourceKey(r))), ...files];
}
