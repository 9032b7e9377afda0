// Compiles the Envoy (and Istio) .proto files Rigging uses into proto/envoy-descriptors.json,
// which src/envoy/protos.ts loads at run time (src/envoy/proto-sources.ts lists the files).
// Run after changing PROTO_FILES or a file under proto/; a test fails while the file is stale.
// Usage: node scripts/generate-envoy-descriptors.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileEnvoyDescriptors } from '../src/envoy/proto-sources.ts';

const out = join(fileURLToPath(new URL('..', import.meta.url)), 'proto/envoy-descriptors.json');
writeFileSync(out, JSON.stringify(compileEnvoyDescriptors()) + '\n');
console.log(`wrote ${out}`);
