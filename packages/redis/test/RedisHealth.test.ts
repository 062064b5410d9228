import { assert, describe, inject, it } from "@effect/vitest"
import { ModelHealth, type ProviderError, RateBudget } from "@ironlabsai/core"
import { Chunk, Duration, Effect, Fiber, Stream } from "effect"
import * as RedisConnection from "../src/RedisConnection.js"
import * as RedisHealth from "../src/RedisHealth.js"
import * as RedisStore from "../src/RedisStore.js"
// The suite core runs over its in-memory model health, run here over the Redis store (by path: see the file).
import { modelHealthSuite } from "../../core/test/modelHealthSuite.js"
import { freePort, startRedisServer } from "@ironlabsai/testing/RedisServer"
import { collectLogs, connect, errorCount, eventually, keySlot, realSleep, uniquePrefix } from "./utils/redis.js"

const url = inject("redisUrl")

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

describe("conformance", () => {
  modelHealthSuite("ModelHealth over Redis", (settings) =>
    Effect.gen(function* () {
      const connection = yield* connect({ url, prefix: uniquePrefix() })
      const store = yield* RedisHealth.makeStore(connection)
      return store.make(settings)
    })
  )
})

interface Instance {
  readonly health: ModelHealth.Service
  readonly connection: RedisConnection.Connection
}

/** `count` instances of a fleet: each its own connection and store, one Redis, one prefix. */
const fleet = (
  count: number,
  options: {
    readonly url?: string
    readonly prefix?: string
    readonly policy?: Partial<ModelHealth.Policy>
    readonly store?: (index: number) => RedisHealth.Options
  } = {}
) =>
  Effect.gen(function* () {
    const prefix = options.prefix ?? uniquePrefix()
    const instances: Array<Instance> = []
    for (let i = 0; i < count; i++) {
      const connection = yield* connect({ url: options.url ?? url, prefix })
      const store = yield* RedisHealth.makeStore(connection, options.store?.(i) ?? {})
      const health = store.make({
        health: { ...ModelHealth.defaultPolicy, ...options.policy },
        retryBudget: ModelHealth.defaultRetryBudget
      })
      instances.push({ health, connection })
    }
    return instances
  })

const failure = (
  instance: Instance,
  model: string,
  reason: ProviderError.Reason,
  options: { readonly probe?: boolean; readonly holdFor?: Duration.DurationInput } = {}
) =>
  instance.health.record({
    _tag: "Failure",
    model,
    startedAt: Date.now(),
    probe: options.probe ?? false,
    reason,
    ...(options.holdFor === undefined ? {} : { holdFor: Duration.decode(options.holdFor) })
  })

const trip = (instance: Instance, model: string) =>
  Effect.gen(function* () {
    yield* failure(instance, model, "ServerError")
    yield* failure(instance, model, "ServerError")
    return yield* failure(instance, model, "ServerError")
  })

/** `instance`'s admission of `model` now, when it is a skip in `state`. */
const skipped = (instance: Instance, model: string, state: "held" | "open" | "half-open") =>
  Effect.sync(() => {
    const answer = instance.health.admit(model, Date.now(), { peek: true })
    return answer._tag === "Skip" && answer.state === state ? answer : undefined
  })

const called = (instance: Instance, model: string) =>
  Effect.sync(() => instance.health.admit(model, Date.now(), { peek: true })._tag === "Call")

