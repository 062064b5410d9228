/**
 * The router as an `@effect/ai` `LanguageModel`: a program written against
 * `LanguageModel.generateText`, `generateObject` or `streamText` runs over
 * the router's weights, retries, failover and model health by providing this
 * layer instead of a single provider's.
 *
 * The router is called inside the provider functions `LanguageModel.make`
 * takes, below `@effect/ai`'s tool resolution: a failover happens within one
 * provider turn, so a tool handler runs once per call the answering model
 * made, never again because another model failed first.
 *
 * @example
 * ```ts
 * import { LanguageModel } from "@effect/ai"
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { IronlabsLanguageModel } from "@ironlabsai/effect-ai"
 * import { Effect, Layer } from "effect"
 *
 * const Model = IronlabsLanguageModel.layer({
 *   reliability: { failover_chain: [{ model: "openai/gpt-4o" }, { model: "anthropic/claude-3-5-haiku-20241022" }] }
 * }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 *
 * const program = Effect.gen(function* () {
 *   const response = yield* LanguageModel.generateText({ prompt: "Describe a sunset." })
 *   return response.text
 * }).pipe(Effect.provide(Model))
 * ```
 *
 * @since 0.4.0
 */
import { AiError, LanguageModel, type Prompt, type Response, Tool } from "@effect/ai"
import type { HttpClient } from "@effect/platform"
import {
  type ChatCompletion,
  IronlabsClient as CoreClient,
  type Reliability,
  type Router,
  type RoutingError
} from "@ironlabsai/core"
import { type DefaultProviders, IronlabsClient } from "ironlabsai"
import { Effect, Encoding, Layer, Option, Predicate, Stream } from "effect"

const MODULE = "IronlabsLanguageModel"

/**
 * The request fields every call sends besides those `@effect/ai` sets
 * (`messages`, `tools`, `tool_choice`, `response_format`): `temperature`,
 * `max_tokens`, `stream_options`, ...
 *
 * @since 0.4.0
 * @category models
 */
export type RequestDefaults = Omit<
  ChatCompletion.ChatCompletionRequest,
  "messages" | "tools" | "tool_choice" | "response_format" | "stream"
>

/**
 * @since 0.4.0
 * @category models
 */
export interface Config {
  /** Fields added to every request. */
  readonly request?: RequestDefaults | undefined
  /** The overall deadline of each call, all attempts and backoff included. */
  readonly timeout?: CoreClient.DurationWithUnit | undefined
  /** Sets `strict` on each tool and on the `json_schema` of `generateObject`. Off by default. */
  readonly strict?: boolean | undefined
}

/**
 * Options of `layer`: the client's (the reliability config, keys, base URLs)
 * and this model's `config`.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options extends CoreClient.Options, DefaultProviders.Options {
  readonly config?: Config | undefined
}

/**
 * The `LanguageModel` service over an `IronlabsClient` service.
 *
 * @since 0.4.0
 * @category constructors
 */
export const makeWithClient = (client: CoreClient.Service, config: Config = {}): Effect.Effect<LanguageModel.Service> =>
  LanguageModel.make({
    generateText: (options) =>
      Effect.flatMap(toRequest(options, config, "generateText"), (request) =>
        client.completions.create(request, createOptions(config)).pipe(
          Effect.mapError((error) => toAiError(error, "generateText")),
          Effect.flatMap((completion) => fromCompletion(completion))
        )
      ),
    streamText: (options) =>
      Stream.unwrap(
        Effect.map(toRequest(options, config, "streamText"), (request) =>
          fromChunks(client.completions.create({ ...request, stream: true }, createOptions(config)))
        )
      )
  })

/**
 * The `LanguageModel` service over the `IronlabsClient` in context.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (config: Config = {}): Effect.Effect<LanguageModel.Service, never, CoreClient.IronlabsClient> =>
  Effect.flatMap(CoreClient.IronlabsClient, (client) => makeWithClient(client, config))

/**
 * `LanguageModel` over an existing `IronlabsClient` layer (scripted providers
 * in tests, or a client shared with code that calls it directly).
 *
 * @since 0.4.0
 * @category layers
 */
export const layerWithClient = (
  config: Config = {}
): Layer.Layer<LanguageModel.LanguageModel, never, CoreClient.IronlabsClient> =>
  Layer.effect(LanguageModel.LanguageModel, make(config))

