/**
 * What the router tells a tracing backend and a metrics pipeline, in the
 * OpenTelemetry GenAI semantic conventions' names: a `chat {model}` client
 * span per call, the GenAI client metrics, and the router's own counters and
 * model-state gauge. The metrics are Effect `Metric`s (exported by
 * `@effect/opentelemetry`); spans are made only when a tracer can see them.
 * Message text is recorded only when the client asks for it
 * (the client option `recordContent`).
 *
 * @example
 * import { Effect, Metric } from "effect"
 * import { Telemetry } from "@ironlabsai/core"
 *
 * // How many calls each model answered, failed or skipped, as a program reads it.
 * const attempts = Metric.value(Telemetry.attempts)
 *
 * @since 0.4.0
 */
import {
  Clock,
  Context,
  Effect,
  Exit,
  FiberRef,
  Metric,
  MetricBoundaries,
  MetricKey,
  MetricLabel,
  type Scope,
  Stream,
  Tracer
} from "effect"
import * as DefaultServices from "effect/DefaultServices"
import type * as Fiber from "effect/Fiber"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricState from "effect/MetricState"
import * as ChatCompletion from "./ChatCompletion.js"
import type * as ModelId from "./ModelId.js"
import type * as Provider from "./Provider.js"
import type * as ProviderError from "./ProviderError.js"

/**
 * Whether a span made now would reach someone: a tracer is installed
 * (`Layer.setTracer`, `@effect/opentelemetry`) and tracing is not turned off
 * (`Effect.withTracerEnabled(false)`). Effect's built-in tracer exports
 * nothing, and a span costs more than the rest of a call's bookkeeping.
 *
 * @since 0.4.0
 * @category tracing
 */
export const isTracing = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  Context.get(fiber.currentDefaultServices, Tracer.Tracer) !== builtInTracer &&
  fiber.getFiberRef(FiberRef.currentTracerEnabled)

/** The tracer every fiber has until one is installed: it keeps its spans to itself. */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * A histogram of numbers, as `Metric.histogram` makes it.
 *
 * @since 0.4.0
 * @category metrics
 */
export type Histogram = Metric.Metric<MetricKeyType.MetricKeyType.Histogram, number, MetricState.MetricState.Histogram>

/** The unit of a histogram in seconds, as `@effect/opentelemetry` reads it: from a `unit` tag. */
const seconds = [MetricLabel.make("unit", "s")]

/** The metric of a key (tagged with `labels`), remembered with its key so that tagged copies are made from it. */
const fromKey = <Type extends MetricKeyType.MetricKeyType<number, unknown>>(
  key: MetricKey.MetricKey<Type>,
  labels: ReadonlyArray<MetricLabel.MetricLabel> = []
) => {
  const tagged = MetricKey.taggedWithLabels(key, labels)
  const metric = Metric.fromMetricKey(tagged)
  keys.set(metric, tagged)
  return metric
}
const keys = new WeakMap<object, MetricKey.MetricKey.Untyped>()

// --- Metrics -----------------------------------------------------------------------------------------------------

/** The conventions' advice for `gen_ai.client.operation.duration`, in seconds. */
const durationBoundaries = MetricBoundaries.fromIterable([
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
])
/** The conventions' advice for `gen_ai.client.token.usage`. */
const tokenBoundaries = MetricBoundaries.fromIterable([
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864
])
/** The conventions' advice for a time to the first token, in seconds. */
const firstChunkBoundaries = MetricBoundaries.fromIterable([
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
])

/**
 * `gen_ai.client.operation.duration` (s): each call to a model, from its
 * start to its answer (a stream: its end), failed ones with `error.type`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const operationDuration: Histogram = fromKey(
  MetricKey.histogram("gen_ai.client.operation.duration", durationBoundaries, "GenAI operation duration."),
  seconds
)

/**
 * `gen_ai.client.token.usage` ({token}): the input tokens (cached ones
 * included) and output tokens of each answer, by `gen_ai.token.type`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const tokenUsage: Histogram = fromKey(
  MetricKey.histogram("gen_ai.client.token.usage", tokenBoundaries, "Number of input and output tokens used."),
  [MetricLabel.make("unit", "{token}")]
)

/**
 * `gen_ai.client.operation.time_to_first_chunk` (s): a stream's time from
 * the call's start to its first chunk with content.
 *
 * @since 0.4.0
 * @category metrics
 */
