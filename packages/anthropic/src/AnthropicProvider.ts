/**
 * The Anthropic messages wire: `POST {baseURL}/v1/messages` with `x-api-key`
 * and `anthropic-version`. System and developer messages go to `system`,
 * `max_tokens` gets a default, and the reply is mapped to an OpenAI
 * `ChatCompletion`: text blocks become the content, `stop_reason` the
 * `finish_reason`, and usage takes OpenAI's names.
 *
 * @example
 * import { Effect, Redacted } from "effect"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { AnthropicProvider } from "@ironlabsai/anthropic"
 *
 * const provider = AnthropicProvider.make({ apiKey: Redacted.make("sk-ant-...") }).pipe(
 *   Effect.provide(NodeHttpClient.layerUndici)
 * )
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { ChatCompletion, type ModelId, Deadline, type Provider, ProviderError } from "@ironlabsai/core"
import { CallSpan, Connection, ProviderReply } from "@ironlabsai/http"
import {
  Clock,
  type Config,
  type ConfigError,
  Context,
  Effect,
  Either,
  Layer,
  Option,
  Redacted,
  Schema,
  Stream
} from "effect"
import * as AnthropicRateLimit from "./AnthropicRateLimit.js"

/**
 * The official API's base URL, as the official SDK has it.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseURL = "https://api.anthropic.com"

/**
 * The API version header sent with every request.
 *
 * @since 0.1.0
 * @category constants
 */
export const apiVersion = "2023-06-01"

/**
 * `max_tokens` when the request sets neither `max_tokens` nor
 * `max_completion_tokens`: Anthropic requires one.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxTokens = 4096

/**
 * The key, base URL (default `https://api.anthropic.com`) and response size cap.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Connection.Options

/**
 * Options from the environment: `ANTHROPIC_API_KEY` (read as `Redacted`) and
 * `ANTHROPIC_BASE_URL`, the names the official SDK reads.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Connection.config("ANTHROPIC")

/**
 * The part of Anthropic's reply that is used.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MessageResponse = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("message"),
  role: Schema.Literal("assistant"),
  content: Schema.Array(
    Schema.Union(
      Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }),
      // Other blocks (thinking, tool_use, ...) carry no text for the answer.
      Schema.Struct({ type: Schema.String })
    )
  ),
  stop_reason: Schema.NullOr(Schema.String),
  usage: Schema.Struct({ input_tokens: Schema.Number, output_tokens: Schema.Number })
})

/**
 * Anthropic's `stop_reason` in OpenAI's words.
 *
 * @since 0.1.0
 * @category mapping
 */
export const finishReason = (stopReason: string | null): ChatCompletion.FinishReason => {
  switch (stopReason) {
    case "max_tokens":
      return "length"
    case "tool_use":
      return "tool_calls"
    case "refusal":
      return "content_filter"
    default:
      // end_turn, stop_sequence, pause_turn
      return "stop"
  }
}

/**
 * The Anthropic request body for an OpenAI-shaped request.
 *
 * @since 0.1.0
 * @category mapping
 */
export const toRequestBody = (model: string, request: ChatCompletion.ChatCompletionRequest) => {
  const system = request.messages
    .filter((m) => m.role === "system" || m.role === "developer")
    .map((m) => ChatCompletion.contentText(m.content))
  const stop = request.stop === undefined ? undefined : typeof request.stop === "string" ? [request.stop] : request.stop
  return {
    model,
    max_tokens: request.max_tokens ?? request.max_completion_tokens ?? defaultMaxTokens,
    messages: request.messages
      .filter((m) => m.role === "user" || m.role === "assistant")
      // Text only: a request with any other part was never sent to this wire (unsupportedFields).
      .map((m) => ({ role: m.role, content: m.content })),
    ...(system.length === 0 ? {} : { system: system.join("\n\n") }),
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(request.top_p === undefined ? {} : { top_p: request.top_p }),
    ...(stop === undefined ? {} : { stop_sequences: stop }),
    ...(request.user === undefined ? {} : { metadata: { user_id: request.user } })
  }
}

/** The request fields `toRequestBody` translates; any other field a request sets cannot be served (yet). */
const translated: ReadonlySet<string> = new Set([
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "stop",
  "user",
  "stream",
  // Anthropic reports usage on every stream: asking for it changes nothing.
  "stream_options"
])

/**
 * Whether a field's value asks for nothing: unset, `null`, or a default that
 * needs no translation (`n: 1`, `logprobs: false`).
 */
const asksNothing = (key: string, value: unknown): boolean =>
  value === undefined || value === null || (key === "n" && value === 1) || (key === "logprobs" && value === false)

