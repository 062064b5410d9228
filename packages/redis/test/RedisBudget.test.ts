/**
 * The shared rate budgets (DESIGN §9, §11): the lease arithmetic and the
 * store's local behaviour under `TestClock` with a scripted connection, then
 * the same budget suite against memory and against a real redis-server,
 * three processes sharing one budget, and Redis going away and coming back.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { RateBudget, type Reliability } from "@ironlabsai/core"
import { Effect, Exit, Logger, LogLevel, Metric, Scope, TestClock } from "effect"
import { inject } from "vitest"
import { Lease, leaseSize } from "../src/internal/budgetLease.js"
import * as RedisBudget from "../src/RedisBudget.js"
import * as RedisConnection from "../src/RedisConnection.js"
import { findRedisServer, freePort, startRedisServer } from "@ironlabsai/testing/RedisServer"

const GPT = "openai/gpt-4o"

// --- The lease ---------------------------------------------------------------------------------------------------

describe("the lease", () => {
  it("is one second of the limit, at least 1", () => {
    assert.strictEqual(leaseSize(60), 1)
    assert.strictEqual(leaseSize(30), 1)
    assert.strictEqual(leaseSize(600), 10)
    assert.strictEqual(leaseSize(100_000), 1667)
  })

  it("asks for a lease, or for what a waiting call needs, at most a full bucket", () => {
    const lease = new Lease(6000)
    assert.strictEqual(lease.ask(), 100)
    lease.demand(700)
    assert.strictEqual(lease.ask(), 700)
    assert.strictEqual(lease.least(), 700)
    lease.granted(700, 300, 4000, 1000)
    // 300 of 700: the call still waits, and the bucket has the rest in 4 s.
    assert.isTrue(lease.waiting)
    assert.strictEqual(lease.until(1000, 50), 5000)
    assert.strictEqual(lease.ask(), 400)
    assert.strictEqual(lease.least(), 400)
    lease.granted(400, 400, 0, 2000)
    assert.isFalse(lease.waiting)
    assert.strictEqual(lease.until(2000, 50), 2050)
    lease.demand(100_000)
    assert.strictEqual(lease.need, 6000)
  })

  it("a refill ahead of time asks for a lease, and is of use with one", () => {
    const lease = new Lease(600)
    lease.granted(1, 4, 0, 0)
    assert.strictEqual(lease.ask(), 6)
    assert.strictEqual(lease.least(), 1)
    // Nothing granted: the bucket has one more in 100 ms.
    lease.granted(1, 0, 100, 0)
    assert.strictEqual(lease.retryAt, 100)
    lease.granted(1, 1, 0, 50)
    assert.strictEqual(lease.retryAt, 0)
  })

  it("a call larger than the whole budget needs only a full one; the rest is owed and asked for", () => {
    const lease = new Lease(100)
    lease.granted(100, 100, 0, 0)
    assert.isTrue(lease.covers(500))
    lease.take(500)
    assert.strictEqual(lease.level, -400)
    assert.isTrue(lease.short)
    // The debt, and a lease: but never more than a full bucket at once.
    assert.strictEqual(lease.ask(), 100)
  })

  it("is short below half a lease; a settled call gives back or owes", () => {
    const lease = new Lease(600)
    lease.granted(10, 10, 0, 0)
    lease.take(5)
    assert.isFalse(lease.short)
    lease.take(1)
    assert.isTrue(lease.short)
    lease.adjust(3)
    assert.isFalse(lease.short)
    assert.strictEqual(lease.release(), 7)
    assert.strictEqual(lease.level, 0)
  })
})

// --- The store, with a scripted connection -----------------------------------------------------------------------

interface Scripted {
  readonly connection: RedisBudget.BudgetConnection
  readonly calls: Array<ReadonlyArray<string | number>>
  readonly reports: Array<RedisConnection.RedisUnavailable>
  ready: boolean
  /** The next replies: a grant and a wait, a failure, or no answer at all. */
  reply: (args: ReadonlyArray<string | number>) => Effect.Effect<unknown, RedisConnection.RedisUnavailable>
  readyListeners: Array<() => void>
}

