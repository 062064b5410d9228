/**
 * Model health shared by a fleet through Redis (DESIGN §11): a
 * `ModelHealth.Store`, so that a client given it (`RedisHealth.layer`) keeps
 * its model health there.
 *
 * Each service keeps this process's own model health in memory
 * (`ModelHealth.unsafeMakeMemory`: latency, load, calls in flight, the retry
 * budget, its own breaker counting) and a local snapshot of what the rest of
 * the fleet said: holds, open breakers, who holds the half-open probe lease.
 * `admit` reads only memory, synchronously. `record` answers from memory and
 * writes through to Redis in the background (the request never waits): a
 * hold at once; an open breaker once `minReporters` instances reported one
 * within the breaker's window; the probe's outcome. Changes reach the other
 * instances by pub/sub, and a reconcile poll (default every second) catches
 * what a message missed. When the breaker's open period ends, exactly one
 * instance of the fleet holds the probe lease (the one that opened it, or,
 * once its lease lapses, whoever wins a `SET NX` on the `probe` key) and
 * sends the probe; the others skip the model until the probe answers.
 *
 * When Redis is down or slow, nothing waits and nothing fails: every
 * instance goes on with its own memory and what it last knew, logs a warning
 * once per outage and counts `ironlabsai.redis.errors`; when Redis is back it
 * writes the holds and opens it made meanwhile and reads the fleet's state
 * again.
 *
 * @example
 * import { RedisConnection, RedisHealth } from "@ironlabsai/redis"
 * import { Effect, Layer } from "effect"
 *
 * // A client made with this layer in context keeps its model health in Redis, shared with the fleet.
 * const SharedHealth = RedisHealth.layer({ minReporters: 2 }).pipe(
 *   Layer.provide(RedisConnection.layer({ url: "redis://localhost:6379" }))
 * )
 *
 * // What the client does with it: one service per client, made from its config's policy.
 * const program = Effect.gen(function* () {
 *   const store = yield* RedisHealth.ModelHealthStore
 *   const health = store.make({ health: RedisHealth.defaultPolicy })
 *   return health.admit("openai/gpt-4o", Date.now()) // { _tag: "Call" } unless the fleet holds or opened it
 * }).pipe(Effect.provide(SharedHealth))
 *
 * @since 0.4.0
 */
import { ModelHealth, type ProviderError, Telemetry } from "@ironlabsai/core"
import { Clock, Duration, Effect, FiberSet, Layer, type Scope, Stream } from "effect"
import type * as StreamEmit from "effect/StreamEmit"
import * as Scripts from "./internal/healthScripts.js"
import * as RedisConnection from "./RedisConnection.js"

/**
 * The tag a client reads its shared model-health store from (the one of
 * `@ironlabsai/core`, re-exported).
 *
 * @since 0.4.0
 * @category tags
 */
export const ModelHealthStore = ModelHealth.ModelHealthStore

/**
 * The default breaker and hold policy (the one of `@ironlabsai/core`,
 * re-exported).
 *
 * @since 0.4.0
 * @category constants
 */
export const defaultPolicy: ModelHealth.Policy = ModelHealth.defaultPolicy

/**
 * The options of the shared store.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /**
   * How many distinct instances must report an open breaker within the
   * breaker's window before it opens for the whole fleet (default 1: the
   * first open is shared at once). Holds are always shared at once.
   */
  readonly minReporters?: number | undefined
  /** How often the fleet's state is read again, a backstop for missed messages (default: the connection's, 1 s). */
  readonly reconcileInterval?: Duration.DurationInput | undefined
  /** Whether to listen to the change channel (default `true`); without it only the reconcile poll brings changes. */
  readonly subscribe?: boolean | undefined
}

/** Reasons the breaker counts (DESIGN §8), as core's in-memory health counts them. */
const countedReasons: ReadonlySet<string> = new Set<ProviderError.Reason>([
  "Overloaded",
  "ServerError",
  "Timeout",
  "Transport",
  "MalformedResponse"
])

