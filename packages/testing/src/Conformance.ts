/**
 * A provider conformance suite: the behaviours every HTTP wire owes its
 * callers, written once and run for each wire over each `HttpClient`, against
 * the loopback simulator. DESIGN §5 classification (every status, provider
 * error types, `x-should-retry`), retry-after in all its forms, the wire's
 * rate-limit reset, a spent limit on a success told to `onLimitSpent`,
 * redirects (never followed), size caps, gzip bodies,
 * secrets (the key never shows, even when the provider echoes it), cancellation
 * (an interrupted call closes its request), transport errors, malformed
 * bodies, and stream faults (breaks, stalls, error events, streams that end
 * without their end event or never close). A wire may add golden fixtures
 * (`Wire.golden`, read from files by `readGolden`): exchanges recorded both
 * ways, the exact body sent for a request and the exact result returned for a
 * raw reply, streamed and not.
 *
 * The suite registers its tests with the `layer` of `@effect/vitest` you pass
 * in: this module only imports its types, so importing `@ironlabsai/testing`
 * outside vitest (the CLI's simulator, benchmarks) does not load vitest.
 *
 * @example
 * import { layer } from "@effect/vitest"
 * import { UndiciHttpClient } from "@ironlabsai/http"
 * import { OpenAiProvider } from "@ironlabsai/openai"
 * import * as Conformance from "@ironlabsai/testing/Conformance"
 *
 * // One describe block per client: add `FetchHttpClient.layer`,
 * // `NodeHttpClient.layerUndici` or your own to the list.
 * Conformance.run(
 *   layer,
 *   {
 *     name: "OpenAiProvider",
 *     make: OpenAiProvider.make,
 *     baseUrlOf: (simulator) => simulator.openaiBaseUrl,
 *     routedModel: "openai/gpt-4o",
 *     wireModel: "gpt-4o",
 *     // Optional: exchanges pinned down both ways, e.g. from `golden/*.json` beside the test file with
 *     // `Conformance.readGolden(new URL("golden/", import.meta.url))`.
 *     golden: [],
 *     rateLimitHeaders: {
 *       at: () => ({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30.5s" }),
 *       reset: "90500 millis"
 *     },
 *     spentHeaders: {
 *       spent: () => ({ "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30.5s" }),
 *       limit: "requests",
 *       resetsIn: "90500 millis",
 *       left: () => ({ "x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s" }),
 *       unknown: () => ({ "x-ratelimit-remaining-requests": "-1", "x-ratelimit-reset-requests": "1s" })
 *     }
 *   },
 *   [{ name: "UndiciHttpClient.layer", layer: UndiciHttpClient.layer }]
 * )
 *
 * @since 0.2.0
 */
import * as Assert from "node:assert/strict"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Url from "node:url"
import * as Util from "node:util"
import type { HttpClient } from "@effect/platform"
import type * as EffectVitest from "@effect/vitest"
import { ChatCompletion, Deadline, ModelId, type Provider, ProviderError } from "@ironlabsai/core"
import {
  Cause,
  Chunk,
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Option,
  Redacted,
  Schema,
  Stream,
  TestClock,
  TestContext
} from "effect"
import * as Simulator from "./Simulator.js"

/**
 * How a provider reaches the simulator: the connection options every HTTP
 * wire takes (`Connection.Options` of `@ironlabsai/http`).
 *
 * @since 0.2.0
 * @category models
 */
export interface ConnectionOptions {
  readonly apiKey?: Redacted.Redacted<string> | undefined
  readonly baseURL?: string | undefined
  readonly maxResponseBytes?: number | undefined
}

/**
 * A wire's rate-limit headers, as a 429 carries them: the one wire-specific
 * fixture of the suite.
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimitHeaders {
  /**
   * The headers of a 429 sent at `now` (epoch millis on the Effect clock,
   * which the suite sets), whose spent limit resets `reset` later.
   */
  readonly at: (now: number) => Readonly<Record<string, string>>
  readonly reset: Duration.DurationInput
}

/**
 * A wire's rate-limit headers on a reply that succeeded: the suite answers
 * 200s with them and checks what reaches the call's `onLimitSpent`.
 *
 * @since 0.3.0
 * @category models
 */
export interface SpentHeaders {
  /**
   * The headers of a 200 sent at `now` (epoch millis on the Effect clock,
   * which the suite sets) that say `limit` has nothing left and resets
   * `resetsIn` later.
   */
  readonly spent: (now: number) => Readonly<Record<string, string>>
  readonly limit: Provider.LimitSpent["limit"]
  readonly resetsIn: Duration.DurationInput
  /** The headers of a 200 sent at `now` with something left on every limit. */
  readonly left: (now: number) => Readonly<Record<string, string>>
  /** The headers of a 200 sent at `now` whose every remaining count is `-1` (unknown), resets given. */
  readonly unknown: (now: number) => Readonly<Record<string, string>>
}

/**
 * A wire under test.
 *
 * @since 0.2.0
 * @category models
 */
export interface Wire {
  /** Names the describe blocks: `"OpenAiProvider"`. */
  readonly name: string
  /** The provider over the `HttpClient` in context (`OpenAiProvider.make`). */
  readonly make: (options: ConnectionOptions) => Effect.Effect<Provider.Provider, never, HttpClient.HttpClient>
  /** The base URL that points the provider at the simulator: `(simulator) => simulator.openaiBaseUrl`. */
  readonly baseUrlOf: (simulator: Simulator.Simulator) => string
  /** The model the suite calls, as the router names it: `"openai/gpt-4o"`. */
  readonly routedModel: string
  /** The same model as the wire sends it, which the simulator scripts by: `"gpt-4o"`. */
  readonly wireModel: string
  readonly rateLimitHeaders: RateLimitHeaders
  /**
   * The wire's rate-limit headers on a 200.
   *
   * @since 0.3.0
   */
  readonly spentHeaders: SpentHeaders
  /** Exchanges the wire must reproduce exactly, both ways (see `Golden`, `readGolden`). */
  readonly golden?: ReadonlyArray<Golden> | undefined
}

/**
 * A JSON object a golden fixture expects as a result: a `ChatCompletion` or
 * a `ChatCompletionChunk`, every field the result must have, and no other.
 * `created` is compared when given; left out, the result's must be the time
 * of the call in whole seconds (the same on every chunk of a stream), as a
 * wire that stamps its own answers sets it.
 *
 * @since 0.3.0
 * @category models
 */
export interface GoldenResult {
  readonly created?: number | undefined
  readonly [field: string]: unknown
}

/**
 * One exchange of a wire, recorded both ways: the request a caller makes, the
 * exact body the wire must send for it, the raw reply the provider answers
 * with, and the exact result the wire must return for that reply. The suite
 * checks the request is servable (`Provider.unsupported` names nothing), that
 * the body the simulator records is `sent` (compared as JSON values, so the
 * order of keys does not count), and that the result is `completion` (a
 * call) or `chunks` (a stream, in order).
 *
 * @since 0.3.0
 * @category models
 */
export type Golden = GoldenCall | GoldenStream

/**
 * What every golden fixture has.
 *
 * @since 0.3.0
 * @category models
 */
export interface GoldenExchange {
  /** Names the test: `"parallel tool calls"`. */
  readonly name: string
  /** The routed model id called (`"anthropic/claude-sonnet-4-20250514"`); by default the wire's `routedModel`. */
  readonly model?: string | undefined
  /** The caller's request, as the router hands it to the provider: no `model`, `stream: true` for a stream. */
  readonly request: ChatCompletion.ChatCompletionRequest
  /** The JSON body the wire must send, `model` included. */
  readonly sent: unknown
  /** The provider's raw reply body, sent verbatim: JSON text, or for a stream the event-stream text. */
  readonly reply: string
}

/**
 * A golden fixture of a call (`Provider.complete`).
 *
 * @since 0.3.0
 * @category models
 */
export interface GoldenCall extends GoldenExchange {
  readonly stream: false
  /** The `ChatCompletion` the provider returns. */
  readonly completion: GoldenResult
}

/**
 * A golden fixture of a stream (`Provider.stream`); the reply is sent as
 * `text/event-stream`.
 *
 * @since 0.3.0
 * @category models
 */
export interface GoldenStream extends GoldenExchange {
  readonly stream: true
  /** Every `ChatCompletionChunk` the provider emits, in order, until the stream ends cleanly. */
  readonly chunks: ReadonlyArray<GoldenResult>
}