const scripted = (ready: boolean): Scripted => {
  const state: Scripted = {
    calls: [],
    reports: [],
    ready,
    readyListeners: [],
    // Grants all that is asked.
    reply: (args) => Effect.succeed([Number(args[1]), 0]),
    connection: {
      keyOf: (model, part) => `test:{${model}}:${part}`,
      isReady: () => state.ready,
      onReady: (listener) =>
        Effect.acquireRelease(
          Effect.sync(() => state.readyListeners.push(listener)),
          () => Effect.void
        ),
      evalScript: (_script, _keys, args) =>
        Effect.suspend(() => {
          state.calls.push(args)
          return state.reply(args)
        }),
      report: (error) => Effect.sync(() => state.reports.push(error))
    }
  }
  return state
}

const unavailable = new RedisConnection.RedisUnavailable({
  operation: "budget.take",
  reason: "Timeout",
  description: "x"
})

/** Lets the store's background fibers run. */
const settleFibers = Effect.gen(function* () {
  for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
  yield* TestClock.adjust(0)
})

describe("the store, on its own", () => {
  it.scoped("a reservation never waits on Redis: the first finds no lease, a refill follows in the background", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      const budget = yield* RedisBudget.make(redis.connection)
      const limit = { rpm: 600 }
      assert.deepStrictEqual(budget.reserve(GPT, limit, 10, 0), { _tag: "Over", budget: "rpm", until: 50 })
      yield* settleFibers
      // capacity, wanted, the least of use, given back, keep
      assert.deepStrictEqual(redis.calls[0], [600, 10, 1, 0, 60_000])
      for (let i = 0; i < 10; i++) assert.strictEqual(budget.reserve(GPT, limit, 10, 0)._tag, "Reserved")
      yield* settleFibers
      // Below half a lease the next was asked for, ahead of time.
      assert.strictEqual(redis.calls.length, 2)
    })
  )

  it.scoped("the known limits' leases are taken when the store is made", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      const budget = yield* RedisBudget.make(redis.connection, { limits: { [GPT]: { rpm: 60, tpm: 6000 } } })
      assert.deepStrictEqual(
        redis.calls.map((args) => args.slice(0, 2)),
        [
          [60, 1],
          [6000, 100]
        ]
      )
      assert.strictEqual(budget.reserve(GPT, { rpm: 60, tpm: 6000 }, 100, 0)._tag, "Reserved")
    })
  )

  it.scoped("an empty global bucket: refused until it has room, as Redis says, and the refill waits for it", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      redis.reply = () => Effect.succeed([0, 1000])
      const budget = yield* RedisBudget.make(redis.connection)
      const limit = { rpm: 60 }
      budget.reserve(GPT, limit, 0, 0)
      yield* settleFibers
      assert.deepStrictEqual(budget.reserve(GPT, limit, 0, 0), { _tag: "Over", budget: "rpm", until: 1000 })
      redis.reply = (args) => Effect.succeed([Number(args[1]), 0])
      yield* TestClock.adjust(1000)
      yield* settleFibers
      assert.strictEqual(redis.calls.length, 2)
      assert.strictEqual(budget.reserve(GPT, limit, 0, 1000)._tag, "Reserved")
    })
  )

  it.scoped("settle: unused tokens go back to the lease, more than reserved is owed by it", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      const limit = { tpm: 6000 }
      const budget = yield* RedisBudget.make(redis.connection, { limits: { [GPT]: limit } })
      // From now on the bucket is empty, and what each refill asks for shows the lease's level.
      redis.reply = () => Effect.succeed([0, 0])
      const first = budget.reserve(GPT, limit, 80, 0)
      assert.strictEqual(first._tag, "Reserved")
      if (first._tag === "Reserved") budget.settle(first.reservation, 20, 0)
      yield* settleFibers
      // 100 - 80 + 60 = 80 in the lease: 20 short of a lease.
      assert.deepStrictEqual(redis.calls[1]?.slice(0, 2), [6000, 20])
      const second = budget.reserve(GPT, limit, 80, 0)
      assert.strictEqual(second._tag, "Reserved")
      if (second._tag === "Reserved") budget.settle(second.reservation, 280, 0)
      yield* settleFibers
      // 0 - 200: owed, and the next refill asks for the debt and a lease.
      assert.deepStrictEqual(redis.calls[2]?.slice(0, 2), [6000, 300])
    })
  )

  it.scoped("Redis down, not strict: the budgets go on in memory, reported once", () =>
    Effect.gen(function* () {
      const redis = scripted(false)
      const budget = yield* RedisBudget.make(redis.connection)
      const memory = RateBudget.unsafeMakeMemory()
      const limit = { rpm: 2, tpm: 1000 }
      for (const tokens of [600, 300, 100]) {
        assert.deepStrictEqual(budget.reserve(GPT, limit, tokens, 0), memory.reserve(GPT, limit, tokens, 0))
      }
      yield* settleFibers
      assert.strictEqual(redis.calls.length, 0)
      assert.deepStrictEqual(
        redis.reports.map((e) => [e.operation, e.reason]),
        [["budget", "Offline"]]
      )
    })
  )

  it.scoped("Redis down, strict: every call is refused until Redis is tried again", () =>
    Effect.gen(function* () {
      const redis = scripted(false)
      const budget = yield* RedisBudget.make(redis.connection, { strict: true, retryInterval: "2 seconds" })
      assert.deepStrictEqual(budget.reserve(GPT, { tpm: 100 }, 10, 5), { _tag: "Over", budget: "tpm", until: 2005 })
      assert.deepStrictEqual(budget.reserve(GPT, { rpm: 1, tpm: 100 }, 10, 5), {
        _tag: "Over",
        budget: "rpm",
        until: 2005
      })
      // No limit, nothing to refuse.
      assert.strictEqual(budget.reserve(GPT, {}, 10, 5)._tag, "Reserved")
    })
  )

  it.scoped("a failed script: local state for the retry interval, then Redis again", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      redis.reply = () => Effect.fail(unavailable)
      const budget = yield* RedisBudget.make(redis.connection, { limits: { [GPT]: { rpm: 60 } } })
      assert.deepStrictEqual(redis.reports, [unavailable])
      // On the in-memory bucket: 60 at once.
      for (let i = 0; i < 60; i++) assert.strictEqual(budget.reserve(GPT, { rpm: 60 }, 0, 0)._tag, "Reserved")
      assert.strictEqual(redis.calls.length, 1)
      redis.reply = (args) => Effect.succeed([Number(args[1]), 0])
      yield* TestClock.adjust("1 second")
      assert.strictEqual(budget.reserve(GPT, { rpm: 60 }, 0, 1000)._tag, "Over")
      yield* settleFibers
      assert.strictEqual(budget.reserve(GPT, { rpm: 60 }, 0, 1000)._tag, "Reserved")
    })
  )

  it.scoped("a refill not answered in time: a call that needs it is served as if Redis were down", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      redis.reply = () => Effect.never
      const budget = yield* RedisBudget.make(redis.connection)
      assert.strictEqual(budget.reserve(GPT, { rpm: 60 }, 0, 0)._tag, "Over")
      yield* settleFibers
      assert.strictEqual(budget.reserve(GPT, { rpm: 60 }, 0, 500)._tag, "Over")
      assert.strictEqual(budget.reserve(GPT, { rpm: 60 }, 0, 501)._tag, "Reserved")
    })
  )

  it.effect("the scope's end gives back what the leases hold or owe", () =>
    Effect.gen(function* () {
      const redis = scripted(true)
      const scope = yield* Scope.make()
      const limit = { rpm: 600, tpm: 6000 }
      const budget = yield* Scope.extend(RedisBudget.make(redis.connection, { limits: { [GPT]: limit } }), scope)
      const reserved = budget.reserve(GPT, limit, 50, 0)
      // The bucket is empty now: the refill after the settle brings nothing.
      redis.reply = () => Effect.succeed([0, 0])
      if (reserved._tag === "Reserved") budget.settle(reserved.reservation, 250, 0)
      yield* settleFibers
      redis.calls.length = 0
      yield* Scope.close(scope, Exit.void)
      // Given back: 9 requests, and 100 - 250 tokens (owed).
      assert.deepStrictEqual(
        redis.calls.map((args) => [args[0], args[1], args[3]]),
        [
          [600, 0, 9],
          [6000, 0, -150]
        ]
      )
    })
  )
})

