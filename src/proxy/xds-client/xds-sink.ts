// What the xDS client feeds: the proxy runtime. For each resource type the client hands over the
// complete current set (name → resource in Envoy's JSON shape); the sink validates and applies
// it atomically and returns the problems it found: [] → ACK, otherwise NACK with those messages
// and the sink keeps its previous config for that type. `version` is the xDS version_info of the
// set (for the admin config_dump).
import type { EnvoyJson } from '../../envoy/index.ts';

export interface XdsSink {
  apply(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>, version?: string): string[];
  /**
   * An update the client refused (NACKed) before the sink saw it (a resource it could not decode,
   * a name twice): the sink ends what waited for that type as it does for an update it refuses.
   * Not called when the stream fails: a connection failure is not a rejected config (Envoy's).
   */
  refused?(typeUrl: string): void;
  /**
   * Asked right after `apply` accepted an update: a promise when that update is in force only once
   * something it fetches settles (an ECDS config with remote Wasm code, which Istio's agent fetches
   * before Envoy sees the config): the client ACKs it then, not before.
   */
  ackAfter?(typeUrl: string): Promise<void> | undefined;
  /**
   * The route configurations (RDS) the sink's listener versions use, serving, warming or draining: the client
   * keeps them subscribed beside those of the latest listener set, as Envoy keeps a route
   * configuration's subscription while a listener version uses it.
   */
  routeNamesInUse?(): ReadonlySet<string>;
  /** The extension configs (ECDS) the sink's listener versions use, serving, warming or draining, kept subscribed as routeNamesInUse. */
  extensionNamesInUse?(): ReadonlySet<string>;
  /** Calls `changed` when a listener version left use (a warmed update swapped in, a draining version's last connection closed): routeNamesInUse() and extensionNamesInUse() may have shrunk. */
  watchRouteNamesInUse?(changed: () => void): void;
}
