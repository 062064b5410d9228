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
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { ChatCompletion, Provider, ProviderReply } from "@ironlabsai/core"
import { Clock, type Config, Effect, Either, Redacted, Schema } from "effect"

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
export type Options = Provider.ConnectionOptions

/**
 * Options from the environment: `ANTHROPIC_API_KEY` (read as `Redacted`) and
 * `ANTHROPIC_BASE_URL`, the names the official SDK reads.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Provider.connectionConfig("ANTHROPIC")

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
      .map((m) => ({ role: m.role, content: m.content })),
    ...(system.length === 0 ? {} : { system: system.join("\n\n") }),
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(request.top_p === undefined ? {} : { top_p: request.top_p }),
    ...(stop === undefined ? {} : { stop_sequences: stop }),
    ...(request.user === undefined ? {} : { metadata: { user_id: request.user } })
  }
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
  Effect.map(HttpClient.HttpClient, (httpClient) => {
    // The platform's own span keeps the request, key header included, in its exit; ours keeps none of it.
    const client = HttpClient.withTracerDisabledWhen(httpClient, () => true)
    const url = `${(options.baseURL ?? defaultBaseURL).replace(/\/+$/, "")}/v1/messages`
    const apiKey = ProviderReply.usableKey(options, "ANTHROPIC_API_KEY")
    return {
      complete: ({ model, request }) => {
        if (Either.isLeft(apiKey)) return Effect.fail(apiKey.left(model.id))
        const httpRequest = HttpClientRequest.post(url).pipe(
          HttpClientRequest.setHeaders({ "x-api-key": Redacted.value(apiKey.right), "anthropic-version": apiVersion }),
          HttpClientRequest.acceptJson,
          HttpClientRequest.bodyUnsafeJson(toRequestBody(model.name, request))
        )
        return ProviderReply.decode(client.execute(httpRequest), {
          model: model.id,
          schema: MessageResponse,
          errorOf,
          maxBytes: options.maxResponseBytes,
          apiKey: apiKey.right
        })
          .pipe(Provider.withCallSpan("anthropic", model, url))
          .pipe(Effect.zipWith(Clock.currentTimeMillis, (message, now) => toChatCompletion(model.name, message, now)))
      }
    }
  })

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
