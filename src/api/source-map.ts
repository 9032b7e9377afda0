// Maps a field path inside a resource back to the line and column it was written at, by walking
// the YAML node tree the resource was read from.
import { isMap, isPair, isScalar, isSeq } from 'yaml';
import type { LineCounter, Node } from 'yaml';
import type { SourcePosition } from './resource.ts';

export type FieldPath = readonly (string | number)[];

export interface Locator {
  /** Where the field at `path` was written; the nearest existing ancestor if it is absent. With `key`, the key of the last segment. */
  locate(path: FieldPath, opts?: { key?: boolean }): SourcePosition | undefined;
}

const locators = new WeakMap<object, Locator>();

/** Remembers where a loaded resource's fields were written (used by analysis to point at fields). */
export function rememberLocator(resource: object, locator: Locator): void {
  locators.set(resource, locator);
}

/** The locator of a resource returned by the loader, if it came from YAML/JSON text. */
export function locatorOf(resource: object): Locator | undefined {
  return locators.get(resource);
}

/** A locator for a resource that has no YAML behind it (built in code): everything points at the resource. */
export function fixedLocator(source: SourcePosition | undefined): Locator {
  return { locate: () => source };
}

export class YamlLocator implements Locator {
  readonly #file: string;
  readonly #lines: LineCounter;
  readonly #root: Node;

  constructor(file: string, lines: LineCounter, root: Node) {
    this.#file = file;
    this.#lines = lines;
    this.#root = root;
  }

  locate(path: FieldPath, opts: { key?: boolean } = {}): SourcePosition | undefined {
    let node: unknown = this.#root;
    let at = this.#offsetOf(node);
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyString(p.key) === String(seg));
        if (!pair) break;
        if (last && opts.key) return this.#pos(this.#offsetOf(pair.key) ?? at);
        node = pair.value;
        at = this.#offsetOf(pair.value) ?? this.#offsetOf(pair.key) ?? at;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
        at = this.#offsetOf(item) ?? at;
      } else {
        break;
      }
    }
    return this.#pos(at);
  }

  #offsetOf(node: unknown): number | undefined {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? range[0] : undefined;
  }

  #pos(offset: number | undefined): SourcePosition | undefined {
    if (offset === undefined) return undefined;
    const { line, col } = this.#lines.linePos(offset);
    return { file: this.#file, line, column: col };
  }
}

function keyString(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}
