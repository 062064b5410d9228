/**
 * `IronlabsLanguageModel` over scripted providers, under `TestClock`: an
 * unchanged `@effect/ai` program fails over, names the model that answered,
 * and streams each text once.
 */
import { LanguageModel, Prompt } from "@effect/ai"
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Chunk, Effect, Fiber, Layer, Option, Stream, TestClock } from "effect"
import { IronlabsLanguageModel } from "../src/index.js"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const chain: Reliability.Input = { failover_chain: [{ model: GPT }, { model: HAIKU }] }

/** The `LanguageModel` layer over scripted providers. */
const modelLayer = (script: Parameters<typeof ScriptedProvider.make>[0], reliability: Reliability.Input = chain) => {
  const scripted = ScriptedProvider.make(script)
  const layer = IronlabsLanguageModel.layerWithClient().pipe(
    Layer.provide(IronlabsClient.layerWithProviders({ reliability })),
    Layer.provide(scripted.layer),
    Layer.orDie
  )
  return { scripted, layer }
}

/** Runs `effect` in a fiber, drives the `TestClock`, and returns its result. */
const runToEnd = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.join(fiber)
  })

describe("IronlabsLanguageModel over scripted providers", () => {
  it.effect("generateText is answered by the second model after the first fails", () =>
    Effect.gen(function* () {
      const { scripted, layer } = modelLayer({
        [GPT]: [ScriptedProvider.fail("Authentication", { status: 401 })],
        [HAIKU]: [ScriptedProvider.succeed("A red sky.")]
      })
      const response = yield* runToEnd(
        LanguageModel.generateText({ prompt: "Describe a sunset." }).pipe(Effect.provide(layer))
      )
      assert.strictEqual(response.text, "A red sky.")
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
      assert.strictEqual(response.finishReason, "stop")
      const metadata = response.content.find((part) => part.type === "response-metadata")
      assert.isDefined(metadata)
      assert.deepStrictEqual(metadata!.modelId, Option.some(HAIKU))
      const trace = metadata!.metadata["ironlabsai"]?.["attempts"] as ReadonlyArray<{ model: string; outcome: string }>
      assert.deepStrictEqual(
        trace.map((a) => [a.model, a.outcome]),
        [
          [GPT, "failure"],
          [HAIKU, "success"]
        ]
      )
    })
  )

  it.effect("the prompt reaches the router as chat messages", () =>
    Effect.gen(function* () {
      const { scripted, layer } = modelLayer({ [GPT]: [ScriptedProvider.succeed("ok")] })
      yield* runToEnd(
        LanguageModel.generateText({
          prompt: Prompt.make([
            { role: "system", content: "Be brief." },
            { role: "user", content: [{ type: "text", text: "Hi" }] },
            { role: "assistant", content: [{ type: "text", text: "Hello." }] },
            { role: "user", content: "Bye" }
          ])
        }).pipe(Effect.provide(layer))
      )
      assert.deepStrictEqual(scripted.calls[0]!.request.messages, [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello." },
        { role: "user", content: "Bye" }
      ])
    })
  )

  it.effect("every model failing is an AiError keeping the reason, status and attempt trace", () =>
    Effect.gen(function* () {
      const { layer } = modelLayer({
        [GPT]: [ScriptedProvider.fail("Authentication", { status: 401 })],
        [HAIKU]: [ScriptedProvider.fail("NotFound", { status: 404 })]
      })
      const error = yield* runToEnd(
        LanguageModel.generateText({ prompt: "Hi" }).pipe(Effect.provide(layer), Effect.flip)
      )
      assert.strictEqual(error._tag, "UnknownError")
      assert.include(error.message, "AllModelsFailed after 2 attempts")
      assert.include(error.message, `last: ${HAIKU} NotFound (status 404)`)
      const routing = IronlabsLanguageModel.routingError(error)
      assert.isTrue(Option.isSome(routing))
      const cause = Option.getOrThrow(routing)
      assert.strictEqual(cause._tag, "AllModelsFailed")
      assert.deepStrictEqual(
        (cause as { attempts: ReadonlyArray<{ model: string }> }).attempts.map((a) => a.model),
        [GPT, HAIKU]
      )
    })
  )

  it.effect("streamText fails over before the first content and emits each text once", () =>
    Effect.gen(function* () {
      const { scripted, layer } = modelLayer({
        [GPT]: [ScriptedProvider.breakAfter(0, "Authentication")],
        [HAIKU]: [ScriptedProvider.succeed(undefined, { chunks: ["A red ", "sky."], interval: "10 millis" })]
      })
      const parts = yield* runToEnd(
        LanguageModel.streamText({ prompt: "Describe a sunset." }).pipe(Stream.runCollect, Effect.provide(layer))
      )
      const all = Chunk.toReadonlyArray(parts)
      const text = all.flatMap((part) => (part.type === "text-delta" ? [part.delta] : [])).join("")
      assert.strictEqual(text, "A red sky.")
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
      const metadata = all.filter((part) => part.type === "response-metadata")
      assert.strictEqual(metadata.length, 1)
      assert.deepStrictEqual(metadata[0]!.modelId, Option.some(HAIKU))
      assert.deepStrictEqual(
        all.map((part) => part.type),
        ["response-metadata", "text-start", "text-delta", "text-delta", "text-end", "finish"]
      )
    })
  )
})