export const timeToFirstChunk: Histogram = fromKey(
  MetricKey.histogram(
    "gen_ai.client.operation.time_to_first_chunk",
    firstChunkBoundaries,
    "Time to receive the first chunk with content of a streamed response."
  ),
  seconds
)

/**
 * `ironlabsai.router.attempts`: every entry of a request's trace, by
 * `ironlabsai.model`, `ironlabsai.outcome` (`success`, `failure`,
 * `cancelled`, `skipped`) and `ironlabsai.reason` (a failure's
 * `ProviderError` reason, a skip's reason).
 *
 * @since 0.4.0
 * @category metrics
 */
export const attempts: Metric.Metric.Counter<number> = fromKey(
  MetricKey.counter("ironlabsai.router.attempts", {
    description: "Calls and skips of models, by outcome and reason.",
    incremental: true
  })
)

/**
 * `ironlabsai.model.state`: each model's state as model health last saw it,
 * by `ironlabsai.model`: 0 healthy, 1 half-open, 2 held, 3 open.
 *
 * @since 0.4.0
 * @category metrics
 */
export const modelState: Metric.Metric.Gauge<number> = fromKey(
  MetricKey.gauge("ironlabsai.model.state", {
    description: "Model state: 0 healthy, 1 half-open, 2 held, 3 open."
  })
)

/**
 * The `ironlabsai.model.state` value of each state.
 *
 * @since 0.4.0
 * @category metrics
 */
export const stateValue = { healthy: 0, "half-open": 1, held: 2, open: 3 } as const

/**
 * `ironlabsai.router.retry_budget.rejections`: retries the retry budget
 * refused, by `ironlabsai.model`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const retryBudgetRejections: Metric.Metric.Counter<number> = fromKey(
  MetricKey.counter("ironlabsai.router.retry_budget.rejections", {
    description: "Retries refused by the retry budget.",
    incremental: true
  })
)

/**
 * `ironlabsai.router.budget.rejections`: calls a rate budget (`rate_limits`)
 * refused, by `ironlabsai.model` and `ironlabsai.budget` (`rpm`, `tpm`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const budgetRejections: Metric.Metric.Counter<number> = fromKey(
  MetricKey.counter("ironlabsai.router.budget.rejections", {
    description: "Calls refused by a model's rate budget.",
    incremental: true
  })
)

/**
 * `ironlabsai.router.hedges`: hedged calls started, by `ironlabsai.model`
 * (the model the hedge went to).
 *
 * @since 0.4.0
 * @category metrics
 */
export const hedges: Metric.Metric.Counter<number> = fromKey(
  MetricKey.counter("ironlabsai.router.hedges", {
    description: "Hedged calls started.",
    incremental: true
  })
)

/**
 * Tagged metrics, made once per distinct set of tags, from a key that
 * carries the tags: a metric tagged with `Metric.tagged` builds and hashes a
 * new key on every update, which would cost more than the rest of a call's
 * bookkeeping.
 */
const taggedByMetric = new WeakMap<object, Map<string, Updatable>>()
const taggedMetric = (metric: object, tags: ReadonlyArray<readonly [string, string | undefined]>): Updatable => {
  let cacheKey = ""
  for (const [name, value] of tags) if (value !== undefined) cacheKey += `${name}=${value}\u0000`
  let known = taggedByMetric.get(metric)
  if (known === undefined) {
    known = new Map()
    taggedByMetric.set(metric, known)
  }
  let found = known.get(cacheKey)
  if (found === undefined) {
    const labels = tags.flatMap(([name, value]) => (value === undefined ? [] : [MetricLabel.make(name, value)]))
    found = Metric.fromMetricKey(MetricKey.taggedWithLabels(keys.get(metric)!, labels))
    known.set(cacheKey, found)
  }
  return found
}
/** What a tagged metric is used for here: a synchronous update. */
interface Updatable {
  readonly unsafeUpdate: (input: number, extraTags: ReadonlyArray<MetricLabel.MetricLabel>) => void
}

/**
 * Adds one to a counter under the given tags (those `undefined` left out).
 *
 * @since 0.4.0
 * @category metrics
 */
