/**
 * The OpenAI provider's `stream` over real HTTP against the loopback
 * simulator: what is OpenAI's own, the chunks passed through as sent, the
 * request asking for usage, and an error event named by its `code`. What
 * every wire shares (SSE framing, error events, streams that break, stall or
 * end badly, caps, interruption, secrets) is the conformance suite's, in
 * Conformance.test.ts, over every HTTP client.
 */
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { ChatCompletion, ModelId, type ProviderError } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { Chunk, Effect, Either, Layer, Redacted, Stream } from "effect"
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
    const provider = yield* OpenAiProvider.make({ apiKey: Redacted.make(KEY), baseURL: sim.openaiBaseUrl, ...options })
    return { sim, provider }
  })

type Chunks = ReadonlyArray<ChatCompletion.ChatCompletionChunk>

const collect = (stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/** The chunks a stream emitted and the error it then failed with; a stream that ends cleanly is a test failure. */
const failureOf = (stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>) =>
  Effect.gen(function* () {
    const items = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.either(stream)))
    const chunks = items.filter(Either.isRight).map((item) => item.right)
    const last = items.at(-1)
    if (last === undefined || Either.isRight(last)) {
      return yield* Effect.dieMessage(`expected the stream to fail, it ended cleanly after ${chunks.length} chunks`)
    }
    return { chunks, error: last.left }
  })

const text = (chunks: Chunks): string => chunks.map(ChatCompletion.chunkText).join("")
const contentChunks = (chunks: Chunks) => chunks.filter(ChatCompletion.hasContent)

/** One OpenAI chunk as the simulator streams it for request 1 (with `include_usage`, so `usage: null`). */
const expectedChunk = (
  created: number,
  delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"],
  finish: ChatCompletion.FinishReason | null = null
): ChatCompletion.ChatCompletionChunk => ({
  id: "chatcmpl-sim-1",
  object: "chat.completion.chunk",
  created,
  model: "gpt-4o",
  choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  usage: null
})

layer(Layer.merge(Simulator.layer(), HttpLive), { excludeTestServices: true })("OpenAiProvider.stream", (it) => {
  describe("a normal stream", () => {
    it.effect("emits the role chunk, one chunk per delta in order, the finish chunk and the usage chunk", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { content: "Hello there, friend.", usage: { promptTokens: 7, completionTokens: 3 } })
        const chunks = yield* collect(provider.stream({ model: GPT, request: ask }))
        const created = chunks[0]?.created ?? 0
        assert.deepStrictEqual(chunks, [
          expectedChunk(created, { role: "assistant", content: "", refusal: null }),
          expectedChunk(created, { content: "Hello " }),
          expectedChunk(created, { content: "there, " }),
          expectedChunk(created, { content: "friend." }),
          expectedChunk(created, {}, "stop"),
          {
            id: "chatcmpl-sim-1",
            object: "chat.completion.chunk",
            created,
            model: "gpt-4o",
            choices: [],
            usage: {
              prompt_tokens: 7,
              completion_tokens: 3,
              total_tokens: 10,
              prompt_tokens_details: { cached_tokens: 0 },
              completion_tokens_details: { reasoning_tokens: 0 }
            }
          }
        ])
        assert.isTrue(chunks.every((chunk) => chunk.object === "chat.completion.chunk"))
        assert.strictEqual(text(chunks), "Hello there, friend.")
        assert.strictEqual(contentChunks(chunks).length, 3)
        assert.strictEqual(sim.requests[0]?.outcome, "answered")
      })
    )

    it.effect("asks for a stream with usage: stream and stream_options.include_usage in the body", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        yield* collect(provider.stream({ model: GPT, request: { ...ask, temperature: 0.2 } }))
        const recorded = sim.requests[0]!
        assert.strictEqual(recorded.path, "/v1/chat/completions")
        assert.strictEqual(recorded.headers["authorization"], `Bearer ${KEY}`)
        assert.deepStrictEqual(recorded.body, {
          messages: [{ role: "user", content: "Say hello" }],
          temperature: 0.2,
          model: "gpt-4o",
          stream: true,
          stream_options: { include_usage: true }
        })
      })
    )

    it.effect("passes the wire's finish reason through on the last content-free chunk", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { chunks: ["cut"], finishReason: "length" })
        const chunks = yield* collect(provider.stream({ model: GPT, request: ask }))
        assert.deepStrictEqual(
          chunks.map((chunk) => (chunk.choices[0] === undefined ? "no choice" : chunk.choices[0].finish_reason)),
          [null, null, "length", "no choice"]
        )
      })
    )
  })

  describe("error events in OpenAI's words", () => {
    const rows: ReadonlyArray<readonly [Simulator.ReplyError, ProviderError.Reason]> = [
      [{ type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached." }, "RateLimited"],
      [{ type: "requests", code: "insufficient_quota" }, "QuotaExceeded"]
    ]
    for (const [streamError, reason] of rows) {
      it.effect(`an error event's code wins over its type (${streamError.code}) -> ${reason}, before any chunk`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script("gpt-4o", { errorAfterChunks: 0, streamError })
          const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
          assert.deepStrictEqual(chunks, [])
          assert.strictEqual(error.reason, reason)
          assert.strictEqual(
            error.description,
            `error event in the stream: ${streamError.code}: ${streamError.message ?? "Simulated requests."}`
          )
        })
      )
    }
  })
})
