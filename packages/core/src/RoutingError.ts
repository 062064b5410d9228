/**
 * How a whole request fails: every model failed, none could be called at all,
 * or the overall deadline passed. Each carries the attempt trace.
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
import { ModelStatus } from "./ModelHealth.js"
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
 * No model could be called at all: every candidate was held or open (or its
 * probe was taken) and `on_all_unavailable` did not wait for one (`fail`, or
 * the earliest reopening was past the deadline or `max_wait`), or could not
 * serve a field of the request. `attempts` holds each skip and why; `models`
 * gives each held or open candidate's state; `retryAt` is the earliest time
 * one reopens, in epoch millis, when known.
 *
 * @since 0.2.0
 * @category errors
 */
export class NoModelAvailable extends Schema.TaggedError<NoModelAvailable>("NoModelAvailable")("NoModelAvailable", {
  models: Schema.Array(ModelStatus),
  retryAt: Schema.optional(Schema.Number),
  attempts: Schema.Array(Attempt.Attempt)
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    const states = this.models.map((m) => `${m.model}: ${m.state}${m.reason === undefined ? "" : ` (${m.reason})`}`)
    const unservable = this.attempts.flatMap((a) =>
      a.skip?.fields === undefined ? [] : [`${a.model}: cannot serve ${a.skip.fields.join(", ")}`]
    )
    const retry = this.retryAt === undefined ? "" : `; the earliest reopens at ${new Date(this.retryAt).toISOString()}`
    return `No model available: ${[...unservable, ...states].join("; ")}${retry}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export type RoutingError = AllModelsFailed | DeadlineExceeded | NoModelAvailable

/** `openai/gpt-4o: RateLimited x3, anthropic/...: skipped (open)`: reasons per model, in order. */
const summarize = (attempts: ReadonlyArray<Attempt.Attempt>): string => {
  const parts: Array<string> = []
  for (const model of new Set(attempts.map((a) => a.model))) {
    const reasons = new Map<string, number>()
    for (const a of attempts) {
      const reason =
        a.error?.reason ??
        (a.skip === undefined
          ? undefined
          : `skipped (${a.skip.reason}${a.skip.fields === undefined ? "" : `: ${a.skip.fields.join(", ")}`})`)
      if (a.model === model && reason !== undefined) reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
    }
    const text = [...reasons].map(([reason, n]) => (n === 1 ? reason : `${reason} x${n}`)).join(", ")
    parts.push(`${model}: ${text}`)
  }
  return parts.join("; ")
}
