// Envoy's per-route stats, kept for a route with a stat_prefix only (route_components.proto
// Route.stat_prefix): rooted at vhost.<virtual host name>.route.<stat_prefix>., the same stats as a
// virtual cluster's (router filter docs, "Virtual Clusters"): upstream_rq_total, _timeout, _retry,
// _retry_limit_exceeded, _retry_overflow, _retry_success, _time, and per upstream response
// upstream_rq_completed, upstream_rq_<code> and upstream_rq_<class>xx (Envoy's CodeStatsImpl
// charges the route's alongside the cluster's: the final upstream response, or the code of a
// request the router ended itself, e.g. 504 on the route timeout; not a retried response). The
// router bumps them where it bumps the cluster's.
import { StatusCounters, type Histogram, type Stat, type Stats } from '../stats/stats.ts';

export class RouteStats {
  readonly rqTotal: Stat;
  readonly rqTimeout: Stat;
  readonly rqRetry: Stat;
  readonly rqRetryLimitExceeded: Stat;
  readonly rqRetryOverflow: Stat;
  readonly rqRetrySuccess: Stat;
  readonly rqTime: Histogram;
  private readonly rqCompleted: Stat;
  private readonly codes: StatusCounters;

  constructor(stats: Stats, vhostName: string, statPrefix: string) {
    const p = `vhost.${vhostName}.route.${statPrefix}.upstream_rq_`;
    this.rqTotal = stats.counter(p + 'total');
    this.rqTimeout = stats.counter(p + 'timeout');
    this.rqRetry = stats.counter(p + 'retry');
    this.rqRetryLimitExceeded = stats.counter(p + 'retry_limit_exceeded');
    this.rqRetryOverflow = stats.counter(p + 'retry_overflow');
    this.rqRetrySuccess = stats.counter(p + 'retry_success');
    this.rqTime = stats.histogram(p + 'time');
    this.rqCompleted = stats.counter(p + 'completed');
    this.codes = new StatusCounters(stats, p);
  }

  /** A status charged as the cluster's upstream_rq_<code> is (an upstream response, or an abort's code). */
  response(status: number): void {
    this.rqCompleted.value++;
    this.codes.record(status);
  }
}