describe("RedisHealth: a fleet", () => {
  it.scopedLive("a hold recorded by A is skipped by B within 100 ms (pub/sub)", () =>
    Effect.gen(function* () {
      const [a, b] = yield* fleet(2)
      const change = yield* failure(a!, GPT, "RateLimited", { holdFor: "30 seconds" })
      const skip = yield* eventually("B skips the held model", skipped(b!, GPT, "held"), 100)
      assert.strictEqual(skip.reason, "RateLimited")
      // B's until is A's, through Redis TIME and back to B's clock: the same to a few millis.
      assert.isBelow(Math.abs(skip.until! - change!.until), 50)
      assert.deepStrictEqual(b!.health.admit(HAIKU, Date.now()), { _tag: "Call" })
      const status = (yield* b!.health.snapshot).find((s) => s.model === GPT)
      assert.deepStrictEqual([status?.state, status?.reason], ["held", "RateLimited"])
    })
  )

  it.scopedLive("without pub/sub, B sees A's hold within one reconcile interval", () =>
    Effect.gen(function* () {
      const [a, b] = yield* fleet(2, {
        store: (i) => (i === 1 ? { subscribe: false, reconcileInterval: Duration.millis(300) } : {})
      })
      // B has seen the model: the poll reads the models an instance knows.
      assert.deepStrictEqual(b!.health.admit(GPT, Date.now()), { _tag: "Call" })
      const recordedAt = Date.now()
      yield* failure(a!, GPT, "Authentication")
      yield* eventually("B skips the held model", skipped(b!, GPT, "held"), 450)
      assert.isBelow(Date.now() - recordedAt, 450)
    })
  )

  it.scopedLive("a breaker opened by A applies to B, and a hold of one model leaves the others alone", () =>
    Effect.gen(function* () {
      const [a, b] = yield* fleet(2)
      const change = yield* trip(a!, GPT)
      assert.strictEqual(change?.state, "open")
      const skip = yield* eventually("B skips the open model", skipped(b!, GPT, "open"), 100)
      assert.strictEqual(skip.reason, "ServerError")
      assert.isBelow(Math.abs(skip.until! - change!.until), 50)
      assert.isTrue(yield* called(b!, HAIKU))
    })
  )

  it.scopedLive("min_reporters 2: A's open alone does not open the model for the others; A's and B's do", () =>
    Effect.gen(function* () {
      const [a, b, c] = yield* fleet(3, { store: () => ({ minReporters: 2 }) })
      yield* trip(a!, GPT)
      const reporters = a!.connection.keyOf(GPT, "reporters")
      yield* eventually(
        "A's report in Redis",
        Effect.map(Effect.orDie(a!.connection.command(["ZCARD", reporters])), (n) => n === 1)
      )
      // A skips (its own breaker); B and C still call.
      assert.isDefined(yield* skipped(a!, GPT, "open"))
      for (let i = 0; i < 10; i++) {
        assert.isTrue(yield* called(b!, GPT))
        assert.isTrue(yield* called(c!, GPT))
        yield* realSleep(10)
      }
      yield* trip(b!, GPT)
      yield* eventually("C skips the model two instances opened", skipped(c!, GPT, "open"), 100)
    })
  )

  it.scopedLive("half-open: of 3 instances exactly one probes; its success closes the model for all", () =>
    Effect.gen(function* () {
      const instances = yield* fleet(3, { policy: { openFor: Duration.millis(300), maxOpenFor: Duration.seconds(1) } })
      const lease = { probeLease: Duration.seconds(5) }
      for (const instance of instances) instance.health.admit(GPT, Date.now(), lease)
      const change = yield* trip(instances[0]!, GPT)
      for (const instance of instances) yield* eventually("every instance skips", skipped(instance, GPT, "open"), 100)
      // From the end of the open period, every instance asks for the model every 5 ms for 700 ms.
      yield* realSleep(Math.max(0, change!.until - Date.now()))
      const probes: Array<number> = []
      const until = Date.now() + 700
      while (Date.now() < until) {
        instances.forEach((instance, i) => {
          const answer = instance.health.admit(GPT, Date.now(), lease)
          if (answer._tag === "Probe") probes.push(i)
          // (The others' clocks may see the open period end a few millis later.)
          else assert.deepStrictEqual([answer._tag, answer._tag === "Skip" && answer.reason], ["Skip", "ServerError"])
        })
        yield* realSleep(5)
      }
      assert.strictEqual(probes.length, 1)
      const prober = instances[probes[0]!]!
      yield* prober.health.record({ _tag: "Success", model: GPT, startedAt: Date.now(), probe: true })
      for (const instance of instances) yield* eventually("every instance calls again", called(instance, GPT), 100)
      assert.deepStrictEqual(
        yield* Effect.orDie(prober.connection.command(["EXISTS", prober.connection.keyOf(GPT, "health")])),
        0
      )
    })
  )

  it.scopedLive("a probe lease that runs out lets another instance probe", () =>
    Effect.gen(function* () {
      const [a, b, c] = yield* fleet(3, { policy: { openFor: Duration.millis(200), maxOpenFor: Duration.seconds(1) } })
      const lease = { probeLease: Duration.millis(300) }
      for (const instance of [a!, b!, c!]) instance.health.admit(GPT, Date.now(), lease)
      const change = yield* trip(a!, GPT)
      yield* eventually("B skips", skipped(b!, GPT, "open"), 100)
      yield* realSleep(Math.max(0, change!.until - Date.now()))
      // A opened it and holds the lease: A probes, and is never heard of again (its process hangs).
      yield* eventually(
        "A probes",
        Effect.sync(() => a!.health.admit(GPT, Date.now(), lease)._tag === "Probe"),
        200
      )
      const probedAt = Date.now()
      assert.deepStrictEqual(b!.health.admit(GPT, Date.now(), lease)._tag, "Skip")
      // A's lease (its probe's 300 ms, and as much again) runs out: B or C takes it, and only that one probes
      // (again when its own probe's 300 ms are over, as it never reports back either).
      const probers: Array<string> = []
      let firstProbe: number | undefined
      const deadline = Date.now() + 1_500
      while (Date.now() < deadline && Date.now() - probedAt < 1_000) {
        for (const [name, instance] of [
          ["b", b!],
          ["c", c!]
        ] as const) {
          if (instance.health.admit(GPT, Date.now(), lease)._tag === "Probe") {
            probers.push(name)
            firstProbe ??= Date.now() - probedAt
          }
        }
        yield* realSleep(5)
      }
      assert.isAtLeast(firstProbe ?? 0, 550)
      assert.isAtLeast(probers.length, 1)
      assert.strictEqual(new Set(probers).size, 1, `probes by ${probers}`)
      // A, back, finds another instance probing.
      assert.deepStrictEqual(a!.health.admit(GPT, Date.now(), lease), {
        _tag: "Skip",
        state: "half-open",
        reason: "ServerError"
      })
    })
  )

  it.scopedLive("a probe that fails reopens the model for all, for twice as long", () =>
    Effect.gen(function* () {
      const [a, b] = yield* fleet(2, { policy: { openFor: Duration.millis(200), maxOpenFor: Duration.seconds(5) } })
      const change = yield* trip(a!, GPT)
      yield* realSleep(Math.max(0, change!.until - Date.now()))
      yield* eventually(
        "A probes",
        Effect.sync(() => a!.health.admit(GPT, Date.now())._tag === "Probe"),
        200
      )
      const reopened = yield* failure(a!, GPT, "Timeout", { probe: true })
      assert.strictEqual(reopened?.state, "open")
      const skip = yield* eventually(
        "B sees the reopening",
        Effect.map(skipped(b!, GPT, "open"), (s) => (s?.reason === "Timeout" ? s : undefined)),
        200
      )
      const period = Number(
        yield* Effect.orDie(a!.connection.command(["HGET", a!.connection.keyOf(GPT, "health"), "open_for"]))
      )
      assert.isAtLeast(period, 320)
      assert.isAtMost(period, 480)
      assert.isAbove(skip.until! - Date.now(), 200)
    })
  )

  it.scopedLive("every key has a TTL, and all of a model's keys hash to one Cluster slot", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const [a] = yield* fleet(1, { prefix })
      yield* failure(a!, GPT, "RateLimited", { holdFor: "5 seconds" })
      yield* trip(a!, GPT)
      yield* failure(a!, HAIKU, "QuotaExceeded")
      const expected = [
        `${prefix}:{${GPT}}:health`,
        `${prefix}:{${GPT}}:probe`,
        `${prefix}:{${GPT}}:reporters`,
        `${prefix}:{${HAIKU}}:health`
      ].sort()
      const keys = yield* eventually(
        "the hold, the open breaker, its lease and reporters in Redis",
        Effect.map(Effect.orDie(a!.connection.command(["KEYS", `${prefix}:*`])), (found) => {
          const sorted = [...(found as Array<string>)].sort()
          return sorted.join() === expected.join() ? sorted : undefined
        })
      )
      for (const key of keys) {
        const ttl = Number(yield* Effect.orDie(a!.connection.command(["PTTL", key])))
        assert.isAbove(ttl, 0, `${key} has no TTL`)
      }
      // CRC16 as Redis Cluster computes it (CLUSTER KEYSLOT needs cluster mode).
      assert.strictEqual(keySlot("123456789"), 0x31c3 % 16384)
      assert.strictEqual(keySlot("foo"), 12182)
      for (const model of [GPT, HAIKU, "openai/gpt-4o-mini", "mistral/mistral-large-latest"]) {
        const slots = new Set(
          ["health", "probe", "reporters", "rpm", "tpm"].map((part) => keySlot(a!.connection.keyOf(model, part)))
        )
        assert.strictEqual(slots.size, 1, `${model}'s keys are on ${slots.size} slots`)
      }
    })
  )
})

