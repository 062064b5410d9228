/**
 * The Anthropic provider over real HTTP against the loopback simulator: request
 * mapping (system, max_tokens, stop, user), response mapping to an OpenAI
 * `ChatCompletion`, the DESIGN §5 classification row by row, retry-after,
 * cancellation and secrets.
 */
import * as Util from "node:util"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { type ChatCompletion, ModelId, ProviderError } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Redacted, TestClock, TestContext } from "effect"
import { AnthropicProvider } from "../src/index.js"

/**
 * The real HTTP client. `NodeHttpClient.layerUndici` would be the first choice,
 * but `@effect/platform-node` is not a dependency of this package (nor of the
 * root), so it cannot be resolved from here; Node's built-in `fetch` is undici
 * too, and `FetchHttpClient` aborts on interruption like `layerUndici` does.
 */
const HttpLive = FetchHttpClient.layer

const HAIKU = ModelId.parse("anthropic/claude-3-5-haiku-20241022")!
const WIRE_NAME = "claude-3-5-haiku-20241022"
const KEY = "sk-ant-test-0000"
const CANARY = "sk-canary-0123456789"
const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }

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

/** The error of a call that must fail; a completion instead is a test failure that names it. */
const failureOf = (effect: Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError>) =>
  Effect.matchEffect(effect, {
    onFailure: Effect.succeed,
    onSuccess: (completion) => Effect.dieMessage(`expected a ProviderError, got completion ${completion.id}`)
  })

const millisOf = (duration: Duration.Duration | undefined): number | undefined =>
  duration === undefined ? undefined : Duration.toMillis(duration)

/** A proxy's error page, much larger than any description may be. */
const htmlPage = (status: string): string =>
  `<html>\n  <head><title>${status}</title></head>\n  <body>\n${"<p>upstream trouble</p>\n".repeat(4000)}</body>\n</html>\n`

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

/** Everything a user could see of an error. */
const renderings = (error: ProviderError.ProviderError): ReadonlyArray<readonly [string, string]> => [
  ["String", String(error)],
  ["message", error.message],
  ["JSON", JSON.stringify(error)],
  ["inspect", Util.inspect(error, { depth: 10 })]
]

const assertNoCanary = (error: ProviderError.ProviderError) => {
  for (const [how, text] of renderings(error)) {
    assert.isFalse(text.includes(CANARY), `${how} contains the key: ${text}`)
    assert.isFalse(text.includes("0123456789"), `${how} contains part of the key: ${text}`)
  }
}

interface Row {
  readonly name: string
  readonly reply: Simulator.Reply
  readonly reason: ProviderError.Reason
  readonly status: number | undefined
  readonly retryable: boolean
  readonly description?: string
}

/** DESIGN §5, row by row, on the Anthropic wire (error bodies as Anthropic sends them). */
const statusRows: ReadonlyArray<Row> = [
  {
    name: "429 rate_limit_error",
    reply: {
      status: 429,
      error: { type: "rate_limit_error", message: "Number of requests has exceeded your rate limit." }
    },
    reason: "RateLimited",
    status: 429,
    retryable: true,
    description: "Number of requests has exceeded your rate limit."
  },
  {
    name: "402 billing_error",
    reply: { status: 402, error: { type: "billing_error", message: "Your credit balance is too low." } },
    reason: "QuotaExceeded",
    status: 402,
    retryable: false,
    description: "Your credit balance is too low."
  },
  {
    name: "429 billing_error",
    reply: { status: 429, error: { type: "billing_error" } },
    reason: "QuotaExceeded",
    status: 429,
    retryable: false,
    description: "Simulated billing_error."
  },
  { name: "529 overloaded_error", reply: { status: 529 }, reason: "Overloaded", status: 529, retryable: true },
  { name: "503", reply: { status: 503 }, reason: "Overloaded", status: 503, retryable: true },
  { name: "500", reply: { status: 500 }, reason: "ServerError", status: 500, retryable: true },
  { name: "502", reply: { status: 502 }, reason: "ServerError", status: 502, retryable: true },
  { name: "504", reply: { status: 504 }, reason: "ServerError", status: 504, retryable: true },
  { name: "401", reply: { status: 401 }, reason: "Authentication", status: 401, retryable: false },
  { name: "403", reply: { status: 403 }, reason: "PermissionDenied", status: 403, retryable: false },
  { name: "404", reply: { status: 404 }, reason: "NotFound", status: 404, retryable: false },
  { name: "400", reply: { status: 400 }, reason: "InvalidRequest", status: 400, retryable: false },
  { name: "413", reply: { status: 413 }, reason: "InvalidRequest", status: 413, retryable: false },
  { name: "422", reply: { status: 422 }, reason: "InvalidRequest", status: 422, retryable: false }
]

