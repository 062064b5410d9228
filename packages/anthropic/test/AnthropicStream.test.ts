/**
 * The Anthropic provider's `stream` over real HTTP against the loopback
 * simulator: Anthropic's events mapped to OpenAI chunks, SSE framing the
 * parser must survive (CRLF, multi-line data, comments, unknown events, bytes
 * split inside characters), error events, streams cut short or left open,
 * errors before the stream, the size caps, interruption and secrets.
 */
import * as Util from "node:util"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { ChatCompletion, ModelId, ProviderError } from "@ironlabsai/core"
import { Sse } from "@ironlabsai/http"
import { Simulator } from "@ironlabsai/testing"
import { Chunk, Duration, Effect, Either, Layer, Redacted, Stream, TestClock, TestContext } from "effect"
import { AnthropicProvider } from "../src/index.js"

/** The real HTTP client: Node's `fetch` (undici), which `FetchHttpClient` aborts on interruption. */
const HttpLive = FetchHttpClient.layer

const HAIKU = ModelId.parse("anthropic/claude-3-5-haiku-20241022")!
const WIRE_NAME = "claude-3-5-haiku-20241022"
const KEY = "sk-ant-test-0000"
const CANARY = "sk-canary-0123456789"
const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }
/** Two-, three- and four-byte UTF-8 characters. */
const UNICODE = "café 海 🌊 and more 🌊🌊"

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

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

const renderings = (error: ProviderError.ProviderError): ReadonlyArray<readonly [string, string]> => [
  ["String", String(error)],
  ["message", error.message],
  ["JSON", JSON.stringify(error)],
  ["inspect", Util.inspect(error, { depth: 10 })]
]

