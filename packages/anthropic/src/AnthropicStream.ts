/**
 * Anthropic's stream events as OpenAI `chat.completion.chunk`s (DESIGN §6):
 * text deltas become content, `tool_use` blocks tool-call deltas whose
 * `index` counts tool blocks only (id and name on the first, `"{}"` for a
 * call without arguments), thinking deltas `reasoning_content` with each
 * whole block in `thinking_blocks` when it ends, and `message_delta` the
 * finish reason and usage, on the last chunk, as OpenAI sends it.
 *
 * @example
 * import { ModelId } from "@ironlabsai/core"
 * import { AnthropicStream } from "@ironlabsai/anthropic"
 *
 * const model = ModelId.parse("anthropic/claude-3-5-haiku-20241022")!
 * const parse = AnthropicStream.eventParser(model, { created: Math.floor(Date.now() / 1000) })
 * const chunks = parse({
 *   event: "content_block_delta",
 *   data: '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}'
 * })
 *
 * @since 0.3.0
 */
import { type ChatCompletion, type ModelId, ProviderError } from "@ironlabsai/core"
import { ProviderReply } from "@ironlabsai/http"
import { Either, Option, Schema } from "effect"
import * as AnthropicMessages from "./AnthropicMessages.js"

/**
 * A stream event's usage: the counts (any may be missing or `null`, not
 * counted there) beside other details (`service_tier`, `server_tool_use`).
 */
const UsageCounts = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * The events of Anthropic's stream that carry something; `ping` and unknown
 * events carry nothing for a chunk.
 */
const StreamEvent = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("message_start"),
    message: Schema.Struct({
      id: Schema.String,
      model: Schema.optional(Schema.String),
      usage: UsageCounts
    })
  }),
  Schema.Struct({
    type: Schema.Literal("content_block_start"),
    index: Schema.Number,
    content_block: Schema.Union(
      Schema.Struct({ type: Schema.Literal("tool_use"), id: Schema.String, name: Schema.String }),
      Schema.Struct({ type: Schema.Literal("redacted_thinking"), data: Schema.String }),
      Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }),
      Schema.Struct({ type: Schema.String })
    )
  }),
  Schema.Struct({
    type: Schema.Literal("content_block_delta"),
    index: Schema.Number,
    delta: Schema.Union(
      Schema.Struct({ type: Schema.Literal("text_delta"), text: Schema.String }),
      Schema.Struct({ type: Schema.Literal("input_json_delta"), partial_json: Schema.String }),
      Schema.Struct({ type: Schema.Literal("thinking_delta"), thinking: Schema.String }),
      Schema.Struct({ type: Schema.Literal("signature_delta"), signature: Schema.String }),
      Schema.Struct({ type: Schema.String })
    )
  }),
  Schema.Struct({ type: Schema.Literal("content_block_stop"), index: Schema.Number }),
  Schema.Struct({
    type: Schema.Literal("message_delta"),
    delta: Schema.Struct({ stop_reason: Schema.NullOr(Schema.String) }),
    // The final counts; newer API versions repeat the input counts here.
    usage: UsageCounts
  }),
  Schema.Struct({ type: Schema.Literal("message_stop") }),
  Schema.Struct({
    type: Schema.Literal("error"),
    error: Schema.Struct({ type: Schema.String, message: Schema.optional(Schema.String) })
  })
)
const decodeEvent = Schema.decodeUnknownEither(StreamEvent)
const carrying = new Set([
  "message_start",
  "content_block_start",
  "content_block_delta",
  "content_block_stop",
  "message_delta",
  "message_stop",
  "error"
])

/** What the parser knows of one content block while it streams. */
type OpenBlock =
  | { readonly kind: "text" }
  /** A tool call: `tool` is its index among the tool calls; `empty` until an argument piece arrives. */
  | { readonly kind: "tool"; readonly tool: number; empty: boolean }
  /** The forced tool of a JSON response: its input is the content. */
  | { readonly kind: "json"; empty: boolean }
  | { readonly kind: "thinking"; text: string; signature: string }
  | { readonly kind: "other" }

type Delta = ChatCompletion.ChatCompletionChunk["choices"][number]["delta"]

/**
 * Maps Anthropic's events to OpenAI chunks, for one stream: `message_start`
 * gives the role, blocks their deltas, `message_delta` the finish reason and
 * the usage, `message_stop` ends the stream, and an `error` event is
 * classified by its type. With `jsonTool`, that tool's input streams as the
 * content (a JSON response). Usage counts a later event sends as `null` (or
 * leaves out) keep the value an earlier one gave.
 *
 * @since 0.3.0
 * @category mapping
 */