export const count = (
  metric: Metric.Metric.Counter<number>,
  tags: ReadonlyArray<readonly [string, string | undefined]>
): void => taggedMetric(metric, tags).unsafeUpdate(1, noTags)

const noTags: ReadonlyArray<never> = []

/**
 * Counts one entry of a request's trace in `ironlabsai.router.attempts`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const countAttempt = (model: string, outcome: string, reason: string | undefined): void => {
  let byOutcome = attemptCounters.get(model)
  if (byOutcome === undefined) {
    byOutcome = new Map()
    attemptCounters.set(model, byOutcome)
  }
  let byReason = byOutcome.get(outcome)
  if (byReason === undefined) {
    byReason = new Map()
    byOutcome.set(outcome, byReason)
  }
  let found = byReason.get(reason)
  if (found === undefined) {
    found = taggedMetric(attempts, [
      ["ironlabsai.model", model],
      ["ironlabsai.outcome", outcome],
      ["ironlabsai.reason", reason]
    ])
    byReason.set(reason, found)
  }
  found.unsafeUpdate(1, noTags)
}
/** By model, outcome and reason: three lookups, no string built per call. */
const attemptCounters = new Map<string, Map<string, Map<string | undefined, Updatable>>>()

/**
 * Sets a model's `ironlabsai.model.state`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const setModelState = (model: string, state: keyof typeof stateValue): void =>
  taggedMetric(modelState, [["ironlabsai.model", model]]).unsafeUpdate(stateValue[state], noTags)

// --- Spans -------------------------------------------------------------------------------------------------------

/**
 * Runs a request in its INTERNAL `ironlabsai.route` span, when traced: `use`
 * gets the span (to add events to), and `summary` the attributes to add at
 * the end.
 *
 * @since 0.4.0
 * @category tracing
 */
export const withRouteSpan = <A, E, R>(
  attributes: () => Record<string, unknown>,
  summary: (exit: Exit.Exit<A, E>) => Record<string, unknown>,
  use: (span: Tracer.Span | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    if (!isTracing(fiber)) return use(undefined)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    return Effect.flatMap(Effect.makeSpan(routeSpanName, routeSpanOptions(attributes)), (span) =>
      Effect.onExit(Effect.withParentSpan(use(span), span), (exit) =>
        Effect.sync(() => {
          for (const [key, value] of Object.entries(summary(exit))) span.attribute(key, value)
          span.end(clock.unsafeCurrentTimeNanos(), exit)
        })
      )
    )
  })

/**
 * The `ironlabsai.route` span of a streamed request, when traced: it ends
 * when the scope (the stream) does, with `summary`'s attributes.
 *
 * @since 0.4.0
 * @category tracing
 */
export const routeSpanScoped = (
  attributes: () => Record<string, unknown>,
  summary: (exit: Exit.Exit<unknown, unknown>) => Record<string, unknown>
): Effect.Effect<Tracer.Span | undefined, never, Scope.Scope> =>
  Effect.withFiberRuntime((fiber) => {
    if (!isTracing(fiber)) return Effect.succeed(undefined)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    return Effect.flatMap(Effect.makeSpan(routeSpanName, routeSpanOptions(attributes)), (span) =>
      Effect.as(
        Effect.addFinalizer((exit) =>
          Effect.sync(() => {
            for (const [key, value] of Object.entries(summary(exit))) span.attribute(key, value)
            span.end(clock.unsafeCurrentTimeNanos(), exit)
          })
        ),
        span
      )
    )
  })

/**
 * `effect` under `span` as its parent, when there is one.
 *
 * @since 0.4.0
 * @category tracing
 */
export const withParent =
  (span: Tracer.Span | undefined) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    span === undefined ? effect : Effect.withParentSpan(effect, span)

const routeSpanName = "ironlabsai.route"
const routeSpanOptions = (attributes: () => Record<string, unknown>) =>
  ({ kind: "internal", captureStackTrace: false, attributes: attributes() }) as const

// --- Calls -------------------------------------------------------------------------------------------------------

/**
 * One call to a model, as the router makes it: what its span and metrics
 * describe.
 *
 * @since 0.4.0
 * @category models
 */