/**
 * The fields of an OpenAI-shaped request the Anthropic wire cannot translate
 * (`toRequestBody` would have to leave them out): every field it has no
 * mapping for (`presence_penalty`, `seed`, `tools`, `response_format`, `n` > 1,
 * unknown fields...), a `temperature` above Anthropic's 1, and, in messages, a
 * `tool` role, `tool_calls`, a `name`, a `refusal`, or a content part other
 * than text. The router skips an Anthropic model for a request with one of them.
 *
 * @since 0.2.0
 * @category mapping
 */
export const unsupportedFields = (request: ChatCompletion.ChatCompletionRequest): ReadonlyArray<string> => {
  const fields: Array<string> = Object.entries(request)
    .filter(([key, value]) => !translated.has(key) && !asksNothing(key, value))
    .map(([key]) => key)
  if (request.temperature !== undefined && request.temperature > 1) fields.push("temperature")
  request.messages.forEach((message, i) => {
    if (message.role === "tool") fields.push(`messages[${i}].role`)
    for (const key of ["tool_calls", "name", "refusal"] as const) {
      if (message[key] !== undefined && message[key] !== null) fields.push(`messages[${i}].${key}`)
    }
    if (Array.isArray(message.content)) {
      message.content.forEach((part, j) => {
        if (part.type !== "text") fields.push(`messages[${i}].content[${j}]`)
      })
    }
  })
  return fields
}

/**
 * The Anthropic error body: `{ "type": "error", "error": { "type", "message" } }`.
 */
const errorOf = (body: unknown) => {
  const error = (body as { error?: { message?: unknown; type?: unknown } } | null)?.error
  const text = (u: unknown) => (typeof u === "string" ? u : undefined)
  return { type: text(error?.type), message: text(error?.message) }
}

/**
 * A provider speaking the Anthropic wire.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Provider.Provider, never, HttpClient.HttpClient> =>
  // Whatever the client, no redirect is followed: the key never goes to another origin.
  Effect.map(Effect.zip(Connection.httpClient, Deadline.strategy), ([httpClient, deadline]) => {
    // The platform's own span keeps the request, key header included, in its exit; ours keeps none of it.
    const quiet = HttpClient.withTracerDisabledWhen(httpClient, () => true)
    const url = `${(options.baseURL ?? defaultBaseURL).replace(/\/+$/, "")}/v1/messages`
    const apiKey = ProviderReply.usableKey(options, "ANTHROPIC_API_KEY")
    // Built once: each call only adds its body.
    const head = HttpClientRequest.post(url).pipe(
      HttpClientRequest.setHeaders({
        "x-api-key": Either.isRight(apiKey) ? Redacted.value(apiKey.right) : "",
        "anthropic-version": apiVersion,
        // No compression, from every client: `fetch` would otherwise ask for it.
        "accept-encoding": "identity"
      }),
      HttpClientRequest.acceptJson
    )
    const post = (client: HttpClient.HttpClient, body: unknown) =>
      client.execute(HttpClientRequest.bodyUnsafeJson(head, body))
    return {
      deadline,
      unsupported: ({ request }) => unsupportedFields(request),
      complete: ({ model, request }) => {
        if (Either.isLeft(apiKey)) return Effect.fail(apiKey.left(model.id))
        return CallSpan.withCallSpan({ system: "anthropic", model, url }, (traced) =>
          ProviderReply.decode(post(traced ? quiet : httpClient, toRequestBody(model.name, request)), {
            model: model.id,
            schema: MessageResponse,
            errorOf,
            rateLimitResetOf: AnthropicRateLimit.resetOf,
            maxBytes: options.maxResponseBytes,
            apiKey: apiKey.right
          })
        ).pipe(Effect.zipWith(Clock.currentTimeMillis, (message, now) => toChatCompletion(model.name, message, now)))
      },
      stream: ({ model, request }) => {
        if (Either.isLeft(apiKey)) return Stream.fail(apiKey.left(model.id))
        return ProviderReply.stream(post(quiet, { ...toRequestBody(model.name, request), stream: true }), {
          model: model.id,
          errorOf,
          rateLimitResetOf: AnthropicRateLimit.resetOf,
          parser: () => eventParser(model),
          maxBytes: options.maxResponseBytes,
          apiKey: apiKey.right
        })
      }
    }
  })

/**
 * The events of Anthropic's stream that carry something; `ping`,
 * `content_block_start`/`stop` and unknown events carry nothing for a chunk.
 */
