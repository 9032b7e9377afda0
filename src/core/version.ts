import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// Resolved relative to this file both from src/ and from dist/.
export const VERSION: string = (require('../../package.json') as { version: string }).version;
