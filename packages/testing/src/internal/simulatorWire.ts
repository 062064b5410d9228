/**
 * The OpenAI chat-completions and the Anthropic messages wire formats as the
 * simulator speaks them: the answer a reply gives (text, thinking, tool calls,
 * JSON mode), its successful bodies, error bodies and the server-sent events of
 * a streamed reply; the 400s the real APIs answer to malformed requests; and
 * the models list.
 */
import type * as Simulator from "../Simulator.js"

/** @internal */
export type ServedWire = "openai" | "anthropic"

/** @internal */
export const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A rough, deterministic token count: the number of whitespace-separated words. */
export const countWords = (text: string): number => {
  const trimmed = text.trim()
  return trimmed === "" ? 0 : trimmed.split(/\s+/).length
}

const collectText = (value: unknown): ReadonlyArray<string> => {
  if (typeof value === "string") return [value]
  if (Array.isArray(value)) return value.flatMap(collectText)
  if (isRecord(value)) return typeof value["text"] === "string" ? [value["text"]] : collectText(value["content"])
  return []
}

/** Words of the prompt of a request body of either wire: `system` plus every message's content. */
export const promptTokens = (body: unknown): number => {
  if (!isRecord(body)) return 0
  const messages = body["messages"]
  const texts = [...collectText(body["system"]), ...(Array.isArray(messages) ? collectText(messages) : [])]
  return countWords(texts.join(" "))
}

/** Splits a text into stream deltas, one word (with its trailing whitespace) each; they concatenate back to it. */
export const splitDeltas = (text: string): ReadonlyArray<string> =>
  text.split(/(?<=\s)(?=\S)/).filter((piece) => piece !== "")

/** A reply rendered for the wire: status, headers and the body as a list of pieces. */
export interface Rendered {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** Pieces sent before the first content event (the whole body when not streamed). */
  readonly preamble: ReadonlyArray<string>
  /** The server-sent events of the content (empty when not streamed); the fault options count their deltas. */
  readonly content: ReadonlyArray<ContentEvent>
  /** Pieces sent after the content. */
  readonly trailer: ReadonlyArray<string>
  readonly stream: boolean
}

/** One server-sent event of a stream's content; `delta` when it is a content delta that the fault options count. */
export interface ContentEvent {
  readonly event: string
  readonly delta: boolean
}

const counted = (event: string): ContentEvent => ({ event, delta: true })
const uncounted = (event: string): ContentEvent => ({ event, delta: false })

/** What a reply needs to know about the request it answers. */
export interface Exchange {
  readonly id: number
  readonly wire: ServedWire
  readonly model: string | undefined
  readonly body: unknown
}

const defaultErrorTypes: Record<ServedWire, (status: number) => Simulator.ReplyError> = {
  openai: (status) => {
    switch (status) {
      case 401:
        return { type: "invalid_request_error", code: "invalid_api_key" }
      case 403:
        return { type: "permission_error" }
      case 404:
        return { type: "invalid_request_error", code: "model_not_found" }
      case 429:
        return { type: "requests", code: "rate_limit_exceeded" }
      default:
        return status >= 500 ? { type: "server_error" } : { type: "invalid_request_error" }
    }
  },
  anthropic: (status) => {
    switch (status) {
      case 401:
        return { type: "authentication_error" }
      case 403:
        return { type: "permission_error" }
      case 404:
        return { type: "not_found_error" }
      case 413:
        return { type: "request_too_large" }
      case 429:
        return { type: "rate_limit_error" }
      case 529:
        return { type: "overloaded_error" }
      default:
        return status >= 500 ? { type: "api_error" } : { type: "invalid_request_error" }
    }
  }
}

/** The JSON error body of a wire. */
export const errorBody = (wire: ServedWire, error: Simulator.ReplyError): string => {
  const message = error.message ?? `Simulated ${error.type}.`
  return wire === "openai"
    ? JSON.stringify({ error: { message, type: error.type, param: error.param ?? null, code: error.code ?? null } })
    : JSON.stringify({ type: "error", error: { type: error.type, message } })
}

const requestIdHeader = (exchange: Exchange): Record<string, string> =>
  exchange.wire === "openai" ? { "x-request-id": `req_sim_${exchange.id}` } : { "request-id": `req_sim_${exchange.id}` }