describe("RedisHealth: changes and layers", () => {
  it.scopedLive("changes publishes the fleet's transitions, and one's own once", () =>
    Effect.gen(function* () {
      const [a, b] = yield* fleet(2)
      const seenByA = yield* Effect.fork(Stream.runCollect(Stream.take(a!.health.changes, 2)))
      const seenByB = yield* Effect.fork(Stream.runCollect(Stream.take(b!.health.changes, 2)))
      yield* realSleep(20)
      const change = yield* failure(a!, GPT, "RateLimited", { holdFor: "300 millis" })
      yield* eventually("B skips", skipped(b!, GPT, "held"), 100)
      yield* realSleep(Math.max(0, change!.until - Date.now()) + 20)
      // Time-driven ends are published when the model is next looked at.
      yield* a!.health.snapshot
      yield* b!.health.snapshot
      const strip = (transitions: Chunk.Chunk<ModelHealth.Transition>) =>
        Chunk.toReadonlyArray(transitions).map(({ from, model, reason, to }) => ({ model, from, to, reason }))
      const expected = [
        { model: GPT, from: "healthy", to: "held", reason: "RateLimited" },
        { model: GPT, from: "held", to: "healthy", reason: undefined }
      ]
      assert.deepStrictEqual(strip(yield* Fiber.join(seenByA)), expected)
      assert.deepStrictEqual(strip(yield* Fiber.join(seenByB)), expected)
    })
  )

  it.scopedLive("RedisStore.layer provides the connection, the health store and the budgets from one URL", () =>
    Effect.gen(function* () {
      const store = yield* ModelHealth.ModelHealthStore
      const budget = yield* RateBudget.RateBudget
      const connection = yield* RedisConnection.RedisConnection
      yield* eventually("the connection", Effect.sync(connection.isReady))
      const health = store.make({ health: ModelHealth.defaultPolicy })
      yield* health.record({ _tag: "Failure", model: GPT, startedAt: Date.now(), probe: false, reason: "NotFound" })
      yield* eventually(
        "the hold in Redis",
        Effect.map(Effect.orDie(connection.command(["HGET", connection.keyOf(GPT, "health"), "hold_reason"])), (r) =>
          r === "NotFound" ? true : undefined
        )
      )
      // The first call of a model without a lease yet is refused for a round trip (RedisBudget).
      yield* eventually(
        "a reservation",
        Effect.sync(() => budget.reserve(GPT, { rpm: 600 }, 10, Date.now())._tag === "Reserved")
      )
    }).pipe(Effect.provide(RedisStore.layer({ url, prefix: uniquePrefix(), minReporters: 2 })))
  )
})

