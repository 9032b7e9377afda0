// The machine a result was measured on, recorded with every result file.
import os from 'node:os';
import { readFileSync } from 'node:fs';

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalMB: number;
  kernel: string;
  node: string;
  hypervisor: boolean;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: os.cpus().length,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    node: process.version,
    hypervisor: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
  };
}
