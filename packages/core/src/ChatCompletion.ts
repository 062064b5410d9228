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
import * as Json from "./Json.js"

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
 * A call of a function tool, as an assistant message carries it. `arguments`
 * is the JSON text of the arguments.
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
 * A call of a custom (free-form input) tool, as OpenAI's newer models make
 * them: passed on to a wire that takes it, refused by one that cannot.
 *
 * @since 0.3.0
 * @category schemas
 */
export const CustomToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("custom"),
  custom: Schema.Struct({ name: Schema.String, input: Schema.String })
})

/**
 * A block of a model's visible reasoning, as Anthropic returns it: the
 * thinking text with its signature, or a redacted block. An answer keeps
 * them in `message.thinking_blocks` (and the text, joined, in
 * `message.reasoning_content`), never in `content`; sent back in an
 * assistant message of the history, they return to the model as they came.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ThinkingBlock = Schema.Union(
  Schema.Struct({ type: Schema.Literal("thinking"), thinking: Schema.String, signature: Schema.String }),
  Schema.Struct({ type: Schema.Literal("redacted_thinking"), data: Schema.String })
)

/**
 * @since 0.3.0
 * @category models
 */
export type ThinkingBlock = typeof ThinkingBlock.Type

/** Optional and nullable, as most of OpenAI's request fields are. */
const nullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/**
 * One chat message, of any role OpenAI has. `developer` is OpenAI's newer name
 * for `system`; `function` is the deprecated form of `tool`. An assistant
 * message may carry `tool_calls` with `content: null`; a `tool` message
 * answers one of them by `tool_call_id`. Fields this schema does not name
 * (`audio`, `function_call`, ...) are kept.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Message = Schema.Struct({
  role: Schema.Literal("system", "developer", "user", "assistant", "tool", "function").annotations({
    message: () => ({ message: "role is one of system, developer, user, assistant, tool, function", override: true })
  }),
  content: Schema.optionalWith(Schema.NullOr(Content), { exact: true }),
  name: Schema.optionalWith(Schema.String, { exact: true }),
  tool_calls: Schema.optionalWith(Schema.Array(Schema.Union(ToolCall, CustomToolCall)), { exact: true }),
  tool_call_id: Schema.optionalWith(Schema.String, { exact: true }),
  refusal: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  /** An answer's reasoning, as this library returns it: kept when the answer goes back in the history. */
  reasoning_content: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  thinking_blocks: Schema.optionalWith(Schema.Array(ThinkingBlock), { exact: true })
}).pipe(
  Schema.filter((m) => {
    if (m.role === "tool" && m.tool_call_id === undefined) return "a tool message needs its tool_call_id"
    const empty = m.content === undefined || m.content === null
    if (empty && m.role !== "assistant" && m.role !== "function") {
      return "content is required (only an assistant message may have none)"
    }
    for (const call of m.tool_calls ?? []) {
      if (call.type === "function" && !isJsonObjectText(call.function.arguments)) {
        return `the arguments of tool call ${call.id} are not a JSON object (nested at most ${Json.maxDepth} levels)`
      }
    }
    return true
  })
)

/**
 * Whether a tool call's `arguments` is the JSON text of an object; the empty
 * text counts as `{}`, as a streamed call without arguments arrives.
 */
const isJsonObjectText = (text: string): boolean => {
  if (text.trim() === "") return true
  const value = Json.parseBounded(text)
  return Either.isRight(value) && typeof value.right === "object" && value.right !== null && !Array.isArray(value.right)
}

/**
 * @since 0.1.0
 * @category models
 */
export type Message = typeof Message.Type

/**
 * A tool the model may call: a function with a JSON Schema for its
 * arguments, or another kind OpenAI defines (`custom`), passed on as it is
 * to a wire that takes it.
 *
 * @since 0.3.0
 * @category schemas
 */
export const Tool = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("function"),
    function: Schema.Struct({
      name: Schema.String,
      description: Schema.optional(Schema.String),
      parameters: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      strict: nullable(Schema.Boolean)
    })
  }),
  Schema.Struct({ type: Schema.String })
)

/**
 * @since 0.3.0
 * @category models
 */
export type Tool = typeof Tool.Type

/**
 * Which tool the model must call: `none`, `auto`, `required`, one function by
 * name, or another form OpenAI defines (`allowed_tools`, `custom`).
 *
 * @since 0.3.0
 * @category schemas
 */
export const ToolChoice = Schema.Union(
  Schema.Literal("none", "auto", "required"),
  Schema.Struct({ type: Schema.Literal("function"), function: Schema.Struct({ name: Schema.String }) }),
  Schema.Struct({ type: Schema.String })
)

/**
 * The form of the answer: text, any JSON object, or JSON following a schema.
 *
 * @since 0.3.0
 * @category schemas
 */
export const ResponseFormat = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text") }),
  Schema.Struct({ type: Schema.Literal("json_object") }),
  Schema.Struct({
    type: Schema.Literal("json_schema"),
    json_schema: Schema.Struct({
      name: Schema.String,
      description: Schema.optional(Schema.String),
      schema: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      strict: nullable(Schema.Boolean)
    })
  })
)

