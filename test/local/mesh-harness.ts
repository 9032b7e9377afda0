// Runs `rig up` (or `rig demo`) as a real process for tests, with its own state directory and
// gateway ports remapped to free ones, and reads its status file. Always stop it (t.after).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runRig, spawnRig, stopProcess, type RigResult } from '../helpers/cli.ts';
import { findLeftovers } from '../../src/local/reaper.ts';
import { StateDir } from '../../src/local/state-dir.ts';
import type { MeshStatus, ProcessStatus } from '../../src/local/status.ts';

export interface Mesh {
  stateDir: string;
  child: ChildProcess;
  output(): string;
  status(): MeshStatus | undefined;
  process(name: string): ProcessStatus | undefined;
  waitFor(pred: (s: MeshStatus) => boolean, what: string, timeoutMs?: number): Promise<MeshStatus>;
  rig(args: string[], input?: string): Promise<RigResult>;
  stop(): Promise<void>;
}

/** `opts.stateDir`: an existing state directory (e.g. with applied config), removed by stop() as a new one. */
export async function startMesh(command: 'up' | 'demo', args: string[], opts: { gatewayPorts?: number[]; stateDir?: string } = {}): Promise<Mesh> {
  const stateDir = opts.stateDir ?? mkdtempSync(path.join(os.tmpdir(), 'rig-mesh-'));
  const gw = (opts.gatewayPorts ?? [8080]).flatMap((p) => ['--gateway-port', `${p}=0`]);
  const child = spawnRig([command, '--state-dir', stateDir, ...gw, ...args], { env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const sd = new StateDir(stateDir);
  const mesh: Mesh = {
    stateDir,
    child,
    output: () => out,
    status: () => {
      try {
        return sd.readStatus();
      } catch {
        return undefined;
      }
    },
    process: (name) => mesh.status()?.processes.find((p) => p.name === name),
    async waitFor(pred, what, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = mesh.status();
        if (s && pred(s)) return s;
        if (child.exitCode !== null) throw new Error(`rig ${command} exited (${child.exitCode}) while waiting for ${what}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(s?.processes.map((p) => [p.name, p.state, p.message]))}\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    rig: (a, input) => runRig([...a, '--state-dir', stateDir], { input }),
    async stop() {
      await stopProcess(child, 15_000);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return mesh;
}

/** Waits until every process of the mesh is ready; returns the local port the ingress gateway's `port` was remapped to. */
export async function ingressGatewayPort(mesh: Mesh, port: number, what = 'every process ready'): Promise<number> {
  const s = await mesh.waitFor((s) => !!s.readyAt, what, 60_000);
  return s.processes.find((p) => p.name === 'istio-ingressgateway')!.ports.gateway![String(port)];
}

/** Processes still running that were started for this state directory (must be none after a stop). */
export function leftovers(stateDir: string): number[] {
  return findLeftovers(path.resolve(stateDir));
}