describe("RedisHealth: Redis down", () => {
  it.scopedLive(
    "Redis stopped mid-run: admit and record go on, unhurried, on local state; one warning per connection; the error metric counts; after a restart the fleet resynchronises",
    () => {
      const logs = collectLogs()
      return Effect.gen(function* () {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => startRedisServer()),
          (started) => Effect.promise(() => started.close())
        )
        const [a, b] = yield* fleet(2, { url: server.url, store: () => ({ reconcileInterval: Duration.millis(200) }) })
        for (const model of [GPT, HAIKU]) assert.deepStrictEqual(b!.health.admit(model, Date.now()), { _tag: "Call" })
        yield* failure(a!, GPT, "RateLimited", { holdFor: "30 seconds" })
        yield* eventually("B skips GPT", skipped(b!, GPT, "held"), 100)

        yield* Effect.promise(() => server.stop())
        yield* eventually(
          "A's connection sees Redis gone",
          Effect.sync(() => !a!.connection.isReady())
        )
        const holdErrors = yield* errorCount("health.hold")
        const startedAt = Date.now()
        for (let i = 0; i < 50; i++) assert.deepStrictEqual(a!.health.admit(HAIKU, Date.now()), { _tag: "Call" })
        const change = yield* failure(a!, HAIKU, "Authentication")
        assert.strictEqual(change?.state, "held")
        for (const model of ["m1", "m2", "m3"]) yield* failure(a!, model, "QuotaExceeded")
        yield* trip(a!, "m4")
        // Nothing waited on Redis.
        assert.isBelow(Date.now() - startedAt, 50)
        assert.strictEqual(a!.health.admit(HAIKU, Date.now())._tag, "Skip")
        assert.strictEqual(a!.health.admit("m4", Date.now())._tag, "Skip")
        // B goes on with what it knew.
        assert.isDefined(yield* skipped(b!, GPT, "held"))
        yield* eventually(
          "the failed writes counted",
          Effect.map(errorCount("health.hold"), (count) => count - holdErrors >= 4)
        )
        yield* realSleep(300)
        const warnings = logs.lines.filter((line) => line.level === "WARN")
        assert.isAtLeast(warnings.length, 1)
        assert.isAtMost(warnings.length, 2, JSON.stringify(warnings))

        yield* Effect.promise(() => server.start())
        yield* eventually(
          "both connections back",
          Effect.sync(() => a!.connection.isReady() && b!.connection.isReady()),
          3_000
        )
        // The hold A made during the outage reaches B, and so does GPT's hold, which the new Redis had lost.
        yield* eventually("B skips HAIKU", skipped(b!, HAIKU, "held"), 1_000)
        yield* eventually("B skips m4", skipped(b!, "m4", "open"), 1_000)
        assert.isDefined(yield* skipped(b!, GPT, "held"))
        assert.isTrue(logs.lines.some((line) => line.level === "INFO" && line.message.includes("reachable again")))
      }).pipe(Effect.provide(logs.layer))
    },
    { timeout: 20_000 }
  )

  it.scopedLive("a store made while Redis is down serves from memory at once", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      const connection = yield* RedisConnection.make({ url: `redis://127.0.0.1:${port}` })
      const store = yield* RedisHealth.makeStore(connection)
      const health = store.make({ health: ModelHealth.defaultPolicy })
      const instance = { health, connection }
      assert.deepStrictEqual(health.admit(GPT, Date.now()), { _tag: "Call" })
      assert.strictEqual((yield* trip(instance, GPT))?.state, "open")
      assert.strictEqual(health.admit(GPT, Date.now())._tag, "Skip")
      assert.deepStrictEqual(
        (yield* health.snapshot).map((status) => status.state),
        ["open"]
      )
    })
  )
})
