/**
 * The memory of one model: its hold, its breaker, its sliding window of calls
 * and its retry budget. Plain synchronous code over epoch millis; the
 * `ModelHealth` service reads the clock and the random source and calls it.
 */
import type { Change } from "../ModelHealth.js"
import type * as ProviderError from "../ProviderError.js"

/** The state of a model as a caller sees it. */
export type State = "healthy" | "held" | "open" | "half-open"

/** The settings of the breaker and the holds, in millis. */
export interface HealthSettings {
  readonly consecutiveFailures: number
  readonly failureRate: number
  readonly windowMillis: number
  readonly minCalls: number
  readonly openForMillis: number
  readonly maxOpenForMillis: number
  readonly rateLimitHoldMillis: number
  readonly longHoldMillis: number
}

/** The settings of the retry budget, in millis. */
export interface BudgetSettings {
  readonly ratio: number
  readonly windowMillis: number
  readonly minPerSecond: number
}

/** Why a model cannot be called now, and until when (epoch millis; none while a probe is out). */
export interface Unavailable {
  readonly state: "held" | "open" | "half-open"
  readonly until?: number | undefined
  readonly reason?: string | undefined
}

/** Reasons that hold a model long: nothing will change by retrying soon. */
const longHoldReasons: ReadonlySet<ProviderError.Reason> = new Set<ProviderError.Reason>([
  "QuotaExceeded",
  "Authentication",
  "PermissionDenied",
  "NotFound"
])

/** Reasons the breaker counts (DESIGN §8); a stream broken after its commit is recorded with its own reason. */
const countedReasons: ReadonlySet<string> = new Set([
  "Overloaded",
  "ServerError",
  "Timeout",
  "Transport",
  "MalformedResponse"
])

/**
 * Whether a failure of this reason counts against the breaker.
 */
export const isCounted = (reason: string): boolean => countedReasons.has(reason)

/** Counts per time slot over a sliding window: `slots` slots of `windowMillis / slots` each. */
class SlidingCounts {
  private readonly starts: Array<number>
  private readonly a: Array<number>
  private readonly b: Array<number>
  private readonly slotMillis: number
  constructor(
    readonly windowMillis: number,
    readonly slots: number
  ) {
    this.slotMillis = Math.max(1, windowMillis / slots)
    this.starts = new Array(slots).fill(Number.NEGATIVE_INFINITY)
    this.a = new Array(slots).fill(0)
    this.b = new Array(slots).fill(0)
  }
  add(now: number, a: number, b: number): void {
    const slot = Math.floor(now / this.slotMillis)
    const i = ((slot % this.slots) + this.slots) % this.slots
    if (this.starts[i] !== slot) {
      this.starts[i] = slot
      this.a[i] = 0
      this.b[i] = 0
    }
    this.a[i]! += a
    this.b[i]! += b
  }
  /** The sums of both counters over the slots still inside the window at `now`. */
  sums(now: number): readonly [number, number] {
    const oldest = Math.floor(now / this.slotMillis) - this.slots + 1
    let a = 0
    let b = 0
    for (let i = 0; i < this.slots; i++) {
      if (this.starts[i]! >= oldest) {
        a += this.a[i]!
        b += this.b[i]!
      }
    }
    return [a, b]
  }
  clear(): void {
    this.starts.fill(Number.NEGATIVE_INFINITY)
  }
}

/**
 * One model's memory.
 */
export class ModelState {
  // Hold: deterministic, from what the provider said.
  holdUntil = 0
  holdReason: string | undefined = undefined
  /** 429s in a row without a stated wait: the default hold doubles with each. */
  rateLimitStreak = 0

