/**
 * How a whole request fails: every model failed, or the overall deadline
 * passed. Both carry the attempt trace.
 *
 * @example
 * import { Effect } from "effect"
 * import { RoutingError } from "@ironlabsai/core"
 *
 * const report = (error: RoutingError.RoutingError) =>
 *   Effect.logWarning(`${error._tag} after ${error.attempts.length} attempts`)
 *
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"
import * as Attempt from "./Attempt.js"
import { ProviderError } from "./ProviderError.js"

/**
 * Every model failed. `attempts` holds each attempt with its error, in order.
 *
 * @since 0.1.0
 * @category errors
 */
export class AllModelsFailed extends Schema.TaggedError<AllModelsFailed>("AllModelsFailed")("AllModelsFailed", {
  attempts: Schema.Array(Attempt.Attempt)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `All models failed after ${this.attempts.length} attempts: ${summarize(this.attempts)}`
  }
}

/**
 * The overall deadline of a request passed; `attempts` are those made so far.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>("DeadlineExceeded")("DeadlineExceeded", {
  deadline: Schema.DurationFromSelf,
  attempts: Schema.Array(Attempt.Attempt)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const made = this.attempts.length === 0 ? "no attempt finished" : summarize(this.attempts)
    return `Deadline of ${Duration.format(this.deadline)} exceeded: ${made}`
  }
}

/**
 * A stream failed after its first content reached the caller: it is not
 * retried (the caller already has part of an answer). `delivered` is the text
 * delivered so far; `error` is why the model's stream broke.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamInterrupted extends Schema.TaggedError<StreamInterrupted>("StreamInterrupted")("StreamInterrupted", {
  model: Schema.String,
  delivered: Schema.String,
  error: ProviderError,
  attempts: Schema.Array(Attempt.Attempt)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The stream from ${this.model} broke after ${this.delivered.length} characters: ${this.error.reason}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export type RoutingError = AllModelsFailed | DeadlineExceeded

/** `openai/gpt-4o: RateLimited x3, anthropic/...: Timeout`: reasons per model, in order. */
const summarize = (attempts: ReadonlyArray<Attempt.Attempt>): string => {
  const parts: Array<string> = []
  for (const [model] of Attempt.countByModel(attempts)) {
    const reasons = new Map<string, number>()
    for (const a of attempts) {
      if (a.model === model && a.error) reasons.set(a.error.reason, (reasons.get(a.error.reason) ?? 0) + 1)
    }
    const text = [...reasons].map(([reason, n]) => (n === 1 ? reason : `${reason} x${n}`)).join(", ")
    parts.push(`${model}: ${text}`)
  }
  return parts.join("; ")
}