const lowerCaseKeys = (headers: Readonly<Record<string, string>> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]))

const whole = (
  exchange: Exchange,
  reply: Simulator.Reply,
  status: number,
  body: string,
  contentType: string
): Rendered => ({
  status,
  headers: {
    "content-type": contentType,
    ...requestIdHeader(exchange),
    ...lowerCaseKeys(reply.headers),
    "content-length": String(Buffer.byteLength(body))
  },
  preamble: [body],
  content: [],
  trailer: [],
  stream: false
})

const sse = (data: unknown, event?: string): string =>
  `${event === undefined ? "" : `event: ${event}\n`}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`

/** Splits a text into pieces of `size` characters; they concatenate back to it. */
const splitEvery = (text: string, size: number): ReadonlyArray<string> =>
  Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size))

// -----------------------------------------------------------------------------
// JSON schemas
// -----------------------------------------------------------------------------

/** How deep `minimalValue` follows a schema, so that a recursive `$ref` ends. */
const maxSchemaDepth = 16

/** Follows a local JSON pointer such as `#/$defs/Name` from the root schema. */
const resolveRef = (root: unknown, ref: string): unknown =>
  ref.startsWith("#")
    ? ref
        .slice(1)
        .split("/")
        .filter((segment) => segment !== "")
        .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"))
        .reduce<unknown>((node, key) => (isRecord(node) ? node[key] : undefined), root)
    : undefined

/**
 * The smallest JSON value a JSON schema accepts, as a model in JSON mode may
 * answer: its `const`, the first of its `enum`, the first branch of `anyOf` /
 * `oneOf`, and by type `""`, `0`, `false`, `[]`, `null`, or an object with its
 * `required` properties only. Local `$ref`s are followed; past a depth of 16,
 * and for a schema it cannot read, `null`.
 */
export const minimalValue = (schema: unknown, root: unknown = schema, depth = maxSchemaDepth): unknown => {
  if (!isRecord(schema) || depth <= 0) return null
  const next = (inner: unknown) => minimalValue(inner, root, depth - 1)
  if ("const" in schema) return schema["const"]
  const values = schema["enum"]
  if (Array.isArray(values) && values.length > 0) return values[0]
  const ref = schema["$ref"]
  if (typeof ref === "string") return next(resolveRef(root, ref))
  const branches = schema["anyOf"] ?? schema["oneOf"]
  if (Array.isArray(branches) && branches.length > 0) return next(branches[0])
  const type = Array.isArray(schema["type"]) ? schema["type"][0] : schema["type"]
  const properties = isRecord(schema["properties"]) ? schema["properties"] : undefined
  if (type === "object" || (type === undefined && properties !== undefined)) {
    const required: ReadonlyArray<unknown> = Array.isArray(schema["required"]) ? schema["required"] : []
    return Object.fromEntries(
      required.filter((name) => typeof name === "string").map((name) => [name, next(properties?.[name])])
    )
  }
  switch (type) {
    case "string":
      return ""
    case "number":
    case "integer":
      return 0
    case "boolean":
      return false
    case "array":
      return []
    default:
      return null
  }
}

// -----------------------------------------------------------------------------
// The answer
// -----------------------------------------------------------------------------

/** A tool call of an answer, its id settled. */
interface AnswerToolCall {
  readonly id: string
  readonly name: string
  readonly arguments: unknown
}

/** What a successful reply answers, whatever the wire. */
interface Answer {
  /** Anthropic only. */
  readonly thinking: string | undefined
  /** `undefined` for an answer of tool calls only. */
  readonly text: string | undefined
  readonly toolCalls: ReadonlyArray<AnswerToolCall>
}

/** The tool an Anthropic request forces with `tool_choice: { type: "tool", name }`, and that tool's input schema. */
const forcedTool = (body: unknown): { readonly name: string; readonly schema: unknown } | undefined => {
  if (!isRecord(body)) return undefined
  const choice = body["tool_choice"]
  if (!isRecord(choice) || choice["type"] !== "tool" || typeof choice["name"] !== "string") return undefined
  const name = choice["name"]
  const tools: ReadonlyArray<unknown> = Array.isArray(body["tools"]) ? body["tools"] : []
  const tool = tools.find((candidate) => isRecord(candidate) && candidate["name"] === name)
  return { name, schema: isRecord(tool) ? tool["input_schema"] : undefined }
}