  // Breaker: statistical.
  breaker: "closed" | "open" | "half-open" = "closed"
  openUntil = 0
  openReason: string | undefined = undefined
  /** Opens in a row (k); decays by one for each window spent closed. */
  opens = 0
  /** When the breaker last opened or closed: failures of calls started earlier are stale. */
  since = Number.NEGATIVE_INFINITY
  /** While a probe is out: the end of its lease (epoch millis), after which another call may probe. */
  probeUntil = 0
  consecutiveFailures = 0
  /** Calls (a) and counted failures (b) over the breaker's window. */
  readonly calls: SlidingCounts
  /** Requests (a) and retries (b) over the budget's window. */
  readonly budget: SlidingCounts | undefined

  /** The state last published, for transitions. */
  published: State = "healthy"

  constructor(
    readonly health: HealthSettings | undefined,
    readonly budgetSettings: BudgetSettings | undefined
  ) {
    this.calls = new SlidingCounts(health?.windowMillis ?? 30_000, 30)
    this.budget = budgetSettings === undefined ? undefined : new SlidingCounts(budgetSettings.windowMillis, 10)
  }

  /** Moves the breaker from open to half-open once its time is up. */
  private tick(now: number): void {
    if (this.breaker === "open" && now >= this.openUntil) {
      this.breaker = "half-open"
      this.since = this.openUntil
    }
  }

  /** The state at `now`. */
  state(now: number): State {
    this.tick(now)
    const held = this.holdUntil > now
    if (this.breaker === "open" && (!held || this.openUntil > this.holdUntil)) return "open"
    if (held) return "held"
    return this.breaker === "half-open" ? "half-open" : "healthy"
  }

  /** Until when, and why, the model is in `state` (a state just read with `state`). */
  explain(state: State): { readonly until: number | undefined; readonly reason: string | undefined } {
    if (state === "held") return { until: this.holdUntil, reason: this.holdReason }
    if (state === "open") return { until: this.openUntil, reason: this.openReason }
    return { until: undefined, reason: state === "half-open" ? this.openReason : undefined }
  }

  /** When the state at `now` began, for a transition observed late (a hold ran out, an open period ended). */
  changedAt(now: number, to: State): number {
    if (to === "half-open") return this.openUntil
    if (to === "healthy" && this.published === "held") return Math.min(now, this.holdUntil)
    return now
  }

  /** Why the model cannot be called now, or `undefined` when it can (maybe as the probe). */
  unavailable(now: number, options: { readonly ignoreBreaker: boolean }): Unavailable | undefined {
    const state = this.state(now)
    if (state === "healthy" || (options.ignoreBreaker && state !== "held")) return undefined
    if (state === "half-open" && this.probeUntil <= now) return undefined
    const { reason, until } = this.explain(state)
    return { state, ...(until === undefined ? {} : { until }), ...(reason === undefined ? {} : { reason }) }
  }

  /**
   * Takes the probe permit when the breaker is half-open; true when this call
   * is the probe. The permit is a lease of `leaseMillis`: a probe that never
   * reports back (its fiber lost between the call and the record) cannot keep
   * the model half-open for ever.
   */
  takeProbe(now: number, leaseMillis: number): boolean {
    if (this.state(now) !== "half-open" || this.probeUntil > now) return false
    this.probeUntil = now + leaseMillis
    return true
  }

  /** A request's first call at this model: a deposit in the retry budget. */
  deposit(now: number): void {
    this.budget?.add(now, 1, 0)
  }

  /** A retry of this model: taken from the budget, or refused when it is spent. */
  withdraw(now: number): boolean {
    if (this.budget === undefined || this.budgetSettings === undefined) return true
    const { minPerSecond, ratio, windowMillis } = this.budgetSettings
    const [requests, retries] = this.budget.sums(now)
    if (retries + 1 > minPerSecond * (windowMillis / 1000) + ratio * requests) return false
    this.budget.add(now, 0, 1)
    return true
  }

  /** The budget's counts at `now`: requests and retries in its window. */
  budgetCounts(now: number): readonly [number, number] {
    return this.budget?.sums(now) ?? [0, 0]
  }

