/**
 * Tools and structured output end to end (DESIGN §6), against the simulator
 * over HTTP, on both wires: an agent loop written against the `openai`
 * package's types (parallel tool calls, the results sent back, streamed and
 * not) through the Promise facade, a JSON-schema extraction through the
 * Effect API, and the "not servable" rule on weighted and ordered configs.
 */
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import type { Reliability } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI, IronlabsClient } from "ironlabsai"
import type OpenAI from "openai"
import { clientLayer } from "./support.js"
import { Effect, JSONSchema, Schema } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const wires = [
  { model: GPT, wireModel: "gpt-4o", wire: "openai" },
  { model: HAIKU, wireModel: "claude-3-5-haiku-20241022", wire: "anthropic" }
] as const

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ openaiApiKey: "sk-openai-test", anthropicApiKey: "sk-ant-test" })
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

const connect = (reliability: Reliability.Input) => {
  const client = new IronlabsAI({
    reliability,
    openai: { apiKey: "sk-openai-test", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-ant-test", baseURL: sim.anthropicBaseUrl }
  })
  clients.push(client)
  return client
}

const weatherTool: OpenAI.Chat.ChatCompletionTool = {
  type: "function",
  function: {
    name: "weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }
}
const question: OpenAI.Chat.ChatCompletionMessageParam = {
  role: "user",
  content: "What is the weather in Paris and London?"
}
const parallelCalls = [
  { id: "call_paris", name: "weather", arguments: { city: "Paris" } },
  { id: "call_london", name: "weather", arguments: { city: "London" } }
]
const expectedCalls: Array<OpenAI.Chat.ChatCompletionMessageFunctionToolCall> = [
  { id: "call_paris", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } },
  { id: "call_london", type: "function", function: { name: "weather", arguments: '{"city":"London"}' } }
]
const weather: Readonly<Record<string, string>> = { Paris: "18 C", London: "12 C" }

/** What the second request of the loop must carry on each wire: the calls, and their results after them. */
const expectedHistory = (wire: "openai" | "anthropic") =>
  wire === "openai"
    ? [
        question,
        { role: "assistant", content: null, refusal: null, tool_calls: expectedCalls },
        { role: "tool", tool_call_id: "call_paris", content: "18 C" },
        { role: "tool", tool_call_id: "call_london", content: "12 C" }
      ]
    : [
        question,
        {
          role: "assistant",
          content: [
            { type: "tool_use", id: "call_paris", name: "weather", input: { city: "Paris" } },
            { type: "tool_use", id: "call_london", name: "weather", input: { city: "London" } }
          ]
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_paris", content: "18 C" },
            { type: "tool_result", tool_use_id: "call_london", content: "12 C" }
          ]
        }
      ]

/** The tool results for an answer's calls, as the `openai` package types them. */
const results = (calls: ReadonlyArray<{ readonly id: string; readonly arguments: string }>) =>
  calls.map(
    (call): OpenAI.Chat.ChatCompletionToolMessageParam => ({
      role: "tool",
      tool_call_id: call.id,
      content: weather[(JSON.parse(call.arguments) as { city: string }).city]!
    })
  )

describe.each(wires)("an agent loop through the facade, on $wire", ({ model, wireModel, wire }) => {
  it("parallel tool calls come back as tool_calls; their results go back; the answer follows", async () => {
    sim.script(wireModel, { toolCalls: parallelCalls }, { content: "Paris is warmer." })
    const client = connect({ failover_chain: [{ model }] })
    const messages: Array<OpenAI.Chat.ChatCompletionMessageParam> = [question]
    const first = await client.completions.create({ messages, tools: [weatherTool] })
    const message = first.choices[0]!.message
    assert.strictEqual(first.choices[0]!.finish_reason, "tool_calls")
    assert.strictEqual(message.content, null)
    assert.deepStrictEqual(message.tool_calls, expectedCalls)
    // The answer's message goes onto a history typed by the `openai` package, as agent loops do.
    messages.push(message)
    messages.push(
      ...results(
        (message.tool_calls ?? []).flatMap((c) => (c.type === "function" ? [{ id: c.id, ...c.function }] : []))
      )
    )
    const second = await client.completions.create({ messages, tools: [weatherTool] })
    assert.strictEqual(second.choices[0]!.message.content, "Paris is warmer.")
    assert.strictEqual(second.model, model)
    // Both requests were accepted by the simulator, which refuses a tool call without its result as the real APIs do.
    assert.deepStrictEqual(
      sim.requests.map((r) => r.wire),
      [wire, wire]
    )
    assert.deepStrictEqual((sim.requests[1]!.body as { messages: unknown }).messages, expectedHistory(wire))
  })

  it("streamed: tool-call deltas assemble into the same calls", async () => {
    sim.script(wireModel, { toolCalls: parallelCalls })
    const client = connect({ failover_chain: [{ model }] })
    const stream = await client.completions.create({ messages: [question], tools: [weatherTool], stream: true })
    const calls: Array<{ id: string; name: string; arguments: string }> = []
    let finish: string | null = null
    for await (const chunk of stream) {
      assert.strictEqual(chunk.model, model)
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
        calls[delta.index] ??= { id: "", name: "", arguments: "" }
        const call = calls[delta.index]!
        call.id ||= delta.id ?? ""
        call.name ||= delta.function?.name ?? ""
        call.arguments += delta.function?.arguments ?? ""
      }
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    assert.strictEqual(finish, "tool_calls")
    assert.deepStrictEqual(
      calls,
      expectedCalls.map((c) => ({ id: c.id, ...c.function }))
    )
  })

  it("a call without arguments arrives as {} streamed and not", async () => {
    sim.script(
      wireModel,
      { toolCalls: [{ id: "call_now", name: "now" }] },
      { toolCalls: [{ id: "call_now", name: "now" }] }
    )
    const client = connect({ failover_chain: [{ model }] })
    const tools: Array<OpenAI.Chat.ChatCompletionTool> = [{ type: "function", function: { name: "now" } }]
    const answer = await client.completions.create({ messages: [question], tools })
    assert.deepStrictEqual(answer.choices[0]!.message.tool_calls, [
      { id: "call_now", type: "function", function: { name: "now", arguments: "{}" } }
    ])
    let args = ""
    for await (const chunk of await client.completions.create({ messages: [question], tools, stream: true })) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) args += delta.function?.arguments ?? ""
    }
    assert.strictEqual(args, "{}")
  })
})

