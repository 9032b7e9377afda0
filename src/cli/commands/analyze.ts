// `rig analyze -f DIR...`: cross-resource analysis like `istioctl analyze`, with Istio's message
// codes. Exits 79 (as istioctl does) when a message reaches --failure-threshold.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Diagnostic, Severity } from '../../api/index.ts';
import { SEVERITIES, SKIPPED_KIND, analyze, documentationUrl, loadPaths } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';
import { gatewayApiStatus } from '../../model/gateway-api/index.ts';

interface Options {
  filename?: string[];
  namespace?: string;
  output: string;
  failureThreshold: string;
  outputThreshold: string;
  rootNamespace: string;
}

export const ANALYZE_FAILURE_EXIT = 79;

export function define(cmd: Command): void {
  cmd
    .option('-f, --filename <paths...>', 'files or directories to analyze (recursive); - for standard input')
    .option('-n, --namespace <ns>', 'namespace of resources that name none', 'default')
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .option('--failure-threshold <level>', 'lowest level that fails the run: Info, Warning or Error', 'Error')
    .option('--output-threshold <level>', 'lowest level printed: Info, Warning or Error', 'Info')
    .option('--root-namespace <ns>', "Istio's root namespace (mesh-wide policies)", 'istio-system')
    .action(async (opts: Options) => {
      if (!opts.filename?.length) throw new RigError('MESH_ERR_USAGE', 'rig analyze needs -f PATH (a file, a directory or -); e.g. rig analyze -f examples/');
      const failAt = level(opts.failureThreshold, '--failure-threshold');
      const showAt = level(opts.outputThreshold, '--output-threshold');
      if (!['text', 'json', 'yaml'].includes(opts.output)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${opts.output}": use text, json or yaml`);
      const loaded = await loadPaths(opts.filename, { defaultNamespace: opts.namespace });
      const messages = [...loaded.diagnostics.filter((d) => d.code !== SKIPPED_KIND), ...analyze(loaded.resources, { rootNamespace: opts.rootNamespace }), ...gatewayApiStatus(loaded.resources)].sort(bySeverityThenPlace);
      const shown = messages.filter((m) => rank(m.severity) >= rank(showAt));
      if (opts.output === 'text') {
        if (shown.length === 0) process.stdout.write(`✔ No validation issues found when analyzing ${opts.filename.join(', ')}.\n`);
        for (const m of shown) process.stdout.write(textLine(m) + '\n');
      } else {
        const records = shown.map(record);
        process.stdout.write(opts.output === 'json' ? JSON.stringify(records, null, 2) + '\n' : stringify(records));
      }
      if (messages.some((m) => rank(m.severity) >= rank(failAt))) {
        if (opts.output === 'text') process.stderr.write(`Error: Analyzers found issues when analyzing ${opts.filename.join(', ')}.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.\n`);
        process.exitCode = ANALYZE_FAILURE_EXIT;
      }
    });
}

function level(v: string, flag: string): Severity {
  const found = SEVERITIES.find((s) => s.toLowerCase() === v.toLowerCase());
  if (!found) throw new RigError('MESH_ERR_USAGE', `${flag} must be Info, Warning or Error, not "${v}"`);
  return found;
}

function rank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

function bySeverityThenPlace(a: Diagnostic, b: Diagnostic): number {
  return rank(b.severity) - rank(a.severity) || (a.source?.file ?? '').localeCompare(b.source?.file ?? '') || (a.source?.line ?? 0) - (b.source?.line ?? 0);
}

/** `Error [IST0101] (VirtualService default/reviews file.yaml:12:5) message` — istioctl's layout plus the position. */
function textLine(m: Diagnostic): string {
  const where = m.source ? `${m.source.file}:${m.source.line}:${m.source.column}` : '';
  const origin = [m.resource, where].filter(Boolean).join(' ');
  const field = m.path ? ` ${m.path}:` : '';
  return `${m.severity} [${m.code}]${origin ? ` (${origin})` : ''}${field} ${m.message}${m.hint ? ` — ${m.hint}` : ''}`;
}

function record(m: Diagnostic): Record<string, unknown> {
  return {
    code: m.code,
    level: m.severity,
    message: m.message,
    origin: m.resource,
    reference: m.source ? `${m.source.file}:${m.source.line}:${m.source.column}` : undefined,
    path: m.path,
    hint: m.hint,
    documentationUrl: documentationUrl(m.code),
  };
}
