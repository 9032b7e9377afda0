// Builds a Proxy-Wasm plugin written in AssemblyScript with its SDK (@solo-io/proxy-runtime) using
// the AssemblyScript compiler from node_modules, as the SDK's README builds one.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const ASC = path.resolve(import.meta.dirname, '../../node_modules/assemblyscript/bin/asc');

/** Compiles `source` to `out` (optimized, aborts as proc_exit as the SDK asks); rejects with the compiler's output. */
export async function compileAssemblyScript(source: string, out: string): Promise<string> {
  await promisify(execFile)(process.execPath, [ASC, source, '-b', out, '--use', 'abort=abort_proc_exit', '--optimize'], { maxBuffer: 16 << 20 });
  return out;
}