/** A golden fixture's file, before its request is decoded and its reply read. */
const GoldenFile = Schema.Union(
  Schema.Struct({
    name: Schema.String,
    model: Schema.optional(Schema.String),
    stream: Schema.Literal(false),
    request: Schema.Unknown,
    sent: Schema.Unknown,
    completion: Schema.Record({ key: Schema.String, value: Schema.Unknown })
  }),
  Schema.Struct({
    name: Schema.String,
    model: Schema.optional(Schema.String),
    stream: Schema.Literal(true),
    request: Schema.Unknown,
    sent: Schema.Unknown,
    chunks: Schema.Array(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
  })
)

/**
 * Reads the golden fixtures of a directory, in the order of their file
 * names. A fixture is a JSON file `<case>.json` holding `name`, `stream`,
 * `request`, `sent`, `completion` or `chunks`, and optionally `model` (see
 * `Golden`); its reply is the raw body beside it, `<case>.reply.json` or
 * `<case>.reply.sse`, so that an event stream reads as it goes over the
 * wire. The request is decoded as a caller's is (`decodeRequest`). Throws,
 * naming the file, when a fixture is not well formed: a test file's setup
 * fails rather than run a partial suite.
 *
 * @example
 * import * as Conformance from "@ironlabsai/testing/Conformance"
 *
 * const golden = Conformance.readGolden(new URL("golden/", import.meta.url))
 *
 * @since 0.3.0
 * @category fixtures
 */
export const readGolden = (directory: string | URL): ReadonlyArray<Golden> => {
  const dir = typeof directory === "string" ? directory : Url.fileURLToPath(directory)
  const files = Fs.readdirSync(dir)
    .filter((file) => file.endsWith(".json") && !file.endsWith(".reply.json"))
    .sort()
  return files.map((file): Golden => {
    const fail = (problem: string): never => {
      throw new Error(`golden fixture ${Path.join(dir, file)}: ${problem}`)
    }
    const base = file.slice(0, -".json".length)
    const replies = [`${base}.reply.json`, `${base}.reply.sse`].filter((reply) => Fs.existsSync(Path.join(dir, reply)))
    if (replies.length !== 1) fail(`needs exactly one reply file, ${base}.reply.json or ${base}.reply.sse`)
    const replyFile = replies[0]!
    let json: unknown
    try {
      json = JSON.parse(Fs.readFileSync(Path.join(dir, file), "utf8"))
    } catch (error) {
      return fail(`not JSON: ${String(error)}`)
    }
    const decoded = Schema.decodeUnknownEither(GoldenFile)(json, { onExcessProperty: "error" })
    if (Either.isLeft(decoded)) return fail(String(decoded.left))
    const { request: raw, ...fixture } = decoded.right
    if (fixture.stream !== replyFile.endsWith(".sse")) fail("a stream's reply is a .sse file, a call's a .json file")
    const request = ChatCompletion.decodeRequest(raw)
    if (Either.isLeft(request)) return fail(request.left.message)
    return { ...fixture, request: request.right, reply: Fs.readFileSync(Path.join(dir, replyFile), "utf8") }
  })
}

/**
 * An `HttpClient` to run the suite over, e.g.
 * `{ name: "FetchHttpClient.layer", layer: FetchHttpClient.layer }`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Client {
  readonly name: string
  readonly layer: Layer.Layer<HttpClient.HttpClient, unknown>
}

/**
 * What the suite registers its tests with: the `it` of an `@effect/vitest`
 * `layer(..., { excludeTestServices: true })` that provides a simulator and an
 * `HttpClient` (test services excluded: real sockets run on the live clock).
 *
 * @since 0.2.0
 * @category models
 */
export type Tests = EffectVitest.Vitest.MethodsNonLive<Simulator.SimulatorService | HttpClient.HttpClient, true>

/**
 * Registers the suite for `wire` once per client: a describe block
 * `"<wire> over <client>"` with its own simulator. Pass `@effect/vitest`'s
 * `layer`.
 *
 * @since 0.2.0
 * @category running
 */
export const run = (layer: typeof EffectVitest.layer, wire: Wire, clients: ReadonlyArray<Client>): void => {
  for (const client of clients) {
    layer(Layer.merge(Simulator.layer(), client.layer), { excludeTestServices: true })(
      `${wire.name} over ${client.name}`,
      (it) => suite(it, wire)
    )
  }
}

/**
 * Registers the suite for `wire` with `it`, whose layer provides the simulator
 * and the `HttpClient`: for a runner that builds its own describe blocks.
 *
 * @since 0.2.0
 * @category running
 */
export const suite = (it: Tests, wire: Wire): void => {
  const model = ModelId.parse(wire.routedModel)
  if (model === undefined) {
    it.effect("the wire's routedModel is a provider/model id", () =>
      Effect.dieMessage(`not a provider/model id: ${wire.routedModel}`)
    )
    return
  }
  const t = tools(wire, model)
  const group = (name: string, register: (it: Tests) => void) => it.layer(Layer.empty)(name, register)

  group("classification (DESIGN §5)", (it) => classification(it, t))
  group("retry-after", (it) => retryAfter(it, t))
  group("rate-limit reset", (it) => rateLimitReset(it, t, wire.rateLimitHeaders))
  group("spent limits on a success", (it) => limitSpent(it, t, wire.spentHeaders))
  group("redirects (never followed)", (it) => redirects(it, t))
  group("size caps", (it) => caps(it, t))
  group("gzip", (it) => gzip(it, t))
  group("secrets", (it) => secrets(it, t))
  group("cancellation", (it) => cancellation(it, t))
  group("transport errors", (it) => transportErrors(it, t))
  group("malformed 200 bodies", (it) => malformed(it, t))
  group("connection options", (it) => connection(it, t))
  group("streams", (it) => streams(it, t))
  group("stream faults", (it) => streamFaults(it, t))
  if (wire.golden !== undefined && wire.golden.length > 0) {
    const cases = wire.golden
    group("golden fixtures", (it) => golden(it, t, cases))
  }
}

// ---------------------------------------------------------------------------
// Tools shared by the behaviours
// ---------------------------------------------------------------------------

const KEY = "sk-conformance-0000"

/**
 * A key whose encodings differ: JSON may escape its `/` as `\/`, and URL
 * encoding turns `/` and `+` into `%2F` and `%2B`. Every encoding keeps the
 * digits, so no rendering of an error may contain them.
 */
const CANARY = "sk-canary/0123456789+xyz"
const CANARY_CORE = "0123456789"
const canaryForms = {
  verbatim: CANARY,
  "JSON-escaped": CANARY.replaceAll("/", "\\/"),
  "URL-encoded": encodeURIComponent(CANARY)
} as const

/** Two-, three- and four-byte UTF-8 characters, in six deltas. */
const UNICODE = "café 海 🌊 and more 🌊🌊"
const UNICODE_DELTAS = ["café ", "海 ", "🌊 ", "and ", "more ", "🌊🌊"]

/** 2026-11-30T23:59:00.000Z: the Effect clock of the tests that read dates. */
const NOW = Date.UTC(2026, 10, 30, 23, 59, 0)

const ask: ChatCompletion.ChatCompletionRequest = { messages: [{ role: "user", content: "Say hello" }] }
const eventStream = { "content-type": "text/event-stream" }

type Chunks = ReadonlyArray<ChatCompletion.ChatCompletionChunk>

const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

const millisOf = (duration: Duration.Duration | undefined): number | undefined =>
  duration === undefined ? undefined : Duration.toMillis(duration)

const text = (chunks: Chunks): string => chunks.map(ChatCompletion.chunkText).join("")
const contentTexts = (chunks: Chunks): ReadonlyArray<string> =>
  chunks.filter(ChatCompletion.hasContent).map(ChatCompletion.chunkText)

/** A proxy's error page, much larger than any description may be. */
const htmlPage = (title: string, repeat = 4000): string =>
  `<html>\n  <head><title>${title}</title></head>\n  <body>\n${"<p>upstream trouble</p>\n".repeat(repeat)}</body>\n</html>\n`

/** Everything a user could see of an error. */
const renderings = (error: ProviderError.ProviderError): ReadonlyArray<readonly [string, string]> => [
  ["String", String(error)],
  ["message", error.message],
  ["JSON", JSON.stringify(error)],
  ["inspect", Util.inspect(error, { depth: 10 })],
  ["Cause.pretty", Cause.pretty(Cause.fail(error))]
]

const assertNoKey = (error: ProviderError.ProviderError): void => {
  for (const [how, rendered] of renderings(error)) {
    Assert.ok(!rendered.includes(CANARY_CORE), `${how} shows the key: ${rendered}`)
  }
}

/** What every behaviour uses: a provider on the shared simulator, and ways to call it. */
interface Tools {
  readonly model: ModelId.ModelId
  readonly wire: Wire
  /** The shared simulator, reset, and a provider on it. */
  readonly setup: (
    options?: ConnectionOptions
  ) => Effect.Effect<
    { readonly sim: Simulator.Simulator; readonly provider: Provider.Provider },
    never,
    Simulator.SimulatorService | HttpClient.HttpClient
  >
  readonly script: (sim: Simulator.Simulator, ...replies: ReadonlyArray<Simulator.Reply>) => void
  readonly complete: (
    provider: Provider.Provider
  ) => Effect.Effect<ChatCompletion.ChatCompletion, ProviderError.ProviderError>
  readonly stream: (
    provider: Provider.Provider
  ) => Stream.Stream<ChatCompletion.ChatCompletionChunk, ProviderError.ProviderError>
  /** The error of a call that must fail. */
  readonly failureOf: (provider: Provider.Provider) => Effect.Effect<ProviderError.ProviderError>
  /** The chunks of a stream that must fail, and its error. */
  readonly streamFailureOf: (
    provider: Provider.Provider
  ) => Effect.Effect<{ readonly chunks: Chunks; readonly error: ProviderError.ProviderError }>
  readonly collect: (provider: Provider.Provider) => Effect.Effect<Chunks, ProviderError.ProviderError>
  /** The error of a call answered with `reply`. */
  readonly errorFor: (
    reply: Simulator.Reply,
    options?: ConnectionOptions
  ) => Effect.Effect<ProviderError.ProviderError, never, Simulator.SimulatorService | HttpClient.HttpClient>
}

const tools = (wire: Wire, model: ModelId.ModelId): Tools => {
  const setup: Tools["setup"] = (options = {}) =>
    Effect.gen(function* () {
      const sim = yield* Simulator.SimulatorService
      sim.reset()
      const provider = yield* wire.make({ apiKey: Redacted.make(KEY), baseURL: wire.baseUrlOf(sim), ...options })
      return { sim, provider }
    })
  const complete = (provider: Provider.Provider) => provider.complete({ model, request: ask })
  const stream = (provider: Provider.Provider) => provider.stream({ model, request: ask })
  const failureOf = (provider: Provider.Provider) =>
    Effect.matchEffect(complete(provider), {
      onFailure: Effect.succeed,
      onSuccess: (completion) => Effect.dieMessage(`expected a ProviderError, got completion ${completion.id}`)
    })
  const streamFailureOf = (provider: Provider.Provider) =>
    Effect.gen(function* () {
      const items = Chunk.toReadonlyArray(yield* Stream.runCollect(Stream.either(stream(provider))))
      const chunks = items.filter(Either.isRight).map((item) => item.right)
      const last = items.at(-1)
      if (last === undefined || Either.isRight(last)) {
        return yield* Effect.dieMessage(`expected the stream to fail, it ended cleanly after ${chunks.length} chunks`)
      }
      return { chunks, error: last.left }
    })
  return {
    model,
    wire,
    setup,
    script: (sim, ...replies) => sim.script(wire.wireModel, ...replies),
    complete,
    stream,
    failureOf,
    streamFailureOf,
    collect: (provider) => Effect.map(Stream.runCollect(stream(provider)), Chunk.toReadonlyArray),
    errorFor: (reply, options) =>
      Effect.gen(function* () {
        const { sim, provider } = yield* setup(options)
        sim.script(wire.wireModel, reply)
        const error = yield* failureOf(provider)
        Assert.equal(sim.requests.length, 1, "the provider never retries")
        return error
      })
  }
}

// ---------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------

interface Row {
  readonly name: string
  readonly reply: Simulator.Reply
  readonly reason: ProviderError.Reason
  readonly retryable: boolean
}

/** DESIGN §5, status by status, with the error type the wire sends by default for each. */
const statusRows: ReadonlyArray<readonly [number, ProviderError.Reason, boolean]> = [
  [400, "InvalidRequest", false],
  [401, "Authentication", false],
  [403, "PermissionDenied", false],
  [404, "NotFound", false],
  [408, "Timeout", true],
  [409, "ServerError", true],
  [413, "InvalidRequest", false],
  [422, "InvalidRequest", false],
  [429, "RateLimited", true],
  [500, "ServerError", true],
  [502, "ServerError", true],
  [503, "Overloaded", true],
  [504, "ServerError", true],
  [529, "Overloaded", true]
]

/** Error types that decide the reason whatever the status (a spent quota is not a passing rate limit). */
const errorTypeRows: ReadonlyArray<Row & { readonly status: number; readonly message: string }> = [
  {
    name: "429 insufficient_quota",
    status: 429,
    message: "You exceeded your current quota.",
    reply: { status: 429, error: { type: "insufficient_quota", message: "You exceeded your current quota." } },
    reason: "QuotaExceeded",
    retryable: false
  },
  {
    name: "429 billing_error",
    status: 429,
    message: "Your credit balance is too low.",
    reply: { status: 429, error: { type: "billing_error", message: "Your credit balance is too low." } },
    reason: "QuotaExceeded",
    retryable: false
  },
  {
    name: "402 billing_error",
    status: 402,
    message: "Your credit balance is too low.",
    reply: { status: 402, error: { type: "billing_error", message: "Your credit balance is too low." } },
    reason: "QuotaExceeded",
    retryable: false
  },
  {
    name: "529 overloaded_error",
    status: 529,
    message: "Overloaded",
    reply: { status: 529, error: { type: "overloaded_error", message: "Overloaded" } },
    reason: "Overloaded",
    retryable: true
  },
  {
    name: "500 api_error",
    status: 500,
    message: "Internal server error",
    reply: { status: 500, error: { type: "api_error", message: "Internal server error" } },
    reason: "ServerError",
    retryable: true
  }
]

/** An error object in a 200 body, as some proxies send it: classified by its type. */
const embeddedRows: ReadonlyArray<readonly [string, ProviderError.Reason]> = [
  ["overloaded_error", "Overloaded"],
  ["rate_limit_error", "RateLimited"],
  ["insufficient_quota", "QuotaExceeded"],
  ["invalid_request_error", "InvalidRequest"],
  ["mystery_error", "ServerError"]
]

const classification = (it: Tests, t: Tools) => {
  for (const [status, reason, retryable] of statusRows) {
    it.effect(`${status} -> ${reason}${retryable ? ", retryable" : ""}`, () =>
      Effect.gen(function* () {
        const error = yield* t.errorFor({ status })
        Assert.equal(error._tag, "ProviderError")
        Assert.equal(error.reason, reason)
        Assert.equal(error.status, status)
        Assert.equal(error.model, t.model.id)
        Assert.match(error.description ?? "", /^Simulated [a-z_]+\.$/)
        Assert.equal(error.retryAfter, undefined)
        Assert.equal(error.rateLimitReset, undefined)
        Assert.equal(error.shouldRetry, undefined)
        Assert.equal(ProviderError.isRetryable(error), retryable)
      })
    )
  }

  for (const row of errorTypeRows) {
    it.effect(`${row.name} -> ${row.reason}`, () =>
      Effect.gen(function* () {
        const error = yield* t.errorFor(row.reply)
        Assert.equal(error.reason, row.reason)
        Assert.equal(error.status, row.status)
        Assert.equal(error.description, row.message)
        Assert.equal(ProviderError.isRetryable(error), row.retryable)
      })
    )
  }

  for (const [type, reason] of embeddedRows) {
    it.effect(`a 200 whose body is an error object (${type}) -> ${reason}`, () =>
      Effect.gen(function* () {
        const error = yield* t.errorFor({ status: 200, error: { type, message: "From a proxy." } })
        Assert.equal(error.reason, reason)
        Assert.equal(error.status, undefined)
        Assert.equal(error.description, `error in a 2xx body: ${type}: From a proxy.`)
      })
    )
  }

  it.effect(
    "x-should-retry: false makes a 500 not retryable, true makes a 400 retryable, anything else is no verdict",
    () =>
      Effect.gen(function* () {
        const no = yield* t.errorFor({ status: 500, headers: { "x-should-retry": "false" } })
        Assert.deepEqual([no.reason, no.shouldRetry, ProviderError.isRetryable(no)], ["ServerError", false, false])
        const yes = yield* t.errorFor({ status: 400, headers: { "x-should-retry": "true" } })
        Assert.deepEqual([yes.reason, yes.shouldRetry, ProviderError.isRetryable(yes)], ["InvalidRequest", true, true])
        const maybe = yield* t.errorFor({ status: 503, headers: { "x-should-retry": "maybe" } })
        Assert.deepEqual(
          [maybe.reason, maybe.shouldRetry, ProviderError.isRetryable(maybe)],
          ["Overloaded", undefined, true]
        )
      })
  )

  it.effect(
    "the same errors before a stream as for a call (429 with retry-after, 500, 401, 503 with retry-after-ms, 529)",
    () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        const replies: ReadonlyArray<Simulator.Reply> = [
          { status: 429, headers: { "retry-after": "2" } },
          { status: 500 },
          { status: 401 },
          { status: 503, headers: { "retry-after-ms": "250" } },
          { status: 529, error: { type: "overloaded_error", message: "Overloaded" } }
        ]
        for (const reply of replies) {
          t.script(sim, reply, reply)
          const { chunks, error } = yield* t.streamFailureOf(provider)
          const complete = yield* t.failureOf(provider)
          Assert.deepEqual(chunks, [])
          const fields = (e: ProviderError.ProviderError) => [
            e.reason,
            e.status,
            millisOf(e.retryAfter),
            e.description,
            e.shouldRetry
          ]
          Assert.deepEqual(fields(error), fields(complete))
          Assert.equal(error.status, reply.status)
        }
        Assert.equal(sim.requests.length, 2 * replies.length, "the provider never retries")
      })
  )
}

