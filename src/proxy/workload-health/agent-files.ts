// The agent's two optional inputs from its runtime, read (and checked) before the proxy starts:
// the exec probes' environment (a JSON object of strings) and the workload's pid file, whose
// directory must exist to be watched. Errors name the flag and what to fix.
import fs from 'node:fs';
import path from 'node:path';

export class AgentFileError extends Error {}

/** `--probe-env-file`: the environment exec probes run in, instead of the agent's own. */
export function readProbeEnv(file: string): NodeJS.ProcessEnv {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AgentFileError(`--probe-env-file ${file}: ${(err as NodeJS.ErrnoException).code ? `cannot read it: ${(err as Error).message}` : `not JSON: ${(err as Error).message}`}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AgentFileError(`--probe-env-file ${file}: must hold a JSON object of NAME: "value"`);
  const bad = Object.entries(value).filter(([, v]) => typeof v !== 'string').map(([k]) => k);
  if (bad.length) throw new AgentFileError(`--probe-env-file ${file}: values must be strings (${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not)`);
  return value as NodeJS.ProcessEnv;
}

/** `--workload-pid-file`: its directory must exist (the file itself comes and goes with the process). */
export function checkPidFile(file: string): string {
  const dir = path.dirname(path.resolve(file));
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new AgentFileError(`--workload-pid-file ${file}: directory ${dir} does not exist`);
  return file;
}
