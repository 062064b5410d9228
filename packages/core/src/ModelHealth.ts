/**
 * The router's memory of each model (DESIGN §8): holds from what providers
 * said (429 retry-after or rate-limit reset; long holds for auth, quota and
 * missing models), a circuit breaker from what calls did (consecutive
 * failures, failure rate over a sliding window, half-open probe), and a retry
 * budget that stops retry storms.
 *
 * `ModelHealth` is a service: the client makes an in-memory one from its
 * config, and a shared store (Redis) implements the same interface. Routing
 * reads it synchronously (`admit`, `withdrawRetry`: local state, no I/O);
 * outcomes are written with `record`. Time comes from `Clock` and jitter from
 * `Random`, so `TestClock` drives every transition.
 *
 * @example
 * import { Effect } from "effect"
 * import { ModelHealth } from "@ironlabsai/core"
 *
 * const health = ModelHealth.unsafeMakeMemory({ health: ModelHealth.defaultPolicy })
 * const program = Effect.gen(function* () {
 *   yield* health.record({ _tag: "Failure", model: "openai/gpt-4o", startedAt: 0, probe: false, reason: "Authentication" })
 *   return yield* health.snapshot // [{ model: "openai/gpt-4o", state: "held", until: 300000, ... }]
 * })
 *
 * @since 0.2.0
 */
import { Clock, Context, Duration, Effect, Layer, Random, Schema, Stream } from "effect"
import type * as StreamEmit from "effect/StreamEmit"
import * as Telemetry from "./Telemetry.js"
import * as Load_ from "./internal/modelLoad.js"
import { ModelState } from "./internal/modelState.js"
import type * as ProviderError from "./ProviderError.js"

/**
 * A model's state: `healthy`; `held` (a provider said when to come back);
 * `open` (the breaker tripped); `half-open` (one probe call may find out
 * whether it recovered).
 *
 * @since 0.2.0
 * @category schemas
 */
export const State = Schema.Literal("healthy", "held", "open", "half-open")

/**
 * @since 0.2.0
 * @category models
 */
export type State = typeof State.Type

/**
 * One model's health, with the counters that explain it.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ModelStatus = Schema.Struct({
  /** The routed model id. */
  model: Schema.String,
  state: State,
  /** Until when a held or open model is skipped, in epoch millis. */
  until: Schema.optional(Schema.Number),
  /** What held or opened it: a `ProviderError` reason. */
  reason: Schema.optional(Schema.String),
  /** Counted failures in a row since the last success. */
  consecutiveFailures: Schema.Number,
  /** Calls and counted failures in the breaker's sliding window. */
  recentCalls: Schema.Number,
  recentFailures: Schema.Number,
  /** Opens in a row (k): the next open period is `open_for * 2^k`. */
  opens: Schema.Number,
  /** Requests and same-model retries in the retry budget's window. */
  recentRequests: Schema.Number,
  recentRetries: Schema.Number
})

/**
 * @since 0.2.0
 * @category models
 */
export type ModelStatus = typeof ModelStatus.Type

/**
 * A change of one model's state. A change that time alone makes (a hold
 * running out, an open period ending) is published when the model is next
 * looked at, dated when it happened.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Transition = Schema.Struct({
  model: Schema.String,
  from: State,
  to: State,
  /** When it happened, in epoch millis. */
  at: Schema.Number,
  until: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String)
})

/**
 * @since 0.2.0
 * @category models
 */
export type Transition = typeof Transition.Type

/**
 * What to do when every candidate of a request is held or open: `wait` for
 * the earliest reopening (within the deadline and `maxWait`), `fail` with
 * `NoModelAvailable` at once, or `probe`: call open and half-open models
 * anyway; holds still stand, and are waited for as with `wait`.
 *
 * @since 0.2.0
 * @category models
 */
export type OnAllUnavailable = "wait" | "fail" | "probe"

/**
 * The breaker's and holds' settings.
 *
 * @since 0.2.0
 * @category models
 */
export interface Policy {
  /** Counted failures in a row that open the breaker. */
  readonly consecutiveFailures: number
  /** A failure rate over `window` that opens it, once `minCalls` calls were made. */
  readonly failureRate: number
  readonly window: Duration.Duration
  readonly minCalls: number
  /** The first open period; it doubles with each open in a row, up to `maxOpenFor`. */
  readonly openFor: Duration.Duration
  readonly maxOpenFor: Duration.Duration
  /** A 429's hold when the provider gave no wait; it doubles on repeats, up to `longHold`. */
  readonly rateLimitHold: Duration.Duration
  /** The hold after 401, 403, 404 or a spent quota; also the cap on any hold. */
  readonly longHold: Duration.Duration
  readonly onAllUnavailable: OnAllUnavailable
  /** The longest a request waits for a model to reopen. */
  readonly maxWait: Duration.Duration
}