// --- Against a real Redis ------------------------------------------------------------------------------------------

const url = inject("redisUrl")
const uniquePrefix = () => `test-${randomUUID()}`

/** Waits (real time) until the connection is ready. */
const whenReady = (connection: RedisConnection.Connection, ready = true) =>
  Effect.gen(function* () {
    for (let i = 0; i < 500; i++) {
      if (connection.isReady() === ready) return
      yield* Effect.sleep(10)
    }
    assert.fail(`the connection did not become ${ready ? "ready" : "unready"}`)
  })

const connect = (options: { readonly prefix: string; readonly url?: string }) =>
  Effect.gen(function* () {
    const connection = yield* RedisConnection.make({ url: options.url ?? url, prefix: options.prefix })
    yield* whenReady(connection)
    return connection
  })

const shared = (prefix: string, options: RedisBudget.Options = {}) =>
  Effect.flatMap(connect({ prefix }), (connection) => RedisBudget.make(connection, options))

/**
 * Reserves at the real time, again after a refill's round trip when the
 * lease was empty (an answer within `short` ms); a longer refusal is the answer.
 */
const reserveSoon = (
  budget: RateBudget.Service,
  model: string,
  limit: Reliability.RateLimit,
  tokens: number,
  short = 60
) =>
  Effect.gen(function* () {
    while (true) {
      const now = Date.now()
      const reserved = budget.reserve(model, limit, tokens, now)
      if (reserved._tag === "Reserved" || reserved.until - now > short) return reserved
      yield* Effect.sleep(2)
    }
  })

