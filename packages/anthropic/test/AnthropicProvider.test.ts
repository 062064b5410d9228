/**
 * The Anthropic provider over real HTTP against the loopback simulator: what
 * is Anthropic's own. The request translated (system, max_tokens, stop,
 * user), the message mapped to an OpenAI `ChatCompletion` (content blocks,
 * stop reasons, usage), and errors in Anthropic's words. What every wire
 * shares (classification, retry-after, caps, secrets, cancellation,
 * redirects, gzip) is the conformance suite's, in Conformance.test.ts, over
 * every HTTP client.
 */
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { type ChatCompletion, ModelId, type ProviderError } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { ConfigProvider, Effect, Layer, Redacted, TestClock, TestContext } from "effect"
import { AnthropicProvider } from "../src/index.js"

/** Any client will do for the wire's own mapping: the suite runs every behaviour over each of them. */
const HttpLive = FetchHttpClient.layer

const HAIKU = ModelId.parse("anthropic/claude-3-5-haiku-20241022")!
const WIRE_NAME = "claude-3-5-haiku-20241022"
const KEY = "sk-ant-test-0000"
const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }

/** A provider on the shared simulator, which is reset first. */
const setup = (options: AnthropicProvider.Options = {}) =>
  Effect.gen(function* () {
    const sim = yield* Simulator.SimulatorService
    sim.reset()
    const provider = yield* AnthropicProvider.make({
      apiKey: Redacted.make(KEY),
      baseURL: sim.anthropicBaseUrl,
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

/** A raw Anthropic message body, for shapes the simulator does not generate. */
const messageBody = (fields: Readonly<Record<string, unknown>>): string =>
  JSON.stringify({
    id: "msg_raw_1",
    type: "message",
    role: "assistant",
    model: WIRE_NAME,
    content: [{ type: "text", text: "Hi." }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 1, output_tokens: 1 },
    ...fields
  })

/**
 * One simulator and one HTTP client for the file. Test services are excluded:
 * `it.effect` runs on the live clock here (real sockets, real time); the test
 * that controls the clock provides `TestContext` itself.
 */
layer(Layer.merge(Simulator.layer(), HttpLive), { excludeTestServices: true })("AnthropicProvider", (it) => {
  describe("request mapping", () => {
    it.effect("posts to {base}/v1/messages with x-api-key and anthropic-version, and no bearer token", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        yield* provider.complete({ model: HAIKU, request: ask })
        assert.strictEqual(sim.requests.length, 1)
        const recorded = sim.requests[0]!
        assert.strictEqual(recorded.method, "POST")
        assert.strictEqual(recorded.path, "/v1/messages")
        assert.strictEqual(recorded.wire, "anthropic")
        assert.strictEqual(recorded.headers["x-api-key"], KEY)
        assert.strictEqual(recorded.headers["anthropic-version"], "2023-06-01")
        assert.strictEqual(recorded.headers["content-type"], "application/json")
        assert.isFalse("authorization" in recorded.headers)
        assert.deepStrictEqual(recorded.body, {
          model: WIRE_NAME,
          max_tokens: 4096,
          messages: [{ role: "user", content: "Say hello" }]
        })
      })
    )

    it.effect("moves system and developer messages to system, joined by a blank line, and maps the parameters", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const request: ChatCompletion.ChatCompletionRequest = {
          messages: [
            { role: "system", content: "You are terse." },
            { role: "user", content: "Hi", name: "ada" },
            {
              role: "developer",
              content: [
                { type: "text", text: "Answer " },
                { type: "text", text: "in French." }
              ]
            },
            { role: "assistant", content: "Bonjour." },
            { role: "user", content: [{ type: "text", text: "Encore" }] }
          ],
          temperature: 0.2,
          top_p: 0.8,
          max_completion_tokens: 256,
          stop: "END",
          user: "user-42",
          seed: 7,
          presence_penalty: 0.5,
          frequency_penalty: 0.5,
          metadata: { team: "blue" }
        }
        yield* provider.complete({ model: HAIKU, request })
        assert.deepStrictEqual(sim.requests[0]?.body, {
          model: WIRE_NAME,
          max_tokens: 256,
          system: "You are terse.\n\nAnswer in French.",
          messages: [
            { role: "user", content: "Hi" },
            { role: "assistant", content: "Bonjour." },
            { role: "user", content: [{ type: "text", text: "Encore" }] }
          ],
          temperature: 0.2,
          top_p: 0.8,
          stop_sequences: ["END"],
          metadata: { user_id: "user-42" }
        })
      })
    )

    it.effect("takes max_tokens over max_completion_tokens, and passes a stop list as stop_sequences", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        yield* provider.complete({
          model: HAIKU,
          request: { ...ask, max_tokens: 100, max_completion_tokens: 200, stop: ["END", "STOP"] }
        })
        assert.deepStrictEqual(sim.requests[0]?.body, {
          model: WIRE_NAME,
          max_tokens: 100,
          messages: [{ role: "user", content: "Say hello" }],
          stop_sequences: ["END", "STOP"]
        })
      })
    )

    it.effect("tolerates a trailing slash on the base URL", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const slashed = yield* AnthropicProvider.make({
          apiKey: Redacted.make(KEY),
          baseURL: `${sim.anthropicBaseUrl}/`
        })
        yield* slashed.complete({ model: HAIKU, request: ask })
        assert.strictEqual(sim.requests[0]?.path, "/v1/messages")
      })
    )
  })

  describe("response mapping", () => {
    it.effect("maps the message to a chat.completion: id, content, finish_reason, usage", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, {
          content: "Hello there, friend.",
          finishReason: "end_turn",
          usage: { promptTokens: 7, completionTokens: 3 }
        })
        const before = Math.floor(Date.now() / 1000)
        const completion = yield* provider.complete({ model: HAIKU, request: ask })
        const after = Math.floor(Date.now() / 1000)
        assert.isTrue(completion.created >= before && completion.created <= after, `created ${completion.created}`)
        assert.deepStrictEqual(completion, {
          id: "msg_sim_1",
          object: "chat.completion",
          created: completion.created,
          model: WIRE_NAME,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: "Hello there, friend." },
              finish_reason: "stop",
              logprobs: null
            }
          ],
          usage: {
            prompt_tokens: 7,
            completion_tokens: 3,
            total_tokens: 10,
            prompt_tokens_details: { cached_tokens: 0 }
          }
        })
      })
    )

    for (const [stopReason, finishReason] of [
      ["end_turn", "stop"],
      ["max_tokens", "length"],
      ["stop_sequence", "stop"],
      ["tool_use", "tool_calls"],
      ["refusal", "content_filter"],
      ["pause_turn", "stop"]
    ] as const) {
      it.effect(`stop_reason ${stopReason} -> finish_reason ${finishReason}`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, { finishReason: stopReason })
          const completion = yield* provider.complete({ model: HAIKU, request: ask })
          assert.strictEqual(completion.choices[0]?.finish_reason, finishReason)
        })
      )
    }

    it.effect("a null stop_reason -> stop", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { body: messageBody({ stop_reason: null }) })
        const completion = yield* provider.complete({ model: HAIKU, request: ask })
        assert.strictEqual(completion.choices[0]?.finish_reason, "stop")
      })
    )

    it.effect("joins the text blocks; tool_use becomes tool_calls, thinking goes to its own fields", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, {
          body: messageBody({
            content: [
              { type: "thinking", thinking: "The user wants a greeting.", signature: "sig" },
              { type: "text", text: "Hello, " },
              { type: "tool_use", id: "toolu_1", name: "lookup", input: { q: "x" } },
              { type: "text", text: "world." }
            ],
            stop_reason: "tool_use",
            usage: { input_tokens: 12, output_tokens: 30 }
          })
        })
        const completion = yield* provider.complete({ model: HAIKU, request: ask })
        assert.strictEqual(completion.id, "msg_raw_1")
        assert.deepStrictEqual(completion.choices, [
          {
            index: 0,
            message: {
              role: "assistant",
              content: "Hello, world.",
              tool_calls: [{ id: "toolu_1", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } }],
              reasoning_content: "The user wants a greeting.",
              thinking_blocks: [{ type: "thinking", thinking: "The user wants a greeting.", signature: "sig" }]
            },
            finish_reason: "tool_calls",
            logprobs: null
          }
        ])
        assert.deepStrictEqual(completion.usage, {
          prompt_tokens: 12,
          completion_tokens: 30,
          total_tokens: 42,
          prompt_tokens_details: { cached_tokens: 0 }
        })
      })
    )

    it.effect("created is taken from the Effect clock", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(1_700_000_000_999)
        const { provider } = yield* setup()
        const completion = yield* provider.complete({ model: HAIKU, request: ask })
        assert.strictEqual(completion.created, 1_700_000_000)
      }).pipe(Effect.provide(TestContext.TestContext))
    )
  })

  describe("errors in Anthropic's words", () => {
    it.effect("a body of the wrong shape names the offending path", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { body: messageBody({ usage: { input_tokens: "many", output_tokens: 1 } }) })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "MalformedResponse")
        assert.match(error.description ?? "", /^unexpected body: usage\.input_tokens: /)
      })
    )

    it.scoped(
      "a simulator that checks keys answers a wrong key with 401 -> Authentication, the right one with 200",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.make({ anthropicApiKey: "sk-ant-right" })
          const wrong = yield* AnthropicProvider.make({
            apiKey: Redacted.make("sk-ant-wrong"),
            baseURL: sim.anthropicBaseUrl
          })
          const right = yield* AnthropicProvider.make({
            apiKey: Redacted.make("sk-ant-right"),
            baseURL: sim.anthropicBaseUrl
          })
          const error = yield* failureOf(wrong.complete({ model: HAIKU, request: ask }))
          assert.strictEqual(error.reason, "Authentication")
          assert.strictEqual(error.status, 401)
          assert.strictEqual(error.description, "invalid x-api-key")
          const completion = yield* right.complete({ model: HAIKU, request: ask })
          assert.strictEqual(completion.choices[0]?.message.content, `Simulated answer from ${WIRE_NAME}.`)
          assert.deepStrictEqual(
            sim.requests.map((r) => r.headers["x-api-key"]),
            ["sk-ant-wrong", "sk-ant-right"]
          )
        })
    )
  })

  describe("layers", () => {
    it.effect(
      "layerConfig reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL from Config and provides a working provider",
      () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.SimulatorService
          sim.reset()
          const provider = yield* AnthropicProvider.AnthropicProvider.pipe(
            Effect.provide(AnthropicProvider.layerConfig()),
            Effect.withConfigProvider(
              ConfigProvider.fromMap(
                new Map([
                  ["ANTHROPIC_API_KEY", KEY],
                  ["ANTHROPIC_BASE_URL", sim.anthropicBaseUrl]
                ])
              )
            )
          )
          const model = ModelId.parse("anthropic/claude-3-5-haiku-20241022")!
          const answer = yield* provider.complete({ model, request: ask })
          assert.strictEqual(answer.object, "chat.completion")
          assert.strictEqual(sim.requests.length, 1)
        })
    )

    it.effect("layer takes explicit options; without a key every call fails with Authentication, sending nothing", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        sim.reset()
        const provider = yield* AnthropicProvider.AnthropicProvider.pipe(
          Effect.provide(AnthropicProvider.layer({ baseURL: sim.anthropicBaseUrl }))
        )
        const error = yield* Effect.flip(
          provider.complete({ model: ModelId.parse("anthropic/claude-3-5-haiku-20241022")!, request: ask })
        )
        assert.strictEqual(error.reason, "Authentication")
        assert.strictEqual(sim.requests.length, 0)
      })
    )
  })
})
