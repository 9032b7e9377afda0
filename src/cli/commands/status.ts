// `rig status [-o json]`: every workload replica and gateway of the local mesh started by
// `rig up` from this state directory: state, restarts, pids and the sidecar's ports.
import type { Command } from 'commander';
import { RigError } from '../../core/errors.ts';
import { DEFAULT_STATE_DIR, StateDir } from '../../local/state-dir.ts';
import { controlPlaneHost, describePorts, overallState } from '../../local/status.ts';

export function define(cmd: Command): void {
  cmd
    .option('--state-dir <dir>', 'state directory of the running `rig up`', DEFAULT_STATE_DIR)
    .option('-o, --output <format>', 'text or json', 'text')
    .action((opts: { stateDir: string; output: string }) => {
      if (opts.output !== 'text' && opts.output !== 'json') throw new RigError('MESH_ERR_USAGE', `unknown output format "${opts.output}": use text or json`);
      const s = new StateDir(opts.stateDir).requireRunning();
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify({ ...s, state: overallState(s.processes) }, null, 2) + '\n');
        return;
      }
      const rows = s.processes.map((p) => [p.name, p.state, String(p.restarts), p.pid ? String(p.pid) : '-', describePorts(p)]);
      const header = ['NAME', 'STATE', 'RESTARTS', 'PID', 'PORTS'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
      const out = [
        `mesh: ${overallState(s.processes)} (rig up pid ${s.pid}, control plane xDS ${s.controlPlane?.xdsAddress ?? '-'}, monitoring ${s.controlPlane?.monitoringPort ? `http://${controlPlaneHost(s)}:${s.controlPlane.monitoringPort}` : '-'})`,
        line(header),
        ...rows.map(line),
      ];
      for (const p of s.processes) if (p.message && p.state !== 'ready') out.push(`${p.name}: ${p.message}`);
      if (s.configErrors.length) out.push('configuration errors (the last valid configuration stays in force):', ...s.configErrors.map((e) => `  ${e}`));
      process.stdout.write(out.join('\n') + '\n');
    });
}
