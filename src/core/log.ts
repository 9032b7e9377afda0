// Structured logging (pino). Components take a child logger named after themselves.
import pino from 'pino';

export type Logger = pino.Logger;

export interface LogOptions {
  level?: string;
  /** 'json' (default for long-running processes) or 'text' (one readable line per event). */
  format?: 'json' | 'text';
  name?: string;
}

let sink: pino.DestinationStream | undefined;

/**
 * Where JSON loggers made from now on write instead of stderr (undefined: stderr again). `rig up`,
 * which runs the control plane inside its own process, sends them to the control plane's log file.
 */
export function setLogSink(s: pino.DestinationStream | undefined): void {
  sink = s;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.RIG_LOG_LEVEL ?? 'info';
  if (opts.format === 'text') {
    // A synchronous one-line formatter: no worker thread (pino-pretty would spawn one per process).
    return pino(
      { level, name: opts.name, base: undefined, timestamp: pino.stdTimeFunctions.isoTime },
      {
        write(line: string) {
          const o = JSON.parse(line) as Record<string, unknown>;
          const { level: lvl, time, name, msg, ...rest } = o;
          const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
          process.stderr.write(`${time} ${pino.levels.labels[lvl as number] ?? lvl} ${name ? `[${name}] ` : ''}${msg}${extra}\n`);
        },
      },
    );
  }
  return pino({ level, name: opts.name, base: { pid: process.pid } }, sink ?? pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
