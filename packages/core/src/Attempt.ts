/**
 * The attempt trace: every call the router made for one request, in order,
 * with its model, outcome, error and duration, and every model it skipped
 * without a call (held, open, its probe taken, or its retry budget spent).
 *
 * @example
 * import { Attempt } from "@ironlabsai/core"
 *
 * const describe = (attempts: ReadonlyArray<Attempt.Attempt>) =>
 *   attempts.map((a) => `${a.model} ${a.error?.reason ?? "ok"}`).join(" -> ")
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { ProviderError } from "./ProviderError.js"

/**
 * Why a model was skipped without a call: it was `held` (a provider said when
 * to come back), its breaker was `open`, it was `half-open` with another
 * request's probe in flight, its `retry-budget` was spent, its rate
 * `budget` (`rate_limits`) was spent until `until`, or it is `unsupported`:
 * it cannot serve a field of this request (`fields` names them).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Skip = Schema.Struct({
  reason: Schema.Literal("held", "open", "half-open", "retry-budget", "unsupported", "budget"),
  /** When the model can be called again, in epoch millis, when known. */
  until: Schema.optional(Schema.Number),
  /** What held or opened the model: a `ProviderError` reason; for `budget`, the one spent (`rpm` or `tpm`). */
  cause: Schema.optional(Schema.String),
  /** For `unsupported`: the request's fields the model cannot serve (`seed`, `messages[2].content[0]`). */
  fields: Schema.optional(Schema.Array(Schema.String))
})

/**
 * @since 0.2.0
 * @category models
 */
export type Skip = typeof Skip.Type

/**
 * One call to one model, or one model skipped without a call.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Attempt = Schema.Struct({
  /** The routed model id. */
  model: Schema.String,
  /** `cancelled`: a hedge's race was won by another call, and this one was interrupted (it counts for nothing). */
  outcome: Schema.Literal("success", "failure", "skipped", "cancelled"),
  /** How long the call took, from its start to its result; zero for a skip. */
  duration: Schema.DurationFromSelf,
  /** Why it failed, when it did. */
  error: Schema.optional(ProviderError),
  /** Why it was skipped, when it was. */
  skip: Schema.optional(Skip),
  /**
   * The request's fields left out of this call because the model cannot serve
   * them, as `drop_unsupported_params` allows.
   */
  dropped: Schema.optional(Schema.Array(Schema.String)),
  /** For a success that was not streamed: the tokens it used. */
  usage: Schema.optional(Schema.Struct({ prompt_tokens: Schema.Number, completion_tokens: Schema.Number })),
  /** For a success with `prices` configured: what it cost, in US dollars. */
  cost: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Attempt = typeof Attempt.Type

/**
 * Counts calls per model (skips are not calls), in the order models were first
 * tried.
 *
 * @since 0.1.0
 * @category utils
 */
export const countByModel = (attempts: ReadonlyArray<Attempt>): ReadonlyMap<string, number> => {
  const counts = new Map<string, number>()
  for (const attempt of attempts) {
    if (attempt.outcome !== "skipped") counts.set(attempt.model, (counts.get(attempt.model) ?? 0) + 1)
  }
  return counts
}

/**
 * Whether an attempt was a skip, not a call.
 *
 * @since 0.2.0
 * @category guards
 */
export const isSkipped = (attempt: Attempt): boolean => attempt.outcome === "skipped"