/**
 * `LanguageModel` over a router of the OpenAI and Anthropic providers,
 * configured from env (`OPENAI_API_KEY`, ...) with `options` taking
 * precedence, as `IronlabsClient.layer` is. Needs an `HttpClient`.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  LanguageModel.LanguageModel,
  Reliability.ReliabilityConfigError | DefaultProviders.ConnectionConfigError,
  HttpClient.HttpClient
> => {
  const { config, ...client } = options
  return layerWithClient(config).pipe(Layer.provide(IronlabsClient.layer(client)))
}

/**
 * The router's error behind an `AiError` this module made: the routing error
 * with its attempt trace, the interrupted stream, or the refused request.
 *
 * @since 0.4.0
 * @category errors
 */
export const routingError = (
  error: AiError.AiError
): Option.Option<RoutingError.RoutingError | RoutingError.StreamInterrupted | ChatCompletion.InvalidChatRequest> => {
  const cause: unknown = error._tag === "UnknownError" || error._tag === "MalformedInput" ? error.cause : undefined
  return Predicate.hasProperty(cause, "_tag") &&
    (cause._tag === "AllModelsFailed" ||
      cause._tag === "DeadlineExceeded" ||
      cause._tag === "NoModelAvailable" ||
      cause._tag === "StreamInterrupted" ||
      cause._tag === "InvalidChatRequest")
    ? Option.some(
        cause as RoutingError.RoutingError | RoutingError.StreamInterrupted | ChatCompletion.InvalidChatRequest
      )
    : Option.none()
}

// =============================================================================
// Request
// =============================================================================

const createOptions = (config: Config): CoreClient.CreateOptions | undefined =>
  config.timeout === undefined ? undefined : { timeout: config.timeout }

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type RequestMessage = Mutable<ChatCompletion.Message>
type ContentPart = { readonly type: string; readonly [key: string]: unknown }

/**
 * `@effect/ai`'s provider options as a chat-completions request.
 *
 * @since 0.4.0
 * @category conversions
 */
export const toRequest = (
  options: LanguageModel.ProviderOptions,
  config: Config = {},
  method = "generateText"
): Effect.Effect<Omit<ChatCompletion.ChatCompletionRequest, "stream">, AiError.AiError> =>
  Effect.gen(function* () {
    const messages = yield* toMessages(options.prompt, method)
    const request: Mutable<Omit<ChatCompletion.ChatCompletionRequest, "stream">> = { ...config.request, messages }
    if (options.tools.length > 0) {
      const tools: Array<ChatCompletion.Tool> = []
      for (const tool of options.tools) {
        if (Tool.isProviderDefined(tool)) {
          return yield* new AiError.MalformedInput({
            module: MODULE,
            method,
            description: `The provider-defined tool ${tool.name} cannot be routed: only user-defined tools are sent`
          })
        }
        const description = Tool.getDescription(tool as never)
        tools.push({
          type: "function",
          function: {
            name: tool.name,
            ...(description === undefined ? {} : { description }),
            parameters: Tool.getJsonSchema(tool as never) as unknown as Record<string, unknown>,
            ...(config.strict === undefined ? {} : { strict: config.strict })
          }
        })
      }
      request.tools = tools
      request.tool_choice = toToolChoice(options.toolChoice)
    }
    if (options.responseFormat.type === "json") {
      request.response_format = {
        type: "json_schema",
        json_schema: {
          name: options.responseFormat.objectName,
          schema: Tool.getJsonSchemaFromSchemaAst(options.responseFormat.schema.ast) as unknown as Record<
            string,
            unknown
          >,
          ...(config.strict === undefined ? {} : { strict: config.strict })
        }
      }
    }
    return request
  })

const toToolChoice = (
  choice: LanguageModel.ToolChoice<string>
): ChatCompletion.ChatCompletionRequest["tool_choice"] => {
  if (typeof choice === "string") return choice
  // `oneOf`: `@effect/ai` has already sent only the allowed tools.
  if ("oneOf" in choice) return choice.mode === "required" ? "required" : "auto"
  return { type: "function", function: { name: choice.tool } }
}