interface Store {
  readonly name: string
  readonly make: (
    limits: Record<string, Reliability.RateLimit>
  ) => Effect.Effect<RateBudget.Service, never, Scope.Scope>
}

const stores: ReadonlyArray<Store> = [
  { name: "in memory", make: () => Effect.sync(() => RateBudget.unsafeMakeMemory()) },
  { name: "in Redis", make: (limits) => shared(uniquePrefix(), { limits }) }
]

for (const store of stores) {
  describe(`the budget suite, ${store.name}`, () => {
    it.scopedLive("rpm: the requests of a minute, then refused until one more has refilled", () =>
      Effect.gen(function* () {
        const limit = { rpm: 6 }
        const budget = yield* store.make({ [GPT]: limit })
        const start = Date.now()
        for (let i = 0; i < 6; i++) assert.strictEqual((yield* reserveSoon(budget, GPT, limit, 0))._tag, "Reserved")
        const over = yield* reserveSoon(budget, GPT, limit, 0)
        assert.strictEqual(over._tag, "Over")
        if (over._tag === "Over") {
          assert.strictEqual(over.budget, "rpm")
          // One request refills every 10 s.
          assert.approximately(over.until - start, 10_000, 500)
        }
      })
    )

    it.scopedLive("refill over time: one more request a second at 60 rpm", () =>
      Effect.gen(function* () {
        const limit = { rpm: 60 }
        const budget = yield* store.make({ [GPT]: limit })
        let admitted = 0
        let over: RateBudget.Reserved | undefined
        while (over === undefined) {
          const reserved = yield* reserveSoon(budget, GPT, limit, 0)
          if (reserved._tag === "Reserved") admitted++
          else over = reserved
        }
        assert.strictEqual(admitted, 60)
        assert.strictEqual(over._tag, "Over")
        if (over._tag === "Over") {
          assert.isAtMost(over.until - Date.now(), 1000)
          yield* Effect.sleep(Math.max(0, over.until - Date.now()) + 20)
        }
        assert.strictEqual((yield* reserveSoon(budget, GPT, limit, 0, 200))._tag, "Reserved")
        assert.strictEqual((yield* reserveSoon(budget, GPT, limit, 0))._tag, "Over")
      })
    )

    it.scopedLive("tpm: the estimate is reserved, unused tokens come back, a larger estimate waits", () =>
      Effect.gen(function* () {
        const limit = { tpm: 1200 }
        const budget = yield* store.make({ [GPT]: limit })
        const first = yield* reserveSoon(budget, GPT, limit, 600)
        const second = yield* reserveSoon(budget, GPT, limit, 600)
        assert.strictEqual(first._tag, "Reserved")
        assert.strictEqual(second._tag, "Reserved")
        const third = yield* reserveSoon(budget, GPT, limit, 600)
        assert.strictEqual(third._tag, "Over")
        // 600 tokens at 1,200 a minute: about 30 s (less what refilled meanwhile).
        if (third._tag === "Over") assert.approximately(third.until - Date.now(), 30_000, 2_000)
        if (first._tag === "Reserved") budget.settle(first.reservation, 0, Date.now())
        assert.strictEqual((yield* reserveSoon(budget, GPT, limit, 600))._tag, "Reserved")
      })
    )
  })
}

