// node:http2 keeps each session's streams in a Map (id → stream) and its not-yet-numbered streams in
// a Set: every stream is added to both and later deleted. V8 cannot compact a Map's hash table in
// place: when deleted entries fill it, or it grows or shrinks, it allocates a new table, in the old
// generation if the current one is there (a long-lived session's soon is), and the table it leaves
// keeps the entries it had then until a mark-compact. Scavenges treat old objects as roots, so every
// stream that was in the Map at one of those rehashes (at ten concurrent streams, nearly all of
// them) was promoted with all it holds (its state, headers, listeners, buffers): ~1 KB per stream,
// downstream and upstream alike, freed only by mark-compacts. The session's Map and Set are replaced
// here by tables over arrays that are reused: a delete clears its slot, and nothing is reallocated
// once the arrays have room for the session's peak of concurrent streams. Node reads them only with
// get/set/delete/size/forEach (the Map) and add/delete/size/forEach (the Set); a session whose
// state is not shaped as expected is left alone.
import { isMap, isSet } from 'node:util/types';

/** A Map from stream id to stream: open addressing by id, linear probing, backward-shift deletion. */
export class StreamTable<V> {
  private keys: number[] = new Array<number>(16).fill(0);
  private values: (V | undefined)[] = new Array<V | undefined>(16).fill(undefined);
  private mask = 15;
  size = 0;

  private slot(id: number): number {
    const keys = this.keys;
    let i = (id >>> 1) & this.mask;
    while (keys[i] !== 0 && keys[i] !== id) i = (i + 1) & this.mask;
    return i;
  }

  get(id: number): V | undefined {
    const i = this.slot(id);
    return this.keys[i] === id ? this.values[i] : undefined;
  }

  has(id: number): boolean {
    return this.keys[this.slot(id)] === id;
  }

  set(id: number, value: V): this {
    if (!(id > 0)) throw new RangeError(`stream id ${id} is not positive`);
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    const i = this.slot(id);
    if (this.keys[i] !== id) {
      this.keys[i] = id;
      this.size++;
    }
    this.values[i] = value;
    return this;
  }

  delete(id: number): boolean {
    const keys = this.keys;
    const values = this.values;
    const mask = this.mask;
    let i = this.slot(id);
    if (keys[i] !== id) return false;
    // Backward-shift: later entries of the probe run move up, so lookups need no tombstones.
    for (let j = (i + 1) & mask; keys[j] !== 0; j = (j + 1) & mask) {
      const home = (keys[j] >>> 1) & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        keys[i] = keys[j];
        values[i] = values[j];
        i = j;
      }
    }
    keys[i] = 0;
    values[i] = undefined;
    this.size--;
    return true;
  }

  forEach(fn: (value: V, id: number) => void): void {
    // A snapshot: node destroys streams (deleting them) from this loop.
    const entries: [number, V][] = [];
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] !== 0) entries.push([this.keys[i], this.values[i] as V]);
    for (const [id, value] of entries) fn(value, id);
  }

  private grow(): void {
    const keys = this.keys;
    const values = this.values;
    this.keys = new Array<number>(keys.length * 2).fill(0);
    this.values = new Array<V | undefined>(keys.length * 2).fill(undefined);
    this.mask = keys.length * 2 - 1;
    this.size = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== 0) this.set(keys[i], values[i] as V);
  }
}

/** A Set of the few streams waiting for their id: an array, slots cleared on delete. */
export class PendingStreams<V extends object> {
  private readonly slots: (V | undefined)[] = [];
  size = 0;

  add(value: V): this {
    if (this.slots.includes(value)) return this;
    const free = this.slots.indexOf(undefined);
    if (free < 0) this.slots.push(value);
    else this.slots[free] = value;
    this.size++;
    return this;
  }

  has(value: V): boolean {
    return this.slots.includes(value);
  }

  delete(value: V): boolean {
    const i = this.slots.indexOf(value);
    if (i < 0) return false;
    this.slots[i] = undefined;
    this.size--;
    return true;
  }

  forEach(fn: (value: V, same: V) => void): void {
    for (const value of this.slots.filter((v) => v !== undefined)) fn(value, value);
  }
}

interface SessionState {
  streams: unknown;
  pendingStreams: unknown;
}

function sessionState(session: object): SessionState | undefined {
  for (const key of Object.getOwnPropertySymbols(session)) {
    if (key.description !== 'state') continue;
    const state = (session as Record<symbol, unknown>)[key] as Partial<SessionState> | undefined;
    if (isMap(state?.streams) && isSet(state.pendingStreams)) return state as SessionState;
  }
  return undefined;
}

/** Replaces `session`'s stream Map and Set (see above), keeping what they hold; once per session. */
export function lightenH2StreamTables(session: object): void {
  const state = sessionState(session);
  if (state === undefined) return;
  const streams = new StreamTable<unknown>();
  for (const [id, stream] of state.streams as Map<unknown, unknown>) {
    if (typeof id !== 'number') return; // not node's shape: leave it alone
    streams.set(id, stream);
  }
  const pending = new PendingStreams<object>();
  for (const stream of state.pendingStreams as Set<object>) pending.add(stream);
  state.streams = streams;
  state.pendingStreams = pending;
}
