/**
 * The router: picks a model by weight or chain order, calls it with its extra
 * messages under its own timeout, retries transient failures on a jittered
 * exponential `Schedule` (raised by retry-after, capped by the time left),
 * then fails over until a model answers or none is left.
 *
 * @example
 * import { Either } from "effect"
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
import {
  Cause,
  Chunk,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  ExecutionStrategy,
  Exit,
  Fiber,
  FiberRef,
  Option,
  Random,
  Schedule,
  Scope,
  Stream,
  type Tracer
} from "effect"
import type * as Attempt from "./Attempt.js"
import * as ChatCompletion from "./ChatCompletion.js"
import * as Deadline from "./Deadline.js"
import { isCounted } from "./internal/modelState.js"
import * as ModelHealth from "./ModelHealth.js"
import * as RateBudget from "./RateBudget.js"
import type * as Provider from "./Provider.js"
import * as ProviderError from "./ProviderError.js"
import type * as Reliability from "./Reliability.js"
import type * as RouteEvent from "./RouteEvent.js"
import * as Telemetry from "./Telemetry.js"
import {
  AllModelsFailed,
  DeadlineExceeded,
  NoModelAvailable,
  type RoutingError,
  StreamInterrupted
} from "./RoutingError.js"

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
  /** The memory of each model: holds, breakers, the retry budget. Without it, routing is stateless. */
  readonly health?: ModelHealth.Service | undefined
  /** Where the `rate_limits` of the plan are kept; without it, they are not enforced. */
  readonly budget?: RateBudget.Service | undefined
  /** What the plan's `hedge` may spend; without it, no request hedges. */
  readonly hedgeBudget?: HedgeBudget | undefined
  /** Told of each attempt, retry, failover and skip as it happens. */
  readonly onEvent?: RouteEvent.Listener | undefined
  /** Whether the messages and answers go on the call spans (`gen_ai.input.messages`, ...). Off by default. */
  readonly recordContent?: boolean | undefined
}

/**
 * The share of requests that may hedge: each request deposits its `budget`
 * fraction, each hedge withdraws one, so that hedging stops when everything
 * is slow.
 *
 * @since 0.3.0
 * @category models
 */
export interface HedgeBudget {
  readonly deposit: (amount: number) => void
  readonly withdraw: (now: number) => boolean
}

/**
 * A hedge budget in memory: it starts with one hedge and holds at most ten.
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeHedgeBudget = (): HedgeBudget => {
  let tokens = 1
  return {
    deposit: (amount) => {
      tokens = Math.min(10, tokens + amount)
    },
    withdraw: () => {
      if (tokens < 1) return false
      tokens -= 1
      return true
    }
  }
}

/**
 * A routed answer: an OpenAI `ChatCompletion` whose `model` is the routed id,
 * with the trace of every attempt it took.
 *
 * @since 0.1.0
 * @category models
 */
export interface RoutedCompletion extends ChatCompletion.ChatCompletion {
  /** The model string the provider answered with (`gpt-4o-2024-08-06`); `model` is the routed id. */
  readonly provider_model: string
  /** What the answer cost in US dollars, from its usage and the model's `prices`, when they are configured. */
  readonly cost?: number
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
): Effect.Effect<RoutedCompletion, RoutingError> =>
  Effect.suspend(() => {
    // The trace of this request only: appended as attempts end, read by the errors.
    const attempts: Array<Attempt.Attempt> = []
    const report = new Report()
    return Telemetry.withRouteSpan(
      () => routeAttributes(plan, false),
      (exit) => report.summary(attempts, Exit.isSuccess(exit) ? exit.value.model : undefined, exit),
      (span) => {
        report.span = span
        return withDeadline(options, attempts, (deadlineAt) =>
          runPlan(
            plan,
            attempts,
            options,
            deadlineAt,
            report,
            (model) => prepare(model, providers, request, plan.dropUnsupportedParams === true, options.health),
            (model, call, startedAt, meta) =>
              inFlight(options, plan, model, observed(call, meta, options, report, callModel(model, call, startedAt))),
            (model, call, value, seconds) =>
              Telemetry.recordCallEnd(model.model, serverOf(call), value.model, value.usage, undefined, seconds),
            (value) => value.usage,
            (model, value): RoutedCompletion => {
              // Copied, then added to: V8 makes `{ ...value, newKey }` about 1 µs slower than this (a spread
              // followed by a key the source lacks leaves its fast path).
              const answer = Object.assign({}, value, { provider_model: value.model }) as Mutable<RoutedCompletion>
              answer.model = model.model.id
              answer.attempts = attempts.slice()
              const cost = costOf(plan, model, value.usage)
              if (cost !== undefined) answer.cost = cost
              return answer
            }
          )
        )
      }
    )
  })

/**
 * Routes one streamed request over a plan. Retries and failover apply until
 * the first chunk with content (text, a tool call or reasoning) reaches the
 * caller; a role-only preamble does not commit. After that, a failure ends the
 * stream with `StreamInterrupted`, carrying the text already delivered. The
 * model's `timeout` bounds the wait for the first content and every gap
 * between chunks that make progress (keep-alive traffic does not count);
 * the overall deadline bounds the whole stream. Every chunk's `model` is the
 * routed id. For model health, a stream is a success at its commit; a failure
 * after it is recorded too.
 *
 * @since 0.1.0
 * @category routing
 */
export const routeStream = (
  plan: Reliability.Plan,
  providers: Provider.Registry,
  request: ChatCompletion.ChatCompletionRequest,
  options: Options = {}
): Stream.Stream<ChatCompletion.ChatCompletionChunk, RoutingError | StreamInterrupted> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const attempts: Array<Attempt.Attempt> = []
      const startedAt = yield* Clock.currentTimeMillis
      const report = new Report()
      report.span = yield* Telemetry.routeSpanScoped(
        () => routeAttributes(plan, true),
        (exit) => report.summary(attempts, report.winner, exit)
      )
      const committed = yield* withDeadline(options, attempts, (deadlineAt) =>
        runPlan(
          plan,
          attempts,
          options,
          deadlineAt,
          report,
          (model) => prepare(model, providers, request, plan.dropUnsupportedParams === true, options.health),
          (model, call, _startedAt, meta) =>
            Telemetry.observeStreamCall(
              describeCall(call, meta, options),
              report.span !== undefined,
              openStream(model, call, dispatcher(options, plan))
            ),
          (model, call, _value, seconds) => Telemetry.recordFirstChunk(model.model, serverOf(call), seconds),
          // A stream's usage comes with its last chunk: the reservation is settled then.
          () => undefined,
          (model, value, settle) => ({ model, value, settle })
        )
      ).pipe(Telemetry.withParent(report.span))
      report.winner = committed.model.model.id
      // A failure after the commit is recorded as starting at the commit: the commit's success may have just
      // closed the model's breaker, and the call's start, before that, would make the failure look stale.
      const committedAt = yield* Clock.currentTimeMillis
      const id = committed.model.model.id
      const health = options.health
      let delivered = ""
      let used: number | undefined
      const rest = committed.value.pipe(
        Stream.map((chunk) => {
          delivered += ChatCompletion.chunkText(chunk)
          if (chunk.usage !== undefined && chunk.usage !== null) {
            used = chunk.usage.total_tokens
            const cost = costOf(plan, committed.model, chunk.usage)
            const last = Object.assign({}, chunk) as Mutable<ChatCompletion.ChatCompletionChunk & { cost?: number }>
            last.model = id
            if (cost !== undefined) last.cost = cost
            return last
          }
          return chunk.model === id ? chunk : { ...chunk, model: id }
        }),
        Stream.ensuring(Effect.sync(() => committed.settle(used))),
        Stream.catchAll((error) => {
          const interrupted = new StreamInterrupted({ model: id, delivered, error, attempts: attempts.slice() })
          if (health === undefined) return Stream.fail(interrupted)
          const outcome = failureOutcome(id, committedAt, false, error)
          return Stream.fromEffect(Effect.zipRight(health.record(outcome), Effect.fail(interrupted)))
        })
      )
      if (options.deadline === undefined) return rest
      const deadline = Duration.decode(options.deadline)
      const left = Duration.millis(
        Math.max(0, startedAt + Duration.toMillis(deadline) - (yield* Clock.currentTimeMillis))
      )
      return Stream.interruptWhen(
        rest,
        Effect.zipRight(Effect.sleep(left), Effect.fail(new DeadlineExceeded({ deadline, attempts: attempts.slice() })))
      )
    })
  )