/**
 * The request a caller sends: OpenAI's chat-completions request as the
 * `openai` package types it (`ChatCompletionCreateParams`), without `model`,
 * which the router picks. Fields this schema does not name are kept, and
 * reach a wire that passes the request through; a wire that translates the
 * request refuses them (see `Provider.unsupported`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletionRequest = Schema.Struct({
  messages: Schema.Array(Message).pipe(Schema.minItems(1, { message: () => "messages needs at least one message" })),
  tools: Schema.optional(Schema.Array(Tool)),
  tool_choice: Schema.optional(ToolChoice),
  parallel_tool_calls: Schema.optional(Schema.Boolean),
  response_format: Schema.optional(ResponseFormat),
  n: nullable(Schema.Int.pipe(Schema.between(1, 128))),
  logprobs: nullable(Schema.Boolean),
  top_logprobs: nullable(Schema.Int.pipe(Schema.between(0, 20))),
  logit_bias: nullable(Schema.Record({ key: Schema.String, value: Schema.Number.pipe(Schema.between(-100, 100)) })),
  reasoning_effort: nullable(Schema.String),
  service_tier: nullable(Schema.String),
  stream_options: nullable(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) })),
  temperature: nullable(Schema.Number.pipe(Schema.between(0, 2))),
  top_p: nullable(Schema.Number.pipe(Schema.between(0, 1))),
  max_tokens: nullable(Schema.Int.pipe(Schema.positive())),
  max_completion_tokens: nullable(Schema.Int.pipe(Schema.positive())),
  stop: nullable(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  presence_penalty: nullable(Schema.Number.pipe(Schema.between(-2, 2))),
  frequency_penalty: nullable(Schema.Number.pipe(Schema.between(-2, 2))),
  seed: nullable(Schema.Int),
  user: Schema.optional(Schema.String),
  metadata: nullable(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** `true` asks for a stream of `chat.completion.chunk`s. */
  stream: nullable(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletionRequest = typeof ChatCompletionRequest.Type

/**
 * The request without the parts at `paths` (`seed`, `messages[2].content[1]`,
 * `tools[0].function.strict`), as `Provider.unsupported` names them: a
 * field is left out, an element is taken out of its list. The request itself
 * is not changed. Paths that name nothing are ignored.
 *
 * @since 0.3.0
 * @category utils
 */
export const withoutFields = (request: ChatCompletionRequest, paths: ReadonlyArray<string>): ChatCompletionRequest => {
  // Later elements of a list first, so that each index still names the element it named.
  const parsed = paths.map(pathSegments).sort(comparePaths)
  return parsed.reduce<unknown>((value, segments) => removeAt(value, segments), request) as ChatCompletionRequest
}

/**
 * The path of field `key` of the value at `path`, as `Provider.unsupported`
 * names it: `messages[0].name`, or `messages[0]["odd.key"]` for a key that
 * is not an identifier, so that `withoutFields` finds it.
 *
 * @since 0.3.0
 * @category utils
 */
export const fieldPath = (path: string, key: string): string =>
  /^[A-Za-z_$][\w$]*$/.test(key) ? (path === "" ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`

/** `messages[2].content[1]` as `["messages", 2, "content", 1]`; `a["b.c"]` as `["a", "b.c"]`. */
const pathSegments = (path: string): ReadonlyArray<string | number> =>
  Array.from(path.matchAll(/\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|([^.[\]]+)/g), (match) =>
    match[1] !== undefined ? Number(match[1]) : match[2] !== undefined ? (JSON.parse(match[2]) as string) : match[3]!
  )

/** Orders paths so that, where they differ at an index, the larger index comes first. */
const comparePaths = (a: ReadonlyArray<string | number>, b: ReadonlyArray<string | number>): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!
    const y = b[i]!
    if (x === y) continue
    return typeof x === "number" && typeof y === "number" ? y - x : String(x) < String(y) ? -1 : 1
  }
  return b.length - a.length
}

/** A copy of `value` without the part at `segments` (copied along the path only). */
const removeAt = (value: unknown, segments: ReadonlyArray<string | number>): unknown => {
  if (segments.length === 0 || typeof value !== "object" || value === null) return value
  const [head, ...rest] = segments
  if (Array.isArray(value)) {
    if (typeof head !== "number" || head >= value.length) return value
    return rest.length === 0
      ? value.filter((_, i) => i !== head)
      : value.map((item, i) => (i === head ? removeAt(item, rest) : item))
  }
  const record = value as Record<string, unknown>
  if (typeof head !== "string" || !Object.hasOwn(record, head)) return value
  if (rest.length > 0) return { ...record, [head]: removeAt(record[head], rest) }
  const { [head]: _, ...others } = record
  return others
}

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
  const refused = shapeIssue(input)
  if (refused !== undefined) return Either.left(new InvalidChatRequest({ issues: [refused] }))
  return Either.mapLeft(
    // Unknown fields are kept: a wire that passes the request through sends them, one that translates refuses them.
    Schema.decodeUnknownEither(ChatCompletionRequest)(input, { errors: "all", onExcessProperty: "preserve" }),
    (error) =>
      new InvalidChatRequest({ issues: withoutOptionalNoise(ParseResult.ArrayFormatter.formatErrorSync(error)) })
  )
}

/** An object or list met in `shapeIssue`'s walk, with how it was reached (for a path, built only when needed). */
interface Visited {
  readonly value: object
  readonly depth: number
  readonly parent: Visited | undefined
  readonly key: string | number
}

/**
 * One walk of a request, before it is decoded, for what refuses it outright:
 * nesting deeper than `Json.maxDepth` (every later walk of it would overflow
 * the stack), or an own `__proto__` key anywhere (unknown fields are kept, and
 * it would become the decoded object's prototype). Without recursion, in
 * document order.
 */
const shapeIssue = (input: unknown): { readonly path: string; readonly message: string } | undefined => {
  if (typeof input !== "object" || input === null) return undefined
  const stack: Array<Visited> = [{ value: input, depth: 1, parent: undefined, key: "" }]
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (node.depth > Json.maxDepth) {
      return { path: "", message: `the request nests deeper than ${Json.maxDepth} levels` }
    }
    const list = Array.isArray(node.value)
    if (!list && Object.hasOwn(node.value, "__proto__")) {
      return { path: pathOf(node, "__proto__"), message: "__proto__ is not allowed as a field name" }
    }
    const keys = list ? (node.value as ReadonlyArray<unknown>).map((_, i) => i) : Object.keys(node.value)
    // Pushed last first, so that the first in the document is looked at first.
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!
      const child = (node.value as Record<string | number, unknown>)[key]
      if (typeof child === "object" && child !== null) {
        stack.push({ value: child, depth: node.depth + 1, parent: node, key })
      }
    }
  }
  return undefined
}

/** The path of `key` in `node`, as a JS accessor: `messages[0].__proto__`. */
const pathOf = (node: Visited, key: string): string => {
  const keys: Array<string | number> = [key]
  for (let at: Visited | undefined = node; at?.parent !== undefined; at = at.parent) keys.unshift(at.key)
  return keys.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("")
}

/**
 * The issues with their paths as JS accessors, without the "Expected
 * undefined" and "Expected null" lines that an optional, nullable field's
 * schema adds beside the real problem at the same path.
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
      !(issue.message.startsWith("Expected undefined") || issue.message.startsWith("Expected null")) ||
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
  total_tokens: Schema.Number,
  /** `cached_tokens`: the part of `prompt_tokens` read from the provider's prompt cache. */
  prompt_tokens_details: Schema.optional(
    Schema.NullOr(Schema.Struct({ cached_tokens: Schema.optional(Schema.Number) }))
  ),
  /** `reasoning_tokens`: the part of `completion_tokens` spent thinking. */
  completion_tokens_details: Schema.optional(
    Schema.NullOr(Schema.Struct({ reasoning_tokens: Schema.optional(Schema.Number) }))
  )
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
    // Exact optional fields and mutable lists, as the `openai` package types a history's messages: an answer's
    // message can be pushed onto one, under `exactOptionalPropertyTypes` too.
    content: Schema.NullOr(Schema.String),
    refusal: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
    tool_calls: Schema.optionalWith(Schema.mutable(Schema.Array(Schema.Union(ToolCall, CustomToolCall))), {
      exact: true
    }),
    reasoning_content: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
    thinking_blocks: Schema.optionalWith(Schema.mutable(Schema.Array(ThinkingBlock)), { exact: true })
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
  /** Pieces of tool calls: `index` names the call; its first piece carries `id`, `type` and `function.name`. */
  tool_calls: Schema.optional(
    Schema.Array(
      Schema.Struct({
        index: Schema.Number,
        id: Schema.optional(Schema.String),
        type: Schema.optional(Schema.String),
        function: Schema.optional(
          Schema.Struct({ name: Schema.optional(Schema.String), arguments: Schema.optional(Schema.String) })
        )
      })
    )
  ),
  /** A piece of the model's reasoning text. */
  reasoning_content: Schema.optional(Schema.NullOr(Schema.String)),
  /** Whole thinking blocks, each once, when it has ended (signature included). */
  thinking_blocks: Schema.optional(Schema.Array(ThinkingBlock))
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
  /** After routing, on the chunk that carries `usage`: the answer's cost in US dollars, when `prices` are configured. */
  cost: Schema.optional(Schema.Number),
  system_fingerprint: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type

/**
 * Whether a chunk carries content (text, a tool call, or reasoning, all of
 * which a caller may already show): the point after which a stream is
 * committed to its model. A role-only preamble does not count.
 *
 * @since 0.1.0
 * @category utils
 */
export const hasContent = (chunk: ChatCompletionChunk): boolean =>
  chunk.choices.some(
    (choice) =>
      (choice.delta.content !== undefined && choice.delta.content !== null && choice.delta.content !== "") ||
      (choice.delta.tool_calls !== undefined && choice.delta.tool_calls.length > 0) ||
      (choice.delta.reasoning_content !== undefined &&
        choice.delta.reasoning_content !== null &&
        choice.delta.reasoning_content !== "")
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
