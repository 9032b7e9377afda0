// The abuse corpus: raw HTTP/1 requests in test/abuse/corpus/*.txt. Format: `#` lines are
// comments, `# expect: 400|close` (statuses, or `close` for a close without a response) and
// `# upstream: N` (requests the upstream may see); every other line is request text whose line
// break is dropped, with escapes \r \n \t \\ \xHH and repetitions {text*N} (text may hold escapes).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface AttackCase {
  readonly name: string;
  readonly bytes: Buffer;
  readonly expect: readonly string[];
  readonly upstream: number;
}

function unescape(s: string): string {
  return s.replace(/\\(r|n|t|\\|x[0-9a-fA-F]{2})/g, (_m, e: string) => (e === 'r' ? '\r' : e === 'n' ? '\n' : e === 't' ? '\t' : e === '\\' ? '\\' : String.fromCharCode(parseInt(e.slice(1), 16))));
}

export function parseCase(name: string, text: string): AttackCase {
  let expect: string[] = [];
  let upstream = 0;
  const body: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      const m = /^#\s*(expect|upstream):\s*(.+)$/.exec(line);
      if (m?.[1] === 'expect') expect = m[2].trim().split('|');
      else if (m?.[1] === 'upstream') upstream = Number(m[2]);
      continue;
    }
    body.push(line);
  }
  if (!expect.length) throw new Error(`${name}: no "# expect:" line`);
  const raw = body.join('').replace(/\{(.+?)\*(\d+)\}/g, (_m, t: string, n: string) => t.repeat(Number(n)));
  return { name, bytes: Buffer.from(unescape(raw), 'latin1'), expect, upstream };
}

export function loadCorpus(dir: string): AttackCase[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => parseCase(f, fs.readFileSync(path.join(dir, f), 'latin1')));
}

export interface Outcome {
  /** Status of the first response, 0 when none. */
  readonly status: number;
  /** The proxy closed the connection (within the wait). */
  readonly closed: boolean;
  readonly raw: string;
}

/** Sends the bytes on a fresh connection and collects what comes back until close or `waitMs` of quiet. */
export function replay(port: number, bytes: Buffer, waitMs = 2000): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      s.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      resolve({ status: m ? Number(m[1]) : 0, closed, raw });
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => done(false), waitMs);
    };
    s.on('connect', () => {
      s.write(bytes, () => s.end === undefined || undefined);
      arm();
    });
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (timer) done(true);
    });
  });
}

/** Codec errors: after one of these the connection must not carry another request. */
const CODEC_ERRORS = new Set([400, 408, 413, 414, 431, 501]);

/** Whether an outcome meets the case's expectation. */
export function meets(c: AttackCase, o: Outcome): boolean {
  if (o.status === 0) return o.closed && c.expect.includes('close');
  return c.expect.includes(String(o.status)) && (!CODEC_ERRORS.has(o.status) || o.closed);
}
