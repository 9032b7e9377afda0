// What the xDS client feeds: the proxy runtime. For each resource type the client hands over the
// complete current set (name → resource in Envoy's JSON shape); the sink validates and applies
// it atomically and returns the problems it found: [] → ACK, otherwise NACK with those messages
// and the sink keeps its previous config for that type. `version` is the xDS version_info of the
// set (for the admin config_dump).
import type { EnvoyJson } from '../../envoy/index.ts';

export interface XdsSink {
  apply(typeUrl: string, resources: ReadonlyMap<string, EnvoyJson>, version?: string): string[];
}