/** Runs `run` under the request's overall deadline, if it has one; `run` gets the deadline's epoch millis. */
const withDeadline = <A, E, R>(
  options: Options,
  attempts: ReadonlyArray<Attempt.Attempt>,
  run: (deadlineAt: number | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | DeadlineExceeded, R> => {
  if (options.deadline === undefined) return run(undefined)
  const deadline = Duration.decode(options.deadline)
  return Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => run(now + Duration.toMillis(deadline))),
    Effect.timeoutFail({
      duration: deadline,
      onTimeout: () => new DeadlineExceeded({ deadline, attempts: attempts.slice() })
    })
  )
}

/** A routing decision, logged at debug level with what it was about (a model, a reason; never a key or a prompt). */
const decision = (message: string, annotations: Readonly<Record<string, unknown>>): Effect.Effect<void> =>
  Effect.logDebug(message).pipe(Effect.annotateLogs(annotations))

/** A model admitted for a call: what to send it, its rate-budget reservation, whether it is the half-open probe. */
interface Entry {
  readonly model: Reliability.ModelPlan
  readonly prepared: Prepared
  readonly reservation: RateBudget.Reservation | undefined
  readonly probe: boolean
  /** Whether the call is a hedge (not the request's primary call to the model). */
  readonly hedge?: boolean
}

/** How a call failed: its error, what it changed in model health, and the models a hedge also tried. */
interface Lost {
  readonly error: ProviderError.ProviderError
  readonly change: ModelHealth.Change | undefined
  readonly tried: ReadonlyArray<Reliability.ModelPlan>
}

const noneTried: ReadonlyArray<Reliability.ModelPlan> = []

/** Stands in for model health when a route is given none: every model may always be called. */
const noMemory: ModelHealth.Service = ModelHealth.unsafeMakeMemory({})

/**
 * Picks models until one attempt succeeds: each model retried on its own
 * schedule, then failover (chain order, or a fresh weighted draw among the
 * models not yet tried). A model that model health holds or has opened is
 * skipped without a call; when every candidate is skipped, the health policy's
 * `onAllUnavailable` decides. Finished attempts and skips are appended to
 * `attempts`; the answer is `done(model, value)`.
 *
 * This is the hot path, and every Effect step here is paid on every request:
 * one step reads the fiber's `Clock` and `Random` (so `TestClock` and seeded
 * `Random` still drive it) and admits the model (a synchronous read of local
 * state), and one handler records the attempt and decides what comes next.
 * The retry schedule is built only after a failure.
 */
