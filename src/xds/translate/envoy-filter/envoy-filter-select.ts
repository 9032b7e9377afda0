// The EnvoyFilter patches that apply to a proxy, in Istio's order: the root namespace's
// EnvoyFilters, then those of the proxy's namespace (each by creation time, then name), then
// sorted (stably) by priority. An EnvoyFilter with a workloadSelector applies to the proxies whose
// labels it selects (in any namespace when it lives in the root namespace); without one, to every
// proxy of its namespace (of the mesh, in the root namespace); with targetRefs, to none (as istiod). Patch values are checked and put
// into Envoy's canonical JSON shape once per snapshot.
import type { Resource } from '../../../api/index.ts';
import type { EnvoyFilterApplyTo, EnvoyFilterConfigPatch, EnvoyFilterContext, EnvoyFilterObjectMatch, EnvoyFilterOperation, EnvoyFilterSpec } from '../../../api/types/networking.ts';
import { ENVOY_FILTER_TARGETS, proxyVersionMatches } from '../../../api/validation/envoy-filter.ts';
import { normalizePatchValue, type EnvoyJson } from '../../../envoy/index.ts';
import { warnOnce } from '../../../model/config-warnings.ts';
import type { PushContext } from '../../../model/push-context.ts';
import type { Proxy } from '../../../model/proxy.ts';
import { selectorMatches } from '../../../model/service.ts';

export interface CompiledPatch {
  applyTo: EnvoyFilterApplyTo;
  context: EnvoyFilterContext;
  match: EnvoyFilterObjectMatch;
  operation: EnvoyFilterOperation;
  value?: EnvoyJson;
  /** `namespace/name[index]`, for messages. */
  origin: string;
}

export type PatchesByTarget = ReadonlyMap<EnvoyFilterApplyTo, readonly CompiledPatch[]>;

function envoyFilters(push: PushContext): Resource<EnvoyFilterSpec>[] {
  // push.resources are in creation order already.
  return push.memo('envoyfilter-all', () => push.resources.filter((r) => r.kind === 'EnvoyFilter') as Resource<EnvoyFilterSpec>[]);
}

/** A patch as the engine applies it, or undefined (logged once) when the control plane cannot apply it. */
function compilePatch(r: Resource<EnvoyFilterSpec>, p: EnvoyFilterConfigPatch, i: number): CompiledPatch | undefined {
  const origin = `${r.metadata.namespace}/${r.metadata.name} configPatches[${i}]`;
  const applyTo = p.applyTo ?? 'INVALID';
  const operation = p.patch?.operation ?? 'INVALID';
  // BOOTSTRAP patches reach only a bootstrap served over xDS, which rig proxy never asks for (rig validate warns).
  if (applyTo === 'BOOTSTRAP') return undefined;
  const target = ENVOY_FILTER_TARGETS[applyTo];
  if (!target || !target.operations.includes(operation)) {
    warnOnce('envoyfilter', `EnvoyFilter ${origin}: applyTo ${applyTo} with operation ${operation} is not supported; the patch is skipped (rig validate says why)`);
    return undefined;
  }
  let value: EnvoyJson | undefined;
  if (operation !== 'REMOVE') {
    const res = normalizePatchValue(target.message, p.patch?.value ?? {});
    if (!res.value) {
      warnOnce('envoyfilter', `EnvoyFilter ${origin}: patch.value is not a valid ${target.message} (${res.issues.map((x) => `${x.path}: ${x.message}`).join('; ')}); the patch is skipped`);
      return undefined;
    }
    value = res.value;
  }
  return { applyTo, context: p.match?.context ?? 'ANY', match: p.match ?? {}, operation, value, origin };
}

function compiled(push: PushContext, r: Resource<EnvoyFilterSpec>): CompiledPatch[] {
  return push.memo(`envoyfilter|${r.metadata.namespace}/${r.metadata.name}`, () =>
    (r.spec.configPatches ?? []).map((p, i) => compilePatch(r, p, i)).filter((p): p is CompiledPatch => p !== undefined),
  );
}

/** match.proxy: proxyVersion against the proxy's ISTIO_VERSION, then every metadata key's value in its node metadata, as a string (Istio compares the raw metadata). */
function proxyMatches(p: CompiledPatch, proxy: Proxy): boolean {
  const version = p.match.proxy?.proxyVersion;
  if (version && !proxyVersionMatches(version, proxy.istioVersion)) return false;
  const want = p.match.proxy?.metadata;
  if (!want) return true;
  return Object.entries(want).every(([k, v]) => {
    const got = proxy.metadata[k];
    return (typeof got === 'string' ? got : JSON.stringify(got)) === v;
  });
}

/** The patches for a proxy by applyTo, in application order; undefined when none applies. */
export function patchesFor(push: PushContext, proxy: Proxy): PatchesByTarget | undefined {
  const all = envoyFilters(push);
  if (!all.length || proxy.generator === 'grpc') return undefined;
  const scoped = scopedPatches(push, proxy);
  if (!scoped?.byProxy) return scoped?.byTarget;
  // Rare: some patch matches the proxy's version or node metadata, which differ per proxy (not memoized).
  const byTarget = new Map<EnvoyFilterApplyTo, CompiledPatch[]>();
  for (const [k, list] of scoped.byTarget) {
    const mine = list.filter((p) => proxyMatches(p, proxy));
    if (mine.length) byTarget.set(k, mine);
  }
  return byTarget.size ? byTarget : undefined;
}

/** The patches of the EnvoyFilters selecting proxies of this namespace and labels (shared by them in a snapshot). */
function scopedPatches(push: PushContext, proxy: Proxy): { byTarget: PatchesByTarget; byProxy: boolean } | undefined {
  return push.memo(`envoyfilter-proxy|${proxy.namespace}|${JSON.stringify(proxy.labels)}`, () => {
    const all = envoyFilters(push);
    const root = push.mesh.rootNamespace;
    const selects = (r: Resource<EnvoyFilterSpec>) => {
      // istiod's getMatchedEnvoyFilters skips EnvoyFilters with targetRefs (not implemented; rig validate warns).
      if (r.spec.targetRefs?.length) return false;
      const labels = r.spec.workloadSelector?.labels;
      return !labels || Object.keys(labels).length === 0 || selectorMatches(labels, proxy.labels);
    };
    const fromRoot = all.filter((r) => r.metadata.namespace === root && selects(r));
    const fromOwn = proxy.namespace === root ? [] : all.filter((r) => r.metadata.namespace === proxy.namespace && selects(r));
    const ordered = [...fromRoot, ...fromOwn].sort((a, b) => (a.spec.priority ?? 0) - (b.spec.priority ?? 0));
    if (!ordered.length) return undefined;
    const byTarget = new Map<EnvoyFilterApplyTo, CompiledPatch[]>();
    let byProxy = false;
    for (const r of ordered) {
      for (const p of compiled(push, r)) {
        byTarget.set(p.applyTo, [...(byTarget.get(p.applyTo) ?? []), p]);
        byProxy ||= p.match.proxy?.metadata !== undefined || !!p.match.proxy?.proxyVersion;
      }
    }
    return { byTarget, byProxy };
  });
}