export interface Call {
  /** The routed model: `name` is `gen_ai.request.model`, the provider prefix `gen_ai.provider.name`. */
  readonly model: ModelId.ModelId
  /** The request as sent (extra messages appended, unsupported fields dropped). */
  readonly request: ChatCompletion.ChatCompletionRequest
  readonly server: Provider.Server | undefined
  /** The calls to this model in this request so far, this one included. */
  readonly attempt: number
  readonly probe: boolean
  readonly hedge: boolean
  /** Whether the messages and the answer go on the span (`gen_ai.input.messages`, `gen_ai.output.messages`). */
  readonly recordContent: boolean
}

/**
 * A call to a model in its `chat {model}` client span. Used only when the
 * request is traced; its metrics are recorded by the router
 * (`recordCallEnd`), which pays no extra step for them.
 *
 * @since 0.4.0
 * @category tracing
 */
export const withCallSpan = <R>(
  call: Call,
  effect: Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError, R>
): Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError, R> =>
  Effect.flatMap(Effect.makeSpan(spanName(call), clientSpan), (span) => {
    setAttributes(span, callAttributes(call))
    return Effect.withParentSpan(effect, span).pipe(
      Effect.onExit((exit) =>
        Effect.clockWith((clock) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) setAttributes(span, answerAttributes(call, exit.value))
            else {
              const type = errorType(exit)
              if (type !== undefined) span.attribute("error.type", type)
            }
            span.end(clock.unsafeCurrentTimeNanos(), exit)
          })
        )
      )
    )
  })

const clientSpan = { kind: "client", captureStackTrace: false } as const

/**
 * Sets attributes on a span; a list goes on an OpenTelemetry span as a list,
 * as the conventions want (`gen_ai.response.finish_reasons`): Effect's
 * OpenTelemetry span (`@effect/opentelemetry` 0.64) writes any value that is
 * not a string, number or boolean as JSON text, so a list is set again on
 * the span it wraps.
 */
const setAttributes = (span: Tracer.Span, attributes: Record<string, unknown>): void => {
  for (const [key, value] of Object.entries(attributes)) {
    span.attribute(key, value)
    if (!Array.isArray(value)) continue
    const wrapped = (span as { readonly span?: { readonly setAttribute?: unknown } }).span
    if (typeof wrapped?.setAttribute === "function") {
      ;(wrapped as { setAttribute(key: string, value: ReadonlyArray<unknown>): unknown }).setAttribute(key, value)
    }
  }
}

/**
 * A streamed call to a model: `open` succeeds with the rest of the stream
 * at its first content. The span (when `traced`) lasts until the stream
 * ends; the duration and tokens are recorded at the end (the time to the
 * first chunk, and a failure before it, by the router).
 *
 * @since 0.4.0
 * @category tracing
 */
export const observeStreamCall = <R>(
  call: Call | undefined,
  traced: boolean,
  open: Effect.Effect<
    Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>,
    ProviderError.ProviderError,
    R
  >
): Effect.Effect<
  Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>,
  ProviderError.ProviderError,
  R
> => {
  if (call === undefined) return open
  const rest = (
    stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>,
    span: Tracer.Span | undefined,
    clock: Clock.Clock,
    start: number
  ) => {
    const seen = new StreamSummary(call.recordContent)
    return stream.pipe(
      Stream.map((chunk) => {
        seen.add(chunk)
        return chunk
      }),
      Stream.ensuringWith((exit) =>
        Effect.sync(() => {
          const seconds = (clock.unsafeCurrentTimeMillis() - start) / 1000
          const type = errorType(exit)
          if (Exit.isSuccess(exit) || type !== undefined) {
            recordCallEnd(call.model, call.server, seen.model, seen.usage, type, seconds)
          }
          if (span === undefined) return
          setAttributes(span, seen.attributes())
          if (type !== undefined) span.attribute("error.type", type)
          span.end(clock.unsafeCurrentTimeNanos(), exit)
        })
      )
    )
  }
  return Effect.withFiberRuntime((fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const start = clock.unsafeCurrentTimeMillis()
    if (!traced) return Effect.map(open, (stream) => rest(stream, undefined, clock, start))
    return Effect.flatMap(Effect.makeSpan(spanName(call), clientSpan), (span) => {
      setAttributes(span, callAttributes(call))
      return Effect.withParentSpan(open, span).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) return
            const type = errorType(exit)
            if (type !== undefined) span.attribute("error.type", type)
            span.end(clock.unsafeCurrentTimeNanos(), exit)
          })
        ),
        Effect.map((stream) => rest(stream, span, clock, start))
      )
    })
  })
}

