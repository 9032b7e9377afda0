// Opens the config store the control plane serves from: a watched directory (FileConfigStore:
// an invalid file is reported and its last valid resources stay in force) or, with no
// directory, an empty in-memory store.
import type { ConfigStore } from '../config/index.ts';
import { FileConfigStore, MemoryConfigStore } from '../config/index.ts';
import { formatDiagnostic } from '../api/index.ts';
import type { Logger } from '../core/log.ts';

export interface OpenedStore {
  store: ConfigStore;
  /** Current number of configuration problems (for the config-errors metric). */
  errorCount(): number;
  close(): Promise<void>;
}

export async function openConfigStore(dir: string | undefined, log: Logger): Promise<OpenedStore> {
  if (!dir) return { store: new MemoryConfigStore({ logger: log }), errorCount: () => 0, close: async () => {} };
  const store = new FileConfigStore({ dir, logger: log });
  store.onDiagnostics((reports) => {
    for (const r of reports) {
      if (!r.diagnostics.length) log.info({ file: r.file }, 'configuration file is valid again');
      for (const d of r.diagnostics) log[d.severity === 'Error' ? 'error' : 'warn']({ file: r.file, keptLastValid: r.keptLastValid }, formatDiagnostic(d));
    }
  });
  await store.start();
  for (const d of store.diagnostics()) log[d.severity === 'Error' ? 'error' : 'warn'](formatDiagnostic(d));
  return { store, errorCount: () => store.diagnostics().filter((d) => d.severity === 'Error').length, close: () => store.close() };
}
