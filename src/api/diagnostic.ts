// A diagnostic: one problem found in configuration, with everything a user needs to fix it.
import type { SourcePosition } from './resource.ts';

export type Severity = 'Error' | 'Warning' | 'Info';

export const SEVERITIES: readonly Severity[] = ['Info', 'Warning', 'Error'];

export interface Diagnostic {
  severity: Severity;
  /** Istio's analyzer message code where one matches (IST0106…), else a short Rigging code. */
  code: string;
  message: string;
  /** What to do about it. */
  hint?: string;
  /** Where: the file, line and column of the offending field (or of the resource). */
  source?: SourcePosition;
  /** `Kind namespace/name` of the resource, when the problem belongs to one. */
  resource?: string;
  /** The field, e.g. `spec.http[0].route[1].weight`. */
  path?: string;
}

/** `file:line:column: Error [code] Kind ns/name spec.x: message (hint)`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.source ? `${d.source.file}:${d.source.line}:${d.source.column}: ` : '';
  const what = [d.resource, d.path].filter(Boolean).join(' ');
  const hint = d.hint ? ` — ${d.hint}` : '';
  return `${where}${d.severity} [${d.code}] ${what ? what + ': ' : ''}${d.message}${hint}`;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'Error');
}

/** Renders a field path (`['spec', 'http', 0]`) as `spec.http[0]`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}
