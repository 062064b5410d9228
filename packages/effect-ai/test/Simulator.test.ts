/**
 * `IronlabsLanguageModel.layer` over the loopback simulator, on both wires:
 * a `Toolkit` round trip whose handler runs once across a failover,
 * `generateObject` decoding a Schema, and `streamText` failing over.
 */
import { LanguageModel, Prompt, Tool, Toolkit } from "@effect/ai"
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { Chunk, ConfigProvider, Effect, Layer, Option, Schema, Stream } from "effect"
import { IronlabsLanguageModel } from "../src/index.js"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const wires = [
  { model: GPT, wireModel: "gpt-4o", other: HAIKU, otherWire: "claude-3-5-haiku-20241022", wire: "openai" },
  { model: HAIKU, wireModel: "claude-3-5-haiku-20241022", other: GPT, otherWire: "gpt-4o", wire: "anthropic" }
] as const

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ openaiApiKey: "sk-openai-test", anthropicApiKey: "sk-ant-test" })
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

/** The model layer over the simulator: `other` fails first, `model` answers. */
const modelLayer = (first: string, second: string) =>
  IronlabsLanguageModel.layer({ reliability: { failover_chain: [{ model: first }, { model: second }] } }).pipe(
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provide(
      Layer.setConfigProvider(
        ConfigProvider.fromMap(
          new Map([
            ["OPENAI_API_KEY", "sk-openai-test"],
            ["OPENAI_BASE_URL", sim.openaiBaseUrl],
            ["ANTHROPIC_API_KEY", "sk-ant-test"],
            ["ANTHROPIC_BASE_URL", sim.anthropicBaseUrl]
          ])
        )
      )
    ),
    Layer.orDie
  )

const Weather = Tool.make("weather", {
  description: "The weather in a city",
  parameters: { city: Schema.String },
  success: Schema.String
})
const Tools = Toolkit.make(Weather)

const Forecast = Schema.Struct({ city: Schema.String, celsius: Schema.Number })

const unauthorized = { status: 401, error: { type: "authentication_error", message: "bad key" } }

describe.each(wires)("over the simulator, answered on $wire", ({ model, wireModel, other, otherWire }) => {
  it.effect("a Toolkit round trip runs its handler exactly once across a failover", () =>
    Effect.gen(function* () {
      sim.script(otherWire, unauthorized)
      sim.script(wireModel, { toolCalls: [{ id: "call_paris", name: "weather", arguments: { city: "Paris" } }] })
      sim.script(wireModel, { content: "It is 18 C in Paris." })
      let runs = 0
      const handlers = Tools.toLayer({
        weather: ({ city }) =>
          Effect.sync(() => {
            runs++
            return `${city}: 18 C`
          })
      })
      const prompt = Prompt.make("What is the weather in Paris?")
      const first = yield* LanguageModel.generateText({ prompt, toolkit: Tools }).pipe(Effect.provide(handlers))
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(
        first.toolCalls.map((call) => [call.id, call.name, call.params]),
        [["call_paris", "weather", { city: "Paris" }]]
      )
      assert.deepStrictEqual(
        first.toolResults.map((result) => result.result),
        ["Paris: 18 C"]
      )
      assert.strictEqual(first.finishReason, "tool-calls")
      const second = yield* LanguageModel.generateText({
        prompt: Prompt.merge(prompt, Prompt.fromResponseParts(first.content)),
        toolkit: Tools
      }).pipe(Effect.provide(handlers))
      assert.strictEqual(second.text, "It is 18 C in Paris.")
      assert.strictEqual(runs, 1)
      const metadata = second.content.find((part) => part.type === "response-metadata")
      assert.deepStrictEqual(metadata?.modelId, Option.some(model))
      // The failed model was asked once, then each turn went to the answering model.
      assert.deepStrictEqual(
        sim.requests.map((request) => request.model),
        [otherWire, wireModel, wireModel]
      )
    }).pipe(Effect.provide(modelLayer(other, model)))
  )

  it.effect("generateObject decodes its Schema from the answer after a failover", () =>
    Effect.gen(function* () {
      sim.script(otherWire, unauthorized)
      sim.script(wireModel, { json: { city: "Paris", celsius: 18 } })
      const response = yield* LanguageModel.generateObject({
        prompt: "Paris is at 18 degrees today.",
        schema: Forecast,
        objectName: "forecast"
      })
      assert.deepStrictEqual(response.value, { city: "Paris", celsius: 18 })
      const metadata = response.content.find((part) => part.type === "response-metadata")
      assert.deepStrictEqual(metadata?.modelId, Option.some(model))
      assert.deepStrictEqual(
        sim.requests.map((request) => request.model),
        [otherWire, wireModel]
      )
    }).pipe(Effect.provide(modelLayer(other, model)))
  )

  it.effect("streamText fails over before the first content and streams each text once", () =>
    Effect.gen(function* () {
      sim.script(otherWire, unauthorized)
      sim.script(wireModel, { chunks: ["A red ", "sky ", "at dusk."] })
      const parts = Chunk.toReadonlyArray(
        yield* LanguageModel.streamText({ prompt: "Describe a sunset." }).pipe(Stream.runCollect)
      )
      const text = parts.flatMap((part) => (part.type === "text-delta" ? [part.delta] : [])).join("")
      assert.strictEqual(text, "A red sky at dusk.")
      const metadata = parts.filter((part) => part.type === "response-metadata")
      assert.strictEqual(metadata.length, 1)
      assert.deepStrictEqual(metadata[0]!.modelId, Option.some(model))
      assert.strictEqual(parts.at(-1)?.type, "finish")
    }).pipe(Effect.provide(modelLayer(other, model)))
  )
})
