/**
 * Anthropic's stream events mapped to OpenAI chunks by `eventParser`, fed
 * events directly (DESIGN §6): what each event gives, compared whole, in
 * order. Text deltas become content; tool_use blocks tool-call deltas whose
 * `index` counts tool blocks only; thinking `reasoning_content` and, at its
 * end, a whole `thinking_blocks` entry; the JSON tool's input the content;
 * `message_delta` the finish reason and the usage; `message_stop` the end.
 * The same stream over HTTP is in AnthropicStream.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ChatCompletion, ModelId, ProviderError } from "@ironlabsai/core"
import { ProviderReply } from "@ironlabsai/http"
import { AnthropicStream } from "../src/index.js"

const MODEL = ModelId.parse("anthropic/claude-3-5-haiku-20241022")!

type Result = ReturnType<ProviderReply.EventParser>
type Delta = ChatCompletion.ChatCompletionChunk["choices"][number]["delta"]

/** An event as the SSE parser gives it, named after its type as Anthropic names them. */
const ev = (
  data: { readonly type: string } & Readonly<Record<string, unknown>>,
  name: string | undefined = data.type
) => (name === undefined ? { data: JSON.stringify(data) } : { event: name, data: JSON.stringify(data) })

const messageStart = (usage: Readonly<Record<string, number>> = { input_tokens: 12, output_tokens: 1 }) =>
  ev({
    type: "message_start",
    message: {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-3-5-haiku-20241022",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage
    }
  })
const blockStart = (index: number, content_block: Readonly<Record<string, unknown>>) =>
  ev({ type: "content_block_start", index, content_block })
const textStart = (index: number) => blockStart(index, { type: "text", text: "" })
const toolStart = (index: number, id: string, name: string) =>
  blockStart(index, { type: "tool_use", id, name, input: {} })
const blockDelta = (index: number, delta: Readonly<Record<string, unknown>>) =>
  ev({ type: "content_block_delta", index, delta })
const textDelta = (index: number, text: string) => blockDelta(index, { type: "text_delta", text })
const jsonDelta = (index: number, partial_json: string) => blockDelta(index, { type: "input_json_delta", partial_json })
const blockStop = (index: number) => ev({ type: "content_block_stop", index })
const messageDelta = (stop_reason: string | null, usage: Readonly<Record<string, number>> = { output_tokens: 15 }) =>
  ev({ type: "message_delta", delta: { stop_reason, stop_sequence: null }, usage })
const messageStop = ev({ type: "message_stop" })
const ping = ev({ type: "ping" })

/** When the stream started, as the provider reads it from the Effect clock. */
const CREATED = 1_750_000_000

/** What the parser gives for each event, in order; `created` is read from the first chunk. */
const run = (events: ReadonlyArray<{ readonly event?: string; readonly data: string }>, jsonTool?: string) => {
  const parse = AnthropicStream.eventParser(MODEL, { jsonTool, created: CREATED })
  const results: Array<Result> = events.map((event) => parse(event))
  const first = results.find((result): result is ReadonlyArray<ChatCompletion.ChatCompletionChunk> =>
    Array.isArray(result)
  )
  return { results, created: first?.[0]?.created ?? 0 }
}

/** One expected chunk of the stream `msg_1`. */
const chunkOf =
  (created: number) =>
  (
    delta: Delta,
    finish: ChatCompletion.FinishReason | null = null,
    usage?: ChatCompletion.Usage
  ): ChatCompletion.ChatCompletionChunk => ({
    id: "msg_1",
    object: "chat.completion.chunk",
    created,
    model: MODEL.name,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(usage === undefined ? {} : { usage })
  })

const usage = (prompt: number, completion: number, cached = 0): ChatCompletion.Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  prompt_tokens_details: { cached_tokens: cached }
})

/** The fields of a ProviderError that say what happened. */
const errorOf = (result: Result) => {
  assert.instanceOf(result, ProviderError.ProviderError)
  const error = result as ProviderError.ProviderError
  return { reason: error.reason, model: error.model, description: error.description }
}