const runPlan = <A, B, R>(
  plan: Reliability.Plan,
  attempts: Array<Attempt.Attempt>,
  options: Options,
  /** The request's overall deadline, in epoch millis, if it has one. */
  deadlineAt: number | undefined,
  /** Where this request's decisions are reported: its span, the listener, the counts a trace does not keep. */
  report: Report,
  /** The call for `model`, and the request's fields it cannot serve (it is skipped when there are any). */
  prepareCall: (model: Reliability.ModelPlan) => Prepared,
  /** One attempt at `model`, started at `startedAt` (epoch millis, from the Effect clock). */
  attempt: (
    model: Reliability.ModelPlan,
    call: Call,
    startedAt: number,
    meta: CallMeta
  ) => Effect.Effect<A, ProviderError.ProviderError, R>,
  /** Records the metrics of an attempt that succeeded after `seconds` (failures are recorded here). */
  succeeded: (model: Reliability.ModelPlan, call: Call, value: A, seconds: number) => void,
  /** The usage of a successful attempt's value, when it is known then (not for a stream, until it ends). */
  usageOf: (value: A) => ChatCompletion.Usage | undefined,
  /** The answer; `settle` takes the tokens it used, for a rate budget that waits on them (a stream's). */
  done: (model: Reliability.ModelPlan, value: A, settle: (tokens: number | undefined) => void) => B
): Effect.Effect<B, AllModelsFailed | NoModelAvailable, R> => {
  /** A call that succeeded: the model that answered, its value and usage, and its reservation. */
  type Won = readonly [Reliability.ModelPlan, A, ChatCompletion.Usage | undefined, RateBudget.Reservation | undefined]
  const health = options.health ?? noMemory
  const strategy = plan.strategy ?? "weighted"
  /**
   * A model's call, prepared once per request: a strategy's pick and a hedge look at several models (the
   * provider's `unsupported` may walk the whole request), and the one chosen is not prepared again.
   */
  const remembered =
    strategy !== "weighted" || plan.hedge !== undefined ? new Map<Reliability.ModelPlan, Prepared>() : undefined
  const prepareOnce = (model: Reliability.ModelPlan): Prepared => {
    const known = remembered?.get(model)
    if (known !== undefined) return known
    const fresh = prepareCall(model)
    remembered?.set(model, fresh)
    return fresh
  }
  // Every request earns the hedge budget its share, and may hedge `max_hedges` times in all.
  if (plan.hedge !== undefined) options.hedgeBudget?.deposit(plan.hedge.budget)
  let hedgesLeft = plan.hedge?.maxHedges ?? 0
  /** Whether latency samples are kept: `least_latency` scores by them, a `"p95"` hedge delay reads them. */
  const sampling = options.health !== undefined && (strategy === "least_latency" || plan.hedge?.delay === "p95")
  const onAllUnavailable = plan.health?.onAllUnavailable ?? "fail"
  /** How many counted failures in a row open the breaker. */
  const tripsAt = plan.health?.consecutiveFailures ?? Number.POSITIVE_INFINITY
  const limits = {
    cap: Duration.decode(options.retryAfterCap ?? defaultRetryAfterCap),
    deadlineAt
  }
  /** The latest a wait for a reopening may end: set by the first wait, `maxWait` later. */
  let waitLimit: number | undefined
  const listener = options.onEvent
  /** The clock of the fiber routing this request, for the times of what is reported synchronously. */
  let clockNow: Clock.Clock | undefined

  /** Appends an entry to the trace, counts it, and tells the listener and the span. */
  const append = (entry: Attempt.Attempt, probe = false): void => {
    attempts.push(entry)
    report.counted(entry)
    if (listener === undefined && report.span === undefined) return
    if (entry.outcome === "skipped") {
      emit({ type: "skip", model: entry.model, ...entry.skip! })
      return
    }
    const error = entry.error
    emit({
      type: "attempt",
      model: entry.model,
      outcome: entry.outcome,
      attempt: callsOf(entry.model),
      duration_ms: Duration.toMillis(entry.duration),
      ...(error === undefined ? {} : { reason: error.reason }),
      ...(error?.status === undefined ? {} : { status: error.status }),
      probe
    })
  }
  /** The calls to `model` in the trace so far. */
  const callsOf = (model: string): number => {
    let calls = 0
    for (const a of attempts) if (a.model === model && a.outcome !== "skipped") calls++
    return calls
  }
  const emit = (event: RouteEvent.RouteEvent): void => {
    if (listener !== undefined) {
      try {
        listener(event)
      } catch {
        // A listener's failure is its own: the request goes on.
      }
    }
    if (event.type !== "attempt") report.event(`ironlabsai.${event.type}`, event, clockNow)
  }
  /** A change of a model's state this request saw happen, as a span event. */
  const healthEvent = (model: string, state: string, change?: ModelHealth.Change): void =>
    report.event(
      "ironlabsai.health",
      {
        model,
        state,
        ...(change === undefined ? {} : { reason: change.reason, until: new Date(change.until).toISOString() })
      },
      clockNow
    )

  /** Picks among `remaining`; `skipped` are the models this round passed over, `forced` ignores breakers. */
  const from = (
    remaining: ReadonlyArray<Reliability.ModelPlan>,
    skipped: ReadonlyArray<readonly [Reliability.ModelPlan, Skipped]> = [],
    forced = false
  ): Effect.Effect<B, AllModelsFailed | NoModelAvailable, R> =>
    Effect.withFiberRuntime((fiber) => {
      const services = fiber.currentDefaultServices
      const clock = Context.get(services, Clock.Clock)
      clockNow = clock
      if (plan._tag === "Ordered") return admitModel(remaining[0], remaining, skipped, forced, clock)
      const random = Context.get(services, Random.Random)
      if (strategy === "weighted") {
        return Effect.flatMap(random.next, (r) =>
          admitModel(pickWeighted(remaining, r), remaining, skipped, forced, clock)
        )
      }
      return Effect.flatMap(Effect.zip(random.next, random.next), ([r1, r2]) =>
        admitModel(
          pickBy(strategy, remaining, r1, r2, clock.unsafeCurrentTimeMillis()),
          remaining,
          skipped,
          forced,
          clock
        )
      )
    })

  /**
   * The pick of a strategy other than `weighted`, among the models model
   * health would call now that can serve the request (held, open and
   * unservable ones are never candidates; when every one is, the weighted
   * draw lets the usual skips and waits apply).
   * `least_latency` and `least_busy` draw two by weight and take the better
   * score (power of two choices); `cost` takes the cheapest, weights breaking
   * ties.
   */
  const pickBy = (
    strategy: Exclude<Reliability.Strategy, "weighted">,
    remaining: ReadonlyArray<Reliability.ModelPlan>,
    r1: number,
    r2: number,
    now: number
  ): Reliability.ModelPlan | undefined => {
    const candidates = remaining.filter((m) => {
      if (m.weight <= 0 || health.admit(m.model.id, now, peek)._tag === "Skip") return false
      const fields = prepareOnce(m).unservable
      if (fields.length > 0) traceUnsupported(m.model.id, fields)
      return fields.length === 0
    })
    if (candidates.length <= 1) return candidates[0] ?? pickWeighted(remaining, r1)
    if (strategy === "cost") return cheapest(candidates, plan.prices, r1)
    return pickOfTwo(candidates, (m) => loadScore(strategy, health.load(m.model.id, now), m.weight), r1, r2)
  }

  const admitModel = (
    model: Reliability.ModelPlan | undefined,
    remaining: ReadonlyArray<Reliability.ModelPlan>,
    skipped: ReadonlyArray<readonly [Reliability.ModelPlan, Skipped]>,
    forced: boolean,
    clock: Clock.Clock
  ): Effect.Effect<B, AllModelsFailed | NoModelAvailable, R> => {
    if (model === undefined) {
      if (skipped.length > 0) return allUnavailable(skipped, forced, clock)
      return Effect.fail(
        attempts.some((a) => a.outcome !== "skipped")
          ? new AllModelsFailed({ attempts: attempts.slice() })
          : new NoModelAvailable({ models: [], attempts: attempts.slice() })
      )
    }
    const prepared = prepareOnce(model)
    const fields = prepared.unservable
    if (fields.length > 0) {
      // Never sent a request it would have to trim: skipped for this request, whatever its health.
      traceUnsupported(model.model.id, fields)
      return Effect.zipRight(
        decision("skipped", { model: model.model.id, reason: "unsupported", fields: fields.join(", ") }),
        from(without(remaining, model), skipped, forced)
      )
    }
    const start = clock.unsafeCurrentTimeMillis()
    const admission = health.admit(model.model.id, start, forced ? forcedAdmission : probeLease(model))
    if (admission._tag === "Skip") {
      if (!isTraced(attempts, model.model.id, admission)) append(skipEntry(model.model.id, admission))
      return Effect.zipRight(
        decision("skipped", {
          model: model.model.id,
          reason: admission.state,
          ...(admission.until === undefined ? {} : { until: new Date(admission.until).toISOString() })
        }),
        from(without(remaining, model), [...skipped, [model, admission]], forced)
      )
    }
    const probe = admission._tag === "Probe"
    if (probe) {
      healthEvent(model.model.id, "half-open")
      return Effect.zipRight(
        Effect.logInfo("breaker half-open: probing").pipe(Effect.annotateLogs({ model: model.model.id })),
        reserveAndTry(model, prepared, remaining, skipped, forced, clock, start, probe)
      )
    }
    return reserveAndTry(model, prepared, remaining, skipped, forced, clock, start, probe)
  }

  /** The admitted model's rate budget taken, then the call; over budget, it is skipped like a held model. */
  const reserveAndTry = (
    model: Reliability.ModelPlan,
    prepared: Prepared,
    remaining: ReadonlyArray<Reliability.ModelPlan>,
    skipped: ReadonlyArray<readonly [Reliability.ModelPlan, Skipped]>,
    forced: boolean,
    clock: Clock.Clock,
    start: number,
    probe: boolean
  ): Effect.Effect<B, AllModelsFailed | NoModelAvailable, R> => {
    const reserved = reserve(model, prepared, start)
    if (reserved?._tag === "Over") {
      // Over its budget: skipped like a held model (a wait may outlast it), its probe permit handed back.
      const skip = overBudget(model.model.id, reserved)
      const next = Effect.zipRight(
        decision("skipped", { model: model.model.id, reason: "budget", budget: reserved.budget }),
        from(without(remaining, model), [...skipped, [model, skip]], forced)
      )
      return probe ? Effect.zipRight(health.record({ _tag: "Cancelled", model: model.model.id, probe }), next) : next
    }
    return tryModel(model, prepared, reserved?.reservation, remaining, forced, clock, start, probe)
  }

  /** A model that cannot serve the request, in the trace once. */
  const traceUnsupported = (model: string, fields: ReadonlyArray<string>): void => {
    if (!attempts.some((a) => a.model === model && a.skip?.reason === "unsupported")) {
      append({ model, outcome: "skipped", duration: Duration.zero, skip: { reason: "unsupported", fields } })
    }
  }

  /** Takes the call's share of the model's `rate_limits`, if it has any: a reservation, or why not. */
  const reserve = (model: Reliability.ModelPlan, prepared: Prepared, now: number): RateBudget.Reserved | undefined => {
    const limit = plan.rateLimits?.get(model.model.id)
    if (limit === undefined || options.budget === undefined || Either.isLeft(prepared.call)) return undefined
    return options.budget.reserve(model.model.id, limit, RateBudget.estimateTokens(prepared.call.right[1].request), now)
  }

  /** Gives back what a reservation did not use: all of its tokens for a failure, the difference for a success. */
  const settle = (reservation: RateBudget.Reservation | undefined, tokens: number | undefined, clock: Clock.Clock) => {
    if (reservation !== undefined && options.budget !== undefined) {
      options.budget.settle(reservation, tokens ?? reservation.tokens, clock.unsafeCurrentTimeMillis())
    }
  }

  /** A budget that is spent, traced once per request, and as a skip the waiting logic understands. */
  const overBudget = (model: string, over: Extract<RateBudget.Reserved, { readonly _tag: "Over" }>): Skipped => {
    if (!attempts.some((a) => a.model === model && a.skip?.reason === "budget" && a.skip.until === over.until)) {
      append({
        model,
        outcome: "skipped",
        duration: Duration.zero,
        skip: { reason: "budget", until: over.until, cause: over.budget }
      })
    }
    return { _tag: "Skip", state: "held", until: over.until, reason: over.budget }
  }

  /** Every candidate left was skipped: wait for the earliest reopening, probe, or give up. */
  const allUnavailable = (
    skipped: ReadonlyArray<readonly [Reliability.ModelPlan, Skipped]>,
    forced: boolean,
    clock: Clock.Clock
  ): Effect.Effect<B, AllModelsFailed | NoModelAvailable, R> => {
    const now = clock.unsafeCurrentTimeMillis()
    const models = skipped.map(([model]) => model)
    if (onAllUnavailable === "probe" && !forced) {
      const open = skipped.filter(([, skip]) => skip.state !== "held").map(([model]) => model)
      if (open.length > 0) return from(open, [], true)
    }
    let retryAt: number | undefined
    for (const [, skip] of skipped) {
      if (skip.until !== undefined && (retryAt === undefined || skip.until < retryAt)) retryAt = skip.until
    }
    // A half-open model whose probe is out reopens when the probe ends, which no clock can tell: look again soon.
    const probing = skipped.some(([, skip]) => skip.state === "half-open")
    const wakeAt = probing ? Math.min(retryAt ?? Number.POSITIVE_INFINITY, now + probePollMillis) : retryAt
    if (onAllUnavailable !== "fail" && wakeAt !== undefined && plan.health !== undefined) {
      waitLimit ??= now + Duration.toMillis(plan.health.maxWait)
      if (wakeAt <= waitLimit && (limits.deadlineAt === undefined || wakeAt < limits.deadlineAt)) {
        return Effect.zipRight(Effect.sleep(Duration.millis(wakeAt - now)), from(models))
      }
    }
    if (attempts.some((a) => a.outcome !== "skipped")) {
      return Effect.fail(new AllModelsFailed({ attempts: attempts.slice() }))
    }
    const ids = new Set(models.map((m) => m.model.id))
    return Effect.flatMap(health.snapshot, (statuses) =>
      Effect.fail(
        new NoModelAvailable({
          models: statuses.filter((status) => ids.has(status.model)),
          ...(retryAt === undefined ? {} : { retryAt }),
          attempts: attempts.slice()
        })
      )
    )
  }

  const tryModel = (
    model: Reliability.ModelPlan,
    prepared: Prepared,
    reservation: RateBudget.Reservation | undefined,
    remaining: ReadonlyArray<Reliability.ModelPlan>,
    forced: boolean,
    clock: Clock.Clock,
    start: number,
    probe: boolean
  ): Effect.Effect<B, AllModelsFailed | NoModelAvailable, R> => {
    const entry: Entry = { model, prepared, reservation, probe }
    const delay = forced ? undefined : hedgeDelay(model, start)
    const first =
      delay === undefined
        ? call(entry, clock, start, false)
        : hedged(entry, without(remaining, model), clock, start, delay)
    return Effect.matchEffect(first, {
      onFailure: ({ error, change, tried }) => {
        const others = remaining.filter((m) => m !== model && !tried.includes(m))
        // A failover is routine (debug); what changes a model's state (a hold, a breaker) is logged as a warning.
        const failOver = (last: ProviderError.ProviderError) => {
          if (others.length > 0) report.failovers++
          emit({
            type: "failover",
            model: model.model.id,
            reason: last.reason,
            ...(last.status === undefined ? {} : { status: last.status }),
            to_models: others.length
          })
          return Effect.zipRight(
            decision(others.length > 0 ? "failing over" : "no model left to try", {
              model: model.model.id,
              reason: last.reason,
              ...(last.status === undefined ? {} : { status: last.status })
            }),
            from(others, [], forced)
          )
        }
        if (!ProviderError.isRetryable(error) || model.maxRetries === 0) return failOver(error)
        return Effect.matchEffect(retryModel(model, prepared, error, change, others), {
          onFailure: failOver,
          onSuccess: ([winner, value, usage, retried]) => Effect.succeed(finish(winner, value, usage, retried, clock))
        })
      },
      onSuccess: ([winner, value, usage, won]) => Effect.succeed(finish(winner, value, usage, won, clock))
    })
  }

  /**
   * One call to a model, with everything its end means: the trace, model
   * health, the latency sample, the rate budget's refund on failure. Fails
   * with the error and what it changed in model health. A `racing` call that
   * is interrupted (a hedge that lost) is traced as `cancelled` and counts
   * for nothing.
   */
  const call = (entry: Entry, clock: Clock.Clock, start: number, racing: boolean): Effect.Effect<Won, Lost, R> => {
    const { model, prepared, reservation, probe } = entry
    const id = model.model.id
    const meta: CallMeta = { attempt: callsOf(id) + 1, probe, hedge: entry.hedge === true }
    const ended = Effect.matchEffect(attempt(model, prepared.call, start, meta), {
      onFailure: (error) => {
        const entry = attemptEntry(id, clock, start, prepared.dropped, error)
        Telemetry.recordCallEnd(
          model.model,
          serverOf(prepared.call),
          undefined,
          undefined,
          error.reason,
          Duration.toSeconds(entry.duration)
        )
        append(entry, probe)
        sample(model, clock, start, error)
        settle(reservation, 0, clock)
        return Effect.flatMap(health.record(failureOutcome(id, start, probe, error)), (change) => {
          const lost = Effect.fail<Lost>({ error, change, tried: noneTried })
          if (change === undefined) return lost
          healthEvent(id, change.state, change)
          const message = change.state === "held" ? "model held" : "breaker opened"
          const until = new Date(change.until).toISOString()
          return Effect.zipRight(
            Effect.logWarning(message).pipe(Effect.annotateLogs({ model: id, reason: change.reason, until })),
            lost
          )
        })
      },
      onSuccess: (value) => {
        const usage = usageOf(value)
        const entry = attemptEntry(id, clock, start, prepared.dropped, undefined, usage, costOf(plan, model, usage))
        succeeded(model, prepared.call, value, Duration.toSeconds(entry.duration))
        append(entry, probe)
        sample(model, clock, start)
        const won = [model, value, usage, reservation] as const
        const recorded = Effect.as(health.record({ _tag: "Success", model: id, startedAt: start, probe }), won)
        if (!probe) return recorded
        // Only a probe's success closes a breaker: said once, off the hot path.
        healthEvent(id, "healthy")
        return Effect.zipLeft(recorded, Effect.logInfo("breaker closed").pipe(Effect.annotateLogs({ model: id })))
      }
    })
    if (!racing) return cancellable(ended, id, probe)
    return Effect.onInterrupt(ended, () =>
      Effect.suspend(() => {
        append(
          { model: id, outcome: "cancelled", duration: Duration.millis(clock.unsafeCurrentTimeMillis() - start) },
          probe
        )
        settle(reservation, 0, clock)
        // It had not answered yet: its time so far is a sample too (it is at least that slow), so that a model
        // that keeps losing races is learnt to be slow.
        sample(model, clock, start)
        return health.record({ _tag: "Cancelled", model: id, probe })
      })
    )
  }

  /** When to hedge an attempt at `model` started at `start`, in millis; `undefined`: not at all. */
  const hedgeDelay = (model: Reliability.ModelPlan, start: number): number | undefined => {
    const hedge = plan.hedge
    if (hedge === undefined || options.hedgeBudget === undefined) return undefined
    return hedge.delay === "p95" ? health.load(model.model.id, start).p95 : Duration.toMillis(hedge.delay)
  }

  /**
   * The primary call, raced by hedges: when it has not answered (a stream:
   * committed) `delay` after it started, another call goes to a different
   * model that can take it, up to `max_hedges`, each charged to the hedge
   * budget. The first success wins and the others are interrupted (their
   * sockets closed, traced as cancelled, counting for nothing). When the
   * primary fails before any hedge started, it fails as it would have alone;
   * after, the race goes on until a success or the last failure.
   */
  const hedged = (
    primary: Entry,
    others: ReadonlyArray<Reliability.ModelPlan>,
    clock: Clock.Clock,
    start: number,
    delay: number
  ): Effect.Effect<Won, Lost, R> =>
    Effect.gen(function* () {
      const outcome = yield* Deferred.make<Won, Lost>()
      const tried: Array<Reliability.ModelPlan> = []
      let live = 1
      let primaryLost: Lost | undefined
      const ended = (exit: Exit.Exit<Won, Lost>, isPrimary: boolean) =>
        Effect.suspend(() => {
          if (Exit.isSuccess(exit)) {
            // A second success, a moment late: its answer is not used, but its tokens were.
            return Effect.flatMap(Deferred.succeed(outcome, exit.value), (first) =>
              first ? Effect.void : Effect.sync(() => settle(exit.value[3], exit.value[2]?.total_tokens, clock))
            )
          }
          live--
          if (isPrimary) primaryLost = Option.getOrUndefined(Cause.failureOption(exit.cause))
          if (live > 0 || primaryLost === undefined) return Effect.void
          return Deferred.fail(outcome, { ...primaryLost, tried })
        })
      const racers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      const race = (entry: Entry, at: number, isPrimary: boolean) =>
        Effect.map(
          Effect.fork(Effect.onExit(call(entry, clock, at, true), (exit) => ended(exit, isPrimary))),
          (fiber) => {
            racers.push(fiber)
          }
        )
      yield* race(primary, start, true)
      /** Waits for the outcome, launching a hedge each `delay` it has not come, while the request has hedges left. */
      const waitOrHedge = (): Effect.Effect<Won, Lost, R> =>
        hedgesLeft <= 0
          ? Deferred.await(outcome)
          : Effect.flatMap(Effect.timeoutOption(Deferred.await(outcome), Duration.millis(delay)), (done) => {
              if (Option.isSome(done)) return Effect.succeed(done.value)
              const now = clock.unsafeCurrentTimeMillis()
              const next = hedgeTo(
                others.filter((m) => !tried.includes(m)),
                clock
              )
              if (next === undefined) return Deferred.await(outcome)
              tried.push(next.model)
              live++
              return Effect.zipRight(race(next, now, false), waitOrHedge())
            })
      return yield* waitOrHedge().pipe(Effect.ensuring(Effect.suspend(() => Fiber.interruptAll(racers))))
    })

  /**
   * The model a hedge goes to, admitted now: the first of `candidates` (a
   * chain's order; by weight in a weighted plan) that can serve the request,
   * that model health would call, that has rate budget left, while the hedge
   * budget lasts.
   */
  const hedgeTo = (candidates: ReadonlyArray<Reliability.ModelPlan>, clock: Clock.Clock): Entry | undefined => {
    const now = clock.unsafeCurrentTimeMillis()
    const ordered = plan._tag === "Ordered" ? candidates : [...candidates].sort((a, b) => b.weight - a.weight)
    for (const model of ordered) {
      if (model.weight <= 0) continue
      const prepared = prepareOnce(model)
      if (prepared.unservable.length > 0 || health.admit(model.model.id, now, peek)._tag === "Skip") continue
      const reserved = reserve(model, prepared, now)
      if (reserved?._tag === "Over") {
        overBudget(model.model.id, reserved)
        continue
      }
      // Charged only now that the hedge can go, and the model admitted last: nothing taken is lost.
      if (options.hedgeBudget?.withdraw(now) !== true) {
        settle(reserved?.reservation, 0, clock)
        return undefined
      }
      hedgesLeft--
      report.hedged(model.model.id)
      const admission = health.admit(model.model.id, now, probeLease(model))
      return { model, prepared, reservation: reserved?.reservation, probe: admission._tag === "Probe", hedge: true }
    }
    return undefined
  }

  /**
   * Retries `model` after its `first` failure, on its retry schedule and
   * within its retry budget. When `others` are left to fail over to, the
   * retry stops as soon as model health skips the model for a reason this
   * request did not cause on its own: checked when the retry is decided (so a
   * model already opened by others costs no backoff wait) and again when it
   * is due. A hold from this request's own 429, or a breaker its own failures
   * tripped alone, is this request's to wait out, as its schedule says.
   */
  const retryModel = (
    model: Reliability.ModelPlan,
    prepared: Prepared,
    first: ProviderError.ProviderError,
    change: ModelHealth.Change | undefined,
    others: ReadonlyArray<Reliability.ModelPlan>
  ): Effect.Effect<Won, ProviderError.ProviderError, R> => {
    const id = model.model.id
    /** Counted failures of this model in a row, in this request: enough of them trip the breaker on their own. */
    let ownFailures = isCounted(first.reason) ? 1 : 0
    const owned = (changed: ModelHealth.Change | undefined): number | undefined =>
      changed !== undefined && (changed.state === "held" || ownFailures >= tripsAt) ? changed.until : undefined
    let ownUntil = owned(change)
    let last = first
    let stopped = false
    const canFailOver = others.some((m) => m.weight > 0)
    /** Whether health skips the model for someone else's reason; if so the skip is traced and the retry stops. */
    const skippedByOthers = (admission: ModelHealth.Admission): boolean => {
      if (admission._tag !== "Skip" || (ownUntil !== undefined && admission.until === ownUntil)) return false
      append(skipEntry(id, admission))
      stopped = true
      return true
    }
    const once = Effect.withFiberRuntime<Won, ProviderError.ProviderError, R>((fiber) => {
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const start = clock.unsafeCurrentTimeMillis()
      let probe = false
      if (canFailOver) {
        const admission = health.admit(id, start, { retry: true, probeLease: model.timeout })
        if (skippedByOthers(admission)) return Effect.fail(last)
        probe = admission._tag === "Probe"
      }
      const reserved = reserve(model, prepared, start)
      if (reserved?._tag === "Over") {
        // A retry is a call like any other: over the budget, the model is left.
        overBudget(id, reserved)
        stopped = true
        const fail = Effect.fail(last)
        return probe ? Effect.zipRight(health.record({ _tag: "Cancelled", model: id, probe }), fail) : fail
      }
      const entry: Entry = { model, prepared, reservation: reserved?.reservation, probe }
      return Effect.mapError(call(entry, clock, start, false), ({ error, change }) => {
        last = error
        ownFailures = isCounted(error.reason) ? ownFailures + 1 : 0
        if (change !== undefined) ownUntil = owned(change)
        return error
      })
    })
    const schedule = retrySchedule(model, limits).pipe(
      Schedule.check(() => !stopped),
      Schedule.checkEffect((error: ProviderError.ProviderError, delay: Duration.Duration) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (canFailOver && skippedByOthers(health.admit(id, now, peek))) return Effect.succeed(false)
          if (health.withdrawRetry(id, now)) {
            const delayMs = Duration.toMillis(delay)
            emit({ type: "retry", model: id, reason: error.reason, delay_ms: delayMs, attempt: callsOf(id) + 1 })
            return Effect.as(decision("retrying", { model: id, reason: error.reason, delay_ms: delayMs }), true)
          }
          append({ model: id, outcome: "skipped", duration: Duration.zero, skip: { reason: "retry-budget" } })
          return Effect.as(decision("retry budget spent", { model: id }), false)
        })
      )
    )
    return Effect.retry(failFirst(first, once), schedule)
  }

  /**
   * The answer of a successful attempt: its reservation settled with the
   * tokens it used, now when they are known, else (a stream) when `done`'s
   * value says so.
   */
  const finish = (
    model: Reliability.ModelPlan,
    value: A,
    usage: ChatCompletion.Usage | undefined,
    reservation: RateBudget.Reservation | undefined,
    clock: Clock.Clock
  ): B => {
    if (usage !== undefined) {
      settle(reservation, usage.total_tokens, clock)
      return done(model, value, noSettle)
    }
    return done(model, value, (tokens) => settle(reservation, tokens, clock))
  }

  /**
   * A latency sample of an attempt that just ended: its time to first content
   * (a stream's commit, a whole answer), or its model's timeout for a failure
   * that counts against the model. Kept only when something reads them.
   */
  const sample = (
    model: Reliability.ModelPlan,
    clock: Clock.Clock,
    start: number,
    error?: ProviderError.ProviderError
  ): void => {
    if (!sampling || (error !== undefined && !isCounted(error.reason))) return
    const now = clock.unsafeCurrentTimeMillis()
    health.observeLatency(model.model.id, error === undefined ? now - start : Duration.toMillis(model.timeout), now)
  }

  /** The attempt; when it is the half-open probe, an interrupt hands the permit back (it counts for nothing). */
  const cancellable = <X, E>(effect: Effect.Effect<X, E, R>, model: string, probe: boolean): Effect.Effect<X, E, R> =>
    probe ? Effect.onInterrupt(effect, () => health.record({ _tag: "Cancelled", model, probe })) : effect

  return from(plan.models)
}

