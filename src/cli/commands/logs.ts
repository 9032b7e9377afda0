// `rig logs NAME [-c istio-proxy] [-f]`: the output of a workload replica (`reviews-v1-0`), of
// every replica of a workload (`reviews-v1`), of a gateway or of the control plane, from the log
// files `rig up` writes in its state directory.
import { createReadStream, existsSync, readFileSync, statSync, watchFile } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { DEFAULT_STATE_DIR, StateDir } from '../../local/state-dir.ts';

interface Options {
  stateDir: string;
  container: string;
  follow?: boolean;
  tail: string;
}

function logFiles(sd: StateDir, name: string, container: string): { label: string; file: string }[] {
  if (container !== 'app' && container !== 'istio-proxy') throw new RigError('MESH_ERR_USAGE', `unknown container "${container}": use app or istio-proxy`);
  const s = sd.readStatus();
  const procs = s?.processes ?? [];
  const matches = procs.filter((p) => p.name === name || p.workload === name);
  if (matches.length === 0) {
    if (name === 'controlplane' || name === 'istiod') return [{ label: 'controlplane', file: sd.logFile('controlplane') }];
    // Not running (any more): the log file may still be there.
    const file = sd.logFile(container === 'istio-proxy' ? `${name}.istio-proxy` : name);
    if (existsSync(file)) return [{ label: name, file }];
    const known = procs.map((p) => p.name).join(', ');
    throw new RigError('MESH_ERR_NOT_FOUND', `no workload, replica or gateway named "${name}"${known ? `; running: ${known}, controlplane` : ''}`);
  }
  return matches.map((p) => {
    const rel = container === 'istio-proxy' ? p.logs.proxy : (p.logs.app ?? p.logs.proxy);
    return { label: p.name, file: path.join(sd.root, rel!) };
  });
}

function lastLines(text: string, n: number): string {
  if (n < 0) return text;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-n).join('\n') + (lines.length ? '\n' : '');
}

export function define(cmd: Command): void {
  cmd
    .argument('<name>', 'replica (reviews-v1-0), workload (reviews-v1), gateway (istio-ingressgateway) or controlplane')
    .option('--state-dir <dir>', 'state directory of `rig up`', DEFAULT_STATE_DIR)
    .option('-c, --container <name>', 'app or istio-proxy (the sidecar)', 'app')
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <n>', 'only the last n lines (-1: all)', '-1')
    .action(async (name: string, opts: Options) => {
      const sd = new StateDir(opts.stateDir);
      const files = logFiles(sd, name, opts.container);
      const prefix = (label: string, text: string) => (files.length > 1 ? text.replace(/^(?=.)/gm, `${label} | `) : text);
      const offsets = new Map<string, number>();
      for (const { label, file } of files) {
        const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
        offsets.set(file, Buffer.byteLength(text));
        process.stdout.write(prefix(label, lastLines(text, Number(opts.tail))));
      }
      if (!opts.follow) return;
      for (const { label, file } of files) {
        watchFile(file, { interval: 200 }, () => {
          const size = existsSync(file) ? statSync(file).size : 0;
          const from = offsets.get(file) ?? 0;
          if (size <= from) return offsets.set(file, size);
          offsets.set(file, size);
          createReadStream(file, { start: from, end: size - 1, encoding: 'utf8' }).on('data', (chunk) => process.stdout.write(prefix(label, String(chunk))));
        });
      }
      await new Promise(() => undefined);
    });
}
