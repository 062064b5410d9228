/**
 * The OpenAI provider's `stream` over real HTTP against the loopback
 * simulator: the chunk sequence, SSE framing the parser must survive (CRLF,
 * multi-line data, comments, bytes split inside characters), error events,
 * streams cut short or left open, errors before the stream, the size caps,
 * interruption and secrets.
 */
import * as Util from "node:util"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { ChatCompletion, ModelId, ProviderError } from "@ironlabsai/core"
import { Sse } from "@ironlabsai/http"
import { Simulator } from "@ironlabsai/testing"
import { Chunk, Duration, Effect, Either, Layer, Redacted, Stream } from "effect"
import { OpenAiProvider } from "../src/index.js"

/** The real HTTP client: Node's `fetch` (undici), which `FetchHttpClient` aborts on interruption. */
const HttpLive = FetchHttpClient.layer

const GPT = ModelId.parse("openai/gpt-4o")!
const KEY = "sk-test-0000"
const CANARY = "sk-canary-0123456789"
const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }
/** Two-, three- and four-byte UTF-8 characters. */
const UNICODE = "café 海 🌊 and more 🌊🌊"

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

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

/** The SSE body of a stream as OpenAI sends it, for raw replies the simulator does not generate. */
const sseBody = (...data: ReadonlyArray<unknown>): string =>
  data.map((item) => `data: ${typeof item === "string" ? item : JSON.stringify(item)}\n\n`).join("")

const rawChunk = (content: string) => ({
  id: "chatcmpl-raw",
  object: "chat.completion.chunk",
  created: 1,
  model: "gpt-4o",
  choices: [{ index: 0, delta: { content }, finish_reason: null }]
})

