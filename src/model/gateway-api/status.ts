// What Istio would write into the status of Gateway API resources (Accepted=False,
// ResolvedRefs=False with a reason), as diagnostics: Rigging has no API server to write status to,
// so the control plane logs them and `rig analyze` prints them.
import type { Diagnostic, Resource, Severity } from '../../api/index.ts';
import { describeResource, formatPath } from '../../api/index.ts';
import { locatorOf } from '../../api/source-map.ts';

/** Diagnostic codes of the Gateway API translation. */
export const GATEWAY_API_CODES = {
  /** A condition Istio would set to False (Accepted, ResolvedRefs, Programmed). */
  condition: 'RIG0101',
  /** A resource for another controller, or a kind Rigging leaves to others: noted. */
  notOurs: 'RIG0102',
} as const;

export type Condition = 'Accepted' | 'ResolvedRefs' | 'Programmed';

export class StatusReport {
  readonly diagnostics: Diagnostic[] = [];
  readonly #seen = new Set<string>();

  /** `condition=False` (`reason`) on a resource, at `path`. */
  condition(r: Resource<unknown>, condition: Condition, reason: string, path: readonly (string | number)[], message: string, hint: string, severity: Severity = 'Error'): void {
    this.#add(r, severity, GATEWAY_API_CODES.condition, path, `${condition}=False (${reason}): ${message}`, hint);
  }

  note(r: Resource<unknown>, path: readonly (string | number)[], message: string, hint: string, severity: Severity = 'Info'): void {
    this.#add(r, severity, GATEWAY_API_CODES.notOurs, path, message, hint);
  }

  #add(r: Resource<unknown>, severity: Severity, code: string, path: readonly (string | number)[], message: string, hint: string): void {
    const resource = describeResource(r);
    const at = formatPath(path);
    const key = `${resource}|${at}|${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.diagnostics.push({ severity, code, message, hint, source: locatorOf(r)?.locate(path) ?? r.source, resource, path: at || undefined });
  }
}
