/**
 * Nothing dropped silently (DESIGN §6): a model whose provider cannot serve a
 * field of the request is skipped for it, costing no call, and the trace names
 * the fields; when no model can serve it, `NoModelAvailable` says so per model.
 */
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, type Provider, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Chunk, Effect, Either, Random, Stream } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Hi" }] } as const

/** Scripted providers where `anthropic` cannot serve `seed` (as the real Anthropic wire cannot). */
const setup = (reliability: Reliability.Input) => {
  const scripted = ScriptedProvider.make({})
  const anthropic = scripted.registry.get("anthropic")!
  const registry = new Map<string, Provider.Provider>([
    ...scripted.registry,
    ["anthropic", { ...anthropic, unsupported: ({ request }) => (request.seed === undefined ? [] : ["seed"]) }]
  ])
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability }, registry))
  return { scripted, client }
}

describe("Router: a model that cannot serve the request", () => {
  it.effect("is skipped in a chain without a call, and the trace names the field", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ failover_chain: [{ model: HAIKU }, { model: GPT }] })
      const answer = yield* client.completions.create({ ...ask, seed: 7 })
      assert.strictEqual(answer.model, GPT)
      assert.deepStrictEqual(scripted.order(), [GPT])
      assert.deepStrictEqual(answer.attempts[0]?.skip, { reason: "unsupported", fields: ["seed"] })
      assert.deepStrictEqual(
        answer.attempts.map((a) => [a.model, a.outcome]),
        [
          [HAIKU, "skipped"],
          [GPT, "success"]
        ]
      )
    })
  )

  it.effect("is never drawn in a weighted config: every request goes to the model that can serve it", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ weights: { [GPT]: 0.3, [HAIKU]: 0.7 } })
      for (let i = 0; i < 50; i++) yield* client.completions.create({ ...ask, seed: i })
      assert.strictEqual(scripted.count(HAIKU), 0)
      assert.strictEqual(scripted.count(GPT), 50)
      // Without the field, both models serve: the draw is the weights' again.
      for (let i = 0; i < 50; i++) yield* client.completions.create(ask)
      assert.isAbove(scripted.count(HAIKU), 0)
    }).pipe(Effect.withRandom(Random.make(42)))
  )

  it.effect("does not count against the model's health", () =>
    Effect.gen(function* () {
      const { client } = setup({ failover_chain: [{ model: HAIKU }, { model: GPT }] })
      for (let i = 0; i < 5; i++) yield* client.completions.create({ ...ask, seed: i })
      const [haiku] = yield* client.health
      assert.deepStrictEqual([haiku?.state, haiku?.recentCalls, haiku?.recentRequests], ["healthy", 0, 0])
    })
  )

  it.effect("when no model can serve it: NoModelAvailable, with each model's fields, and no call", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ failover_chain: [{ model: HAIKU }] })
      const error = yield* Effect.flip(client.completions.create({ ...ask, seed: 7 }))
      assert.strictEqual(error._tag, "NoModelAvailable")
      if (error._tag !== "NoModelAvailable") return
      assert.deepStrictEqual(scripted.calls, [])
      assert.strictEqual(error.message, `No model available: ${HAIKU}: cannot serve seed`)
      assert.deepStrictEqual(error.attempts[0]?.skip, { reason: "unsupported", fields: ["seed"] })
    })
  )

  it.effect("a stream skips it too", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ failover_chain: [{ model: HAIKU }, { model: GPT }] })
      const chunks = yield* Stream.runCollect(client.completions.create({ ...ask, seed: 7, stream: true }))
      assert.deepStrictEqual(scripted.order(), [GPT])
      assert.isTrue(Chunk.every(chunks, (chunk) => chunk.model === GPT))
    })
  )
})
