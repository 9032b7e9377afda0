import os from 'node:os';
import path from 'node:path';

/** Where the control plane keeps its state when no --state-dir is given: $RIG_STATE_DIR or ~/.rig. */
export function defaultStateDir(): string {
  return process.env.RIG_STATE_DIR || path.join(os.homedir(), '.rig');
}