describe("eventParser", () => {
  it("maps a text stream: the role, each text delta, the finish with usage, and Done at message_stop", () => {
    const { results, created } = run([
      messageStart(),
      textStart(0),
      ping,
      textDelta(0, "Hello"),
      textDelta(0, ", world."),
      blockStop(0),
      messageDelta("end_turn"),
      messageStop
    ])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [
      [chunk({ role: "assistant", content: "" })],
      [],
      [],
      [chunk({ content: "Hello" })],
      [chunk({ content: ", world." })],
      [],
      [chunk({}, "stop", usage(12, 15))],
      ProviderReply.Done
    ])
    assert.strictEqual(created, CREATED)
  })

  it("gives a text block's opening text as content, and nothing for an empty text delta", () => {
    const { results, created } = run([
      messageStart(),
      blockStart(0, { type: "text", text: "Hi" }),
      textDelta(0, ""),
      blockStop(0)
    ])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [[chunk({ role: "assistant", content: "" })], [chunk({ content: "Hi" })], [], []])
  })

  it("maps two tool_use blocks after a text block to tool calls 0 and 1, id, type and name on the first delta", () => {
    const { results, created } = run([
      messageStart(),
      textStart(0),
      textDelta(0, "Let me check."),
      blockStop(0),
      toolStart(1, "toolu_1", "get_weather"),
      jsonDelta(1, '{"city":'),
      jsonDelta(1, ' "Paris"}'),
      blockStop(1),
      toolStart(2, "toolu_2", "get_time"),
      jsonDelta(2, '{"tz":"CET"}'),
      blockStop(2),
      messageDelta("tool_use"),
      messageStop
    ])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [
      [chunk({ role: "assistant", content: "" })],
      [],
      [chunk({ content: "Let me check." })],
      [],
      [
        chunk({
          tool_calls: [{ index: 0, id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "" } }]
        })
      ],
      [chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] })],
      [chunk({ tool_calls: [{ index: 0, function: { arguments: ' "Paris"}' } }] })],
      [],
      [
        chunk({
          tool_calls: [{ index: 1, id: "toolu_2", type: "function", function: { name: "get_time", arguments: "" } }]
        })
      ],
      [chunk({ tool_calls: [{ index: 1, function: { arguments: '{"tz":"CET"}' } }] })],
      [],
      [chunk({}, "tool_calls", usage(12, 15))],
      ProviderReply.Done
    ])
  })

  it("gives a tool call without input_json_delta one arguments {} delta at its content_block_stop", () => {
    const { results, created } = run([messageStart(), toolStart(0, "toolu_1", "now"), blockStop(0)])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [
      [chunk({ role: "assistant", content: "" })],
      [
        chunk({ tool_calls: [{ index: 0, id: "toolu_1", type: "function", function: { name: "now", arguments: "" } }] })
      ],
      [chunk({ tool_calls: [{ index: 0, function: { arguments: "{}" } }] })]
    ])
  })

  it("gives a tool call whose only input_json_delta is empty one arguments {} delta at its content_block_stop", () => {
    const { results, created } = run([messageStart(), toolStart(0, "toolu_1", "now"), jsonDelta(0, ""), blockStop(0)])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [
      [chunk({ role: "assistant", content: "" })],
      [
        chunk({ tool_calls: [{ index: 0, id: "toolu_1", type: "function", function: { name: "now", arguments: "" } }] })
      ],
      [],
      [chunk({ tool_calls: [{ index: 0, function: { arguments: "{}" } }] })]
    ])
  })

  it("maps thinking deltas to reasoning_content, and the whole block with its signature to thinking_blocks at its stop", () => {
    const { results, created } = run([
      messageStart(),
      blockStart(0, { type: "thinking", thinking: "", signature: "" }),
      blockDelta(0, { type: "thinking_delta", thinking: "Let me " }),
      blockDelta(0, { type: "thinking_delta", thinking: "think." }),
      blockDelta(0, { type: "signature_delta", signature: "EqQB" }),
      blockDelta(0, { type: "signature_delta", signature: "Kx9=" }),
      blockStop(0),
      textStart(1),
      textDelta(1, "42."),
      blockStop(1),
      messageDelta("end_turn"),
      messageStop
    ])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [
      [chunk({ role: "assistant", content: "" })],
      [],
      [chunk({ reasoning_content: "Let me " })],
      [chunk({ reasoning_content: "think." })],
      [],
      [],
      [chunk({ thinking_blocks: [{ type: "thinking", thinking: "Let me think.", signature: "EqQBKx9=" }] })],
      [],
      [chunk({ content: "42." })],
      [],
      [chunk({}, "stop", usage(12, 15))],
      ProviderReply.Done
    ])
  })

  it("passes a redacted thinking block on whole, in thinking_blocks", () => {
    const { results, created } = run([
      messageStart(),
      blockStart(0, { type: "redacted_thinking", data: "opaque" }),
      blockStop(0)
    ])
    const chunk = chunkOf(created)
    assert.deepStrictEqual(results, [
      [chunk({ role: "assistant", content: "" })],
      [chunk({ thinking_blocks: [{ type: "redacted_thinking", data: "opaque" }] })],
      []
    ])
  })

  describe("a JSON response", () => {
    it("streams the JSON tool's input as content, not a tool call, and finishes with stop", () => {
      const { results, created } = run(
        [
          messageStart(),
          toolStart(0, "toolu_1", "forecast"),
          jsonDelta(0, '{"temp":'),
          jsonDelta(0, "18}"),
          blockStop(0),
          messageDelta("tool_use"),
          messageStop
        ],
        "forecast"
      )
      const chunk = chunkOf(created)
      assert.deepStrictEqual(results, [
        [chunk({ role: "assistant", content: "" })],
        [],
        [chunk({ content: '{"temp":' })],
        [chunk({ content: "18}" })],
        [],
        [chunk({}, "stop", usage(12, 15))],
        ProviderReply.Done
      ])
    })

    it("gives {} as the content of a JSON tool call without input", () => {
      const { results, created } = run(
        [
          messageStart(),
          toolStart(0, "toolu_1", "json_object"),
          jsonDelta(0, ""),
          blockStop(0),
          messageDelta("tool_use")
        ],
        "json_object"
      )
      const chunk = chunkOf(created)
      assert.deepStrictEqual(results, [
        [chunk({ role: "assistant", content: "" })],
        [],
        [],
        [chunk({ content: "{}" })],
        [chunk({}, "stop", usage(12, 15))]
      ])
    })

    it("finishes with length when the JSON was cut off at max_tokens", () => {
      const { results, created } = run(
        [messageStart(), toolStart(0, "toolu_1", "json_object"), jsonDelta(0, '{"a":'), messageDelta("max_tokens")],
        "json_object"
      )
      assert.deepStrictEqual(results.at(-1), [chunkOf(created)({}, "length", usage(12, 15))])
    })

    it("counts other tools from 0 beside the JSON tool", () => {
      const { results, created } = run(
        [messageStart(), toolStart(0, "toolu_1", "json_object"), blockStop(0), toolStart(1, "toolu_2", "other")],
        "json_object"
      )
      assert.deepStrictEqual(results.at(-1), [
        chunkOf(created)({
          tool_calls: [{ index: 0, id: "toolu_2", type: "function", function: { name: "other", arguments: "" } }]
        })
      ])
    })
  })

  describe("usage", () => {
    it("merges message_delta's output count with message_start's input and cache counts", () => {
      const { results, created } = run([
        messageStart({
          input_tokens: 12,
          output_tokens: 1,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 20
        }),
        messageDelta("end_turn", { output_tokens: 15 })
      ])
      assert.deepStrictEqual(results[1], [chunkOf(created)({}, "stop", usage(132, 15, 100))])
    })

    it("takes the counts message_delta repeats, as newer API versions send them", () => {
      const { results, created } = run([
        messageStart({ input_tokens: 12, output_tokens: 1 }),
        messageDelta("max_tokens", {
          input_tokens: 12,
          output_tokens: 30,
          cache_read_input_tokens: 7,
          cache_creation_input_tokens: 3
        })
      ])
      assert.deepStrictEqual(results[1], [chunkOf(created)({}, "length", usage(22, 30, 7))])
    })
  })

  it("maps each stop_reason of message_delta to its finish_reason", () => {
    const cases: ReadonlyArray<readonly [string | null, ChatCompletion.FinishReason]> = [
      ["end_turn", "stop"],
      ["stop_sequence", "stop"],
      ["max_tokens", "length"],
      ["tool_use", "tool_calls"],
      ["refusal", "content_filter"],
      [null, "stop"]
    ]
    for (const [stop, finish] of cases) {
      const { results, created } = run([messageStart(), messageDelta(stop)])
      assert.deepStrictEqual(results[1], [chunkOf(created)({}, finish, usage(12, 15))], String(stop))
    }
  })

  describe("events that carry nothing", () => {
    it("ignores ping, unknown events by name (whatever their data) and unknown event types", () => {
      const { results } = run([
        messageStart(),
        ping,
        ev({ type: "ping" }, undefined),
        { event: "future_event", data: "not json at all" },
        ev({ type: "future_event", detail: 1 }, undefined),
        ev({ type: "future_event" }, "message")
      ])
      assert.deepStrictEqual(results.slice(1), [[], [], [], [], []])
    })

    it("ignores deltas of unknown types and blocks of other kinds", () => {
      const { results } = run([
        messageStart(),
        textStart(0),
        blockDelta(0, { type: "citations_delta", citation: { type: "char_location" } }),
        blockStart(1, { type: "server_tool_use", id: "srvtoolu_1", name: "web_search", input: {} }),
        jsonDelta(1, '{"query":"x"}'),
        blockStop(1),
        jsonDelta(9, "{}")
      ])
      assert.deepStrictEqual(results.slice(2), [[], [], [], [], []])
    })
  })

  describe("failures", () => {
    it("classifies an error event by its type", () => {
      const { results } = run([
        messageStart(),
        ev({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })
      ])
      assert.deepStrictEqual(errorOf(results[1]!), {
        reason: "Overloaded",
        model: MODEL.id,
        description: "error event in the stream: overloaded_error: Overloaded"
      })
    })

    it("makes an error event of an unknown type a ServerError", () => {
      const { results } = run([ev({ type: "error", error: { type: "mystery_error" } })])
      assert.deepStrictEqual(errorOf(results[0]!), {
        reason: "ServerError",
        model: MODEL.id,
        description: "error event in the stream: mystery_error: "
      })
    })

    it("refuses an event whose data is not JSON as a MalformedResponse", () => {
      const { results } = run([messageStart(), { event: "content_block_delta", data: "{not json" }])
      assert.deepStrictEqual(errorOf(results[1]!), {
        reason: "MalformedResponse",
        model: MODEL.id,
        description: 'unexpected event: "{not json"'
      })
    })

    it("refuses JSON without a type as a MalformedResponse", () => {
      const { results } = run([{ data: '{"index":0}' }])
      assert.deepStrictEqual(errorOf(results[0]!), {
        reason: "MalformedResponse",
        model: MODEL.id,
        description: 'unexpected event: "{\\"index\\":0}"'
      })
    })

    it("refuses a known event of the wrong shape as a MalformedResponse", () => {
      const data = '{"type":"content_block_delta","index":"zero"}'
      const { results } = run([{ event: "content_block_delta", data }])
      assert.deepStrictEqual(errorOf(results[0]!), {
        reason: "MalformedResponse",
        model: MODEL.id,
        description: `unexpected content_block_delta event: ${JSON.stringify(data)}`
      })
    })
  })

  it("ends at message_stop with Done", () => {
    assert.deepStrictEqual(run([messageStart(), messageStop]).results[1], ProviderReply.Done)
    assert.strictEqual(AnthropicStream.eventParser(MODEL, { created: CREATED })(messageStop), ProviderReply.Done)
  })
})

describe("usage counts a later event sends as null or leaves out", () => {
  it("keep the values message_start gave", () => {
    const start = ev({
      type: "message_start",
      message: {
        id: "msg_1",
        type: "message",
        role: "assistant",
        content: [],
        usage: { input_tokens: 15, cache_read_input_tokens: 100, cache_creation_input_tokens: 0, output_tokens: 1 }
      }
    })
    const delta = ev({
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { input_tokens: null, cache_read_input_tokens: null, output_tokens: 9 }
    })
    const [, last] = run([start, delta]).results as ReadonlyArray<ReadonlyArray<ChatCompletion.ChatCompletionChunk>>
    assert.deepStrictEqual(last?.[0]?.usage, {
      prompt_tokens: 115,
      completion_tokens: 9,
      total_tokens: 124,
      prompt_tokens_details: { cached_tokens: 100 }
    })
  })
})