const retryAfter = (it: Tests, t: Tools) => {
  const retryAfterOf = (headers: Readonly<Record<string, string>>) =>
    Effect.gen(function* () {
      const error = yield* t.errorFor({ status: 429, headers })
      Assert.equal(error.reason, "RateLimited")
      return millisOf(error.retryAfter)
    })

  const rows: ReadonlyArray<readonly [string, Readonly<Record<string, string>>, number | undefined]> = [
    ["retry-after-ms: 1500 -> 1500 ms", { "retry-after-ms": "1500" }, 1500],
    ["retry-after: 3 -> 3000 ms", { "retry-after": "3" }, 3000],
    ["retry-after: 1.5 -> 1500 ms", { "retry-after": "1.5" }, 1500],
    ["retry-after-ms wins over retry-after", { "retry-after-ms": "1500", "retry-after": "3" }, 1500],
    ["an unusable retry-after-ms falls back to retry-after", { "retry-after-ms": "soon", "retry-after": "3" }, 3000],
    ["garbage (soon) -> none", { "retry-after": "soon" }, undefined],
    ["negative (-5) -> none", { "retry-after": "-5" }, undefined],
    ["negative retry-after-ms (-5) -> none", { "retry-after-ms": "-5" }, undefined],
    ["an exponent (1e3) -> none", { "retry-after": "1e3" }, undefined],
    ["empty -> none", { "retry-after": "" }, undefined],
    ["an HTTP-date in the past -> none", { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }, undefined]
  ]
  for (const [name, headers, millis] of rows) {
    it.effect(name, () => Effect.map(retryAfterOf(headers), (actual) => Assert.equal(actual, millis)))
  }

  it.effect("an HTTP-date 10 s ahead -> 10000 ms, measured against the Effect clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const millis = yield* retryAfterOf({ "retry-after": new Date(NOW + 10_000).toUTCString() })
      Assert.equal(millis, 10_000)
    }).pipe(Effect.provide(TestContext.TestContext))
  )

  it.effect("retry-after is read on other statuses too (503, 529)", () =>
    Effect.gen(function* () {
      const overloaded = yield* t.errorFor({ status: 503, headers: { "retry-after": "2" } })
      Assert.deepEqual([overloaded.reason, millisOf(overloaded.retryAfter)], ["Overloaded", 2000])
      const busy = yield* t.errorFor({ status: 529, headers: { "retry-after-ms": "750" } })
      Assert.deepEqual([busy.reason, millisOf(busy.retryAfter)], ["Overloaded", 750])
    })
  )
}

