/**
 * Rate budgets (`rate_limits`: `rpm`, `tpm`) shared by every process that
 * uses the same Redis (DESIGN §9, §11): a `RateBudget` service whose limits
 * are global, not per process.
 *
 * Each model's budget is a token bucket in Redis (`${prefix}:{${model}}:rpm`
 * and `:tpm`, one Cluster slot), refilled continuously at the limit per
 * minute by a Lua script that reads Redis `TIME`. A reservation never waits
 * on Redis: each process holds a small lease taken from the bucket ahead of
 * time (about one second of the limit: one request at a time for 60 rpm) and
 * reserves from it synchronously; a daemon fiber takes the next lease before
 * this one runs out. A call that finds the lease empty is refused for a round
 * trip (or until the bucket has room again), as a spent budget is, and the
 * router waits or fails over. A settled call's unused tokens go back to the
 * process's lease (not to Redis), and tokens used beyond the estimate are
 * taken from it (repaid by the next lease); when the scope closes, what the
 * lease still holds, or owes, goes back to the bucket.
 *
 * When Redis is down (not connected, a script failed, or a refill is not
 * answered in time) the budgets go on in memory, per process, as
 * `RateBudget.unsafeMakeMemory` keeps them: a warning once per outage and
 * the `ironlabsai.redis.errors` metric say so. With `strict: true` they fail
 * closed instead: every call is refused until Redis is back.
 *
 * @example
 * import { Effect, Layer } from "effect"
 * import { RateBudget } from "@ironlabsai/core"
 * import { RedisBudget, RedisConnection } from "@ironlabsai/redis"
 *
 * // 60 requests a minute to gpt-4o in all, however many processes share this Redis.
 * const Budgets = RedisBudget.layer({ limits: { "openai/gpt-4o": { rpm: 60 } } }).pipe(
 *   Layer.provide(RedisConnection.layer({ url: "redis://localhost:6379" }))
 * )
 *
 * const program = Effect.gen(function* () {
 *   const budget = yield* RateBudget.RateBudget
 *   return budget.reserve("openai/gpt-4o", { rpm: 60 }, 500, Date.now())
 * }).pipe(Effect.provide(Budgets))
 *
 * @since 0.4.0
 */
import { RateBudget, type Reliability } from "@ironlabsai/core"
import { Clock, Duration, Effect, Fiber, FiberSet, Layer, type Scope } from "effect"
import { Lease } from "./internal/budgetLease.js"
import * as BudgetScript from "./internal/budgetScript.js"
import * as RedisConnection from "./RedisConnection.js"

/**
 * What the budgets need of a Redis connection: a `RedisConnection.Connection`
 * is one.
 *
 * @since 0.4.0
 * @category models
 */
export interface BudgetConnection {
  /** The key of one part of a model's state (`rpm`, `tpm`), on the model's Cluster slot. */
  readonly keyOf: (model: string, part: string) => string
  /** Whether commands can be sent now. */
  readonly isReady: () => boolean
  /** Calls `listener` each time the connection becomes ready, while the scope is open. */
  readonly onReady: (listener: () => void) => Effect.Effect<void, never, Scope.Scope>
  /** Runs a Lua script on `keys` with `args`. */
  readonly evalScript: (
    script: RedisConnection.Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>
  ) => Effect.Effect<unknown, RedisConnection.RedisUnavailable>
  /** Counts a failure the budgets absorbed in `ironlabsai.redis.errors`, and warns once per outage. */
  readonly report: (error: RedisConnection.RedisUnavailable) => Effect.Effect<void>
}

/**
 * The options of the shared budgets.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Refuse every call while Redis is down (fail closed), rather than go on with budgets in memory (default `false`). */
  readonly strict?: boolean | undefined
  /** The models' limits known up front (the config's `rate_limits`): their leases are taken at once, so that their first calls find one. */
  readonly limits?: Readonly<Record<string, Reliability.RateLimit>> | undefined
  /** How long a call that found its lease empty is told to wait: a refill's round trip (default 50 ms). */
  readonly refillLatency?: Duration.DurationInput | undefined
  /** How long a refill may go unanswered before calls that need it are served as if Redis were down (default 500 ms). */
  readonly refillTimeout?: Duration.DurationInput | undefined
  /** How long the budgets stay on local state after a failed script, and how long `strict` refuses a call, before Redis is tried again (default 1 s). */
  readonly retryInterval?: Duration.DurationInput | undefined
}

/** The global bucket's script. */
const takeScript = RedisConnection.script("budget.take", BudgetScript.take)

/** How long a bucket's key outlives the moment it is full again (when deleting it changes nothing). */
const keepMillis = 60_000

/** The shortest pause before asking an empty bucket again. */
const minPauseMillis = 10