const assertNoCanary = (error: ProviderError.ProviderError) => {
  for (const [how, rendered] of renderings(error)) {
    assert.isFalse(rendered.includes("0123456789"), `${how} contains the key: ${rendered}`)
  }
}

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
            expectedChunk(created, {}, "stop", { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 })
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

    it.effect("waits out a first-chunk delay after the headers", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { content: "late but whole", firstChunkDelay: "120 millis" })
        const started = Date.now()
        const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }))
        assert.isAtLeast(Date.now() - started, 110)
        assert.strictEqual(text(chunks), "late but whole")
      })
    )
  })

  describe("SSE framing", () => {
    const framings: ReadonlyArray<readonly [string, Simulator.Reply]> = [
      ["CRLF line endings", { crlf: true }],
      ["multi-line data", { multilineData: true }],
      ["bytes written one at a time", { splitEvery: 1 }],
      ["bytes written three at a time", { splitEvery: 3 }],
      ["CRLF, multi-line data and 2-byte pieces at once", { crlf: true, multilineData: true, splitEvery: 2 }],
      ["events 5 ms apart, each split in 2-byte pieces", { chunkInterval: "5 millis", splitEvery: 2, crlf: true }]
    ]
    for (const [name, framing] of framings) {
      it.effect(`${name}: every chunk arrives, the content intact`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, { ...framing, content: UNICODE })
          const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }))
          assert.strictEqual(text(chunks), UNICODE)
          assert.deepStrictEqual(contentChunks(chunks).map(ChatCompletion.chunkText), [
            "café ",
            "海 ",
            "🌊 ",
            "and ",
            "more ",
            "🌊🌊"
          ])
          assert.strictEqual(chunks.length, 8)
          assert.deepStrictEqual(chunks.at(-1)?.usage, { prompt_tokens: 2, completion_tokens: 6, total_tokens: 8 })
        })
      )
    }

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

    // Fails today (src bug in AnthropicProvider.ts): the parser keys on the data's `type` and ignores
    // the SSE event name, so `event: mystery` with `data: {}` is MalformedResponse instead of skipped.
    it.effect("BUG: noise (a comment and `event: mystery` with `data: {}`) is skipped, the content intact", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { content: UNICODE, noise: true })
        const result = yield* Effect.either(collect(provider.stream({ model: HAIKU, request: ask })))
        assert.isTrue(Either.isRight(result), `failed: ${Either.isLeft(result) ? result.left.message : ""}`)
        if (Either.isRight(result)) assert.strictEqual(text(result.right), UNICODE)
      })
    )
  })

  describe("error events", () => {
    const rows: ReadonlyArray<readonly [Simulator.ReplyError, ProviderError.Reason]> = [
      [{ type: "overloaded_error", message: "Overloaded" }, "Overloaded"],
      [{ type: "rate_limit_error", message: "Slow down." }, "RateLimited"],
      [{ type: "invalid_request_error" }, "InvalidRequest"],
      [{ type: "api_error", message: "Internal server error" }, "ServerError"],
      [{ type: "authentication_error" }, "Authentication"],
      [{ type: "mystery_error", message: "Who knows." }, "ServerError"]
    ]
    for (const [streamError, reason] of rows) {
      it.effect(`an error event first (${streamError.type}) -> ${reason}, after the role chunk only`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, { errorAfterChunks: 0, streamError })
          const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
          // message_start's role chunk does not commit the stream: no content reached the caller
          assert.deepStrictEqual(
            chunks.map((chunk) => chunk.choices[0]?.delta),
            [{ role: "assistant", content: "" }]
          )
          assert.deepStrictEqual(contentChunks(chunks), [])
          assert.strictEqual(error.reason, reason)
          assert.strictEqual(error.model, "anthropic/claude-3-5-haiku-20241022")
          assert.isUndefined(error.status)
          assert.strictEqual(
            error.description,
            `error event in the stream: ${streamError.type}: ${streamError.message ?? `Simulated ${streamError.type}.`}`
          )
        })
      )
    }

    it.effect("an error event after 2 chunks: the role chunk, 2 content chunks, then the failure", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, {
          content: "one two three",
          errorAfterChunks: 2,
          streamError: { type: "overloaded_error", message: "Overloaded" }
        })
        const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "one ", "two "])
        assert.strictEqual(contentChunks(chunks).length, 2)
        assert.strictEqual(error.reason, "Overloaded")
        assert.isTrue(ProviderError.isRetryable(error))
      })
    )

    it.effect("an error event in a stream left open fails at once, and the connection is closed", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { errorAfterChunks: 1, doneWithoutClose: true, streamError: { type: "api_error" } })
        const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(contentChunks(chunks).length, 1)
        assert.strictEqual(error.reason, "ServerError")
        yield* promise(() => sim.waitForClientClose(1))
      })
    )
  })

  describe("streams that end badly", () => {
    it.effect("a connection broken after 2 deltas -> Transport, after the chunks that arrived", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { content: "one two three", breakAfterChunks: 2 })
        const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "one ", "two "])
        assert.strictEqual(error.reason, "Transport")
        assert.match(error.description ?? "", /^body cut off: /)
      })
    )

    it.effect("a body that ends cleanly without message_stop -> Transport, never a clean end", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(
          WIRE_NAME,
          { headers: eventStream, body: messageStart + delta("Hello ") + delta("world") },
          // even after message_delta's stop reason, only message_stop ends the stream
          { headers: eventStream, body: messageStart + delta("Hello") + messageDelta },
          { headers: eventStream, body: "" }
        )
        for (const expected of ["Hello world", "Hello", ""]) {
          const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
          assert.strictEqual(text(chunks), expected)
          assert.strictEqual(error.reason, "Transport")
          assert.strictEqual(error.description, "stream ended before its end event")
        }
      })
    )

    it.effect("message_stop ends the stream though the server keeps the connection open, which is then closed", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { content: "done but open", doneWithoutClose: true })
        const started = Date.now()
        const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }))
        assert.isBelow(Date.now() - started, 1000)
        assert.strictEqual(text(chunks), "done but open")
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.openRequests(), 0)
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

  describe("errors before the stream", () => {
    const rows: ReadonlyArray<readonly [string, Simulator.Reply, ProviderError.Reason, number, number | undefined]> = [
      ["429 with retry-after", { status: 429, headers: { "retry-after": "2" } }, "RateLimited", 429, 2000],
      ["500", { status: 500 }, "ServerError", 500, undefined],
      ["401", { status: 401 }, "Authentication", 401, undefined],
      ["529", { status: 529 }, "Overloaded", 529, undefined]
    ]
    for (const [name, reply, reason, status, retryAfter] of rows) {
      it.effect(`${name} -> ${reason} before any chunk, as a non-streamed call`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, reply, reply)
          const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
          const complete = yield* Effect.flip(provider.complete({ model: HAIKU, request: ask }))
          assert.deepStrictEqual(chunks, [])
          assert.strictEqual(error.reason, reason)
          assert.strictEqual(error.status, status)
          assert.strictEqual(
            error.retryAfter === undefined ? undefined : Duration.toMillis(error.retryAfter),
            retryAfter
          )
          assert.deepStrictEqual(
            [error.reason, error.status, error.description, error.shouldRetry],
            [complete.reason, complete.status, complete.description, complete.shouldRetry]
          )
          assert.strictEqual(sim.requests.length, 2, "the provider never retries")
        })
      )
    }
  })

  describe("rate-limit reset before the stream", () => {
    /** 2026-11-30T23:59:00.000Z, set on the Effect clock, which the reset is measured against. */
    const NOW = Date.UTC(2026, 10, 30, 23, 59, 0)
    const at = (millis: number): string => new Date(NOW + millis).toISOString()

    it.effect("a 429 with reset headers -> RateLimited with the spent limit's reset, as a non-streamed call", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { sim, provider } = yield* setup()
        const reply: Simulator.Reply = {
          status: 429,
          headers: {
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": at(12_345),
            "anthropic-ratelimit-tokens-remaining": "40000",
            "anthropic-ratelimit-tokens-reset": at(60_000)
          }
        }
        sim.script(WIRE_NAME, reply, reply)
        const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        const complete = yield* Effect.flip(provider.complete({ model: HAIKU, request: ask }))
        assert.deepStrictEqual(chunks, [])
        assert.strictEqual(error.reason, "RateLimited")
        assert.isUndefined(error.retryAfter)
        assert.strictEqual(error.rateLimitReset && Duration.toMillis(error.rateLimitReset), 12_345)
        assert.strictEqual(complete.rateLimitReset && Duration.toMillis(complete.rateLimitReset), 12_345)
      }).pipe(Effect.provide(TestContext.TestContext))
    )

    it.effect("a 429 with retry-after and reset headers keeps both", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, {
          status: 429,
          headers: { "retry-after": "3", "anthropic-ratelimit-output-tokens-reset": at(90_000) }
        })
        const { error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(error.retryAfter && Duration.toMillis(error.retryAfter), 3_000)
        assert.strictEqual(error.rateLimitReset && Duration.toMillis(error.rateLimitReset), 90_000)
      }).pipe(Effect.provide(TestContext.TestContext))
    )

    it.effect("a 529 with reset headers has no rateLimitReset", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { status: 529, headers: { "anthropic-ratelimit-requests-reset": at(30_000) } })
        const { error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Overloaded")
        assert.isUndefined(error.rateLimitReset)
      }).pipe(Effect.provide(TestContext.TestContext))
    )
  })

  describe("size caps", () => {
    it.effect("a stream over maxResponseBytes -> ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 2048 })
        sim.script(WIRE_NAME, { content: "word ".repeat(200) }, { content: "short" })
        const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "ResponseTooLarge")
        assert.strictEqual(error.description, "stream over 2048 bytes")
        assert.isBelow(chunks.length, 20)
        assert.strictEqual(text(yield* collect(provider.stream({ model: HAIKU, request: ask }))), "short")
      })
    )

    it.effect("one event over the per-event cap (a 2 MiB delta) -> ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { chunks: ["before ", "x".repeat(2 * 1024 * 1024), "after"] })
        const { chunks, error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "ResponseTooLarge")
        assert.strictEqual(error.description, `one event over ${Sse.defaultMaxEventBytes} bytes`)
        assert.strictEqual(text(chunks), "before ")
      })
    )
  })

  describe("interruption", () => {
    it.effect("taking 2 chunks of a stalled stream closes the connection", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { content: "one two three four", stallAfterChunks: 3 })
        const chunks = yield* collect(provider.stream({ model: HAIKU, request: ask }).pipe(Stream.take(2)))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "one "])
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.requests[0]?.outcome, "client-closed")
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.effect("a timeout on a stream that only pings closes the connection", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { pingOnly: "20 millis" })
        const result = yield* collect(provider.stream({ model: HAIKU, request: ask })).pipe(
          Effect.timeout("150 millis"),
          Effect.either
        )
        assert.isTrue(Either.isLeft(result) && result.left._tag === "TimeoutException")
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.openRequests(), 0)
      })
    )
  })

  describe("secrets", () => {
    it.effect("a key echoed in an error event is not in the error", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* AnthropicProvider.make({ apiKey: Redacted.make(CANARY), baseURL: sim.anthropicBaseUrl })
        sim.script(
          WIRE_NAME,
          {
            errorAfterChunks: 0,
            streamError: { type: "authentication_error", message: `invalid x-api-key ${CANARY}` }
          },
          { content: "one two", errorAfterChunks: 1, streamError: { type: "api_error", message: `${CANARY}!` } }
        )
        const first = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        const second = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(first.error.reason, "Authentication")
        assert.strictEqual(
          first.error.description,
          "error event in the stream: authentication_error: invalid x-api-key [redacted]"
        )
        assert.strictEqual(second.error.reason, "ServerError")
        assertNoCanary(first.error)
        assertNoCanary(second.error)
      })
    )

    it.effect("a key echoed in a non-2xx body before the stream is not in the error", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* AnthropicProvider.make({ apiKey: Redacted.make(CANARY), baseURL: sim.anthropicBaseUrl })
        sim.script(WIRE_NAME, { status: 401, error: { type: "authentication_error", message: `bad key ${CANARY}` } })
        const { error } = yield* failureOf(provider.stream({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assertNoCanary(error)
      })
    )
  })
})
