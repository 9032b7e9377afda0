// PluginConfig.failure_policy (and the deprecated fail_open) with reload_config, as Envoy reads and
// applies them: what a failed VM does to a config's streams (fail closed, fail open), and with
// FAIL_RELOAD, starting the plugin again on a new VM for a later stream, within a backoff, counted
// in wasm.<name>.vm_reload_success / vm_reload_failure / vm_reload_backoff.
// As Envoy (PluginConfig::maybeReloadHandleIfNeeded reloads only a VM whose fail state is
// RuntimeError), a VM counts as failed only after a trap in the module (unreachable, as the SDKs
// abort; an out-of-bounds access; a stack overflow), which wasm-vm.ts records: proc_exit and a host
// function's error do not fail it.
import type { Reader } from '../../config/reader.ts';
import type { Stat } from '../../stats/stats.ts';
import type { FilterCompileContext } from '../filter.ts';
import type { WasmPlugin } from './wasm-plugin.ts';

/** What a VM failure does to a config's streams: fail open, or fail closed, and with reload the FAIL_RELOAD settings. */
export interface Failure {
  readonly failOpen: boolean;
  readonly reload?: ReloadSettings;
}

interface ReloadSettings {
  /** reload_config.backoff.base_interval: each reload waits base to 1.5 × base after the last attempt (Envoy's jittered lower bound). */
  readonly baseMs: number;
  readonly success: Stat;
  readonly failure: Stat;
  readonly backoff: Stat;
}

/** PluginConfig.failure_policy's values, by name and by number. */
const FAILURE_POLICIES: Record<string, 'UNSPECIFIED' | 'FAIL_RELOAD' | 'FAIL_CLOSED' | 'FAIL_OPEN'> = {
  UNSPECIFIED: 'UNSPECIFIED', 0: 'UNSPECIFIED',
  FAIL_RELOAD: 'FAIL_RELOAD', 1: 'FAIL_RELOAD',
  FAIL_CLOSED: 'FAIL_CLOSED', 2: 'FAIL_CLOSED',
  FAIL_OPEN: 'FAIL_OPEN', 3: 'FAIL_OPEN',
};

/**
 * failure_policy, fail_open and reload_config as Envoy reads them: UNSPECIFIED leaves it to the
 * deprecated fail_open (FAIL_OPEN when true, else FAIL_CLOSED); setting both is refused. FAIL_RELOAD
 * counts wasm.<name>.vm_reload_success / vm_reload_failure / vm_reload_backoff, as Envoy.
 */
export function readFailurePolicy(c: Reader, name: string, ctx: FilterCompileContext): Failure {
  const failOpen = c.bool('fail_open', false);
  const given = c.str('failure_policy', 'UNSPECIFIED');
  let policy = FAILURE_POLICIES[given];
  if (!policy) {
    c.issues.error(c.at('failure_policy'), `unknown failure policy ${given}: use FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD`);
    policy = 'UNSPECIFIED';
  }
  if (failOpen && policy !== 'UNSPECIFIED') c.issues.error(c.at('failure_policy'), 'only one of fail_open or failure_policy can be set (as Envoy refuses it); drop the deprecated fail_open');
  if (policy === 'UNSPECIFIED') policy = failOpen ? 'FAIL_OPEN' : 'FAIL_CLOSED';
  const baseMs = readReloadBackoff(c, policy === 'FAIL_RELOAD');
  if (policy !== 'FAIL_RELOAD') return { failOpen: policy === 'FAIL_OPEN' };
  const stat = (s: string) => ctx.stats.counter(`wasm.${name}.${s}`);
  return { failOpen: false, reload: { baseMs, success: stat('vm_reload_success'), failure: stat('vm_reload_failure'), backoff: stat('vm_reload_backoff') } };
}

/** reload_config.backoff.base_interval in ms (1 s by default); reload_config has an effect only with FAIL_RELOAD (warned otherwise). */
function readReloadBackoff(c: Reader, reloads: boolean): number {
  const rc = c.obj('reload_config');
  if (!rc) return 1000;
  if (!reloads) c.issues.warn(c.at('reload_config'), 'has no effect unless failure_policy is FAIL_RELOAD');
  const bo = rc.obj('backoff');
  rc.done();
  if (!bo) return 1000;
  if (!bo.has('base_interval')) bo.issues.error(bo.at('base_interval'), 'is required (BackoffStrategy), e.g. "1s"');
  const baseMs = bo.durationMs('base_interval', 1000);
  if (baseMs < 1) bo.issues.error(bo.at('base_interval'), 'must be at least 1ms');
  if (bo.has('max_interval')) {
    bo.issues.warn(bo.at('max_interval'), 'has no effect: a reload waits base_interval to 1.5 × base_interval after the last attempt, as Envoy');
    bo.accept('max_interval');
  }
  bo.done();
  return Math.max(baseMs, 1);
}

/**
 * FAIL_RELOAD: when a config's plugin was last (re)started, and how to start it again. Once its VM
 * failed, a new stream past the backoff starts the plugin again (a new VM: module instantiated,
 * proxy_on_vm_start and proxy_on_configure run) and the config moves to it; a stream within the
 * backoff, or after a reload that failed, fails closed. Streams already on the failed VM keep it
 * (and fail closed).
 */
export class PluginReload {
  private readonly o: ReloadSettings;
  private restart: (() => boolean) | undefined;
  private lastLoad = 0;

  constructor(o: ReloadSettings) {
    this.o = o;
  }

  /** The plugin (re)started; `restart` starts it again and moves the config to it, false when it did not start. */
  started(restart: () => boolean): void {
    this.restart = restart;
    this.lastLoad = performance.now();
  }

  /** The config's plugin failed: starts it again unless within the backoff. */
  reload(): void {
    if (!this.restart) return;
    const now = performance.now();
    const wait = this.o.baseMs + Math.floor(Math.random() * Math.floor(this.o.baseMs / 2));
    if (now - this.lastLoad < wait) {
      this.o.backoff.value++;
      return;
    }
    this.lastLoad = now;
    if (this.restart()) this.o.success.value++;
    else this.o.failure.value++;
  }
}

/** Before a new stream or connection of a FAIL_RELOAD config: a plugin whose VM failed is started again (within its backoff). */
export function reloadIfFailed(config: { readonly plugin: WasmPlugin | undefined; readonly reload?: PluginReload }): void {
  if (config.plugin?.vm.failed) config.reload!.reload();
}
