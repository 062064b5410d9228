/**
 * Nothing dropped silently (DESIGN §6): a model whose provider cannot serve a
 * field of the request is skipped for it, costing no call, and the trace names
 * the fields; when no model can serve it, `NoModelAvailable` says so per model.
 */
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, IronlabsClient, type Provider, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Chunk, Effect, Either, Random, Stream } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Hi" }] } as const

/** Scripted providers where `anthropic` cannot serve `seed` (as the real Anthropic wire cannot). */
const setup = (reliability: Reliability.Input, script: Parameters<typeof ScriptedProvider.make>[0] = {}) => {
  const scripted = ScriptedProvider.make(script)
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

describe("Router: drop_unsupported_params", () => {
  it.effect("sends the model the request without the fields it cannot serve, and the trace says what was dropped", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({
        failover_chain: [{ model: HAIKU }, { model: GPT }],
        drop_unsupported_params: true
      })
      const answer = yield* client.completions.create({ ...ask, seed: 7, temperature: 0.5 })
      assert.strictEqual(answer.model, HAIKU)
      assert.deepStrictEqual(scripted.order(), [HAIKU])
      assert.deepStrictEqual(scripted.calls[0]?.request, { ...ask, temperature: 0.5 })
      assert.deepStrictEqual(
        answer.attempts.map((a) => [a.model, a.outcome, a.dropped]),
        [[HAIKU, "success", ["seed"]]]
      )
    })
  )

  it.effect("every retry of the model gets the same trimmed request, and each attempt says so", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        {
          failover_chain: [{ model: HAIKU, max_retries: 1, backoff: 0 }, { model: GPT }],
          drop_unsupported_params: true
        },
        { [HAIKU]: [ScriptedProvider.fail("ServerError")] }
      )
      const answer = yield* client.completions.create({ ...ask, seed: 7 })
      assert.deepStrictEqual(scripted.order(), [HAIKU, HAIKU])
      assert.deepStrictEqual(
        scripted.calls.map((call) => call.request.seed),
        [undefined, undefined]
      )
      assert.deepStrictEqual(
        answer.attempts.map((a) => [a.model, a.outcome, a.dropped]),
        [
          [HAIKU, "failure", ["seed"]],
          [HAIKU, "success", ["seed"]]
        ]
      )
    })
  )

  it.effect("a model that can serve the request whole has nothing dropped", () =>
    Effect.gen(function* () {
      const { client } = setup({ failover_chain: [{ model: GPT }, { model: HAIKU }], drop_unsupported_params: true })
      const answer = yield* client.completions.create({ ...ask, seed: 7 })
      assert.deepStrictEqual(
        answer.attempts.map((a) => [a.model, a.outcome, a.dropped]),
        [[GPT, "success", undefined]]
      )
    })
  )

  it.effect("a stream too", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ failover_chain: [{ model: HAIKU }], drop_unsupported_params: true })
      const chunks = yield* Stream.runCollect(client.completions.create({ ...ask, seed: 7, stream: true }))
      assert.deepStrictEqual(scripted.order(), [HAIKU])
      assert.strictEqual(scripted.calls[0]?.request.seed, undefined)
      assert.isTrue(Chunk.every(chunks, (chunk) => chunk.model === HAIKU))
    })
  )
})

describe("ChatCompletion.withoutFields", () => {
  const request: ChatCompletion.ChatCompletionRequest = {
    messages: [
      { role: "user", content: [{ type: "text", text: "a" }, { type: "input_audio" }, { type: "file" }] },
      { role: "assistant", content: "b", name: "bot" }
    ],
    seed: 1,
    tools: [{ type: "function", function: { name: "f", strict: true } }]
  }

  it("takes out fields, list elements (later ones first, so indices hold) and nested fields", () => {
    const trimmed = ChatCompletion.withoutFields(request, [
      "seed",
      "messages[0].content[1]",
      "messages[0].content[2]",
      "messages[1].name",
      "tools[0].function.strict"
    ])
    assert.deepStrictEqual(trimmed, {
      messages: [
        { role: "user", content: [{ type: "text", text: "a" }] },
        { role: "assistant", content: "b" }
      ],
      tools: [{ type: "function", function: { name: "f" } }]
    })
  })

  it("leaves the request it was given unchanged, and ignores paths that name nothing", () => {
    const before = structuredClone(request)
    const trimmed = ChatCompletion.withoutFields(request, ["messages[5]", "nothing.here", "messages[0].content[9]"])
    assert.deepStrictEqual(trimmed, request)
    assert.deepStrictEqual(request, before)
  })

  it("finds a key that is not an identifier by the path fieldPath gives it", () => {
    const odd = { ...request, "extra.option": 1, messages: [{ role: "user", content: "a", 'we"ird[0]': 2 }] }
    const paths = [ChatCompletion.fieldPath("", "extra.option"), ChatCompletion.fieldPath("messages[0]", 'we"ird[0]')]
    assert.deepStrictEqual(paths, ['["extra.option"]', 'messages[0]["we\\"ird[0]"]'])
    const trimmed = ChatCompletion.withoutFields(odd as ChatCompletion.ChatCompletionRequest, paths)
    assert.deepStrictEqual(trimmed, { ...request, messages: [{ role: "user", content: "a" }] })
  })

  it("takes a whole message out", () => {
    const trimmed = ChatCompletion.withoutFields(request, ["messages[0]"])
    assert.deepStrictEqual(trimmed.messages, [{ role: "assistant", content: "b", name: "bot" }])
  })
})