/** The JSON value a request's JSON mode asks for when the reply scripts no answer; `undefined` outside JSON mode. */
const requestedJson = (exchange: Exchange, forced: ReturnType<typeof forcedTool>): unknown => {
  if (exchange.wire === "anthropic") return forced === undefined ? undefined : minimalValue(forced.schema)
  const format = isRecord(exchange.body) ? exchange.body["response_format"] : undefined
  if (!isRecord(format)) return undefined
  if (format["type"] === "json_object") return {}
  if (format["type"] !== "json_schema") return undefined
  const spec = format["json_schema"]
  return minimalValue(isRecord(spec) ? spec["schema"] : undefined)
}

/** Resolves what a reply answers: its content, JSON and tool calls, or else what the request's JSON mode asks. */
const answerOf = (exchange: Exchange, reply: Simulator.Reply): Answer => {
  const scriptedCalls = reply.toolCalls ?? []
  const scripted = reply.content !== undefined || reply.json !== undefined || scriptedCalls.length > 0
  const forced = exchange.wire === "anthropic" ? forcedTool(exchange.body) : undefined
  const json = reply.json !== undefined ? reply.json : scripted ? undefined : requestedJson(exchange, forced)
  // On Anthropic, JSON mode is a forced tool: the JSON is its input.
  const jsonCalls: ReadonlyArray<Simulator.ToolCall> =
    json !== undefined && forced !== undefined ? [{ name: forced.name, arguments: json }] : []
  const prefix = exchange.wire === "openai" ? "call" : "toolu"
  const toolCalls = [...scriptedCalls, ...jsonCalls].map((call, i) => ({
    id: call.id ?? `${prefix}_sim_${exchange.id}_${i}`,
    name: call.name,
    arguments: call.arguments === undefined ? {} : call.arguments
  }))
  const text =
    json !== undefined && forced === undefined
      ? JSON.stringify(json)
      : (reply.content ?? (toolCalls.length > 0 ? undefined : `Simulated answer from ${exchange.model ?? "unknown"}.`))
  return { thinking: exchange.wire === "anthropic" ? reply.thinking : undefined, text, toolCalls }
}

/** The simulator's own count of an answer's tokens: the words of its thinking, its text and its tool arguments. */
const answerTokens = (answer: Answer): number => {
  const toolArguments = answer.toolCalls.map((call) => JSON.stringify(call.arguments))
  return countWords([answer.thinking ?? "", answer.text ?? "", ...toolArguments].join(" "))
}

/** The token counts of a successful reply. */
interface Tokens {
  readonly input: number
  readonly output: number
  readonly cacheRead: number
  readonly cacheCreation: number
}

// -----------------------------------------------------------------------------
// Rendering
// -----------------------------------------------------------------------------

/** Renders one reply to one request. */
export const render = (exchange: Exchange, reply: Simulator.Reply): Rendered => {
  const { wire } = exchange
  if (reply.body !== undefined) return whole(exchange, reply, reply.status ?? 200, reply.body, "application/json")
  const status = reply.status ?? (reply.error === undefined ? 200 : 500)
  if (reply.error !== undefined || status >= 400) {
    const error = reply.error ?? defaultErrorTypes[wire](status)
    return whole(exchange, reply, status, errorBody(wire, error), "application/json")
  }
  const answer = answerOf(exchange, reply)
  const tokens: Tokens = {
    input: reply.usage?.promptTokens ?? promptTokens(exchange.body),
    output: reply.usage?.completionTokens ?? answerTokens(answer),
    cacheRead: reply.usage?.cachedTokens ?? 0,
    cacheCreation: reply.usage?.cacheCreationTokens ?? 0
  }
  return wire === "openai"
    ? renderOpenAi(exchange, reply, status, answer, tokens)
    : renderAnthropic(exchange, reply, status, answer, tokens)
}

const isStream = (exchange: Exchange): boolean => isRecord(exchange.body) && exchange.body["stream"] === true

