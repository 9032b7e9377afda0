// The bootstrap's stats_config: tag extraction (how /stats/prometheus names stats), the stats
// matcher (which stats exist for the admin and Prometheus outputs) and histogram buckets.
import type { Reader } from '../config/reader.ts';
import { readStringMatcher, type StringMatcher } from '../routing/string-matcher.ts';
import { readTagProducer, type TagProducer } from './tag-extraction.ts';

export interface StatsConfig {
  readonly tags: TagProducer;
  /** True for a stat the stats matcher rejects: Envoy does not create it, so no output shows it. */
  readonly rejects?: (name: string) => boolean;
  /** Bucket bounds (ms) for histograms whose name matches, the first match wins. */
  readonly buckets: readonly { readonly match: StringMatcher; readonly bounds: readonly number[] }[];
}

export function readStatsConfig(r: Reader | undefined): StatsConfig | undefined {
  if (!r) return undefined;
  const tags = readTagProducer(r);
  const m = r.obj('stats_matcher');
  let rejects: StatsConfig['rejects'];
  if (m) {
    const kinds = ['reject_all', 'inclusion_list', 'exclusion_list'].filter((k) => m.has(k));
    if (kinds.length !== 1) m.issues.error(m.path, `set exactly one of reject_all, inclusion_list, exclusion_list (got ${kinds.join(', ') || 'none'})`);
    if (m.has('reject_all')) {
      const all = m.bool('reject_all', false);
      if (all) rejects = () => true;
    } else {
      const list = m.obj('inclusion_list') ?? m.obj('exclusion_list');
      const include = m.has('inclusion_list');
      const patterns = (list?.objs('patterns') ?? []).map(readStringMatcher);
      list?.done();
      const matches = (name: string) => patterns.some((p) => p.match(name));
      rejects = include ? (name) => !matches(name) : matches;
    }
    m.done();
  }
  const buckets = r.objs('histogram_bucket_settings').map((b) => {
    const mr = b.obj('match');
    if (!mr) b.issues.error(b.at('match'), 'a histogram bucket setting needs a match (a string matcher on the histogram name)');
    const match = mr ? readStringMatcher(mr) : { match: () => false };
    const bounds = b.list('buckets').map(Number);
    if (!bounds.length) b.issues.error(b.at('buckets'), 'needs at least one bucket bound');
    if (bounds.some((v, i) => !(v > 0) || (i > 0 && v <= bounds[i - 1]))) b.issues.error(b.at('buckets'), 'bounds must be positive and increasing');
    b.done();
    return { match, bounds };
  });
  r.done();
  return { tags, rejects, buckets };
}