/**
 * The default policy (the config reference's table).
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultPolicy: Policy = {
  consecutiveFailures: 3,
  failureRate: 0.5,
  window: Duration.seconds(30),
  minCalls: 10,
  openFor: Duration.seconds(10),
  maxOpenFor: Duration.minutes(5),
  rateLimitHold: Duration.seconds(1),
  longHold: Duration.minutes(5),
  onAllUnavailable: "wait",
  maxWait: Duration.seconds(5)
}

/**
 * The retry budget (Finagle's `RetryBudget`): per model, same-model retries
 * over `window` may not exceed `ratio` of the requests plus `minPerSecond` per
 * second of the window.
 *
 * @since 0.2.0
 * @category models
 */
export interface RetryBudget {
  readonly ratio: number
  readonly window: Duration.Duration
  readonly minPerSecond: number
}

/**
 * The default retry budget: 20% of requests over 10 s, plus 1 per second.
 *
 * @since 0.2.0
 * @category constants
 */
export const defaultRetryBudget: RetryBudget = { ratio: 0.2, window: Duration.seconds(10), minPerSecond: 1 }

/**
 * Whether a model may be called now: a plain call, the half-open probe (this
 * call holds the permit and must `record` its outcome), or not at all.
 *
 * @since 0.2.0
 * @category models
 */
export type Admission =
  | { readonly _tag: "Call" }
  | { readonly _tag: "Probe" }
  | {
      readonly _tag: "Skip"
      readonly state: "held" | "open" | "half-open"
      /** When the model can be called again; none while another call is the probe. */
      readonly until?: number | undefined
      readonly reason?: string | undefined
    }

/**
 * How one call ended. `Cancelled` (an interrupt, an abort, a lost hedge)
 * counts for nothing; it only hands back the probe permit.
 *
 * @since 0.2.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Success"; readonly model: string; readonly startedAt: number; readonly probe: boolean }
  | {
      readonly _tag: "Failure"
      readonly model: string
      readonly startedAt: number
      readonly probe: boolean
      readonly reason: ProviderError.Reason
      /** For `RateLimited`: how long the provider asked to wait (retry-after, else the rate-limit reset). */
      readonly holdFor?: Duration.Duration | undefined
    }
  | { readonly _tag: "Cancelled"; readonly model: string; readonly probe: boolean }
  /** A successful reply's rate-limit headers said a limit has nothing left for `holdFor`: held, not a failure. */
  | { readonly _tag: "LimitSpent"; readonly model: string; readonly holdFor: Duration.Duration }

/**
 * How busy and how fast a model is now, for the routing strategies.
 *
 * @since 0.3.0
 * @category models
 */
export interface Load {
  /** Calls to the model in flight (a stream until it ends). */
  readonly inFlight: number
  /**
   * A peak-EWMA of its time to first content, in millis: a slower sample
   * replaces it at once, a faster one is blended in, and it decays while the
   * model is idle (so a model slow once is tried again); it starts at
   * `priorMillis` (500) when the model is first seen, and decays from there
   * too, so a model never tried is tried in time.
   */
  readonly latency: number
  /** The 95th percentile of its last 128 samples, in millis; `undefined` before 10. */
  readonly p95: number | undefined
}

/**
 * The latency of a model with no sample yet, in millis: never 0, so that its
 * calls in flight still count against it.
 *
 * @since 0.3.0
 * @category constants
 */
export const priorMillis: number = Load_.priorMillis

/**
 * What an outcome changed: the model became held or open until `until`
 * (epoch millis), because of `reason`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Change {
  readonly state: "held" | "open"
  readonly until: number
  readonly reason: string
}

/**
 * The model health service.
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /**
   * Whether `model` may be called at `now` (epoch millis, the caller's
   * `Clock`). Synchronous and local: it runs on every attempt. A half-open
   * model admits one `Probe` at a time. `retry` marks a same-model retry (not
   * a new request for the retry budget); `ignoreBreaker` admits open models
   * (holds still stand); `probeLease` bounds how long a probe keeps the
   * permit if its outcome is never recorded (default: `openFor`); `peek`
   * answers without taking anything (no request counted, no probe permit:
   * a half-open model with its permit free answers `Call`).
   */
  readonly admit: (
    model: string,
    now: number,
    options?: {
      readonly retry?: boolean | undefined
      readonly ignoreBreaker?: boolean | undefined
      readonly probeLease?: Duration.Duration | undefined
      readonly peek?: boolean | undefined
    }
  ) => Admission
  /** Takes one same-model retry from the model's retry budget; `false` when it is spent. */
  readonly withdrawRetry: (model: string, now: number) => boolean
  /** Records how a call ended; answers what it changed (the model became held or open), if anything. */
  readonly record: (outcome: Outcome) => Effect.Effect<Change | undefined>
  /** Every model seen so far, at the current time. */
  readonly snapshot: Effect.Effect<ReadonlyArray<ModelStatus>>
  /** How busy and how fast `model` is at `now`. Synchronous and local: a strategy reads it on every pick. */
  readonly load: (model: string, now: number) => Load
  /** A call to `model` starts at `now`: it is in flight until the function returned is called (once, in a finalizer). */
  readonly dispatch: (model: string, now: number) => () => void
  /**
   * A latency sample of `model` at `now`, in millis: its time to first
   * content (a whole answer when not streamed; its timeout for a failure).
   */
  readonly observeLatency: (model: string, millis: number, now: number) => void
  /** Transitions as they are seen, from the moment of subscription. */
  readonly changes: Stream.Stream<Transition>
}