describe("one budget, three processes", () => {
  /** Reserves as fast as it can until `end` (real time): how many calls (and tokens) were admitted. */
  const hammer = (budget: RateBudget.Service, limit: Reliability.RateLimit, tokens: number, end: number) =>
    Effect.gen(function* () {
      let admitted = 0
      while (Date.now() < end) {
        const now = Date.now()
        const reserved = budget.reserve(GPT, limit, tokens, now)
        if (reserved._tag === "Reserved") admitted++
        else yield* Effect.sleep(Math.min(5, Math.max(1, reserved.until - now)))
      }
      return admitted
    })

  it.scopedLive("60 rpm across three processes admits 60, not 180", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const limit = { rpm: 60 }
      const budgets = yield* Effect.all([1, 2, 3].map(() => shared(prefix, { limits: { [GPT]: limit } })))
      const start = Date.now()
      const counts = yield* Effect.all(
        budgets.map((budget) => hammer(budget, limit, 0, start + 700)),
        { concurrency: "unbounded" }
      )
      const total = counts.reduce((a, b) => a + b, 0)
      // 60, and at most one more refilled in the 0.7 s; each process may hold one request it has not spent.
      assert.isAtLeast(total, 59, `admitted ${counts}`)
      assert.isAtMost(total, 61, `admitted ${counts}`)
      for (const count of counts) assert.isAbove(count, 0)
    })
  )

  it.scopedLive("6,000 tpm across three processes admits 6,000 tokens, not 18,000", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const limit = { tpm: 6000 }
      const budgets = yield* Effect.all([1, 2, 3].map(() => shared(prefix, { limits: { [GPT]: limit } })))
      const start = Date.now()
      const counts = yield* Effect.all(
        budgets.map((budget) => hammer(budget, limit, 50, start + 700)),
        { concurrency: "unbounded" }
      )
      const tokens = counts.reduce((a, b) => a + b, 0) * 50
      // 6,000, plus about 70 refilled in the 0.7 s; each process may hold part of a lease (100) it has not spent.
      assert.isAtLeast(tokens, 6000 - 300, `admitted ${counts}`)
      assert.isAtMost(tokens, 6000 + 150, `admitted ${counts}`)
    })
  )

  it.scopedLive("unused tokens stay with the process that reserved them until its scope closes", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const limit = { tpm: 1200 }
      const scope = yield* Scope.make()
      const a = yield* Scope.extend(shared(prefix, { limits: { [GPT]: limit } }), scope)
      const b = yield* shared(prefix, { limits: { [GPT]: limit } })
      // B's lease (20) is taken; A takes the rest of the bucket.
      const all = yield* reserveSoon(a, GPT, limit, 1180)
      assert.strictEqual(all._tag, "Reserved")
      assert.strictEqual((yield* reserveSoon(b, GPT, limit, 500))._tag, "Over")
      // A used none of it: the tokens come back to A, not to the fleet.
      if (all._tag === "Reserved") a.settle(all.reservation, 0, Date.now())
      assert.strictEqual((yield* reserveSoon(a, GPT, limit, 500))._tag, "Reserved")
      assert.strictEqual((yield* reserveSoon(b, GPT, limit, 500))._tag, "Over")
      // A stops: what it holds goes back to the bucket, where a process that asks next finds it.
      yield* Scope.close(scope, Exit.void)
      const c = yield* shared(prefix, { limits: { [GPT]: limit } })
      assert.strictEqual((yield* reserveSoon(c, GPT, limit, 500))._tag, "Reserved")
    })
  )

  it.scopedLive("tokens used beyond the estimate are owed to the fleet", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const limit = { tpm: 1200 }
      const a = yield* shared(prefix, { limits: { [GPT]: limit } })
      const b = yield* shared(prefix, { limits: { [GPT]: limit } })
      const reserved = yield* reserveSoon(a, GPT, limit, 100)
      assert.strictEqual(reserved._tag, "Reserved")
      // It used 1,100: A's lease owes 1,000, repaid from the bucket by its next refill.
      if (reserved._tag === "Reserved") a.settle(reserved.reservation, 1100, Date.now())
      yield* Effect.sleep(50)
      const over = yield* reserveSoon(b, GPT, limit, 200)
      assert.strictEqual(over._tag, "Over")
    })
  )
})

/** A logger that keeps the warnings. */
const warningsLogger = (warnings: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
        warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
      }
    })
  )

const errorCount = (operation: string) =>
  Effect.map(
    Metric.value(Metric.tagged(RedisConnection.errors, "ironlabsai.operation", operation)),
    (state) => state.count
  )