const renderOpenAi = (
  exchange: Exchange,
  reply: Simulator.Reply,
  status: number,
  answer: Answer,
  tokens: Tokens
): Rendered => {
  const id = `chatcmpl-sim-${exchange.id}`
  const model = exchange.model ?? "unknown"
  const created = Math.floor(Date.now() / 1000)
  const finishReason = reply.finishReason ?? (answer.toolCalls.length > 0 ? "tool_calls" : "stop")
  const usage = {
    prompt_tokens: tokens.input,
    completion_tokens: tokens.output,
    total_tokens: tokens.input + tokens.output,
    prompt_tokens_details: { cached_tokens: tokens.cacheRead },
    completion_tokens_details: { reasoning_tokens: 0 }
  }
  const content = answer.text ?? null
  if (!isStream(exchange)) {
    const toolCalls = answer.toolCalls.map((call) => ({
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: JSON.stringify(call.arguments) }
    }))
    const message = {
      role: "assistant",
      content,
      refusal: null,
      ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {})
    }
    const body = {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message, finish_reason: finishReason, logprobs: null }],
      usage
    }
    return whole(exchange, reply, status, JSON.stringify(body), "application/json")
  }
  const streamOptions = isRecord(exchange.body) ? exchange.body["stream_options"] : undefined
  const includeUsage = isRecord(streamOptions) && streamOptions["include_usage"] === true
  const chunk = (choices: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}) =>
    sse({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices,
      ...(includeUsage ? { usage: null } : {}),
      ...extra
    })
  const delta = (fields: Record<string, unknown>, finish: string | null = null) =>
    chunk([{ index: 0, delta: fields, finish_reason: finish, logprobs: null }])
  const textEvents = (answer.text === undefined ? [] : (reply.chunks ?? splitDeltas(answer.text))).map((text) =>
    counted(delta({ content: text }))
  )
  // As the API streams a tool call: its id and name first, then its JSON arguments in pieces.
  const toolEvents = answer.toolCalls.flatMap((call, index) => [
    uncounted(
      delta({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] })
    ),
    ...splitEvery(JSON.stringify(call.arguments), 8).map((piece) =>
      counted(delta({ tool_calls: [{ index, function: { arguments: piece } }] }))
    )
  ])
  return {
    ...streamed(exchange, reply, status),
    // The API's role chunk has `content: null` when the answer has no text.
    preamble: [delta({ role: "assistant", content: content === null ? null : "", refusal: null })],
    content: [...textEvents, ...toolEvents],
    trailer: [delta({}, finishReason), ...(includeUsage ? [chunk([], { usage })] : []), sse("[DONE]")]
  }
}

/** A content block of an Anthropic message, as the non-streamed body carries it. */
type Block =
  | { readonly type: "thinking"; readonly thinking: string; readonly signature: string }
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown }

const blocksOf = (exchange: Exchange, answer: Answer): ReadonlyArray<Block> => [
  ...(answer.thinking === undefined
    ? []
    : [{ type: "thinking" as const, thinking: answer.thinking, signature: `sig_sim_${exchange.id}` }]),
  ...(answer.text === undefined ? [] : [{ type: "text" as const, text: answer.text }]),
  ...answer.toolCalls.map((call) => ({
    type: "tool_use" as const,
    id: call.id,
    name: call.name,
    input: call.arguments
  }))
]

/** A block's events on a stream: its start (with the block empty), its deltas, its stop. */
const blockEvents = (block: Block, index: number, reply: Simulator.Reply): ReadonlyArray<ContentEvent> => {
  const event = (type: string, fields: Record<string, unknown>) => sse({ type, index, ...fields }, type)
  const delta = (fields: Record<string, unknown>) => counted(event("content_block_delta", { delta: fields }))
  const start = (contentBlock: Record<string, unknown>) =>
    uncounted(event("content_block_start", { content_block: contentBlock }))
  const stop = uncounted(event("content_block_stop", {}))
  switch (block.type) {
    case "thinking":
      return [
        start({ type: "thinking", thinking: "", signature: "" }),
        ...splitDeltas(block.thinking).map((thinking) => delta({ type: "thinking_delta", thinking })),
        delta({ type: "signature_delta", signature: block.signature }),
        stop
      ]
    case "text":
      return [
        start({ type: "text", text: "" }),
        ...(reply.chunks ?? splitDeltas(block.text)).map((text) => delta({ type: "text_delta", text })),
        stop
      ]
    case "tool_use": {
      // The API sends empty arguments as one empty piece.
      const json = JSON.stringify(block.input)
      const pieces = json === "{}" ? [""] : splitEvery(json, 8)
      return [
        start({ type: "tool_use", id: block.id, name: block.name, input: {} }),
        ...pieces.map((piece) => delta({ type: "input_json_delta", partial_json: piece })),
        stop
      ]
    }
  }
}

