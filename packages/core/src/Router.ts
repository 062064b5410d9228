/**
 * The router: picks a model by weight or chain order, calls it with its extra
 * messages under its own timeout, retries transient failures on a jittered
 * exponential `Schedule` (raised by retry-after, capped by the time left),
 * then fails over until a model answers or none is left.
 *
 * @example
 * import { Effect, Either } from "effect"
 * import { Provider, Reliability, Router } from "@ironlabsai/core"
 *
 * declare const providers: Provider.Registry
 * const plan = Either.getOrThrow(
 *   Reliability.decode({ failover_chain: [{ model: "openai/gpt-4o" }] }, { providers: ["openai"] })
 * )
 * const answer = Router.route(plan, providers, { messages: [{ role: "user", content: "Hi" }] })
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Random, Schedule } from "effect"
import type * as Attempt from "./Attempt.js"
import type * as ChatCompletion from "./ChatCompletion.js"
import type * as Provider from "./Provider.js"
import * as ProviderError from "./ProviderError.js"
import type * as Reliability from "./Reliability.js"
import { AllModelsFailed, DeadlineExceeded } from "./RoutingError.js"

/**
 * The longest provider-requested wait the router will sit out before it fails
 * over instead.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetryAfterCap: Duration.Duration = Duration.seconds(60)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The overall deadline of the request: all attempts and backoff included. */
  readonly deadline?: Duration.DurationInput | undefined
  /** A retry wait longer than this fails over at once. Default 60 s. */
  readonly retryAfterCap?: Duration.DurationInput | undefined
}

/**
 * A routed answer: an OpenAI `ChatCompletion` whose `model` is the routed id,
 * with the trace of every attempt it took.
 *
 * @since 0.1.0
 * @category models
 */
export interface RoutedCompletion extends ChatCompletion.ChatCompletion {
  readonly attempts: ReadonlyArray<Attempt.Attempt>
}

/**
 * Routes one request over a plan.
 *
 * @since 0.1.0
 * @category routing
 */
export const route = (
  plan: Reliability.Plan,
  providers: Provider.Registry,
  request: ChatCompletion.ChatCompletionRequest,
  options: Options = {}
): Effect.Effect<RoutedCompletion, AllModelsFailed | DeadlineExceeded> =>
  Effect.suspend(() => {
    // The trace of this request only: appended as attempts end, read by the errors.
    const attempts: Array<Attempt.Attempt> = []
    const cap = Duration.decode(options.retryAfterCap ?? defaultRetryAfterCap)
    const run = (deadlineAt: number | undefined) =>
      Effect.gen(function* () {
        let remaining = plan.models
        for (;;) {
          const model = yield* pickNext(plan._tag, remaining)
          if (model === undefined) return yield* new AllModelsFailed({ attempts: [...attempts] })
          remaining = remaining.filter((m) => m !== model)
          const attempt = recordAttempt(callModel(model, providers, request), model.model.id, attempts)
          const result = yield* Effect.either(Effect.retry(attempt, retrySchedule(model, { cap, deadlineAt })))
          if (result._tag === "Right") return { ...result.right, model: model.model.id, attempts: [...attempts] }
        }
      })
    if (options.deadline === undefined) return run(undefined)
    const deadline = Duration.decode(options.deadline)
    return Clock.currentTimeMillis.pipe(
      Effect.flatMap((now) => run(now + Duration.toMillis(deadline))),
      Effect.timeoutFail({
        duration: deadline,
        onTimeout: () => new DeadlineExceeded({ deadline, attempts: [...attempts] })
      })
    )
  })

/**
 * The retry policy of one model: `backoff * 2^(k-1)` jittered by [0.8, 1.2]
 * (`Schedule.jittered`, through the `Random` service), at most `maxRetries`
 * times, only for retryable reasons, raised to the provider's retry-after, and
 * stopped (so the router fails over at once) when the wait exceeds `cap` or
 * would end after `deadlineAt` (epoch millis).
 *
 * @since 0.1.0
 * @category routing
 */
