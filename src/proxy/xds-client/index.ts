export { XdsClient } from './xds-client.ts';
export type { XdsClientOptions, XdsClientState, XdsTypeState, XdsClientEvents } from './xds-client.ts';
export type { XdsSink } from './xds-sink.ts';
export { Backoff } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export { edsNamesOf, rdsNamesOf } from './xds-dependencies.ts';
export { xdsServerTarget } from './xds-server-target.ts';
export type { XdsServerTarget } from './xds-server-target.ts';
