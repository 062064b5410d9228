/**
 * The OpenAI provider over real HTTP against the loopback simulator: request
 * and response mapping, the DESIGN §5 classification row by row, retry-after,
 * cancellation and secrets.
 */
import * as Util from "node:util"
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { type ChatCompletion, ModelId, ProviderError } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Redacted, TestClock, TestContext } from "effect"
import { OpenAiProvider } from "../src/index.js"

/**
 * The real HTTP client. `NodeHttpClient.layerUndici` would be the first choice,
 * but `@effect/platform-node` is not a dependency of this package (nor of the
 * root), so it cannot be resolved from here; Node's built-in `fetch` is undici
 * too, and `FetchHttpClient` aborts on interruption like `layerUndici` does.
 */
const HttpLive = FetchHttpClient.layer

const GPT = ModelId.parse("openai/gpt-4o")!
const KEY = "sk-test-0000"
const CANARY = "sk-canary-0123456789"
const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

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

const millisOf = (duration: Duration.Duration | undefined): number | undefined =>
  duration === undefined ? undefined : Duration.toMillis(duration)

/** A proxy's error page, much larger than any description may be. */
const htmlPage = (status: string): string =>
  `<html>\n  <head><title>${status}</title></head>\n  <body>\n${"<p>upstream trouble</p>\n".repeat(4000)}</body>\n</html>\n`

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

