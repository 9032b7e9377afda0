// Reads what valgrind --tool=callgrind writes (format: valgrind.org/docs/manual/cl-format.html):
// instructions (Ir) per function, exclusive and inclusive, and who calls whom; names the JIT code
// in it from node --perf-basic-prof's map. For `npm run bench:instructions`.

export interface CgFunction {
  name: string;
  /** The object file (binary or library) of its first definition. */
  object: string;
  /** Instructions in the function itself. */
  self: number;
  /** Calls it made: callee name → count and instructions (inclusive). */
  callees: Map<string, { calls: number; cost: number }>;
  /** Calls made to it, and the instructions in them. */
  calls: number;
  callCost: number;
}

export interface CallgrindDump {
  /** The dump's `summary:` (every instruction counted). */
  total: number;
  functions: Map<string, CgFunction>;
}

/** A compressed name: "(id) name" defines id, "(id)" refers to it, anything else is a plain name. */
function expand(names: Map<string, string>, value: string): string {
  const m = /^\((\d+)\)(?: (.*))?$/.exec(value);
  if (!m) return value;
  if (m[2] !== undefined) {
    names.set(m[1], m[2]);
    return m[2];
  }
  const name = names.get(m[1]);
  if (name === undefined) throw new Error(`callgrind output: name (${m[1]}) used before it is defined`);
  return name;
}

export function parseCallgrind(text: string): CallgrindDump {
  const objects = new Map<string, string>();
  const files = new Map<string, string>();
  const fnNames = new Map<string, string>();
  const functions = new Map<string, CgFunction>();
  const fnNamed = (name: string, object: string) => {
    let f = functions.get(name);
    if (!f) functions.set(name, (f = { name, object, self: 0, callees: new Map(), calls: 0, callCost: 0 }));
    else if (f.object === '' && object !== '') f.object = object;
    return f;
  };
  let positions = 1;
  let event = 0;
  let total = NaN;
  let object = '';
  let current: CgFunction | undefined;
  let callee: CgFunction | undefined;
  let calls = -1; // ≥ 0: the next cost line is a call's (inclusive) cost, made `calls` times
  for (const line of text.split('\n')) {
    const c = line.charCodeAt(0);
    // A cost line: position(s) (a number, +n/-n relative, or * for the same), then the events' counts.
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      if (!current) throw new Error(`callgrind output: cost before any fn=: ${line}`);
      const v = Number(line.split(' ')[positions + event] ?? 0);
      if (calls < 0) current.self += v;
      else {
        const e = current.callees.get(callee!.name) ?? { calls: 0, cost: 0 };
        e.calls += calls;
        e.cost += v;
        current.callees.set(callee!.name, e);
        callee!.calls += calls;
        if (calls > 0) callee!.callCost += v;
        calls = -1;
      }
      continue;
    }
    const eq = line.indexOf('=');
    const colon = line.indexOf(':');
    if (eq > 0 && (colon < 0 || eq < colon)) {
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key === 'ob') object = expand(objects, value);
      else if (key === 'cob') expand(objects, value);
      else if (key === 'fl' || key === 'fi' || key === 'fe' || key === 'cfi' || key === 'cfl') expand(files, value);
      else if (key === 'fn') current = fnNamed(expand(fnNames, value), object);
      else if (key === 'cfn') callee = fnNamed(expand(fnNames, value), '');
      else if (key === 'calls') calls = Number(value.split(' ')[0]);
      else if (key === 'jump' || key === 'jcnd') throw new Error('callgrind output: jump lines (--collect-jumps) are not read');
      continue;
    }
    if (line.startsWith('positions:')) positions = line.slice(10).trim().split(/\s+/).length;
    else if (line.startsWith('events:')) {
      event = line.slice(7).trim().split(/\s+/).indexOf('Ir');
      if (event < 0) throw new Error(`callgrind output without Ir (instructions): ${line}`);
    } else if (line.startsWith('summary:')) total = Number(line.slice(8).trim().split(/\s+/)[event]);
  }
  if (!Number.isFinite(total)) throw new Error('callgrind output without a summary: line (not a complete dump?)');
  return { total, functions };
}

/**
 * Instructions in the function and everything it called: what its callers' calls cost, as
 * callgrind_annotate --inclusive=yes counts it (a call still in progress at the dump, "calls=0",
 * does not count); for a function nobody called, its own and its calls'.
 */
export function inclusive(f: CgFunction): number {
  if (f.calls > 0) return f.callCost;
  let n = f.self;
  for (const c of f.callees.values()) n += c.cost;
  return n;
}

/** Who called each function: callee name → caller name → count and instructions. */
export function callersOf(dump: CallgrindDump): Map<string, Map<string, { calls: number; cost: number }>> {
  const callers = new Map<string, Map<string, { calls: number; cost: number }>>();
  for (const f of dump.functions.values()) {
    for (const [name, c] of f.callees) {
      let m = callers.get(name);
      if (!m) callers.set(name, (m = new Map()));
      m.set(f.name, c);
    }
  }
  return callers;
}

/**
 * Names JIT code: callgrind calls code outside any object file by its address ("fn=(12)
 * 0x00000000280f1495"); node --perf-basic-prof writes /tmp/perf-PID.map ("start size name" in
 * hex) for the code V8 generates. Each such name inside a mapped range becomes "JIT <name>",
 * with `stripPrefix` (the source tree's file:// URL) taken out.
 */
export function nameJitCode(callgrindText: string, perfMap: string, stripPrefix: string): string {
  const ranges = perfMap
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [start, size] = l.split(' ', 2);
      return { start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(size, 16), name: l.slice(start.length + size.length + 2) };
    })
    .sort((a, b) => a.start - b.start);
  const lookup = (addr: number) => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid].start <= addr) lo = mid + 1;
      else hi = mid - 1;
    }
    const r = ranges[hi];
    return r && addr < r.end ? r.name : undefined;
  };
  return callgrindText.replace(/^(c?fn=\(\d+\)) 0x([0-9a-f]+)$/gm, (line, def: string, hex: string) => {
    const name = lookup(parseInt(hex, 16));
    return name === undefined ? line : `${def} JIT ${name.replaceAll(stripPrefix, '')}`;
  });
}