  /** The breaker's counts at `now`: calls and counted failures in its window. */
  windowCounts(now: number): readonly [number, number] {
    return this.calls.sums(now)
  }

  /** Gives the probe permit back without counting anything (the call was cancelled). */
  release(): void {
    this.probeUntil = 0
  }

  /** A call that answered. */
  succeeded(now: number, probe: boolean): void {
    if (probe) this.probeUntil = 0
    const health = this.health
    if (health === undefined) return
    this.consecutiveFailures = 0
    this.rateLimitStreak = 0
    if (this.breaker !== "closed") {
      // A fresh start: what happened before the open no longer describes the model.
      this.breaker = "closed"
      this.since = now
      this.probeUntil = 0
      this.calls.clear()
    }
    this.calls.add(now, 1, 0)
  }

  /**
   * A call that failed. Returns the change it made to the model's
   * availability, if any, or `"trip"` when the breaker must open: the caller
   * then draws a random number and calls `open`.
   */
  failed(
    now: number,
    startedAt: number,
    probe: boolean,
    error: { readonly reason: string; readonly holdFor?: number | undefined }
  ): Change | "trip" | undefined {
    if (probe) this.probeUntil = 0
    const health = this.health
    if (health === undefined) return undefined
    if (error.reason === "RateLimited") {
      const stated = error.holdFor
      const wait =
        stated ?? Math.min(health.longHoldMillis, health.rateLimitHoldMillis * 2 ** Math.min(this.rateLimitStreak, 30))
      if (stated === undefined) this.rateLimitStreak++
      return this.hold(now + Math.min(wait, health.longHoldMillis), error.reason)
    }
    if (longHoldReasons.has(error.reason as ProviderError.Reason)) {
      return this.hold(now + health.longHoldMillis, error.reason)
    }
    if (!isCounted(error.reason)) return undefined
    this.tick(now)
    if (this.breaker !== "closed") {
      // Only the probe speaks for a model whose breaker is not closed.
      return probe ? "trip" : undefined
    }
    if (startedAt < this.since) return undefined
    this.consecutiveFailures++
    this.calls.add(now, 1, 1)
    const [calls, failures] = this.calls.sums(now)
    const tripped =
      this.consecutiveFailures >= health.consecutiveFailures ||
      (calls >= health.minCalls && failures / calls >= health.failureRate)
    return tripped ? "trip" : undefined
  }

  /**
   * A successful reply said a rate limit has nothing left until `now +
   * millis`: the model is held till then (capped at the long hold), as a 429
   * would hold it, without counting as a failure.
   */
  spent(now: number, millis: number): Change | undefined {
    const health = this.health
    if (health === undefined || millis <= 0) return undefined
    return this.hold(now + Math.min(millis, health.longHoldMillis), "RateLimited")
  }

  /** Holds the model until `until`, unless a longer hold stands. */
  private hold(until: number, reason: string): Change | undefined {
    if (until <= this.holdUntil) return undefined
    this.holdUntil = until
    this.holdReason = reason
    return { state: "held", until, reason }
  }

  /** Opens the breaker for `open_for * 2^(k-1)` jittered by [0.8, 1.2] (`random` in [0, 1)), capped. */
  open(now: number, reason: string, random: number): Change {
    const health = this.health!
    // k decays by one for each window the model spent closed since it last closed.
    const quietWindows = this.breaker === "closed" ? Math.floor((now - this.since) / health.windowMillis) : 0
    this.opens = Math.max(0, this.opens - Math.max(0, quietWindows)) + 1
    const base = health.openForMillis * 2 ** Math.min(this.opens - 1, 30)
    const until = now + Math.min(health.maxOpenForMillis, Math.round(base * (0.8 + 0.4 * random)))
    this.breaker = "open"
    this.openUntil = until
    this.openReason = reason
    this.since = now
    this.probeUntil = 0
    // The counters stay as they were, to explain the open, until the model closes again.
    return { state: "open", until, reason }
  }
}