/** DESIGN §5, row by row, on the OpenAI wire (error bodies as OpenAI sends them). */
const statusRows: ReadonlyArray<Row> = [
  {
    name: "429 rate limit",
    reply: { status: 429, error: { type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached." } },
    reason: "RateLimited",
    status: 429,
    retryable: true,
    description: "Rate limit reached."
  },
  {
    name: "429 insufficient_quota",
    reply: {
      status: 429,
      error: { type: "insufficient_quota", code: "insufficient_quota", message: "You exceeded your current quota." }
    },
    reason: "QuotaExceeded",
    status: 429,
    retryable: false,
    description: "You exceeded your current quota."
  },
  {
    name: "429 with code insufficient_quota and another type",
    reply: { status: 429, error: { type: "requests", code: "insufficient_quota" } },
    reason: "QuotaExceeded",
    status: 429,
    retryable: false,
    description: "Simulated requests."
  },
  { name: "529", reply: { status: 529 }, reason: "Overloaded", status: 529, retryable: true },
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

/** The simulator's default error body for a status on the OpenAI wire says `Simulated <type>.` */
const defaultDescription = (status: number): string =>
  status === 401 || status === 404 || status === 400 || status === 413 || status === 422
    ? "Simulated invalid_request_error."
    : status === 403
      ? "Simulated permission_error."
      : status === 429
        ? "Simulated requests."
        : "Simulated server_error."

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
    reply: { body: '{"id":"chatcmpl-1","object":"chat.completion","choi' },
    reason: "MalformedResponse",
    status: undefined,
    retryable: false,
    description: 'body is not JSON: "{\\"id\\":\\"chatcmpl-1\\",\\"object\\":\\"chat.completion\\",\\"choi"'
  },
  {
    name: "200 with JSON of the wrong shape",
    reply: { body: '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":"none"}' },
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
    reply: { status: 500, reset: "mid-body" },
    reason: "Transport",
    status: undefined,
    retryable: true
  }
]

/**
 * One simulator and one HTTP client for the file. Test services are excluded:
 * `it.effect` runs on the live clock here (real sockets, real time); the one
 * test that controls the clock provides `TestContext` itself.
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
          usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }
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

  describe("classification (DESIGN §5)", () => {
    for (const row of statusRows) {
      it.effect(`${row.name} -> ${row.reason}`, () =>
        Effect.gen(function* () {
          const { sim, provider } = yield* setup()
          sim.script("gpt-4o", row.reply)
          const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
          assert.strictEqual(error._tag, "ProviderError")
          assert.strictEqual(error.reason, row.reason)
          assert.strictEqual(error.status, row.status)
          assert.strictEqual(error.model, "openai/gpt-4o")
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
          sim.script("gpt-4o", row.reply)
          const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
          assert.strictEqual(error.reason, row.reason)
          assert.strictEqual(error.status, row.status)
          assert.strictEqual(error.model, "openai/gpt-4o")
          if (row.description !== undefined) assert.strictEqual(error.description, row.description)
          assert.strictEqual(ProviderError.isRetryable(error), row.retryable)
          assert.strictEqual(sim.requests.length, 1, "the provider never retries")
        })
      )
    }

    it.effect("a body of the wrong shape names the offending path", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { body: '{"id":"x","object":"chat.completion","created":1,"model":"m","choices":"none"}' })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "MalformedResponse")
        assert.match(error.description ?? "", /^unexpected body: choices: /)
      })
    )

    it.effect("a body cut off mid-way says so", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { reset: "mid-body", content: "cut me in half please" })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Transport")
        assert.match(error.description ?? "", /^body cut off: /)
        assert.strictEqual(sim.requests[0]?.outcome, "reset")
      })
    )

    it.effect("a refused connection -> Transport", () =>
      Effect.gen(function* () {
        const closed = yield* promise(() => Simulator.start())
        yield* promise(() => closed.close())
        const provider = yield* OpenAiProvider.make({ apiKey: Redacted.make(KEY), baseURL: closed.openaiBaseUrl })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Transport")
        assert.strictEqual(error.model, "openai/gpt-4o")
        assert.isUndefined(error.status)
        assert.isTrue(ProviderError.isRetryable(error))
      })
    )

    it.effect("a body over maxResponseBytes -> ResponseTooLarge", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 1024 })
        sim.script("gpt-4o", { content: "word ".repeat(1000) }, { content: "short answer" })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "ResponseTooLarge")
        assert.strictEqual(error.model, "openai/gpt-4o")
        assert.strictEqual(error.description, "response body over 1024 bytes")
        assert.isFalse(ProviderError.isRetryable(error))
        // the same cap lets a small body through
        const completion = yield* provider.complete({ model: GPT, request: ask })
        assert.strictEqual(completion.choices[0]?.message.content, "short answer")
      })
    )

    it.effect("the size cap is counted while reading: the call fails before the body has arrived", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup({ maxResponseBytes: 1024 })
        // ~20 KB at 40 KB/s: half a second to send whole; the cap is passed after ~25 ms
        sim.script("gpt-4o", { content: "word ".repeat(4000), dripBytesPerSecond: 40_000 })
        const started = Date.now()
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
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
        sim.script("gpt-4o", { status: 502, body: page, headers: { "content-type": "text/html" } })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
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
        sim.script("gpt-4o", {
          status: 503,
          body: htmlPage("503 Service Unavailable"),
          headers: { "content-type": "text/html" }
        })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Overloaded")
        assert.strictEqual(error.status, 503)
        assert.isTrue(ProviderError.isRetryable(error))
        assert.isTrue(
          (error.description ?? "").startsWith("<html> <head><title>503 Service Unavailable</title></head>")
        )
      })
    )

    it.effect("a huge JSON error message is truncated in the description", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        const message = `Invalid request: ${"x".repeat(20_000)}`
        sim.script("gpt-4o", { status: 400, error: { type: "invalid_request_error", message } })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "InvalidRequest")
        const description = error.description ?? ""
        assert.isBelow(description.length, 250)
        assert.isTrue(description.startsWith("Invalid request: xxx"), description)
      })
    )
  })

  describe("retry-after", () => {
    const retryAfterOf = (headers: Readonly<Record<string, string>>) =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { status: 429, headers })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
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

    it.effect("retry-after is read on other statuses too (503)", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { status: 503, headers: { "retry-after": "2" } })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Overloaded")
        assert.strictEqual(millisOf(error.retryAfter), 2000)
      })
    )
  })

  describe("rate-limit reset", () => {
    /** The error of a call answered with `reply`. */
    const errorFor = (reply: Simulator.Reply) =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", reply)
        return yield* failureOf(provider.complete({ model: GPT, request: ask }))
      })

    it.effect("a 429 with only the reset headers -> RateLimited, no retryAfter, the spent limit's reset", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1m30.5s",
            "x-ratelimit-remaining-tokens": "12000",
            "x-ratelimit-reset-tokens": "6m0s"
          }
        })
        assert.strictEqual(error.reason, "RateLimited")
        assert.strictEqual(error.status, 429)
        assert.isUndefined(error.retryAfter)
        assert.strictEqual(millisOf(error.rateLimitReset), 90_500)
      })
    )

    it.effect("a 429 with reset headers and no remaining headers -> the longer reset", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: { "x-ratelimit-reset-requests": "250ms", "x-ratelimit-reset-tokens": "1.5s" }
        })
        assert.strictEqual(error.reason, "RateLimited")
        assert.strictEqual(millisOf(error.rateLimitReset), 1_500)
      })
    )

    it.effect("a 429 with retry-after and reset headers keeps both", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: {
            "retry-after": "2",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "6m0s"
          }
        })
        assert.strictEqual(error.reason, "RateLimited")
        assert.strictEqual(millisOf(error.retryAfter), 2_000)
        assert.strictEqual(millisOf(error.rateLimitReset), 360_000)
      })
    )

    it.effect("a 429 whose reset headers are garbage has no rateLimitReset", () =>
      Effect.gen(function* () {
        const error = yield* errorFor({
          status: 429,
          headers: { "x-ratelimit-reset-requests": "soon", "x-ratelimit-reset-tokens": "-1s" }
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

    for (const status of [503, 500, 400]) {
      it.effect(`a ${status} with reset headers has no rateLimitReset`, () =>
        Effect.gen(function* () {
          const error = yield* errorFor({
            status,
            headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s" }
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
        const provider = yield* OpenAiProvider.make({ baseURL: sim.openaiBaseUrl })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assert.strictEqual(error.model, "openai/gpt-4o")
        assert.isUndefined(error.status)
        assert.strictEqual(error.description, "no API key: set OPENAI_API_KEY or pass apiKey in the options")
        assert.strictEqual(sim.requests.length, 0)
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

  describe("cancellation", () => {
    it.effect("a timed-out call aborts its HTTP request", () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup()
        sim.script("gpt-4o", { hang: true })
        const exit = yield* provider
          .complete({ model: GPT, request: ask })
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
        sim.script("gpt-4o", { hang: true })
        const fiber = yield* Effect.fork(provider.complete({ model: GPT, request: ask }))
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
    const canaryProvider = (baseURL: string) => OpenAiProvider.make({ apiKey: Redacted.make(CANARY), baseURL })

    it.effect("a 401 error never shows the key", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* canaryProvider(sim.openaiBaseUrl)
        // OpenAI masks the key in its message; the provider must not add it back
        sim.script("gpt-4o", {
          status: 401,
          error: { type: "invalid_request_error", code: "invalid_api_key", message: "Incorrect API key: sk-can***6789" }
        })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assert.strictEqual(sim.requests[0]?.headers["authorization"], `Bearer ${CANARY}`)
        assertNoCanary(error)
      })
    )

    it.effect("a Transport error (reset, refused) never shows the key", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* canaryProvider(sim.openaiBaseUrl)
        sim.script("gpt-4o", { reset: "before-headers" }, { reset: "mid-body" })
        const reset = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        const cut = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        const closed = yield* promise(() => Simulator.start())
        yield* promise(() => closed.close())
        const refusing = yield* canaryProvider(closed.openaiBaseUrl)
        const refused = yield* failureOf(refusing.complete({ model: GPT, request: ask }))
        for (const error of [reset, cut, refused]) {
          assert.strictEqual(error.reason, "Transport")
          assertNoCanary(error)
        }
      })
    )

    it.effect("an error body that echoes the key verbatim does not carry it into the error", () =>
      Effect.gen(function* () {
        const { sim } = yield* setup()
        const provider = yield* canaryProvider(sim.openaiBaseUrl)
        // some OpenAI-compatible hosts and proxies echo the presented key in full
        sim.script("gpt-4o", {
          status: 401,
          error: { type: "invalid_request_error", code: "invalid_api_key", message: `Invalid API key: ${CANARY}` }
        })
        const error = yield* failureOf(provider.complete({ model: GPT, request: ask }))
        assert.strictEqual(error.reason, "Authentication")
        assertNoCanary(error)
      })
    )
  })
})