/**
 * Power of two choices: two models drawn by weight (`r1`, `r2` uniform in
 * [0, 1)), the one with the lower `score` taken (the first on a tie). Spreads
 * load without herding every request onto the one best-looking model.
 *
 * @since 0.3.0
 * @category routing
 */
export const pickOfTwo = <M extends { readonly weight: number }>(
  models: ReadonlyArray<M>,
  score: (model: M) => number,
  r1: number,
  r2: number
): M | undefined => {
  const first = pickWeighted(models, r1)
  if (first === undefined) return undefined
  const second = pickWeighted(
    models.filter((m) => m !== first),
    r2
  )
  return second !== undefined && score(second) < score(first) ? second : first
}

/**
 * A model's score for `least_latency` (its latency times its calls in flight
 * plus one, over its weight) or `least_busy` (its calls in flight over its
 * weight): lower is better.
 *
 * @since 0.3.0
 * @category routing
 */
export const loadScore = (strategy: "least_latency" | "least_busy", load: ModelHealth.Load, weight: number): number =>
  (strategy === "least_busy" ? load.inFlight : load.latency * (load.inFlight + 1)) / weight

/**
 * The cheapest of `models` by `prices` (input plus output per million
 * tokens; a model without a price after every priced one), drawn by weight
 * among those that cost the same.
 */