/** `chat {model}`, the conventions' span name. */
const spanName = (call: Call): string => `chat ${call.model.name}`

/** The failure's `ProviderError` reason, or `_OTHER` for a defect; nothing for an interruption (a hedge lost). */
const errorType = (exit: Exit.Exit<unknown, ProviderError.ProviderError>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  if (Exit.isInterrupted(exit)) return undefined
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : findFailure(exit)
  return failure?.reason ?? "_OTHER"
}
const findFailure = (exit: Exit.Failure<unknown, ProviderError.ProviderError>) => {
  let found: ProviderError.ProviderError | undefined
  const walk = (cause: typeof exit.cause): void => {
    if (found !== undefined) return
    if (cause._tag === "Fail") found = cause.error
    else if (cause._tag === "Sequential" || cause._tag === "Parallel") {
      walk(cause.left)
      walk(cause.right)
    }
  }
  walk(exit.cause)
  return found
}

/**
 * Records the GenAI metrics of a call that ended: its duration (with
 * `error.type` when it failed) and, for an answer, its tokens.
 *
 * @since 0.4.0
 * @category metrics
 */
export const recordCallEnd = (
  model: ModelId.ModelId,
  server: Provider.Server | undefined,
  responseModel: string | undefined,
  usage: ChatCompletion.Usage | null | undefined,
  errorType: string | undefined,
  seconds: number
): void => {
  const recorders = recordersOf(model, server)
  if (errorType !== undefined) {
    recorders.metric(operationDuration, "error.type", errorType).unsafeUpdate(seconds, noTags)
    return
  }
  recorders.metric(operationDuration, "gen_ai.response.model", responseModel).unsafeUpdate(seconds, noTags)
  if (usage == null) return
  recorders.metric(inputTokens, "gen_ai.response.model", responseModel).unsafeUpdate(usage.prompt_tokens, noTags)
  recorders.metric(outputTokens, "gen_ai.response.model", responseModel).unsafeUpdate(usage.completion_tokens, noTags)
}

/**
 * Records a stream's time to its first chunk with content.
 *
 * @since 0.4.0
 * @category metrics
 */
export const recordFirstChunk = (model: ModelId.ModelId, server: Provider.Server | undefined, seconds: number): void =>
  recordersOf(model, server).metric(timeToFirstChunk, "gen_ai.response.model", undefined).unsafeUpdate(seconds, noTags)

/** The token histogram, by token type: two keys, so that each update is a lookup. */
const inputTokens = fromKey(
  MetricKey.histogram("gen_ai.client.token.usage", tokenBoundaries, "Number of input and output tokens used."),
  [MetricLabel.make("unit", "{token}"), MetricLabel.make("gen_ai.token.type", "input")]
)
const outputTokens = fromKey(
  MetricKey.histogram("gen_ai.client.token.usage", tokenBoundaries, "Number of input and output tokens used."),
  [MetricLabel.make("unit", "{token}"), MetricLabel.make("gen_ai.token.type", "output")]
)

/** A model's GenAI metrics, tagged with what every call of it has, and one more tag that varies. */
class Recorders {
  readonly #byMetric = new Map<object, Map<string | undefined, Updatable>>()
  constructor(readonly tags: ReadonlyArray<readonly [string, string | undefined]>) {}
  metric(metric: object, name: string, value: string | undefined): Updatable {
    let byValue = this.#byMetric.get(metric)
    if (byValue === undefined) {
      byValue = new Map()
      this.#byMetric.set(metric, byValue)
    }
    let found = byValue.get(value)
    if (found === undefined) {
      found = taggedMetric(metric, [...this.tags, [name, value]])
      byValue.set(value, found)
    }
    return found
  }
}
const recorders = new WeakMap<ModelId.ModelId, Recorders>()
const recordersOf = (model: ModelId.ModelId, server: Provider.Server | undefined): Recorders => {
  let found = recorders.get(model)
  if (found === undefined) {
    found = new Recorders([
      ["gen_ai.operation.name", "chat"],
      ["gen_ai.provider.name", model.provider],
      ["gen_ai.request.model", model.name],
      ["server.address", server?.address],
      ["server.port", server === undefined ? undefined : String(server.port)]
    ])
    recorders.set(model, found)
  }
  return found
}

