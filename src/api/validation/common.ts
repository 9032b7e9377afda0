// Checks shared by several kinds: selectors, exportTo, destinations, target references.
import type { Destination, NetworkingWorkloadSelector, WorkloadSelector } from '../types/networking.ts';
import { GATEWAY_API_GROUP } from '../kinds.ts';
import { classifyTargetRef, targetRefsOf, waypointOnlyTargets, type AttachableSpec } from '../policy-targets.ts';
import type { FieldPath } from '../source-map.ts';
import type { Reporter } from './reporter.ts';
import { HOST_HINT, DURATION_HINT, durationProblem, hostProblem, isDns1123Label, isPort, labelKeyProblem, labelValueProblem, regexProblem } from './rules.ts';

export function checkLabels(labels: Record<string, string> | undefined, path: FieldPath, r: Reporter): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    const kp = labelKeyProblem(k);
    if (kp) r.error([...path, k], kp, 'label keys are [prefix/]name, 63 characters, letters, digits, - _ .', { key: true });
    const vp = labelValueProblem(String(v));
    if (vp) r.error([...path, k], vp, 'match exact label values; selectors take no wildcards');
  }
}

export function checkSelector(sel: WorkloadSelector | NetworkingWorkloadSelector | undefined, path: FieldPath, r: Reporter): void {
  if (sel && 'labels' in sel) checkLabels(sel.labels, [...path, 'labels'], r);
  if (sel && 'matchLabels' in sel) checkLabels(sel.matchLabels, [...path, 'matchLabels'], r);
}

export function checkExportTo(exportTo: string[] | undefined, r: Reporter): void {
  if (!exportTo) return;
  const seen = new Set<string>();
  exportTo.forEach((ns, i) => {
    const path = ['spec', 'exportTo', i];
    if (seen.has(ns)) r.error(path, `duplicate exportTo entry "${ns}"`, 'list each namespace once');
    seen.add(ns);
    if (ns === '~') {
      if (exportTo.length > 1) r.error(path, '"~" (export to no namespace) cannot be combined with other entries', 'use "~" alone');
    } else if (ns !== '.' && ns !== '*' && !isDns1123Label(ns)) {
      r.error(path, `"${ns}" is not a namespace`, 'use ".", "*", "~" or a namespace name');
    }
  });
}

export function checkDestination(d: Destination, path: FieldPath, r: Reporter): void {
  if (d.host === '*') r.error([...path, 'host'], 'destination host cannot be "*"', 'name the service: reviews or reviews.default.svc.cluster.local');
  else {
    const hp = hostProblem(d.host, { allowIP: true });
    if (hp) r.error([...path, 'host'], hp, HOST_HINT);
  }
  if (d.subset !== undefined && !isDns1123Label(d.subset)) r.error([...path, 'subset'], `subset "${d.subset}" is not a valid name`, 'subset names are DNS labels: lower-case letters, digits and -');
  if (d.port?.number !== undefined && !isPort(d.port.number)) r.error([...path, 'port', 'number'], `port ${d.port.number} is out of range`, 'use a port from 1 to 65535');
}

export function checkDuration(value: string | undefined, path: FieldPath, r: Reporter, min = 1): void {
  if (value === undefined) return;
  const p = durationProblem(value, min);
  if (p) r.error(path, p, DURATION_HINT);
}

export function checkRegex(pattern: string | undefined, path: FieldPath, r: Reporter): void {
  if (pattern === undefined) return;
  const p = regexProblem(pattern);
  if (p) r.error(path, `invalid regular expression: ${p}`, 'write an RE2 regular expression (no lookahead or backreferences)');
}

export function checkPercent(value: number | undefined, path: FieldPath, r: Reporter): void {
  if (value !== undefined && (value < 0 || value > 100)) r.error(path, `${value} is not a percentage`, 'use a value from 0 to 100');
}

/**
 * Istio's policy attachment: selector, targetRef and targetRefs are mutually exclusive (the CRD's
 * rule); a target is a Gateway API Gateway, or a Service, ServiceEntry or GatewayClass (Istio's
 * validation), in the policy's namespace. The last three attach to ambient waypoints only: a
 * warning says the policy reaches no proxy here.
 */
export function checkAttachment(spec: AttachableSpec, r: Reporter): void {
  const set = (['selector', 'targetRef', 'targetRefs'] as const).filter((k) => spec[k] !== undefined);
  if (set.length > 1) r.error(['spec', set[1]], 'only one of targetRefs or selector can be set', 'attach the policy one way: a workload selector or target references');
  checkSelector(spec.selector, ['spec', 'selector'], r);
  for (const { ref, path } of targetRefsOf(spec)) {
    if (ref.namespace) r.error([...path, 'namespace'], 'cross namespace referencing is not currently supported', 'remove namespace: a target is always in the policy\'s namespace');
    if (classifyTargetRef(ref) === 'invalid') {
      const hint = ref.kind === 'Gateway' ? `a Gateway API Gateway needs group: ${GATEWAY_API_GROUP} (Istio's own Gateway cannot be a target)` : `target a Gateway (group ${GATEWAY_API_GROUP}), Service, ServiceEntry (group networking.istio.io) or GatewayClass (group ${GATEWAY_API_GROUP})`;
      r.error([...path, 'kind'], `targetRef must be to a Service, ServiceEntry, Gateway (${GATEWAY_API_GROUP}) or GatewayClass, but was ${ref.group || 'core'}/${ref.kind}`, hint);
    }
  }
  for (const n of waypointOnlyTargets(r.resource.kind, spec)) r.warn(n.path, n.message, n.hint);
}
