// What every connection of the open-loop generator reports to: the time each request was due
// (its place in the schedule), when it was actually written, and when its response ended.
// Latency counts from the due time, so a request that waited behind a slow one on its
// connection is charged that wait (the coordinated-omission correction).
// Samples go to preallocated typed arrays: the generator must not trigger GC pauses of its own.

/** A growable Float64Array of samples. */
export class Samples {
  #data: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.#data = new Float64Array(Math.max(16, capacity));
  }

  push(v: number): void {
    if (this.length === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.length++] = v;
  }

  values(): Float64Array {
    return this.#data.subarray(0, this.length);
  }
}

export class Recorder {
  /** Requests due before this time are warm-up and not recorded. */
  recordFrom = Infinity;
  readonly latencies: Samples; // ms, from due time to end of response
  readonly serviceTimes: Samples; // ms, from write to end of response (uncorrected)
  readonly sendLags: Samples; // ms, from due time to write, for requests due on an idle connection
  errors = 0;
  readonly errorKinds = new Map<string, number>();
  outstanding = 0;

  constructor(expected: number) {
    this.latencies = new Samples(expected);
    this.serviceTimes = new Samples(expected);
    this.sendLags = new Samples(expected);
  }

  sent(dueMs: number, sentMs: number, connectionWasIdle: boolean): void {
    if (dueMs >= this.recordFrom && connectionWasIdle) this.sendLags.push(sentMs - dueMs);
  }

  done(dueMs: number, sentMs: number, endMs: number): void {
    this.outstanding--;
    if (dueMs < this.recordFrom) return;
    this.latencies.push(endMs - dueMs);
    this.serviceTimes.push(endMs - sentMs);
  }

  failed(dueMs: number, kind: string): void {
    this.outstanding--;
    if (dueMs < this.recordFrom) return;
    this.errors++;
    this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
  }
}

/** One connection of the generator: sends the request due at dueMs now or when it is free. */
export interface LoadConnection {
  open(): Promise<void>;
  send(dueMs: number): void;
  close(): void;
}
