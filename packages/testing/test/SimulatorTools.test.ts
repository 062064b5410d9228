import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Cause } from "effect"
import * as Simulator from "../src/Simulator.js"

const send = (
  url: string,
  init: { readonly method?: string; readonly body?: unknown; readonly headers?: Readonly<Record<string, string>> }
): Effect.Effect<Response, Cause.UnknownException> =>
  Effect.tryPromise(() =>
    fetch(url, {
      method: init.method ?? "POST",
      headers: { "content-type": "application/json", ...init.headers },
      ...(init.body === undefined
        ? {}
        : { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) })
    })
  )

const openai = (sim: Simulator.Simulator, body: unknown) => send(`${sim.openaiBaseUrl}/chat/completions`, { body })
const anthropic = (sim: Simulator.Simulator, body: unknown) => send(`${sim.anthropicBaseUrl}/v1/messages`, { body })

const json = (response: Response) => Effect.tryPromise(() => response.json() as Promise<Record<string, unknown>>)
const text = (response: Response) => Effect.tryPromise(() => response.text())

/** The JSON payloads of an event stream, `[DONE]` left out. */
const payloads = (sse: string): ReadonlyArray<Record<string, unknown>> =>
  sse
    .split("\n")
    .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
    .map((line) => JSON.parse(line.slice("data: ".length)) as Record<string, unknown>)

/** The `choices[0]` of each OpenAI chunk, without its constant `index` and `logprobs`. */
const choicesOf = (sse: string) =>
  payloads(sse).map((chunk) => {
    const [choice] = (chunk["choices"] ?? []) as ReadonlyArray<Record<string, unknown>>
    return choice === undefined ? null : { delta: choice["delta"], finish_reason: choice["finish_reason"] }
  })

const messageOf = (body: Record<string, unknown>) =>
  (body["choices"] as ReadonlyArray<{ readonly message: unknown; readonly finish_reason: unknown }>)[0]

/** The `content` of a chat completion's message. */
const contentOf = (body: Record<string, unknown>): unknown =>
  (messageOf(body)?.message as { readonly content?: unknown } | undefined)?.content

const chatRequest = { model: "gpt-4o", messages: [{ role: "user", content: "Weather in Paris?" }] }
const messagesRequest = {
  model: "claude",
  max_tokens: 64,
  messages: [{ role: "user", content: "Weather in Paris?" }]
}

const weather = { city: "Paris", unit: "celsius" }
/** `{"city":"Paris","unit":"celsius"}` in pieces of 8 characters. */
const weatherPieces = ['{"city":', '"Paris",', '"unit":"', 'celsius"', "}"]
const parallelCalls: ReadonlyArray<Simulator.ToolCall> = [
  { name: "get_weather", arguments: weather },
  { name: "get_time" }
]

const weatherTool = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: {
    type: "object",
    properties: { city: { type: "string" }, unit: { enum: ["celsius", "fahrenheit"] }, days: { type: "integer" } },
    required: ["city", "unit"]
  }
}

