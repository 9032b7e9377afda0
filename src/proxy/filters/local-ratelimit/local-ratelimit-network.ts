// envoy.filters.network.local_ratelimit: one token bucket per filter config (shared by every
// connection of the listener, or across listeners with the same share_key); a connection that
// finds the bucket empty is closed before the next filter sees it.
// Stats: local_ratelimit.<stat_prefix>.rate_limited.
import type { NetworkFilterFactory } from '../../network/network-filter.ts';
import { readTokenBucket, TokenBucket, type BucketSpec } from './token-bucket.ts';

export const NETWORK_LOCAL_RATELIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit';

// share_key → bucket, so that listeners sharing a key share one bucket (Envoy's share_key). A new
// config with the same key and the same bucket spec keeps the existing bucket.
const shared = new Map<string, { spec: BucketSpec; bucket: TokenBucket }>();

function sharedBucket(key: string, spec: BucketSpec): TokenBucket {
  const e = shared.get(key);
  if (e && e.spec.maxTokens === spec.maxTokens && e.spec.tokensPerFill === spec.tokensPerFill && e.spec.fillIntervalMs === spec.fillIntervalMs) return e.bucket;
  const bucket = new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs);
  shared.set(key, { spec, bucket });
  return bucket;
}

export const networkLocalRateLimitFactory: NetworkFilterFactory = {
  name: 'envoy.filters.network.local_ratelimit',
  typeUrls: [NETWORK_LOCAL_RATELIMIT_TYPE],
  terminal: false,
  compile(r, ctx) {
    const statPrefix = r.str('stat_prefix');
    if (!statPrefix) r.issues.error(r.at('stat_prefix'), 'the network local rate limit filter needs a stat_prefix');
    const spec = readTokenBucket(r.obj('token_bucket'), r.at('token_bucket'), r.issues);
    const re = r.obj('runtime_enabled');
    const enabledDefault = re ? re.bool('default_value', true) : true;
    const enabledKey = re?.str('runtime_key') ?? '';
    re?.done();
    const enabled = enabledKey ? ctx.proxy.runtime.bool(enabledKey, enabledDefault) : { value: enabledDefault };
    const shareKey = r.str('share_key');
    r.done();
    const bucket = spec ? (shareKey ? sharedBucket(shareKey, spec) : new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs)) : undefined;
    const limited = ctx.proxy.stats.counter(`local_ratelimit.${statPrefix}.rate_limited`);
    return {
      onConnection(conn) {
        if (!enabled.value || !bucket || bucket.consume()) return true;
        limited.value++;
        conn.socket.destroy();
        return false;
      },
    };
  },
};
