// node:http for the proxy, through require. An ES import of a built-in module reads every one of
// its exports, and three of node:http's (WebSocket, CloseEvent, MessageEvent) are lazy getters that
// load Node's bundled undici: 0.8 MB of source and its compiled code, 1.1 MB of heap in a proxy
// that never uses them. Import `http` from here; `import type` from 'node:http' stays as it is.
import { createRequire } from 'node:module';
import type * as NodeHttp from 'node:http';

export const http = createRequire(import.meta.url)('node:http') as typeof NodeHttp;