const toMessages = (
  prompt: Prompt.Prompt,
  method: string
): Effect.Effect<Array<ChatCompletion.Message>, AiError.AiError> =>
  Effect.suspend(() => {
    const messages: Array<ChatCompletion.Message> = []
    for (const message of prompt.content) {
      switch (message.role) {
        case "system":
          messages.push({ role: "system", content: message.content })
          break
        case "user": {
          const parts: Array<ContentPart> = []
          for (const part of message.content) {
            if (part.type === "text") {
              parts.push({ type: "text", text: part.text })
            } else if (part.mediaType.startsWith("image/")) {
              parts.push({ type: "image_url", image_url: { url: fileUrl(part.data, part.mediaType) } })
            } else {
              parts.push({
                type: "file",
                file: {
                  file_data: fileUrl(part.data, part.mediaType),
                  ...(part.fileName === undefined ? {} : { filename: part.fileName })
                }
              })
            }
          }
          const onlyText = parts.every((part) => part.type === "text")
          messages.push({
            role: "user",
            content: onlyText ? parts.map((part) => part.text as string).join("") : (parts as ChatCompletion.Content)
          })
          break
        }
        case "assistant": {
          let text = ""
          let reasoning = ""
          const calls: Array<ChatCompletion.ToolCall> = []
          for (const part of message.content) {
            switch (part.type) {
              case "text":
                text += part.text
                break
              case "reasoning":
                reasoning += part.text
                break
              case "tool-call":
                // A tool the provider ran itself has no call to send back.
                if (!part.providerExecuted) {
                  calls.push({
                    id: part.id,
                    type: "function",
                    function: { name: part.name, arguments: JSON.stringify(part.params ?? {}) }
                  })
                }
                break
              case "file":
                return Effect.fail(
                  new AiError.MalformedInput({
                    module: MODULE,
                    method,
                    description: "An assistant message with a file cannot be sent as a chat message"
                  })
                )
              case "tool-result":
                break
            }
          }
          const assistant: RequestMessage = {
            role: "assistant",
            content: text === "" && calls.length > 0 ? null : text
          }
          if (calls.length > 0) assistant.tool_calls = calls
          if (reasoning !== "") assistant.reasoning_content = reasoning
          messages.push(assistant)
          break
        }
        case "tool":
          for (const part of message.content) {
            messages.push({ role: "tool", tool_call_id: part.id, content: toolResultText(part.result) })
          }
          break
      }
    }
    return Effect.succeed(messages)
  })

const toolResultText = (result: unknown): string => (typeof result === "string" ? result : JSON.stringify(result))

const fileUrl = (data: string | Uint8Array | URL, mediaType: string): string => {
  if (data instanceof URL) return data.toString()
  if (typeof data === "string") {
    return data.startsWith("http://") || data.startsWith("https://") || data.startsWith("data:")
      ? data
      : `data:${mediaType};base64,${data}`
  }
  return `data:${mediaType};base64,${Encoding.encodeBase64(data)}`
}

// =============================================================================
// Response
// =============================================================================

/**
 * Where the router's answer came from, in each response's
 * `response-metadata` part under `metadata.ironlabsai`.
 *
 * @since 0.4.0
 * @category models
 */
export interface RouteMetadata {
  /** The routed model id that answered (`openai/gpt-4o`), also the part's `modelId`. */
  readonly model: string
  /** The model string the provider answered with. */
  readonly providerModel?: string | undefined
  /** Each attempt of the request, in order. Not known for a stream. */
  readonly attempts?: ReadonlyArray<unknown> | undefined
  /** What the answer cost in US dollars, when `prices` are configured. */
  readonly cost?: number | undefined
}

const finishReason = (reason: ChatCompletion.FinishReason | null | undefined): Response.FinishReason => {
  switch (reason) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    case "content_filter":
      return "content-filter"
    default:
      return "unknown"
  }
}

const usage = (usage: ChatCompletion.Usage | null | undefined): typeof Response.Usage.Encoded => ({
  inputTokens: usage?.prompt_tokens,
  outputTokens: usage?.completion_tokens,
  totalTokens: usage?.total_tokens,
  ...(usage?.completion_tokens_details?.reasoning_tokens === undefined
    ? {}
    : { reasoningTokens: usage.completion_tokens_details.reasoning_tokens }),
  ...(usage?.prompt_tokens_details?.cached_tokens === undefined
    ? {}
    : { cachedInputTokens: usage.prompt_tokens_details.cached_tokens })
})

