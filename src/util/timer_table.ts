/**
 * Fixed table of deadlines indexed by timer kind (quinn's `TimerTable`). `Infinity` = unset.
 *
 * @module
 */

export class TimerTable {
  readonly #at: Float64Array;

  constructor(count: number) {
    this.#at = new Float64Array(count).fill(Infinity);
  }

  set(kind: number, at: number): void {
    this.#at[kind] = at;
  }

  stop(kind: number): void {
    this.#at[kind] = Infinity;
  }

  get(kind: number): number {
    return this.#at[kind]!;
  }

  /** True when `kind` is set and due at `now`. */
  isExpired(kind: number, now: number): boolean {
    return this.#at[kind]! <= now;
  }

  /** The earliest deadline, or Infinity. */
  next(): number {
    let m = Infinity;
    for (const t of this.#at) if (t < m) m = t;
    return m;
  }
}
