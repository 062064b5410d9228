/**
 * Routing strategies (DESIGN §9) under `TestClock` with scripted providers
 * and a seeded `Random`: least_latency, least_busy and cost, and the load
 * they read (calls in flight, latency samples).
 */
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, ModelHealth, type Reliability, Router } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Effect, Either, Fiber, Random, Stream, TestClock } from "effect"

const FAST = "openai/fast"
const SLOW = "anthropic/slow"
const ask = { messages: [{ role: "user", content: "Hi" }] } as const

const setup = (reliability: Reliability.Input, script: Parameters<typeof ScriptedProvider.make>[0] = {}) => {
  const scripted = ScriptedProvider.make(script)
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability }, scripted.registry))
  return { scripted, client }
}

/** `n` requests one after the other, each taking the time of the model that answers it. */
const sequential = (
  client: IronlabsClient.IronlabsClient["Type"],
  n: number,
  request: Parameters<IronlabsClient.IronlabsClient["Type"]["completions"]["create"]>[0] = ask
) =>
  Effect.gen(function* () {
    const models: Array<string> = []
    for (let i = 0; i < n; i++) {
      const fiber = yield* Effect.fork(client.completions.create(request as typeof ask))
      // The clock moves on only while the request is out: the next one starts as this one ends.
      while ((yield* Fiber.poll(fiber))._tag === "None") yield* TestClock.adjust("1 second")
      models.push((yield* Fiber.join(fiber)).model)
    }
    return models
  })

