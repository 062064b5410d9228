import * as Http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Cause } from "effect"
import * as Simulator from "../src/Simulator.js"

const post = (
  url: string,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
  signal?: AbortSignal
): Effect.Effect<Response, Cause.UnknownException> =>
  Effect.tryPromise(() =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
      ...(signal === undefined ? {} : { signal })
    })
  )

const openai = (sim: Simulator.Simulator, body: unknown, headers?: Readonly<Record<string, string>>) =>
  post(`${sim.openaiBaseUrl}/chat/completions`, body, headers)

const anthropic = (sim: Simulator.Simulator, body: unknown, headers?: Readonly<Record<string, string>>) =>
  post(`${sim.anthropicBaseUrl}/v1/messages`, body, headers)

const json = (response: Response) => Effect.tryPromise(() => response.json() as Promise<unknown>)
const text = (response: Response) => Effect.tryPromise(() => response.text())
const wait = (promise: () => Promise<void>) => Effect.tryPromise(promise)

/** The code of the socket error under a failed `fetch` (undici wraps it in a `TypeError`). */
const socketErrorCode = (error: Cause.UnknownException): unknown => {
  const cause = error.error instanceof Error ? error.error.cause : undefined
  return typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
}

const contentOf = (body: unknown): unknown =>
  (body as { choices: Array<{ message: { content: unknown } }> }).choices[0]?.message.content

const dataLines = (sse: string): ReadonlyArray<string> =>
  sse
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => line.slice("data: ".length))

/** Every piece of a body as the client's reader received it. */
const readPieces = (response: Response): Effect.Effect<ReadonlyArray<Uint8Array>> =>
  Effect.promise(async () => {
    const reader = response.body!.getReader()
    const pieces: Array<Uint8Array> = []
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return pieces
      pieces.push(value)
    }
  })

const concatBytes = (pieces: ReadonlyArray<Uint8Array>): Uint8Array => {
  const all = new Uint8Array(pieces.reduce((size, piece) => size + piece.byteLength, 0))
  let offset = 0
  for (const piece of pieces) {
    all.set(piece, offset)
    offset += piece.byteLength
  }
  return all
}

/** Reads until `until` holds of the text received so far; the reader stays open. */
const readUntil = (reader: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean) =>
  Effect.promise(async () => {
    const decoder = new TextDecoder()
    let received = ""
    while (!until(received)) {
      const { done, value } = await reader.read()
      if (done) break
      received += decoder.decode(value, { stream: true })
    }
    return received
  })

/** `"more"` when the reader gets anything within `millis` (real time), `"quiet"` otherwise. */
const quietFor = (reader: ReadableStreamDefaultReader<Uint8Array>, millis: number) =>
  Effect.promise(() =>
    Promise.race([
      reader.read().then(() => "more"),
      new Promise<string>((resolve) => setTimeout(() => resolve("quiet"), millis))
    ])
  )

/** The `event:` names of an SSE text, in order (`-` for an event without one). */
const eventNames = (sse: string): ReadonlyArray<string> =>
  sse
    .split("\n\n")
    .filter((block) => block.trim() !== "" && !block.startsWith(":"))
    .map((block) => /^event: (.*)$/m.exec(block)?.[1] ?? "-")

const chatRequest = { model: "gpt-4o", messages: [{ role: "user", content: "Say hello to me" }] }
const messagesRequest = {
  model: "claude-3-5-haiku-20241022",
  max_tokens: 64,
  system: "Be brief",
  messages: [{ role: "user", content: [{ type: "text", text: "Say hello" }] }]
}