const renderAnthropic = (
  exchange: Exchange,
  reply: Simulator.Reply,
  status: number,
  answer: Answer,
  tokens: Tokens
): Rendered => {
  const id = `msg_sim_${exchange.id}`
  const model = exchange.model ?? "unknown"
  const stopReason = reply.finishReason ?? (answer.toolCalls.length > 0 ? "tool_use" : "end_turn")
  const blocks = blocksOf(exchange, answer)
  const usage = (output: number) => ({
    input_tokens: tokens.input,
    cache_creation_input_tokens: tokens.cacheCreation,
    cache_read_input_tokens: tokens.cacheRead,
    output_tokens: output
  })
  if (!isStream(exchange)) {
    const body = {
      id,
      type: "message",
      role: "assistant",
      model,
      content: blocks,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: usage(tokens.output)
    }
    return whole(exchange, reply, status, JSON.stringify(body), "application/json")
  }
  const message = {
    id,
    type: "message",
    role: "assistant",
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: usage(1)
  }
  const [first, ...rest] = blocks.flatMap((block, index) => blockEvents(block, index, reply))
  return {
    ...streamed(exchange, reply, status),
    // The API pings once, after the first block starts.
    preamble: [
      sse({ type: "message_start", message }, "message_start"),
      ...(first === undefined ? [] : [first.event]),
      sse({ type: "ping" }, "ping")
    ],
    content: rest,
    trailer: [
      sse(
        {
          type: "message_delta",
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: { output_tokens: tokens.output }
        },
        "message_delta"
      ),
      sse({ type: "message_stop" }, "message_stop")
    ]
  }
}

/** The headers of a streamed reply: `text/event-stream`, no content length. */
export const streamHeaders = (exchange: Exchange, reply: Simulator.Reply): Readonly<Record<string, string>> => ({
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  ...requestIdHeader(exchange),
  ...lowerCaseKeys(reply.headers)
})

const streamed = (exchange: Exchange, reply: Simulator.Reply, status: number) => ({
  status,
  headers: streamHeaders(exchange, reply),
  stream: true
})

/** A keep-alive ping: an SSE comment on the OpenAI wire, a `ping` event on the Anthropic wire (as each sends it). */
export const ping = (wire: ServedWire): string =>
  wire === "openai" ? ": ping\n\n" : 'event: ping\ndata: {"type": "ping"}\n\n'

/** The error event of a stream that fails mid-way, in the wire's format. */
export const errorEvent = (wire: ServedWire, error: Simulator.ReplyError): string =>
  wire === "openai" ? sse(errorBody(wire, error)) : sse(errorBody(wire, error), "error")

/** Events a parser must skip: an SSE comment, and on the Anthropic wire an event of an unknown type. */
const noiseEvents = (wire: ServedWire): ReadonlyArray<string> =>
  wire === "openai" ? [": OPENROUTER PROCESSING\n\n"] : [": keep-alive\n\n", "event: mystery\ndata: {}\n\n"]

