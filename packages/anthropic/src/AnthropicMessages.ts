/**
 * OpenAI's chat-completions request in Anthropic's messages format, and
 * Anthropic's message back as an OpenAI `ChatCompletion` (DESIGN §6). Every
 * field of a request is translated or named by `unsupportedFields`: nothing
 * is left out in silence.
 *
 * @example
 * import { AnthropicMessages } from "@ironlabsai/anthropic"
 *
 * const request = {
 *   messages: [{ role: "user" as const, content: "What is the weather in Paris?" }],
 *   tools: [{ type: "function" as const, function: { name: "get_weather", parameters: { type: "object" } } }]
 * }
 * // [] : every field has a translation
 * const refused = AnthropicMessages.unsupportedFields(request)
 * const body = AnthropicMessages.toRequestBody("claude-3-5-haiku-20241022", request)
 *
 * @since 0.3.0
 */
import { ChatCompletion } from "@ironlabsai/core"
import { Schema } from "effect"

/**
 * `max_tokens` when the request sets neither `max_tokens` nor
 * `max_completion_tokens`: Anthropic requires one. With thinking on, the
 * thinking budget is added to it.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxTokens = 4096

/**
 * The thinking budget (`budget_tokens`) for each `reasoning_effort`; `none`
 * turns thinking off, as it is by default.
 *
 * @since 0.3.0
 * @category constants
 */
export const thinkingBudgets: Readonly<Record<string, number>> = {
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 16384,
  xhigh: 32768
}

/**
 * The name of the tool a JSON-mode request (`response_format: json_object`)
 * is forced to call; a `json_schema` request's tool takes the schema's name.
 *
 * @since 0.3.0
 * @category constants
 */
export const jsonObjectToolName = "json_object"

/** Image types Anthropic takes as base64. */
const imageTypes = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"])

/**
 * The fields `toRequestBody` translates, for each kind of object in a
 * request; any other field set there cannot be served. `cache_control` is
 * Anthropic's own, passed on where Anthropic takes it.
 */
const known = {
  request: new Set([
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "stream",
    // Anthropic reports usage on every stream: asking for it changes nothing.
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort"
  ]),
  // `reasoning_content` is carried by `thinking_blocks`, which go back as they came (see messageFields).
  message: new Set(["role", "content", "tool_calls", "tool_call_id", "thinking_blocks", "reasoning_content"]),
  textPart: new Set(["type", "text", "cache_control"]),
  imagePart: new Set(["type", "image_url", "cache_control"]),
  imageUrl: new Set(["url", "detail"]),
  tool: new Set(["type", "function", "cache_control"]),
  function: new Set(["name", "description", "parameters", "strict"]),
  toolChoice: new Set(["type", "function"]),
  toolChoiceFunction: new Set(["name"]),
  toolCall: new Set(["id", "type", "function"]),
  toolCallFunction: new Set(["name", "arguments"]),
  responseFormat: new Set(["type", "json_schema"]),
  jsonSchema: new Set(["name", "description", "schema", "strict"]),
  streamOptions: new Set(["include_usage"])
} as const

/**
 * Whether a value asks for nothing: unset, `null`, an empty list or object,
 * `false`, or a default that needs no translation (`n: 1`,
 * `parallel_tool_calls: true`, `service_tier: "auto"`), as an OpenAI
 * answer's message, put back in the history, carries them.
 */
const asksNothing = (key: string, value: unknown): boolean =>
  value === undefined ||
  value === null ||
  value === false ||
  (Array.isArray(value) && value.length === 0) ||
  (typeof value === "object" && Object.keys(value).length === 0) ||
  (key === "n" && value === 1) ||
  (key === "parallel_tool_calls" && value === true) ||
  (key === "service_tier" && (value === "auto" || value === "default"))

/** Adds to `fields` the path of each field of `value` outside `names` that asks for something. */
const unknownFields = (value: object, names: ReadonlySet<string>, at: string, fields: Array<string>): void => {
  for (const [key, field] of Object.entries(value)) {
    if (!names.has(key) && !asksNothing(key, field)) fields.push(ChatCompletion.fieldPath(at, key))
  }
}