/** The simulator's default error body for a status on the Anthropic wire says `Simulated <type>.` */
const defaultDescription = (status: number): string => {
  switch (status) {
    case 401:
      return "Simulated authentication_error."
    case 403:
      return "Simulated permission_error."
    case 404:
      return "Simulated not_found_error."
    case 413:
      return "Simulated request_too_large."
    case 429:
      return "Simulated rate_limit_error."
    case 529:
      return "Simulated overloaded_error."
  }
  return status >= 500 ? "Simulated api_error." : "Simulated invalid_request_error."
}

const bodyRows: ReadonlyArray<Row> = [
  {
    name: "200 with an HTML page",
    reply: {
      body: "<html><body>Welcome to the captive portal</body></html>",
      headers: { "content-type": "text/html" }
    },
    reason: "MalformedResponse",
    status: undefined,
    retryable: false,
    description: 'body is not JSON: "<html><body>Welcome to the captive portal</body></html>"'
  },
  {
    name: "200 with truncated JSON",
    reply: { body: '{"id":"msg_1","type":"message","role":"assis' },
    reason: "MalformedResponse",
    status: undefined,
    retryable: false,
    description: 'body is not JSON: "{\\"id\\":\\"msg_1\\",\\"type\\":\\"message\\",\\"role\\":\\"assis"'
  },
  {
    name: "200 with content that is not a list of blocks",
    reply: { body: messageBody({ content: "Hi." }) },
    reason: "MalformedResponse",
    status: undefined,
    retryable: false
  },
  {
    name: "200 with an OpenAI-shaped body (wrong base URL)",
    reply: {
      body: JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o",
        choices: [{ index: 0, message: { role: "assistant", content: "Hi." }, finish_reason: "stop" }]
      })
    },
    reason: "MalformedResponse",
    status: undefined,
    retryable: false
  },
  {
    name: "200 with an empty body",
    reply: { body: "" },
    reason: "MalformedResponse",
    status: undefined,
    retryable: false,
    description: 'body is not JSON: ""'
  },
  {
    name: "a connection reset before the headers",
    reply: { reset: "before-headers" },
    reason: "Transport",
    status: undefined,
    retryable: true
  },
  {
    name: "a connection reset mid-body",
    reply: { reset: "mid-body", content: "a long enough answer to be cut in half on the wire" },
    reason: "Transport",
    status: undefined,
    retryable: true
  },
  {
    name: "an error reply reset mid-body",
    reply: { status: 529, reset: "mid-body" },
    reason: "Transport",
    status: undefined,
    retryable: true
  }
]

