/**
 * The OpenAI provider over real HTTP against the loopback simulator: what is
 * OpenAI's own. The request is passed through whole (the model name after the
 * first slash, the bearer key), the reply decoded as sent, and an error's
 * `code` wins over its `type`. What every wire shares (classification,
 * retry-after, caps, secrets, cancellation, redirects, gzip) is the
 * conformance suite's, in Conformance.test.ts, over every HTTP client.
 */
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { type ChatCompletion, ModelId, ProviderError } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { OpenAiProvider } from "../src/index.js"

/** Any client will do for the wire's own mapping: the suite runs every behaviour over each of them. */
const HttpLive = FetchHttpClient.layer

const GPT = ModelId.parse("openai/gpt-4o")!
const KEY = "sk-test-0000"
const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }

/** A provider on the shared simulator, which is reset first. */
const setup = (options: OpenAiProvider.Options = {}) =>
  Effect.gen(function* () {
    const sim = yield* Simulator.SimulatorService
    sim.reset()
    const provider = yield* OpenAiProvider.make({
      apiKey: Redacted.make(KEY),
      baseURL: sim.openaiBaseUrl,
      ...options
    })
    return { sim, provider }
  })

/** The error of a call that must fail; a completion instead is a test failure that names it. */
const failureOf = (effect: Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError>) =>
  Effect.matchEffect(effect, {
    onFailure: Effect.succeed,
    onSuccess: (completion) => Effect.dieMessage(`expected a ProviderError, got completion ${completion.id}`)
  })

/**
 * One simulator and one HTTP client for the file. Test services are excluded:
 * `it.effect` runs on the live clock here (real sockets, real time).
 */
