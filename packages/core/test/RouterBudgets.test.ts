/**
 * Usage and cost, rate budgets (`rate_limits`), and holds from a successful
 * reply's spent rate limit (DESIGN §9), under `TestClock` with scripted
 * providers.
 */
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, ModelHealth, type Provider, RateBudget, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Chunk, Duration, Effect, Either, Stream, TestClock } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }] } as const

const setup = (reliability: Reliability.Input, registry?: Provider.Registry) => {
  const scripted = ScriptedProvider.make({})
  const health = ModelHealth.unsafeMakeMemory({ health: ModelHealth.defaultPolicy })
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability }, registry ?? scripted.registry, health))
  return { scripted, client, health }
}

describe("usage and cost", () => {
  const prices = { [GPT]: { input: 2.5, output: 10 } }

  it.effect("an answer carries its usage, and its cost with prices; the trace carries the attempt's", () =>
    Effect.gen(function* () {
      const { client } = setup({ failover_chain: [{ model: GPT }], prices })
      const answer = yield* client.completions.create(ask)
      const usage = answer.usage!
      const cost = (usage.prompt_tokens * 2.5 + usage.completion_tokens * 10) / 1_000_000
      assert.isAbove(usage.total_tokens, 0)
      assert.strictEqual(answer.cost, cost)
      assert.deepStrictEqual(answer.attempts[0]?.usage, {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens
      })
      assert.strictEqual(answer.attempts[0]?.cost, cost)
    })
  )

  it.effect("without prices there is no cost", () =>
    Effect.gen(function* () {
      const { client } = setup({ failover_chain: [{ model: HAIKU }] })
      const answer = yield* client.completions.create(ask)
      assert.strictEqual(answer.cost, undefined)
      assert.strictEqual(answer.attempts[0]?.cost, undefined)
    })
  )

  it.effect("a stream's chunk with usage carries the cost", () =>
    Effect.gen(function* () {
      const { client } = setup({ failover_chain: [{ model: GPT }], prices })
      const chunks = Chunk.toReadonlyArray(
        yield* Stream.runCollect(client.completions.create({ ...ask, stream: true }))
      )
      const last = chunks.filter((c) => c.usage !== undefined && c.usage !== null)
      assert.strictEqual(last.length, 1)
      const usage = last[0]!.usage!
      assert.strictEqual(last[0]!.cost, (usage.prompt_tokens * 2.5 + usage.completion_tokens * 10) / 1_000_000)
    })
  )
})

describe("rate budgets (rate_limits)", () => {
  it.effect("rpm: the model is skipped once its requests are spent, with the time it has room again", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({
        failover_chain: [{ model: GPT }, { model: HAIKU }],
        rate_limits: { [GPT]: { rpm: 2 } }
      })
      const answers = yield* Effect.forEach([1, 2, 3], () => client.completions.create(ask))
      assert.deepStrictEqual(
        answers.map((a) => a.model),
        [GPT, GPT, HAIKU]
      )
      assert.deepStrictEqual(answers[2]?.attempts[0], {
        model: GPT,
        outcome: "skipped",
        duration: Duration.zero,
        // Two requests a minute refill one every 30 s.
        skip: { reason: "budget", until: 30_000, cause: "rpm" }
      })
      assert.deepStrictEqual(scripted.order(), [GPT, GPT, HAIKU])
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
    })
  )

  it("tpm: reserves the estimate, settles with the real count, and a call that used more is owed", () => {
    const budget = RateBudget.unsafeMakeMemory()
    const limit = { tpm: 1000 }
    const first = budget.reserve(GPT, limit, 600, 0)
    assert.strictEqual(first._tag, "Reserved")
    // 400 left: a second estimate of 600 must wait for 200 more tokens, 12 s at 1,000 a minute.
    assert.deepStrictEqual(budget.reserve(GPT, limit, 600, 0), { _tag: "Over", budget: "tpm", until: 12_000 })
    // The first call used only 100: 500 come back, and the 600 fit at once.
    if (first._tag === "Reserved") budget.settle(first.reservation, 100, 0)
    const second = budget.reserve(GPT, limit, 600, 0)
    assert.strictEqual(second._tag, "Reserved")
    // It used 1,200: the 600 more are owed, so 300 - 600 = -300 left; 100 tokens need 24 s.
    if (second._tag === "Reserved") budget.settle(second.reservation, 1200, 0)
    assert.deepStrictEqual(budget.reserve(GPT, limit, 100, 0), { _tag: "Over", budget: "tpm", until: 24_000 })
  })

  it("a call larger than the whole budget goes when the bucket is full, and the rest is owed", () => {
    const budget = RateBudget.unsafeMakeMemory()
    assert.strictEqual(budget.reserve(GPT, { tpm: 100 }, 500, 0)._tag, "Reserved")
    // 400 owed plus the 100 needed, at 100 a minute: 5 minutes.
    assert.deepStrictEqual(budget.reserve(GPT, { tpm: 100 }, 500, 0), { _tag: "Over", budget: "tpm", until: 300_000 })
  })

  it("the estimate: about four characters a token, plus max_tokens", () => {
    assert.strictEqual(RateBudget.estimateTokens({ messages: [{ role: "user", content: "12345678" }] }), 2)
    assert.strictEqual(
      RateBudget.estimateTokens({ messages: [{ role: "user", content: "123456789" }], max_tokens: 100 }),
      103
    )
  })

  it.effect("a failed call gives its tokens back; a success settles with its usage", () =>
    Effect.gen(function* () {
      const scripted = ScriptedProvider.make({ [GPT]: [ScriptedProvider.fail("ServerError")] })
      const health = ModelHealth.unsafeMakeMemory({})
      const client = Either.getOrThrow(
        IronlabsClient.makeWith(
          {
            reliability: {
              failover_chain: [{ model: GPT, max_retries: 1, backoff: 0 }],
              rate_limits: { [GPT]: { rpm: 10 } }
            }
          },
          scripted.registry,
          health
        )
      )
      const answer = yield* client.completions.create(ask)
      // Two calls, two requests spent: the retry reserved its own.
      assert.deepStrictEqual(
        answer.attempts.map((a) => a.outcome),
        ["failure", "success"]
      )
    })
  )
})

describe("a successful reply that says a rate limit is spent", () => {
  it.effect("holds the model until the reset, before it answers 429", () =>
    Effect.gen(function* () {
      const base = ScriptedProvider.make({}).registry.get("openai")!
      const spending: Provider.Provider = {
        ...base,
        complete: (call) =>
          Effect.zipRight(
            call.onLimitSpent?.({ limit: "requests", resetsIn: Duration.seconds(20) }) ?? Effect.void,
            base.complete(call)
          )
      }
      const registry = new Map([...ScriptedProvider.make({}).registry, ["openai", spending]])
      const { client, health } = setup({ failover_chain: [{ model: GPT }, { model: HAIKU }] }, registry)
      assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
      const [held] = yield* health.snapshot
      assert.deepStrictEqual([held?.state, held?.until, held?.reason], ["held", 20_000, "RateLimited"])
      const next = yield* client.completions.create(ask)
      assert.strictEqual(next.model, HAIKU)
      assert.deepStrictEqual(next.attempts[0]?.skip, { reason: "held", until: 20_000, cause: "RateLimited" })
      // Released at the reset: called again.
      yield* TestClock.adjust("20 seconds")
      const [released] = yield* health.snapshot
      assert.strictEqual(released?.state, "healthy")
      assert.strictEqual((yield* client.completions.create(ask)).model, GPT)
    })
  )
})