/** A model's leases, one per budget its limit has. */
interface Leases {
  rpm?: Lease | undefined
  tpm?: Lease | undefined
}

/** A script's `{ grant, wait }` reply, or `undefined` if it is not one. */
const parseReply = (reply: unknown): readonly [number, number] | undefined => {
  if (!Array.isArray(reply) || reply.length !== 2) return undefined
  const grant = Number(reply[0])
  const wait = Number(reply[1])
  return Number.isFinite(grant) && Number.isFinite(wait) ? [grant, wait] : undefined
}

/**
 * Makes the shared budgets over `connection`. It does not wait for Redis: the
 * leases of `options.limits` are taken as soon as the connection is ready
 * (waiting at most a second for them when it already is). The scope's end
 * stops the refills and gives the leases back.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (
  connection: BudgetConnection,
  options: Options = {}
): Effect.Effect<RateBudget.Service, never, Scope.Scope> =>
  Effect.gen(function* () {
    const strict = options.strict ?? false
    const refillLatency = Duration.toMillis(options.refillLatency ?? Duration.millis(50))
    const refillTimeout = Duration.toMillis(options.refillTimeout ?? Duration.millis(500))
    const retryInterval = Duration.toMillis(options.retryInterval ?? Duration.seconds(1))

    const leases = new Map<string, Leases>()
    /** The budgets in memory, used while Redis is down (not strict). */
    const fallback = RateBudget.unsafeMakeMemory()
    /** The reservations taken from `fallback`: they are settled there. */
    const fromFallback = new WeakSet<RateBudget.Reservation>()
    /** After a failed script, local state until then (Clock millis). */
    let failedUntil = 0
    /** An outage this store has seen and not yet seen the end of. */
    let down = false

    // Given back last: the refills are interrupted first (the fiber set's finalizer runs before this one).
    yield* Effect.addFinalizer(() => giveBack)
    const run = yield* FiberSet.makeRuntime<never>()

    const outage = (error: RedisConnection.RedisUnavailable, now: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        down = true
        failedUntil = now + retryInterval
        return connection.report(error)
      })

    /** Takes the next lease from the global bucket, again after a pause while a call waits for more than it got. */
    const refillLoop = (model: string, kind: "rpm" | "tpm", lease: Lease): Effect.Effect<void> =>
      Effect.gen(function* () {
        while (true) {
          const want = lease.ask()
          if (want <= 0) return
          const least = lease.least()
          lease.sentAt = yield* Clock.currentTimeMillis
          const reply = yield* Effect.either(
            connection.evalScript(
              takeScript,
              [connection.keyOf(model, kind)],
              [lease.capacity, want, least, 0, keepMillis]
            )
          )
          const now = yield* Clock.currentTimeMillis
          lease.sentAt = undefined
          if (reply._tag === "Left") return yield* outage(reply.left, now)
          const parsed = parseReply(reply.right)
          if (parsed === undefined) {
            const error = new RedisConnection.RedisUnavailable({
              operation: takeScript.name,
              reason: "Reply",
              description: "unexpected reply"
            })
            return yield* outage(error, now)
          }
          down = false
          lease.granted(least, parsed[0], parsed[1], now)
          if (!lease.waiting) return
          yield* Effect.sleep(Math.max(minPauseMillis, lease.retryAt - now))
        }
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            lease.refilling = false
            lease.sentAt = undefined
          })
        )
      )

    /** Starts a refill of `lease` in the background, unless one is on its way or Redis is down. */
    const refill = (model: string, kind: "rpm" | "tpm", lease: Lease): Fiber.RuntimeFiber<void> | undefined => {
      if (lease.refilling || !connection.isReady()) return undefined
      lease.refilling = true
      // Started after the caller returns: a reservation never waits for Redis, nor for a command to be sent.
      return run(refillLoop(model, kind, lease), { immediate: false })
    }

    /** A model's leases for `limit`, made (and their first refill started) at its first sight. */
    const leasesOf = (
      model: string,
      limit: Reliability.RateLimit,
      started?: Array<Fiber.RuntimeFiber<void>>
    ): Leases => {
      let known = leases.get(model)
      if (known === undefined) {
        known = {}
        leases.set(model, known)
      }
      for (const kind of ["rpm", "tpm"] as const) {
        const capacity = limit[kind]
        if (capacity === undefined) continue
        const lease = known[kind]
        if (lease === undefined) {
          const made = new Lease(capacity)
          known[kind] = made
          const fiber = refill(model, kind, made)
          if (fiber !== undefined) started?.push(fiber)
        } else lease.resize(capacity)
      }
      return known
    }

    /** Redis is down: the budgets in memory, or (strict) a refusal until it is tried again. */
    const offline = (model: string, limit: Reliability.RateLimit, tokens: number, now: number): RateBudget.Reserved => {
      if (!down) {
        down = true
        run(
          connection.report(
            new RedisConnection.RedisUnavailable({
              operation: "budget",
              reason: "Offline",
              description: "Redis is not connected"
            })
          ),
          { immediate: false }
        )
      }
      if (strict) return { _tag: "Over", budget: limit.rpm === undefined ? "tpm" : "rpm", until: now + retryInterval }
      const reserved = fallback.reserve(model, limit, tokens, now)
      if (reserved._tag === "Reserved") fromFallback.add(reserved.reservation)
      return reserved
    }

    /** A refill sent and not answered in time: Redis is slow, which counts as down for a call that needs it. */
    const stalled = (lease: Lease, now: number): boolean =>
      lease.sentAt !== undefined && now - lease.sentAt > refillTimeout

    const reserve: RateBudget.Service["reserve"] = (model, limit, tokens, now) => {
      if (limit.rpm === undefined && limit.tpm === undefined) {
        return { _tag: "Reserved", reservation: { model, limit, tokens } }
      }
      if (!connection.isReady() || now < failedUntil) return offline(model, limit, tokens, now)
      const { rpm, tpm } = leasesOf(model, limit)
      for (const [kind, lease, amount] of [
        ["rpm", rpm, 1],
        ["tpm", tpm, tokens]
      ] as const) {
        if (lease === undefined || lease.covers(amount)) continue
        if (stalled(lease, now)) return offline(model, limit, tokens, now)
        lease.demand(amount)
        refill(model, kind, lease)
        return { _tag: "Over", budget: kind, until: lease.until(now, refillLatency) }
      }
      rpm?.take(1)
      tpm?.take(tokens)
      if (rpm?.short) refill(model, "rpm", rpm)
      if (tpm?.short) refill(model, "tpm", tpm)
      return { _tag: "Reserved", reservation: { model, limit, tokens } }
    }

    const settle: RateBudget.Service["settle"] = (reservation, tokens, now) => {
      if (fromFallback.has(reservation)) return fallback.settle(reservation, tokens, now)
      const tpm = leases.get(reservation.model)?.tpm
      if (tpm === undefined) return
      // Unused tokens stay with this process's lease; more than reserved is owed by it.
      tpm.adjust(reservation.tokens - tokens)
      if (tpm.short) refill(reservation.model, "tpm", tpm)
    }

    /** What each lease holds or owes, back to its bucket. */
    const giveBack: Effect.Effect<void> = Effect.suspend(() => {
      if (!connection.isReady()) return Effect.void
      const returns: Array<Effect.Effect<unknown, RedisConnection.RedisUnavailable>> = []
      for (const [model, known] of leases) {
        for (const kind of ["rpm", "tpm"] as const) {
          const lease = known[kind]
          const level = lease?.release() ?? 0
          if (lease === undefined || level === 0) continue
          returns.push(
            connection.evalScript(
              takeScript,
              [connection.keyOf(model, kind)],
              [lease.capacity, 0, 0, level, keepMillis]
            )
          )
        }
      }
      return Effect.forEach(returns, Effect.ignore, { concurrency: "unbounded", discard: true }).pipe(
        Effect.timeout(Duration.seconds(1)),
        Effect.ignore
      )
    })

    // Back from an outage: the leases resume from the global buckets.
    yield* connection.onReady(() => {
      failedUntil = 0
      down = false
      for (const [model, known] of leases) {
        if (known.rpm?.short) refill(model, "rpm", known.rpm)
        if (known.tpm?.short) refill(model, "tpm", known.tpm)
      }
    })

    // The known limits' first leases, waited for a moment when Redis is there.
    const prefetching: Array<Fiber.RuntimeFiber<void>> = []
    for (const [model, limit] of Object.entries(options.limits ?? {})) leasesOf(model, limit, prefetching)
    if (prefetching.length > 0) {
      yield* Fiber.awaitAll(prefetching).pipe(Effect.timeout(Duration.seconds(1)), Effect.ignore)
    }

    // A client's limits, told when it is made: leased at once (in the background), for its first calls.
    const expect: RateBudget.Service["expect"] = (model, limit) => {
      leasesOf(model, limit)
    }

    return { reserve, settle, expect }
  })

/**
 * The shared budgets as the core's `RateBudget`, over the `RedisConnection`
 * in context: a client made with it (`IronlabsClient.make`) takes its
 * `rate_limits` from Redis.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<RateBudget.RateBudget, never, RedisConnection.RedisConnection> =>
  Layer.scoped(
    RateBudget.RateBudget,
    Effect.flatMap(RedisConnection.RedisConnection, (connection) => make(connection, options))
  )
