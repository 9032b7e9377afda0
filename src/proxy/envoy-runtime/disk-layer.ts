// A disk layer's values: every file under <symlink_root>/<subdirectory>[/<service cluster>] is one
// key, its path below that directory with '/' turned into '.' (fault/http/abort/abort_percent is
// fault.http.abort.abort_percent). The file's contents are the value, less lines starting with '#'
// (comments) and trailing whitespace, as Envoy reads them.
import fs from 'node:fs';
import path from 'node:path';
import { entryFromText, type RuntimeEntry } from './entry.ts';

/** Envoy's limit on the directory depth it walks. */
const MAX_DEPTH = 16;

export interface DiskLayerConfig {
  readonly symlinkRoot: string;
  readonly subdirectory: string;
  readonly appendServiceCluster: boolean;
}

export function diskLayerDir(c: DiskLayerConfig, serviceCluster: string): string {
  const dir = path.join(c.symlinkRoot, c.subdirectory);
  return c.appendServiceCluster ? path.join(dir, serviceCluster) : dir;
}

function fileValue(text: string): string {
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  return lines.join('\n').trimEnd();
}

/** The directory's values; throws (with the path) when a file cannot be read or the tree is too deep. */
export function loadDiskLayer(dir: string): Map<string, RuntimeEntry> {
  const out = new Map<string, RuntimeEntry>();
  const walk = (d: string, prefix: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new Error(`${d}: the runtime directory is more than ${MAX_DEPTH} levels deep`);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const key = prefix ? `${prefix}.${e.name}` : e.name;
      const stat = e.isSymbolicLink() ? fs.statSync(full) : e;
      if (stat.isDirectory()) walk(full, key, depth + 1);
      else if (stat.isFile()) out.set(key, entryFromText(fileValue(fs.readFileSync(full, 'utf8'))));
    }
  };
  walk(dir, '', 1);
  return out;
}
