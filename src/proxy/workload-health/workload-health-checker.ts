// Istio's agent health checker: runs the workload's readiness probe beside it after
// initialDelaySeconds, then every periodSeconds (each attempt bounded by timeoutSeconds), and
// reports only changes of state, once successThreshold attempts in a row passed or
// failureThreshold in a row failed. The first report is whichever threshold is reached first. As
// the agent checks Envoy first, an attempt fails while the proxy itself is not ready.
// Defaults are the ones Istio's agent fills in (pkg/istio-agent/health/health_check.go,
// fillInDefaults): timeout 1 s, period 10 s, success 1 and failure 1 (not Kubernetes' 3: a VM's
// probe that fails once reports it unhealthy). 0 counts as unset, as there.
import type { ReadinessProbe } from './readiness-probe.ts';
import { probeOnce, type ProbeOutcome, type ProbeTarget } from './workload-probe.ts';

export interface HealthEvent {
  healthy: boolean;
  /** Why the workload is unhealthy (the last failed attempt). */
  message: string;
}

export interface WorkloadHealthCheckerOptions {
  probe: ReadinessProbe;
  target?: ProbeTarget;
  /** The proxy's own readiness: undefined when ready, else why not. */
  proxyNotReady?: () => string | undefined;
  /**
   * Whether the workload's process is running: undefined when it is, else why not. A workload
   * that is not running is unhealthy at once, without failureThreshold (a Kubernetes pod goes
   * NotReady when its container dies), and must then pass successThreshold attempts again.
   */
  workloadDown?: () => string | undefined;
  onChange: (e: HealthEvent) => void;
  /** Milliseconds in one of the probe's seconds (tests shorten it); default 1000. */
  secondMs?: number;
}

const positive = (n: number | undefined, d: number) => (n ? n : d);

export class WorkloadHealthChecker {
  readonly #o: WorkloadHealthCheckerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #passes = 0;
  #failures = 0;
  #state: HealthEvent | undefined;
  #checking = false;
  /** A recheck was asked for during an attempt. */
  #again = false;

  constructor(o: WorkloadHealthCheckerOptions) {
    this.#o = o;
  }

  /** The last reported state (undefined until a threshold was first reached). */
  get state(): HealthEvent | undefined {
    return this.#state;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule((this.#o.probe.initialDelaySeconds ?? 0) * this.#second());
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }

  /**
   * The workload's process started or exited: an exit is checked now; a process that (re)started
   * is first probed initialDelaySeconds later, as a restarted container.
   */
  recheck(): void {
    if (!this.#running) return;
    if (this.#checking) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#schedule(this.#o.workloadDown?.() ? 0 : (this.#o.probe.initialDelaySeconds ?? 0) * this.#second());
  }

  #second(): number {
    return this.#o.secondMs ?? 1000;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => void this.#check(), ms);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    const p = this.#o.probe;
    const started = Date.now();
    this.#checking = true;
    const down = this.#o.workloadDown?.();
    const notReady = down ? undefined : this.#o.proxyNotReady?.();
    const outcome: ProbeOutcome = down ? { healthy: false, message: down } : notReady ? { healthy: false, message: `the proxy is not ready: ${notReady}` } : await probeOnce(p, this.#o.target ?? {}, positive(p.timeoutSeconds, 1) * this.#second());
    this.#checking = false;
    if (!this.#running) return;
    if (down) this.#down(outcome);
    else this.#record(outcome);
    if (this.#again) {
      this.#again = false;
      return this.recheck();
    }
    const period = positive(p.periodSeconds, 10) * this.#second();
    this.#schedule(Math.max(0, started + period - Date.now()));
  }

  #down(o: ProbeOutcome): void {
    this.#passes = 0;
    this.#failures = 0;
    if (this.#state?.healthy === false && this.#state.message === o.message) return;
    this.#state = { healthy: false, message: o.message };
    this.#o.onChange(this.#state);
  }

  #record(o: ProbeOutcome): void {
    const p = this.#o.probe;
    if (o.healthy) {
      this.#failures = 0;
      if (++this.#passes < positive(p.successThreshold, 1) || this.#state?.healthy === true) return;
    } else {
      this.#passes = 0;
      // Still unhealthy for another reason (the proxy became ready, the probe fails): the control plane hears the new one.
      if (++this.#failures < positive(p.failureThreshold, 1) || (this.#state?.healthy === false && this.#state.message === o.message)) return;
    }
    this.#state = { healthy: o.healthy, message: o.message };
    this.#o.onChange(this.#state);
  }
}