/**
 * @since 0.2.0
 * @category tags
 */
export class ModelHealth extends Context.Tag("ironlabsai/ModelHealth")<ModelHealth, Service>() {}

/**
 * Where model health is kept when it is shared between processes (the
 * Redis store of `@ironlabsai/redis`): it makes each client's service from
 * that client's config (`health`, `retry_budget`), so that the policy is
 * written once, in the config.
 *
 * @since 0.4.0
 * @category models
 */
export interface Store {
  readonly make: (settings: {
    readonly health?: Policy | undefined
    readonly retryBudget?: RetryBudget | undefined
    /** The models the client routes over: a shared store reads their state at once, for the first calls. */
    readonly models?: ReadonlyArray<string> | undefined
  }) => Service
}

/**
 * A shared model-health store, when one is provided: a client then keeps its
 * model health there rather than in memory.
 *
 * @since 0.4.0
 * @category tags
 */
export class ModelHealthStore extends Context.Tag("ironlabsai/ModelHealthStore")<ModelHealthStore, Store>() {}

/**
 * An in-memory model health. `health: undefined` turns holds and the breaker
 * off; `retryBudget: undefined` turns the budget off.
 *
 * @since 0.2.0
 * @category constructors
 */
export const unsafeMakeMemory = (options: {
  readonly health?: Policy | undefined
  readonly retryBudget?: RetryBudget | undefined
}): Service => {
  const settings =
    options.health === undefined
      ? undefined
      : {
          consecutiveFailures: options.health.consecutiveFailures,
          failureRate: options.health.failureRate,
          windowMillis: Duration.toMillis(options.health.window),
          minCalls: options.health.minCalls,
          openForMillis: Duration.toMillis(options.health.openFor),
          maxOpenForMillis: Duration.toMillis(options.health.maxOpenFor),
          rateLimitHoldMillis: Duration.toMillis(options.health.rateLimitHold),
          longHoldMillis: Duration.toMillis(options.health.longHold)
        }
  const budget =
    options.retryBudget === undefined
      ? undefined
      : {
          ratio: options.retryBudget.ratio,
          windowMillis: Duration.toMillis(options.retryBudget.window),
          minPerSecond: options.retryBudget.minPerSecond
        }
  const models = new Map<string, ModelState>()
  const subscribers = new Set<StreamEmit.EmitOpsPush<never, Transition>>()
  const entry = (model: string): ModelState => {
    let state = models.get(model)
    if (state === undefined) {
      state = new ModelState(settings, budget)
      models.set(model, state)
    }
    return state
  }
  /** Publishes the model's state change since it was last published, if any. */
  const observe = (model: string, state: ModelState, now: number): void => {
    const to = state.state(now)
    const from = state.published
    if (to === from) return
    const at = state.changedAt(now, to)
    state.published = to
    Telemetry.setModelState(model, to)
    if (subscribers.size === 0) return
    const { reason, until } = state.explain(to)
    const transition: Transition = {
      model,
      from,
      to,
      at,
      ...(until === undefined ? {} : { until }),
      ...(reason === undefined ? {} : { reason })
    }
    for (const emit of subscribers) emit.single(transition)
  }
  const call: Admission = { _tag: "Call" }
  const probe: Admission = { _tag: "Probe" }

  const admit: Service["admit"] = (model, now, admitOptions) => {
    if (settings === undefined && budget === undefined) return call
    const state = entry(model)
    if (settings !== undefined) {
      observe(model, state, now)
      const unavailable = state.unavailable(now, { ignoreBreaker: admitOptions?.ignoreBreaker === true })
      if (unavailable !== undefined) return { _tag: "Skip", ...unavailable }
    }
    if (admitOptions?.peek === true) return call
    if (admitOptions?.retry !== true) state.deposit(now)
    const lease = admitOptions?.probeLease === undefined ? undefined : Duration.toMillis(admitOptions.probeLease)
    if (
      settings !== undefined &&
      admitOptions?.ignoreBreaker !== true &&
      state.takeProbe(now, lease ?? settings.openForMillis)
    ) {
      observe(model, state, now)
      return probe
    }
    return call
  }

  const withdrawRetry: Service["withdrawRetry"] = (model, now) => budget === undefined || entry(model).withdraw(now)

  const record: Service["record"] = (outcome) =>
    settings === undefined
      ? Effect.succeed(undefined)
      : Effect.withFiberRuntime<Change | undefined>((fiber) => {
          const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
          const state = entry(outcome.model)
          if (outcome._tag === "Cancelled") {
            if (outcome.probe) state.release()
            return Effect.succeed(undefined)
          }
          if (outcome._tag === "LimitSpent") {
            const change = state.spent(now, Duration.toMillis(outcome.holdFor))
            observe(outcome.model, state, now)
            return Effect.succeed(change)
          }
          if (outcome._tag === "Success") {
            state.succeeded(now, outcome.probe)
            observe(outcome.model, state, now)
            return Effect.succeed(undefined)
          }
          const holdFor = outcome.holdFor === undefined ? undefined : Duration.toMillis(outcome.holdFor)
          const change = state.failed(now, outcome.startedAt, outcome.probe, { reason: outcome.reason, holdFor })
          if (change !== "trip") {
            observe(outcome.model, state, now)
            return Effect.succeed(change)
          }
          return Effect.map(Context.get(fiber.currentDefaultServices, Random.Random).next, (random) => {
            const opened = state.open(now, outcome.reason, random)
            observe(outcome.model, state, now)
            return opened
          })
        })

  const snapshot: Service["snapshot"] = Effect.map(Clock.currentTimeMillis, (now) =>
    Array.from(models, ([model, state]): ModelStatus => {
      if (settings !== undefined) observe(model, state, now)
      return status(model, state, now)
    })
  )

  const changes: Service["changes"] = Stream.asyncPush<Transition>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => subscribers.add(emit)),
        () => Effect.sync(() => subscribers.delete(emit))
      ),
    { bufferSize: "unbounded" }
  )

  // Load is kept whatever the health policy: the strategies need it with health off too.
  const loads = new Map<string, Load_.ModelLoad>()
  /** A model's load, first seen at `now` (its prior is dated then). */
  const loadOf = (model: string, now: number): Load_.ModelLoad => {
    let load = loads.get(model)
    if (load === undefined) {
      load = new Load_.ModelLoad(now)
      loads.set(model, load)
    }
    return load
  }
  const load: Service["load"] = (model, now) => {
    const known = loadOf(model, now)
    return { inFlight: known.inFlight, latency: known.latency(now), p95: known.percentile(0.95) }
  }
  const dispatch: Service["dispatch"] = (model, now) => {
    const entry = loadOf(model, now)
    entry.inFlight++
    let ended = false
    return () => {
      if (ended) return
      ended = true
      entry.inFlight--
    }
  }
  const observeLatency: Service["observeLatency"] = (model, millis, now) => loadOf(model, now).observe(millis, now)

  return { admit, withdrawRetry, record, snapshot, changes, load, dispatch, observeLatency }
}