/**
 * A JSON Schema as Anthropic's `input_schema` takes it: an object schema.
 * An empty or untyped schema becomes one; `undefined` for any other type.
 */
const objectSchema = (schema: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> | undefined => {
  if (schema === undefined || Object.keys(schema).length === 0) return { type: "object", properties: {} }
  if (schema["type"] === undefined) return { type: "object", ...schema }
  return schema["type"] === "object" ? { ...schema } : undefined
}

/** A data URL's media type and base64 data, if it is one. */
const dataUrl = (url: string): { readonly mediaType: string; readonly data: string } | undefined => {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(url)
  return match === null ? undefined : { mediaType: match[1]!.toLowerCase(), data: match[2]! }
}

/** The schema of the tool a JSON response is forced through, or `undefined` when the request asks for text. */
const jsonTool = (
  request: ChatCompletion.ChatCompletionRequest
): { readonly name: string; readonly description?: string; readonly schema: Record<string, unknown> } | undefined => {
  const format = request.response_format
  if (format === undefined || format.type === "text") return undefined
  if (format.type === "json_object") return { name: jsonObjectToolName, schema: { type: "object" } }
  if (!("json_schema" in format)) return undefined
  const { name, description, schema } = format.json_schema
  return {
    name,
    ...(description === undefined ? {} : { description }),
    // A schema that is not an object's was refused by unsupportedFields.
    schema: objectSchema(schema) ?? { type: "object" }
  }
}

/** The thinking budget the request asks for, if any. */
const thinkingBudget = (request: ChatCompletion.ChatCompletionRequest): number | undefined =>
  request.reasoning_effort === undefined || request.reasoning_effort === null
    ? undefined
    : thinkingBudgets[request.reasoning_effort]

/**
 * The fields of an OpenAI-shaped request the Anthropic wire cannot translate,
 * as paths (`seed`, `messages[2].content[1]`, `tools[0].function.strict`).
 * Each path names the smallest part whose removal makes the request
 * servable, so that `drop_unsupported_params` can drop exactly it. Not
 * servable: `n` > 1, `logprobs`, `temperature` > 1, `seed`, penalties,
 * `metadata`, and any field without a translation, at any depth; strict
 * schemas (Anthropic cannot enforce them); tools other than functions, and
 * schemas that do not describe an object; a JSON response together with
 * tools; images other than http(s) URLs and base64 JPEG/PNG/GIF/WebP, or with
 * a `detail`; content parts other than text and images; message `name`s;
 * `function` messages; `reasoning_effort` with a forced tool, a
 * `temperature` other than 1, a `top_p`, or a `max_tokens` within its budget.
 *
 * @since 0.3.0
 * @category mapping
 */
export const unsupportedFields = (request: ChatCompletion.ChatCompletionRequest): ReadonlyArray<string> => {
  const fields: Array<string> = []
  unknownFields(request, known.request, "", fields)
  const temperature = request.temperature ?? undefined
  if (temperature !== undefined && temperature > 1) fields.push("temperature")
  if (request.stream_options) unknownFields(request.stream_options, known.streamOptions, "stream_options", fields)
  for (const [i, tool] of (request.tools ?? []).entries()) {
    const at = `tools[${i}]`
    if (!("function" in tool)) {
      fields.push(at)
      continue
    }
    unknownFields(tool, known.tool, at, fields)
    unknownFields(tool.function, known.function, `${at}.function`, fields)
    if (objectSchema(tool.function.parameters) === undefined) fields.push(`${at}.function.parameters`)
    if (tool.function.strict === true) fields.push(`${at}.function.strict`)
  }
  const choice = request.tool_choice
  if (typeof choice === "object") {
    if (!("function" in choice)) fields.push("tool_choice")
    else {
      unknownFields(choice, known.toolChoice, "tool_choice", fields)
      unknownFields(choice.function, known.toolChoiceFunction, "tool_choice.function", fields)
    }
  }
  const format = request.response_format
  if (format !== undefined) {
    unknownFields(format, known.responseFormat, "response_format", fields)
    if (format.type !== "text" && format.type !== "json_object" && !("json_schema" in format)) {
      fields.push("response_format")
    } else if (format.type !== "text" && (request.tools?.length ?? 0) > 0) {
      fields.push("response_format")
    } else if ("json_schema" in format) {
      unknownFields(format.json_schema, known.jsonSchema, "response_format.json_schema", fields)
      if (objectSchema(format.json_schema.schema) === undefined) fields.push("response_format.json_schema.schema")
      if (format.json_schema.strict === true) fields.push("response_format.json_schema.strict")
    }
  }
  if (thinkingConflicts(request, new Set(fields))) fields.push("reasoning_effort")
  for (const [i, message] of request.messages.entries()) messageFields(message, `messages[${i}]`, fields)
  return fields
}

/**
 * Whether `reasoning_effort` cannot be served along with the rest of the
 * request, once the fields already `reported` are dropped: an unknown
 * effort, or thinking with what Anthropic refuses with it (a forced tool, a
 * `temperature` other than 1, a `top_p`, a `max_tokens` within the budget).
 */
const thinkingConflicts = (request: ChatCompletion.ChatCompletionRequest, reported: ReadonlySet<string>): boolean => {
  const effort = request.reasoning_effort
  if (effort === undefined || effort === null || effort === "none") return false
  const budget = thinkingBudget(request)
  if (budget === undefined) return true
  const choice = request.tool_choice
  const json = !reported.has("response_format") && jsonTool(request) !== undefined
  const forced = choice === "required" || (typeof choice === "object" && "function" in choice) || json
  const temperature = reported.has("temperature") ? undefined : (request.temperature ?? undefined)
  const sampling = (temperature !== undefined && temperature !== 1) || (request.top_p ?? undefined) !== undefined
  const maxTokens = request.max_tokens ?? request.max_completion_tokens ?? undefined
  return forced || sampling || (maxTokens !== undefined && maxTokens <= budget)
}

/** Adds to `fields` what one message has that cannot be translated. */
const messageFields = (message: ChatCompletion.Message, at: string, fields: Array<string>): void => {
  if (message.role === "function") {
    fields.push(at)
    return
  }
  unknownFields(message, known.message, at, fields)
  // Reasoning without its signed blocks (another provider's) has no Anthropic form.
  if (
    !asksNothing("reasoning_content", message.reasoning_content) &&
    asksNothing("thinking_blocks", message.thinking_blocks)
  ) {
    fields.push(`${at}.reasoning_content`)
  }
  for (const [k, call] of (message.tool_calls ?? []).entries()) {
    const callAt = `${at}.tool_calls[${k}]`
    if (call.type !== "function") fields.push(callAt)
    else {
      unknownFields(call, known.toolCall, callAt, fields)
      unknownFields(call.function, known.toolCallFunction, `${callAt}.function`, fields)
    }
  }
  if (Array.isArray(message.content)) {
    for (const [j, part] of message.content.entries()) partFields(part, message.role, `${at}.content[${j}]`, fields)
  }
}

/** Adds to `fields` what one content part of a `role` message has that cannot be translated. */
const partFields = (part: ChatCompletion.Content[number] & object, role: string, at: string, fields: Array<string>) => {
  if (part.type === "text") {
    unknownFields(part, known.textPart, at, fields)
    return
  }
  if (part.type !== "image_url" || role !== "user" || !("image_url" in part)) {
    fields.push(at)
    return
  }
  const data = dataUrl(part.image_url.url)
  if (data === undefined ? !/^https?:\/\//i.test(part.image_url.url) : !imageTypes.has(data.mediaType)) {
    fields.push(at)
    return
  }
  unknownFields(part, known.imagePart, at, fields)
  unknownFields(part.image_url, known.imageUrl, `${at}.image_url`, fields)
  if (part.image_url.detail !== undefined && part.image_url.detail !== "auto") fields.push(`${at}.image_url.detail`)
}

/** One block of an Anthropic message's content. */
type Block = Readonly<Record<string, unknown>>

/** One message in Anthropic's format: content as a string when it is plain text, else blocks. */
interface AnthropicMessage {
  readonly role: "user" | "assistant"
  readonly content: string | ReadonlyArray<Block>
}

const textBlocks = (content: ChatCompletion.Content | null | undefined): Array<Block> => {
  if (content === null || content === undefined || content === "") return []
  if (typeof content === "string") return [{ type: "text", text: content }]
  return content.flatMap((part): Array<Block> => {
    if (part.type === "text" && "text" in part) return [{ type: "text", text: part.text, ...cacheControl(part) }]
    if (part.type === "image_url" && "image_url" in part) {
      const data = dataUrl(part.image_url.url)
      const source =
        data === undefined
          ? { type: "url", url: part.image_url.url }
          : { type: "base64", media_type: data.mediaType, data: data.data }
      return [{ type: "image", source, ...cacheControl(part) }]
    }
    return [] // never reached for a servable request (unsupportedFields names any other part)
  })
}

/** Anthropic's `cache_control` of a part or a tool, when the caller set one. */
const cacheControl = (value: object): { readonly cache_control?: unknown } => {
  const control = (value as { readonly cache_control?: unknown }).cache_control
  return control === undefined || control === null ? {} : { cache_control: control }
}

/** A user or tool message's content in Anthropic's form: a plain string stays a string. */
const userContent = (message: ChatCompletion.Message): string | Array<Block> =>
  typeof message.content === "string" ? message.content : textBlocks(message.content)

const assistantContent = (message: ChatCompletion.Message): string | Array<Block> => {
  const thinking: ReadonlyArray<Block> = message.thinking_blocks ?? []
  const calls = message.tool_calls ?? []
  if (thinking.length === 0 && calls.length === 0 && typeof message.content === "string") return message.content
  return [
    ...thinking,
    ...textBlocks(message.content),
    ...calls.flatMap(
      (call): Array<Block> =>
        call.type === "function"
          ? [
              {
                type: "tool_use",
                id: call.id,
                name: call.function.name,
                input: parseArguments(call.function.arguments)
              }
            ]
          : []
    )
  ]
}

/** Arguments as JSON text, parsed; the request's validation has made sure they are an object (or empty). */
const parseArguments = (text: string): unknown => (text.trim() === "" ? {} : JSON.parse(text))

const asBlocks = (content: string | ReadonlyArray<Block>): ReadonlyArray<Block> =>
  typeof content === "string" ? (content === "" ? [] : [{ type: "text", text: content }]) : content

/**
 * The conversation in Anthropic's form: `system` and `developer` messages
 * out, `tool` messages as `tool_result` blocks, and consecutive messages of
 * one side merged into one message, tool results first.
 */
const conversation = (messages: ReadonlyArray<ChatCompletion.Message>): Array<AnthropicMessage> => {
  const merged: Array<{ role: "user" | "assistant"; parts: Array<string | ReadonlyArray<Block>> }> = []
  for (const message of messages) {
    let role: "user" | "assistant"
    let content: string | ReadonlyArray<Block>
    if (message.role === "user") {
      role = "user"
      content = userContent(message)
    } else if (message.role === "tool") {
      role = "user"
      const result = userContent(message)
      content = [
        { type: "tool_result", tool_use_id: message.tool_call_id, ...(result === "" ? {} : { content: result }) }
      ]
    } else if (message.role === "assistant") {
      role = "assistant"
      content = assistantContent(message)
    } else {
      continue // system and developer go to `system`; a `function` message was refused
    }
    const last = merged[merged.length - 1]
    if (last !== undefined && last.role === role) last.parts.push(content)
    else merged.push({ role, parts: [content] })
  }
  return merged.map(({ role, parts }) => {
    if (parts.length === 1) return { role, content: parts[0]! }
    const blocks = parts.flatMap(asBlocks)
    // Anthropic wants a user turn's tool results before anything else in it.
    const results = blocks.filter((block) => block["type"] === "tool_result")
    return { role, content: [...results, ...blocks.filter((block) => block["type"] !== "tool_result")] }
  })
}

/**
 * `system` and `developer` messages as Anthropic's `system`: their texts
 * joined with a blank line, or, when a part asks for `cache_control`, one
 * text block per message part so that the marker stays where it was put.
 */
const systemPrompt = (messages: ReadonlyArray<ChatCompletion.Message>): string | Array<Block> | undefined => {
  const system = messages.filter((m) => m.role === "system" || m.role === "developer")
  if (system.length === 0) return undefined
  const cached = system.some((m) => Array.isArray(m.content) && m.content.some((part) => "cache_control" in part))
  if (cached) return system.flatMap((m) => textBlocks(m.content))
  return system.map((m) => ChatCompletion.contentText(m.content)).join("\n\n")
}

/**
 * The `tool_choice` for the request: OpenAI's `auto` / `required` / `none` /
 * a named function become `auto` / `any` / `none` / `tool`, with
 * `disable_parallel_tool_use` for `parallel_tool_calls: false`; a JSON
 * response forces its own tool.
 */
const toolChoice = (request: ChatCompletion.ChatCompletionRequest, json: string | undefined): Block | undefined => {
  if (json !== undefined) return { type: "tool", name: json }
  const choice = request.tool_choice
  const single = request.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {}
  if (choice === undefined)
    return (request.tools?.length ?? 0) > 0 && "disable_parallel_tool_use" in single
      ? { type: "auto", ...single }
      : undefined
  if (choice === "none") return { type: "none" }
  if (choice === "auto") return { type: "auto", ...single }
  if (choice === "required") return { type: "any", ...single }
  return "function" in choice ? { type: "tool", name: choice.function.name, ...single } : undefined
}

/**
 * The Anthropic request body for an OpenAI-shaped request that
 * `unsupportedFields` found servable.
 *
 * @since 0.1.0
 * @category mapping
 */
export const toRequestBody = (model: string, request: ChatCompletion.ChatCompletionRequest) => {
  const system = systemPrompt(request.messages)
  const stop = request.stop ?? undefined
  const json = jsonTool(request)
  const tools = [
    ...(request.tools ?? []).flatMap((tool) =>
      "function" in tool
        ? [
            {
              name: tool.function.name,
              ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
              input_schema: objectSchema(tool.function.parameters),
              ...cacheControl(tool)
            }
          ]
        : []
    ),
    ...(json === undefined
      ? []
      : [
          {
            name: json.name,
            description: json.description ?? "Respond with JSON by calling this tool with it.",
            input_schema: json.schema
          }
        ])
  ]
  const choice = toolChoice(request, json?.name)
  const budget = request.reasoning_effort === "none" ? undefined : thinkingBudget(request)
  const maxTokens = request.max_tokens ?? request.max_completion_tokens ?? undefined
  return {
    model,
    max_tokens: maxTokens ?? defaultMaxTokens + (budget ?? 0),
    messages: conversation(request.messages),
    ...(system === undefined ? {} : { system }),
    ...(tools.length === 0 ? {} : { tools }),
    ...(choice === undefined ? {} : { tool_choice: choice }),
    ...(budget === undefined ? {} : { thinking: { type: "enabled", budget_tokens: budget } }),
    ...(request.temperature === undefined || request.temperature === null ? {} : { temperature: request.temperature }),
    ...(request.top_p === undefined || request.top_p === null ? {} : { top_p: request.top_p }),
    ...(stop === undefined ? {} : { stop_sequences: typeof stop === "string" ? [stop] : stop }),
    ...(request.user === undefined ? {} : { metadata: { user_id: request.user } })
  }
}

/**
 * Anthropic's `usage`. `input_tokens` excludes what was read from or written
 * to the prompt cache.
 *
 * @since 0.3.0
 * @category schemas
 */
export const MessageUsage = Schema.Struct({
  input_tokens: Schema.Number,
  output_tokens: Schema.Number,
  cache_read_input_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  cache_creation_input_tokens: Schema.optional(Schema.NullOr(Schema.Number))
})

/**
 * Anthropic's usage in OpenAI's names: `prompt_tokens` counts every input
 * token (plain, read from the cache, and written to it), and
 * `prompt_tokens_details.cached_tokens` the ones read from the cache.
 *
 * @since 0.3.0
 * @category mapping
 */
export const toUsage = (usage: typeof MessageUsage.Type): ChatCompletion.Usage => {
  const cached = usage.cache_read_input_tokens ?? 0
  const prompt = usage.input_tokens + cached + (usage.cache_creation_input_tokens ?? 0)
  return {
    prompt_tokens: prompt,
    completion_tokens: usage.output_tokens,
    total_tokens: prompt + usage.output_tokens,
    prompt_tokens_details: { cached_tokens: cached }
  }
}

const ContentBlock = Schema.Union(
  Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("tool_use"), id: Schema.String, name: Schema.String, input: Schema.Unknown }),
  Schema.Struct({ type: Schema.Literal("thinking"), thinking: Schema.String, signature: Schema.String }),
  Schema.Struct({ type: Schema.Literal("redacted_thinking"), data: Schema.String }),
  // Other blocks (server tools' results, ...) only come back to a request that asked for them: none can.
  Schema.Struct({ type: Schema.String })
)

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
  model: Schema.optional(Schema.String),
  content: Schema.Array(ContentBlock),
  stop_reason: Schema.NullOr(Schema.String),
  usage: MessageUsage
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
    case "model_context_window_exceeded":
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
 * The name of the tool that carries the JSON answer of a request with a
 * `response_format`, if it has one: its call is the answer's content, not a
 * tool call.
 *
 * @since 0.3.0
 * @category mapping
 */
