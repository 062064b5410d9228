/**
 * The Anthropic provider's `stream` over real HTTP against the loopback
 * simulator: what is Anthropic's own, its events mapped to OpenAI chunks
 * (message_start, text deltas, message_delta's stop reason and usage), the
 * events that carry nothing skipped, and a known event of the wrong shape
 * refused. What every wire shares (SSE framing, error events, streams that
 * break, stall or end badly, caps, interruption, secrets) is the conformance
 * suite's, in Conformance.test.ts, over every HTTP client.
 */
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { ChatCompletion, ModelId, type ProviderError } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { Chunk, Effect, Either, Layer, Redacted, Stream } from "effect"
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

/** One chunk as the provider maps the simulator's request 1. */
const expectedChunk = (
  created: number,
  delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"],
  finish: ChatCompletion.FinishReason | null = null,
  usage?: ChatCompletion.Usage
): ChatCompletion.ChatCompletionChunk => ({
  id: "msg_sim_1",
  object: "chat.completion.chunk",
  created,
  model: WIRE_NAME,
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...(usage === undefined ? {} : { usage })
})

/** Raw Anthropic events, for streams the simulator does not generate. */
const event = (name: string, data: unknown): string =>
  `event: ${name}\ndata: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`

const messageStart = event("message_start", {
  type: "message_start",
  message: { id: "msg_raw", type: "message", role: "assistant", model: WIRE_NAME, usage: { input_tokens: 3 } }
})
const delta = (text: string) =>
  event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })
const messageDelta = event("message_delta", {
  type: "message_delta",
  delta: { stop_reason: "end_turn" },
  usage: { output_tokens: 2 }
})
const messageStop = event("message_stop", { type: "message_stop" })

const eventStream = { "content-type": "text/event-stream" }

layer(Layer.merge(Simulator.layer(), HttpLive), { excludeTestServices: true })("AnthropicProvider.stream", (it) => {
  describe("a normal stream", () => {
    it.effect(
      "maps message_start, each text delta and message_delta to chunks, in order, and ends at message_stop",
      () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, { content: "Hello there, friend.", usage: { promptTokens: 7, completionTokens: 3 } })
          const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }))
          const created = chunks[0]?.created ?? 0
          assert.deepStrictEqual(chunks, [
            expectedChunk(created, { role: "assistant", content: "" }),
            expectedChunk(created, { content: "Hello " }),
            expectedChunk(created, { content: "there, " }),
            expectedChunk(created, { content: "friend." }),
            expectedChunk(created, {}, "stop", {
              prompt_tokens: 7,
              completion_tokens: 3,
              total_tokens: 10,
              prompt_tokens_details: { cached_tokens: 0 }
            })
          ])
          assert.isTrue(chunks.every((chunk) => chunk.object === "chat.completion.chunk"))
          assert.strictEqual(text(chunks), "Hello there, friend.")
          assert.strictEqual(contentChunks(chunks).length, 3)
          assert.strictEqual(sim.requests[0]?.outcome, "answered")
        })
    )

    it.effect("asks for a stream: stream true in the Anthropic body, with the key and version headers", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const request: ChatCompletion.ChatCompletionRequest = {
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Say hello" }
          ],
          max_tokens: 50
        }
        yield* collect(provider.stream({ model: HAIKU, request }))
        const recorded = sim.requests[0]!
        assert.strictEqual(recorded.path, "/v1/messages")
        assert.strictEqual(recorded.headers["x-api-key"], KEY)
        assert.strictEqual(recorded.headers["anthropic-version"], AnthropicProvider.apiVersion)
        assert.deepStrictEqual(recorded.body, {
          model: WIRE_NAME,
          max_tokens: 50,
          messages: [{ role: "user", content: "Say hello" }],
          system: "Be brief.",
          stream: true
        })
      })
    )

    it.effect("maps stop_reason to finish_reason on the last chunk", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(
          WIRE_NAME,
          { chunks: ["cut"], finishReason: "max_tokens" },
          { chunks: ["x"], finishReason: "tool_use" },
          { chunks: ["x"], finishReason: "refusal" }
        )
        const reasons: Array<unknown> = []
        for (let i = 0; i < 3; i++) {
          const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }))
          reasons.push(chunks.at(-1)?.choices[0]?.finish_reason)
        }
        assert.deepStrictEqual(reasons, ["length", "tool_calls", "content_filter"])
      })
    )
  })

  describe("events that are Anthropic's own", () => {
    it.effect("skips pings, comments and unknown events that carry their type", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const body = [
          ": keep-alive\n\n",
          messageStart,
          event("ping", '{"type": "ping"}'),
          event("mystery", { type: "mystery", detail: 1 }),
          delta("Hi"),
          event("content_block_stop", { type: "content_block_stop", index: 0 }),
          messageDelta,
          messageStop
        ].join("")
        sim.script(WIRE_NAME, { headers: eventStream, body })
        const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "Hi", ""])
      })
    )

    it.effect("a known event of the wrong shape -> MalformedResponse", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const body = messageStart + event("content_block_delta", { type: "content_block_delta" }) + messageStop
        sim.script(WIRE_NAME, { headers: eventStream, body })
        const { error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "MalformedResponse")
        assert.match(error.description ?? "", /^unexpected content_block_delta event: /)
      })
    )
  })
})
