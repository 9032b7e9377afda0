export { envoyEnum, envoyRoot, messageType, PROTO_FILES } from './protos.ts';
export { encodeMessage, decodeMessage, packAny, unpackAny, normalize, typeUrlOf, checkMessage, JSON_SHAPE } from './codec.ts';
export type { EnvoyJson, AnyMessage } from './codec.ts';
export { parseDuration, formatDuration } from './wkt-json.ts';
export * from './type-urls.ts';
export { EnvoyJsonError } from './json.ts';
export type { JsonIssue } from './json.ts';
export { normalizePatchValue, unknownFilterReason, unwrapTypedStructs, PROXY_HTTP_FILTERS, PROXY_NETWORK_FILTERS } from './patch-value.ts';
