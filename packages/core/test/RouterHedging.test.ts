/**
 * Hedged requests (DESIGN §9) under `TestClock` with scripted providers: a
 * hedge fires exactly at its delay to another model, the first success (a
 * stream: the first content) wins, the loser is interrupted and traced as
 * cancelled without counting against its health, and the budget stops
 * hedging.
 */
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, ModelHealth, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Duration, Effect, Either, Fiber, Stream, TestClock } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Hi" }] } as const
const { delay, fail, succeed } = ScriptedProvider

const setup = (reliability: Reliability.Input, script: Parameters<typeof ScriptedProvider.make>[0]) => {
  const scripted = ScriptedProvider.make(script)
  const health = ModelHealth.unsafeMakeMemory({ health: ModelHealth.defaultPolicy })
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability }, scripted.registry, health))
  return { scripted, client, health }
}

/** Runs `effect` while the test clock moves an hour ahead. */
const settled = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.join(fiber)
  })

const chain = { failover_chain: [{ model: GPT, timeout: 30 }, { model: HAIKU }], hedge: { delay: 1 } }

describe("hedging", () => {
  it.effect(
    "fires exactly at its delay; the hedge's answer wins and the primary is interrupted, traced as cancelled",
    () =>
      Effect.gen(function* () {
        const { scripted, client, health } = setup(chain, {
          [GPT]: [delay("10 seconds", succeed("slow"))],
          [HAIKU]: [delay("100 millis", succeed("fast"))]
        })
        const answer = yield* settled(client.completions.create(ask))
        assert.strictEqual(answer.model, HAIKU)
        assert.deepStrictEqual(
          scripted.calls.map((c) => [c.model, c.startedAt, c.status]),
          [
            [GPT, 0, "interrupted"],
            [HAIKU, 1000, "success"]
          ]
        )
        assert.deepStrictEqual(
          answer.attempts.map((a) => [a.model, a.outcome, Duration.toMillis(a.duration)]),
          [
            [HAIKU, "success", 100],
            [GPT, "cancelled", 1100]
          ]
        )
        // The loser counts for nothing in model health.
        const [gpt] = yield* health.snapshot
        assert.deepStrictEqual([gpt?.state, gpt?.recentCalls, gpt?.consecutiveFailures], ["healthy", 0, 0])
      })
  )

  it.effect("the primary answering first wins: the hedge is interrupted", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(chain, {
        [GPT]: [delay("1500 millis", succeed("primary"))],
        [HAIKU]: [delay("5 seconds", succeed("hedge"))]
      })
      const answer = yield* settled(client.completions.create(ask))
      assert.strictEqual(answer.model, GPT)
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt, c.status]),
        [
          [GPT, 0, "success"],
          [HAIKU, 1000, "interrupted"]
        ]
      )
      assert.deepStrictEqual(
        answer.attempts.map((a) => [a.model, a.outcome]),
        [
          [GPT, "success"],
          [HAIKU, "cancelled"]
        ]
      )
    })
  )

  it.effect("an answer within the delay, or a failure before it, starts no hedge", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { ...chain, failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: [delay("500 millis", succeed("quick")), delay("200 millis", fail("ServerError"))] }
      )
      assert.strictEqual((yield* settled(client.completions.create(ask))).model, GPT)
      // The failure fails over in the chain's way, at once: not as a hedge a second later.
      const second = yield* settled(client.completions.create(ask))
      assert.strictEqual(second.model, HAIKU)
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt]),
        [
          [GPT, 0],
          [GPT, 3_600_000],
          [HAIKU, 3_600_200]
        ]
      )
    })
  )

  it.effect("no hedge fires once the budget is spent", () =>
    Effect.gen(function* () {
      const slow = () => delay("3 seconds", succeed("slow"))
      const { scripted, client } = setup(chain, { [GPT]: [slow(), slow()], [HAIKU]: [delay("100 millis", succeed())] })
      const first = yield* settled(client.completions.create(ask))
      const second = yield* settled(client.completions.create(ask))
      // The budget starts with one hedge, and two requests earn a tenth of another.
      assert.deepStrictEqual([first.model, second.model], [HAIKU, GPT])
      assert.deepStrictEqual(
        scripted.calls.map((c) => c.model),
        [GPT, HAIKU, GPT]
      )
    })
  )

  it.effect("a stream: the first content wins", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(chain, {
        [GPT]: [delay("10 seconds", succeed("slow"))],
        [HAIKU]: [succeed(undefined, { chunks: ["fast ", "answer"], interval: "100 millis" })]
      })
      const chunks = yield* settled(Stream.runCollect(client.completions.create({ ...ask, stream: true })))
      const text = [...chunks].map((c) => c.choices[0]?.delta.content ?? "").join("")
      assert.strictEqual(text, "fast answer")
      assert.isTrue([...chunks].every((c) => c.model === HAIKU))
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt, c.status]),
        [
          [GPT, 0, "interrupted"],
          [HAIKU, 1000, "success"]
        ]
      )
    })
  )

  it.effect('"p95" hedges only once the model has samples, at their 95th percentile', () =>
    Effect.gen(function* () {
      const outcomes = Array.from({ length: 10 }, () => delay("200 millis", succeed()))
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 30 }, { model: HAIKU }], hedge: { delay: "p95", budget: 1 } },
        { [GPT]: [...outcomes, delay("10 seconds", succeed("slow"))], [HAIKU]: [succeed("hedge")] }
      )
      // Ten answers of 200 ms: no hedge while there are fewer than ten samples.
      for (let i = 0; i < 10; i++) yield* settled(client.completions.create(ask))
      assert.strictEqual(scripted.count(HAIKU), 0)
      const answer = yield* settled(client.completions.create(ask))
      assert.strictEqual(answer.model, HAIKU)
      const hedge = scripted.calls.find((c) => c.model === HAIKU)
      assert.strictEqual(hedge!.startedAt - scripted.calls.at(-2)!.startedAt, 200)
    })
  )
})
