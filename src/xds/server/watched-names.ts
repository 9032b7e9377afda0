// Watched resource names, shared between streams that ask for the same list (request-decoder.ts
// interns every request's names). Sidecars of one namespace watch the same ~1000 EDS clusters: one
// array (and one set of strings) instead of one per stream, and a push that narrows the list to
// the changed clusters filters it once for all. Shared lists are never modified.

const lists = new Map<string, WeakRef<string[]>>();
const cleanup = new FinalizationRegistry<string>((key) => {
  if (!lists.get(key)?.deref()) lists.delete(key);
});

/** The shared array equal to `names` (this one when none is alive). */
export function internNames(names: string[]): string[] {
  if (names.length < 2) return names;
  const key = JSON.stringify(names);
  const hit = lists.get(key)?.deref();
  if (hit) return hit;
  lists.set(key, new WeakRef(names));
  cleanup.register(names, key);
  return names;
}

/** A name filter that also narrows whole (interned) lists, each list once. */
export interface NameFilter {
  (name: string): boolean;
  list(names: readonly string[]): string[];
}

export function nameFilter(test: (name: string) => boolean): NameFilter {
  const seen = new Map<string, boolean>();
  const lists = new WeakMap<readonly string[], string[]>();
  const f = ((name: string) => {
    let v = seen.get(name);
    if (v === undefined) seen.set(name, (v = test(name)));
    return v;
  }) as NameFilter;
  f.list = (names) => {
    let out = lists.get(names);
    if (!out) lists.set(names, (out = names.filter(f)));
    return out;
  };
  return f;
}