describe("Simulator", () => {
  describe("default replies", () => {
    it.scoped("answers the OpenAI wire with a chat completion", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const before = Math.floor(Date.now() / 1000)
        const response = yield* openai(sim, chatRequest)
        const body = (yield* json(response)) as Record<string, unknown>
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("content-type"), "application/json")
        assert.strictEqual(response.headers.get("x-request-id"), "req_sim_1")
        const created = body["created"] as number
        assert.isTrue(created >= before && created <= Math.floor(Date.now() / 1000) + 1)
        assert.deepStrictEqual(body, {
          id: "chatcmpl-sim-1",
          object: "chat.completion",
          created,
          model: "gpt-4o",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: "Simulated answer from gpt-4o.", refusal: null },
              finish_reason: "stop",
              logprobs: null
            }
          ],
          usage: {
            prompt_tokens: 4,
            completion_tokens: 4,
            total_tokens: 8,
            prompt_tokens_details: { cached_tokens: 0 },
            completion_tokens_details: { reasoning_tokens: 0 }
          }
        })
      })
    )

    it.scoped("answers the Anthropic wire with a message", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const response = yield* anthropic(sim, messagesRequest)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("request-id"), "req_sim_1")
        assert.deepStrictEqual(yield* json(response), {
          id: "msg_sim_1",
          type: "message",
          role: "assistant",
          model: "claude-3-5-haiku-20241022",
          content: [{ type: "text", text: "Simulated answer from claude-3-5-haiku-20241022." }],
          stop_reason: "end_turn",
          stop_sequence: null,
          usage: { input_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 4 }
        })
      })
    )

    it.scoped("answers an unknown route 404 with an OpenAI error and records it", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const response = yield* post(`${sim.url}/v1/completions?x=1`, { model: "gpt-4o" })
        assert.strictEqual(response.status, 404)
        assert.deepStrictEqual(yield* json(response), {
          error: {
            message: "Unknown request URL: POST /v1/completions?x=1.",
            type: "invalid_request_error",
            param: null,
            code: "unknown_url"
          }
        })
        assert.strictEqual(sim.requests[0]?.wire, "unknown")
        assert.strictEqual(sim.requests[0]?.path, "/v1/completions?x=1")
      })
    )
  })

  describe("scripting", () => {
    it.scoped("takes each model's replies in order, then falls back to the default", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "first" }, { content: "second" })
        sim.script("gpt-4o-mini", { content: "mini" })
        sim.script("gpt-4o", { content: "third" })
        assert.strictEqual(sim.scripted("gpt-4o"), 3)
        const contents: Array<unknown> = []
        for (const model of ["gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o", "gpt-4o", "gpt-4o-mini"]) {
          contents.push(contentOf(yield* json(yield* openai(sim, { model, messages: [] }))))
        }
        assert.deepStrictEqual(contents, [
          "first",
          "mini",
          "second",
          "third",
          "Simulated answer from gpt-4o.",
          "Simulated answer from gpt-4o-mini."
        ])
        assert.strictEqual(sim.scripted("gpt-4o"), 0)
      })
    )

    it.scoped("asks the handler when the model's script is empty", () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const sim = yield* Simulator.make({
          handler: (request) => {
            seen.push(`${request.id}:${request.model}`)
            return request.model === "bad" ? { status: 503 } : { content: `handled ${request.id}` }
          }
        })
        sim.script("good", { content: "scripted" })
        const first = yield* json(yield* openai(sim, { model: "good", messages: [] }))
        const second = yield* json(yield* openai(sim, { model: "good", messages: [] }))
        const third = yield* openai(sim, { model: "bad", messages: [] })
        assert.strictEqual(contentOf(first), "scripted")
        assert.strictEqual(contentOf(second), "handled 2")
        assert.strictEqual(third.status, 503)
        assert.deepStrictEqual(seen, ["2:good", "3:bad"])
      })
    )

    it.scoped("overrides the finish reason and the usage", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", {
          content: "cut",
          finishReason: "length",
          usage: { promptTokens: 10, completionTokens: 2 }
        })
        sim.script("claude", { finishReason: "max_tokens", usage: { completionTokens: 7 } })
        const chat = (yield* json(yield* openai(sim, chatRequest))) as Record<string, unknown>
        const message = (yield* json(yield* anthropic(sim, { ...messagesRequest, model: "claude" }))) as Record<
          string,
          unknown
        >
        assert.deepStrictEqual(chat["choices"], [
          {
            index: 0,
            message: { role: "assistant", content: "cut", refusal: null },
            finish_reason: "length",
            logprobs: null
          }
        ])
        assert.deepStrictEqual(chat["usage"], {
          prompt_tokens: 10,
          completion_tokens: 2,
          total_tokens: 12,
          prompt_tokens_details: { cached_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0 }
        })
        assert.strictEqual(message["stop_reason"], "max_tokens")
        assert.deepStrictEqual(message["usage"], {
          input_tokens: 4,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: 7
        })
      })
    )

    it.scoped("reset() clears the scripts and the recorded requests", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "scripted" })
        yield* openai(sim, { ...chatRequest, model: "other" })
        sim.reset()
        assert.strictEqual(sim.requests.length, 0)
        assert.strictEqual(sim.scripted("gpt-4o"), 0)
        const body = yield* json(yield* openai(sim, chatRequest))
        assert.strictEqual(contentOf(body), "Simulated answer from gpt-4o.")
        assert.deepStrictEqual(
          sim.requests.map((request) => request.id),
          [1]
        )
      })
    )
  })

  describe("faults", () => {
    it.scoped("renders errors in each wire's format", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const error = { type: "insufficient_quota", code: "insufficient_quota", message: "No quota." }
        sim.script("gpt-4o", { error }, { status: 429 })
        sim.script(
          "claude",
          { status: 529, error: { type: "overloaded_error", message: "Overloaded" } },
          { status: 429 }
        )
        const first = yield* openai(sim, chatRequest)
        const second = yield* openai(sim, chatRequest)
        const third = yield* anthropic(sim, { ...messagesRequest, model: "claude" })
        const fourth = yield* anthropic(sim, { ...messagesRequest, model: "claude" })
        assert.deepStrictEqual([first.status, second.status, third.status, fourth.status], [500, 429, 529, 429])
        assert.deepStrictEqual(yield* json(first), {
          error: { message: "No quota.", type: "insufficient_quota", param: null, code: "insufficient_quota" }
        })
        assert.deepStrictEqual(yield* json(second), {
          error: { message: "Simulated requests.", type: "requests", param: null, code: "rate_limit_exceeded" }
        })
        assert.deepStrictEqual(yield* json(third), {
          type: "error",
          error: { type: "overloaded_error", message: "Overloaded" }
        })
        assert.deepStrictEqual(yield* json(fourth), {
          type: "error",
          error: { type: "rate_limit_error", message: "Simulated rate_limit_error." }
        })
      })
    )

    it.scoped("sends the scripted status and headers", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", {
          status: 429,
          headers: { "Retry-After": "2", "x-ratelimit-remaining-requests": "0" },
          error: { type: "requests", code: "rate_limit_exceeded" }
        })
        const response = yield* openai(sim, chatRequest)
        assert.strictEqual(response.status, 429)
        assert.strictEqual(response.headers.get("retry-after"), "2")
        assert.strictEqual(response.headers.get("x-ratelimit-remaining-requests"), "0")
        assert.strictEqual(response.headers.get("content-type"), "application/json")
      })
    )

    it.scoped("sends a raw body verbatim", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script(
          "gpt-4o",
          { status: 502, body: "<html>Bad gateway</html>", headers: { "content-type": "text/html" } },
          { body: '{"id":"chatcmpl-1","choi' }
        )
        const html = yield* openai(sim, chatRequest)
        const truncated = yield* openai(sim, chatRequest)
        assert.strictEqual(html.status, 502)
        assert.strictEqual(html.headers.get("content-type"), "text/html")
        assert.strictEqual(yield* text(html), "<html>Bad gateway</html>")
        assert.strictEqual(truncated.status, 200)
        assert.strictEqual(truncated.headers.get("content-type"), "application/json")
        assert.strictEqual(yield* text(truncated), '{"id":"chatcmpl-1","choi')
      })
    )

    it.scoped("waits for the latency before answering", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { latency: "120 millis" })
        const started = Date.now()
        const response = yield* openai(sim, chatRequest)
        const elapsed = Date.now() - started
        assert.strictEqual(response.status, 200)
        assert.isAtLeast(elapsed, 110)
        assert.isBelow(elapsed, 1000)
      })
    )

    it.scoped("records a hung request closed by the client", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { hang: true })
        const controller = new AbortController()
        const call = post(`${sim.openaiBaseUrl}/chat/completions`, chatRequest, {}, controller.signal).pipe(
          Effect.flip,
          Effect.fork
        )
        const fiber = yield* call
        yield* wait(() => sim.waitForRequests(1))
        assert.strictEqual(sim.requests[0]?.outcome, "pending")
        assert.strictEqual(sim.openRequests(), 1)
        controller.abort()
        yield* wait(() => sim.waitForClientClose(1))
        const error = yield* fiber.await.pipe(Effect.flatten)
        assert.strictEqual((error.error as Error).name, "AbortError")
        assert.strictEqual(sim.requests[0]?.outcome, "client-closed")
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.scoped("resets the connection before the headers", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { reset: "before-headers" })
        const error = yield* Effect.flip(openai(sim, chatRequest))
        assert.strictEqual(socketErrorCode(error), "UND_ERR_SOCKET")
        assert.strictEqual(sim.requests[0]?.outcome, "reset")
      })
    )

    it.scoped("resets the connection in the middle of the body", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { reset: "mid-body", headers: { "x-marker": "sent" } })
        const response = yield* anthropic(sim, { ...messagesRequest, model: "claude" })
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("x-marker"), "sent")
        const error = yield* Effect.flip(text(response))
        assert.strictEqual(socketErrorCode(error), "UND_ERR_SOCKET")
        assert.strictEqual(sim.requests[0]?.outcome, "reset")
      })
    )

    it.scoped("drips the body slowly", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const content = "x".repeat(100)
        sim.script("gpt-4o", { content, dripBytesPerSecond: 2000 })
        const started = Date.now()
        const response = yield* openai(sim, chatRequest)
        const body = yield* json(response)
        const elapsed = Date.now() - started
        // about 300 bytes at 2000 bytes/s, in 100-byte pieces 50 ms apart
        assert.strictEqual(contentOf(body), content)
        assert.isAtLeast(elapsed, 90)
        assert.isBelow(elapsed, 1000)
      })
    )

    it.scoped("answers 401 when the API key does not match", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make({ openaiApiKey: "sk-good", anthropicApiKey: "ant-good" })
        const wrongOpenai = yield* openai(sim, chatRequest, { authorization: "Bearer sk-bad" })
        const rightOpenai = yield* openai(sim, chatRequest, { authorization: "Bearer sk-good" })
        const missingAnthropic = yield* anthropic(sim, messagesRequest)
        const rightAnthropic = yield* anthropic(sim, messagesRequest, { "x-api-key": "ant-good" })
        assert.deepStrictEqual(
          [wrongOpenai.status, rightOpenai.status, missingAnthropic.status, rightAnthropic.status],
          [401, 200, 401, 200]
        )
        assert.deepStrictEqual(yield* json(wrongOpenai), {
          error: {
            message: "Incorrect API key provided.",
            type: "invalid_request_error",
            param: null,
            code: "invalid_api_key"
          }
        })
        assert.deepStrictEqual(yield* json(missingAnthropic), {
          type: "error",
          error: { type: "authentication_error", message: "invalid x-api-key" }
        })
      })
    )

    it.scoped("answers 413 to a body over the limit", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make({ maxBodyBytes: 1024 })
        const response = yield* anthropic(sim, { model: "claude", padding: "x".repeat(2048) })
        assert.strictEqual(response.status, 413)
        assert.deepStrictEqual(yield* json(response), {
          type: "error",
          error: { type: "request_too_large", message: "Request body exceeds 1024 bytes." }
        })
        assert.strictEqual(sim.requests[0]?.body, undefined)
        assert.strictEqual(sim.requests[0]?.outcome, "answered")
      })
    )
  })

  describe("streams", () => {
    it.scoped("streams OpenAI chunks ending in [DONE]", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "Hi there", chunkInterval: "5 millis" })
        const response = yield* openai(sim, { ...chatRequest, stream: true, stream_options: { include_usage: true } })
        assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
        const lines = dataLines(yield* text(response))
        assert.strictEqual(lines.at(-1), "[DONE]")
        const chunks = lines.slice(0, -1).map((line) => JSON.parse(line) as Record<string, unknown>)
        assert.deepStrictEqual(
          chunks.map((chunk) => [chunk["object"], chunk["model"], chunk["choices"], chunk["usage"]]),
          [
            [
              "chat.completion.chunk",
              "gpt-4o",
              [
                {
                  index: 0,
                  delta: { role: "assistant", content: "", refusal: null },
                  finish_reason: null,
                  logprobs: null
                }
              ],
              null
            ],
            [
              "chat.completion.chunk",
              "gpt-4o",
              [{ index: 0, delta: { content: "Hi " }, finish_reason: null, logprobs: null }],
              null
            ],
            [
              "chat.completion.chunk",
              "gpt-4o",
              [{ index: 0, delta: { content: "there" }, finish_reason: null, logprobs: null }],
              null
            ],
            ["chat.completion.chunk", "gpt-4o", [{ index: 0, delta: {}, finish_reason: "stop", logprobs: null }], null],
            [
              "chat.completion.chunk",
              "gpt-4o",
              [],
              {
                prompt_tokens: 4,
                completion_tokens: 2,
                total_tokens: 6,
                prompt_tokens_details: { cached_tokens: 0 },
                completion_tokens_details: { reasoning_tokens: 0 }
              }
            ]
          ]
        )
        assert.isTrue(chunks.every((chunk) => chunk["id"] === "chatcmpl-sim-1"))
      })
    )

    it.scoped("streams Anthropic events", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { chunks: ["Hel", "lo"] })
        const response = yield* anthropic(sim, { ...messagesRequest, model: "claude", stream: true })
        const events = dataLines(yield* text(response)).map((line) => JSON.parse(line) as Record<string, unknown>)
        assert.deepStrictEqual(events, [
          {
            type: "message_start",
            message: {
              id: "msg_sim_1",
              type: "message",
              role: "assistant",
              model: "claude",
              content: [],
              stop_reason: null,
              stop_sequence: null,
              usage: { input_tokens: 4, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 }
            }
          },
          { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
          { type: "ping" },
          { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hel" } },
          { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "lo" } },
          { type: "content_block_stop", index: 0 },
          {
            type: "message_delta",
            delta: { stop_reason: "end_turn", stop_sequence: null },
            usage: { output_tokens: 4 }
          },
          { type: "message_stop" }
        ])
      })
    )

    it.scoped("stalls a stream after some chunks until the client closes it", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "one two three", stallAfterChunks: 2 })
        const response = yield* openai(sim, { ...chatRequest, stream: true })
        const reader = response.body!.getReader()
        let received = ""
        while (!received.includes('"two "')) {
          const { done, value } = yield* Effect.promise(() => reader.read())
          if (done) break
          received += new TextDecoder().decode(value)
        }
        assert.deepStrictEqual(
          dataLines(received).map((line) => JSON.parse(line).choices[0].delta.content),
          ["", "one ", "two "]
        )
        // nothing more arrives (real time: the stall is the simulator's, not Effect's clock)
        const next = yield* Effect.promise(() =>
          Promise.race([
            reader.read().then(() => "more"),
            new Promise<string>((resolve) => setTimeout(() => resolve("quiet"), 60))
          ])
        )
        assert.strictEqual(next, "quiet")
        assert.strictEqual(sim.requests[0]?.outcome, "pending")
        yield* Effect.promise(() => reader.cancel())
        yield* wait(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.requests[0]?.outcome, "client-closed")
      })
    )

    it.scoped("breaks a stream after some chunks", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { content: "one two three", breakAfterChunks: 1 })
        const response = yield* anthropic(sim, { ...messagesRequest, model: "claude", stream: true })
        assert.strictEqual(response.status, 200)
        const error = yield* Effect.flip(text(response))
        assert.strictEqual(socketErrorCode(error), "UND_ERR_SOCKET")
        assert.strictEqual(sim.requests[0]?.outcome, "reset")
      })
    )
  })

  describe("stream faults", () => {
    const streamChat = { ...chatRequest, stream: true }
    const streamMessages = { ...messagesRequest, model: "claude", stream: true }

    it.scoped("an OpenAI error event after 0 chunks is the very first event, then the response ends", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", {
          errorAfterChunks: 0,
          streamError: { type: "requests", code: "rate_limit_exceeded", message: "Slow down." }
        })
        const response = yield* openai(sim, streamChat)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
        assert.strictEqual(
          yield* text(response),
          'data: {"error":{"message":"Slow down.","type":"requests","param":null,"code":"rate_limit_exceeded"}}\n\n'
        )
        assert.strictEqual(sim.requests[0]?.outcome, "answered")
      })
    )

    it.scoped("an OpenAI error event after 2 chunks follows the role chunk and two deltas", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "one two three", errorAfterChunks: 2 })
        const lines = dataLines(yield* text(yield* openai(sim, streamChat)))
        assert.deepStrictEqual(
          lines.slice(0, 3).map((line) => JSON.parse(line).choices[0].delta.content),
          ["", "one ", "two "]
        )
        // the default error is the wire's 500 type
        assert.deepStrictEqual(lines.slice(3), [
          '{"error":{"message":"Simulated server_error.","type":"server_error","param":null,"code":null}}'
        ])
      })
    )

    it.scoped("an Anthropic error event comes after the preamble and k deltas; streamError alone means k = 0", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script(
          "claude",
          { content: "one two", errorAfterChunks: 1, streamError: { type: "overloaded_error", message: "Overloaded" } },
          { streamError: { type: "rate_limit_error" } }
        )
        const first = yield* text(yield* anthropic(sim, streamMessages))
        const second = yield* text(yield* anthropic(sim, streamMessages))
        assert.deepStrictEqual(eventNames(first), [
          "message_start",
          "content_block_start",
          "ping",
          "content_block_delta",
          "error"
        ])
        assert.isTrue(
          first.endsWith(
            'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
          )
        )
        assert.deepStrictEqual(eventNames(second), ["message_start", "content_block_start", "ping", "error"])
        assert.deepStrictEqual(JSON.parse(dataLines(second).at(-1) ?? ""), {
          type: "error",
          error: { type: "rate_limit_error", message: "Simulated rate_limit_error." }
        })
      })
    )

    it.scoped("pingOnly answers 200 at once and then only pings, until the client closes", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { pingOnly: "20 millis" })
        sim.script("claude", { pingOnly: "20 millis" })
        const started = Date.now()
        const response = yield* openai(sim, streamChat)
        assert.isBelow(Date.now() - started, 200)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("content-type"), "text/event-stream")
        const reader = response.body!.getReader()
        const received = yield* readUntil(reader, (text) => text.split(": ping\n\n").length > 3)
        assert.match(received, /^(: ping\n\n){3,}$/)
        assert.strictEqual(sim.requests[0]?.outcome, "pending")
        yield* Effect.promise(() => reader.cancel())
        yield* wait(() => sim.waitForClientClose(1))

        const claude = (yield* anthropic(sim, streamMessages)).body!.getReader()
        const pings = yield* readUntil(claude, (text) => text.split("\n\n").length > 3)
        assert.match(pings, /^(event: ping\ndata: \{"type": "ping"\}\n\n){3,}$/)
        yield* Effect.promise(() => claude.cancel())
        yield* wait(() => sim.waitForClientClose(2))
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.scoped("firstChunkDelay sends the headers at once and the first event after the delay", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { firstChunkDelay: "150 millis" })
        const started = Date.now()
        const response = yield* openai(sim, streamChat)
        const headersAfter = Date.now() - started
        const body = yield* text(response)
        const bodyAfter = Date.now() - started
        assert.isBelow(headersAfter, 100)
        assert.isAtLeast(bodyAfter, 140)
        assert.strictEqual(dataLines(body).at(-1), "[DONE]")
      })
    )

    it.scoped("doneWithoutClose sends the end event and keeps the connection open until the client closes", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "Hi", doneWithoutClose: true })
        sim.script("claude", { content: "Hi", doneWithoutClose: true })
        const reader = (yield* openai(sim, streamChat)).body!.getReader()
        const received = yield* readUntil(reader, (text) => text.includes("data: [DONE]\n\n"))
        assert.isTrue(received.endsWith("data: [DONE]\n\n"))
        assert.strictEqual(yield* quietFor(reader, 60), "quiet")
        assert.strictEqual(sim.requests[0]?.outcome, "pending")
        yield* Effect.promise(() => reader.cancel())
        yield* wait(() => sim.waitForClientClose(1))

        const claude = (yield* anthropic(sim, streamMessages)).body!.getReader()
        const events = yield* readUntil(claude, (text) => text.includes("message_stop"))
        assert.strictEqual(eventNames(events).at(-1), "message_stop")
        assert.strictEqual(yield* quietFor(claude, 60), "quiet")
        yield* Effect.promise(() => claude.cancel())
        yield* wait(() => sim.waitForClientClose(2))
      })
    )

    it.scoped("withoutEndEvent sends everything but [DONE] / message_stop, then ends the response", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "Hi there", withoutEndEvent: true })
        sim.script("claude", { content: "Hi there", withoutEndEvent: true })
        const openaiBody = yield* text(yield* openai(sim, streamChat))
        assert.isFalse(openaiBody.includes("[DONE]"))
        assert.isTrue(openaiBody.includes('"finish_reason":"stop"'))
        const anthropicBody = yield* text(yield* anthropic(sim, streamMessages))
        assert.deepStrictEqual(eventNames(anthropicBody).slice(-2), ["content_block_stop", "message_delta"])
        assert.deepStrictEqual(
          sim.requests.map((request) => request.outcome),
          ["answered", "answered"]
        )
      })
    )

    it.scoped("crlf ends every line of the stream with \\r\\n", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { content: "Hi there", crlf: true })
        const body = yield* text(yield* anthropic(sim, streamMessages))
        assert.isTrue(body.endsWith('event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'))
        assert.notMatch(body, /[^\r]\n/)
        assert.deepStrictEqual(
          eventNames(body.replaceAll("\r\n", "\n")).filter((name) => name === "content_block_delta").length,
          2
        )
      })
    )

    it.scoped("splitEvery writes the body in pieces of that many bytes, splitting UTF-8 characters", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const content = "café 海 🌊"
        sim.script("gpt-4o", { content, splitEvery: 1 }, { content, splitEvery: 3 }, { content, splitEvery: 5 })
        for (const size of [1, 3]) {
          const pieces = yield* readPieces(yield* openai(sim, streamChat))
          const bytes = concatBytes(pieces)
          const body = new TextDecoder().decode(bytes)
          assert.deepStrictEqual(
            dataLines(body)
              .slice(1, -2)
              .map((line) => JSON.parse(line).choices[0].delta.content)
              .join(""),
            content
          )
          assert.isTrue(
            pieces.every((piece) => piece.byteLength % size === 0 || piece === pieces.at(-1)),
            `pieces of ${size} bytes`
          )
          // the client saw many separate pieces, not one coalesced body
          assert.isAbove(pieces.length, bytes.byteLength / size / 4, `${pieces.length} pieces of ${size} bytes`)
        }
        // a non-streamed body is split too
        const completion = yield* readPieces(yield* openai(sim, chatRequest))
        assert.isAbove(completion.length, 10)
        assert.strictEqual(contentOf(JSON.parse(new TextDecoder().decode(concatBytes(completion)))), content)
      })
    )

    it.scoped("multilineData splits each JSON payload across two data: lines", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "Hi there", multilineData: true })
        const body = yield* text(yield* openai(sim, streamChat))
        const events = body.split("\n\n").filter((block) => block !== "")
        assert.strictEqual(events.at(-1), "data: [DONE]")
        const payloads = events.slice(0, -1).map((block) => {
          const lines = block.split("\n")
          assert.strictEqual(lines.length, 2, block)
          assert.strictEqual(lines[0], "data: {")
          // joined as an SSE client joins data lines: with "\n"
          return JSON.parse(lines.map((line) => line.slice("data: ".length)).join("\n")) as Record<string, unknown>
        })
        assert.deepStrictEqual(
          payloads.map((chunk) => (chunk["choices"] as Array<{ delta: { content?: string } }>)[0]?.delta.content),
          ["", "Hi ", "there", undefined]
        )
      })
    )

    it.scoped("noise adds a comment, and on the Anthropic wire an unknown event, after the first event", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { content: "Hi", noise: true })
        sim.script("gpt-4o", { content: "Hi", noise: true })
        const claude = yield* text(yield* anthropic(sim, streamMessages))
        const gpt = yield* text(yield* openai(sim, streamChat))
        assert.deepStrictEqual(claude.split("\n\n").slice(1, 3), [": keep-alive", "event: mystery\ndata: {}"])
        assert.deepStrictEqual(eventNames(claude), [
          "message_start",
          "mystery",
          "content_block_start",
          "ping",
          "content_block_delta",
          "content_block_stop",
          "message_delta",
          "message_stop"
        ])
        assert.strictEqual(gpt.split("\n\n")[1], ": OPENROUTER PROCESSING")
        assert.deepStrictEqual(dataLines(gpt).length, 4)
      })
    )

    it.scoped("a stream the client closes before its end is recorded as client-closed", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "one two three four", chunkInterval: "30 millis" })
        const reader = (yield* openai(sim, streamChat)).body!.getReader()
        yield* readUntil(reader, (text) => text.includes('"one "'))
        assert.strictEqual(sim.openRequests(), 1)
        yield* Effect.promise(() => reader.cancel())
        yield* wait(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.requests[0]?.outcome, "client-closed")
        assert.strictEqual(sim.openRequests(), 0)
      })
    )
  })

  describe("recording", () => {
    it.scoped("records method, path, headers, body and model", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const before = Date.now()
        yield* anthropic(sim, messagesRequest, { "x-api-key": "ant-key", "anthropic-version": "2023-06-01" })
        yield* post(`${sim.openaiBaseUrl}/chat/completions`, "not json")
        const [first, second] = sim.requests
        assert.strictEqual(first?.id, 1)
        assert.strictEqual(first?.wire, "anthropic")
        assert.strictEqual(first?.method, "POST")
        assert.strictEqual(first?.path, "/v1/messages")
        assert.strictEqual(first?.headers["x-api-key"], "ant-key")
        assert.strictEqual(first?.headers["anthropic-version"], "2023-06-01")
        assert.strictEqual(first?.headers["content-type"], "application/json")
        assert.deepStrictEqual(first?.body, messagesRequest)
        assert.strictEqual(first?.model, "claude-3-5-haiku-20241022")
        assert.strictEqual(first?.outcome, "answered")
        assert.isTrue(first !== undefined && first.receivedAt >= before && first.receivedAt <= Date.now())
        assert.strictEqual(second?.id, 2)
        assert.strictEqual(second?.wire, "openai")
        assert.strictEqual(second?.body, "not json")
        assert.strictEqual(second?.model, undefined)
      })
    )

    it.scoped("records each request over one keep-alive connection", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const agent = new Http.Agent({ keepAlive: true, maxSockets: 1 })
        yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
        const send = (model: string) =>
          Effect.async<number>((resume) => {
            const request = Http.request(
              `${sim.openaiBaseUrl}/chat/completions`,
              { method: "POST", agent, headers: { "content-type": "application/json" } },
              (response) => {
                response.resume()
                response.on("end", () => resume(Effect.succeed(response.statusCode ?? 0)))
              }
            )
            request.end(JSON.stringify({ model, messages: [] }))
          })
        const statuses = [yield* send("a"), yield* send("b"), yield* send("c")]
        assert.deepStrictEqual(statuses, [200, 200, 200])
        assert.deepStrictEqual(
          sim.requests.map((request) => [request.id, request.model, request.outcome]),
          [
            [1, "a", "answered"],
            [2, "b", "answered"],
            [3, "c", "answered"]
          ]
        )
        assert.strictEqual(new Set(sim.requests.map((request) => request.connection)).size, 1)
      })
    )

    it.scoped("waitForClientClose rejects for an answered request and after its timeout", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        yield* openai(sim, chatRequest)
        const answered = yield* Effect.flip(wait(() => sim.waitForClientClose(1)))
        const missing = yield* Effect.flip(wait(() => sim.waitForClientClose(2, 30)))
        const tooFew = yield* Effect.flip(wait(() => sim.waitForRequests(2, 30)))
        assert.strictEqual(
          (answered.error as Error).message,
          'Request 1 ended as "answered", not closed by the client.'
        )
        assert.strictEqual(
          (missing.error as Error).message,
          "Timed out after 30 ms for the client to close request 2 (outcome: not received)."
        )
        assert.strictEqual((tooFew.error as Error).message, "Timed out after 30 ms for 2 requests (received 1).")
      })
    )
  })

  describe("lifecycle", () => {
    it.effect("close() ends a hung request promptly", () =>
      Effect.gen(function* () {
        const sim = yield* Effect.promise(() => Simulator.start())
        sim.script("gpt-4o", { hang: true })
        const fiber = yield* Effect.fork(Effect.flip(openai(sim, chatRequest)))
        yield* wait(() => sim.waitForRequests(1))
        const started = Date.now()
        yield* Effect.promise(() => sim.close())
        const elapsed = Date.now() - started
        const error = yield* fiber.await.pipe(Effect.flatten)
        assert.isBelow(elapsed, 500)
        assert.strictEqual(socketErrorCode(error), "UND_ERR_SOCKET")
        assert.strictEqual(sim.requests[0]?.outcome, "server-closed")
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.effect("make() closes the simulator with its scope", () =>
      Effect.gen(function* () {
        const sim = yield* Effect.scoped(Simulator.make())
        const error = yield* Effect.flip(openai(sim, chatRequest))
        assert.strictEqual((error.error as Error).message, "fetch failed")
      })
    )

    it.layer(Simulator.layer({ openaiApiKey: "sk-shared" }))("layer", (it) => {
      it.effect("provides one simulator to the tests that share it", () =>
        Effect.gen(function* () {
          const sim = yield* Simulator.SimulatorService
          sim.reset()
          const response = yield* openai(sim, chatRequest, { authorization: "Bearer sk-shared" })
          assert.strictEqual(response.status, 200)
          assert.strictEqual(sim.requests.length, 1)
        })
      )
    })
  })
})
