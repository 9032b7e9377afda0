// Earliest-deadline-first scheduler (Envoy's EdfScheduler): each entry is due at
// `now + 1/weight`; picking pops the earliest deadline, so over time every entry is picked in
// proportion to its weight, smoothly interleaved. Ties go to the entry added first.

interface Entry<T> {
  deadline: number;
  seq: number;
  item: T;
}

export class EdfScheduler<T> {
  #heap: Entry<T>[] = [];
  #now = 0;
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  add(weight: number, item: T): void {
    this.#push({ deadline: this.#now + 1 / weight, seq: this.#seq++, item });
  }

  /** Removes and returns the earliest entry; the caller re-adds it (possibly with a new weight). */
  pop(): T | undefined {
    const top = this.#heap[0];
    if (top === undefined) return undefined;
    const last = this.#heap.pop() as Entry<T>;
    if (this.#heap.length > 0) {
      this.#heap[0] = last;
      this.#siftDown(0);
    }
    this.#now = top.deadline;
    return top.item;
  }

  /** Picks the earliest entry and re-adds it with the same weight. */
  pickAndAdd(weightOf: (item: T) => number): T | undefined {
    const item = this.pop();
    if (item !== undefined) this.add(weightOf(item), item);
    return item;
  }

  #less(a: Entry<T>, b: Entry<T>): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  #push(e: Entry<T>): void {
    const heap = this.#heap;
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.#less(heap[l], heap[m])) m = l;
      if (r < n && this.#less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  }
}