export const eventParser = (
  model: ModelId.ModelId,
  options: {
    /** The tool a JSON response is forced through: its input streams as the content. */
    readonly jsonTool?: string | undefined
    /** The chunks' `created`, in epoch seconds: when the stream started, on the Effect clock. */
    readonly created: number
  }
): ProviderReply.EventParser => {
  const { jsonTool, created } = options
  let id = ""
  const usage: Record<string, number> = { input_tokens: 0, output_tokens: 0 }
  /** Takes the counts an event gives; a count it leaves out or sends as `null` keeps its last value. */
  const count = (counts: Readonly<Record<string, unknown>>) => {
    for (const [key, value] of Object.entries(counts)) if (typeof value === "number") usage[key] = value
  }
  let tools = 0
  const blocks = new Map<number, OpenBlock>()
  const chunk = (
    delta: Delta,
    finish: ChatCompletion.FinishReason | null = null,
    final?: ChatCompletion.Usage
  ): ChatCompletion.ChatCompletionChunk => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: model.name,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(final === undefined ? {} : { usage: final })
  })
  const malformed = (description: string) =>
    ProviderError.ProviderError.fromReason({ reason: "MalformedResponse", model: model.id, description })
  const toolDelta = (tool: number, piece: Record<string, unknown>) => chunk({ tool_calls: [{ index: tool, ...piece }] })
  return (event) => {
    // Unknown events are skipped by name, as Anthropic asks clients to do.
    if (event.event !== undefined && !carrying.has(event.event)) return []
    const json = ProviderReply.parseJson(event.data)
    const type = Option.isSome(json) ? (json.value as { type?: unknown } | null)?.type : undefined
    if (typeof type !== "string" || !carrying.has(type)) {
      if (Option.isSome(json) && typeof type === "string") return []
      return malformed(`unexpected event: ${JSON.stringify(event.data.slice(0, 80))}`)
    }
    const decoded = decodeEvent(Option.getOrUndefined(json))
    if (Either.isLeft(decoded)) return malformed(`unexpected ${type} event: ${JSON.stringify(event.data.slice(0, 80))}`)
    const data = decoded.right
    switch (data.type) {
      case "message_start":
        id = data.message.id
        count(data.message.usage)
        return [chunk({ role: "assistant", content: "" })]
      case "content_block_start": {
        const block = data.content_block
        if ("id" in block) {
          if (block.name === jsonTool) {
            blocks.set(data.index, { kind: "json", empty: true })
            return []
          }
          const tool = tools++
          blocks.set(data.index, { kind: "tool", tool, empty: true })
          return [toolDelta(tool, { id: block.id, type: "function", function: { name: block.name, arguments: "" } })]
        }
        if ("data" in block) {
          blocks.set(data.index, { kind: "other" })
          return [chunk({ thinking_blocks: [{ type: "redacted_thinking", data: block.data }] })]
        }
        if (block.type === "thinking") {
          blocks.set(data.index, { kind: "thinking", text: "", signature: "" })
          return []
        }
        blocks.set(data.index, { kind: block.type === "text" ? "text" : "other" })
        return "text" in block && block.text !== "" ? [chunk({ content: block.text })] : []
      }
      case "content_block_delta": {
        const block = blocks.get(data.index)
        const delta = data.delta
        if ("text" in delta) return delta.text === "" ? [] : [chunk({ content: delta.text })]
        if ("partial_json" in delta) {
          if (delta.partial_json === "" || block === undefined) return []
          if (block.kind === "json") {
            block.empty = false
            return [chunk({ content: delta.partial_json })]
          }
          if (block.kind !== "tool") return []
          block.empty = false
          return [toolDelta(block.tool, { function: { arguments: delta.partial_json } })]
        }
        if (block?.kind !== "thinking") return []
        if ("thinking" in delta) {
          block.text += delta.thinking
          return delta.thinking === "" ? [] : [chunk({ reasoning_content: delta.thinking })]
        }
        if ("signature" in delta) block.signature += delta.signature
        return []
      }
      case "content_block_stop": {
        const block = blocks.get(data.index)
        blocks.delete(data.index)
        if (block?.kind === "tool" && block.empty) return [toolDelta(block.tool, { function: { arguments: "{}" } })]
        if (block?.kind === "json" && block.empty) return [chunk({ content: "{}" })]
        if (block?.kind === "thinking") {
          return [chunk({ thinking_blocks: [{ type: "thinking", thinking: block.text, signature: block.signature }] })]
        }
        return []
      }
      case "message_delta": {
        count(data.usage)
        const stop = data.delta.stop_reason
        const finish = jsonTool !== undefined && stop === "tool_use" ? "stop" : AnthropicMessages.finishReason(stop)
        return [chunk({}, finish, AnthropicMessages.toUsage({ input_tokens: 0, output_tokens: 0, ...usage }))]
      }
      case "message_stop":
        return ProviderReply.Done
      case "error":
        return ProviderReply.embeddedError(model.id, data.error, "event in the stream")
    }
  }
}