const rateLimitReset = (it: Tests, t: Tools, fixture: RateLimitHeaders) => {
  const reset = Duration.toMillis(fixture.reset)
  const atNow = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.zipRight(TestClock.setTime(NOW), effect).pipe(Effect.provide(TestContext.TestContext))

  it.effect("a 429 with the wire's rate-limit headers -> RateLimited, the spent limit's reset, no retryAfter", () =>
    atNow(
      Effect.gen(function* () {
        const error = yield* t.errorFor({ status: 429, headers: fixture.at(NOW) })
        Assert.equal(error.reason, "RateLimited")
        Assert.equal(error.status, 429)
        Assert.equal(error.retryAfter, undefined)
        Assert.equal(millisOf(error.rateLimitReset), reset)
        Assert.equal(millisOf(ProviderError.holdFor(error)), reset)
      })
    )
  )

  it.effect("a 429 with retry-after and the rate-limit headers keeps both", () =>
    atNow(
      Effect.gen(function* () {
        const error = yield* t.errorFor({ status: 429, headers: { ...fixture.at(NOW), "retry-after": "7" } })
        Assert.equal(millisOf(error.retryAfter), 7000)
        Assert.equal(millisOf(error.rateLimitReset), reset)
      })
    )
  )

  it.effect("the rate-limit headers on a 503, a 500 or a 400 give no rateLimitReset", () =>
    atNow(
      Effect.gen(function* () {
        for (const status of [503, 500, 400]) {
          const error = yield* t.errorFor({ status, headers: fixture.at(NOW) })
          Assert.equal(error.status, status)
          Assert.equal(error.rateLimitReset, undefined)
        }
      })
    )
  )

  it.effect("a 429 without them has no rateLimitReset", () =>
    atNow(Effect.map(t.errorFor({ status: 429 }), (error) => Assert.equal(error.rateLimitReset, undefined)))
  )

  it.effect("a 429 with them before a stream has the same reset", () =>
    atNow(
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        t.script(sim, { status: 429, headers: fixture.at(NOW) })
        const { chunks, error } = yield* t.streamFailureOf(provider)
        Assert.deepEqual(chunks, [])
        Assert.equal(error.reason, "RateLimited")
        Assert.equal(millisOf(error.rateLimitReset), reset)
      })
    )
  )
}

const limitSpent = (it: Tests, t: Tools, fixture: SpentHeaders) => {
  const expected = { limit: fixture.limit, millis: Duration.toMillis(fixture.resetsIn) }
  const atNow = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.zipRight(TestClock.setTime(NOW), effect).pipe(Effect.provide(TestContext.TestContext))
  /** An `onLimitSpent` that records what it is told in `seen`, where a test may record chunks too. */
  const recorder = () => {
    const seen: Array<{ readonly limit: string; readonly millis: number } | "chunk"> = []
    const onLimitSpent = (spent: Provider.LimitSpent) =>
      Effect.sync(() => {
        seen.push({ limit: spent.limit, millis: Duration.toMillis(spent.resetsIn) })
      })
    return { seen, onLimitSpent }
  }
  const complete = (provider: Provider.Provider, onLimitSpent: Provider.CallRequest["onLimitSpent"]) =>
    provider.complete({ model: t.model, request: ask, onLimitSpent })
  const collect = (provider: Provider.Provider, onLimitSpent: Provider.CallRequest["onLimitSpent"]) =>
    Effect.map(Stream.runCollect(provider.stream({ model: t.model, request: ask, onLimitSpent })), (chunks) =>
      Chunk.toReadonlyArray(chunks)
    )

  it.effect("a 200 that says a limit is spent: onLimitSpent once, with the limit and its reset; the answer whole", () =>
    atNow(
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        t.script(sim, { content: "Hello there.", headers: fixture.spent(NOW) })
        const { seen, onLimitSpent } = recorder()
        const completion = yield* complete(provider, onLimitSpent)
        Assert.deepEqual(seen, [expected])
        Assert.equal(completion.choices[0]?.message.content, "Hello there.")
        Assert.equal(sim.requests.length, 1)
      })
    )
  )

  it.effect("a streamed 200 that says so: onLimitSpent once, before the first chunk; the chunks whole", () =>
    atNow(
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        t.script(sim, { content: "Hello there.", headers: fixture.spent(NOW) })
        const { seen, onLimitSpent } = recorder()
        const chunks = yield* Stream.runCollect(
          provider
            .stream({ model: t.model, request: ask, onLimitSpent })
            .pipe(Stream.tap(() => Effect.sync(() => seen.push("chunk"))))
        )
        Assert.deepEqual(seen[0], expected)
        Assert.deepEqual(
          seen.filter((item) => item !== "chunk"),
          [expected]
        )
        Assert.ok(seen.length > 1, "chunks arrived")
        Assert.equal(text(Chunk.toReadonlyArray(chunks)), "Hello there.")
      })
    )
  )

  it.effect("onLimitSpent is told as soon as the headers arrive, before the body, streamed or not", () =>
    atNow(
      Effect.gen(function* () {
        for (const streamed of [false, true]) {
          const { sim, provider } = yield* t.setup()
          t.script(sim, { content: "late", firstChunkDelay: "10 seconds", headers: fixture.spent(NOW) })
          const told = yield* Deferred.make<Provider.LimitSpent>()
          const onLimitSpent = (spent: Provider.LimitSpent) => Effect.asVoid(Deferred.succeed(told, spent))
          const fiber = yield* Effect.fork(
            streamed ? Effect.asVoid(collect(provider, onLimitSpent)) : Effect.asVoid(complete(provider, onLimitSpent))
          )
          const spent = yield* Deferred.await(told)
          Assert.deepEqual({ limit: spent.limit, millis: Duration.toMillis(spent.resetsIn) }, expected)
          Assert.ok(Option.isNone(yield* Fiber.poll(fiber)), "the call still waits for its body")
          yield* Fiber.interrupt(fiber)
          yield* promise(() => sim.waitForClientClose(1))
        }
      })
    )
  )

  const quiet: ReadonlyArray<readonly [string, (now: number) => Readonly<Record<string, string>>]> = [
    ["something left on every limit", fixture.left],
    ["every remaining count -1 (unknown)", fixture.unknown],
    ["no rate-limit headers", () => ({})]
  ]
  for (const [name, headersAt] of quiet) {
    it.effect(`a 200 with ${name}: onLimitSpent is not called, streamed or not`, () =>
      atNow(
        Effect.gen(function* () {
          const { sim, provider } = yield* t.setup()
          const reply = { content: "Hello there.", headers: headersAt(NOW) }
          t.script(sim, reply, reply)
          const { seen, onLimitSpent } = recorder()
          const completion = yield* complete(provider, onLimitSpent)
          const chunks = yield* collect(provider, onLimitSpent)
          Assert.deepEqual(seen, [])
          Assert.equal(completion.choices[0]?.message.content, "Hello there.")
          Assert.equal(text(chunks), "Hello there.")
        })
      )
    )
  }

  it.effect("a 429 with the same headers: onLimitSpent is not called (the error carries the reset)", () =>
    atNow(
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        const reply = { status: 429, headers: fixture.spent(NOW) }
        t.script(sim, reply, reply)
        const { seen, onLimitSpent } = recorder()
        const error = yield* Effect.flip(complete(provider, onLimitSpent))
        const streamError = yield* Effect.flip(collect(provider, onLimitSpent))
        Assert.deepEqual([error.reason, streamError.reason], ["RateLimited", "RateLimited"])
        Assert.deepEqual(seen, [])
      })
    )
  )

  it.effect("without onLimitSpent, a 200 that says a limit is spent is answered as usual, streamed or not", () =>
    atNow(
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        const reply = { content: "Hello there.", headers: fixture.spent(NOW) }
        t.script(sim, reply, reply)
        const completion = yield* complete(provider, undefined)
        const chunks = yield* collect(provider, undefined)
        Assert.equal(completion.choices[0]?.message.content, "Hello there.")
        Assert.equal(text(chunks), "Hello there.")
      })
    )
  )
}

