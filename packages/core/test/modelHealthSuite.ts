/**
 * The model-health suite, run over any `ModelHealth.Service`: core's in-memory
 * one (ModelHealth.test.ts) and the Redis store's (packages/redis imports this
 * file by path: a dev dependency of core on a package above it would be a
 * cycle). A store passes it when it behaves as memory does, to the millisecond.
 */
import { assert, describe, it } from "@effect/vitest"
import { ModelHealth, type ProviderError } from "@ironlabsai/core"
import { Chunk, Clock, Duration, Effect, Fiber, Random, type Scope, Stream, TestClock } from "effect"

/** Makes a model health from a client's settings, in the test's scope. */
export type Make = (settings: {
  readonly health?: ModelHealth.Policy | undefined
  readonly retryBudget?: ModelHealth.RetryBudget | undefined
}) => Effect.Effect<ModelHealth.Service, never, Scope.Scope>

/** Runs every case of the model-health suite over the services `make` makes. */
export const modelHealthSuite = (name: string, make: Make): void => {
  /** A model health with the default policy (overridden by `policy`) and the default retry budget. */
  const memory = (policy: Partial<ModelHealth.Policy> = {}) =>
    make({
      health: { ...ModelHealth.defaultPolicy, ...policy },
      retryBudget: ModelHealth.defaultRetryBudget
    })

  const GPT = "openai/gpt-4o"
  const HAIKU = "anthropic/claude-3-5-haiku-20241022"

  /** Open periods are jittered by `0.8 + 0.4 * r`: with r = 0.5 the factor is exactly 1. */
  const unjittered = Effect.withRandom(Random.fixed([0.5]))

  /** Records a failure of `model` at the current time (a call that started at `startedAt`, default now). */
  const failure = (
    health: ModelHealth.Service,
    model: string,
    reason: ProviderError.Reason,
    options: { readonly startedAt?: number; readonly probe?: boolean; readonly holdFor?: Duration.DurationInput } = {}
  ) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      health.record({
        _tag: "Failure",
        model,
        startedAt: options.startedAt ?? now,
        probe: options.probe ?? false,
        reason,
        ...(options.holdFor === undefined ? {} : { holdFor: Duration.decode(options.holdFor) })
      })
    )

  /** Records a success of `model` at the current time. */
  const success = (health: ModelHealth.Service, model: string, options: { readonly probe?: boolean } = {}) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      health.record({ _tag: "Success", model, startedAt: now, probe: options.probe ?? false })
    )

  /** The status of one model in the snapshot. */
  const statusOf = (health: ModelHealth.Service, model: string) =>
    Effect.map(health.snapshot, (statuses) => {
      const found = statuses.find((s) => s.model === model)
      assert.isDefined(found, `${model} is not in the snapshot`)
      return found!
    })

  /** Opens the breaker of `model` at the current time with three `ServerError`s. */
  const trip = (health: ModelHealth.Service, model: string, reason: ProviderError.Reason = "ServerError") =>
    Effect.gen(function* () {
      assert.isUndefined(yield* failure(health, model, reason))
      assert.isUndefined(yield* failure(health, model, reason))
      return yield* failure(health, model, reason)
    })

  /** The counters of a model that `trip` opened: they explain the open until the model closes again. */
  const tripped = { consecutiveFailures: 3, recentCalls: 3, recentFailures: 3, opens: 1 } as const

  const healthyStatus = (model: string, counters: Partial<ModelHealth.ModelStatus> = {}): ModelHealth.ModelStatus => ({
    ...ModelHealth.healthy(model),
    ...counters
  })

  describe(`${name}: holds`, () => {
    it.scoped("a 429 with a stated wait holds the model exactly that long, without counting against the breaker", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* TestClock.setTime(1_000)
        const change = yield* failure(health, GPT, "RateLimited", { holdFor: "7 seconds" })
        assert.deepStrictEqual(change, { state: "held", until: 8_000, reason: "RateLimited" })
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          model: GPT,
          state: "held",
          until: 8_000,
          reason: "RateLimited",
          consecutiveFailures: 0,
          recentCalls: 0,
          recentFailures: 0,
          opens: 0,
          recentRequests: 0,
          recentRetries: 0
        })
        assert.deepStrictEqual(health.admit(GPT, 7_999), {
          _tag: "Skip",
          state: "held",
          until: 8_000,
          reason: "RateLimited"
        })
        assert.deepStrictEqual(health.admit(GPT, 8_000), { _tag: "Call" })
        yield* TestClock.setTime(8_000)
        assert.deepStrictEqual(yield* statusOf(health, GPT), healthyStatus(GPT, { recentRequests: 1 }))
      })
    )

    it.scoped("a 429 without a stated wait holds 1 s, then 2 s, then 4 s on repeats; a success resets it", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        assert.deepStrictEqual(yield* failure(health, GPT, "RateLimited"), {
          state: "held",
          until: 1_000,
          reason: "RateLimited"
        })
        yield* TestClock.setTime(1_000)
        assert.deepStrictEqual(yield* failure(health, GPT, "RateLimited"), {
          state: "held",
          until: 3_000,
          reason: "RateLimited"
        })
        yield* TestClock.setTime(3_000)
        assert.deepStrictEqual(yield* failure(health, GPT, "RateLimited"), {
          state: "held",
          until: 7_000,
          reason: "RateLimited"
        })
        yield* TestClock.setTime(7_000)
        yield* success(health, GPT)
        assert.deepStrictEqual(yield* failure(health, GPT, "RateLimited"), {
          state: "held",
          until: 8_000,
          reason: "RateLimited"
        })
      })
    )

    it.scoped("the growing default hold is capped at long_hold", () =>
      Effect.gen(function* () {
        const health = yield* memory({ longHold: Duration.seconds(5) })
        const holds: Array<number> = []
        for (let i = 0; i < 5; i++) {
          const now = yield* Clock.currentTimeMillis
          const change = yield* failure(health, GPT, "RateLimited")
          holds.push(change!.until - now)
          yield* TestClock.setTime(change!.until)
        }
        assert.deepStrictEqual(holds, [1_000, 2_000, 4_000, 5_000, 5_000])
      })
    )

    it.scoped("a stated wait longer than long_hold is capped at long_hold", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        const change = yield* failure(health, GPT, "RateLimited", { holdFor: "10 minutes" })
        assert.deepStrictEqual(change, { state: "held", until: 300_000, reason: "RateLimited" })
      })
    )

    for (const reason of ["Authentication", "PermissionDenied", "NotFound", "QuotaExceeded"] as const) {
      it.scoped(`${reason} holds the model for long_hold (5 min)`, () =>
        Effect.gen(function* () {
          const health = yield* memory()
          yield* TestClock.setTime(2_000)
          assert.deepStrictEqual(yield* failure(health, GPT, reason), { state: "held", until: 302_000, reason })
          assert.deepStrictEqual(health.admit(GPT, 301_999), { _tag: "Skip", state: "held", until: 302_000, reason })
          assert.deepStrictEqual(yield* statusOf(health, GPT), {
            ...healthyStatus(GPT),
            state: "held",
            until: 302_000,
            reason
          })
          assert.deepStrictEqual(health.admit(GPT, 302_000), { _tag: "Call" })
        })
      )
    }

    it.scoped("a re-hold that ends later extends the hold; one that would end sooner leaves it as it is", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        assert.deepStrictEqual(yield* failure(health, GPT, "RateLimited", { holdFor: "5 seconds" }), {
          state: "held",
          until: 5_000,
          reason: "RateLimited"
        })
        yield* TestClock.setTime(1_000)
        assert.deepStrictEqual(yield* failure(health, GPT, "RateLimited", { holdFor: "10 seconds" }), {
          state: "held",
          until: 11_000,
          reason: "RateLimited"
        })
        yield* TestClock.setTime(2_000)
        assert.isUndefined(yield* failure(health, GPT, "RateLimited", { holdFor: "1 second" }))
        const status = yield* statusOf(health, GPT)
        assert.strictEqual(status.until, 11_000)
        assert.strictEqual(status.state, "held")
      })
    )

    it.scoped("a short 429 never shortens a long auth hold, and keeps its reason", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* failure(health, GPT, "Authentication")
        yield* TestClock.setTime(10_000)
        assert.isUndefined(yield* failure(health, GPT, "RateLimited", { holdFor: "30 seconds" }))
        assert.isUndefined(yield* failure(health, GPT, "RateLimited"))
        const status = yield* statusOf(health, GPT)
        assert.deepStrictEqual([status.state, status.until, status.reason], ["held", 300_000, "Authentication"])
        // A long hold that ends later than a short one replaces it.
        assert.deepStrictEqual(yield* failure(health, HAIKU, "RateLimited", { holdFor: "30 seconds" }), {
          state: "held",
          until: 40_000,
          reason: "RateLimited"
        })
        assert.deepStrictEqual(yield* failure(health, HAIKU, "NotFound"), {
          state: "held",
          until: 310_000,
          reason: "NotFound"
        })
      })
    )

    for (const reason of ["InvalidRequest", "ResponseTooLarge"] as const) {
      it.scoped(`${reason} counts for nothing`, () =>
        Effect.gen(function* () {
          const health = yield* memory()
          for (let i = 0; i < 5; i++) assert.isUndefined(yield* failure(health, GPT, reason))
          assert.deepStrictEqual(yield* statusOf(health, GPT), healthyStatus(GPT))
          assert.deepStrictEqual(health.admit(GPT, 0), { _tag: "Call" })
        })
      )
    }
  })

  describe(`${name}: breaker`, () => {
    it.scoped("opens on 3 counted failures in a row, for open_for (10 s)", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        assert.isUndefined(yield* failure(health, GPT, "ServerError"))
        assert.isUndefined(yield* failure(health, GPT, "Timeout"))
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          consecutiveFailures: 2,
          recentCalls: 2,
          recentFailures: 2
        })
        assert.deepStrictEqual(yield* failure(health, GPT, "Overloaded"), {
          state: "open",
          until: 10_000,
          reason: "Overloaded"
        })
        // The counters stay as they were, to explain the open, until the model closes again.
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          state: "open",
          until: 10_000,
          reason: "Overloaded",
          consecutiveFailures: 3,
          recentCalls: 3,
          recentFailures: 3,
          opens: 1
        })
        assert.deepStrictEqual(health.admit(GPT, 9_999), {
          _tag: "Skip",
          state: "open",
          until: 10_000,
          reason: "Overloaded"
        })
      }).pipe(unjittered)
    )

    for (const reason of ["Overloaded", "ServerError", "Timeout", "Transport", "MalformedResponse"] as const) {
      it.scoped(`${reason} counts toward the breaker`, () =>
        Effect.gen(function* () {
          const health = yield* memory()
          assert.deepStrictEqual(yield* trip(health, GPT, reason), { state: "open", until: 10_000, reason })
        }).pipe(unjittered)
      )
    }

    it.scoped("a success in between resets the run of failures", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* failure(health, GPT, "ServerError")
        yield* failure(health, GPT, "ServerError")
        yield* success(health, GPT)
        assert.isUndefined(yield* failure(health, GPT, "ServerError"))
        assert.isUndefined(yield* failure(health, GPT, "ServerError"))
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          consecutiveFailures: 2,
          recentCalls: 5,
          recentFailures: 4
        })
      }).pipe(unjittered)
    )

    it.scoped("holds do not count toward the breaker", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* failure(health, GPT, "ServerError")
        yield* failure(health, GPT, "ServerError")
        yield* failure(health, GPT, "RateLimited", { holdFor: "1 second" })
        yield* failure(health, GPT, "Authentication")
        const status = yield* statusOf(health, GPT)
        assert.deepStrictEqual(
          [status.state, status.consecutiveFailures, status.recentCalls, status.recentFailures, status.opens],
          ["held", 2, 2, 2, 0]
        )
      })
    )

    it.scoped("the open period is jittered by 0.8 + 0.4 r, r drawn from Random", () =>
      Effect.gen(function* () {
        const at = (r: number) =>
          Effect.gen(function* () {
            const change = yield* trip(yield* memory(), GPT)
            return change!.until
          }).pipe(Effect.withRandom(Random.fixed([r])))
        assert.strictEqual(yield* at(0), 8_000)
        assert.strictEqual(yield* at(0.5), 10_000)
        assert.strictEqual(yield* at(0.75), 11_000)
        assert.strictEqual(yield* at(1), 12_000)
      })
    )

    it.scoped("open -> half-open at until: one probe; its success closes the breaker", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(10_000)
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          state: "half-open",
          reason: "ServerError",
          ...tripped
        })
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
        // Exactly one probe: everyone else skips the model without waiting, and no until is known.
        for (let i = 0; i < 5; i++) {
          assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Skip", state: "half-open", reason: "ServerError" })
        }
        yield* TestClock.setTime(10_500)
        yield* success(health, GPT, { probe: true })
        // A fresh start: the window holds only the probe's success.
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          recentCalls: 1,
          opens: 1,
          recentRequests: 1
        })
        assert.deepStrictEqual(health.admit(GPT, 10_500), { _tag: "Call" })
        assert.deepStrictEqual(health.admit(GPT, 10_500), { _tag: "Call" })
      }).pipe(unjittered)
    )

    it.scoped("the probe's counted failure reopens the breaker for twice as long (20 s)", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(12_000)
        assert.deepStrictEqual(health.admit(GPT, 12_000), { _tag: "Probe" })
        assert.deepStrictEqual(yield* failure(health, GPT, "Timeout", { probe: true }), {
          state: "open",
          until: 32_000,
          reason: "Timeout"
        })
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          state: "open",
          until: 32_000,
          reason: "Timeout",
          ...tripped,
          opens: 2,
          recentRequests: 1
        })
        assert.deepStrictEqual(health.admit(GPT, 31_999), {
          _tag: "Skip",
          state: "open",
          until: 32_000,
          reason: "Timeout"
        })
        assert.deepStrictEqual(health.admit(GPT, 32_000), { _tag: "Probe" })
      }).pipe(unjittered)
    )

    it.scoped("open periods double with each open in a row, capped at max_open_for (300 s)", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        const periods: Array<number> = []
        let change = yield* trip(health, GPT)
        periods.push(change!.until)
        for (let i = 0; i < 6; i++) {
          yield* TestClock.setTime(change!.until)
          assert.deepStrictEqual(health.admit(GPT, change!.until), { _tag: "Probe" })
          const reopened = yield* failure(health, GPT, "ServerError", { probe: true })
          periods.push(reopened!.until - change!.until)
          change = reopened
        }
        assert.deepStrictEqual(periods, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000])
        assert.strictEqual((yield* statusOf(health, GPT)).opens, 7)
      }).pipe(unjittered)
    )

    it.scoped("max_open_for caps the very first open period too", () =>
      Effect.gen(function* () {
        const health = yield* memory({ openFor: Duration.seconds(10), maxOpenFor: Duration.seconds(4) })
        assert.deepStrictEqual(yield* trip(health, GPT), { state: "open", until: 4_000, reason: "ServerError" })
      }).pipe(unjittered)
    )

    /** Opens at 0 (10 s), reopens at 10 s (20 s), closes at 30 s with opens = 2; then trips again at `at`. */
    const reopenAfterQuiet = (at: number) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(0)
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(10_000)
        health.admit(GPT, 10_000)
        yield* failure(health, GPT, "ServerError", { probe: true })
        yield* TestClock.setTime(30_000)
        assert.deepStrictEqual(health.admit(GPT, 30_000), { _tag: "Probe" })
        yield* success(health, GPT, { probe: true })
        assert.strictEqual((yield* statusOf(health, GPT)).opens, 2)
        yield* TestClock.setTime(at)
        const change = yield* trip(health, GPT)
        return [change!.until - at, (yield* statusOf(health, GPT)).opens] as const
      }).pipe(unjittered)

    it.scoped("k keeps counting when the breaker trips again within a window of closing", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* reopenAfterQuiet(59_999), [40_000, 3])
      })
    )

    it.scoped("k decays by one for each window (30 s) spent closed", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* reopenAfterQuiet(60_000), [20_000, 2])
        assert.deepStrictEqual(yield* reopenAfterQuiet(90_000), [10_000, 1])
        assert.deepStrictEqual(yield* reopenAfterQuiet(300_000), [10_000, 1])
      })
    )

    it.scoped("opens on a failure rate of 0.5 over 10 calls, with no 3 failures in a row", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        for (let i = 0; i < 9; i++) {
          yield* TestClock.setTime(i * 1_000)
          if (i % 2 === 0) yield* success(health, GPT)
          else assert.isUndefined(yield* failure(health, GPT, "ServerError"))
        }
        yield* TestClock.setTime(9_000)
        assert.deepStrictEqual(yield* failure(health, GPT, "ServerError"), {
          state: "open",
          until: 19_000,
          reason: "ServerError"
        })
      }).pipe(unjittered)
    )

    it.scoped("9 calls never trip the failure rate, even with 5 failures", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        for (let i = 0; i < 9; i++) {
          yield* TestClock.setTime(i * 1_000)
          if (i % 2 === 0) assert.isUndefined(yield* failure(health, GPT, "ServerError"))
          else yield* success(health, GPT)
        }
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          consecutiveFailures: 1,
          recentCalls: 9,
          recentFailures: 5
        })
      }).pipe(unjittered)
    )

    it.scoped("a failure rate under 0.5 does not trip (4 failures in 10 calls)", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        const pattern = [true, false, true, true, false, true, false, true, true, false]
        for (const ok of pattern) {
          if (ok) yield* success(health, GPT)
          else assert.isUndefined(yield* failure(health, GPT, "ServerError"))
        }
        const status = yield* statusOf(health, GPT)
        assert.deepStrictEqual([status.state, status.recentCalls, status.recentFailures], ["healthy", 10, 4])
      }).pipe(unjittered)
    )

    /** 9 calls with 5 failures (none in a row) at 0, then a success and a failure at `at`. */
    const slide = (at: number) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(0)
        const health = yield* memory()
        for (let i = 0; i < 9; i++) {
          if (i % 2 === 0) yield* failure(health, GPT, "ServerError")
          else yield* success(health, GPT)
        }
        yield* TestClock.setTime(at)
        const before = yield* statusOf(health, GPT)
        yield* success(health, GPT)
        const change = yield* failure(health, GPT, "ServerError")
        return { before, change, after: yield* statusOf(health, GPT) }
      }).pipe(unjittered)

    it.scoped("the failure-rate window slides: calls older than 30 s no longer count", () =>
      Effect.gen(function* () {
        const inside = yield* slide(29_999)
        assert.deepStrictEqual([inside.before.recentCalls, inside.before.recentFailures], [9, 5])
        assert.deepStrictEqual(inside.change, { state: "open", until: 39_999, reason: "ServerError" })

        const outside = yield* slide(30_000)
        assert.deepStrictEqual([outside.before.recentCalls, outside.before.recentFailures], [0, 0])
        assert.isUndefined(outside.change)
        assert.deepStrictEqual(outside.after, {
          ...healthyStatus(GPT),
          consecutiveFailures: 1,
          recentCalls: 2,
          recentFailures: 1
        })
      })
    )

    it.scoped("failures of other calls while open or half-open change nothing", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(5_000)
        // Started after the open (under on_all_unavailable: probe), and not the probe: it does not extend the open period.
        assert.isUndefined(yield* failure(health, GPT, "ServerError", { startedAt: 4_000 }))
        assert.isUndefined(yield* failure(health, GPT, "Timeout", { startedAt: 5_000 }))
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          state: "open",
          until: 10_000,
          reason: "ServerError",
          ...tripped
        })
        yield* TestClock.setTime(10_000)
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
        assert.isUndefined(yield* failure(health, GPT, "ServerError", { startedAt: 10_000 }))
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Skip", state: "half-open", reason: "ServerError" })
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          state: "half-open",
          reason: "ServerError",
          ...tripped,
          recentRequests: 1
        })
      }).pipe(unjittered)
    )

    it.scoped("a failure of a call that started before the breaker opened does not extend it", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* TestClock.setTime(1_000)
        yield* trip(health, GPT)
        yield* TestClock.setTime(1_500)
        assert.isUndefined(yield* failure(health, GPT, "Timeout", { startedAt: 500 }))
        const status = yield* statusOf(health, GPT)
        assert.deepStrictEqual(
          [status.state, status.until, status.reason, status.opens],
          ["open", 11_000, "ServerError", 1]
        )
      }).pipe(unjittered)
    )

    it.scoped("a failure of a call that started before the breaker closed again is stale", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(10_000)
        health.admit(GPT, 10_000)
        yield* success(health, GPT, { probe: true })
        yield* TestClock.setTime(11_000)
        assert.isUndefined(yield* failure(health, GPT, "ServerError", { startedAt: 9_000 }))
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          recentCalls: 1,
          opens: 1,
          recentRequests: 1
        })
      }).pipe(unjittered)
    )

    it.scoped("any success closes the breaker, even while open", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(4_000)
        yield* success(health, GPT)
        const status = yield* statusOf(health, GPT)
        assert.deepStrictEqual([status.state, status.until, status.consecutiveFailures], ["healthy", undefined, 0])
        assert.deepStrictEqual(health.admit(GPT, 4_000), { _tag: "Call" })
      }).pipe(unjittered)
    )

    it.scoped("a cancelled probe hands the permit back and counts nothing", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(10_000)
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
        assert.isUndefined(yield* health.record({ _tag: "Cancelled", model: GPT, probe: true }))
        assert.deepStrictEqual(yield* statusOf(health, GPT), {
          ...healthyStatus(GPT),
          state: "half-open",
          reason: "ServerError",
          ...tripped,
          recentRequests: 1
        })
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
      }).pipe(unjittered)
    )

    it.scoped(
      "the probe's permit is a lease (default open_for): a probe that never reports back frees it when it ends",
      () =>
        Effect.gen(function* () {
          const health = yield* memory()
          yield* trip(health, GPT)
          assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
          assert.deepStrictEqual(health.admit(GPT, 19_999), { _tag: "Skip", state: "half-open", reason: "ServerError" })
          assert.deepStrictEqual(health.admit(GPT, 20_000), { _tag: "Probe" })
          // A lease given by the caller (the router gives the model's timeout).
          assert.deepStrictEqual(health.admit(GPT, 30_000, { probeLease: Duration.seconds(2) }), { _tag: "Probe" })
          assert.deepStrictEqual(health.admit(GPT, 31_999), { _tag: "Skip", state: "half-open", reason: "ServerError" })
          assert.deepStrictEqual(health.admit(GPT, 32_000), { _tag: "Probe" })
        }).pipe(unjittered)
    )

    it.scoped("a cancelled call that is not the probe does not hand back someone else's permit", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(10_000)
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
        yield* health.record({ _tag: "Cancelled", model: GPT, probe: false })
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Skip", state: "half-open", reason: "ServerError" })
      }).pipe(unjittered)
    )

    it.scoped("ignoreBreaker admits open and half-open models as plain calls, never held ones", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        assert.deepStrictEqual(health.admit(GPT, 1_000, { ignoreBreaker: true }), { _tag: "Call" })
        yield* TestClock.setTime(10_000)
        assert.deepStrictEqual(health.admit(GPT, 10_000, { ignoreBreaker: true }), { _tag: "Call" })
        // The permit was not taken by those calls.
        assert.deepStrictEqual(health.admit(GPT, 10_000), { _tag: "Probe" })
        yield* failure(health, HAIKU, "Authentication")
        assert.deepStrictEqual(health.admit(HAIKU, 10_000, { ignoreBreaker: true }), {
          _tag: "Skip",
          state: "held",
          until: 310_000,
          reason: "Authentication"
        })
      }).pipe(unjittered)
    )

    it.scoped("a hold that outlasts an open breaker shows as held until the hold ends", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        yield* TestClock.setTime(1_000)
        yield* failure(health, GPT, "RateLimited", { holdFor: "20 seconds" })
        assert.deepStrictEqual(health.admit(GPT, 1_000), {
          _tag: "Skip",
          state: "held",
          until: 21_000,
          reason: "RateLimited"
        })
        const status = yield* statusOf(health, GPT)
        assert.deepStrictEqual([status.state, status.until, status.reason], ["held", 21_000, "RateLimited"])
      }).pipe(unjittered)
    )

    it.scoped("models are independent", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* trip(health, GPT)
        assert.deepStrictEqual(health.admit(HAIKU, 0), { _tag: "Call" })
        assert.deepStrictEqual(yield* statusOf(health, HAIKU), healthyStatus(HAIKU, { recentRequests: 1 }))
      }).pipe(unjittered)
    )
  })

  describe(`${name}: retry budget`, () => {
    it.scoped("allows min_per_second * window retries with no requests: 10, then refuses", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        const granted = Array.from({ length: 12 }, () => health.withdrawRetry(GPT, 0))
        assert.deepStrictEqual(granted, [...Array(10).fill(true), false, false])
        assert.deepStrictEqual(yield* statusOf(health, GPT), healthyStatus(GPT, { recentRetries: 10 }))
      })
    )

    it.scoped("each request adds ratio (0.2) of a retry: 20 requests allow 14 retries", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        for (let i = 0; i < 20; i++) assert.deepStrictEqual(health.admit(GPT, 0), { _tag: "Call" })
        let granted = 0
        while (health.withdrawRetry(GPT, 0)) granted++
        assert.strictEqual(granted, 14)
        assert.deepStrictEqual(
          yield* statusOf(health, GPT),
          healthyStatus(GPT, { recentRequests: 20, recentRetries: 14 })
        )
      })
    )

    it.scoped("retries and skips are not requests: only a plain admission deposits", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        for (let i = 0; i < 5; i++) health.admit(GPT, 0, { retry: true })
        yield* failure(health, HAIKU, "Authentication")
        for (let i = 0; i < 5; i++) health.admit(HAIKU, 0)
        assert.strictEqual((yield* statusOf(health, GPT)).recentRequests, 0)
        assert.strictEqual((yield* statusOf(health, HAIKU)).recentRequests, 0)
      })
    )

    it.scoped("the budget refills as its 10 s window slides", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        for (let i = 0; i < 10; i++) assert.isTrue(health.withdrawRetry(GPT, 0))
        assert.isFalse(health.withdrawRetry(GPT, 5_000))
        assert.isFalse(health.withdrawRetry(GPT, 9_999))
        assert.isTrue(health.withdrawRetry(GPT, 10_000))
        yield* TestClock.setTime(10_000)
        assert.strictEqual((yield* statusOf(health, GPT)).recentRetries, 1)
      })
    )

    it.scoped("the budget is per model", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        for (let i = 0; i < 10; i++) health.withdrawRetry(GPT, 0)
        assert.isFalse(health.withdrawRetry(GPT, 0))
        assert.isTrue(health.withdrawRetry(HAIKU, 0))
      })
    )

    it.scoped("a custom budget: ratio 0.5, no floor", () =>
      Effect.gen(function* () {
        const health = yield* make({
          retryBudget: { ratio: 0.5, window: Duration.seconds(10), minPerSecond: 0 }
        })
        assert.isFalse(health.withdrawRetry(GPT, 0))
        for (let i = 0; i < 4; i++) health.admit(GPT, 0)
        assert.deepStrictEqual(
          Array.from({ length: 3 }, () => health.withdrawRetry(GPT, 0)),
          [true, true, false]
        )
      })
    )

    it.scoped("without a budget every retry is allowed; without a policy nothing is held or opened", () =>
      Effect.gen(function* () {
        const health = yield* make({})
        for (let i = 0; i < 100; i++) assert.isTrue(health.withdrawRetry(GPT, 0))
        for (let i = 0; i < 5; i++) assert.isUndefined(yield* failure(health, GPT, "ServerError"))
        assert.isUndefined(yield* failure(health, GPT, "Authentication"))
        assert.deepStrictEqual(health.admit(GPT, 0), { _tag: "Call" })
      })
    )

    it.scoped("a budget without a policy still counts requests and retries, and never holds", () =>
      Effect.gen(function* () {
        const health = yield* make({ retryBudget: ModelHealth.defaultRetryBudget })
        yield* failure(health, GPT, "Authentication")
        for (let i = 0; i < 5; i++) assert.deepStrictEqual(health.admit(GPT, 0), { _tag: "Call" })
        health.withdrawRetry(GPT, 0)
        assert.deepStrictEqual(yield* health.snapshot, [healthyStatus(GPT, { recentRequests: 5, recentRetries: 1 })])
      })
    )
  })

  describe(`${name}: snapshot and changes`, () => {
    it.scoped("the snapshot lists every model seen, in the order first seen", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        assert.deepStrictEqual(yield* health.snapshot, [])
        health.admit(HAIKU, 0)
        yield* failure(health, GPT, "NotFound")
        assert.deepStrictEqual(
          (yield* health.snapshot).map((s) => [s.model, s.state]),
          [
            [HAIKU, "healthy"],
            [GPT, "held"]
          ]
        )
      })
    )

    it.scoped("changes publishes each transition, time-driven ones dated when they happened", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        const collected = yield* Effect.fork(Stream.runCollect(Stream.take(health.changes, 5)))
        yield* TestClock.adjust(0)
        yield* trip(health, GPT)
        // Nobody looks until 12 s: the open period ended at 10 s.
        yield* TestClock.setTime(12_000)
        assert.deepStrictEqual(health.admit(GPT, 12_000), { _tag: "Probe" })
        yield* failure(health, GPT, "Timeout", { probe: true })
        yield* TestClock.setTime(32_000)
        assert.deepStrictEqual(health.admit(GPT, 32_000), { _tag: "Probe" })
        yield* success(health, GPT, { probe: true })
        const transitions = Chunk.toReadonlyArray(yield* Fiber.join(collected))
        assert.deepStrictEqual(transitions, [
          { model: GPT, from: "healthy", to: "open", at: 0, until: 10_000, reason: "ServerError" },
          { model: GPT, from: "open", to: "half-open", at: 10_000, reason: "ServerError" },
          { model: GPT, from: "half-open", to: "open", at: 12_000, until: 32_000, reason: "Timeout" },
          { model: GPT, from: "open", to: "half-open", at: 32_000, reason: "Timeout" },
          { model: GPT, from: "half-open", to: "healthy", at: 32_000 }
        ])
      }).pipe(unjittered)
    )

    it.scoped("a hold's end is published when next observed, dated when the hold ran out", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        yield* failure(health, HAIKU, "Authentication")
        const collected = yield* Effect.fork(Stream.runCollect(Stream.take(health.changes, 3)))
        yield* TestClock.adjust(0)
        yield* TestClock.setTime(1_000)
        yield* failure(health, GPT, "RateLimited", { holdFor: "2 seconds" })
        yield* TestClock.setTime(400_000)
        yield* health.snapshot
        const transitions = Chunk.toReadonlyArray(yield* Fiber.join(collected))
        // HAIKU's hold began before the subscription: only its end is seen.
        assert.deepStrictEqual(transitions, [
          { model: GPT, from: "healthy", to: "held", at: 1_000, until: 3_000, reason: "RateLimited" },
          { model: HAIKU, from: "held", to: "healthy", at: 300_000 },
          { model: GPT, from: "held", to: "healthy", at: 3_000 }
        ])
      })
    )

    it.scoped("a re-hold that does not change the state publishes nothing", () =>
      Effect.gen(function* () {
        const health = yield* memory()
        const collected = yield* Effect.fork(Stream.runCollect(Stream.take(health.changes, 2)))
        yield* TestClock.adjust(0)
        yield* failure(health, GPT, "RateLimited", { holdFor: "2 seconds" })
        yield* failure(health, GPT, "RateLimited", { holdFor: "5 seconds" })
        yield* failure(health, GPT, "RateLimited", { holdFor: "1 second" })
        yield* TestClock.setTime(5_000)
        yield* health.snapshot
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(collected)), [
          { model: GPT, from: "healthy", to: "held", at: 0, until: 2_000, reason: "RateLimited" },
          { model: GPT, from: "held", to: "healthy", at: 5_000 }
        ])
      })
    )
  })
}