/**
 * One simulator and one HTTP client for the file. Test services are excluded:
 * `it.effect` runs on the live clock here (real sockets, real time); the tests
 * that control the clock provide `TestContext` themselves.
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
          usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }
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

    it.effect("joins the text blocks and skips the others (thinking, tool_use)", () =>
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
            message: { role: "assistant", content: "Hello, world." },
            finish_reason: "tool_calls",
            logprobs: null
          }
        ])
        assert.deepStrictEqual(completion.usage, { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 })
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

  describe("classification (DESIGN §5)", () => {
    for (const row of statusRows) {
      it.effect(`${row.name} -> ${row.reason}`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, row.reply)
          const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
          assert.strictEqual(error._tag, "ProviderError")
          assert.strictEqual(error.reason, row.reason)
          assert.strictEqual(error.status, row.status)
          assert.strictEqual(error.model, "anthropic/claude-3-5-haiku-20241022")
          assert.strictEqual(error.description, row.description ?? defaultDescription(row.status ?? 0))
          assert.isUndefined(error.retryAfter)
          assert.strictEqual(ProviderError.isRetryable(error), row.retryable)
          assert.strictEqual(sim.requests.length, 1, "the provider never retries")
        })
      )
    }

    for (const row of bodyRows) {
      it.effect(`${row.name} -> ${row.reason}`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script(WIRE_NAME, row.reply)
          const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
          assert.strictEqual(error.reason, row.reason)
          assert.strictEqual(error.status, row.status)
          assert.strictEqual(error.model, "anthropic/claude-3-5-haiku-20241022")
          if (row.description !== undefined) assert.strictEqual(error.description, row.description)
          assert.strictEqual(ProviderError.isRetryable(error), row.retryable)
          assert.strictEqual(sim.requests.length, 1, "the provider never retries")
        })
      )
    }

    it.effect("a body of the wrong shape names the offending path", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { body: messageBody({ usage: { input_tokens: "many", output_tokens: 1 } }) })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "MalformedResponse")
        assert.match(error.description ?? "", /^unexpected body: usage\.input_tokens: /)
      })
    )

    it.effect("a body cut off mid-way says so", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { reset: "mid-body", content: "cut me in half please" })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Transport")
        assert.match(error.description ?? "", /^body cut off: /)
        assert.strictEqual(sim.requests[0]?.outcome, "reset")
      })
    )

    it.effect("a refused connection -> Transport", () =>
      Effect.gen(function* () {
        const closed = yield* promise(() => Simulator.start())
        yield* promise(() => closed.close())
        const provider = yield* AnthropicProvider.make({ apiKey: Redacted.make(KEY), baseURL: closed.anthropicBaseUrl })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Transport")
        assert.strictEqual(error.model, "anthropic/claude-3-5-haiku-20241022")
        assert.isUndefined(error.status)
        assert.isTrue(ProviderError.isRetryable(error))
      })
    )

    it.effect("a body over maxResponseBytes -> ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 1024 })
        sim.script(WIRE_NAME, { content: "word ".repeat(1000) }, { content: "short answer" })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "ResponseTooLarge")
        assert.strictEqual(error.model, "anthropic/claude-3-5-haiku-20241022")
        assert.strictEqual(error.description, "response body over 1024 bytes")
        assert.isFalse(ProviderError.isRetryable(error))
        // the same cap lets a small body through
        const completion = yield* provider.complete({ model: HAIKU, request: ask })
        assert.strictEqual(completion.choices[0]?.message.content, "short answer")
      })
    )

    it.effect("the size cap is counted while reading: the call fails before the body has arrived", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 1024 })
        // ~20 KB at 40 KB/s: half a second to send whole; the cap is passed after ~25 ms
        sim.script(WIRE_NAME, { content: "word ".repeat(4000), dripBytesPerSecond: 40_000 })
        const started = Date.now()
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        const elapsed = Date.now() - started
        assert.strictEqual(error.reason, "ResponseTooLarge")
        assert.isBelow(elapsed, 300)
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.effect("an HTML error page becomes a short excerpt, however large the page", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const page = htmlPage("502 Bad Gateway")
        sim.script(WIRE_NAME, { status: 502, body: page, headers: { "content-type": "text/html" } })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.isAbove(page.length, 50_000)
        assert.strictEqual(error.reason, "ServerError")
        assert.strictEqual(error.status, 502)
        const description = error.description ?? ""
        assert.isBelow(description.length, 250)
        assert.isTrue(description.startsWith("<html> <head><title>502 Bad Gateway</title></head>"), description)
        assert.isBelow(error.message.length, 300)
      })
    )

    it.effect("an error page larger than maxResponseBytes is still classified by its status", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 1024 })
        sim.script(WIRE_NAME, {
          status: 529,
          body: htmlPage("529 Service Unavailable"),
          headers: { "content-type": "text/html" }
        })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Overloaded")
        assert.strictEqual(error.status, 529)
        assert.isTrue(ProviderError.isRetryable(error))
        assert.isTrue(
          (error.description ?? "").startsWith("<html> <head><title>529 Service Unavailable</title></head>")
        )
      })
    )

    it.effect("a huge JSON error message is truncated in the description", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const message = `messages: ${"x".repeat(20_000)}`
        sim.script(WIRE_NAME, { status: 400, error: { type: "invalid_request_error", message } })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "InvalidRequest")
        const description = error.description ?? ""
        assert.isBelow(description.length, 250)
        assert.isTrue(description.startsWith("messages: xxx"), description)
      })
    )
  })

  describe("retry-after", () => {
    const retryAfterOf = (headers: Readonly<Record<string, string>>) =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { status: 429, headers })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "RateLimited")
        return millisOf(error.retryAfter)
      })

    it.effect("retry-after-ms: 1500 -> 1500 ms", () =>
      Effect.map(retryAfterOf({ "retry-after-ms": "1500" }), (millis) => assert.strictEqual(millis, 1500))
    )

    it.effect("retry-after: 3 -> 3000 ms", () =>
      Effect.map(retryAfterOf({ "retry-after": "3" }), (millis) => assert.strictEqual(millis, 3000))
    )

    it.effect("retry-after-ms wins over retry-after", () =>
      Effect.map(retryAfterOf({ "retry-after-ms": "1500", "retry-after": "3" }), (millis) =>
        assert.strictEqual(millis, 1500)
      )
    )

    it.effect("an unusable retry-after-ms falls back to retry-after", () =>
      Effect.map(retryAfterOf({ "retry-after-ms": "soon", "retry-after": "3" }), (millis) =>
        assert.strictEqual(millis, 3000)
      )
    )

    it.effect("retry-after as an HTTP-date ~10 s ahead -> between 8 and 11 s", () =>
      Effect.map(retryAfterOf({ "retry-after": new Date(Date.now() + 10_000).toUTCString() }), (millis) => {
        assert.isDefined(millis)
        assert.isTrue(millis! >= 8000 && millis! <= 11_000, `${millis}`)
      })
    )

    it.effect("retry-after as an HTTP-date is measured against the Effect clock", () =>
      Effect.gen(function* () {
        const now = 1_700_000_000_000
        yield* TestClock.setTime(now)
        const millis = yield* retryAfterOf({ "retry-after": new Date(now + 10_000).toUTCString() })
        assert.strictEqual(millis, 10_000)
      }).pipe(Effect.provide(TestContext.TestContext))
    )

    for (const [name, headers] of [
      ["garbage (soon)", { "retry-after": "soon" }],
      ["negative (-5)", { "retry-after": "-5" }],
      ["negative retry-after-ms (-5)", { "retry-after-ms": "-5" }],
      ["an HTTP-date in the past", { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }],
      ["empty", { "retry-after": "" }]
    ] as const) {
      it.effect(`retry-after ${name} -> none`, () =>
        Effect.map(retryAfterOf(headers), (millis) => assert.isUndefined(millis))
      )
    }

    it.effect("retry-after is read on other statuses too (529)", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { status: 529, headers: { "retry-after": "2" } })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Overloaded")
        assert.strictEqual(millisOf(error.retryAfter), 2000)
      })
    )
  })

  describe("rate-limit reset", () => {
    /** 2026-11-30T23:59:00.000Z. */
    const NOW = Date.UTC(2026, 10, 30, 23, 59, 0)
    /** The RFC 3339 timestamp `millis` after `NOW`. */
    const at = (millis: number): string => new Date(NOW + millis).toISOString()

    /**
     * The error of a call answered with `reply`, with the Effect clock set to
     * `NOW`: the reset is measured against it, so the duration is exact.
     */
    const errorFor = (reply: Simulator.Reply) =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, reply)
        return yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
      }).pipe(Effect.provide(TestContext.TestContext))

    it.effect("a 429 with only the reset headers -> RateLimited, no retryAfter, the spent limit's reset", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: {
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": at(60_000),
            "anthropic-ratelimit-tokens-remaining": "0",
            "anthropic-ratelimit-tokens-reset": at(42_500),
            "anthropic-ratelimit-input-tokens-remaining": "0",
            "anthropic-ratelimit-input-tokens-reset": at(42_500),
            "anthropic-ratelimit-output-tokens-remaining": "8000",
            "anthropic-ratelimit-output-tokens-reset": at(1_000)
          }
        })
        assert.strictEqual(error.reason, "RateLimited")
        assert.strictEqual(error.status, 429)
        assert.isUndefined(error.retryAfter)
        assert.strictEqual(millisOf(error.rateLimitReset), 42_500)
      })
    )

    it.effect("a reset with an offset and whole seconds is measured exactly", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: { "anthropic-ratelimit-requests-reset": "2026-12-01T00:59:30+01:00" }
        })
        assert.strictEqual(millisOf(error.rateLimitReset), 30_000)
      })
    )

    it.effect("a 429 with retry-after and reset headers keeps both", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: {
            "retry-after": "7",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": at(6_250)
          }
        })
        assert.strictEqual(error.reason, "RateLimited")
        assert.strictEqual(millisOf(error.retryAfter), 7_000)
        assert.strictEqual(millisOf(error.rateLimitReset), 6_250)
      })
    )

    it.effect("a 429 whose resets are garbage or in the past has no rateLimitReset", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: {
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": at(-1_000),
            "anthropic-ratelimit-tokens-reset": new Date(NOW + 60_000).toUTCString(),
            "anthropic-ratelimit-input-tokens-reset": "2026-11-31T00:00:00Z"
          }
        })
        assert.strictEqual(error.reason, "RateLimited")
        assert.isUndefined(error.rateLimitReset)
      })
    )

    it.effect("a 429 without reset headers has no rateLimitReset", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({ status: 429 })
        assert.strictEqual(error.reason, "RateLimited")
        assert.isUndefined(error.rateLimitReset)
      })
    )

    for (const status of [529, 500, 400]) {
      it.effect(`a ${status} with reset headers has no rateLimitReset`, () =>
        Effect.gen(function* () {
          const error = yield* errorFor({
            status,
            headers: {
              "anthropic-ratelimit-requests-remaining": "0",
              "anthropic-ratelimit-requests-reset": at(30_000)
            }
          })
          assert.strictEqual(error.status, status)
          assert.isUndefined(error.rateLimitReset)
        })
      )
    }
  })

  describe("API key", () => {
    it.effect("without a key the call fails with Authentication and sends nothing", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.SimulatorService
        sim.reset()
        const provider = yield* AnthropicProvider.make({ baseURL: sim.anthropicBaseUrl })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assert.strictEqual(error.model, "anthropic/claude-3-5-haiku-20241022")
        assert.isUndefined(error.status)
        assert.strictEqual(error.description, "no API key: set ANTHROPIC_API_KEY or pass apiKey in the options")
        assert.strictEqual(sim.requests.length, 0)
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

  describe("cancellation", () => {
    it.effect("a timed-out call aborts its HTTP request", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { hang: true })
        const exit = yield* provider
          .complete({ model: HAIKU, request: ask })
          .pipe(Effect.timeout("200 millis"), Effect.exit)
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const failure = Cause.failureOption(exit.cause)
          assert.isTrue(failure._tag === "Some" && Cause.isTimeoutException(failure.value))
        }
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.requests.length, 1)
        assert.strictEqual(sim.requests[0]?.outcome, "client-closed")
        assert.strictEqual(sim.openRequests(), 0)
      })
    )

    it.effect("an interrupted call aborts its HTTP request", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script(WIRE_NAME, { hang: true })
        const fiber = yield* Effect.fork(provider.complete({ model: HAIKU, request: ask }))
        yield* promise(() => sim.waitForRequests(1))
        assert.strictEqual(sim.openRequests(), 1)
        const exit = yield* Fiber.interrupt(fiber)
        assert.isTrue(Exit.isInterrupted(exit))
        yield* promise(() => sim.waitForClientClose(1))
        assert.strictEqual(sim.openRequests(), 0)
      })
    )
  })

  describe("secrets", () => {
    const canaryProvider = (baseURL: string) => AnthropicProvider.make({ apiKey: Redacted.make(CANARY), baseURL })

    it.effect("a 401 error never shows the key", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* canaryProvider(sim.anthropicBaseUrl)
        sim.script(WIRE_NAME, { status: 401, error: { type: "authentication_error", message: "invalid x-api-key" } })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assert.strictEqual(sim.requests[0]?.headers["x-api-key"], CANARY)
        assertNoCanary(error)
      })
    )

    it.effect("a Transport error (reset, refused) never shows the key", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* canaryProvider(sim.anthropicBaseUrl)
        sim.script(WIRE_NAME, { reset: "before-headers" }, { reset: "mid-body" })
        const reset = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        const cut = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        const closed = yield* promise(() => Simulator.start())
        yield* promise(() => closed.close())
        const refusing = yield* canaryProvider(closed.anthropicBaseUrl)
        const refused = yield* failureOf(refusing.complete({ model: HAIKU, request: ask }))
        for (const error of [reset, cut, refused]) {
          assert.strictEqual(error.reason, "Transport")
          assertNoCanary(error)
        }
      })
    )

    it.effect("an error body that echoes the key verbatim does not carry it into the error", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* canaryProvider(sim.anthropicBaseUrl)
        // a proxy in front of the API may echo the presented key in full
        sim.script(WIRE_NAME, {
          status: 401,
          error: { type: "authentication_error", message: `invalid x-api-key: ${CANARY}` }
        })
        const error = yield* failureOf(provider.complete({ model: HAIKU, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assertNoCanary(error)
      })
    )
  })
})