/** Splits each JSON `data:` payload across two `data:` lines, after its opening brace: joined by "\n", still the same JSON. */
const splitData = (event: string): string => event.replace(/^data: \{(.+)$/gm, "data: {\ndata: $1")

/**
 * How a body ends once its pieces are written: `"end"` closes the
 * response, `"open"` keeps the connection open with nothing more to send,
 * `"reset"` destroys the connection.
 */
export type Ending = "end" | "open" | "reset"

/** A body as it goes on the wire: its pieces (the events of a stream, or one whole body), and how it ends. */
export interface BodyScript {
  readonly events: ReadonlyArray<string | Uint8Array>
  readonly ending: Ending
}

/**
 * The content events up to the `count`-th delta included: none for 0, and up to
 * the last delta when there are fewer (what follows it, such as the block's
 * stop, belongs to the end of the stream).
 */
const throughDelta = (content: ReadonlyArray<ContentEvent>, count: number): ReadonlyArray<string> => {
  let end = 0
  let seen = 0
  for (let i = 0; i < content.length && seen < count; i++) {
    if (content[i]?.delta === true) {
      seen++
      end = i + 1
    }
  }
  return content.slice(0, end).map((piece) => piece.event)
}

/**
 * The events of a streamed reply after its faults: an error event after some
 * content deltas, a stall or a break, noise, multi-line data, CRLF.
 */
export const streamScript = (wire: ServedWire, reply: Simulator.Reply, rendered: Rendered): BodyScript => {
  const { preamble, content, trailer } = rendered
  const upTo = (count: number) => throughDelta(content, count)
  const withNoise = (head: ReadonlyArray<string>) =>
    reply.noise === true ? [...head.slice(0, 1), ...noiseEvents(wire), ...head.slice(1)] : head
  let events: ReadonlyArray<string>
  let ending: Ending
  if (reply.errorAfterChunks !== undefined || reply.streamError !== undefined) {
    const count = Math.max(0, reply.errorAfterChunks ?? 0)
    // OpenAI sends no role chunk before an error that comes first; Anthropic always starts its message.
    const head = wire === "openai" && count === 0 ? [] : preamble
    const error = reply.streamError ?? defaultErrorTypes[wire](500)
    events = [...withNoise(head), ...upTo(count), errorEvent(wire, error)]
    ending = reply.doneWithoutClose === true ? "open" : "end"
  } else if (reply.stallAfterChunks !== undefined) {
    events = [...withNoise(preamble), ...upTo(reply.stallAfterChunks)]
    ending = "open"
  } else if (reply.breakAfterChunks !== undefined) {
    events = [...withNoise(preamble), ...upTo(reply.breakAfterChunks)]
    ending = "reset"
  } else {
    // The end event is the trailer's last on both wires.
    events = [
      ...withNoise(preamble),
      ...content.map((piece) => piece.event),
      ...(reply.withoutEndEvent === true ? trailer.slice(0, -1) : trailer)
    ]
    ending = reply.doneWithoutClose === true ? "open" : "end"
  }
  const multiline = reply.multilineData === true ? events.map(splitData) : events
  return { events: reply.crlf === true ? multiline.map(toCrlf) : multiline, ending }
}

/** `\n` line endings as `\r\n`. */
export const toCrlf = (text: string): string => text.replaceAll("\n", "\r\n")

// -----------------------------------------------------------------------------
// The real APIs' 400s
// -----------------------------------------------------------------------------

const invalid = (message: string, param?: string, code?: string): Simulator.ReplyError => ({
  type: "invalid_request_error",
  message,
  param,
  code
})

const listOf = (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [])

const openAiRoles = ["system", "developer", "user", "assistant", "tool", "function"]

/** The ids of an OpenAI assistant message's `tool_calls`. */
const toolCallIds = (message: Readonly<Record<string, unknown>>): ReadonlyArray<unknown> =>
  listOf(message["tool_calls"]).map((call) => (isRecord(call) ? call["id"] : undefined))

/** The error of an assistant message whose tool calls were not all answered by the tool messages after it. */
const unansweredCalls = (
  calls: { readonly index: number; readonly ids: ReadonlyArray<unknown> },
  answered: ReadonlySet<unknown>
): Simulator.ReplyError | undefined => {
  const missing = calls.ids.filter((id) => !answered.has(id))
  return missing.length === 0
    ? undefined
    : invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. " +
          `The following tool_call_ids did not have response messages: ${missing.join(", ")}`,
        `messages.[${calls.index}].role`
      )
}