const redirects = (it: Tests, t: Tools) => {
  it.scoped(
    "a redirect to another origin (301, 302, 303, 307, 308) is not followed: the other origin gets nothing",
    () =>
      Effect.gen(function* () {
        const other = yield* Simulator.make()
        const { sim, provider } = yield* t.setup()
        const location = `${other.url}/v1/elsewhere?token=x`
        const statuses = [301, 302, 303, 307, 308]
        t.script(sim, ...statuses.map((status) => ({ status, body: "", headers: { location } })))
        for (const status of statuses) {
          const error = yield* t.failureOf(provider)
          Assert.equal(error.reason, "InvalidRequest")
          Assert.equal(error.status, status)
          Assert.equal(error.description, `redirect to ${other.url}/v1/elsewhere not followed`)
          Assert.equal(ProviderError.isRetryable(error), false)
        }
        Assert.equal(sim.requests.length, statuses.length)
        Assert.deepEqual(other.requests, [], "the other origin received a request")
      })
  )

  it.effect("a redirect on the same origin is not followed either", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { status: 307, body: "", headers: { location: "/v1/moved" } })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual(
        [error.reason, error.status, error.description],
        ["InvalidRequest", 307, "redirect to /v1/moved not followed"]
      )
      Assert.equal(sim.requests.length, 1)
    })
  )

  it.scoped("a redirect before a stream is not followed", () =>
    Effect.gen(function* () {
      const other = yield* Simulator.make()
      const { sim, provider } = yield* t.setup()
      t.script(sim, { status: 302, body: "", headers: { location: `${other.url}/v1/elsewhere` } })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.deepEqual(chunks, [])
      Assert.deepEqual([error.reason, error.status], ["InvalidRequest", 302])
      Assert.deepEqual(other.requests, [], "the other origin received a request")
    })
  )
}

const caps = (it: Tests, t: Tools) => {
  it.effect("a body over maxResponseBytes -> ResponseTooLarge; the same cap lets a small body through", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup({ maxResponseBytes: 1024 })
      t.script(sim, { content: "word ".repeat(1000) }, { content: "short answer" })
      const error = yield* t.failureOf(provider)
      Assert.equal(error.reason, "ResponseTooLarge")
      Assert.equal(error.model, t.model.id)
      Assert.equal(error.description, "response body over 1024 bytes")
      Assert.equal(ProviderError.isRetryable(error), false)
      const completion = yield* t.complete(provider)
      Assert.equal(completion.choices[0]?.message.content, "short answer")
    })
  )

  it.effect("the cap is counted while reading: the call fails before the body has arrived, and closes it", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup({ maxResponseBytes: 1024 })
      // ~20 KB at 40 KB/s: half a second to send whole; the cap is passed after ~25 ms
      t.script(sim, { content: "word ".repeat(4000), dripBytesPerSecond: 40_000 })
      const started = Date.now()
      const error = yield* t.failureOf(provider)
      Assert.equal(error.reason, "ResponseTooLarge")
      Assert.ok(Date.now() - started < 300, `took ${Date.now() - started} ms`)
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("an HTML error page becomes a short excerpt, however large the page", () =>
    Effect.gen(function* () {
      const page = htmlPage("502 Bad Gateway")
      const error = yield* t.errorFor({ status: 502, body: page, headers: { "content-type": "text/html" } })
      Assert.ok(page.length > 50_000)
      Assert.deepEqual([error.reason, error.status], ["ServerError", 502])
      const description = error.description ?? ""
      Assert.ok(description.length < 250, description)
      Assert.ok(description.startsWith("<html> <head><title>502 Bad Gateway</title></head>"), description)
      Assert.ok(error.message.length < 300, error.message)
    })
  )

  it.effect("an error page larger than maxResponseBytes is still classified by its status", () =>
    Effect.gen(function* () {
      const error = yield* t.errorFor(
        { status: 503, body: htmlPage("503 Service Unavailable"), headers: { "content-type": "text/html" } },
        { maxResponseBytes: 1024 }
      )
      Assert.deepEqual([error.reason, error.status, ProviderError.isRetryable(error)], ["Overloaded", 503, true])
      Assert.ok((error.description ?? "").startsWith("<html> <head><title>503 Service Unavailable</title></head>"))
    })
  )

  it.effect("an error body is read only up to 64 KiB: a slow 1 MiB one fails the call early, and is closed", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      // 1 MiB at 1 MB/s: a second to send whole; the first 64 KiB arrive in ~65 ms
      t.script(sim, {
        status: 500,
        body: htmlPage("500 Internal Server Error", 44_000),
        headers: { "content-type": "text/html" },
        dripBytesPerSecond: 1_000_000
      })
      const started = Date.now()
      const error = yield* t.failureOf(provider)
      Assert.ok(Date.now() - started < 600, `took ${Date.now() - started} ms`)
      Assert.deepEqual([error.reason, error.status], ["ServerError", 500])
      yield* promise(() => sim.waitForClientClose(1))
    })
  )

  it.effect("a huge JSON error message is truncated in the description", () =>
    Effect.gen(function* () {
      const message = `Invalid request: ${"x".repeat(20_000)}`
      const error = yield* t.errorFor({ status: 400, error: { type: "invalid_request_error", message } })
      Assert.equal(error.reason, "InvalidRequest")
      const description = error.description ?? ""
      Assert.ok(description.length < 250, `${description.length} chars`)
      Assert.ok(description.startsWith("Invalid request: xxx"), description)
    })
  )

  it.effect("a stream over maxResponseBytes -> ResponseTooLarge; the same cap lets a small stream through", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup({ maxResponseBytes: 2048 })
      t.script(sim, { content: "word ".repeat(200) }, { content: "short" })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.equal(error.reason, "ResponseTooLarge")
      Assert.equal(error.description, "stream over 2048 bytes")
      Assert.ok(chunks.length < 20, `${chunks.length} chunks`)
      Assert.equal(ProviderError.isRetryable(error), false)
      Assert.equal(text(yield* t.collect(provider)), "short")
    })
  )

  it.effect("one event over the per-event cap (a 2 MiB delta) -> ResponseTooLarge, after the chunks before it", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { chunks: ["before ", "x".repeat(2 * 1024 * 1024), "after"] })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.equal(error.reason, "ResponseTooLarge")
      Assert.match(error.description ?? "", /^one event over \d+ bytes$/)
      Assert.equal(text(chunks), "before ")
    })
  )
}

