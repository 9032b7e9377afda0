// Envoy's DataSource (filename, inline_string, inline_bytes, environment_variable), read once when
// the config is applied: TLS certificates, direct response and local reply bodies, Lua scripts.
import fs from 'node:fs';
import type { Reader } from './reader.ts';

/** The source's text; undefined when absent or unreadable (an error), or, with `required`, when none is set. */
export function readDataSource(r: Reader | undefined, required?: string): string | undefined {
  if (!r) return undefined;
  let v: string | undefined;
  if (r.has('filename')) {
    const f = r.str('filename');
    try {
      v = fs.readFileSync(f, 'utf8');
    } catch (e) {
      r.issues.error(r.at('filename'), `cannot read ${f}: ${(e as Error).message}`);
    }
  } else if (r.has('inline_string')) v = r.str('inline_string');
  else if (r.has('inline_bytes')) v = Buffer.from(r.str('inline_bytes'), 'base64').toString();
  else if (r.has('environment_variable')) {
    const name = r.str('environment_variable');
    v = process.env[name];
    if (v === undefined) r.issues.error(r.at('environment_variable'), `environment variable ${name} is not set`);
  } else if (required) r.issues.error(r.path, `${required} needs inline_string, inline_bytes, filename or environment_variable`);
  if (r.has('watched_directory')) r.issues.warn(r.at('watched_directory'), 'files are read when the config is applied, not watched for rotation; ignored');
  r.accept('watched_directory');
  r.done();
  return v;
}