/** What the fleet said about one model, in this process's time (epoch millis of its `Clock`). */
interface View {
  hold: { readonly until: number; readonly reason: string } | undefined
  open: { readonly until: number; readonly reason: string; readonly by: string } | undefined
  lease: { readonly owner: string; readonly until: number } | undefined
  /** The end of the lease of the fleet probe this instance handed out (0: none out). */
  probingUntil: number
  /** The fleet closed a breaker this instance's memory still has open: its memory's open is not heeded. */
  fleetClosed: boolean
  /** The state of the fleet's view last published on `changes`. */
  published: ModelHealth.State
  /** Whether a fiber watches the probe lease. */
  watching: boolean
}

/** What this instance itself holds or opened, to write again to a Redis that lost it. */
interface Own {
  hold: { readonly until: number; readonly reason: string } | undefined
  open: { readonly until: number; readonly reason: string } | undefined
  /** Whether this instance's memory has its breaker open (or half-open). */
  localOpen: boolean
}

/** The shared state of the store, common to the services it makes. */
interface Shared {
  readonly connection: RedisConnection.Connection
  readonly clock: Clock.Clock
  /** Runs background work that ends with the store (a watch for an open's end, a resync). */
  readonly run: (effect: Effect.Effect<void>) => void
  /** Runs a write to Redis in the background: the store waits for these (a moment) before it closes. */
  readonly write: (effect: Effect.Effect<void>) => void
  readonly minReporters: number
  /** Redis time minus local time, estimated from replies; `undefined` before the first. */
  offset: number | undefined
  /** How many services were made: each is an instance of its own (`instanceId/n`). */
  made: number
}

/** A service with the hooks the store calls. */
interface Instance {
  readonly service: ModelHealth.Service
  readonly apply: (state: Scripts.State, receivedAt: number) => void
  readonly reconcile: Effect.Effect<void>
  readonly resync: Effect.Effect<void>
}

const cut = (text: string | undefined): number | undefined => (text === undefined ? undefined : Number(text))