const cheapest = (
  models: ReadonlyArray<Reliability.ModelPlan>,
  prices: ReadonlyMap<string, Reliability.Price> | undefined,
  random: number
): Reliability.ModelPlan | undefined => {
  const priceOf = (m: Reliability.ModelPlan) => {
    const price = prices?.get(m.model.id)
    return price === undefined ? Number.POSITIVE_INFINITY : price.input + price.output
  }
  const lowest = Math.min(...models.map(priceOf))
  return pickWeighted(
    models.filter((m) => priceOf(m) === lowest),
    random
  )
}

/** Whether a plan's strategy reads calls in flight: they are counted only then. */
const countsInFlight = (options: Options, plan: Reliability.Plan): boolean =>
  options.health !== undefined && (plan.strategy === "least_latency" || plan.strategy === "least_busy")

/** A call, counted in flight for its model from its start to its end (a finalizer, so the count cannot drift). */
const inFlight = <A, E>(
  options: Options,
  plan: Reliability.Plan,
  model: Reliability.ModelPlan,
  call: Effect.Effect<A, E>
): Effect.Effect<A, E> => {
  const health = options.health
  if (health === undefined || !countsInFlight(options, plan)) return call
  return Effect.acquireUseRelease(
    Effect.map(Clock.currentTimeMillis, (now) => health.dispatch(model.model.id, now)),
    () => call,
    (release) => Effect.sync(release)
  )
}

