/**
 * Rendering of the simulator's replies in the OpenAI chat-completions and the
 * Anthropic messages wire formats: successful bodies, error bodies, and the
 * server-sent events of a streamed reply.
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
  /** Pieces sent before the content deltas (the whole body when not streamed). */
  readonly preamble: ReadonlyArray<string>
  /** One server-sent event per content delta (empty when not streamed). */
  readonly deltas: ReadonlyArray<string>
  /** Pieces sent after the content deltas. */
  readonly trailer: ReadonlyArray<string>
  readonly stream: boolean
}

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
    ? JSON.stringify({ error: { message, type: error.type, param: null, code: error.code ?? null } })
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
  deltas: [],
  trailer: [],
  stream: false
})

const sse = (data: unknown, event?: string): string =>
  `${event === undefined ? "" : `event: ${event}\n`}data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`

/** Renders one reply to one request. */
export const render = (exchange: Exchange, reply: Simulator.Reply): Rendered => {
  const { wire } = exchange
  if (reply.body !== undefined) return whole(exchange, reply, reply.status ?? 200, reply.body, "application/json")
  const status = reply.status ?? (reply.error === undefined ? 200 : 500)
  if (reply.error !== undefined || status >= 400) {
    const error = reply.error ?? defaultErrorTypes[wire](status)
    return whole(exchange, reply, status, errorBody(wire, error), "application/json")
  }

  const model = exchange.model ?? "unknown"
  const content = reply.content ?? `Simulated answer from ${model}.`
  const inputTokens = reply.usage?.promptTokens ?? promptTokens(exchange.body)
  const outputTokens = reply.usage?.completionTokens ?? countWords(content)
  const stream = isRecord(exchange.body) && exchange.body["stream"] === true

  if (wire === "openai") {
    const id = `chatcmpl-sim-${exchange.id}`
    const created = Math.floor(Date.now() / 1000)
    const finishReason = reply.finishReason ?? "stop"
    const usage = {
      prompt_tokens: inputTokens,
      completion_tokens: outputTokens,
      total_tokens: inputTokens + outputTokens
    }
    if (!stream) {
      const body = {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content, refusal: null },
            finish_reason: finishReason,
            logprobs: null
          }
        ],
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
    const choice = (delta: Record<string, unknown>, finish: string | null) => ({
      index: 0,
      delta,
      finish_reason: finish,
      logprobs: null
    })
    return {
      ...streamed(exchange, reply, status),
      preamble: [chunk([choice({ role: "assistant", content: "", refusal: null }, null)])],
      deltas: (reply.chunks ?? splitDeltas(content)).map((text) => chunk([choice({ content: text }, null)])),
      trailer: [chunk([choice({}, finishReason)]), ...(includeUsage ? [chunk([], { usage })] : []), sse("[DONE]")]
    }
  }

  const id = `msg_sim_${exchange.id}`
  const stopReason = reply.finishReason ?? "end_turn"
  if (!stream) {
    const body = {
      id,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text: content }],
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: outputTokens }
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
    usage: { input_tokens: inputTokens, output_tokens: 1 }
  }
  return {
    ...streamed(exchange, reply, status),
    preamble: [
      sse({ type: "message_start", message }, "message_start"),
      sse({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }, "content_block_start"),
      sse({ type: "ping" }, "ping")
    ],
    deltas: (reply.chunks ?? splitDeltas(content)).map((text) =>
      sse({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }, "content_block_delta")
    ),
    trailer: [
      sse({ type: "content_block_stop", index: 0 }, "content_block_stop"),
      sse(
        {
          type: "message_delta",
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: { output_tokens: outputTokens }
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
 * The events of a streamed reply after its faults: an error event after some
 * content deltas, a stall or a break, noise, multi-line data, CRLF.
 */
export const streamScript = (wire: ServedWire, reply: Simulator.Reply, rendered: Rendered): BodyScript => {
  const { preamble, deltas, trailer } = rendered
  const upTo = (count: number) => deltas.slice(0, Math.max(0, count))
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
    events = [...withNoise(preamble), ...deltas, ...(reply.withoutEndEvent === true ? trailer.slice(0, -1) : trailer)]
    ending = reply.doneWithoutClose === true ? "open" : "end"
  }
  const multiline = reply.multilineData === true ? events.map(splitData) : events
  return { events: reply.crlf === true ? multiline.map(toCrlf) : multiline, ending }
}

/** `\n` line endings as `\r\n`. */
export const toCrlf = (text: string): string => text.replaceAll("\n", "\r\n")