export const retrySchedule = (
  model: Pick<Reliability.ModelPlan, "backoff" | "maxRetries">,
  budget: { readonly cap: Duration.Duration; readonly deadlineAt: number | undefined }
): Schedule.Schedule<Duration.Duration, ProviderError.ProviderError> =>
  Schedule.exponential(model.backoff, 2).pipe(
    Schedule.jittered,
    Schedule.intersect(Schedule.recurs(model.maxRetries)),
    Schedule.whileInput(ProviderError.isRetryable),
    Schedule.passthrough,
    Schedule.modifyDelay((error: ProviderError.ProviderError, delay) =>
      error.retryAfter === undefined ? delay : Duration.max(delay, error.retryAfter)
    ),
    Schedule.delays,
    Schedule.checkEffect((_, delay) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) =>
          Duration.lessThanOrEqualTo(delay, budget.cap) &&
          (budget.deadlineAt === undefined || now + Duration.toMillis(delay) < budget.deadlineAt)
      )
    )
  )

/**
 * Picks a model from `models` by weight, given a uniform `random` in [0, 1).
 * Models of weight 0 are never picked; `undefined` when no weight is left.
 *
 * @since 0.1.0
 * @category routing
 */
export const pickWeighted = <M extends { readonly weight: number }>(
  models: ReadonlyArray<M>,
  random: number
): M | undefined => {
  let total = 0
  for (const m of models) total += m.weight
  if (total <= 0) return undefined
  let point = random * total
  let last: M | undefined
  for (const m of models) {
    if (m.weight <= 0) continue
    if (point < m.weight) return m
    point -= m.weight
    last = m
  }
  return last // only reached through floating-point rounding at the very top
}

const pickNext = (
  mode: Reliability.Plan["_tag"],
  remaining: ReadonlyArray<Reliability.ModelPlan>
): Effect.Effect<Reliability.ModelPlan | undefined> =>
  mode === "Ordered" ? Effect.succeed(remaining[0]) : Effect.map(Random.next, (r) => pickWeighted(remaining, r))

/** One attempt: the model's extra messages appended, under the model's own timeout. */
const callModel = (
  model: Reliability.ModelPlan,
  providers: Provider.Registry,
  request: ChatCompletion.ChatCompletionRequest
): Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError> => {
  const provider = providers.get(model.model.provider)
  if (provider === undefined) {
    const description = `no provider registered for "${model.model.provider}"`
    return Effect.fail(
      ProviderError.ProviderError.fromReason({ reason: "NotFound", model: model.model.id, description })
    )
  }
  const call: Provider.CallRequest = {
    model: model.model,
    request: model.messages.length === 0 ? request : { ...request, messages: [...request.messages, ...model.messages] }
  }
  return provider.complete(call).pipe(
    Effect.timeoutFail({
      duration: model.timeout,
      onTimeout: () =>
        ProviderError.ProviderError.fromReason({
          reason: "Timeout",
          model: model.model.id,
          description: `no answer within ${Duration.format(model.timeout)}`
        })
    })
  )
}

/** Appends each finished attempt (not an interrupted one) to the trace. */
const recordAttempt = <A>(
  effect: Effect.Effect<A, ProviderError.ProviderError>,
  model: string,
  attempts: Array<Attempt.Attempt>
): Effect.Effect<A, ProviderError.ProviderError> =>
  Effect.flatMap(Clock.currentTimeMillis, (start) => {
    const record = (error?: ProviderError.ProviderError) =>
      Effect.map(Clock.currentTimeMillis, (end) => {
        const duration = Duration.millis(end - start)
        attempts.push(error ? { model, outcome: "failure", duration, error } : { model, outcome: "success", duration })
      })
    return Effect.tapBoth(effect, { onFailure: record, onSuccess: () => record() })
  })
