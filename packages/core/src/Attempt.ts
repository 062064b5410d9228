/**
 * The attempt trace: every call the router made for one request, in order,
 * with its model, outcome, error and duration.
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
 * One call to one model.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Attempt = Schema.Struct({
  /** The routed model id. */
  model: Schema.String,
  outcome: Schema.Literal("success", "failure"),
  /** How long the call took, from its start to its result. */
  duration: Schema.DurationFromSelf,
  /** Why it failed, when it did. */
  error: Schema.optional(ProviderError)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Attempt = typeof Attempt.Type

/**
 * Counts attempts per model, in the order models were first tried.
 *
 * @since 0.1.0
 * @category utils
 */
export const countByModel = (attempts: ReadonlyArray<Attempt>): ReadonlyMap<string, number> => {
  const counts = new Map<string, number>()
  for (const attempt of attempts) counts.set(attempt.model, (counts.get(attempt.model) ?? 0) + 1)
  return counts
}