const Forecast = Schema.Struct({ city: Schema.String, celsius: Schema.Number })

describe.each(wires)("a JSON-schema extraction through the Effect API, on $wire", ({ model, wireModel, wire }) => {
  it("the JSON comes back in message.content and decodes with the Schema", async () => {
    sim.script(wireModel, { json: { city: "Paris", celsius: 18 } })
    const program = Effect.gen(function* () {
      const client = yield* IronlabsClient
      const answer = yield* client.completions.create({
        messages: [{ role: "user", content: "Paris is at 18 degrees today." }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "forecast", schema: { ...JSONSchema.make(Forecast) } }
        }
      })
      assert.strictEqual(answer.choices[0]!.finish_reason, "stop")
      return yield* Schema.decode(Schema.parseJson(Forecast))(answer.choices[0]!.message.content ?? "")
    })
    const forecast = await Effect.runPromise(
      program.pipe(Effect.provide(clientLayer(sim, { failover_chain: [{ model }] })))
    )
    assert.deepStrictEqual(forecast, { city: "Paris", celsius: 18 })
    const sent = sim.requests[0]!.body as Record<string, unknown>
    if (wire === "anthropic") {
      // A forced tool carries the schema: the only way every Anthropic model answers in it.
      assert.deepStrictEqual(sent["tool_choice"], { type: "tool", name: "forecast" })
    } else {
      assert.deepInclude(sent["response_format"] as object, { type: "json_schema" })
    }
  })
})

describe("a request no Anthropic model can serve", () => {
  it("weighted: every request goes to the model that can serve it, and a skip costs no call", async () => {
    const client = connect({ weights: { [GPT]: 0.5, [HAIKU]: 0.5 } })
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => client.completions.create({ messages: [question], n: 2 }))
    )
    assert.isTrue(answers.every((a) => a.model === GPT))
    assert.isTrue(sim.requests.every((r) => r.wire === "openai"))
    assert.strictEqual(sim.requests.length, 20)
    const skips = answers.flatMap((a) => a.attempts.filter((attempt) => attempt.outcome === "skipped"))
    // With 20 even draws claude is drawn at least once, but for one run in a million.
    assert.isAbove(skips.length, 0)
    assert.isTrue(skips.every((s) => s.model === HAIKU && s.skip?.reason === "unsupported"))
  })

  it("ordered, with drop_unsupported_params: claude gets the request without the field, and the trace says so", async () => {
    const client = connect({ failover_chain: [{ model: HAIKU }, { model: GPT }], drop_unsupported_params: true })
    const answer = await client.completions.create({ messages: [question], seed: 7, logprobs: true })
    assert.strictEqual(answer.model, HAIKU)
    assert.deepStrictEqual(answer.attempts[0]?.dropped, ["logprobs", "seed"])
    assert.deepStrictEqual(
      sim.requests.map((r) => r.wire),
      ["anthropic"]
    )
  })

  it("ordered, without: claude is skipped, naming the fields", async () => {
    const client = connect({ failover_chain: [{ model: HAIKU }, { model: GPT }] })
    const answer = await client.completions.create({ messages: [question], seed: 7 })
    assert.strictEqual(answer.model, GPT)
    assert.deepStrictEqual(answer.attempts[0]?.skip, { reason: "unsupported", fields: ["seed"] })
  })
})
