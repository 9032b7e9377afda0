// Starts the gRPC upstream (grpc-server.ts) as a pinned process.
import path from 'node:path';
import { startServer, type Server } from './server.ts';
import { freePort } from '../lib/ports.ts';
import { realtimeNodeFlags } from '../lib/process-group.ts';

export async function startGrpcUpstream(opts: { core: number }): Promise<Server> {
  const port = await freePort();
  return startServer(
    { name: 'grpc-upstream', core: opts.core, command: process.execPath, args: [...realtimeNodeFlags(), path.join(import.meta.dirname, 'grpc-server.ts'), String(port)] },
    'upstream',
    port,
  );
}
