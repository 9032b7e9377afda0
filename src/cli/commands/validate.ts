// `rig validate -f PATH...`: structural and semantic validation of configuration files, like
// `istioctl validate`. Exit 0 with a one-line summary, or 1 listing every problem.
import type { Command } from 'commander';
import { SKIPPED_KIND, formatDiagnostic, hasErrors, loadPaths } from '../../api/index.ts';
import { RigError } from '../../core/errors.ts';

interface Options {
  filename?: string[];
  namespace?: string;
  output: string;
  quiet?: boolean;
  verbose?: boolean;
}

export function define(cmd: Command): void {
  cmd
    .option('-f, --filename <paths...>', 'files or directories (recursive: *.yaml, *.yml, *.json); - for standard input')
    .option('-n, --namespace <ns>', 'namespace of resources that name none', 'default')
    .option('-o, --output <format>', 'text or json', 'text')
    .option('-q, --quiet', 'print only problems')
    .option('-v, --verbose', 'also list the documents of kinds Rigging does not read (Deployment, ServiceAccount, …)')
    .action(async (opts: Options) => {
      if (!opts.filename?.length) throw new RigError('MESH_ERR_USAGE', 'rig validate needs -f PATH (a file, a directory or -); e.g. rig validate -f examples/');
      if (opts.output !== 'text' && opts.output !== 'json') throw new RigError('MESH_ERR_USAGE', `unknown output format "${opts.output}": use text or json`);
      const { resources, diagnostics, files = [] } = await loadPaths(opts.filename, { defaultNamespace: opts.namespace, duplicates: 'keep' });
      const errors = diagnostics.filter((d) => d.severity === 'Error').length;
      const warnings = diagnostics.filter((d) => d.severity === 'Warning').length;
      const skipped = diagnostics.filter((d) => d.code === SKIPPED_KIND);
      const failed = hasErrors(diagnostics);
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify({ valid: !failed, files: files.length, resources: resources.length, errors, warnings, diagnostics }, null, 2) + '\n');
      } else {
        for (const d of diagnostics) {
          if (d.severity === 'Info' && !opts.verbose) continue;
          (d.severity === 'Error' ? process.stderr : process.stdout).write(formatDiagnostic(d) + '\n');
        }
        const counts = `${resources.length} valid resource${resources.length === 1 ? '' : 's'} in ${files.length} file${files.length === 1 ? '' : 's'}`;
        const kinds = [...new Set(skipped.map((d) => d.resource?.split(' ')[0] ?? '?'))].sort().join(', ');
        const extra = (warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : '') + (skipped.length ? ` (${skipped.length} document${skipped.length === 1 ? '' : 's'} of other kinds not read: ${kinds})` : '');
        if (failed) process.stderr.write(`✘ ${errors} error${errors === 1 ? '' : 's'}${extra} (${counts})\n`);
        else if (!opts.quiet) process.stdout.write(`✔ ${counts}: no errors${extra}\n`);
      }
      if (failed) process.exitCode = 1;
    });
}