const parseArguments = (text: string, method: string): Effect.Effect<unknown, AiError.AiError> =>
  text.trim() === ""
    ? Effect.succeed({})
    : Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (cause) =>
          new AiError.UnknownError({ module: MODULE, method, description: "Tool call arguments are not JSON", cause })
      })

/**
 * A routed completion as `@effect/ai` response parts: `response-metadata`
 * (the routed model id, the provider's model, the attempts), reasoning, text,
 * tool calls, and `finish` with the usage.
 *
 * @since 0.4.0
 * @category conversions
 */
export const fromCompletion = (
  completion: Router.RoutedCompletion
): Effect.Effect<Array<Response.PartEncoded>, AiError.AiError> =>
  Effect.gen(function* () {
    const metadata: RouteMetadata = {
      model: completion.model,
      providerModel: completion.provider_model,
      attempts: completion.attempts,
      ...(completion.cost === undefined ? {} : { cost: completion.cost })
    }
    const parts: Array<Response.PartEncoded> = [
      {
        type: "response-metadata",
        id: completion.id,
        modelId: completion.model,
        timestamp: new Date(completion.created * 1000).toISOString(),
        metadata: { ironlabsai: { ...metadata } }
      }
    ]
    const choice = completion.choices[0]
    if (choice !== undefined) {
      const message = choice.message
      if (typeof message.reasoning_content === "string" && message.reasoning_content !== "") {
        parts.push({ type: "reasoning", text: message.reasoning_content })
      }
      if (typeof message.content === "string" && message.content !== "") {
        parts.push({ type: "text", text: message.content })
      }
      for (const call of message.tool_calls ?? []) {
        if (call.type !== "function") continue
        parts.push({
          type: "tool-call",
          id: call.id,
          name: call.function.name,
          params: yield* parseArguments(call.function.arguments, "generateText")
        })
      }
    }
    parts.push({ type: "finish", reason: finishReason(choice?.finish_reason), usage: usage(completion.usage) })
    return parts
  })

interface PendingCall {
  id: string
  name: string
  arguments: string
}

/**
 * The router's stream of chunks as `@effect/ai` stream parts. The router
 * fails over only before the first chunk with content, so no text reaches
 * the caller twice; `response-metadata` comes with that first content, naming
 * the model that answered.
 *
 * @since 0.4.0
 * @category conversions
 */
export const fromChunks = <
  E extends RoutingError.RoutingError | RoutingError.StreamInterrupted | ChatCompletion.InvalidChatRequest
