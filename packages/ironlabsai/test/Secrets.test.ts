/**
 * A canary key through the Effect API with a recording tracer and logger: no
 * span attribute, span exit, log line, error or inspect output may contain it.
 */
import { inspect } from "node:util"
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsClient } from "ironlabsai"
import { Cause, Effect, Exit, Layer, Logger, Tracer } from "effect"

const CANARY = "sk-canary-7d2e90b1"
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

describe("Secrets", () => {
  layer(Simulator.layer(), { excludeTestServices: true })((it) => {
    it.effect("the key appears in no span, log line, error or inspect output", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        sim.reset()
        // A 401 that echoes the key, a reset, a 500 with the key in HTML, then a success.
        sim.script("gpt-4o", { status: 401, error: { type: "invalid_request_error", message: `bad key ${CANARY}` } })
        sim.script(
          "claude-3-5-haiku-20241022",
          { reset: "before-headers" },
          { status: 500, body: `<html>${CANARY}</html>` },
          {}
        )
        const spans: Array<Tracer.Span> = []
        const logs: Array<string> = []
        const base = yield* Effect.tracer
        const recording = Tracer.make({
          span: (...args) => {
            const span = base.span(...args)
            spans.push(span)
            return span
          },
          context: base.context
        })
        const client = IronlabsClient.layer({
          reliability: {
            failover_chain: [
              { model: GPT, max_retries: 0 },
              { model: HAIKU, max_retries: 2, backoff: 0.01 }
            ],
            // Without model memory: the second request must call gpt-4o again (its reply carries the canary).
            health: false
          },
          openai: { apiKey: CANARY, baseURL: sim.openaiBaseUrl },
          anthropic: { apiKey: CANARY, baseURL: sim.anthropicBaseUrl }
        }).pipe(Layer.provide(NodeHttpClient.layerUndici))
        const program = Effect.gen(function* () {
          const ironlabs = yield* IronlabsClient
          const ok = yield* ironlabs.completions.create({ messages: [{ role: "user", content: "Hi" }] })
          yield* Effect.logError("answered", ok)
          // Everything fails now: the error itself must be clean too.
          sim.script("gpt-4o", { status: 401, error: { type: "authentication_error", message: CANARY } })
          sim.script("claude-3-5-haiku-20241022", { status: 403, body: CANARY }, { status: 403 }, { status: 403 })
          const failed = yield* Effect.exit(
            ironlabs.completions.create({ messages: [{ role: "user", content: "Hi" }] })
          )
          yield* Effect.logError("failed", failed)
          return { ok, failed }
        }).pipe(Effect.withSpan("test"))
        const { ok, failed } = yield* program.pipe(
          Effect.provide(client),
          Effect.withTracer(recording),
          Effect.provide(
            Logger.replace(
              Logger.defaultLogger,
              Logger.make(({ message, cause }) => {
                logs.push(inspect(message, { depth: 10 }), Cause.pretty(cause))
              })
            )
          )
        )
        assert.strictEqual(ok.model, HAIKU)
        assert.isTrue(Exit.isFailure(failed))
        // The key did reach the wire, so the canary is a real test.
        assert.strictEqual(sim.requests[0]!.headers.authorization, `Bearer ${CANARY}`)
        assert.strictEqual(sim.requests[1]!.headers["x-api-key"], CANARY)

        const texts = [
          ...spans.flatMap((span) => [
            span.name,
            inspect([...span.attributes], { depth: 10 }),
            span.status._tag === "Ended" ? inspect(span.status.exit, { depth: 10 }) : ""
          ]),
          ...logs,
          String(ok),
          inspect(ok, { depth: 10 }),
          JSON.stringify(ok),
          Exit.isFailure(failed) ? Cause.pretty(failed.cause) : "",
          inspect(failed, { depth: 10 }),
          JSON.stringify(failed)
        ]
        for (const text of texts) assert.notInclude(text, CANARY)
        // Each call has our span, naming the model and never a header.
        const calls = spans.filter((s) => s.name.startsWith("chat "))
        assert.deepStrictEqual(
          calls.map((s) => s.attributes.get("ironlabsai.model")),
          [GPT, HAIKU, HAIKU, HAIKU, GPT, HAIKU]
        )
        assert.isFalse(calls.some((s) => [...s.attributes.keys()].some((k) => k.includes("header"))))
      })
    )
  })
})