const gzip = (it: Tests, t: Tools) => {
  it.effect("a gzip-compressed body is decoded, whether or not the client decompressed it already", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { gzip: true, content: "A zipped answer." })
      const completion = yield* t.complete(provider)
      Assert.equal(completion.choices[0]?.message.content, "A zipped answer.")
    })
  )

  it.effect("a gzip-compressed error body is classified by what it says", () =>
    Effect.gen(function* () {
      const error = yield* t.errorFor({
        status: 429,
        gzip: true,
        headers: { "retry-after": "2" },
        error: { type: "insufficient_quota", message: "You exceeded your current quota." }
      })
      Assert.deepEqual(
        [error.reason, error.status, error.description, millisOf(error.retryAfter)],
        ["QuotaExceeded", 429, "You exceeded your current quota.", 2000]
      )
    })
  )

  it.effect("the cap counts decompressed bytes", () =>
    Effect.gen(function* () {
      const error = yield* t.errorFor({ gzip: true, content: "word ".repeat(1000) }, { maxResponseBytes: 1024 })
      Assert.equal(error.reason, "ResponseTooLarge")
    })
  )

  it.effect("the request asks for no compression (accept-encoding: identity, or none)", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      yield* t.complete(provider)
      yield* t.collect(provider)
      for (const request of sim.requests) {
        const accepted = request.headers["accept-encoding"]
        Assert.ok(accepted === undefined || accepted === "identity", `accept-encoding: ${accepted}`)
      }
    })
  )
}

const secrets = (it: Tests, t: Tools) => {
  const canarySetup = (options: ConnectionOptions = {}) => t.setup({ apiKey: Redacted.make(CANARY), ...options })

  /** An error body both wires' `errorOf` read, quoting the key as a proxy might. */
  const echoBody = (status: number, quoted: string) => ({
    status,
    body: `{"type":"error","error":{"type":"authentication_error","message":"Invalid API key: ${quoted}"}}`
  })

  for (const [form, quoted] of Object.entries(canaryForms)) {
    it.effect(`an error body that echoes the key (${form}) does not carry it into the error`, () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* canarySetup()
        t.script(sim, echoBody(401, quoted))
        const error = yield* t.failureOf(provider)
        Assert.equal(error.reason, "Authentication")
        Assert.equal(error.description, "Invalid API key: [redacted]")
        assertNoKey(error)
      })
    )
  }

  it.effect("a 200 body that quotes the key (not JSON, or an error object) does not carry it into the error", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* canarySetup()
      const replies: ReadonlyArray<Simulator.Reply> = [
        ...Object.values(canaryForms).map((quoted) => ({ body: `<html>key ${quoted} rejected</html>` })),
        { status: 200, error: { type: "authentication_error", message: `bad key ${CANARY}` } },
        { body: `{"id":"${CANARY}","object":1}` }
      ]
      t.script(sim, ...replies)
      for (const _ of replies) assertNoKey(yield* t.failureOf(provider))
    })
  )

  it.effect("a stream's error event, or a non-2xx before it, that echoes the key does not carry it", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* canarySetup()
      t.script(
        sim,
        { errorAfterChunks: 0, streamError: { type: "authentication_error", message: `Bad key: ${CANARY}` } },
        {
          content: "one two",
          errorAfterChunks: 1,
          streamError: { type: "api_error", message: canaryForms["URL-encoded"] }
        },
        echoBody(401, canaryForms["JSON-escaped"])
      )
      const first = yield* t.streamFailureOf(provider)
      Assert.equal(first.error.reason, "Authentication")
      Assert.equal(first.error.description, "error event in the stream: authentication_error: Bad key: [redacted]")
      const second = yield* t.streamFailureOf(provider)
      Assert.equal(second.error.reason, "ServerError")
      const before = yield* t.streamFailureOf(provider)
      Assert.equal(before.error.reason, "Authentication")
      for (const { error } of [first, second, before]) assertNoKey(error)
    })
  )

  it.effect("a key echoed across the body's writes, or base64-encoded, is still cut out, streamed or not", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* canarySetup()
      const base64 = btoa(CANARY).replace(/=+$/, "")
      // Written three bytes at a time: the key arrives in pieces, in a body and in a stream's error event.
      t.script(
        sim,
        { status: 401, error: { type: "authentication_error", message: `Bad key ${CANARY}` }, splitEvery: 3 },
        { status: 400, error: { type: "invalid_request_error", message: `Basic ${base64}` }, splitEvery: 3 },
        {
          errorAfterChunks: 1,
          streamError: { type: "authentication_error", message: `Bad key ${CANARY}` },
          splitEvery: 3
        }
      )
      const split = yield* t.failureOf(provider)
      const encoded = yield* t.failureOf(provider)
      const streamed = yield* t.streamFailureOf(provider)
      Assert.deepEqual(
        [split.reason, encoded.reason, streamed.error.reason],
        ["Authentication", "InvalidRequest", "Authentication"]
      )
      for (const error of [split, encoded, streamed.error]) {
        Assert.match(error.description ?? "", /\[redacted\]/)
        assertNoKey(error)
        Assert.ok(!Util.inspect(error, { depth: 10 }).includes(base64), "base64 form shown")
      }
    })
  )

  it.effect("transport errors (reset before the headers, mid-body, refused) never show the key", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* canarySetup()
      t.script(sim, { reset: "before-headers" }, { reset: "mid-body", content: "cut in half on the wire" })
      const reset = yield* t.failureOf(provider)
      const cut = yield* t.failureOf(provider)
      const closed = yield* promise(() => Simulator.start())
      yield* promise(() => closed.close())
      const refusing = yield* t.wire.make({ apiKey: Redacted.make(CANARY), baseURL: t.wire.baseUrlOf(closed) })
      const refused = yield* t.failureOf(refusing)
      for (const error of [reset, cut, refused]) {
        Assert.equal(error.reason, "Transport")
        assertNoKey(error)
      }
    })
  )

  it.effect("a redirect whose location quotes the key does not carry it into the error", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* canarySetup()
      t.script(sim, {
        status: 302,
        body: "",
        headers: { location: `/login/${canaryForms["URL-encoded"]}?key=${CANARY}` }
      })
      const error = yield* t.failureOf(provider)
      Assert.equal(error.status, 302)
      assertNoKey(error)
    })
  )
}