>(
  chunks: Stream.Stream<ChatCompletion.ChatCompletionChunk, E>
): Stream.Stream<Response.StreamPartEncoded, AiError.AiError> =>
  Stream.suspend(() => {
    let started = false
    let textId: string | undefined
    let reasoningId: string | undefined
    let blocks = 0
    let last: ChatCompletion.ChatCompletionChunk | undefined
    let reason: ChatCompletion.FinishReason | null = null
    let lastUsage: ChatCompletion.Usage | null | undefined
    const calls = new Map<number, PendingCall>()

    const start = (chunk: ChatCompletion.ChatCompletionChunk, parts: Array<Response.StreamPartEncoded>) => {
      if (started) return
      started = true
      parts.push({
        type: "response-metadata",
        id: chunk.id,
        modelId: chunk.model,
        timestamp: new Date(chunk.created * 1000).toISOString(),
        metadata: { ironlabsai: { model: chunk.model } }
      })
    }
    const endReasoning = (parts: Array<Response.StreamPartEncoded>) => {
      if (reasoningId !== undefined) parts.push({ type: "reasoning-end", id: reasoningId })
      reasoningId = undefined
    }
    const endText = (parts: Array<Response.StreamPartEncoded>) => {
      if (textId !== undefined) parts.push({ type: "text-end", id: textId })
      textId = undefined
    }

    const onChunk = (chunk: ChatCompletion.ChatCompletionChunk): Array<Response.StreamPartEncoded> => {
      const parts: Array<Response.StreamPartEncoded> = []
      last = chunk
      if (chunk.usage !== undefined && chunk.usage !== null) lastUsage = chunk.usage
      for (const choice of chunk.choices) {
        if (choice.index !== 0) continue
        const delta = choice.delta
        if (typeof delta.reasoning_content === "string" && delta.reasoning_content !== "") {
          start(chunk, parts)
          if (reasoningId === undefined) {
            reasoningId = `reasoning-${blocks++}`
            parts.push({ type: "reasoning-start", id: reasoningId })
          }
          parts.push({ type: "reasoning-delta", id: reasoningId, delta: delta.reasoning_content })
        }
        if (typeof delta.content === "string" && delta.content !== "") {
          start(chunk, parts)
          endReasoning(parts)
          if (textId === undefined) {
            textId = `text-${blocks++}`
            parts.push({ type: "text-start", id: textId })
          }
          parts.push({ type: "text-delta", id: textId, delta: delta.content })
        }
        for (const call of delta.tool_calls ?? []) {
          start(chunk, parts)
          endReasoning(parts)
          endText(parts)
          let pending = calls.get(call.index)
          if (pending === undefined) {
            pending = { id: call.id ?? `call-${call.index}`, name: call.function?.name ?? "", arguments: "" }
            calls.set(call.index, pending)
            parts.push({ type: "tool-params-start", id: pending.id, name: pending.name })
          }
          const args = call.function?.arguments
          if (args !== undefined && args !== "") {
            pending.arguments += args
            parts.push({ type: "tool-params-delta", id: pending.id, delta: args })
          }
        }
        if (choice.finish_reason !== null) reason = choice.finish_reason
      }
      return parts
    }

    const onEnd = (): Effect.Effect<Array<Response.StreamPartEncoded>, AiError.AiError> =>
      Effect.gen(function* () {
        const parts: Array<Response.StreamPartEncoded> = []
        if (last !== undefined) start(last, parts)
        endReasoning(parts)
        endText(parts)
        for (const call of [...calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call)) {
          parts.push({ type: "tool-params-end", id: call.id })
          parts.push({
            type: "tool-call",
            id: call.id,
            name: call.name,
            params: yield* parseArguments(call.arguments, "streamText")
          })
        }
        parts.push({ type: "finish", reason: finishReason(reason), usage: usage(lastUsage) })
        return parts
      })

    return chunks.pipe(
      Stream.mapError((error) => toAiError(error, "streamText")),
      Stream.mapConcat(onChunk),
      Stream.concat(Stream.flatMap(Stream.fromEffect(onEnd()), Stream.fromIterable))
    )
  })

// =============================================================================
// Errors
// =============================================================================

const lastFailure = (attempts: ReadonlyArray<{ readonly model: string; readonly error?: unknown }>): string => {
  for (let i = attempts.length - 1; i >= 0; i--) {
    const attempt = attempts[i]!
    const error = attempt.error as { readonly reason?: string; readonly status?: number } | undefined
    if (error !== undefined) {
      return `; last: ${attempt.model} ${error.reason ?? "failed"}${error.status === undefined ? "" : ` (status ${error.status})`}`
    }
  }
  return ""
}

/**
 * A router error as an `AiError`: a refused request is `MalformedInput`;
 * `AllModelsFailed`, `DeadlineExceeded`, `NoModelAvailable` and
 * `StreamInterrupted` are `UnknownError`s whose description names the error,
 * the attempts and the last failure's reason and status, and whose `cause` is
 * the router's error, attempt trace included (see `routingError`).
 *
 * @since 0.4.0
 * @category errors
 */
export const toAiError = (
  error: RoutingError.RoutingError | RoutingError.StreamInterrupted | ChatCompletion.InvalidChatRequest,
  method: string
): AiError.AiError => {
  if (error._tag === "InvalidChatRequest") {
    return new AiError.MalformedInput({ module: MODULE, method, description: error.message, cause: error })
  }
  const attempts = error.attempts.filter((attempt) => attempt.outcome !== "skipped").length
  const description =
    error._tag === "StreamInterrupted"
      ? `StreamInterrupted: ${error.model} broke after ${error.delivered.length} characters: ${error.error.reason}${error.error.status === undefined ? "" : ` (status ${error.error.status})`}`
      : `${error._tag} after ${attempts} attempt${attempts === 1 ? "" : "s"}${lastFailure(error.attempts)}`
  return new AiError.UnknownError({ module: MODULE, method, description, cause: error })
}