const StreamEvent = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("message_start"),
    message: Schema.Struct({
      id: Schema.String,
      usage: Schema.Struct({ input_tokens: Schema.Number })
    })
  }),
  Schema.Struct({
    type: Schema.Literal("content_block_delta"),
    delta: Schema.Union(
      Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String }),
      Schema.Struct({ type: Schema.String })
    )
  }),
  Schema.Struct({
    type: Schema.Literal("message_delta"),
    delta: Schema.Struct({ stop_reason: Schema.NullOr(Schema.String) }),
    usage: Schema.Struct({ output_tokens: Schema.Number })
  }),
  Schema.Struct({ type: Schema.Literal("message_stop") }),
  Schema.Struct({
    type: Schema.Literal("error"),
    error: Schema.Struct({ type: Schema.String, message: Schema.optional(Schema.String) })
  })
)
const decodeEvent = Schema.decodeUnknownEither(StreamEvent)
const carrying = new Set(["message_start", "content_block_delta", "message_delta", "message_stop", "error"])

/**
 * Maps Anthropic's events to OpenAI chunks: `message_start` gives the role,
 * each text delta a content chunk, `message_delta` the finish reason and the
 * usage (on the last chunk, as OpenAI sends it), `message_stop` ends the stream,
 * and an `error` event is classified by its type.
 */
const eventParser = (model: ModelId.ModelId): ProviderReply.EventParser => {
  let id = ""
  let inputTokens = 0
  const created = Math.floor(Date.now() / 1000)
  const chunk = (
    delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"],
    finish: ChatCompletion.FinishReason | null = null,
    usage?: ChatCompletion.Usage
  ): ChatCompletion.ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: model.name,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(usage === undefined ? {} : { usage })
  })
  return (event) => {
    // Unknown events are skipped by name, as Anthropic asks clients to do.
    if (event.event !== undefined && !carrying.has(event.event)) return []
    const json = ProviderReply.parseJson(event.data)
    const type = Option.isSome(json) ? (json.value as { type?: unknown } | null)?.type : undefined
    if (typeof type !== "string" || !carrying.has(type)) {
      if (Option.isSome(json) && typeof type === "string") return []
      const description = `unexpected event: ${JSON.stringify(event.data.slice(0, 80))}`
      return ProviderError.ProviderError.fromReason({ reason: "MalformedResponse", model: model.id, description })
    }
    const decoded = decodeEvent(Option.getOrUndefined(json))
    if (Either.isLeft(decoded)) {
      const description = `unexpected ${type} event: ${JSON.stringify(event.data.slice(0, 80))}`
      return ProviderError.ProviderError.fromReason({ reason: "MalformedResponse", model: model.id, description })
    }
    const data = decoded.right
    switch (data.type) {
      case "message_start":
        id = data.message.id
        inputTokens = data.message.usage.input_tokens
        return [chunk({ role: "assistant", content: "" })]
      case "content_block_delta":
        return "text" in data.delta ? [chunk({ content: data.delta.text })] : []
      case "message_delta": {
        const output = data.usage.output_tokens
        const usage = { prompt_tokens: inputTokens, completion_tokens: output, total_tokens: inputTokens + output }
        return [chunk({}, finishReason(data.delta.stop_reason), usage)]
      }
      case "message_stop":
        return ProviderReply.Done
      case "error":
        return ProviderReply.embeddedError(model.id, data.error, "event in the stream")
    }
  }
}

const toChatCompletion = (
  model: string,
  message: typeof MessageResponse.Type,
  now: number
): ChatCompletion.ChatCompletion => ({
  id: message.id,
  object: "chat.completion",
  created: Math.floor(now / 1000),
  model,
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: message.content.map((block) => ("text" in block ? block.text : "")).join("")
      },
      finish_reason: finishReason(message.stop_reason),
      logprobs: null
    }
  ],
  usage: {
    prompt_tokens: message.usage.input_tokens,
    completion_tokens: message.usage.output_tokens,
    total_tokens: message.usage.input_tokens + message.usage.output_tokens
  }
})

/**
 * The Anthropic provider as a service, for programs that assemble their own
 * registry (`Provider.registry({ anthropic: yield* AnthropicProvider.AnthropicProvider })`).
 *
 * @since 0.2.0
 * @category tags
 */
export class AnthropicProvider extends Context.Tag("ironlabsai/AnthropicProvider")<
  AnthropicProvider,
  Provider.Provider
>() {}

/**
 * The provider as a layer, with explicit options.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<AnthropicProvider, never, HttpClient.HttpClient> =>
  Layer.effect(AnthropicProvider, make(options))

/**
 * The provider as a layer, with options from `Config` (by default `ANTHROPIC_API_KEY`
 * and `ANTHROPIC_BASE_URL`, as the official SDK reads them).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<AnthropicProvider, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.effect(AnthropicProvider, Effect.flatMap(options, make))