/** A small deterministic generator (mulberry32) for picks made outside Effect. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const share = (models: ReadonlyArray<string>, model: string) => models.filter((m) => m === model).length / models.length

describe("least_latency", () => {
  it.effect("after warm-up, a 1 s model gets at least 80% of the traffic against a 3 s one", () =>
    Effect.gen(function* () {
      const outcomes = (seconds: number) =>
        Array.from({ length: 400 }, () => ScriptedProvider.delay(`${seconds} seconds`))
      const { client } = setup(
        { weights: { [FAST]: 1, [SLOW]: 1 }, routing_strategy: "least_latency" },
        { [FAST]: outcomes(1), [SLOW]: outcomes(3) }
      )
      yield* sequential(client, 20) // warm-up
      const models = yield* sequential(client, 100)
      assert.isAtLeast(share(models, FAST), 0.8)
      // The slow model is still tried now and then: it is not starved.
      assert.isAbove(share(models, SLOW), 0)
    }).pipe(Effect.withRandom(Random.make(7)))
  )

  it("two equal models split within 5% over 10,000 picks, one request after the other", () => {
    const health = ModelHealth.unsafeMakeMemory({})
    const models = [
      { id: FAST, weight: 0.5 },
      { id: SLOW, weight: 0.5 }
    ]
    const random = seeded(13)
    const counts = new Map<string, number>()
    let now = 0
    for (let i = 0; i < 10_000; i++) {
      const picked = Router.pickOfTwo(
        models,
        (m) => Router.loadScore("least_latency", health.load(m.id, now), m.weight),
        random(),
        random()
      )!
      counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1)
      // Each answer takes 200 ms, then the next request comes.
      now += 200
      health.observeLatency(picked.id, 200, now)
    }
    assert.closeTo((counts.get(FAST) ?? 0) / 10_000, 0.5, 0.05)
  })

  it.effect("two equal models split within 5% when requests overlap (calls in flight count)", () =>
    Effect.gen(function* () {
      const outcomes = Array.from({ length: 500 }, () => ScriptedProvider.delay("200 millis"))
      const { client } = setup(
        { weights: { [FAST]: 1, [SLOW]: 1 }, routing_strategy: "least_latency" },
        { [FAST]: outcomes, [SLOW]: outcomes }
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 500 }), () =>
        Effect.fork(client.completions.create(ask))
      )
      yield* TestClock.adjust("1 second")
      const models = (yield* Fiber.joinAll(fibers)).map((answer) => answer.model)
      assert.closeTo(share(models, FAST), 0.5, 0.05)
    }).pipe(Effect.withRandom(Random.make(11)))
  )

  it("a model never sampled starts at the prior, never 0, and the prior decays like a sample", () => {
    const health = ModelHealth.unsafeMakeMemory({})
    assert.deepStrictEqual(health.load(FAST, 0), { inFlight: 0, latency: ModelHealth.priorMillis, p95: undefined })
    assert.isAbove(ModelHealth.priorMillis, 0)
    // Like any sample, the prior decays while the model is idle: a model never tried is tried in time.
    assert.closeTo(health.load(FAST, 10_000).latency, ModelHealth.priorMillis / Math.E, 1e-9)
  })

  it.effect("a failure counts as a sample of the model's timeout", () =>
    Effect.gen(function* () {
      const health = ModelHealth.unsafeMakeMemory({})
      const scripted = ScriptedProvider.make({ [SLOW]: [ScriptedProvider.fail("ServerError")] })
      const client = Either.getOrThrow(
        IronlabsClient.makeWith(
          {
            reliability: {
              weights: { [SLOW]: 1 },
              timeout: { [SLOW]: 4 },
              max_retries: { [SLOW]: 0 },
              routing_strategy: "least_latency"
            }
          },
          scripted.registry,
          health
        )
      )
      yield* Effect.either(client.completions.create(ask))
      assert.strictEqual(health.load(SLOW, 0).latency, 4000)
    })
  )
})

describe("least_busy", () => {
  it.effect("the model with fewer calls in flight is picked, and every count returns to 0", () =>
    Effect.gen(function* () {
      const health = ModelHealth.unsafeMakeMemory({})
      const scripted = ScriptedProvider.make({
        [FAST]: Array.from({ length: 10 }, () => ScriptedProvider.delay("1 second")),
        [SLOW]: Array.from({ length: 10 }, () => ScriptedProvider.delay("5 seconds"))
      })
      const client = Either.getOrThrow(
        IronlabsClient.makeWith(
          { reliability: { weights: { [FAST]: 1, [SLOW]: 1 }, routing_strategy: "least_busy" } },
          scripted.registry,
          health
        )
      )
      // Ten requests at once: with one in flight on a model, the next goes to the other.
      const fibers = yield* Effect.forEach(Array.from({ length: 10 }), () =>
        Effect.fork(client.completions.create(ask))
      )
      yield* Effect.yieldNow()
      const busy = [health.load(FAST, 0).inFlight, health.load(SLOW, 0).inFlight]
      assert.deepStrictEqual(busy, [5, 5])
      yield* TestClock.adjust("1 minute")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual([health.load(FAST, 0).inFlight, health.load(SLOW, 0).inFlight], [0, 0])
    }).pipe(Effect.withRandom(Random.make(3)))
  )

  it.effect("a stream holds its slot until it ends, and releases it when interrupted", () =>
    Effect.gen(function* () {
      const health = ModelHealth.unsafeMakeMemory({})
      const scripted = ScriptedProvider.make({
        [FAST]: [ScriptedProvider.succeed(undefined, { chunks: ["a ", "b ", "c"], interval: "1 second" })],
        [SLOW]: [ScriptedProvider.stallAfter(1)]
      })
      const client = Either.getOrThrow(
        IronlabsClient.makeWith(
          { reliability: { weights: { [FAST]: 1, [SLOW]: 1 }, routing_strategy: "least_busy" } },
          scripted.registry,
          health
        )
      )
      const stream = { ...ask, stream: true } as const
      const first = yield* Effect.fork(Stream.runDrain(client.completions.create(stream)))
      const second = yield* Effect.fork(Stream.runDrain(client.completions.create(stream)))
      yield* TestClock.adjust("1500 millis")
      assert.deepStrictEqual([health.load(FAST, 0).inFlight, health.load(SLOW, 0).inFlight], [1, 1])
      yield* Fiber.interrupt(second)
      yield* Fiber.interrupt(first)
      assert.deepStrictEqual([health.load(FAST, 0).inFlight, health.load(SLOW, 0).inFlight], [0, 0])
    }).pipe(Effect.withRandom(Random.make(5)))
  )
})

describe("cost", () => {
  const prices = { [FAST]: { input: 2.5, output: 10 }, [SLOW]: { input: 0.8, output: 4 } }

  it.effect("the cheapest healthy model first; the next cheapest when it fails", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { weights: { [FAST]: 1, [SLOW]: 1 }, routing_strategy: "cost", prices, max_retries: { [SLOW]: 0 } },
        { [SLOW]: [ScriptedProvider.succeed("cheap"), ScriptedProvider.fail("BadRequest" as never)] }
      )
      const first = yield* client.completions.create(ask)
      assert.strictEqual(first.model, SLOW)
      assert.deepStrictEqual(scripted.order(), [SLOW])
    }).pipe(Effect.withRandom(Random.make(1)))
  )

  it("a cost strategy without prices is a config error", () => {
    const decoded = IronlabsClient.makeWith(
      { reliability: { weights: { [FAST]: 1 }, routing_strategy: "cost" } },
      ScriptedProvider.make({}).registry
    )
    assert.isTrue(Either.isLeft(decoded))
  })
})

describe("every strategy: a model that cannot serve the request is never a candidate", () => {
  for (const strategy of ["least_latency", "least_busy", "cost"] as const) {
    it.effect(`${strategy}: every request goes to the model that can serve it, the other traced as unsupported`, () =>
      Effect.gen(function* () {
        const scripted = ScriptedProvider.make({})
        const slow = scripted.registry.get("anthropic")!
        const registry = new Map([
          ...scripted.registry,
          [
            "anthropic",
            {
              ...slow,
              unsupported: ({ request }: { request: { seed?: unknown } }) =>
                request.seed === undefined ? [] : ["seed"]
            }
          ]
        ])
        const prices = { [FAST]: { input: 10, output: 10 }, [SLOW]: { input: 1, output: 1 } }
        const client = Either.getOrThrow(
          IronlabsClient.makeWith(
            { reliability: { weights: { [FAST]: 1, [SLOW]: 1 }, routing_strategy: strategy, prices } },
            registry
          )
        )
        for (let i = 0; i < 20; i++) {
          const answer = yield* client.completions.create({ ...ask, seed: i })
          assert.strictEqual(answer.model, FAST)
          assert.deepStrictEqual(answer.attempts[0]?.skip, { reason: "unsupported", fields: ["seed"] })
        }
        assert.strictEqual(scripted.count(SLOW), 0)
      }).pipe(Effect.withRandom(Random.make(9)))
    )
  }
})
