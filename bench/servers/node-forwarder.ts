// The bare Node.js forwarder (node-forwarder-main.ts) as a proxy hop, run like rig proxy: the
// same Node, the same flags for the server core's scheduling.
import path from 'node:path';
import { startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';
import { realtimeNodeFlags } from '../lib/process-group.ts';

export async function startNodeForwarder(opts: { core: number; upstreamPort: number }): Promise<Server> {
  const port = await freePort();
  const main = path.join(import.meta.dirname, 'node-forwarder-main.ts');
  return startServer(
    { name: 'node-forwarder', core: opts.core, command: process.execPath, args: [...realtimeNodeFlags(), main, String(port), String(opts.upstreamPort)] },
    'proxy',
    port,
  );
}
