/**
 * Client-side rate budgets (DESIGN §9): `rate_limits: { model: { rpm, tpm } }`
 * caps the requests and tokens per minute this client spends on a model. A
 * call reserves one request and an estimate of its tokens before it is made,
 * and settles with the tokens it really used after; a model over its budget
 * is skipped (trace: skipped, budget) until it has room again.
 *
 * The service is synchronous and local, as routing needs: the in-memory
 * implementation here, and a shared store (Redis) behind the same interface.
 *
 * @example
 * import { RateBudget } from "@ironlabsai/core"
 *
 * const budget = RateBudget.unsafeMakeMemory()
 * const limit = { rpm: 60, tpm: 10_000 }
 * const reserved = budget.reserve("openai/gpt-4o", limit, 500, Date.now())
 * if (reserved._tag === "Reserved") budget.settle(reserved.reservation, 420, Date.now())
 *
 * @since 0.3.0
 */
import { Context } from "effect"
import type * as ChatCompletion from "./ChatCompletion.js"
import type * as Reliability from "./Reliability.js"

/**
 * What a call took from a budget: one request and `tokens` estimated tokens.
 *
 * @since 0.3.0
 * @category models
 */
export interface Reservation {
  readonly model: string
  readonly limit: Reliability.RateLimit
  readonly tokens: number
}

/**
 * A reservation, or the budget that is spent (`rpm` or `tpm`) and when it
 * has room again (epoch millis).
 *
 * @since 0.3.0
 * @category models
 */
export type Reserved =
  | { readonly _tag: "Reserved"; readonly reservation: Reservation }
  | { readonly _tag: "Over"; readonly budget: "rpm" | "tpm"; readonly until: number }

/**
 * The rate-budget service.
 *
 * @since 0.3.0
 * @category models
 */
export interface Service {
  /** Takes one request and `tokens` from `model`'s budget at `now`, or says which is spent and until when. */
  readonly reserve: (model: string, limit: Reliability.RateLimit, tokens: number, now: number) => Reserved
  /** The call is over and used `tokens` in all: the difference from the estimate goes back (or is owed). */
  readonly settle: (reservation: Reservation, tokens: number, now: number) => void
  /**
   * Told, when a client is made, of a budget its requests will reserve from
   * (its config's `rate_limits`), so that a shared store can lease ahead and
   * the first call finds budget there. Optional: a store in memory needs no
   * warning.
   */
  readonly expect?: ((model: string, limit: Reliability.RateLimit) => void) | undefined
}

/**
 * Rate budgets shared between processes (the Redis store of
 * `@ironlabsai/redis`), when provided: a client then takes its `rate_limits`
 * from it rather than from memory of its own.
 *
 * @since 0.4.0
 * @category tags
 */
export class RateBudget extends Context.Tag("ironlabsai/RateBudget")<RateBudget, Service>() {}

/** A bucket that refills `capacity` per minute, continuously; it may owe (go below 0) when a call used more. */
class Bucket {
  private level: number
  private at: number
  constructor(
    readonly capacity: number,
    now: number
  ) {
    this.level = capacity
    this.at = now
  }
  private refill(now: number): void {
    this.level = Math.min(this.capacity, this.level + ((now - this.at) * this.capacity) / 60_000)
    this.at = Math.max(this.at, now)
  }
  /** When `amount` will be there (now, if it is); a call larger than the bucket waits for it to be full. */
  readyAt(amount: number, now: number): number {
    this.refill(now)
    const need = Math.min(amount, this.capacity)
    return this.level >= need ? now : now + Math.ceil(((need - this.level) * 60_000) / this.capacity)
  }
  take(amount: number, now: number): void {
    this.refill(now)
    this.level -= amount
  }
}

/**
 * Budgets kept in this process's memory.
 *
 * @since 0.3.0
 * @category constructors
 */
export const unsafeMakeMemory = (): Service => {
  const buckets = new Map<string, { readonly rpm?: Bucket | undefined; readonly tpm?: Bucket | undefined }>()
  const bucketsOf = (model: string, limit: Reliability.RateLimit, now: number) => {
    let known = buckets.get(model)
    if (known === undefined) {
      known = {
        ...(limit.rpm === undefined ? {} : { rpm: new Bucket(limit.rpm, now) }),
        ...(limit.tpm === undefined ? {} : { tpm: new Bucket(limit.tpm, now) })
      }
      buckets.set(model, known)
    }
    return known
  }
  return {
    reserve: (model, limit, tokens, now) => {
      const { rpm, tpm } = bucketsOf(model, limit, now)
      const requestsAt = rpm?.readyAt(1, now) ?? now
      if (requestsAt > now) return { _tag: "Over", budget: "rpm", until: requestsAt }
      const tokensAt = tpm?.readyAt(tokens, now) ?? now
      if (tokensAt > now) return { _tag: "Over", budget: "tpm", until: tokensAt }
      rpm?.take(1, now)
      tpm?.take(tokens, now)
      return { _tag: "Reserved", reservation: { model, limit, tokens } }
    },
    settle: (reservation, tokens, now) => {
      const tpm = buckets.get(reservation.model)?.tpm
      tpm?.take(tokens - reservation.tokens, now)
    }
  }
}

/**
 * The tokens a request is expected to use, reserved before it is sent: about
 * four characters per token of its messages' text, plus its `max_tokens`
 * (or `max_completion_tokens`) when it sets one. Settled later with the real
 * count.
 *
 * @since 0.3.0
 * @category utils
 */
export const estimateTokens = (request: ChatCompletion.ChatCompletionRequest): number => {
  let characters = 0
  for (const message of request.messages) {
    const content = message.content
    if (typeof content === "string") characters += content.length
    else if (Array.isArray(content)) {
      for (const part of content) if (part.type === "text" && "text" in part) characters += part.text.length
    }
  }
  return Math.ceil(characters / 4) + (request.max_completion_tokens ?? request.max_tokens ?? 0)
}