/** For a stream: what counts a model's attempt in flight until the stream (or the attempt) ends, if anything does. */
const dispatcher = (
  options: Options,
  plan: Reliability.Plan
): ((model: string, now: number) => () => void) | undefined =>
  options.health !== undefined && countsInFlight(options, plan) ? options.health.dispatch : undefined

/** A probe's permit lasts as long as its attempt may: the model's timeout. Cached: this runs on every attempt. */
const probeLease = (model: Reliability.ModelPlan): { readonly probeLease: Duration.Duration } => {
  let options = probeLeases.get(model)
  if (options === undefined) {
    options = { probeLease: model.timeout }
    probeLeases.set(model, options)
  }
  return options
}
const probeLeases = new WeakMap<Reliability.ModelPlan, { readonly probeLease: Duration.Duration }>()
const forcedAdmission = { ignoreBreaker: true } as const

/** What model health skipped, as an admission says it. */
type Skipped = Extract<ModelHealth.Admission, { readonly _tag: "Skip" }>

const without = (
  models: ReadonlyArray<Reliability.ModelPlan>,
  model: Reliability.ModelPlan
): ReadonlyArray<Reliability.ModelPlan> => models.filter((m) => m !== model)

/**
 * Whether the trace already has this skip (a request that waits and looks
 * again finds the same state): it is traced once.
 */
const isTraced = (attempts: ReadonlyArray<Attempt.Attempt>, model: string, skip: Skipped): boolean =>
  attempts.some(
    (a) => a.model === model && a.skip !== undefined && a.skip.reason === skip.state && a.skip.until === skip.until
  )

/** How often a request waiting on a half-open model's probe looks again. */
const probePollMillis = 50
const peek = { peek: true } as const

/** A skip, as the trace records it. */
const skipEntry = (model: string, skip: Skipped): Attempt.Attempt => ({
  model,
  outcome: "skipped",
  duration: Duration.zero,
  skip: {
    reason: skip.state,
    ...(skip.until === undefined ? {} : { until: skip.until }),
    ...(skip.reason === undefined ? {} : { cause: skip.reason })
  }
})