const eventStream = { "content-type": "text/event-stream" }

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
            usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }
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

    it.effect("waits out a first-chunk delay after the headers", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { content: "late but whole", firstChunkDelay: "120 millis" })
        const started = Date.now()
        const chunks = yield* collect(provider.stream({ model: GPT, request: ask }))
        assert.isAtLeast(Date.now() - started, 110)
        assert.strictEqual(text(chunks), "late but whole")
      })
    )
  })

  describe("SSE framing", () => {
    const framings: ReadonlyArray<readonly [string, Simulator.Reply]> = [
      ["CRLF line endings", { crlf: true }],
      ["multi-line data", { multilineData: true }],
      ["an SSE comment", { noise: true }],
      ["bytes written one at a time", { splitEvery: 1 }],
      ["bytes written three at a time", { splitEvery: 3 }],
      ["all of them at once, in 2-byte pieces", { crlf: true, multilineData: true, noise: true, splitEvery: 2 }],
      ["events 5 ms apart, each split in 2-byte pieces", { chunkInterval: "5 millis", splitEvery: 2, crlf: true }]
    ]
    for (const [name, framing] of framings) {
      it.effect(`${name}: every chunk arrives, the content intact`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script("gpt-4o", { ...framing, content: UNICODE })
          const chunks = yield* collect(provider.stream({ model: GPT, request: ask }))
          assert.strictEqual(text(chunks), UNICODE)
          assert.deepStrictEqual(contentChunks(chunks).map(ChatCompletion.chunkText), [
            "café ",
            "海 ",
            "🌊 ",
            "and ",
            "more ",
            "🌊🌊"
          ])
          assert.strictEqual(chunks.length, 9)
          assert.strictEqual(chunks.at(-2)?.choices[0]?.finish_reason, "stop")
          assert.deepStrictEqual(chunks.at(-1)?.usage, { prompt_tokens: 2, completion_tokens: 6, total_tokens: 8 })
        })
      )
    }
  })

  describe("error events", () => {
    const rows: ReadonlyArray<readonly [Simulator.ReplyError, ProviderError.Reason]> = [
      [{ type: "server_error", message: "The server had an error." }, "ServerError"],
      [{ type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached." }, "RateLimited"],
      [{ type: "rate_limit_exceeded" }, "RateLimited"],
      [{ type: "insufficient_quota", code: "insufficient_quota" }, "QuotaExceeded"],
      [{ type: "overloaded_error" }, "Overloaded"],
      [{ type: "invalid_request_error", message: "Bad." }, "InvalidRequest"],
      [{ type: "mystery_error", message: "Who knows." }, "ServerError"]
    ]
    for (const [streamError, reason] of rows) {
      const name = streamError.code ?? streamError.type
      it.effect(`an error event first (${name}) -> ${reason}, before any chunk`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script("gpt-4o", { errorAfterChunks: 0, streamError })
          const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
          assert.deepStrictEqual(chunks, [])
          assert.strictEqual(error.reason, reason)
          assert.strictEqual(error.model, "openai/gpt-4o")
          assert.isUndefined(error.status)
          assert.strictEqual(
            error.description,
            `error event in the stream: ${name}: ${streamError.message ?? `Simulated ${streamError.type}.`}`
          )
        })
      )
    }

    it.effect("an error event after 2 chunks: the role chunk, 2 content chunks, then the failure", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", {
          content: "one two three",
          errorAfterChunks: 2,
          streamError: { type: "server_error", message: "Boom." }
        })
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "one ", "two "])
        assert.strictEqual(contentChunks(chunks).length, 2)
        assert.strictEqual(error.reason, "ServerError")
        assert.strictEqual(error.description, "error event in the stream: server_error: Boom.")
      })
    )

    it.effect("an error event in a stream left open fails at once, and the connection is closed", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { errorAfterChunks: 1, doneWithoutClose: true, streamError: { type: "server_error" } })
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
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
        sim.script("gpt-4o", { content: "one two three", breakAfterChunks: 2 })
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "one ", "two "])
        assert.strictEqual(error.reason, "Transport")
        assert.match(error.description ?? "", /^body cut off: /)
        assert.isTrue(ProviderError.isRetryable(error))
      })
    )

    it.effect("a body that ends cleanly without [DONE] -> Transport, never a clean end", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const finish = { ...rawChunk(""), choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }
        sim.script(
          "gpt-4o",
          { headers: eventStream, body: sseBody(rawChunk("Hello "), rawChunk("world")) },
          // even after the finish reason, only [DONE] ends the stream
          { headers: eventStream, body: sseBody(rawChunk("Hello"), finish) },
          { headers: eventStream, body: "" }
        )
        for (const expected of ["Hello world", "Hello", ""]) {
          const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
          assert.strictEqual(text(chunks), expected)
          assert.strictEqual(error.reason, "Transport")
          assert.strictEqual(error.description, "stream ended before its end event")
        }
      })
    )

    it.effect("[DONE] ends the stream though the server keeps the connection open, which is then closed", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { content: "done but open", doneWithoutClose: true })
        const started = Date.now()
        const chunks = yield* collect(provider.stream({ model: GPT, request: ask }))
        assert.isBelow(Date.now() - started, 1000)
        assert.strictEqual(text(chunks), "done but open")
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.effect("an event that is not JSON -> MalformedResponse", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { headers: eventStream, body: sseBody(rawChunk("Hi"), "{not json", "[DONE]") })
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.strictEqual(text(chunks), "Hi")
        assert.strictEqual(error.reason, "MalformedResponse")
        assert.strictEqual(error.description, 'event is not JSON: "{not json"')
      })
    )
  })

  describe("errors before the stream", () => {
    const rows: ReadonlyArray<readonly [string, Simulator.Reply, ProviderError.Reason, number, number | undefined]> = [
      ["429 with retry-after", { status: 429, headers: { "retry-after": "2" } }, "RateLimited", 429, 2000],
      ["500", { status: 500 }, "ServerError", 500, undefined],
      ["401", { status: 401 }, "Authentication", 401, undefined],
      ["503 with retry-after-ms", { status: 503, headers: { "retry-after-ms": "250" } }, "Overloaded", 503, 250]
    ]
    for (const [name, reply, reason, status, retryAfter] of rows) {
      it.effect(`${name} -> ${reason} before any chunk, as a non-streamed call`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script("gpt-4o", reply, reply)
          const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
          const complete = yield* Effect.flip(provider.complete({ model: GPT, request: ask }))
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
    it.effect("a 429 with reset headers -> RateLimited with the spent limit's reset, as a non-streamed call", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const reply: Simulator.Reply = {
          status: 429,
          headers: {
            "x-ratelimit-remaining-requests": "60",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "20ms"
          }
        }
        sim.script("gpt-4o", reply, reply)
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        const complete = yield* Effect.flip(provider.complete({ model: GPT, request: ask }))
        assert.deepStrictEqual(chunks, [])
        assert.strictEqual(error.reason, "RateLimited")
        assert.isUndefined(error.retryAfter)
        assert.strictEqual(error.rateLimitReset && Duration.toMillis(error.rateLimitReset), 20)
        assert.strictEqual(complete.rateLimitReset && Duration.toMillis(complete.rateLimitReset), 20)
      })
    )

    it.effect("a 429 with retry-after and reset headers keeps both", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", {
          status: 429,
          headers: { "retry-after-ms": "750", "x-ratelimit-reset-requests": "2h0m0s" }
        })
        const { error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.strictEqual(error.retryAfter && Duration.toMillis(error.retryAfter), 750)
        assert.strictEqual(error.rateLimitReset && Duration.toMillis(error.rateLimitReset), 7_200_000)
      })
    )

    it.effect("a 503 with reset headers has no rateLimitReset", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { status: 503, headers: { "x-ratelimit-reset-requests": "1s" } })
        const { error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Overloaded")
        assert.isUndefined(error.rateLimitReset)
      })
    )
  })

  describe("size caps", () => {
    it.effect("a stream over maxResponseBytes -> ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 2048 })
        sim.script("gpt-4o", { content: "word ".repeat(200) }, { content: "short" })
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "ResponseTooLarge")
        assert.strictEqual(error.description, "stream over 2048 bytes")
        assert.isBelow(chunks.length, 20)
        assert.isFalse(ProviderError.isRetryable(error))
        // the same cap lets a small stream through
        assert.strictEqual(text(yield* collect(provider.stream({ model: GPT, request: ask }))), "short")
      })
    )

    it.effect("one event over the per-event cap (a 2 MiB delta) -> ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { chunks: ["before ", "x".repeat(2 * 1024 * 1024), "after"] })
        const { chunks, error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
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
        sim.script("gpt-4o", { content: "one two three four", stallAfterChunks: 3 })
        const chunks = yield* collect(provider.stream({ model: GPT, request: ask }).pipe(Stream.take(2)))
        assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "one "])
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.requests[0]?.outcome, "client-closed")
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.effect("a timeout on a stream that only pings closes the connection", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { pingOnly: "20 millis" })
        const result = yield* collect(provider.stream({ model: GPT, request: ask })).pipe(
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
        const provider = yield* OpenAiProvider.make({ apiKey: Redacted.make(CANARY), baseURL: sim.openaiBaseUrl })
        sim.script(
          "gpt-4o",
          {
            errorAfterChunks: 0,
            streamError: { type: "invalid_request_error", code: "invalid_api_key", message: `Bad key: ${CANARY}` }
          },
          { content: "one two", errorAfterChunks: 1, streamError: { type: "server_error", message: `${CANARY}!` } }
        )
        const first = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        const second = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.strictEqual(first.error.reason, "Authentication")
        assert.strictEqual(first.error.description, "error event in the stream: invalid_api_key: Bad key: [redacted]")
        assert.strictEqual(second.error.reason, "ServerError")
        assertNoCanary(first.error)
        assertNoCanary(second.error)
      })
    )

    it.effect("a key echoed in a non-2xx body before the stream is not in the error", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* OpenAiProvider.make({ apiKey: Redacted.make(CANARY), baseURL: sim.openaiBaseUrl })
        sim.script("gpt-4o", {
          status: 401,
          error: { type: "invalid_request_error", code: "invalid_api_key", message: `Invalid API key: ${CANARY}` }
        })
        const { error } = yield* failureOf(provider.stream({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assertNoCanary(error)
      })
    )
  })
})
