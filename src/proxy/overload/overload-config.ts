// Compiles the bootstrap's `overload_manager` (Envoy's OverloadManager shape): resource monitors,
// and actions with threshold or scaled triggers on them.
//
//   overload_manager:
//     refresh_interval: 0.25s
//     resource_monitors:
//     - name: envoy.resource_monitors.fixed_heap
//       typed_config: { "@type": type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig, max_heap_size_bytes: 536870912 }
//     - name: rig.resource_monitors.event_loop_lag     # Rigging's own: pressure = max lag / max_lag
//       typed_config: { "@type": type.googleapis.com/google.protobuf.Struct, value: { max_lag: 0.2s } }
//     actions:
//     - name: envoy.overload_actions.stop_accepting_requests
//       triggers: [{ name: envoy.resource_monitors.fixed_heap, threshold: { value: 0.95 } }]
import type { Reader } from '../config/reader.ts';

export const Monitor = { FixedHeap: 'envoy.resource_monitors.fixed_heap', EventLoopLag: 'rig.resource_monitors.event_loop_lag' } as const;

export const OverloadAction = {
  StopAcceptingRequests: 'envoy.overload_actions.stop_accepting_requests',
  StopAcceptingConnections: 'envoy.overload_actions.stop_accepting_connections',
  RejectIncomingConnections: 'envoy.overload_actions.reject_incoming_connections',
  DisableHttpKeepAlive: 'envoy.overload_actions.disable_http_keepalive',
} as const;

const ACTIONS = new Set<string>(Object.values(OverloadAction));

export interface MonitorConfig {
  readonly name: string;
  /** fixed_heap: max heap bytes; event_loop_lag: max lag in ms. */
  readonly max: number;
}

export interface TriggerConfig {
  readonly monitor: string;
  /** Threshold trigger: fully active at or above `saturation`, else inactive (scaling === saturation). */
  readonly scaling: number;
  readonly saturation: number;
}

export interface ActionConfig {
  readonly name: string;
  readonly triggers: readonly TriggerConfig[];
}

export interface OverloadConfig {
  readonly refreshMs: number;
  readonly monitors: readonly MonitorConfig[];
  readonly actions: readonly ActionConfig[];
}

function readMonitor(r: Reader): MonitorConfig | undefined {
  const name = r.str('name');
  const tc = r.obj('typed_config');
  let max = 0;
  if (name === Monitor.FixedHeap) {
    max = tc?.num('max_heap_size_bytes', 0) ?? 0;
    if (!(max > 0)) r.issues.error(r.at('typed_config.max_heap_size_bytes'), 'fixed_heap needs a positive max_heap_size_bytes');
  } else if (name === Monitor.EventLoopLag) {
    const v = tc?.obj('value');
    max = v?.durationMs('max_lag', 0) ?? 0;
    v?.done();
    tc?.accept('type_url'); // the TypedStruct's own type, already implied by the monitor name
    if (!(max > 0)) r.issues.error(r.at('typed_config.value.max_lag'), 'event_loop_lag needs a positive max_lag duration (e.g. "0.2s")');
  } else {
    r.issues.error(r.at('name'), `resource monitor "${name}" is not supported by rig proxy (${Monitor.FixedHeap}, ${Monitor.EventLoopLag})`);
    tc?.accept(...Object.keys(tc.raw));
  }
  tc?.done();
  r.done();
  return max > 0 ? { name, max } : undefined;
}

function readTrigger(r: Reader, monitors: ReadonlySet<string>): TriggerConfig | undefined {
  const monitor = r.str('name');
  if (!monitors.has(monitor)) r.issues.error(r.at('name'), `trigger on "${monitor}", which is not a configured resource monitor`);
  let t: TriggerConfig | undefined;
  const th = r.obj('threshold');
  const sc = r.obj('scaled');
  if (th && !sc) {
    const v = th.num('value', 0);
    if (!(v >= 0 && v <= 1)) th.issues.error(th.at('value'), 'threshold value must be in [0, 1]');
    th.done();
    t = { monitor, scaling: v, saturation: v };
  } else if (sc && !th) {
    const scaling = sc.num('scaling_threshold', 0);
    const saturation = sc.num('saturation_threshold', 1);
    if (!(scaling >= 0 && scaling < saturation && saturation <= 1)) sc.issues.error(sc.path, 'need 0 <= scaling_threshold < saturation_threshold <= 1');
    sc.done();
    t = { monitor, scaling, saturation };
  } else r.issues.error(r.path, 'a trigger needs exactly one of threshold, scaled');
  r.done();
  return t;
}

export function readOverloadConfig(r: Reader): OverloadConfig {
  const refreshMs = r.durationMs('refresh_interval', 1000);
  if (!(refreshMs >= 10)) r.issues.error(r.at('refresh_interval'), 'refresh_interval must be at least 10ms');
  const monitors = r.objs('resource_monitors').flatMap((m) => readMonitor(m) ?? []);
  const names = new Set(monitors.map((m) => m.name));
  const actions = r.objs('actions').map((a) => {
    const name = a.str('name');
    if (!ACTIONS.has(name)) a.issues.error(a.at('name'), `overload action "${name}" is not supported by rig proxy (${[...ACTIONS].join(', ')})`);
    const triggers = a.objs('triggers').flatMap((t) => readTrigger(t, names) ?? []);
    if (!triggers.length) a.issues.error(a.at('triggers'), 'an overload action needs at least one trigger');
    // Only actions that take no configuration are supported (reduce_timeouts and shrink_heap,
    // which do, are refused above), so typed_config has nothing to configure, as in Envoy.
    a.accept('typed_config');
    a.done();
    return { name, triggers };
  });
  for (const k of ['buffer_factory_config', 'loadshed_points']) if (r.has(k)) r.issues.error(r.at(k), `${k} is not supported by rig proxy`);
  r.done();
  return { refreshMs: Math.max(refreshMs, 10), monitors, actions };
}