/** A failed call, as model health records it. */
const failureOutcome = (
  model: string,
  startedAt: number,
  probe: boolean,
  error: ProviderError.ProviderError
): ModelHealth.Outcome => ({
  _tag: "Failure",
  model,
  startedAt,
  probe,
  reason: error.reason,
  holdFor: ProviderError.holdFor(error)
})

/** A finished call, as the trace records it. */
const attemptEntry = (
  model: string,
  clock: Clock.Clock,
  start: number,
  dropped: ReadonlyArray<string>,
  error?: ProviderError.ProviderError,
  usage?: ChatCompletion.Usage | undefined,
  cost?: number | undefined
): Attempt.Attempt => {
  const duration = Duration.millis(clock.unsafeCurrentTimeMillis() - start)
  const entry: Attempt.Attempt = error
    ? { model, outcome: "failure", duration, error }
    : {
        model,
        outcome: "success",
        duration,
        ...(usage === undefined
          ? {}
          : { usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens } }),
        ...(cost === undefined ? {} : { cost })
      }
  return dropped.length === 0 ? entry : { ...entry, dropped }
}

const noSettle = (): void => {}

/**
 * What an answer cost in US dollars, when its model has `prices` and the
 * answer reports its usage: prompt tokens at the input price, completion
 * tokens at the output price, per million.
 */
const costOf = (
  plan: Reliability.Plan,
  model: Reliability.ModelPlan,
  usage: ChatCompletion.Usage | null | undefined
): number | undefined => {
  const price = plan.prices?.get(model.model.id)
  if (price === undefined || usage === undefined || usage === null) return undefined
  return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000
}

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

/** `effect`, except that its first run fails with `first` (which already happened): so a schedule sees it as its first input. */
const failFirst = <A, E, R>(first: E, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  let replayed = false
  return Effect.suspend(() => {
    if (replayed) return effect
    replayed = true
    return Effect.fail(first)
  })
}

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

const nothing: ReadonlyArray<string> = []

/**
 * What holds `model` when a successful reply says one of its rate limits is
 * spent, made once per model and health (it goes with every call).
 */
const limitSpent = (
  health: ModelHealth.Service,
  model: Reliability.ModelPlan
): ((spent: Provider.LimitSpent) => Effect.Effect<void>) => {
  let byModel = limitSpentHandlers.get(health)
  if (byModel === undefined) {
    byModel = new WeakMap()
    limitSpentHandlers.set(health, byModel)
  }
  let handler = byModel.get(model)
  if (handler === undefined) {
    handler = (spent) => health.record({ _tag: "LimitSpent", model: model.model.id, holdFor: spent.resetsIn })
    byModel.set(model, handler)
  }
  return handler
}
const limitSpentHandlers = new WeakMap<
  ModelHealth.Service,
  WeakMap<Reliability.ModelPlan, (spent: Provider.LimitSpent) => Effect.Effect<void>>
>()

/** What the router knows of a call when it makes it, for its span and the listener. */
interface CallMeta {
  /** The calls to the model in this request so far, this one included. */
  readonly attempt: number
  readonly probe: boolean
  readonly hedge: boolean
}

/** A call as telemetry describes it; `undefined` when there is no call to make (no provider). */
const describeCall = (call: Call, meta: CallMeta, options: Options): Telemetry.Call | undefined => {
  if (Either.isLeft(call)) return undefined
  const [provider, request] = call.right
  return {
    model: request.model,
    request: request.request,
    server: provider.server,
    attempt: meta.attempt,
    probe: meta.probe,
    hedge: meta.hedge,
    recordContent: options.recordContent === true
  }
}

/** A whole-answer call in its span, when the request is traced (its metrics are recorded by `runPlan`). */
const observed = (
  call: Call,
  meta: CallMeta,
  options: Options,
  report: Report,
  effect: Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError>
): Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError> => {
  if (report.span === undefined) return effect
  const described = describeCall(call, meta, options)
  return described === undefined ? effect : Telemetry.withCallSpan(described, effect)
}

/** Where a call goes, for its metrics. */
const serverOf = (call: Call): Provider.Server | undefined => (Either.isRight(call) ? call.right[0].server : undefined)

/** The route span's attributes known at its start. */
const routeAttributes = (plan: Reliability.Plan, stream: boolean): Record<string, unknown> => ({
  "gen_ai.operation.name": "chat",
  "ironlabsai.strategy": plan._tag === "Ordered" ? "failover_chain" : (plan.strategy ?? "weighted"),
  "ironlabsai.stream": stream
})

/**
 * Where one request's decisions go besides its trace: its route span (when
 * traced), the router's metrics, and the counts the trace does not keep.
 */
class Report {
  span: Tracer.Span | undefined
  /** The model a stream committed to. */
  winner: string | undefined
  hedges = 0
  /** Times the request left a model for another after its failure. */
  failovers = 0

  /** Counts a trace entry in the router's metrics. */
  counted(entry: Attempt.Attempt): void {
    const model = entry.model
    Telemetry.countAttempt(model, entry.outcome, entry.error?.reason ?? entry.skip?.reason)
    if (entry.skip?.reason === "budget") {
      Telemetry.count(Telemetry.budgetRejections, [
        ["ironlabsai.model", model],
        ["ironlabsai.budget", entry.skip.cause]
      ])
    } else if (entry.skip?.reason === "retry-budget") {
      Telemetry.count(Telemetry.retryBudgetRejections, [["ironlabsai.model", model]])
    }
  }

  hedged(model: string): void {
    this.hedges++
    Telemetry.count(Telemetry.hedges, [["ironlabsai.model", model]])
  }

  /** A span event on the route span, when there is one: the event's fields as attributes (a skip's fields joined). */
  event(name: string, fields: object, clock: Clock.Clock | undefined): void {
    if (this.span === undefined) return
    const attributes: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(fields)) {
      if (key === "type" || value === undefined) continue
      attributes[`ironlabsai.${key}`] =
        key === "until" && typeof value === "number"
          ? new Date(value).toISOString()
          : Array.isArray(value)
            ? value.join(", ")
            : value
    }
    const nanos = clock === undefined ? BigInt(Date.now()) * 1_000_000n : clock.unsafeCurrentTimeNanos()
    this.span.event(name, nanos, attributes)
  }

  /** The route span's attributes at its end: what the request took, and which model answered. */
  summary(
    attempts: ReadonlyArray<Attempt.Attempt>,
    winner: string | undefined,
    exit: Exit.Exit<unknown, unknown>
  ): Record<string, unknown> {
    let calls = 0
    let skips = 0
    let budgetRejections = 0
    for (const a of attempts) {
      if (a.outcome === "skipped") {
        skips++
        if (a.skip?.reason === "budget") budgetRejections++
      } else calls++
    }
    const summary: Record<string, unknown> = {
      "ironlabsai.attempts": calls,
      "ironlabsai.failovers": this.failovers,
      "ironlabsai.skips": skips,
      "ironlabsai.hedges": this.hedges,
      "ironlabsai.budget_rejections": budgetRejections
    }
    if (winner !== undefined) summary["ironlabsai.model"] = winner
    if (Exit.isFailure(exit)) {
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure) && typeof failure.value === "object" && failure.value !== null) {
        summary["error.type"] = (failure.value as { readonly _tag?: string })._tag ?? "_OTHER"
      }
    }
    return summary
  }
}

/** An answer being built: `cost` set after the rest. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** A provider and the call to make to it. */
type Call = Either.Either<readonly [Provider.Provider, Provider.CallRequest], ProviderError.ProviderError>

