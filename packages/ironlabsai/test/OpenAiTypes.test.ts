/**
 * The request is OpenAI's, as the official `openai` package types it (DESIGN
 * §6): any `ChatCompletionCreateParams` without `model` passes to `create`
 * without a cast, through the Promise facade and the Effect API, and the
 * OpenAI wire sends it whole.
 */
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import type { IronlabsClient as CoreClient } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI, IronlabsClient } from "ironlabsai"
import type OpenAI from "openai"
import { clientLayer } from "./support.js"
import { Effect, Stream } from "effect"

type NonStreaming = Omit<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, "model">
type Streaming = Omit<OpenAI.Chat.ChatCompletionCreateParamsStreaming, "model">

// Compile-time checks: these functions type-check only if every request the `openai` package types is accepted.
export const facade = (client: IronlabsAI, params: NonStreaming, streaming: Streaming) => [
  client.completions.create(params),
  client.completions.create(streaming)
]
export const effect = (client: CoreClient.IronlabsClient["Type"], params: NonStreaming, streaming: Streaming) => [
  client.completions.create(params),
  client.completions.create(streaming)
]
/** A history kept as the `openai` package types it (a mutable array, not a tuple). */
export const history = (client: IronlabsAI, messages: Array<OpenAI.Chat.ChatCompletionMessageParam>) =>
  client.completions.create({ messages })

const GPT = "openai/gpt-4o"

/** An agent's request, typed by the `openai` package: every role, images, a tool round trip, tools, structured output. */
const params: NonStreaming = {
  messages: [
    { role: "developer", content: "You are a travel agent." },
    { role: "system", content: [{ type: "text", text: "Answer briefly." }] },
    {
      role: "user",
      content: [
        { type: "text", text: "Where is this, and what is the weather there?" },
        { type: "image_url", image_url: { url: "https://example.com/paris.jpg", detail: "low" } },
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }
      ],
      name: "alice"
    },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } }]
    },
    { role: "tool", tool_call_id: "call_1", content: "18 C, sunny" }
  ],
  tools: [
    {
      type: "function",
      function: {
        name: "weather",
        description: "The weather in a city",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        strict: true
      }
    }
  ],
  tool_choice: "auto",
  parallel_tool_calls: false,
  response_format: {
    type: "json_schema",
    json_schema: {
      name: "answer",
      schema: { type: "object", properties: { place: { type: "string" } }, required: ["place"] },
      strict: true
    }
  },
  n: 1,
  logprobs: true,
  top_logprobs: 2,
  logit_bias: { "50256": -100 },
  reasoning_effort: "low",
  service_tier: "default",
  seed: 7,
  stop: ["END"],
  user: "user-1",
  metadata: { session: "s-1" },
  store: false,
  temperature: 0.2,
  top_p: null,
  max_completion_tokens: 300,
  frequency_penalty: 0,
  presence_penalty: null
}

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ openaiApiKey: "sk-openai-test" })
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

describe("a request typed by the openai package", () => {
  it("goes through the facade and reaches the OpenAI wire whole", async () => {
    const client = new IronlabsAI({
      reliability: { failover_chain: [{ model: GPT }] },
      openai: { apiKey: "sk-openai-test", baseURL: sim.openaiBaseUrl }
    })
    try {
      const response = await client.completions.create(params)
      assert.strictEqual(response.model, GPT)
      assert.deepStrictEqual(sim.requests[0]?.body, { ...params, model: "gpt-4o" })
    } finally {
      await client.close()
    }
  })

  it("goes through the Effect API and reaches the OpenAI wire whole, streamed too", async () => {
    const program = Effect.gen(function* () {
      const client = yield* IronlabsClient
      yield* client.completions.create(params)
      const streaming: Streaming = { ...params, stream: true }
      yield* Stream.runDrain(client.completions.create(streaming))
    })
    await Effect.runPromise(program.pipe(Effect.provide(clientLayer(sim, { failover_chain: [{ model: GPT }] }))))
    assert.deepStrictEqual(sim.requests[0]?.body, { ...params, model: "gpt-4o" })
    assert.deepStrictEqual(sim.requests[1]?.body, {
      ...params,
      model: "gpt-4o",
      stream: true,
      stream_options: { include_usage: true }
    })
  })
})