const cancellation = (it: Tests, t: Tools) => {
  it.effect("interrupting a call that waits for its headers closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { hang: true })
      const fiber = yield* Effect.fork(t.complete(provider))
      yield* promise(() => sim.waitForRequests(1))
      Assert.equal(sim.openRequests(), 1)
      const exit = yield* Fiber.interrupt(fiber)
      Assert.ok(Exit.isInterrupted(exit))
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.requests[0]?.outcome, "client-closed")
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("a call timed out while it waits for its headers closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { hang: true })
      const exit = yield* Effect.exit(Effect.timeout(t.complete(provider), "150 millis"))
      Assert.ok(Exit.isFailure(exit) && Cause.isTimeoutException(Cause.squash(exit.cause)))
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("a call timed out while its body arrives closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      // ~20 KB at 10 KB/s: two seconds to send whole
      t.script(sim, { content: "word ".repeat(4000), dripBytesPerSecond: 10_000 })
      const exit = yield* Effect.exit(Effect.timeout(t.complete(provider), "150 millis"))
      Assert.ok(Exit.isFailure(exit) && Cause.isTimeoutException(Cause.squash(exit.cause)))
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("a stream timed out before its first event closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "too late", firstChunkDelay: "5 seconds" })
      const exit = yield* Effect.exit(Effect.timeout(t.collect(provider), "150 millis"))
      Assert.ok(Exit.isFailure(exit) && Cause.isTimeoutException(Cause.squash(exit.cause)))
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("the deadline the provider declares holds: a cooperative one aborts the request at currentDeadline", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      if (provider.deadline !== "cooperative") {
        // The router enforces an aggressive deadline by interruption, which the tests above cover.
        Assert.ok(provider.deadline === undefined || provider.deadline === "aggressive", `${provider.deadline}`)
        return
      }
      t.script(sim, { hang: true })
      const started = Date.now()
      const error = yield* t.failureOf(provider).pipe(Effect.locally(Deadline.current, started + 150))
      Assert.equal(error.reason, "Transport")
      Assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`)
      yield* promise(() => sim.waitForClientClose(1))
    })
  )
}

const transportErrors = (it: Tests, t: Tools) => {
  it.effect("a connection reset before the headers -> Transport, retryable, the kind in the description", () =>
    Effect.gen(function* () {
      const error = yield* t.errorFor({ reset: "before-headers" })
      Assert.deepEqual([error.reason, error.status, ProviderError.isRetryable(error)], ["Transport", undefined, true])
      Assert.match(error.description ?? "", /^connection reset \(/)
    })
  )

  it.effect("a connection reset mid-body -> Transport: the body was cut off", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { reset: "mid-body", content: "a long enough answer to be cut in half on the wire" })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual([error.reason, error.status, ProviderError.isRetryable(error)], ["Transport", undefined, true])
      Assert.match(error.description ?? "", /^body cut off: connection reset \(/)
      Assert.equal(sim.requests[0]?.outcome, "reset")
    })
  )

  it.effect("an error reply reset mid-body -> Transport", () =>
    Effect.gen(function* () {
      const error = yield* t.errorFor({ status: 529, reset: "mid-body" })
      Assert.deepEqual([error.reason, error.status], ["Transport", undefined])
      Assert.match(error.description ?? "", /^body cut off: /)
    })
  )

  it.effect("a refused connection -> Transport, retryable, the kind in the description", () =>
    Effect.gen(function* () {
      const closed = yield* promise(() => Simulator.start())
      yield* promise(() => closed.close())
      const provider = yield* t.wire.make({ apiKey: Redacted.make(KEY), baseURL: t.wire.baseUrlOf(closed) })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual(
        [error.reason, error.status, error.model, ProviderError.isRetryable(error)],
        ["Transport", undefined, t.model.id, true]
      )
      Assert.match(error.description ?? "", /^connection refused \(ECONNREFUSED\)/)
      const streamed = yield* t.streamFailureOf(provider)
      Assert.deepEqual([streamed.error.reason, streamed.error.description], ["Transport", error.description])
    })
  )

  /** The provider pointed at the simulator's base URL, changed by `change`. */
  const pointedAt = (change: (url: URL) => void) =>
    Effect.gen(function* () {
      const { sim } = yield* t.setup()
      const url = new URL(t.wire.baseUrlOf(sim))
      change(url)
      return yield* t.wire.make({ apiKey: Redacted.make(KEY), baseURL: url.href.replace(/\/$/, "") })
    })

  it.effect("a host that does not resolve -> Transport, retryable, DNS named in the description", () =>
    Effect.gen(function* () {
      // `.invalid` never resolves (RFC 6761): the resolver says so at once, with no network.
      const provider = yield* pointedAt((url) => {
        url.host = "ironlabsai-conformance.invalid"
      })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual([error.reason, ProviderError.isRetryable(error)], ["Transport", true])
      Assert.match(error.description ?? "", /^DNS lookup failed \((ENOTFOUND|EAI_AGAIN)\)/)
      Assert.ok(!(error.description ?? "").includes(KEY))
    })
  )

  it.effect("TLS to a plain-HTTP port -> Transport, TLS named in the description", () =>
    Effect.gen(function* () {
      const provider = yield* pointedAt((url) => {
        url.protocol = "https:"
      })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual([error.reason, ProviderError.isRetryable(error)], ["Transport", true])
      Assert.match(error.description ?? "", /^TLS failure \(/)
    })
  )
}

const malformed = (it: Tests, t: Tools) => {
  const truncated = '{"id":"x-1","object":"chat.completion","type":"message","choi'
  const rows: ReadonlyArray<readonly [string, Simulator.Reply, RegExp | string]> = [
    [
      "an HTML page",
      { body: "<html><body>Welcome to the captive portal</body></html>", headers: { "content-type": "text/html" } },
      'body is not JSON: "<html><body>Welcome to the captive portal</body></html>"'
    ],
    ["truncated JSON", { body: truncated }, `body is not JSON: ${JSON.stringify(truncated)}`],
    ["JSON of the wrong shape", { body: '{"id":1,"unexpected":true}' }, /^unexpected body: /],
    ["JSON null", { body: "null" }, /^unexpected body: /],
    ["an empty body", { body: "" }, 'body is not JSON: ""']
  ]
  for (const [name, reply, description] of rows) {
    it.effect(`a 200 with ${name} -> MalformedResponse, not retryable`, () =>
      Effect.gen(function* () {
        const error = yield* t.errorFor(reply)
        Assert.deepEqual([error.reason, error.status, error.model], ["MalformedResponse", undefined, t.model.id])
        if (typeof description === "string") Assert.equal(error.description, description)
        else Assert.match(error.description ?? "", description)
        Assert.equal(ProviderError.isRetryable(error), false)
      })
    )
  }

  // Every field either wire reads, nested 100,000 deep: a walk of any of them (Schema's complaint, JSON.stringify
  // of a tool input) would overflow the stack, so the body is refused as it is parsed.
  const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
  const fields = ["id", "choices", "usage", "model", "content", "stop_reason", "error", "unknown_field"]
  for (const field of fields) {
    it.effect(`a 200 with ${field} nested 100,000 deep -> MalformedResponse, in the error channel`, () =>
      Effect.gen(function* () {
        const valid =
          '"id":"x-1","object":"chat.completion","type":"message","role":"assistant","created":1,"model":"m"'
        const error = yield* t.errorFor({ body: `{${valid},"${field}":${deep(100_000)}}` })
        Assert.equal(error.reason, "MalformedResponse")
        Assert.match(error.description ?? "", /^body is nested deeper than 100 levels: /)
      })
    )
  }

  it.effect("a streamed event nested 100,000 deep -> MalformedResponse, in the error channel", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      const event = (type: string) => `event: ${type}\ndata: {"type":"${type}","x":${deep(100_000)}}\n\n`
      t.script(sim, { body: event("message_start") + event("content_block_delta"), headers: eventStream })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.deepEqual([chunks.length, error.reason], [0, "MalformedResponse"])
    })
  )

  it.effect("a large body of the wrong shape is parsed once", () =>
    Effect.gen(function* () {
      // 4 MB of JSON that is not a completion: rejecting it must not cost a parse per check.
      const body = JSON.stringify({ items: Array.from({ length: 100_000 }, (_, i) => ({ i, text: "filler text" })) })
      const parse = JSON.parse
      let largeParses = 0
      JSON.parse = ((text: string, reviver?: (key: string, value: unknown) => unknown) => {
        if (text.length >= body.length) largeParses++
        return parse(text, reviver)
      }) as typeof JSON.parse
      const error = yield* t.errorFor({ body }).pipe(Effect.ensuring(Effect.sync(() => (JSON.parse = parse))))
      Assert.equal(error.reason, "MalformedResponse")
      Assert.equal(largeParses, 1)
    })
  )
}

const connection = (it: Tests, t: Tools) => {
  it.effect("without a key every call fails with Authentication and sends nothing", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup({ apiKey: undefined })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual([error.reason, error.status, error.model], ["Authentication", undefined, t.model.id])
      Assert.match(error.description ?? "", /^no API key: set [A-Z_]+_API_KEY or pass apiKey in the options$/)
      const streamed = yield* t.streamFailureOf(provider)
      Assert.deepEqual([streamed.error.reason, streamed.error.description], ["Authentication", error.description])
      Assert.equal(sim.requests.length, 0)
    })
  )

  it.effect("a base URL that is not http(s) fails every call with InvalidRequest and sends nothing", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup({ baseURL: "ftp://127.0.0.1/v1" })
      const error = yield* t.failureOf(provider)
      Assert.deepEqual([error.reason, error.status], ["InvalidRequest", undefined])
      Assert.match(error.description ?? "", /^baseURL /)
      Assert.equal((yield* t.streamFailureOf(provider)).error.reason, "InvalidRequest")
      Assert.equal(sim.requests.length, 0)
    })
  )
}

const streams = (it: Tests, t: Tools) => {
  it.effect("a stream's content arrives whole, in order, with a finish reason, and the request is answered", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "Hello there, friend." })
      const chunks = yield* t.collect(provider)
      Assert.deepEqual(contentTexts(chunks), ["Hello ", "there, ", "friend."])
      Assert.ok(
        chunks.every((chunk) => chunk.object === "chat.completion.chunk"),
        "every chunk is a chat.completion.chunk"
      )
      Assert.ok(
        chunks.some((chunk) => chunk.choices[0]?.finish_reason === "stop"),
        "a chunk carries finish_reason stop"
      )
      Assert.equal(sim.requests[0]?.outcome, "answered")
      Assert.equal(sim.requests[0]?.model, t.wire.wireModel)
    })
  )

  it.effect("a stream waits out a first-event delay after the headers", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "late but whole", firstChunkDelay: "120 millis" })
      const started = Date.now()
      const chunks = yield* t.collect(provider)
      Assert.ok(Date.now() - started >= 110, `took ${Date.now() - started} ms`)
      Assert.equal(text(chunks), "late but whole")
    })
  )

  const framings: ReadonlyArray<readonly [string, Simulator.Reply]> = [
    ["CRLF line endings", { crlf: true }],
    ["multi-line data", { multilineData: true }],
    ["comments and unknown events (noise)", { noise: true }],
    ["bytes written one at a time", { splitEvery: 1 }],
    ["bytes written three at a time", { splitEvery: 3 }],
    [
      "CRLF, multi-line data and noise in 2-byte pieces",
      { crlf: true, multilineData: true, noise: true, splitEvery: 2 }
    ],
    ["events 5 ms apart, each split in 2-byte pieces", { chunkInterval: "5 millis", splitEvery: 2, crlf: true }]
  ]
  for (const [name, framing] of framings) {
    it.effect(`SSE framing, ${name}: every chunk arrives, the content intact`, () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        t.script(sim, { ...framing, content: UNICODE })
        const chunks = yield* t.collect(provider)
        Assert.deepEqual(contentTexts(chunks), UNICODE_DELTAS)
        Assert.equal(text(chunks), UNICODE)
      })
    )
  }
}

const streamFaults = (it: Tests, t: Tools) => {
  it.effect("a connection broken after 2 deltas -> Transport, after the chunks that arrived", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "one two three", breakAfterChunks: 2 })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.deepEqual(contentTexts(chunks), ["one ", "two "])
      Assert.equal(error.reason, "Transport")
      Assert.match(error.description ?? "", /^body cut off: connection reset \(/)
      Assert.ok(ProviderError.isRetryable(error))
    })
  )

  it.effect("a stream that stalls after a delta, under a timeout, closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "one two three", stallAfterChunks: 1 })
      const received: Array<string> = []
      const exit = yield* Stream.runForEach(t.stream(provider), (chunk) =>
        Effect.sync(() => received.push(ChatCompletion.chunkText(chunk)))
      ).pipe(Effect.timeout("150 millis"), Effect.exit)
      Assert.ok(Exit.isFailure(exit) && Cause.isTimeoutException(Cause.squash(exit.cause)))
      Assert.equal(received.join(""), "one ")
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("taking 2 chunks of a stalled stream closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "one two three four", stallAfterChunks: 3 })
      const chunks = yield* Stream.runCollect(
        t.stream(provider).pipe(Stream.filter(ChatCompletion.hasContent), Stream.take(2))
      )
      Assert.deepEqual(Chunk.toReadonlyArray(chunks).map(ChatCompletion.chunkText), ["one ", "two "])
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.requests[0]?.outcome, "client-closed")
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("a stream that only pings, under a timeout, closes the request", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { pingOnly: "20 millis" })
      const exit = yield* Effect.exit(Effect.timeout(t.collect(provider), "150 millis"))
      Assert.ok(Exit.isFailure(exit) && Cause.isTimeoutException(Cause.squash(exit.cause)))
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  const errorEvents: ReadonlyArray<readonly [Simulator.ReplyError, ProviderError.Reason]> = [
    [{ type: "overloaded_error", message: "Overloaded" }, "Overloaded"],
    [{ type: "rate_limit_error", message: "Slow down." }, "RateLimited"],
    [{ type: "insufficient_quota" }, "QuotaExceeded"],
    [{ type: "invalid_request_error", message: "Bad." }, "InvalidRequest"],
    [{ type: "authentication_error" }, "Authentication"],
    [{ type: "api_error", message: "Internal server error" }, "ServerError"],
    [{ type: "mystery_error", message: "Who knows." }, "ServerError"]
  ]
  for (const [streamError, reason] of errorEvents) {
    it.effect(`an error event first (${streamError.type}) -> ${reason}, before any content`, () =>
      Effect.gen(function* () {
        const { sim, provider } = yield* t.setup()
        t.script(sim, { errorAfterChunks: 0, streamError })
        const { chunks, error } = yield* t.streamFailureOf(provider)
        Assert.deepEqual(contentTexts(chunks), [])
        Assert.deepEqual([error.reason, error.status, error.model], [reason, undefined, t.model.id])
        Assert.equal(
          error.description,
          `error event in the stream: ${streamError.type}: ${streamError.message ?? `Simulated ${streamError.type}.`}`
        )
      })
    )
  }

  it.effect("an error event after 2 deltas: the 2 deltas, then the failure", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, {
        content: "one two three",
        errorAfterChunks: 2,
        streamError: { type: "overloaded_error", message: "Overloaded" }
      })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.deepEqual(contentTexts(chunks), ["one ", "two "])
      Assert.equal(error.reason, "Overloaded")
      Assert.ok(ProviderError.isRetryable(error))
    })
  )

  it.effect("an error event in a stream left open fails at once, and the request is closed", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { errorAfterChunks: 1, doneWithoutClose: true, streamError: { type: "api_error" } })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.deepEqual(contentTexts(chunks), ["Simulated "])
      Assert.equal(error.reason, "ServerError")
      yield* promise(() => sim.waitForClientClose(1))
    })
  )

  it.effect("a stream that never closes after its end event ends there, and the request is closed", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "done but open", doneWithoutClose: true })
      const started = Date.now()
      const chunks = yield* t.collect(provider)
      Assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`)
      Assert.equal(text(chunks), "done but open")
      yield* promise(() => sim.waitForClientClose(1))
      Assert.equal(sim.openRequests(), 0)
    })
  )

  it.effect("a stream that ends without its end event -> Transport after its content, never a clean end", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { content: "almost done", withoutEndEvent: true }, { headers: eventStream, body: "" })
      for (const expected of ["almost done", ""]) {
        const { chunks, error } = yield* t.streamFailureOf(provider)
        Assert.equal(text(chunks), expected)
        Assert.deepEqual([error.reason, error.description], ["Transport", "stream ended before its end event"])
      }
    })
  )

  it.effect("an event that is not JSON -> MalformedResponse", () =>
    Effect.gen(function* () {
      const { sim, provider } = yield* t.setup()
      t.script(sim, { headers: eventStream, body: "data: {not json\n\n" })
      const { chunks, error } = yield* t.streamFailureOf(provider)
      Assert.deepEqual(contentTexts(chunks), [])
      Assert.equal(error.reason, "MalformedResponse")
      Assert.equal(ProviderError.isRetryable(error), false)
    })
  )
}

