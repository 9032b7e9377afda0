// Compose-style output: each process's lines go to its log file in the state directory and,
// prefixed with its name in a colour of its own, to the terminal of `rig up`.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

const COLOURS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94, 91];

export interface ConsoleOptions {
  /** Write to this stream (default process.stdout). */
  out?: NodeJS.WritableStream;
  colour?: boolean;
  /** Pad prefixes to this width so that columns line up. */
  width?: number;
}

export class LogConsole {
  readonly #out: NodeJS.WritableStream;
  readonly #colour: boolean;
  #width: number;
  #next = 0;

  constructor(opts: ConsoleOptions = {}) {
    this.#out = opts.out ?? process.stdout;
    this.#colour = opts.colour ?? (process.env.NO_COLOR === undefined && (process.env.FORCE_COLOR !== undefined || Boolean((this.#out as NodeJS.WriteStream).isTTY)));
    this.#width = opts.width ?? 0;
  }

  widen(name: string): void {
    this.#width = Math.max(this.#width, name.length);
  }

  /** A writer for one process: `write(line)` prints `name | line`. */
  writer(name: string): (line: string) => void {
    this.widen(name);
    const code = COLOURS[this.#next++ % COLOURS.length];
    return (line) => {
      const prefix = `${name.padEnd(this.#width)} |`;
      this.#out.write(this.#colour ? `\x1b[${code}m${prefix}\x1b[0m ${line}\n` : `${prefix} ${line}\n`);
    };
  }

  /** The supervisor's own messages. */
  info(line: string): void {
    this.#out.write(this.#colour ? `\x1b[1m${'rig'.padEnd(this.#width)} |\x1b[0m ${line}\n` : `${'rig'.padEnd(this.#width)} | ${line}\n`);
  }

  error(line: string): void {
    this.#out.write(this.#colour ? `\x1b[1;31m${'rig'.padEnd(this.#width)} | ${line}\x1b[0m\n` : `${'rig'.padEnd(this.#width)} | ${line}\n`);
  }
}

/** A process's log file: every line of its stdout and stderr, appended across restarts. */
export class LogFile {
  readonly path: string;
  readonly #stream: WriteStream;

  constructor(path: string) {
    this.path = path;
    this.#stream = createWriteStream(path, { flags: 'a' });
    this.#stream.on('error', () => {
      // A full disk must not take the mesh down; the console still shows the lines.
    });
  }

  write(line: string): void {
    this.#stream.write(line + '\n');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#stream.end(resolve));
  }
}

/** Calls `onLine` for each complete line of `stream` (and the last partial one at its end). */
export function forEachLine(stream: Readable, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) onLine(p.replace(/\r$/, ''));
  });
  stream.on('end', () => {
    if (rest) onLine(rest);
    rest = '';
  });
}