describe("Simulator: tools, JSON mode, 400s and models", () => {
  describe("OpenAI tool calls", () => {
    it.scoped("answers parallel tool calls with content null, default ids and finish_reason tool_calls", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { toolCalls: parallelCalls })
        const body = yield* json(yield* openai(sim, chatRequest))
        assert.deepStrictEqual(body["choices"], [
          {
            index: 0,
            message: {
              role: "assistant",
              content: null,
              refusal: null,
              tool_calls: [
                {
                  id: "call_sim_1_0",
                  type: "function",
                  function: { name: "get_weather", arguments: JSON.stringify(weather) }
                },
                { id: "call_sim_1_1", type: "function", function: { name: "get_time", arguments: "{}" } }
              ]
            },
            finish_reason: "tool_calls",
            logprobs: null
          }
        ])
      })
    )

    it.scoped("keeps scripted content, ids and finish reason beside the tool calls", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", {
          content: "Let me check.",
          toolCalls: [{ id: "call_abc", name: "get_time" }],
          finishReason: "stop"
        })
        const choice = messageOf(yield* json(yield* openai(sim, chatRequest)))
        assert.deepStrictEqual(choice?.message, {
          role: "assistant",
          content: "Let me check.",
          refusal: null,
          tool_calls: [{ id: "call_abc", type: "function", function: { name: "get_time", arguments: "{}" } }]
        })
        assert.strictEqual(choice?.finish_reason, "stop")
      })
    )

    it.scoped("streams content, then each call's id and name, then its arguments in pieces of 8", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "Checking now", toolCalls: parallelCalls })
        const body = yield* text(yield* openai(sim, { ...chatRequest, stream: true }))
        assert.isTrue(body.endsWith("data: [DONE]\n\n"))
        assert.isTrue(payloads(body).every((chunk) => chunk["id"] === "chatcmpl-sim-1"))
        const call = (index: number, fields: Record<string, unknown>) => ({
          delta: { tool_calls: [{ index, ...fields }] },
          finish_reason: null
        })
        assert.deepStrictEqual(choicesOf(body), [
          { delta: { role: "assistant", content: "", refusal: null }, finish_reason: null },
          { delta: { content: "Checking " }, finish_reason: null },
          { delta: { content: "now" }, finish_reason: null },
          call(0, { id: "call_sim_1_0", type: "function", function: { name: "get_weather", arguments: "" } }),
          ...weatherPieces.map((piece) => call(0, { function: { arguments: piece } })),
          call(1, { id: "call_sim_1_1", type: "function", function: { name: "get_time", arguments: "" } }),
          call(1, { function: { arguments: "{}" } }),
          { delta: {}, finish_reason: "tool_calls" }
        ])
      })
    )

    it.scoped("a streamed answer of tool calls only has content null in its role chunk", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { toolCalls: [{ name: "get_time" }] })
        const body = yield* text(yield* openai(sim, { ...chatRequest, stream: true }))
        assert.deepStrictEqual(choicesOf(body)[0], {
          delta: { role: "assistant", content: null, refusal: null },
          finish_reason: null
        })
        assert.strictEqual(choicesOf(body).length, 4)
      })
    )

    it.scoped("errorAfterChunks counts the argument pieces as deltas, not the call's first chunk", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "Hi", toolCalls: parallelCalls, errorAfterChunks: 3 })
        const body = yield* text(yield* openai(sim, { ...chatRequest, stream: true }))
        const chunks = payloads(body)
        // role, "Hi", the first call's first chunk, two pieces of its arguments, the error
        assert.strictEqual(chunks.length, 6)
        assert.deepStrictEqual(
          choicesOf(body)
            .slice(3, 5)
            .map((choice) => choice?.delta),
          weatherPieces.slice(0, 2).map((piece) => ({ tool_calls: [{ index: 0, function: { arguments: piece } }] }))
        )
        assert.deepStrictEqual(chunks.at(-1), {
          error: { message: "Simulated server_error.", type: "server_error", param: null, code: null }
        })
      })
    )
  })

  describe("Anthropic tool calls and thinking", () => {
    it.scoped("answers parallel tool_use blocks without a text block, stop_reason tool_use", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { toolCalls: parallelCalls })
        const body = yield* json(yield* anthropic(sim, messagesRequest))
        assert.deepStrictEqual(body["content"], [
          { type: "tool_use", id: "toolu_sim_1_0", name: "get_weather", input: weather },
          { type: "tool_use", id: "toolu_sim_1_1", name: "get_time", input: {} }
        ])
        assert.strictEqual(body["stop_reason"], "tool_use")
      })
    )

    it.scoped("answers thinking, text and a tool call as three blocks in that order", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", {
          thinking: "The user wants the weather.",
          content: "Let me check.",
          toolCalls: [{ id: "toolu_1", name: "get_weather", arguments: weather }]
        })
        const body = yield* json(yield* anthropic(sim, messagesRequest))
        assert.deepStrictEqual(body["content"], [
          { type: "thinking", thinking: "The user wants the weather.", signature: "sig_sim_1" },
          { type: "text", text: "Let me check." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: weather }
        ])
        assert.strictEqual(body["stop_reason"], "tool_use")
      })
    )

    it.scoped("streams parallel tool_use blocks: input_json_delta pieces, one empty piece for {}", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { toolCalls: parallelCalls })
        const events = payloads(yield* text(yield* anthropic(sim, { ...messagesRequest, stream: true })))
        const json = (index: number, partial_json: string) => ({
          type: "content_block_delta",
          index,
          delta: { type: "input_json_delta", partial_json }
        })
        assert.deepStrictEqual(events.slice(1), [
          {
            type: "content_block_start",
            index: 0,
            content_block: { type: "tool_use", id: "toolu_sim_1_0", name: "get_weather", input: {} }
          },
          { type: "ping" },
          ...weatherPieces.map((piece) => json(0, piece)),
          { type: "content_block_stop", index: 0 },
          {
            type: "content_block_start",
            index: 1,
            content_block: { type: "tool_use", id: "toolu_sim_1_1", name: "get_time", input: {} }
          },
          json(1, ""),
          { type: "content_block_stop", index: 1 },
          {
            type: "message_delta",
            delta: { stop_reason: "tool_use", stop_sequence: null },
            usage: { output_tokens: 2 }
          },
          { type: "message_stop" }
        ])
      })
    )

    it.scoped("streams thinking (deltas by word, one signature_delta), then a tool call", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { thinking: "Need the weather", toolCalls: [{ name: "get_time" }] })
        const events = payloads(yield* text(yield* anthropic(sim, { ...messagesRequest, stream: true })))
        const delta = (index: number, fields: Record<string, unknown>) => ({
          type: "content_block_delta",
          index,
          delta: fields
        })
        assert.deepStrictEqual(events.slice(1, -2), [
          { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } },
          { type: "ping" },
          delta(0, { type: "thinking_delta", thinking: "Need " }),
          delta(0, { type: "thinking_delta", thinking: "the " }),
          delta(0, { type: "thinking_delta", thinking: "weather" }),
          delta(0, { type: "signature_delta", signature: "sig_sim_1" }),
          { type: "content_block_stop", index: 0 },
          {
            type: "content_block_start",
            index: 1,
            content_block: { type: "tool_use", id: "toolu_sim_1_0", name: "get_time", input: {} }
          },
          delta(1, { type: "input_json_delta", partial_json: "" }),
          { type: "content_block_stop", index: 1 }
        ])
        assert.deepStrictEqual(events.at(-2), {
          type: "message_delta",
          delta: { stop_reason: "tool_use", stop_sequence: null },
          usage: { output_tokens: 4 }
        })
      })
    )

    it.scoped("errorAfterChunks counts every content_block_delta, across blocks", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", {
          content: "Hi",
          toolCalls: [{ name: "get_weather", arguments: weather }],
          errorAfterChunks: 2,
          streamError: { type: "overloaded_error", message: "Overloaded" }
        })
        const events = payloads(yield* text(yield* anthropic(sim, { ...messagesRequest, stream: true })))
        assert.deepStrictEqual(
          events.map((event) => event["type"]),
          [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "error"
          ]
        )
        assert.deepStrictEqual(events[6], {
          type: "content_block_delta",
          index: 1,
          delta: { type: "input_json_delta", partial_json: weatherPieces[0] }
        })
      })
    )
  })

  describe("cache usage", () => {
    it.scoped("OpenAI: prompt_tokens_details.cached_tokens, in the body and the usage chunk", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const usage = { promptTokens: 100, completionTokens: 5, cachedTokens: 80 }
        sim.script("gpt-4o", { usage }, { usage })
        const expected = {
          prompt_tokens: 100,
          completion_tokens: 5,
          total_tokens: 105,
          prompt_tokens_details: { cached_tokens: 80 },
          completion_tokens_details: { reasoning_tokens: 0 }
        }
        assert.deepStrictEqual((yield* json(yield* openai(sim, chatRequest)))["usage"], expected)
        const streamed = yield* text(
          yield* openai(sim, { ...chatRequest, stream: true, stream_options: { include_usage: true } })
        )
        assert.deepStrictEqual(payloads(streamed).at(-1)?.["usage"], expected)
      })
    )

    it.scoped("Anthropic: cache_read_input_tokens and cache_creation_input_tokens, in the body and message_start", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const usage = { promptTokens: 20, completionTokens: 5, cachedTokens: 80, cacheCreationTokens: 30 }
        sim.script("claude", { usage }, { usage })
        assert.deepStrictEqual((yield* json(yield* anthropic(sim, messagesRequest)))["usage"], {
          input_tokens: 20,
          cache_creation_input_tokens: 30,
          cache_read_input_tokens: 80,
          output_tokens: 5
        })
        const [start] = payloads(yield* text(yield* anthropic(sim, { ...messagesRequest, stream: true })))
        assert.deepStrictEqual(start?.["message"], {
          id: "msg_sim_2",
          type: "message",
          role: "assistant",
          model: "claude",
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: {
            input_tokens: 20,
            cache_creation_input_tokens: 30,
            cache_read_input_tokens: 80,
            output_tokens: 1
          }
        })
      })
    )
  })

  describe("JSON mode", () => {
    const schema = {
      type: "object",
      properties: {
        name: { type: "string" },
        age: { type: "integer" },
        score: { type: "number" },
        admin: { type: "boolean" },
        tags: { type: "array", items: { type: "string" } },
        role: { enum: ["owner", "guest"] },
        nickname: { anyOf: [{ type: "null" }, { type: "string" }] },
        address: { $ref: "#/$defs/Address" },
        note: { type: "string" }
      },
      required: ["name", "age", "score", "admin", "tags", "role", "nickname", "address"],
      $defs: {
        Address: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
      }
    }
    const minimal = {
      name: "",
      age: 0,
      score: 0,
      admin: false,
      tags: [],
      role: "owner",
      nickname: null,
      address: { city: "" }
    }

    it.scoped("OpenAI: json_object gets {}, json_schema the smallest value of its schema", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const object = yield* json(yield* openai(sim, { ...chatRequest, response_format: { type: "json_object" } }))
        const structured = yield* json(
          yield* openai(sim, {
            ...chatRequest,
            response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } }
          })
        )
        assert.strictEqual(contentOf(object), "{}")
        assert.deepStrictEqual(JSON.parse(String(contentOf(structured))), minimal)
      })
    )

    it.scoped("a recursive schema ends, at a depth of 16", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const node = { $ref: "#/$defs/Node" }
        const recursive = {
          ...node,
          $defs: { Node: { type: "object", properties: { next: node }, required: ["next"] } }
        }
        const body = yield* json(
          yield* openai(sim, {
            ...chatRequest,
            response_format: { type: "json_schema", json_schema: { name: "list", schema: recursive } }
          })
        )
        const content = contentOf(body)
        // Each level of nesting takes a $ref and an object: 8 objects, then null.
        assert.strictEqual(content, `${'{"next":'.repeat(7)}{"next":null}${"}".repeat(7)}`)
      })
    )

    it.scoped("Anthropic: a forced tool gets a tool_use of it with the smallest input of its input_schema", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const forced = { ...messagesRequest, tools: [weatherTool], tool_choice: { type: "tool", name: "get_weather" } }
        const body = yield* json(yield* anthropic(sim, forced))
        assert.deepStrictEqual(body["content"], [
          { type: "tool_use", id: "toolu_sim_1_0", name: "get_weather", input: { city: "", unit: "celsius" } }
        ])
        assert.strictEqual(body["stop_reason"], "tool_use")
        // no forced tool: the default text
        const plain = yield* json(yield* anthropic(sim, { ...messagesRequest, tools: [weatherTool] }))
        assert.deepStrictEqual(plain["content"], [{ type: "text", text: "Simulated answer from claude." }])
      })
    )

    it.scoped("an explicit json value: OpenAI content, Anthropic the forced tool's input or else a text block", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const value = { city: "Paris", unit: "celsius" }
        sim.script("gpt-4o", { json: value })
        sim.script("claude", { json: value }, { json: value })
        const chat = yield* json(yield* openai(sim, { ...chatRequest, response_format: { type: "json_object" } }))
        const forced = yield* json(
          yield* anthropic(sim, {
            ...messagesRequest,
            tools: [weatherTool],
            tool_choice: { type: "tool", name: "get_weather" }
          })
        )
        const plain = yield* json(yield* anthropic(sim, messagesRequest))
        assert.strictEqual(contentOf(chat), JSON.stringify(value))
        assert.deepStrictEqual(forced["content"], [
          { type: "tool_use", id: "toolu_sim_2_0", name: "get_weather", input: value }
        ])
        assert.strictEqual(forced["stop_reason"], "tool_use")
        assert.deepStrictEqual(plain["content"], [{ type: "text", text: JSON.stringify(value) }])
        assert.strictEqual(plain["stop_reason"], "end_turn")
      })
    )
  })

  describe("the real APIs' 400s", () => {
    const openaiError = (message: string, param: string | null = null, code: string | null = null) => ({
      error: { message, type: "invalid_request_error", param, code }
    })
    const anthropicError = (message: string) => ({ type: "error", error: { type: "invalid_request_error", message } })
    const assistantCalls = (...ids: ReadonlyArray<string>) => ({
      role: "assistant",
      content: null,
      tool_calls: ids.map((id) => ({ id, type: "function", function: { name: "get_time", arguments: "{}" } }))
    })
    const toolMessage = (id: string) => ({ role: "tool", tool_call_id: id, content: "12:00" })
    const user = { role: "user", content: "What time is it?" }

    it.scoped("OpenAI: refuses each malformed request before its script, and records it", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("gpt-4o", { content: "scripted" })
        const cases: ReadonlyArray<readonly [unknown, unknown]> = [
          ["{not json", openaiError("We could not parse the JSON body of your request.")],
          [
            { model: "gpt-4o" },
            openaiError("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
          ],
          [
            { model: "gpt-4o", messages: "Hi" },
            openaiError("Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type")
          ],
          [
            { model: "gpt-4o", messages: [{ role: "robot", content: "Hi" }] },
            openaiError(
              "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
              "messages[0].role",
              "invalid_value"
            )
          ],
          [
            { model: "gpt-4o", messages: [user, toolMessage("call_1")] },
            openaiError(
              "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
              "messages.[1].role"
            )
          ],
          [
            { model: "gpt-4o", messages: [user, assistantCalls("call_1", "call_2"), toolMessage("call_1"), user] },
            openaiError(
              "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_2",
              "messages.[1].role"
            )
          ]
        ]
        for (const [body, error] of cases) {
          const response = yield* openai(sim, body)
          assert.strictEqual(response.status, 400)
          assert.deepStrictEqual(yield* json(response), error)
        }
        assert.strictEqual(sim.requests.length, cases.length)
        assert.strictEqual(sim.scripted("gpt-4o"), 1)
        // a well-formed tool conversation takes the script
        const ok = yield* openai(sim, {
          model: "gpt-4o",
          messages: [user, assistantCalls("call_1", "call_2"), toolMessage("call_2"), toolMessage("call_1")]
        })
        assert.strictEqual(ok.status, 200)
        assert.strictEqual(contentOf(yield* json(ok)), "scripted")
      })
    )

    it.scoped("Anthropic: refuses each malformed request before its script, and records it", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("claude", { content: "scripted" })
        const toolUse = (...ids: ReadonlyArray<string>) => ({
          role: "assistant",
          content: ids.map((id) => ({ type: "tool_use", id, name: "get_time", input: {} }))
        })
        const toolResult = (...ids: ReadonlyArray<string>) => ({
          role: "user",
          content: ids.map((id) => ({ type: "tool_result", tool_use_id: id, content: "12:00" }))
        })
        const user = { role: "user", content: "What time is it?" }
        const request = (messages: unknown) => ({ model: "claude", max_tokens: 64, messages })
        const cases: ReadonlyArray<readonly [unknown, string]> = [
          ["{not json", "There was an error parsing the body of your request"],
          [{ model: "claude", max_tokens: 64 }, "messages: Field required"],
          [request({ role: "user" }), "messages: Input should be a valid list"],
          [{ model: "claude", messages: [user] }, "max_tokens: Field required"],
          [
            request([{ role: "system", content: "Be brief" }]),
            "messages.0.role: Input should be 'user' or 'assistant'"
          ],
          [
            request([user, toolUse("toolu_1", "toolu_2"), toolResult("toolu_1")]),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_2. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
          ],
          [
            request([user, toolUse("toolu_1")]),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
          ],
          [
            request([user, toolUse("toolu_1"), toolResult("toolu_1", "toolu_9")]),
            "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
          ]
        ]
        for (const [body, message] of cases) {
          const response = yield* anthropic(sim, body)
          assert.strictEqual(response.status, 400)
          assert.deepStrictEqual(yield* json(response), anthropicError(message))
        }
        assert.strictEqual(sim.requests.length, cases.length)
        assert.isTrue(sim.requests.every((request) => request.wire === "anthropic" && request.outcome === "answered"))
        assert.strictEqual(sim.scripted("claude"), 1)
        const ok = yield* anthropic(sim, request([user, toolUse("toolu_1"), toolResult("toolu_1")]))
        assert.strictEqual(ok.status, 200)
        assert.deepStrictEqual((yield* json(ok))["content"], [{ type: "text", text: "scripted" }])
      })
    )

    it.scoped("validate: false takes any body to its script", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make({ validate: false })
        sim.script("gpt-4o", { content: "scripted" })
        const chat = yield* openai(sim, { model: "gpt-4o", messages: [toolMessage("call_1")] })
        const message = yield* anthropic(sim, { model: "claude" })
        assert.deepStrictEqual([chat.status, message.status], [200, 200])
        assert.strictEqual(contentOf(yield* json(chat)), "scripted")
      })
    )
  })

  describe("GET /v1/models", () => {
    const models = (sim: Simulator.Simulator, headers: Readonly<Record<string, string>> = {}) =>
      send(`${sim.url}/v1/models`, { method: "GET", headers })

    it.scoped("lists the OpenAI models and the scripted ones, in OpenAI's shape", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        sim.script("my-model", {})
        sim.script("gpt-4o", {})
        const response = yield* models(sim, { authorization: "Bearer sk" })
        assert.strictEqual(response.status, 200)
        assert.strictEqual(response.headers.get("x-request-id"), "req_sim_1")
        const entry = (id: string) => ({ id, object: "model", created: 1735689600, owned_by: "ironlabsai-simulator" })
        assert.deepStrictEqual(yield* json(response), {
          object: "list",
          data: [entry("gpt-4o"), entry("gpt-4o-mini"), entry("my-model")]
        })
        assert.deepStrictEqual(
          sim.requests.map((request) => [request.wire, request.method, request.path, request.outcome]),
          [["openai", "GET", "/v1/models", "answered"]]
        )
        assert.strictEqual(sim.scripted("gpt-4o"), 1)
      })
    )

    it.scoped("lists the Anthropic models in Anthropic's shape when the request has its headers", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make()
        const response = yield* models(sim, { "anthropic-version": "2023-06-01" })
        const entry = (id: string) => ({ type: "model", id, display_name: id, created_at: "2025-01-01T00:00:00Z" })
        assert.strictEqual(response.headers.get("request-id"), "req_sim_1")
        assert.deepStrictEqual(yield* json(response), {
          data: [entry("claude-3-5-haiku-20241022"), entry("claude-sonnet-4-20250514")],
          has_more: false,
          first_id: "claude-3-5-haiku-20241022",
          last_id: "claude-sonnet-4-20250514"
        })
        assert.strictEqual(sim.requests[0]?.wire, "anthropic")
      })
    )

    it.scoped("lists Options.models as given, and checks each wire's API key", () =>
      Effect.gen(function* () {
        const sim = yield* Simulator.make({ models: ["m1"], openaiApiKey: "sk-good", anthropicApiKey: "ant-good" })
        sim.script("scripted", {})
        const denied = yield* models(sim, { authorization: "Bearer sk-bad" })
        const deniedAnthropic = yield* models(sim, { "x-api-key": "ant-bad" })
        const allowed = yield* models(sim, { authorization: "Bearer sk-good" })
        const allowedAnthropic = yield* models(sim, { "x-api-key": "ant-good" })
        assert.deepStrictEqual(
          [denied.status, deniedAnthropic.status, allowed.status, allowedAnthropic.status],
          [401, 401, 200, 200]
        )
        assert.deepStrictEqual((yield* json(deniedAnthropic))["error"], {
          type: "authentication_error",
          message: "invalid x-api-key"
        })
        assert.deepStrictEqual(
          ((yield* json(allowed))["data"] as ReadonlyArray<{ readonly id: string }>).map((model) => model.id),
          ["m1"]
        )
        assert.deepStrictEqual((yield* json(allowedAnthropic))["first_id"], "m1")
        assert.deepStrictEqual(
          sim.requests.map((request) => request.wire),
          ["openai", "anthropic", "openai", "anthropic"]
        )
      })
    )
  })
})
