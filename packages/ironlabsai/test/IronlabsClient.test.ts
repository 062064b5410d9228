import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsClient, type IronlabsClientOptions } from "ironlabsai"
import { ConfigProvider, Effect, Layer } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

/** The client as DESIGN §2 builds it, with env read from a map that points at the simulator. */
const clientLayer = (sim: Simulator.Simulator, reliability: IronlabsClientOptions["reliability"]) =>
  IronlabsClient.layer({ reliability }).pipe(
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
    )
  )

describe("IronlabsClient (Effect API)", () => {
  layer(Simulator.layer({ openaiApiKey: "sk-openai-test", anthropicApiKey: "sk-ant-test" }), {
    excludeTestServices: true
  })((it) => {
    it.effect("the weighted seed runs over HTTP with keys and base URLs from Config", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        sim.reset()
        sim.script("gpt-4o", { status: 500 }, { status: 500 }, { status: 500 })
        const program = Effect.gen(function* () {
          const client = yield* IronlabsClient
          return yield* client.completions.create({
            messages: [{ role: "user", content: "Write a haiku about the ocean." }]
          })
        })
        const response = yield* program.pipe(
          Effect.provide(
            clientLayer(sim, {
              weights: { [GPT]: 0.7, [HAIKU]: 0.3 },
              max_retries: { [GPT]: 2, [HAIKU]: 1 },
              timeout: { [GPT]: 5.0, [HAIKU]: 5.0 },
              backoff: { [GPT]: 0.01, [HAIKU]: 0.01 },
              model_messages: { [GPT]: [{ role: "user", content: "Please provide a concise response." }] }
            })
          )
        )
        // Haiku answers either way: drawn first, at once; or after GPT's three 500s (1 + 2 retries).
        assert.strictEqual(response.model, HAIKU)
        assert.strictEqual(response.choices[0]!.message.content, "Simulated answer from claude-3-5-haiku-20241022.")
        const order = sim.requests.map((r) => r.model)
        assert.oneOf(order.join(","), ["claude-3-5-haiku-20241022", "gpt-4o,gpt-4o,gpt-4o,claude-3-5-haiku-20241022"])
        assert.deepStrictEqual(
          response.attempts.map((a) => a.model),
          order.map((m) => (m === "gpt-4o" ? GPT : HAIKU))
        )
      })
    )

    it.effect("a bad config fails the layer with ReliabilityConfigError", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        const error = yield* Effect.flip(
          Effect.provide(IronlabsClient, clientLayer(sim, { failover_chain: [{ model: "nowhere/x" }] }))
        )
        assert.strictEqual(error._tag, "ReliabilityConfigError")
      })
    )
  })
})
