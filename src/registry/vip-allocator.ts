// Allocates virtual IPs for services that declare none, from a dedicated range (Istio's
// auto-allocation uses 240.240.0.0/16), and keeps them stable for the same host across restarts
// by persisting them in the state directory.
import fs from 'node:fs';
import path from 'node:path';
import { RigError } from '../core/errors.ts';

const BASE = (240 << 24) | (240 << 16);
const SIZE = 1 << 16;

export class VipAllocator {
  readonly #file: string | undefined;
  readonly #byKey = new Map<string, string>();
  readonly #used = new Set<number>();
  #next = 1;

  /** `stateDir` undefined keeps VIPs in memory only. */
  constructor(stateDir?: string) {
    this.#file = stateDir ? path.join(stateDir, 'vips.json') : undefined;
    if (this.#file && fs.existsSync(this.#file)) {
      let saved: unknown;
      try {
        saved = JSON.parse(fs.readFileSync(this.#file, 'utf8'));
      } catch (err) {
        throw new RigError('MESH_ERR_FILE', `${this.#file}: cannot read allocated VIPs (${(err as Error).message}); delete the file to start afresh`);
      }
      for (const [k, v] of Object.entries(saved as Record<string, string>)) {
        const n = toInt(v);
        if (n === undefined) continue;
        this.#byKey.set(k, v);
        this.#used.add(n);
      }
    }
  }

  /** The VIP for a key (`namespace/host`), allocating and persisting one if needed. */
  allocate(key: string): string {
    const have = this.#byKey.get(key);
    if (have) return have;
    for (let i = 0; i < SIZE - 2; i++) {
      const offset = ((this.#next - 1 + i) % (SIZE - 2)) + 1;
      const n = BASE + offset;
      if (this.#used.has(n)) continue;
      this.#used.add(n);
      this.#next = offset + 1;
      const ip = toIp(n);
      this.#byKey.set(key, ip);
      this.#persist();
      return ip;
    }
    throw new RigError('MESH_ERR_INTERNAL', 'the VIP range 240.240.0.0/16 is exhausted');
  }

  #persist(): void {
    if (!this.#file) return;
    fs.mkdirSync(path.dirname(this.#file), { recursive: true });
    const tmp = `${this.#file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.#byKey), null, 1));
    fs.renameSync(tmp, this.#file);
  }
}

function toIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function toInt(ip: string): number | undefined {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0 | 0;
}