/**
 * The status of a model no call has touched yet.
 *
 * @since 0.2.0
 * @category constructors
 */
export const healthy = (model: string): ModelStatus => ({
  model,
  state: "healthy",
  consecutiveFailures: 0,
  recentCalls: 0,
  recentFailures: 0,
  opens: 0,
  recentRequests: 0,
  recentRetries: 0
})

const status = (model: string, state: ModelState, now: number): ModelStatus => {
  const current = state.state(now)
  const { reason, until } = state.explain(current)
  const [recentCalls, recentFailures] = state.windowCounts(now)
  const [recentRequests, recentRetries] = state.budgetCounts(now)
  return {
    model,
    state: current,
    ...(until === undefined ? {} : { until }),
    ...(reason === undefined ? {} : { reason }),
    consecutiveFailures: state.consecutiveFailures,
    recentCalls,
    recentFailures,
    opens: state.opens,
    recentRequests,
    recentRetries
  }
}

/**
 * An in-memory model health as an Effect.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory = (options: {
  readonly health?: Policy | undefined
  readonly retryBudget?: RetryBudget | undefined
}): Effect.Effect<Service> => Effect.sync(() => unsafeMakeMemory(options))

/**
 * An in-memory model health as a layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory = (options: {
  readonly health?: Policy | undefined
  readonly retryBudget?: RetryBudget | undefined
}): Layer.Layer<ModelHealth> => Layer.effect(ModelHealth, makeMemory(options))