/** One model's call for one request, worked out when the model is picked. */
interface Prepared {
  /** The provider and the call, or why there is none (no provider is registered for the model). */
  readonly call: Call
  /** The request's fields the model cannot serve: it is skipped for this request. */
  readonly unservable: ReadonlyArray<string>
  /** The fields left out of the call, as `drop_unsupported_params` allows. */
  readonly dropped: ReadonlyArray<string>
}

/**
 * The call to `model` for `request`: its extra messages appended, what its
 * provider cannot serve found (then dropped when `drop` says so), and, with
 * model health, where a reply that says a rate limit is spent holds it.
 */
const prepare = (
  model: Reliability.ModelPlan,
  providers: Provider.Registry,
  request: ChatCompletion.ChatCompletionRequest,
  drop: boolean,
  health: ModelHealth.Service | undefined
): Prepared => {
  const provider = providers.get(model.model.provider)
  if (provider === undefined) {
    const description = `no provider registered for "${model.model.provider}"`
    const error = ProviderError.ProviderError.fromReason({ reason: "NotFound", model: model.model.id, description })
    return { call: Either.left(error), unservable: nothing, dropped: nothing }
  }
  const call: Provider.CallRequest = {
    model: model.model,
    request: model.messages.length === 0 ? request : { ...request, messages: [...request.messages, ...model.messages] },
    ...(health === undefined ? {} : { onLimitSpent: limitSpent(health, model) })
  }
  const fields = provider.unsupported?.(call) ?? nothing
  if (fields.length === 0)
    return { call: Either.right([provider, call] as const), unservable: nothing, dropped: nothing }
  if (!drop) return { call: Either.right([provider, call] as const), unservable: fields, dropped: nothing }
  const trimmed = { ...call, request: ChatCompletion.withoutFields(call.request, fields) }
  // What the provider still cannot serve once the fields are gone (nothing, for a provider that names them well).
  const left = provider.unsupported?.(trimmed) ?? nothing
  return { call: Either.right([provider, trimmed] as const), unservable: left, dropped: fields }
}

const timedOut = (model: Reliability.ModelPlan, what: string) => () =>
  ProviderError.ProviderError.fromReason({
    reason: "Timeout",
    model: model.model.id,
    description: `${what} within ${Duration.format(model.timeout)}`
  })

/**
 * One attempt, under the model's own timeout, which aborts the call. A
 * provider whose deadline is cooperative gets it through
 * `Deadline.current` and aborts the request itself; any other runs
 * under `Effect.timeoutFail` (aggressive: it interrupts the call). Either way a
 * late attempt fails with `Timeout`.
 */
const callModel = (
  model: Reliability.ModelPlan,
  prepared: Call,
  startedAt: number
): Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError> => {
  if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
  const [provider, call] = prepared.right
  if (provider.deadline !== "cooperative") {
    return provider
      .complete(call)
      .pipe(Effect.timeoutFail({ duration: model.timeout, onTimeout: timedOut(model, "no answer") }))
  }
  return withNativeDeadline(provider.complete(call), startedAt + Duration.toMillis(model.timeout), model)
}

/**
 * `effect` with `Deadline.current` set to `deadline` for its
 * duration: `Effect.locally`, in fewer steps (this runs once per attempt).
 * What the stack fails with once the deadline has passed is a timeout: it
 * aborted the request.
 */
const withNativeDeadline = <A, R>(
  effect: Effect.Effect<A, ProviderError.ProviderError, R>,
  deadline: number,
  model: Reliability.ModelPlan
): Effect.Effect<A, ProviderError.ProviderError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(FiberRef.getAndSet(Deadline.current, deadline), (previous) =>
      Effect.matchCauseEffect(restore(effect), {
        onFailure: (cause) => {
          const reset = FiberRef.set(Deadline.current, previous)
          const error = Cause.failureOption(cause)
          if (Option.isNone(error) || error.value.reason !== "Transport")
            return Effect.zipRight(reset, Effect.failCause(cause))
          return Effect.zipRight(
            reset,
            Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.fail(now >= deadline ? timedOut(model, "no answer")() : error.value)
            )
          )
        },
        onSuccess: (value) => Effect.as(FiberRef.set(Deadline.current, previous), value)
      })
    )
  )

/**
 * A stream's `pull`, failing with `Timeout` once the provider has kept the
 * caller waiting the model's `timeout` in all since the stream's last
 * progress: content, a finish reason, or usage. Keep-alive events (which
 * make no chunk) and role-only or empty chunks are not progress, so they
 * cannot keep a stalled stream alive; and only time spent waiting on the
 * provider counts, not the time the consumer takes between pulls.
 */
const withIdleTimeout = <E>(
  pull: Effect.Effect<Chunk.Chunk<ChatCompletion.ChatCompletionChunk>, Option.Option<E>>,
  model: Reliability.ModelPlan
): Effect.Effect<Chunk.Chunk<ChatCompletion.ChatCompletionChunk>, Option.Option<E | ProviderError.ProviderError>> => {
  const limit = Duration.toMillis(model.timeout)
  const onTimeout = () => Option.some(timedOut(model, "no chunk")())
  /** Millis spent waiting on the provider since the last progress. */
  let waited = 0
  return Effect.flatMap(Clock.currentTimeMillis, (start) =>
    pull.pipe(
      Effect.timeoutFail({ duration: Duration.millis(Math.max(0, limit - waited)), onTimeout }),
      Effect.tap((chunks) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          waited = Chunk.some(chunks, isProgress) ? 0 : waited + (now - start)
        })
      )
    )
  )
}

/** Whether a chunk moves the answer on: content (text, a tool call, reasoning), a finish reason, or usage. */
const isProgress = (chunk: ChatCompletion.ChatCompletionChunk): boolean =>
  ChatCompletion.hasContent(chunk) ||
  (chunk.usage !== undefined && chunk.usage !== null) ||
  chunk.choices.some((choice) => choice.finish_reason !== null)

/**
 * One streamed attempt, up to its commit: reads the preamble until a chunk
 * with content, then hands back the whole stream from the start. The attempt's
 * resources live in their own scope, closed at once if it fails, so a failed
 * attempt's connection does not stay open for the life of the stream.
 */
const openStream = (
  model: Reliability.ModelPlan,
  prepared: Call,
  dispatch?: ((model: string, now: number) => () => void) | undefined
): Effect.Effect<
  Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>,
  ProviderError.ProviderError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const [provider, call] = yield* prepared
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    // In flight from here until the attempt's scope closes: when it fails, or when the stream it became ends.
    if (dispatch !== undefined) {
      yield* Scope.addFinalizer(scope, Effect.sync(dispatch(model.model.id, yield* Clock.currentTimeMillis)))
    }
    const commit = Effect.gen(function* () {
      const pull = withIdleTimeout(yield* Stream.toPull(provider.stream(call)), model)
      const preamble: Array<ChatCompletion.ChatCompletionChunk> = []
      for (;;) {
        const next = yield* Effect.either(pull)
        if (Either.isLeft(next)) {
          // The stream ended before any content: an empty answer, complete as it is.
          if (Option.isNone(next.left)) return Stream.fromIterable(preamble)
          return yield* Effect.fail(next.left.value)
        }
        preamble.push(...next.right)
        if (Chunk.some(next.right, ChatCompletion.hasContent)) {
          return Stream.concat(Stream.fromIterable(preamble), Stream.repeatEffectChunkOption(pull))
        }
      }
    })
    return yield* commit.pipe(
      Scope.extend(scope),
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
  })
