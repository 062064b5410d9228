import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { DefaultProviders, IronlabsClient, UndiciHttpClient } from "ironlabsai"
import { ConfigProvider, Effect, Layer } from "effect"
import { clientLayer } from "./support.js"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

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

describe("Cooperative deadlines", () => {
  it.effect(
    "providers over UndiciHttpClient enforce the attempt deadline themselves (cooperative); over another client the router does (aggressive)",
    () =>
      Effect.gen(function* () {
        const lean = yield* DefaultProviders.make({ openai: { apiKey: "sk-x" }, anthropic: { apiKey: "sk-y" } }).pipe(
          Effect.provide(UndiciHttpClient.layer)
        )
        const platform = yield* DefaultProviders.make({
          openai: { apiKey: "sk-x" },
          anthropic: { apiKey: "sk-y" }
        }).pipe(Effect.provide(NodeHttpClient.layerUndici))
        assert.deepStrictEqual(
          [...lean.values()].map((p) => p.deadline),
          ["cooperative", "cooperative"]
        )
        assert.deepStrictEqual(
          [...platform.values()].map((p) => p.deadline),
          ["aggressive", "aggressive"]
        )
      })
  )

  layer(Simulator.layer(), { excludeTestServices: true })((it) => {
    it.effect(
      "a cooperative deadline ends a hung attempt with Timeout at the model's timeout and closes its socket",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.SimulatorService
          sim.reset()
          sim.script("gpt-4o", { hang: true })
          const started = Date.now()
          const error = yield* Effect.flip(
            Effect.flatMap(IronlabsClient, (client) =>
              client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
            ).pipe(
              Effect.provide(
                IronlabsClient.layer({
                  reliability: { failover_chain: [{ model: "openai/gpt-4o", timeout: 0.3, max_retries: 0 }] },
                  openai: { apiKey: "sk-x", baseURL: sim.openaiBaseUrl }
                }).pipe(Layer.provide(UndiciHttpClient.layer))
              )
            )
          )
          const elapsed = Date.now() - started
          assert.strictEqual(error._tag, "AllModelsFailed")
          assert.deepStrictEqual(
            error._tag === "AllModelsFailed" ? error.attempts.map((a) => [a.error?.reason, a.error?.description]) : [],
            [["Timeout", "no answer within 300ms"]]
          )
          assert.isAtLeast(elapsed, 290)
          assert.isBelow(elapsed, 1500)
          yield* Effect.promise(() => sim.waitForClientClose(1))
        })
    )
  })
})

describe("IronlabsClient.layer: a model whose provider has no key", () => {
  it.effect("fails the layer with ConnectionConfigError naming the variable, before any request", () =>
    Effect.gen(function* () {
      const layer = IronlabsClient.layer({
        reliability: { failover_chain: [{ model: GPT }, { model: HAIKU }] }
      }).pipe(
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "sk-openai-test"]]))))
      )
      const error = yield* Effect.flip(Layer.build(layer).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "ConnectionConfigError")
      if (error._tag === "ConnectionConfigError") {
        assert.deepStrictEqual(
          error.issues.map((issue) => issue.path),
          ["anthropic.apiKey"]
        )
        assert.include(error.message, "set ANTHROPIC_API_KEY")
      }
    })
  )
})
