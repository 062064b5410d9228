/**
 * One instance's share of a global rate bucket (DESIGN §9, §11): a small
 * lease of requests or tokens taken from Redis ahead of time, so that a
 * reservation is answered synchronously from memory. Plain numbers, read and
 * written synchronously; the store refills it in the background.
 */

/** The budgets a rate limit has. */
export type Kind = "rpm" | "tpm"

/**
 * How much an instance leases at a time from a bucket of `capacity` a minute:
 * one second of refill, at least 1 (60 rpm: one request at a time). Small, so
 * that what the instances of a fleet hold and have not spent stays small.
 */
export const leaseSize = (capacity: number): number => Math.max(1, Math.ceil(capacity / 60))

/** @internal */
export class Lease {
  /** What this instance may still spend; below 0 when calls used more than they reserved (owed, repaid by the next grant). */
  level = 0
  /** What a call that found the lease short needs (0: none): the next refill asks for at least that much. */
  need = 0
  /** When the global bucket has room again, as the last short grant said (0: not known to be short). */
  retryAt = 0
  /** A refill is on its way (or waits for the global bucket to have room). */
  refilling = false
  /** When the refill's script was sent, while it is not answered. */
  sentAt: number | undefined = undefined
  /** The lease size. */
  target: number

  constructor(public capacity: number) {
    this.target = leaseSize(capacity)
  }

  /** The limit changed (a new config): the lease follows it. */
  resize(capacity: number): void {
    if (capacity !== this.capacity) {
      this.capacity = capacity
      this.target = leaseSize(capacity)
    }
  }

  /** Whether `amount` can be taken now: as the in-memory bucket, a call larger than the whole budget needs only all of it. */
  covers(amount: number): boolean {
    return this.level >= Math.min(amount, this.capacity)
  }

  /** Takes `amount` (the level may go below 0: see `level`). */
  take(amount: number): void {
    this.level -= amount
  }

  /** A call that found the lease short: the next refill brings at least what it needs. */
  demand(amount: number): void {
    this.need = Math.max(this.need, Math.min(amount, this.capacity))
  }

  /** A settled call gives back (`delta` > 0) or owes (`delta` < 0) to the lease, not to Redis. */
  adjust(delta: number): void {
    this.level += delta
  }

  /** Below the low-water mark (half a lease), or a call waits for more than there is. */
  get short(): boolean {
    return this.level < this.target / 2 || this.waiting
  }

  /** A call found the lease short and it is still short. */
  get waiting(): boolean {
    return this.need > 0 && this.level < this.need
  }

  /** How much to ask the global bucket for: back up to a lease, or to what a waiting call needs, at most a full bucket. */
  ask(): number {
    return Math.min(this.capacity, Math.max(0, Math.ceil(Math.max(this.target, this.need) - this.level)))
  }

  /** The least a refill must bring to be of use: what a waiting call still needs, else one. */
  least(): number {
    return Math.min(this.ask(), Math.max(1, Math.ceil(this.need - this.level)))
  }

  /** The global bucket granted `grant`, and has the rest of the `least` asked for in `wait` ms. */
  granted(least: number, grant: number, wait: number, now: number): void {
    this.level += grant
    this.retryAt = grant < least ? now + wait : 0
    if (!this.waiting) this.need = 0
  }

  /** When a call refused now should try again: after the refill's round trip, or when the global bucket has room. */
  until(now: number, roundTrip: number): number {
    return Math.max(now + roundTrip, this.retryAt)
  }

  /** What goes back to the global bucket when the instance stops: what it holds, or owes (below 0). */
  release(): number {
    const level = this.level
    this.level = 0
    return level
  }
}
