// Envoy's /logging admin endpoint over the proxy's loggers: one logger per component (the
// `component` binding of a child logger: xds-client, identity, dns, …) plus the root one. GET (or
// POST without a query) lists them as Envoy does ("active loggers:"); POST ?level=L sets every
// logger, POST ?<logger>=L one, POST ?paths=<logger>:L,<logger>:L several. Envoy's level names
// (trace, debug, info, warning, error, critical, off) and pino's (warn, fatal, silent) are accepted.
import type { Logger } from '../../core/log.ts';

const TO_PINO: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', critical: 'fatal', fatal: 'fatal', off: 'silent', silent: 'silent' };
const TO_ENVOY: Record<string, string> = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warning', error: 'error', fatal: 'critical', silent: 'off' };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;

export class LogLevelError extends Error {}

export class LogLevels {
  readonly #root: Logger;
  readonly #rootName: string;
  readonly #children = new Map<string, Set<Logger>>();
  /** Pino level of each logger that was set by name; the others follow the root. */
  readonly #levels = new Map<string, string>();

  constructor(root: Logger, rootName = 'proxy') {
    this.#root = root;
    this.#rootName = rootName;
    // Children of children inherit the hook (pino builds them on their parent's prototype).
    root.onChild = (child) => {
      const name = (child.bindings() as { component?: unknown }).component;
      if (typeof name !== 'string' || name === rootName) return;
      let set = this.#children.get(name);
      if (!set) this.#children.set(name, (set = new Set()));
      set.add(child);
      const level = this.#levels.get(name);
      if (level) child.level = level;
    };
  }

  /** [logger, Envoy level name], sorted by logger name. */
  list(): [string, string][] {
    const names = [this.#rootName, ...this.#children.keys()].sort();
    return names.map((n) => [n, TO_ENVOY[this.#levels.get(n) ?? this.#root.level] ?? this.#root.level]);
  }

  /** Envoy's answer: "active loggers:" then one "  name: level" line each. */
  render(): string {
    return 'active loggers:\n' + this.list().map(([n, l]) => `  ${n}: ${l}\n`).join('');
  }

  /** Sets every logger (name undefined) or one; throws LogLevelError naming what is wrong. */
  set(name: string | undefined, level: string): void {
    const pinoLevel = TO_PINO[level];
    if (!pinoLevel) throw new LogLevelError(`unknown level "${level}" (one of ${LOG_LEVELS.join(', ')})`);
    if (name === undefined) {
      this.#levels.clear();
      this.#root.level = pinoLevel;
      for (const set of this.#children.values()) for (const c of set) c.level = pinoLevel;
      return;
    }
    if (name !== this.#rootName && !this.#children.has(name)) throw new LogLevelError(`unknown logger "${name}" (one of ${this.list().map(([n]) => n).join(', ')})`);
    if (name === this.#rootName) {
      // Children that follow the root keep their level: pin them before the root changes.
      for (const [child, set] of this.#children) {
        if (this.#levels.has(child)) continue;
        this.#levels.set(child, this.#root.level);
        for (const c of set) c.level = this.#root.level;
      }
      this.#root.level = pinoLevel;
      this.#levels.set(name, pinoLevel);
      return;
    }
    this.#levels.set(name, pinoLevel);
    for (const c of this.#children.get(name)!) c.level = pinoLevel;
  }

  /** Applies an admin query: level=L, <logger>=L, paths=<logger>:L,… (checked whole before any change). */
  apply(query: URLSearchParams): void {
    const changes: [string | undefined, string][] = [];
    for (const [key, value] of query) {
      if (key === 'level') changes.push([undefined, value]);
      else if (key === 'paths') {
        for (const item of value.split(',').filter(Boolean)) {
          const i = item.lastIndexOf(':');
          if (i <= 0) throw new LogLevelError(`paths: "${item}" is not <logger>:<level>`);
          changes.push([item.slice(0, i), item.slice(i + 1)]);
        }
      } else changes.push([key, value]);
    }
    const known = new Set(this.list().map(([n]) => n));
    for (const [name, level] of changes) {
      if (!TO_PINO[level]) throw new LogLevelError(`unknown level "${level}"${name ? ` for ${name}` : ''} (one of ${LOG_LEVELS.join(', ')})`);
      if (name !== undefined && !known.has(name)) throw new LogLevelError(`unknown logger "${name}" (one of ${[...known].join(', ')})`);
    }
    for (const [name, level] of changes) this.set(name, level);
  }
}
