/**
 * The OpenAI-shaped chat-completion domain: messages, the request a caller
 * sends, and the `ChatCompletion` every provider's reply is mapped to.
 *
 * @example
 * import { Schema } from "effect"
 * import { ChatCompletion } from "@ironlabsai/core"
 *
 * const request = Schema.decodeUnknownSync(ChatCompletion.ChatCompletionRequest)({
 *   messages: [{ role: "user", content: "Describe a sunset." }]
 * })
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"

/**
 * A text part of a message's content, as in OpenAI's content-part arrays.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })

/**
 * An image part of a user message: a URL, or a `data:` URL with the image in
 * base64.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ImagePart = Schema.Struct({
  type: Schema.Literal("image_url"),
  image_url: Schema.Struct({
    url: Schema.String,
    detail: Schema.optional(Schema.Literal("auto", "low", "high"))
  })
})

/**
 * Any other content part OpenAI defines (`input_audio`, `file`, ...): passed
 * on as it is to a wire that takes it, refused by one that cannot.
 *
 * @since 0.2.0
 * @category schemas
 */
export const OtherPart = Schema.Struct({ type: Schema.String })

/**
 * A message's content: a string or a list of parts.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Content = Schema.Union(Schema.String, Schema.Array(Schema.Union(TextPart, ImagePart, OtherPart)))

/**
 * @since 0.1.0
 * @category models
 */
export type Content = typeof Content.Type

/**
 * A call of a function tool, as an assistant message carries it.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("function"),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})

/**
 * @since 0.2.0
 * @category models
 */
export type ToolCall = typeof ToolCall.Type

/**
 * One chat message, of any role OpenAI has. `developer` is OpenAI's newer name
 * for `system`. An assistant message may carry `tool_calls` with `content:
 * null`; a `tool` message answers one of them by `tool_call_id`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Message = Schema.Struct({
  role: Schema.Literal("system", "developer", "user", "assistant", "tool").annotations({
    message: () => ({ message: "role is one of system, developer, user, assistant, tool", override: true })
  }),
  content: Schema.optionalWith(Schema.NullOr(Content), { exact: true }),
  name: Schema.optionalWith(Schema.String, { exact: true }),
  tool_calls: Schema.optionalWith(Schema.Array(ToolCall), { exact: true }),
  tool_call_id: Schema.optionalWith(Schema.String, { exact: true }),
  refusal: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true })
}).pipe(
  Schema.filter((m) => {
    if (m.role === "tool" && m.tool_call_id === undefined) return "a tool message needs its tool_call_id"
    const empty = m.content === undefined || m.content === null
    if (empty && !(m.role === "assistant" && (m.tool_calls?.length ?? 0) > 0)) {
      return "content is required (only an assistant message with tool_calls may have none)"
    }
    return true
  })
)

/**
 * @since 0.1.0
 * @category models
 */
export type Message = typeof Message.Type

/**
 * The request a caller sends: OpenAI chat-completion parameters that make sense
 * across providers. There is no `model`: the router picks it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletionRequest = Schema.Struct({
  messages: Schema.Array(Message).pipe(Schema.minItems(1, { message: () => "messages needs at least one message" })),
  tools: Schema.optional(
    Schema.Array(
      Schema.Struct({
        type: Schema.Literal("function"),
        function: Schema.Struct({
          name: Schema.String,
          description: Schema.optional(Schema.String),
          parameters: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
          strict: Schema.optional(Schema.NullOr(Schema.Boolean))
        })
      })
    )
  ),
  tool_choice: Schema.optional(
    Schema.Union(
      Schema.Literal("none", "auto", "required"),
      Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) })
    )
  ),
  parallel_tool_calls: Schema.optional(Schema.Boolean),
  response_format: Schema.optional(
    Schema.Union(
      Schema.Struct({ type: Schema.Literal("text") }),
      Schema.Struct({ type: Schema.Literal("json_object") }),
      Schema.Struct({
        type: Schema.Literal("json_schema"),
        json_schema: Schema.Struct({
          name: Schema.String,
          description: Schema.optional(Schema.String),
          schema: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
          strict: Schema.optional(Schema.NullOr(Schema.Boolean))
        })
      })
    )
  ),
  n: Schema.optional(Schema.Int.pipe(Schema.positive())),
  logprobs: Schema.optional(Schema.NullOr(Schema.Boolean)),
  top_logprobs: Schema.optional(Schema.NullOr(Schema.Int.pipe(Schema.between(0, 20)))),
  logit_bias: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Number }))),
  reasoning_effort: Schema.optional(Schema.NullOr(Schema.String)),
  service_tier: Schema.optional(Schema.NullOr(Schema.String)),
  stream_options: Schema.optional(Schema.NullOr(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }))),
  temperature: Schema.optional(Schema.Number.pipe(Schema.between(0, 2))),
  top_p: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  max_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  max_completion_tokens: Schema.optional(Schema.Int.pipe(Schema.positive())),
  stop: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  presence_penalty: Schema.optional(Schema.Number.pipe(Schema.between(-2, 2))),
  frequency_penalty: Schema.optional(Schema.Number.pipe(Schema.between(-2, 2))),
  seed: Schema.optional(Schema.Int),
  user: Schema.optional(Schema.String),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** `true` asks for a stream of `chat.completion.chunk`s. */
  stream: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletionRequest = typeof ChatCompletionRequest.Type