const golden = (it: Tests, t: Tools, cases: ReadonlyArray<Golden>) => {
  /**
   * `actual` without its `created` when `expected` leaves it out, after
   * checking it is the time of the call in whole seconds.
   */
  const normalised = (
    actual: { readonly created: number },
    expected: GoldenResult,
    window: { readonly from: number; readonly to: number },
    what: string
  ): unknown => {
    if ("created" in expected) return actual
    const { created, ...rest } = actual
    Assert.ok(
      Number.isInteger(created) && created >= Math.floor(window.from / 1000) && created <= Math.floor(window.to / 1000),
      `${what}: created ${created} is not the time of the call in seconds`
    )
    return rest
  }

  for (const fixture of cases) {
    it.effect(`${fixture.name}: the body sent and the ${fixture.stream ? "chunks" : "completion"} returned`, () =>
      Effect.gen(function* () {
        const model = fixture.model === undefined ? t.model : ModelId.parse(fixture.model)
        if (model === undefined) return yield* Effect.dieMessage(`not a provider/model id: ${fixture.model}`)
        const { sim, provider } = yield* t.setup()
        const call = { model, request: fixture.request }
        Assert.deepStrictEqual(provider.unsupported?.(call) ?? [], [], "the fixture's request is servable")
        sim.script(model.name, { body: fixture.reply, ...(fixture.stream ? { headers: eventStream } : {}) })
        /** The result of `effect`, once the body it sent is checked, and the time it ran in. */
        const exchange = <A>(effect: Effect.Effect<A, ProviderError.ProviderError>) =>
          Effect.gen(function* () {
            const from = yield* Clock.currentTimeMillis
            const result = yield* Effect.either(effect)
            const window = { from, to: yield* Clock.currentTimeMillis }
            Assert.equal(sim.requests.length, 1, "one request")
            Assert.deepStrictEqual(sim.requests[0]?.body, fixture.sent, "the body sent")
            if (Either.isLeft(result)) {
              return yield* Effect.dieMessage(
                `the ${fixture.stream ? "stream" : "call"} failed: ${result.left.message}`
              )
            }
            return { value: result.right, window }
          })
        if (!fixture.stream) {
          const { value, window } = yield* exchange(provider.complete(call))
          const completion = normalised(value, fixture.completion, window, "the completion")
          Assert.deepStrictEqual(completion, fixture.completion, "the completion")
          return
        }
        const { value, window } = yield* exchange(
          Effect.map(Stream.runCollect(provider.stream(call)), Chunk.toReadonlyArray)
        )
        const chunks = value.map((chunk, i) => normalised(chunk, fixture.chunks[i] ?? {}, window, `chunk ${i}`))
        Assert.deepStrictEqual(chunks, fixture.chunks, "the chunks")
        if (fixture.chunks.every((chunk) => !("created" in chunk))) {
          Assert.ok(new Set(value.map((chunk) => chunk.created)).size <= 1, "every chunk has the same created")
        }
      })
    )
  }
}