/** A call's attributes known before it is made. */
const callAttributes = (call: Call): Record<string, unknown> => {
  const request = call.request
  const attributes: Record<string, unknown> = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": call.model.provider,
    "gen_ai.request.model": call.model.name,
    "ironlabsai.model": call.model.id,
    "ironlabsai.attempt": call.attempt
  }
  if (call.probe) attributes["ironlabsai.probe"] = true
  if (call.hedge) attributes["ironlabsai.hedge"] = true
  if (call.server !== undefined) {
    attributes["server.address"] = call.server.address
    attributes["server.port"] = call.server.port
  }
  const maxTokens = request.max_completion_tokens ?? request.max_tokens
  if (maxTokens != null) attributes["gen_ai.request.max_tokens"] = maxTokens
  if (request.temperature != null) attributes["gen_ai.request.temperature"] = request.temperature
  if (request.top_p != null) attributes["gen_ai.request.top_p"] = request.top_p
  if (request.frequency_penalty != null) attributes["gen_ai.request.frequency_penalty"] = request.frequency_penalty
  if (request.presence_penalty != null) attributes["gen_ai.request.presence_penalty"] = request.presence_penalty
  if (request.seed != null) attributes["gen_ai.request.seed"] = request.seed
  if (request.n != null && request.n !== 1) attributes["gen_ai.request.choice.count"] = request.n
  if (request.stop != null) {
    attributes["gen_ai.request.stop_sequences"] = typeof request.stop === "string" ? [request.stop] : request.stop
  }
  const format = request.response_format?.type
  if (format !== undefined) attributes["gen_ai.output.type"] = format === "text" ? "text" : "json"
  if (call.recordContent) attributes["gen_ai.input.messages"] = JSON.stringify(request.messages)
  return attributes
}

/** A whole answer's attributes. */
const answerAttributes = (call: Call, reply: ChatCompletion.ChatCompletion): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {
    "gen_ai.response.model": reply.model,
    "gen_ai.response.id": reply.id,
    "gen_ai.response.finish_reasons": reply.choices.map((choice) => choice.finish_reason)
  }
  if (reply.usage !== undefined) {
    attributes["gen_ai.usage.input_tokens"] = reply.usage.prompt_tokens
    attributes["gen_ai.usage.output_tokens"] = reply.usage.completion_tokens
  }
  if (call.recordContent) {
    attributes["gen_ai.output.messages"] = JSON.stringify(reply.choices.map((choice) => choice.message))
  }
  return attributes
}

/** What a stream said about its answer, gathered chunk by chunk for its span and metrics. */
class StreamSummary {
  id: string | undefined
  model: string | undefined
  usage: ChatCompletion.Usage | undefined
  readonly finishReasons: Array<string> = []
  text = ""
  constructor(readonly keepText: boolean) {}
  add(chunk: ChatCompletion.ChatCompletionChunk): void {
    if (this.keepText) this.text += ChatCompletion.chunkText(chunk)
    this.id ??= chunk.id
    this.model ??= chunk.model
    if (chunk.usage != null) this.usage = chunk.usage
    for (const choice of chunk.choices) {
      if (choice.finish_reason != null) this.finishReasons.push(choice.finish_reason)
    }
  }
  attributes(): Record<string, unknown> {
    const attributes: Record<string, unknown> = {}
    if (this.model !== undefined) attributes["gen_ai.response.model"] = this.model
    if (this.id !== undefined) attributes["gen_ai.response.id"] = this.id
    if (this.finishReasons.length > 0) attributes["gen_ai.response.finish_reasons"] = this.finishReasons
    if (this.usage !== undefined) {
      attributes["gen_ai.usage.input_tokens"] = this.usage.prompt_tokens
      attributes["gen_ai.usage.output_tokens"] = this.usage.completion_tokens
    }
    if (this.keepText)
      attributes["gen_ai.output.messages"] = JSON.stringify([{ role: "assistant", content: this.text }])
    return attributes
  }
}