/**
 * A request that is not a valid chat-completion request; `issues` name each
 * problem with its path (`messages[0].role`). Raised before any model is
 * called, so a bad request never spends an attempt.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidChatRequest extends Schema.TaggedError<InvalidChatRequest>("InvalidChatRequest")(
  "InvalidChatRequest",
  { issues: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String })) }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid request:\n${this.issues.map((i) => `  - ${i.path || "(request)"}: ${i.message}`).join("\n")}`
  }
}

/**
 * Checks a request from untyped code (the Promise facade's callers).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeRequest = (input: unknown): Either.Either<ChatCompletionRequest, InvalidChatRequest> => {
  // Unknown fields are kept, so a "__proto__" key (JSON.parse makes it an own field) would become the
  // decoded object's prototype: refused, wherever it is.
  const proto = protoKeyPath(input, "", 0)
  if (proto !== undefined) {
    return Either.left(
      new InvalidChatRequest({ issues: [{ path: proto, message: "__proto__ is not allowed as a field name" }] })
    )
  }
  return Either.mapLeft(
    // Unknown fields are kept: a wire that passes the request through sends them, one that translates refuses them.
    Schema.decodeUnknownEither(ChatCompletionRequest)(input, { errors: "all", onExcessProperty: "preserve" }),
    (error) =>
      new InvalidChatRequest({ issues: withoutOptionalNoise(ParseResult.ArrayFormatter.formatErrorSync(error)) })
  )
}

/** The path of the first own `__proto__` key in a JSON-like value, if any (depth-bounded: deeper is not decoded). */
const protoKeyPath = (value: unknown, path: string, depth: number): string | undefined => {
  if (typeof value !== "object" || value === null || depth > 32) return undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = protoKeyPath(value[i], `${path}[${i}]`, depth + 1)
      if (found !== undefined) return found
    }
    return undefined
  }
  if (Object.hasOwn(value, "__proto__")) return path === "" ? "__proto__" : `${path}.__proto__`
  for (const key of Object.keys(value)) {
    const found = protoKeyPath((value as Record<string, unknown>)[key], path === "" ? key : `${path}.${key}`, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * The issues with their paths as JS accessors, without the "Expected
 * undefined" line that an optional field's schema adds beside the real problem
 * at the same path.
 */
const withoutOptionalNoise = (
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
): Array<{ readonly path: string; readonly message: string }> => {
  const formatted = issues.map((issue) => ({
    path: issue.path
      .map((key) => (typeof key === "number" ? `[${key}]` : `.${String(key)}`))
      .join("")
      .replace(/^\./, ""),
    message: issue.message
  }))
  return formatted.filter(
    (issue) =>
      !issue.message.startsWith("Expected undefined") ||
      !formatted.some((other) => other !== issue && other.path === issue.path)
  )
}

/**
 * Why generation stopped, in OpenAI's words.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FinishReason = Schema.Literal("stop", "length", "tool_calls", "content_filter", "function_call")

/**
 * @since 0.1.0
 * @category models
 */
export type FinishReason = typeof FinishReason.Type

/**
 * Token usage, in OpenAI's names.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Usage = Schema.Struct({
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type Usage = typeof Usage.Type

/**
 * One choice of a completion.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Choice = Schema.Struct({
  index: Schema.Number,
  message: Schema.Struct({
    role: Schema.Literal("assistant"),
    content: Schema.NullOr(Schema.String),
    refusal: Schema.optional(Schema.NullOr(Schema.String)),
    tool_calls: Schema.optional(Schema.Array(ToolCall))
  }),
  finish_reason: FinishReason,
  logprobs: Schema.optional(Schema.Unknown)
})

/**
 * An OpenAI `chat.completion` object. After routing, `model` is the full routed
 * id (`anthropic/claude-3-5-haiku-20241022`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletion = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("chat.completion"),
  created: Schema.Number,
  model: Schema.String,
  choices: Schema.Array(Choice),
  usage: Schema.optional(Usage),
  system_fingerprint: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletion = typeof ChatCompletion.Type

/**
 * The text of a message's content, parts joined.
 *
 * @since 0.1.0
 * @category utils
 */
export const contentText = (content: Content | null | undefined): string =>
  content === null || content === undefined
    ? ""
    : typeof content === "string"
      ? content
      : content.map((part) => (part.type === "text" && "text" in part ? String(part.text) : "")).join("")

/**
 * What one chunk of a stream adds to the message.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChunkDelta = Schema.Struct({
  role: Schema.optional(Schema.Literal("assistant")),
  content: Schema.optional(Schema.NullOr(Schema.String)),
  refusal: Schema.optional(Schema.NullOr(Schema.String)),
  tool_calls: Schema.optional(Schema.Array(Schema.Unknown))
})

/**
 * One choice of a chunk.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChunkChoice = Schema.Struct({
  index: Schema.Number,
  delta: ChunkDelta,
  finish_reason: Schema.NullOr(FinishReason),
  logprobs: Schema.optional(Schema.Unknown)
})

/**
 * An OpenAI `chat.completion.chunk`: one event of a streamed completion. After
 * routing, `model` is the full routed id, as in a non-streamed response.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletionChunk = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("chat.completion.chunk"),
  created: Schema.Number,
  model: Schema.String,
  choices: Schema.Array(ChunkChoice),
  usage: Schema.optional(Schema.NullOr(Usage)),
  system_fingerprint: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type

/**
 * Whether a chunk carries content (text or a tool call): the point after which
 * a stream is committed to its model. A role-only preamble does not count.
 *
 * @since 0.1.0
 * @category utils
 */
export const hasContent = (chunk: ChatCompletionChunk): boolean =>
  chunk.choices.some(
    (choice) =>
      (choice.delta.content !== undefined && choice.delta.content !== null && choice.delta.content !== "") ||
      (choice.delta.tool_calls !== undefined && choice.delta.tool_calls.length > 0)
  )

/**
 * The text a chunk adds.
 *
 * @since 0.1.0
 * @category utils
 */
export const chunkText = (chunk: ChatCompletionChunk): string => {
  let text = ""
  for (const choice of chunk.choices) text += choice.delta.content ?? ""
  return text
}