const makeInstance = (
  shared: Shared,
  settings: {
    readonly health?: ModelHealth.Policy | undefined
    readonly retryBudget?: ModelHealth.RetryBudget | undefined
  }
): Instance => {
  const local = ModelHealth.unsafeMakeMemory(settings)
  const policy = settings.health!
  const { clock, connection, run, write: writeBehind } = shared
  const me = `${connection.instanceId}/${++shared.made}`
  const windowMillis = Duration.toMillis(policy.window)
  const openForMillis = Duration.toMillis(policy.openFor)
  const maxOpenForMillis = Duration.toMillis(policy.maxOpenFor)
  /** How long a key outlives the state it keeps: an unprobed half-open breaker is forgotten after this. */
  const marginMillis = Math.max(60_000, maxOpenForMillis)

  const views = new Map<string, View>()
  const owns = new Map<string, Own>()
  /** Every model this instance saw, in the order first seen: the reconcile poll reads them. */
  const known = new Set<string>()
  /** The probe lease each model's calls asked for (its timeout), in millis. */
  const leases = new Map<string, number>()
  const subscribers = new Set<StreamEmit.EmitOpsPush<never, ModelHealth.Transition>>()

  const viewOf = (model: string): View => {
    let view = views.get(model)
    if (view === undefined) {
      view = {
        hold: undefined,
        open: undefined,
        lease: undefined,
        probingUntil: 0,
        fleetClosed: false,
        published: "healthy",
        watching: false
      }
      views.set(model, view)
    }
    return view
  }
  const ownOf = (model: string): Own => {
    let own = owns.get(model)
    if (own === undefined) {
      own = { hold: undefined, open: undefined, localOpen: false }
      owns.set(model, own)
    }
    return own
  }
  const leaseOf = (model: string): number => leases.get(model) ?? openForMillis

  /** The state the rest of the fleet gives the model at `now` (this instance's own holds and opens are in its memory). */
  const fleetState = (
    view: View,
    now: number
  ): {
    readonly state: ModelHealth.State
    readonly until?: number | undefined
    readonly reason?: string | undefined
  } => {
    const hold = view.hold !== undefined && view.hold.until > now ? view.hold : undefined
    const open = view.open !== undefined && view.open.by !== me ? view.open : undefined
    if (open !== undefined && open.until > now && (hold === undefined || open.until > hold.until)) {
      return { state: "open", until: open.until, reason: open.reason }
    }
    if (hold !== undefined) return { state: "held", until: hold.until, reason: hold.reason }
    if (open !== undefined) return { state: "half-open", reason: open.reason }
    return { state: "healthy" }
  }

  /** Publishes the fleet view's change of state since it was last published, if any. */
  const observe = (model: string, view: View, now: number): void => {
    const current = fleetState(view, now)
    const from = view.published
    if (current.state === from) return
    view.published = current.state
    Telemetry.setModelState(model, current.state)
    if (subscribers.size === 0) return
    const at = current.state === "half-open" && view.open !== undefined ? Math.min(now, view.open.until) : now
    const transition: ModelHealth.Transition = {
      model,
      from,
      to: current.state,
      at,
      ...(current.until === undefined ? {} : { until: current.until }),
      ...(current.reason === undefined ? {} : { reason: current.reason })
    }
    for (const emit of subscribers) emit.single(transition)
  }

  const leaseIsMine = (view: View, now: number): boolean =>
    view.lease !== undefined && view.lease.owner === me && view.lease.until > now

  const apply = (state: Scripts.State, receivedAt: number): void => {
    const model = state.m
    known.add(model)
    const view = viewOf(model)
    const offset = shared.offset ?? state.t - receivedAt
    const toLocal = (redisMillis: number): number => redisMillis - offset
    const holdUntil = cut(state.hold_until)
    view.hold =
      holdUntil === undefined || state.hold_by === me
        ? undefined
        : { until: toLocal(holdUntil), reason: state.hold_reason ?? "RateLimited" }
    const openUntil = cut(state.open_until)
    const had = view.open !== undefined
    view.open =
      openUntil === undefined
        ? undefined
        : { until: toLocal(openUntil), reason: state.open_reason ?? "ServerError", by: state.open_by ?? "" }
    if (had && view.open === undefined && ownOf(model).localOpen) view.fleetClosed = true
    view.lease = state.p === undefined ? undefined : { owner: state.p, until: receivedAt + Math.max(0, state.pt ?? 0) }
    if (view.lease?.owner !== me) view.probingUntil = 0
    observe(model, view, receivedAt)
    if (view.open !== undefined) watchLease(model)
  }

  /** Runs a script on a model's keys and applies its answer; a failure is reported, never raised. */
  const write = (
    script: RedisConnection.Script,
    model: string,
    parts: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>
  ): Effect.Effect<Scripts.State | undefined> =>
    Effect.gen(function* () {
      const sent = clock.unsafeCurrentTimeMillis()
      const reply = yield* connection.evalScript(
        script,
        parts.map((part) => connection.keyOf(model, part)),
        args
      )
      const received = clock.unsafeCurrentTimeMillis()
      const state = Scripts.parseState(reply)
      if (state === undefined) return undefined
      shared.offset = state.t - Math.round((sent + received) / 2)
      apply(state, received)
      return state
    }).pipe(Effect.catchAll((error) => Effect.as(connection.report(error), undefined)))

  const writeHold = (model: string, holdFor: number, reason: string) =>
    write(Scripts.hold, model, ["health", "probe"], [model, me, holdFor, reason, marginMillis, connection.channel])

  const writeOpen = (model: string, openFor: number, reason: string, probe: boolean) =>
    write(
      Scripts.open,
      model,
      ["health", "probe", "reporters"],
      [
        model,
        me,
        Math.max(1, openFor),
        reason,
        windowMillis,
        shared.minReporters,
        maxOpenForMillis,
        leaseOf(model),
        marginMillis,
        connection.channel,
        probe ? "1" : "0"
      ]
    )

  const writeClose = (model: string) =>
    write(Scripts.close, model, ["health", "probe", "reporters"], [model, me, connection.channel])

  const readModel = (model: string) => write(Scripts.read, model, ["health", "probe"], [model])

  const releaseLease = (model: string) =>
    connection.evalScript(Scripts.release, [connection.keyOf(model, "probe")], [me]).pipe(
      Effect.asVoid,
      Effect.catchAll((error) => connection.report(error))
    )

  /**
   * Watches the probe lease of a model the fleet has open, until the breaker
   * closes: when the open period ends and when a lease someone else holds
   * runs out, it tries to take the lease (`SET NX PX`: one instance wins);
   * when its own lease runs out, it reads the state again (and tries again
   * only a moment later, so that a lost probe's instance is not the first in
   * line).
   */
  const watchLease = (model: string): void => {
    const view = viewOf(model)
    if (view.watching) return
    view.watching = true
    const acquire = write(Scripts.acquire, model, ["health", "probe"], [model, me, leaseOf(model)])
    const step = (lapsed: boolean): Effect.Effect<void> =>
      Effect.suspend(() => {
        const current = viewOf(model)
        const now = clock.unsafeCurrentTimeMillis()
        if (current.open === undefined) return Effect.void
        const lease = current.lease
        const [until, next, mine] =
          lease !== undefined && lease.owner === me
            ? [lease.until, readModel(model), true]
            : lease !== undefined && lease.until > now
              ? [lease.until, acquire, false]
              : [Math.max(current.open.until, lapsed ? now + Math.min(250, leaseOf(model)) : 0), acquire, false]
        return Effect.sleep(Duration.millis(Math.max(0, until - now) + 5)).pipe(
          Effect.zipRight(next),
          Effect.flatMap((state) => (state === undefined ? Effect.void : step(mine)))
        )
      })
    run(step(false).pipe(Effect.ensuring(Effect.sync(() => (view.watching = false)))))
  }

  /**
   * A probe goes out under this instance's lease: the lease is extended to
   * outlast the probe's own (by up to a second), so that this instance, and
   * no other, may probe again if the probe never reports back; an instance
   * that stops probing lets its lease run out for another.
   */
  const renewLease = (model: string, view: View, now: number): void => {
    const lease = leaseOf(model)
    const millis = lease + Math.min(lease, 1_000)
    view.lease = { owner: me, until: now + millis }
    writeBehind(
      connection.evalScript(Scripts.renew, [connection.keyOf(model, "probe")], [me, millis]).pipe(
        Effect.asVoid,
        Effect.catchAll((error) => connection.report(error))
      )
    )
  }

  const call: ModelHealth.Admission = { _tag: "Call" }
  const probe: ModelHealth.Admission = { _tag: "Probe" }

  const admit: ModelHealth.Service["admit"] = (model, now, options) => {
    if (options?.probeLease !== undefined) {
      const lease = Duration.toMillis(options.probeLease)
      if (leases.get(model) !== lease) leases.set(model, lease)
    }
    const view = views.get(model)
    if (view === undefined) {
      if (!known.has(model)) known.add(model)
      return local.admit(model, now, options)
    }
    observe(model, view, now)
    const ignoreBreaker = options?.ignoreBreaker === true
    const fleet = fleetState(view, now)
    if (fleet.state === "held" || (fleet.state === "open" && !ignoreBreaker)) {
      // This instance's own memory may know a longer hold or open: the later end stands.
      const mine = local.admit(model, now, { ...options, peek: true })
      if (mine._tag === "Skip" && mine.until !== undefined && mine.until > (fleet.until ?? 0)) return mine
      return {
        _tag: "Skip",
        state: fleet.state,
        ...(fleet.until === undefined ? {} : { until: fleet.until }),
        ...(fleet.reason === undefined ? {} : { reason: fleet.reason })
      }
    }
    const halfOpen: ModelHealth.Admission = {
      _tag: "Skip",
      state: "half-open",
      ...(view.open === undefined ? {} : { reason: view.open.reason })
    }
    if (fleet.state === "half-open" && !ignoreBreaker) {
      if (!leaseIsMine(view, now)) return halfOpen
      const answer = local.admit(model, now, options)
      if (answer._tag !== "Call" || options?.peek === true) return answer
      if (view.probingUntil > now) return halfOpen
      view.probingUntil = now + leaseOf(model)
      renewLease(model, view, now)
      return probe
    }
    // This instance opened the fleet's breaker and probes in its own memory's time while it holds the lease the
    // open gave it. Once Redis says the lease is gone, it must win it again; while another instance holds it,
    // that one probes.
    if (!ignoreBreaker && view.open !== undefined && view.open.by === me && view.open.until <= now) {
      if (view.lease === undefined) {
        watchLease(model)
        return halfOpen
      }
      if (view.lease.owner !== me && view.lease.until > now) return halfOpen
      const answer = local.admit(model, now, options)
      if (answer._tag === "Probe") renewLease(model, view, now)
      return answer
    }
    const answer = local.admit(model, now, options)
    if (view.fleetClosed && (answer._tag === "Probe" || (answer._tag === "Skip" && answer.state !== "held")))
      return call
    return answer
  }

  /** What an outcome writes to Redis, after memory recorded it (it changed `change`). */
  const writeThrough = (outcome: ModelHealth.Outcome, change: ModelHealth.Change | undefined, now: number): void => {
    const model = outcome.model
    known.add(model)
    const view = views.get(model)
    const own = ownOf(model)
    const fleetProbe = outcome._tag !== "LimitSpent" && outcome.probe && view !== undefined && view.probingUntil > 0
    if (fleetProbe) view!.probingUntil = 0
    if (outcome._tag === "Cancelled") {
      if (fleetProbe) writeBehind(releaseLease(model))
      return
    }
    if (change?.state === "held") {
      own.hold = { until: change.until, reason: change.reason }
      writeBehind(Effect.asVoid(writeHold(model, change.until - now, change.reason)))
    }
    if (change?.state === "open") {
      own.open = { until: change.until, reason: change.reason }
      own.localOpen = true
      if (view !== undefined) view.fleetClosed = false
      writeBehind(
        Effect.asVoid(writeOpen(model, change.until - now, change.reason, outcome._tag === "Failure" && outcome.probe))
      )
      return
    }
    if (outcome._tag === "Failure" && fleetProbe) {
      // The fleet's probe failed: reopen (counted) or hand the lease back (a hold, an invalid request).
      if (countedReasons.has(outcome.reason))
        writeBehind(Effect.asVoid(writeOpen(model, openForMillis, outcome.reason, true)))
      else writeBehind(releaseLease(model))
      return
    }
    if (outcome._tag === "Success" && (own.localOpen || fleetProbe || view?.open?.by === me)) {
      own.localOpen = false
      own.open = undefined
      if (view !== undefined) view.fleetClosed = false
      writeBehind(Effect.asVoid(writeClose(model)))
    }
  }

  const record: ModelHealth.Service["record"] = (outcome) =>
    Effect.flatMap(local.record(outcome), (change) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        writeThrough(outcome, change, now)
        return change
      })
    )

  const snapshot: ModelHealth.Service["snapshot"] = Effect.flatMap(local.snapshot, (statuses) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const merged = statuses.map((status) => {
        const view = views.get(status.model)
        return view === undefined ? status : merge(status, view, now)
      })
      for (const [model, view] of views) {
        if (statuses.some((status) => status.model === model)) continue
        const fleetOnly = merge(ModelHealth.healthy(model), view, now)
        if (fleetOnly.state !== "healthy") merged.push(fleetOnly)
      }
      return merged
    })
  )

  const merge = (status: ModelHealth.ModelStatus, view: View, now: number): ModelHealth.ModelStatus => {
    observe(status.model, view, now)
    const fleet = fleetState(view, now)
    const mine =
      view.fleetClosed && (status.state === "open" || status.state === "half-open")
        ? { ...status, state: "healthy" as const, until: undefined, reason: undefined }
        : status
    const take =
      fleet.state === "healthy"
        ? false
        : fleet.state === "half-open"
          ? mine.state === "healthy"
          : mine.state === "healthy" || mine.state === "half-open" || (fleet.until ?? 0) > (mine.until ?? 0)
    const { reason: _reason, until: _until, ...counters } = mine
    const chosen = take ? fleet : mine
    return {
      ...counters,
      state: chosen.state,
      ...(chosen.until === undefined ? {} : { until: chosen.until }),
      ...(chosen.reason === undefined ? {} : { reason: chosen.reason })
    }
  }

  const fleetChanges = Stream.asyncPush<ModelHealth.Transition>(
    (emit) =>
      Effect.acquireRelease(
        Effect.sync(() => subscribers.add(emit)),
        () => Effect.sync(() => subscribers.delete(emit))
      ),
    { bufferSize: "unbounded" }
  )

  const changes: ModelHealth.Service["changes"] = Stream.suspend(() => {
    // This process's memory and the fleet may say the same thing: a model's state is published once.
    const last = new Map<string, ModelHealth.State>()
    return Stream.merge(local.changes, fleetChanges).pipe(
      Stream.filter((transition) => {
        if (last.get(transition.model) === transition.to) return false
        last.set(transition.model, transition.to)
        return true
      })
    )
  })

  const reconcile: Effect.Effect<void> = Effect.suspend(() =>
    Effect.forEach(Array.from(known), readModel, { concurrency: 8, discard: true })
  )

  /** Writes what this instance holds or opened while Redis could not hear it, then reads the fleet's state again. */
  const resync: Effect.Effect<void> = Effect.suspend(() => {
    const now = clock.unsafeCurrentTimeMillis()
    const writes: Array<Effect.Effect<unknown>> = []
    for (const [model, own] of owns) {
      if (own.hold !== undefined && own.hold.until > now) {
        writes.push(writeHold(model, own.hold.until - now, own.hold.reason))
      }
      if (own.localOpen && own.open !== undefined && own.open.until > now) {
        writes.push(writeOpen(model, own.open.until - now, own.open.reason, false))
      }
    }
    return Effect.zipRight(Effect.all(writes, { concurrency: 8, discard: true }), reconcile)
  })

  const service: ModelHealth.Service = {
    admit,
    withdrawRetry: local.withdrawRetry,
    record,
    snapshot,
    load: local.load,
    dispatch: local.dispatch,
    observeLatency: local.observeLatency,
    changes
  }
  return { service, apply, reconcile, resync }
}

