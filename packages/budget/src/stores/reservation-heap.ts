/** One outstanding reservation in the memory store. */
export interface HeldReservation {
  readonly id: string;
  readonly key: string;
  readonly amount: number;
  readonly expiresAt: number;
  /** Store time of the reservation: refunds on expiry go only to a bucket born no later. */
  readonly createdAt: number;
}

/** A binary min-heap by `expiresAt` plus an index by id: O(log n) add, O(1) lookup, lazy removal. */
export class ReservationHeap {
  private readonly heap: HeldReservation[] = [];
  private readonly byId = new Map<string, HeldReservation>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): HeldReservation | undefined {
    return this.byId.get(id);
  }

  add(reservation: HeldReservation): void {
    this.byId.set(reservation.id, reservation);
    const heap = this.heap;
    heap.push(reservation);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (heap[parent]!.expiresAt <= reservation.expiresAt) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = reservation;
  }

  /** Removes by id (the heap entry is dropped lazily when it reaches the top). */
  delete(id: string): HeldReservation | undefined {
    const found = this.byId.get(id);
    if (found) this.byId.delete(id);
    return found;
  }

  /** When the earliest reservation (live or settled) expires; `Infinity` when there is none. */
  get nextExpiry(): number {
    return this.heap.length > 0 ? this.heap[0]!.expiresAt : Number.POSITIVE_INFINITY;
  }

  /** Pops and returns one live reservation with `expiresAt <= now`, or `undefined`. */
  popDue(now: number): HeldReservation | undefined {
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.expiresAt <= now) {
      const top = this.pop();
      if (this.byId.get(top.id) === top) {
        this.byId.delete(top.id);
        return top;
      }
    }
    // Settled reservations leave dead entries behind; compact when they dominate.
    if (heap.length > 64 && heap.length > this.byId.size * 4) this.rebuild();
    return undefined;
  }

  private pop(): HeldReservation {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let index = 0;
      const length = heap.length;
      for (;;) {
        const left = index * 2 + 1;
        if (left >= length) break;
        const right = left + 1;
        const child = right < length && heap[right]!.expiresAt < heap[left]!.expiresAt ? right : left;
        if (heap[child]!.expiresAt >= last.expiresAt) break;
        heap[index] = heap[child]!;
        index = child;
      }
      heap[index] = last;
    }
    return top;
  }

  private rebuild(): void {
    const live = [...this.byId.values()];
    this.heap.length = 0;
    this.byId.clear();
    for (const reservation of live) this.add(reservation);
  }
}
