// Applying and removing the capture rules: one iptables-restore transaction per family, built
// from the current state (iptables-save), so that applying twice gives the same rules and
// cleanup removes exactly our chains and the jumps into them, nothing else.
import type { Backend } from './iptables-backend.ts';
import { formatRules, generateRules, OWNED_CHAINS, type Family, type Table, type TableRules } from './iptables-rules.ts';
import type { IptablesConfig } from './iptables-config.ts';

interface TableState {
  chains: Set<string>;
  /** Rules in built-in chains that jump to one of our chains, as iptables-save prints them. */
  jumps: string[];
}

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** What of ours exists in each table of an iptables-save dump. */
export function parseState(saved: string): Record<Table, TableState> {
  const state: Record<Table, TableState> = { nat: { chains: new Set(), jumps: [] }, raw: { chains: new Set(), jumps: [] } };
  let table: Table | undefined;
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      table = name === 'nat' || name === 'raw' ? name : undefined;
    } else if (!table) continue;
    else if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0];
      if (OWNED_CHAINS[table].includes(chain)) state[table].chains.add(chain);
    } else if (line.startsWith('-A ')) {
      const [, chain] = line.split(' ');
      const target = /(?:^| )-j (\S+)/.exec(line)?.[1];
      if (BUILTIN.has(chain) && target && OWNED_CHAINS[table].includes(target)) state[table].jumps.push(line);
    }
  }
  return state;
}

/** A restore script that removes what exists of ours, then (if `want`) adds the wanted rules. */
export function transaction(state: Record<Table, TableState>, want: TableRules[]): string {
  const out: string[] = [];
  for (const table of ['raw', 'nat'] as const) {
    const w = want.find((t) => t.table === table);
    const s = state[table];
    if (!w && s.chains.size === 0 && s.jumps.length === 0) continue;
    const wanted = new Set(w?.chains ?? []);
    const all = [...new Set([...s.chains, ...wanted])];
    out.push(`*${table}`);
    // Declaring a chain under --noflush creates it or empties it.
    out.push(...all.map((c) => `:${c} - [0:0]`));
    out.push(...s.jumps.map((j) => j.replace(/^-A /, '-D ')));
    out.push(...all.filter((c) => !wanted.has(c)).map((c) => `-X ${c}`));
    if (w) out.push(...w.rules, ...w.jumps);
    out.push('COMMIT');
  }
  return out.length ? out.join('\n') + '\n' : '';
}

function families(ipv6: boolean): Family[] {
  return ipv6 ? [4, 6] : [4];
}

/** Programs the capture rules in the current network namespace (idempotent). */
export async function applyRules(be: Backend, cfg: IptablesConfig): Promise<void> {
  for (const family of families(cfg.ipv6)) {
    const state = parseState(await be.save(family));
    const text = transaction(state, generateRules(cfg, family));
    if (text) await be.restore(family, text);
  }
}

/** Removes our chains and the jumps into them; reports whether anything was there. */
export async function cleanupRules(be: Backend, opts: { ipv6?: boolean } = {}): Promise<boolean> {
  let found = false;
  for (const family of families(opts.ipv6 ?? true)) {
    let saved: string;
    try {
      saved = await be.save(family);
    } catch (err) {
      if (family === 6) continue; // no ip6tables: nothing of ours can be there
      throw err;
    }
    const text = transaction(parseState(saved), []);
    if (text) {
      found = true;
      await be.restore(family, text);
    }
  }
  return found;
}

export function dryRun(cfg: IptablesConfig): string {
  return families(cfg.ipv6)
    .map((f) => `# ${f === 4 ? 'iptables' : 'ip6tables'}-restore --noflush\n${formatRules(generateRules(cfg, f))}`)
    .join('');
}
