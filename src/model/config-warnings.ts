// Warnings about configuration the control plane accepts but cannot apply as written (a missing
// WorkloadGroup, a field without an effect here). Each distinct message is logged once per
// process, so a repeated push does not flood the log.
import { createLogger } from '../core/log.ts';
import type { Logger } from '../core/log.ts';

let log: Logger | undefined;
const warned = new Set<string>();
const MAX_REMEMBERED = 10_000;

export function warnOnce(component: string, message: string): void {
  if (warned.has(message) || warned.size > MAX_REMEMBERED) return;
  warned.add(message);
  (log ??= createLogger({ name: 'controlplane' })).warn({ component }, message);
}