/**
 * A model-health store over a Redis connection: each `make` is one instance
 * of the fleet. Its background work (the subscription, the reconcile poll,
 * the writes) ends with the scope.
 *
 * @since 0.4.0
 * @category constructors
 */
export const makeStore = (
  connection: RedisConnection.Connection,
  options: Options = {}
): Effect.Effect<ModelHealth.Store, never, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Clock.clockWith(Effect.succeed)
    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const writes = yield* FiberSet.make<void, never>()
    const writeFork = yield* FiberSet.runtime(writes)<never>()
    // Added after the sets, so run before they interrupt their fibers: what a process just learnt (a 429 on its
    // last request) reaches Redis before it exits, if Redis answers within a second.
    yield* Effect.addFinalizer(() =>
      FiberSet.awaitEmpty(writes).pipe(Effect.timeout(Duration.seconds(1)), Effect.ignore)
    )
    const shared: Shared = {
      connection,
      clock,
      run: (effect) => {
        runFork(effect)
      },
      write: (effect) => {
        writeFork(effect)
      },
      minReporters: Math.max(1, Math.floor(options.minReporters ?? 1)),
      offset: undefined,
      made: 0
    }
    const instances = new Set<Instance>()
    const interval = Duration.decode(options.reconcileInterval ?? connection.reconcileInterval)

    if (options.subscribe !== false) {
      yield* connection.subscribe((message) => {
        const state = Scripts.parseState(message)
        if (state === undefined) return
        const receivedAt = clock.unsafeCurrentTimeMillis()
        for (const instance of instances) instance.apply(state, receivedAt)
      })
    }
    // Each time the connection is ready (the first time too: records may have come first), write what Redis
    // missed and read the fleet's state again.
    yield* connection.onReady(() => {
      for (const instance of instances) shared.run(instance.resync)
    })
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(interval),
          Effect.suspend(() =>
            connection.isReady()
              ? Effect.forEach(instances, (instance) => instance.reconcile, { discard: true })
              : Effect.void
          )
        )
      )
    )

    const store: ModelHealth.Store = {
      make: (settings) => {
        if (settings.health === undefined) return ModelHealth.unsafeMakeMemory(settings)
        const instance = makeInstance(shared, settings)
        instances.add(instance)
        // The client's models, looked at now and read at once: a process that starts while the fleet holds a
        // model skips it from its first call, not from the next poll.
        const models = settings.models ?? []
        if (models.length > 0) {
          const now = clock.unsafeCurrentTimeMillis()
          for (const model of models) instance.service.admit(model, now, { peek: true })
          if (connection.isReady()) shared.run(instance.reconcile)
        }
        return instance.service
      }
    }
    return store
  })

/**
 * The store as a layer, over the `RedisConnection` in context.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<ModelHealth.ModelHealthStore, never, RedisConnection.RedisConnection> =>
  Layer.scoped(
    ModelHealth.ModelHealthStore,
    Effect.flatMap(RedisConnection.RedisConnection, (connection) => makeStore(connection, options))
  )