const invalidOpenAi = (body: unknown): Simulator.ReplyError | undefined => {
  if (!isRecord(body)) return invalid("We could not parse the JSON body of your request.")
  const messages = body["messages"]
  if (messages === undefined) {
    return invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
  }
  if (!Array.isArray(messages)) {
    return invalid("Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type")
  }
  // The tool calls of the last assistant message, and those the tool messages right after it answered.
  let calls: { readonly index: number; readonly ids: ReadonlyArray<unknown> } = { index: -1, ids: [] }
  let answered = new Set<unknown>()
  for (const [index, message] of listOf(messages).entries()) {
    const fields = isRecord(message) ? message : {}
    const role = fields["role"]
    if (typeof role !== "string") {
      return invalid(`Missing required parameter: 'messages[${index}].role'.`, `messages[${index}].role`)
    }
    if (!openAiRoles.includes(role)) {
      return invalid(
        `Invalid value: '${role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        `messages[${index}].role`,
        "invalid_value"
      )
    }
    if (role === "tool") {
      if (!calls.ids.includes(fields["tool_call_id"])) {
        return invalid(
          "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          `messages.[${index}].role`
        )
      }
      answered.add(fields["tool_call_id"])
      continue
    }
    const unanswered = unansweredCalls(calls, answered)
    if (unanswered !== undefined) return unanswered
    calls = { index, ids: role === "assistant" ? toolCallIds(fields) : [] }
    answered = new Set()
  }
  return unansweredCalls(calls, answered)
}

/** The blocks of an Anthropic message's content of type `type`, with their index in the content. */
const blocksOfType = (
  message: unknown,
  type: string
): ReadonlyArray<readonly [number, Readonly<Record<string, unknown>>]> =>
  listOf(isRecord(message) ? message["content"] : undefined).flatMap((block, index) =>
    isRecord(block) && block["type"] === type ? [[index, block] as const] : []
  )

const missingResults = (index: number, ids: ReadonlyArray<unknown>): Simulator.ReplyError =>
  invalid(
    `messages.${index}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${ids.join(", ")}. ` +
      "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
  )

const invalidAnthropic = (body: unknown): Simulator.ReplyError | undefined => {
  if (!isRecord(body)) return invalid("There was an error parsing the body of your request")
  const messages = body["messages"]
  if (messages === undefined) return invalid("messages: Field required")
  if (!Array.isArray(messages)) return invalid("messages: Input should be a valid list")
  if (body["max_tokens"] === undefined) return invalid("max_tokens: Field required")
  // The `tool_use` ids of the previous message: the next one must answer each of them, and no other.
  let uses: { readonly index: number; readonly ids: ReadonlyArray<unknown> } = { index: -1, ids: [] }
  for (const [index, message] of listOf(messages).entries()) {
    const role = isRecord(message) ? message["role"] : undefined
    if (role !== "user" && role !== "assistant") {
      return invalid(`messages.${index}.role: Input should be 'user' or 'assistant'`)
    }
    const results = role === "user" ? blocksOfType(message, "tool_result") : []
    const answered = results.map(([, block]) => block["tool_use_id"])
    const missing = uses.ids.filter((id) => !answered.includes(id))
    if (missing.length > 0) return missingResults(uses.index, missing)
    const unexpected = results.filter(([, block]) => !uses.ids.includes(block["tool_use_id"]))
    if (unexpected.length > 0) {
      return invalid(
        `messages.${index}.content.${unexpected[0]?.[0]}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ` +
          `${unexpected.map(([, block]) => block["tool_use_id"]).join(", ")}. ` +
          "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
      )
    }
    const toolUses = role === "assistant" ? blocksOfType(message, "tool_use") : []
    uses = { index, ids: toolUses.map(([, block]) => block["id"]) }
  }
  return uses.ids.length > 0 ? missingResults(uses.index, uses.ids) : undefined
}

/**
 * Why the real API would refuse a chat request with 400, in its words (an
 * `invalid_request_error`); `undefined` when it would take it. Only the
 * mistakes a client makes: a body that is not a JSON object, `messages`
 * missing or not a list, a role the API does not know, tool calls and their
 * results out of step, and on Anthropic `max_tokens` missing.
 */
export const invalidRequest = (wire: ServedWire, body: unknown): Simulator.ReplyError | undefined =>
  wire === "openai" ? invalidOpenAi(body) : invalidAnthropic(body)

// -----------------------------------------------------------------------------
// GET /v1/models
// -----------------------------------------------------------------------------

/** The models a wire lists when the options name none (the scripted ones follow). */
export const defaultModels: Record<ServedWire, ReadonlyArray<string>> = {
  openai: ["gpt-4o", "gpt-4o-mini"],
  anthropic: ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514"]
}

/** The body of `GET /v1/models` in the wire's format. */
export const modelList = (wire: ServedWire, ids: ReadonlyArray<string>): string =>
  JSON.stringify(
    wire === "openai"
      ? {
          object: "list",
          data: ids.map((id) => ({ id, object: "model", created: 1735689600, owned_by: "ironlabsai-simulator" }))
        }
      : {
          data: ids.map((id) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" })),
          has_more: false,
          first_id: ids[0] ?? null,
          last_id: ids.at(-1) ?? null
        }
  )