describe("Redis going away", () => {
  it.scopedLive("not strict: keeps admitting on local budgets, warns once; back: the global bucket again", () => {
    const warnings: Array<string> = []
    return Effect.gen(function* () {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startRedisServer()),
        (server) => Effect.promise(() => server.close())
      )
      const prefix = uniquePrefix()
      const connection = yield* connect({ prefix, url: server.url })
      const limit = { rpm: 600 }
      const budget = yield* RedisBudget.make(connection, { limits: { [GPT]: limit } })
      const strict = yield* RedisBudget.make(connection, { strict: true, limits: { [GPT]: limit } })
      assert.strictEqual((yield* reserveSoon(budget, GPT, limit, 0))._tag, "Reserved")
      const before = yield* errorCount("budget")

      yield* Effect.promise(() => server.stop())
      yield* whenReady(connection, false)
      // Not strict: the in-memory bucket (600 at once), at once, without failing.
      const now = Date.now()
      let admitted = 0
      for (let i = 0; i < 100; i++) if (budget.reserve(GPT, limit, 0, now)._tag === "Reserved") admitted++
      assert.strictEqual(admitted, 100)
      // Strict: refused until Redis is tried again.
      assert.deepStrictEqual(strict.reserve(GPT, limit, 0, now), { _tag: "Over", budget: "rpm", until: now + 1000 })
      yield* Effect.sleep(100)
      assert.strictEqual(warnings.length, 1, warnings.join("\n"))
      assert.isAbove(yield* errorCount("budget"), before)

      yield* Effect.promise(() => server.start())
      yield* whenReady(connection)
      // The leases again, refilled from the global bucket of the restarted (empty) Redis.
      for (let i = 0; i < 30; i++) assert.strictEqual((yield* reserveSoon(budget, GPT, limit, 0))._tag, "Reserved")
      assert.strictEqual((yield* reserveSoon(strict, GPT, limit, 0))._tag, "Reserved")
      const level = yield* connection.command(["HGET", connection.keyOf(GPT, "rpm"), "level"])
      assert.isBelow(Number(level), 600 - 10)
      assert.strictEqual(warnings.length, 1, warnings.join("\n"))
    }).pipe(Effect.provide(warningsLogger(warnings)))
  })
})

describe("keys", () => {
  it.scopedLive("every key has a TTL", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const connection = yield* connect({ prefix })
      const budget = yield* RedisBudget.make(connection, { limits: { [GPT]: { rpm: 60, tpm: 6000 } } })
      yield* reserveSoon(budget, GPT, { rpm: 60, tpm: 6000 }, 300)
      yield* reserveSoon(budget, "anthropic/claude-3-5-haiku-20241022", { rpm: 10 }, 0)
      yield* Effect.sleep(50)
      const [, keys] = (yield* connection.command(["SCAN", "0", "MATCH", `${prefix}:*`, "COUNT", "1000"])) as [
        string,
        Array<string>
      ]
      assert.strictEqual(keys.length, 3, keys.join(", "))
      for (const key of keys) {
        const ttl = (yield* connection.command(["PTTL", key])) as number
        assert.isAbove(ttl, 0, key)
        // At most what a full refill and the minute after take.
        assert.isAtMost(ttl, 120_000, key)
      }
    })
  )

  it.scopedLive("a model's rpm and tpm keys hash to one Cluster slot", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      yield* Effect.acquireRelease(
        Effect.promise(() => startClusterNode(port)),
        (node) => Effect.promise(() => node.close())
      )
      const connection = yield* connect({ prefix: "ironlabsai", url: `redis://127.0.0.1:${port}` })
      for (const model of [GPT, "anthropic/claude-sonnet-4-5", "a{b}c"]) {
        const slots = yield* Effect.forEach(["rpm", "tpm", "health"], (part) =>
          connection.command(["CLUSTER", "KEYSLOT", connection.keyOf(model, part)])
        )
        assert.strictEqual(new Set(slots).size, 1, `${model}: ${slots}`)
      }
    })
  )
})

/** A redis-server in cluster mode (no slots assigned: it answers `CLUSTER KEYSLOT`, nothing more is needed). */
const startClusterNode = async (port: number): Promise<{ readonly close: () => Promise<void> }> => {
  const dir = mkdtempSync(join(tmpdir(), "ironlabsai-cluster-"))
  const child: ChildProcess = spawn(
    findRedisServer(),
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--cluster-enabled",
      "yes"
    ],
    { stdio: "ignore" }
  )
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    close: async () => {
      child.kill("SIGKILL")
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
