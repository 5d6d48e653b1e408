/**
 * An O(1) FIFO on a growable ring buffer (`Array.shift()` is O(n)).
 *
 * @module
 */

/** FIFO queue. `capacity` is the initial size; it doubles when full unless `bounded`. */
export class RingQueue<T> {
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;
  readonly #bounded: boolean;

  /**
   * @param capacity initial (or, when `bounded`, maximum) number of items
   * @param bounded when true, {@link push} refuses items beyond `capacity` instead of growing
   */
  constructor(capacity = 16, bounded = false) {
    this.#items = new Array<T | undefined>(Math.max(1, capacity)).fill(undefined);
    this.#bounded = bounded;
  }

  get length(): number {
    return this.#size;
  }

  get capacity(): number {
    return this.#items.length;
  }

  /** Appends `item`. Returns false (and drops it) only when the queue is bounded and full. */
  push(item: T): boolean {
    if (this.#size === this.#items.length) {
      if (this.#bounded) return false;
      this.#grow();
    }
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
    return true;
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  /** The oldest item without removing it. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** The i-th oldest item (0 = oldest). */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#size) return undefined;
    return this.#items[(this.#head + i) % this.#items.length];
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const old = this.#items;
    const next = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) % old.length];
    this.#items = next;
    this.#head = 0;
  }
}