layer(Layer.merge(Simulator.layer(), HttpLive), { excludeTestServices: true })("OpenAiProvider", (it) => {
  describe("request mapping", () => {
    it.effect("posts the request to {base}/chat/completions with the bearer key and the wire model name", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const request: ChatCompletion.ChatCompletionRequest = {
          messages: [
            { role: "system", content: "You are terse." },
            { role: "user", content: "Say hello", name: "ada" },
            { role: "assistant", content: "Hello." },
            { role: "user", content: [{ type: "text", text: "Again" }] }
          ],
          temperature: 0.3,
          top_p: 0.9,
          max_tokens: 64,
          max_completion_tokens: 80,
          stop: ["END", "STOP"],
          presence_penalty: 0.5,
          frequency_penalty: -0.5,
          seed: 7,
          user: "user-42",
          metadata: { team: "blue" }
        }
        yield* provider.complete({ model: GPT, request })
        assert.strictEqual(sim.requests.length, 1)
        const recorded = sim.requests[0]!
        assert.strictEqual(recorded.method, "POST")
        assert.strictEqual(recorded.path, "/v1/chat/completions")
        assert.strictEqual(recorded.wire, "openai")
        assert.strictEqual(recorded.headers["authorization"], `Bearer ${KEY}`)
        assert.strictEqual(recorded.headers["content-type"], "application/json")
        assert.strictEqual(recorded.headers["accept"], "application/json")
        assert.isUndefined(recorded.headers["x-api-key"])
        assert.deepStrictEqual(recorded.body, { ...request, model: "gpt-4o" })
      })
    )

    it.effect("passes a string stop through as a string and leaves unset parameters out", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        yield* provider.complete({ model: GPT, request: { ...ask, stop: "END" } })
        assert.deepStrictEqual(sim.requests[0]?.body, {
          model: "gpt-4o",
          messages: [{ role: "user", content: "Say hello" }],
          stop: "END"
        })
      })
    )

    it.effect("sends the model name after the first slash only, e.g. for OpenRouter-style names", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const model = ModelId.parse("openai/meta-llama/llama-3-8b")!
        yield* provider.complete({ model, request: ask })
        assert.strictEqual(sim.requests[0]?.model, "meta-llama/llama-3-8b")
      })
    )

    it.effect("tolerates a trailing slash on the base URL", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const slashed = yield* OpenAiProvider.make({ apiKey: Redacted.make(KEY), baseURL: `${sim.openaiBaseUrl}//` })
        yield* slashed.complete({ model: GPT, request: ask })
        assert.strictEqual(sim.requests[0]?.path, "/v1/chat/completions")
      })
    )
  })

  describe("response mapping", () => {
    it.effect("decodes the completion: id, object, content, finish_reason and usage as sent", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", {
          content: "Hello there, friend.",
          finishReason: "length",
          usage: { promptTokens: 7, completionTokens: 3 }
        })
        const before = Math.floor(Date.now() / 1000)
        const completion = yield* provider.complete({ model: GPT, request: ask })
        const after = Math.floor(Date.now() / 1000)
        assert.isTrue(completion.created >= before && completion.created <= after, `created ${completion.created}`)
        assert.deepStrictEqual(completion, {
          id: "chatcmpl-sim-1",
          object: "chat.completion",
          created: completion.created,
          model: "gpt-4o",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: "Hello there, friend.", refusal: null },
              finish_reason: "length",
              logprobs: null
            }
          ],
          usage: {
            prompt_tokens: 7,
            completion_tokens: 3,
            total_tokens: 10,
            prompt_tokens_details: { cached_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: 0 }
          }
        })
      })
    )

    it.effect("passes content_filter, tool_calls and stop through unchanged", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { finishReason: "content_filter" }, { finishReason: "tool_calls" }, {})
        const reasons: Array<string> = []
        for (let i = 0; i < 3; i++) {
          const completion = yield* provider.complete({ model: GPT, request: ask })
          reasons.push(completion.choices[0]?.finish_reason ?? "missing")
        }
        assert.deepStrictEqual(reasons, ["content_filter", "tool_calls", "stop"])
      })
    )
  })

  describe("errors in OpenAI's words", () => {
    it.effect(
      "an error's code wins over its type: 429 with code insufficient_quota and type requests -> QuotaExceeded",
      () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script("gpt-4o", { status: 429, error: { type: "requests", code: "insufficient_quota" } })
          const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
          assert.strictEqual(error.reason, "QuotaExceeded")
          assert.strictEqual(error.status, 429)
          assert.strictEqual(error.description, "Simulated requests.")
          assert.isFalse(ProviderError.isRetryable(error))
          assert.strictEqual(sim.requests.length, 1, "the provider never retries")
        })
    )

    it.effect("a body of the wrong shape names the offending path", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { body: '{"id":"x","object":"chat.completion","created":1,"model":"m","choices":"none"}' })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "MalformedResponse")
        assert.match(error.description ?? "", /^unexpected body: choices: /)
      })
    )

    it.scoped(
      "a simulator that checks keys answers a wrong key with 401 -> Authentication, the right one with 200",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.make({ openaiApiKey: "sk-right" })
          const wrong = yield* OpenAiProvider.make({ apiKey: Redacted.make("sk-wrong"), baseURL: sim.openaiBaseUrl })
          const right = yield* OpenAiProvider.make({ apiKey: Redacted.make("sk-right"), baseURL: sim.openaiBaseUrl })
          const error = yield* failureOf(wrong.complete({ model: GPT, request: ask }))
          assert.strictEqual(error.reason, "Authentication")
          assert.strictEqual(error.status, 401)
          assert.strictEqual(error.description, "Incorrect API key provided.")
          const completion = yield* right.complete({ model: GPT, request: ask })
          assert.strictEqual(completion.choices[0]?.message.content, "Simulated answer from gpt-4o.")
          assert.deepStrictEqual(
            sim.requests.map((r) => r.headers["authorization"]),
            ["Bearer sk-wrong", "Bearer sk-right"]
          )
        })
    )
  })

  describe("layers", () => {
    it.effect("layerConfig reads OPENAI_API_KEY and OPENAI_BASE_URL from Config and provides a working provider", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        sim.reset()
        const provider = yield* OpenAiProvider.OpenAiProvider.pipe(
          Effect.provide(OpenAiProvider.layerConfig()),
          Effect.withConfigProvider(
            ConfigProvider.fromMap(
              new Map([
                ["OPENAI_API_KEY", KEY],
                ["OPENAI_BASE_URL", sim.openaiBaseUrl]
              ])
            )
          )
        )
        const model = ModelId.parse("openai/gpt-4o")!
        const answer = yield* provider.complete({ model, request: ask })
        assert.strictEqual(answer.object, "chat.completion")
        assert.strictEqual(sim.requests.length, 1)
      })
    )

    it.effect("layer takes explicit options; without a key every call fails with Authentication, sending nothing", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        sim.reset()
        const provider = yield* OpenAiProvider.OpenAiProvider.pipe(
          Effect.provide(OpenAiProvider.layer({ baseURL: sim.openaiBaseUrl }))
        )
        const error = yield* Effect.flip(provider.complete({ model: ModelId.parse("openai/gpt-4o")!, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assert.strictEqual(sim.requests.length, 0)
      })
    )
  })
})
