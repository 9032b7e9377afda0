// `rig analyze`: cross-resource analysis like `istioctl analyze`, with Istio's message codes. As
// istioctl on a live cluster: without -f it analyzes what the running control plane serves (of
// `rig up` / `rig demo`, or --controlplane); with -f, the files over that live configuration ("what
// if I applied these"); with --use-live=false (istioctl's --use-kube=false), the files alone.
// Exits 79 (as istioctl does) when a message reaches --failure-threshold.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import type { Diagnostic, Resource, Severity } from '../../api/index.ts';
import { SEVERITIES, SKIPPED_KIND, analyze, describeResource, documentationUrl, loadPaths } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';
import { StateDir, isAlive } from '../../local/state-dir.ts';
import { runningMonitoringUrl } from '../../local/status.ts';
import { gatewayApiStatus } from '../../model/gateway-api/index.ts';
import type { LiveConfig } from '../live-config.ts';
import { addControlPlaneOptions, controlPlaneUrl } from './controlplane-option.ts';

interface Options {
  filename?: string[];
  namespace: string;
  allNamespaces?: boolean;
  useLive: boolean;
  useKube?: boolean;
  controlplane?: string;
  stateDir: string;
  output: string;
  failureThreshold: string;
  outputThreshold: string;
  rootNamespace?: string;
}

export const ANALYZE_FAILURE_EXIT = 79;

export function define(cmd: Command): void {
  addControlPlaneOptions(cmd)
    .option('-f, --filename <paths...>', 'files or directories to analyze (recursive); - for standard input. On a running mesh they overlay its configuration')
    .option('-n, --namespace <ns>', 'the namespace reported on (of a live mesh; files are always reported on), and of file resources that name none', 'default')
    .option('-A, --all-namespaces', 'analyze every namespace')
    .option('--use-live [bool]', 'analyze the running mesh\'s configuration (with -f: the files over it); --use-live=false analyzes the files alone', bool('--use-live'), true)
    .option('-k, --use-kube [bool]', 'istioctl\'s name for --use-live', bool('--use-kube'))
    .option('-o, --output <format>', 'text, json or yaml', 'text')
    .option('--failure-threshold <level>', 'lowest level that fails the run: Info, Warning or Error', 'Error')
    .option('--output-threshold <level>', 'lowest level printed: Info, Warning or Error', 'Info')
    .option('--root-namespace <ns>', "Istio's root namespace (mesh-wide policies); default: the running mesh's (its mesh config rootNamespace), else istio-system")
    .action(async (opts: Options) => {
      const failAt = level(opts.failureThreshold, '--failure-threshold');
      const showAt = level(opts.outputThreshold, '--output-threshold');
      if (!['text', 'json', 'yaml'].includes(opts.output)) throw new RigError('MESH_ERR_USAGE', `unknown output format "${opts.output}": use text, json or yaml`);
      const files = opts.filename ?? [];
      const useLive = opts.useKube ?? opts.useLive;
      if (!files.length && !useLive) throw new RigError('MESH_ERR_USAGE', 'rig analyze --use-live=false analyzes files only: give -f PATH (a file, a directory or -)');
      const loaded = files.length ? await loadPaths(files, { defaultNamespace: opts.namespace }) : { resources: [], diagnostics: [] };
      const live = useLive ? await liveConfig(opts, files.length > 0) : undefined;
      const { overlay } = await import('../live-config.ts');
      const resources = live ? overlay(live.resources, loaded.resources) : loaded.resources;
      let messages = [...loaded.diagnostics.filter((d) => d.code !== SKIPPED_KIND), ...analyze(resources, { rootNamespace: opts.rootNamespace ?? live?.rootNamespace ?? 'istio-system', workloads: live?.workloads }), ...gatewayApiStatus(resources)];
      // istioctl on a cluster reports on the namespace analyzed (-n, default) or on all of them (-A).
      if (live && !opts.allNamespaces) messages = inNamespace(messages, resources, opts.namespace);
      messages.sort(bySeverityThenPlace);
      // What istioctl names: the files given, else the namespace(s) of the live configuration.
      const target = files.length ? files.join(', ') : opts.allNamespaces ? 'all namespaces' : `namespace: ${opts.namespace}`;
      const shown = messages.filter((m) => rank(m.severity) >= rank(showAt));
      if (opts.output === 'text') {
        for (const m of shown) process.stdout.write(textLine(m) + '\n');
      } else {
        const records = shown.map(record);
        process.stdout.write(opts.output === 'json' ? JSON.stringify(records, null, 2) + '\n' : stringify(records));
      }
      // As istioctl: the summary is no finding, so it goes to stderr (stdout stays the findings), in every format.
      if (shown.length === 0) process.stderr.write(`✔ No validation issues found when analyzing ${target}.\n`);
      if (messages.some((m) => rank(m.severity) >= rank(failAt))) {
        if (opts.output === 'text') process.stderr.write(`Error: Analyzers found issues when analyzing ${target}.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.\n`);
        process.exitCode = ANALYZE_FAILURE_EXIT;
      }
    });
}

/**
 * The running mesh's configuration, or undefined when none runs and files were given (they are
 * then analyzed alone, as before there was a mesh). --controlplane given: it must answer.
 */
async function liveConfig(o: Options, haveFiles: boolean): Promise<LiveConfig | undefined> {
  const { readLiveConfig } = await import('../live-config.ts');
  const url = controlPlaneUrl(o);
  const live = await readLiveConfig(url);
  if (live) {
    // What the mesh serves leaves out what it refused: say so, as `rig status` does.
    const mesh = o.controlplane ? undefined : new StateDir(o.stateDir).readStatus();
    const refused = mesh && runningMonitoringUrl(mesh, isAlive) === url ? mesh.configErrors : [];
    if (refused.length) process.stderr.write(['The running mesh refuses this configuration (the last valid one stays in force; not analyzed):', ...refused.map((e) => `  ${e}`), ''].join('\n'));
    return live;
  }
  if (o.controlplane) throw new RigError('MESH_ERR_UNAVAILABLE', `no control plane answers at ${url} (--controlplane): start it, fix the address, or analyze files alone with -f PATH --use-live=false`);
  if (haveFiles) return undefined;
  throw new RigError('MESH_ERR_UNAVAILABLE', `no mesh is running (no rig up from ${o.stateDir}, no control plane at ${url}): start one with rig up -f DIR or rig demo, pass --controlplane URL, or analyze files with rig analyze -f PATH`);
}

/**
 * The messages about live resources of `namespace` or about no namespaced resource (istioctl's
 * filter), and every message about the files given (those have a position): the files are what the
 * user asked about, whatever namespace they write to.
 */
function inNamespace(messages: Diagnostic[], resources: readonly Resource[], namespace: string): Diagnostic[] {
  const namespaceOf = new Map(resources.map((r) => [describeResource(r), r.metadata.namespace]));
  return messages.filter((m) => {
    const ns = m.resource === undefined ? undefined : namespaceOf.get(m.resource);
    return m.source !== undefined || !ns || ns === namespace;
  });
}

function bool(flag: string): (v: string) => boolean {
  return (v) => {
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    throw new RigError('MESH_ERR_USAGE', `${flag} is true or false, not "${v}"`);
  };
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
  return rank(b.severity) - rank(a.severity) || (a.source?.file ?? '').localeCompare(b.source?.file ?? '') || (a.source?.line ?? 0) - (b.source?.line ?? 0) || (a.resource ?? '').localeCompare(b.resource ?? '');
}

/** `Error [IST0101] (VirtualService default/reviews file.yaml:12:5) message` — istioctl's layout plus the position (none for a live resource). */
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
