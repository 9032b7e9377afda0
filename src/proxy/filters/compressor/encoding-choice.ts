// Which compressor filter of a stream compresses its response, as Envoy decides it once per stream
// for all its compressor filters: from the request's Accept-Encoding (q-values, identity, `*`), the
// encodings of the compressor filters on the stream whose content types take the response's, and
// choose_first. Filters register per stream as they are created; the first to ask decides for all.

/** Envoy's EncodingDecision::HeaderStat: which header_* counter a filter charges. */
export const HeaderStat = { NotValid: 0, Identity: 1, Wildcard: 2, ValidCompressor: 3 } as const;
export type HeaderStat = (typeof HeaderStat)[keyof typeof HeaderStat];

export interface EncodingDecision {
  /** The chosen content encoding, "identity" for none. */
  readonly encoding: string;
  readonly stat: HeaderStat;
}

/** What the choice needs of a compressor filter's config. */
export interface Candidate {
  readonly contentEncoding: string;
  readonly chooseFirst: boolean;
  /** The response content types it compresses (lower case). */
  readonly contentTypes: ReadonlySet<string>;
}

/** The compressor filters of one stream, in Envoy's registration order (choose_first ones in front). */
export class StreamCompressors {
  private readonly candidates: Candidate[] = [];
  decision: EncodingDecision | undefined;

  register(c: Candidate): void {
    if (c.chooseFirst) this.candidates.unshift(c);
    else this.candidates.push(c);
  }

  /** Decides once per stream; later calls get the same decision. */
  decide(acceptEncoding: string, contentType: string | undefined): EncodingDecision {
    return (this.decision ??= chooseEncoding(acceptEncoding, contentType, this.candidates));
  }
}

const IDENTITY = 'identity';
const WILDCARD = '*';

/** One Accept-Encoding entry: coding and q-value; undefined when its q-value does not parse (skipped, as Envoy). */
function parseEntry(token: string): [string, number] | undefined {
  const semi = token.indexOf(';');
  if (semi < 0) return [token.trim().toLowerCase(), 1];
  const coding = token.slice(0, semi).trim().toLowerCase();
  const params = token.slice(semi + 1);
  const eq = params.indexOf('=');
  if (eq < 0 || params.slice(0, eq).trim().toLowerCase() !== 'q') return [coding, 1];
  const raw = params.slice(eq + 1).trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) return undefined;
  return [coding, Number(raw)];
}

export function chooseEncoding(acceptEncoding: string, contentType: string | undefined, candidates: readonly Candidate[]): EncodingDecision {
  // The encodings the chain can produce for this content type, in registration order (first wins a duplicate).
  const allowed = new Map<string, Candidate>();
  for (const c of candidates) {
    if (contentType && !c.contentTypes.has(contentType)) continue;
    if (!allowed.has(c.contentEncoding)) allowed.set(c.contentEncoding, c);
  }
  const pairs: [string, number][] = [];
  for (const token of acceptEncoding.split(',')) {
    if (token.trim() === '') continue;
    const p = parseEntry(token);
    if (!p) continue;
    pairs.push(p);
    // q=0 forbids the coding; kept among the pairs so that `*` does not bring it back.
    if (p[1] === 0) allowed.delete(p[0]);
  }
  if (pairs.length === 0 || allowed.size === 0) return { encoding: IDENTITY, stat: HeaderStat.NotValid };
  let choice: [string, number] = [IDENTITY, 0];
  let chosen: Candidate | undefined;
  for (const p of pairs) {
    const c = allowed.get(p[0]);
    if (!c && p[0] !== IDENTITY && p[0] !== WILDCARD) continue;
    // A higher q-value wins; on a tie the earlier entry stays, unless a choose_first compressor
    // ties with it (between two choose_first ones, the one registered first: the last declared).
    if (p[1] > choice[1] || (p[1] === choice[1] && p[1] > 0 && c?.chooseFirst && (!chosen?.chooseFirst || rank(candidates, c) < rank(candidates, chosen)))) {
      choice = p;
      chosen = c;
    }
  }
  if (choice[1] === 0) return { encoding: IDENTITY, stat: HeaderStat.NotValid };
  if (choice[0] === IDENTITY) return { encoding: IDENTITY, stat: HeaderStat.Identity };
  // `*`: the first compressor registered.
  if (choice[0] === WILDCARD) return { encoding: allowed.keys().next().value!, stat: HeaderStat.Wildcard };
  return { encoding: choice[0], stat: HeaderStat.ValidCompressor };
}

function rank(candidates: readonly Candidate[], c: Candidate): number {
  return candidates.indexOf(c);
}