export const jsonToolName = (request: ChatCompletion.ChatCompletionRequest): string | undefined =>
  jsonTool(request)?.name

/**
 * Anthropic's message as an OpenAI `ChatCompletion`: text blocks joined into
 * `content` (`null` when the answer is only tool calls), `tool_use` blocks as
 * `tool_calls` with their arguments as JSON text, thinking in
 * `reasoning_content` and `thinking_blocks`. With `jsonTool`, that tool's call
 * is the JSON answer, in `content`, and the answer stops normally.
 *
 * @since 0.3.0
 * @category mapping
 */
export const toChatCompletion = (
  message: typeof MessageResponse.Type,
  options: { readonly model: string; readonly created: number; readonly jsonTool?: string | undefined }
): ChatCompletion.ChatCompletion => {
  let text: string | undefined
  let reasoning: string | undefined
  let json: string | undefined
  const toolCalls: Array<ChatCompletion.ToolCall> = []
  const thinking: Array<ChatCompletion.ThinkingBlock> = []
  for (const block of message.content) {
    if ("text" in block) text = (text ?? "") + block.text
    else if ("input" in block) {
      const args = JSON.stringify(block.input ?? {})
      if (block.name === options.jsonTool) json = args
      else toolCalls.push({ id: block.id, type: "function", function: { name: block.name, arguments: args } })
    } else if ("thinking" in block) {
      reasoning = (reasoning ?? "") + block.thinking
      thinking.push({ type: "thinking", thinking: block.thinking, signature: block.signature })
    } else if ("data" in block) thinking.push({ type: "redacted_thinking", data: block.data })
  }
  const content = json ?? text ?? (toolCalls.length > 0 ? null : "")
  return {
    id: message.id,
    object: "chat.completion",
    created: options.created,
    model: message.model ?? options.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content,
          ...(toolCalls.length === 0 ? {} : { tool_calls: toolCalls }),
          ...(reasoning === undefined ? {} : { reasoning_content: reasoning }),
          ...(thinking.length === 0 ? {} : { thinking_blocks: thinking })
        },
        // The forced tool's call is the answer itself: the model stopped as it should.
        finish_reason:
          json !== undefined && message.stop_reason === "tool_use" ? "stop" : finishReason(message.stop_reason),
        logprobs: null
      }
    ],
    usage: toUsage(message.usage)
  }
}
