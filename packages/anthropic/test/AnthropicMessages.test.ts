/**
 * The Anthropic wire's translation, as pure functions (DESIGN §6): which
 * fields of an OpenAI request it cannot serve (`unsupportedFields`, each
 * path dropped leaving a servable request), the request in Anthropic's
 * format (`toRequestBody`), and Anthropic's message back as an OpenAI
 * `ChatCompletion` (`toChatCompletion`, `finishReason`). Bodies are compared
 * whole. The HTTP side is in AnthropicProvider.test.ts; the stream's events in
 * AnthropicStreamEvents.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion } from "@ironlabsai/core"
import { Either } from "effect"
import { AnthropicMessages } from "../src/index.js"

const WIRE_NAME = "claude-3-5-haiku-20241022"

/**
 * A request as the router gets it: decoded by `decodeRequest`, so every
 * example is a valid request and keeps the fields the schema does not name.
 */
const decode = (input: Readonly<Record<string, unknown>>): ChatCompletion.ChatCompletionRequest =>
  Either.getOrElse(ChatCompletion.decodeRequest(input), (error) => {
    throw new Error(`not a valid request: ${error.message}`)
  })

const user = (content: unknown) => ({ role: "user", content })
const hi = user("Hi")
/** A request of one user message and `fields`. */
const ask = (fields: Readonly<Record<string, unknown>> = {}) => decode({ messages: [hi], ...fields })

const PNG = "data:image/png;base64,iVBORw0KGgo="
const text = (value: string) => ({ type: "text", text: value })
const image = (url: string, detail?: "auto" | "low" | "high") => ({
  type: "image_url",
  image_url: { url, ...(detail === undefined ? {} : { detail }) }
})
const fn = (name: string, extra: Readonly<Record<string, unknown>> = {}) => ({
  type: "function",
  function: { name, parameters: { type: "object", properties: {} }, ...extra }
})
const call = (id: string, name: string, args: string) => ({
  id,
  type: "function",
  function: { name, arguments: args }
})

/** Each rule of `unsupportedFields`' doc comment: a request that breaks it, and the paths named. */
const refused: ReadonlyArray<readonly [string, Readonly<Record<string, unknown>>, ReadonlyArray<string>]> = [
  ["n > 1", { messages: [hi], n: 2 }, ["n"]],
  ["logprobs: true", { messages: [hi], logprobs: true }, ["logprobs"]],
  ["top_logprobs", { messages: [hi], logprobs: true, top_logprobs: 3 }, ["logprobs", "top_logprobs"]],
  ["temperature above 1", { messages: [hi], temperature: 1.5 }, ["temperature"]],
  ["seed", { messages: [hi], seed: 7 }, ["seed"]],
  ["presence_penalty", { messages: [hi], presence_penalty: 0.5 }, ["presence_penalty"]],
  ["frequency_penalty", { messages: [hi], frequency_penalty: -0.5 }, ["frequency_penalty"]],
  ["logit_bias", { messages: [hi], logit_bias: { "50256": -100 } }, ["logit_bias"]],
  ["metadata", { messages: [hi], metadata: { team: "search" } }, ["metadata"]],
  ["an unknown field", { messages: [hi], prediction: { type: "content", content: "x" } }, ["prediction"]],
  ["an unknown field whose name has a dot", { messages: [hi], "extra.option": true }, ['["extra.option"]']],
  ["an unknown field whose name has brackets", { messages: [hi], "weird[0]": 1 }, ['["weird[0]"]']],
  [
    "a strict function tool",
    { messages: [hi], tools: [fn("a"), fn("b", { strict: true })] },
    ["tools[1].function.strict"]
  ],
  [
    "a tool that is not a function",
    { messages: [hi], tools: [fn("a"), { type: "custom", custom: { name: "grammar" } }] },
    ["tools[1]"]
  ],
  [
    "a tool_choice object other than a named function",
    {
      messages: [hi],
      tools: [fn("a")],
      tool_choice: { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [] } }
    },
    ["tool_choice"]
  ],
  [
    "a json_object response together with tools",
    { messages: [hi], tools: [fn("a")], response_format: { type: "json_object" } },
    ["response_format"]
  ],
  [
    "a json_schema response together with tools",
    {
      messages: [hi],
      tools: [fn("a")],
      response_format: { type: "json_schema", json_schema: { name: "out", schema: { type: "object" } } }
    },
    ["response_format"]
  ],
  [
    "a json_schema whose schema is not an object",
    {
      messages: [hi],
      response_format: { type: "json_schema", json_schema: { name: "out", schema: { type: "array", items: {} } } }
    },
    ["response_format.json_schema.schema"]
  ],
  [
    "a strict json_schema",
    {
      messages: [hi],
      response_format: { type: "json_schema", json_schema: { name: "out", schema: { type: "object" }, strict: true } }
    },
    ["response_format.json_schema.strict"]
  ],
  [
    "an image with detail low",
    { messages: [user([text("What is it?"), image(PNG, "low")])] },
    ["messages[0].content[1].image_url.detail"]
  ],
  [
    "an image with detail high",
    { messages: [user([image("https://example.com/cat.png", "high")])] },
    ["messages[0].content[0].image_url.detail"]
  ],
  [
    "an image by a URL that is not http(s)",
    { messages: [user([text("What is it?"), image("ftp://example.com/cat.png")])] },
    ["messages[0].content[1]"]
  ],
  [
    "a data URL that is not base64",
    { messages: [user([image("data:image/png,rawbytes")])] },
    ["messages[0].content[0]"]
  ],
  [
    "a base64 image of a type Anthropic does not take",
    { messages: [user([text("What is it?"), image("data:image/bmp;base64,Qk0=")])] },
    ["messages[0].content[1]"]
  ],
  [
    "a content part other than text and images",
    { messages: [user([text("Listen"), { type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }])] },
    ["messages[0].content[1]"]
  ],
  [
    "an image in an assistant message",
    { messages: [hi, { role: "assistant", content: [text("Here:"), image(PNG)] }, user("Thanks")] },
    ["messages[1].content[1]"]
  ],
  [
    "an image in a system message",
    { messages: [{ role: "system", content: [image("https://example.com/logo.png")] }, hi] },
    ["messages[0].content[0]"]
  ],
  ["a message name", { messages: [{ role: "user", content: "Hi", name: "alice" }] }, ["messages[0].name"]],
  [
    "a function message",
    { messages: [hi, { role: "function", name: "get_time", content: "noon" }, user("Thanks")] },
    ["messages[1]"]
  ],
  [
    "a custom tool call in an assistant message",
    {
      messages: [
        hi,
        {
          role: "assistant",
          content: null,
          tool_calls: [call("call_1", "a", "{}"), { id: "call_2", type: "custom", custom: { name: "g", input: "x" } }]
        },
        { role: "tool", tool_call_id: "call_1", content: "ok" }
      ]
    },
    ["messages[1].tool_calls[1]"]
  ],
  [
    "an unknown message field",
    { messages: [{ role: "assistant", content: "x", function_call: { name: "f", arguments: "{}" } }, hi] },
    ["messages[0].function_call"]
  ],
  // The module's contract: "Every field of a request is translated or named: nothing is left out in silence".
  [
    "an unknown field of a content part",
    { messages: [user([{ type: "text", text: "Hi", lang: "en" }])] },
    ["messages[0].content[0].lang"]
  ],
  ["an unknown field of a tool", { messages: [hi], tools: [{ ...fn("a"), priority: 1 }] }, ["tools[0].priority"]],
  [
    "reasoning_effort with tool_choice required",
    { messages: [hi], tools: [fn("a")], tool_choice: "required", reasoning_effort: "low" },
    ["reasoning_effort"]
  ],
  [
    "reasoning_effort with a named tool_choice",
    {
      messages: [hi],
      tools: [fn("a")],
      tool_choice: { type: "function", function: { name: "a" } },
      reasoning_effort: "low"
    },
    ["reasoning_effort"]
  ],
  [
    "reasoning_effort with a JSON response (a forced tool)",
    { messages: [hi], response_format: { type: "json_object" }, reasoning_effort: "low" },
    ["reasoning_effort"]
  ],
  [
    "reasoning_effort with temperature 0.5",
    { messages: [hi], temperature: 0.5, reasoning_effort: "low" },
    ["reasoning_effort"]
  ],
  ["reasoning_effort with top_p", { messages: [hi], top_p: 0.9, reasoning_effort: "low" }, ["reasoning_effort"]],
  [
    "reasoning_effort with max_tokens equal to its budget",
    { messages: [hi], max_tokens: 2048, reasoning_effort: "low" },
    ["reasoning_effort"]
  ],
  [
    "reasoning_effort with max_completion_tokens below its budget",
    { messages: [hi], max_completion_tokens: 1000, reasoning_effort: "medium" },
    ["reasoning_effort"]
  ],
  ["an unknown reasoning_effort", { messages: [hi], reasoning_effort: "extreme" }, ["reasoning_effort"]],
  [
    "reasoning from another provider (reasoning_content without thinking_blocks)",
    {
      messages: [
        hi,
        { role: "assistant", content: "Hello.", reasoning_content: "They greet me." },
        { role: "user", content: "And?" }
      ]
    },
    ["messages[1].reasoning_content"]
  ],
  [
    "many at once, across messages",
    {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [text("a"), image("ftp://x/y.png"), image(PNG, "high")], name: "alice" },
        { role: "function", name: "f", content: "r" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c0", type: "custom", custom: { name: "g", input: "x" } }, call("c1", "a", "{}")]
        },
        { role: "tool", tool_call_id: "c1", content: "ok" },
        user([{ type: "file", file: { file_id: "f1" } }, text("b"), image("data:image/tiff;base64,AAAA")])
      ],
      n: 3,
      seed: 1,
      temperature: 1.8,
      tools: [fn("a", { strict: true }), { type: "custom", custom: { name: "g" } }],
      reasoning_effort: "high"
    },
    [
      "n",
      "seed",
      "temperature",
      "tools[0].function.strict",
      "tools[1]",
      // Thinking at temperature 1.8 cannot be served, but dropping the temperature is enough for it.
      "messages[1].name",
      "messages[1].content[1]",
      "messages[1].content[2].image_url.detail",
      "messages[2]",
      "messages[3].tool_calls[0]",
      "messages[5].content[0]",
      "messages[5].content[2]"
    ]
  ]
]

describe("unsupportedFields", () => {
  describe("names the smallest part that cannot be served", () => {
    for (const [name, input, paths] of refused) {
      it(name, () => {
        assert.deepStrictEqual(AnthropicMessages.unsupportedFields(decode(input)), paths)
      })
    }
  })

  describe("dropping the fields it names leaves a request it can serve", () => {
    for (const [name, input] of refused) {
      it(name, () => {
        const request = decode(input)
        const trimmed = ChatCompletion.withoutFields(request, AnthropicMessages.unsupportedFields(request))
        assert.deepStrictEqual(AnthropicMessages.unsupportedFields(trimmed), [])
      })
    }
  })

  describe("does not name what asks for nothing, or what it translates", () => {
    const servable: ReadonlyArray<readonly [string, Readonly<Record<string, unknown>>]> = [
      ["n: 1", { messages: [hi], n: 1 }],
      ["logprobs: false", { messages: [hi], logprobs: false }],
      ["null values", { messages: [hi], seed: null, n: null, logprobs: null, metadata: null, temperature: null }],
      ["parallel_tool_calls: true", { messages: [hi], tools: [fn("a")], parallel_tool_calls: true }],
      ["parallel_tool_calls: false", { messages: [hi], tools: [fn("a")], parallel_tool_calls: false }],
      ["temperature 1", { messages: [hi], temperature: 1 }],
      ["temperature 0 and top_p", { messages: [hi], temperature: 0, top_p: 0.5 }],
      [
        "max_tokens, stop, user, stream and stream_options",
        {
          messages: [hi],
          max_tokens: 10,
          max_completion_tokens: 20,
          stop: ["END"],
          user: "u-1",
          stream: true,
          stream_options: { include_usage: true }
        }
      ],
      [
        "a strict: false function tool and every tool_choice string",
        { messages: [hi], tools: [fn("a", { strict: false })], tool_choice: "auto" }
      ],
      ["tool_choice none", { messages: [hi], tools: [fn("a")], tool_choice: "none" }],
      [
        "a named tool_choice",
        { messages: [hi], tools: [fn("a")], tool_choice: { type: "function", function: { name: "a" } } }
      ],
      ["response_format text with tools", { messages: [hi], tools: [fn("a")], response_format: { type: "text" } }],
      ["response_format json_object", { messages: [hi], response_format: { type: "json_object" } }],
      [
        "a json_schema with an object schema, strict false",
        {
          messages: [hi],
          response_format: {
            type: "json_schema",
            json_schema: { name: "out", description: "d", schema: { type: "object" }, strict: false }
          }
        }
      ],
      [
        "a json_schema without a schema",
        { messages: [hi], response_format: { type: "json_schema", json_schema: { name: "out" } } }
      ],
      ["reasoning_effort none, with temperature 0.5", { messages: [hi], reasoning_effort: "none", temperature: 0.5 }],
      ["reasoning_effort low alone", { messages: [hi], reasoning_effort: "low" }],
      ["reasoning_effort with temperature 1", { messages: [hi], reasoning_effort: "minimal", temperature: 1 }],
      [
        "reasoning_effort with max_tokens above its budget",
        { messages: [hi], reasoning_effort: "high", max_tokens: 16385 }
      ],
      [
        "reasoning_effort with tool_choice auto",
        { messages: [hi], tools: [fn("a")], tool_choice: "auto", reasoning_effort: "low" }
      ],
      [
        "images: http, https, base64 JPEG/PNG/GIF/WebP, detail auto",
        {
          messages: [
            user([
              text("Compare"),
              image("http://example.com/a.jpg"),
              image("HTTPS://example.com/b.png", "auto"),
              image("data:image/jpeg;base64,/9j/"),
              image(PNG),
              image("data:image/gif;base64,R0lG"),
              image("data:IMAGE/WEBP;base64,UklG")
            ])
          ]
        }
      ],
      [
        "an assistant message as OpenAI returns it (refusal null, annotations [], reasoning_content, thinking_blocks)",
        {
          messages: [
            hi,
            {
              role: "assistant",
              content: "Hello",
              refusal: null,
              annotations: [],
              reasoning_content: "They greet me.",
              thinking_blocks: [{ type: "thinking", thinking: "They greet me.", signature: "sig" }],
              tool_calls: []
            },
            user("Again")
          ]
        }
      ],
      [
        "tool calls and their results",
        {
          messages: [
            hi,
            { role: "assistant", content: null, tool_calls: [call("c1", "a", "")] },
            { role: "tool", tool_call_id: "c1", content: [text("ok")] }
          ],
          tools: [fn("a")]
        }
      ],
      [
        "system and developer messages",
        { messages: [{ role: "system", content: "s" }, { role: "developer", content: [text("d")] }, hi] }
      ]
    ]
    for (const [name, input] of servable) {
      it(name, () => {
        assert.deepStrictEqual(AnthropicMessages.unsupportedFields(decode(input)), [])
      })
    }
  })
})

describe("toRequestBody", () => {
  const body = (fields: Readonly<Record<string, unknown>>) => AnthropicMessages.toRequestBody(WIRE_NAME, decode(fields))

  it("takes system and developer messages out, joined in order into system", () => {
    assert.deepStrictEqual(
      body({
        messages: [
          { role: "system", content: "Be brief." },
          hi,
          { role: "developer", content: [text("Answer "), text("in French.")] }
        ]
      }),
      {
        model: WIRE_NAME,
        max_tokens: AnthropicMessages.defaultMaxTokens,
        messages: [{ role: "user", content: "Hi" }],
        system: "Be brief.\n\nAnswer in French."
      }
    )
  })

  it("keeps a plain user string a string, and sends no system without one", () => {
    assert.deepStrictEqual(body({ messages: [hi] }), {
      model: WIRE_NAME,
      max_tokens: 4096,
      messages: [{ role: "user", content: "Hi" }]
    })
    assert.strictEqual(AnthropicMessages.defaultMaxTokens, 4096)
  })

  describe("max_tokens", () => {
    it("is max_tokens when set, before max_completion_tokens", () => {
      assert.strictEqual(body({ messages: [hi], max_tokens: 100, max_completion_tokens: 200 }).max_tokens, 100)
    })

    it("is max_completion_tokens when max_tokens is not set (or null)", () => {
      assert.strictEqual(body({ messages: [hi], max_completion_tokens: 200 }).max_tokens, 200)
      assert.strictEqual(body({ messages: [hi], max_tokens: null, max_completion_tokens: 200 }).max_tokens, 200)
    })

    it("is defaultMaxTokens when neither is set", () => {
      assert.strictEqual(body({ messages: [hi] }).max_tokens, AnthropicMessages.defaultMaxTokens)
    })

    it("is defaultMaxTokens plus the thinking budget when reasoning_effort is set", () => {
      assert.deepStrictEqual(body({ messages: [hi], reasoning_effort: "low" }), {
        model: WIRE_NAME,
        max_tokens: 4096 + 2048,
        messages: [{ role: "user", content: "Hi" }],
        thinking: { type: "enabled", budget_tokens: 2048 }
      })
      assert.strictEqual(body({ messages: [hi], reasoning_effort: "high" }).max_tokens, 4096 + 16384)
    })

    it("is the request's own with reasoning_effort, the budget not added", () => {
      assert.strictEqual(body({ messages: [hi], reasoning_effort: "low", max_tokens: 5000 }).max_tokens, 5000)
    })
  })

  it("turns thinking on with the budget of each reasoning_effort, and leaves it off for none", () => {
    assert.deepStrictEqual(AnthropicMessages.thinkingBudgets, {
      minimal: 1024,
      low: 2048,
      medium: 8192,
      high: 16384,
      xhigh: 32768
    })
    for (const [effort, budget] of Object.entries(AnthropicMessages.thinkingBudgets)) {
      assert.deepStrictEqual(body({ messages: [hi], reasoning_effort: effort }).thinking, {
        type: "enabled",
        budget_tokens: budget
      })
    }
    assert.deepStrictEqual(body({ messages: [hi], reasoning_effort: "none" }), {
      model: WIRE_NAME,
      max_tokens: 4096,
      messages: [{ role: "user", content: "Hi" }]
    })
  })

  it("sends temperature and top_p as they are, a stop string as a list, and user as metadata.user_id", () => {
    assert.deepStrictEqual(body({ messages: [hi], temperature: 0.2, top_p: 0.9, stop: "END", user: "u-42" }), {
      model: WIRE_NAME,
      max_tokens: 4096,
      messages: [{ role: "user", content: "Hi" }],
      temperature: 0.2,
      top_p: 0.9,
      stop_sequences: ["END"],
      metadata: { user_id: "u-42" }
    })
    assert.deepStrictEqual(body({ messages: [hi], stop: ["a", "b"] }).stop_sequences, ["a", "b"])
  })

  it("leaves out what asks for nothing: null sampling, stop, stream_options and stream", () => {
    assert.deepStrictEqual(
      body({
        messages: [hi],
        temperature: null,
        top_p: null,
        stop: null,
        stream: true,
        stream_options: { include_usage: true }
      }),
      { model: WIRE_NAME, max_tokens: 4096, messages: [{ role: "user", content: "Hi" }] }
    )
  })

  it("sends tools as name, description and input_schema, an empty object schema when parameters are missing", () => {
    const weather = {
      type: "function",
      function: {
        name: "get_weather",
        description: "The weather in a city",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
      }
    }
    assert.deepStrictEqual(
      body({ messages: [hi], tools: [weather, { type: "function", function: { name: "now" } }] }),
      {
        model: WIRE_NAME,
        max_tokens: 4096,
        messages: [{ role: "user", content: "Hi" }],
        tools: [
          {
            name: "get_weather",
            description: "The weather in a city",
            input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
          },
          { name: "now", input_schema: { type: "object", properties: {} } }
        ]
      }
    )
  })

  describe("tool_choice", () => {
    const choiceOf = (fields: Readonly<Record<string, unknown>>) =>
      body({ messages: [hi], tools: [fn("get_weather")], ...fields }).tool_choice

    it("maps auto, required, none and a named function to auto, any, none and tool", () => {
      assert.deepStrictEqual(choiceOf({ tool_choice: "auto" }), { type: "auto" })
      assert.deepStrictEqual(choiceOf({ tool_choice: "required" }), { type: "any" })
      assert.deepStrictEqual(choiceOf({ tool_choice: "none" }), { type: "none" })
      assert.deepStrictEqual(choiceOf({ tool_choice: { type: "function", function: { name: "get_weather" } } }), {
        type: "tool",
        name: "get_weather"
      })
    })

    it("is left out when the request has none", () => {
      assert.deepStrictEqual(body({ messages: [hi], tools: [fn("get_weather")] }), {
        model: WIRE_NAME,
        max_tokens: 4096,
        messages: [{ role: "user", content: "Hi" }],
        tools: [{ name: "get_weather", input_schema: { type: "object", properties: {} } }]
      })
      assert.isUndefined(choiceOf({ parallel_tool_calls: true }))
    })

    it("carries parallel_tool_calls: false as disable_parallel_tool_use, with each tool_choice", () => {
      const single = { parallel_tool_calls: false }
      assert.deepStrictEqual(choiceOf({ ...single, tool_choice: "auto" }), {
        type: "auto",
        disable_parallel_tool_use: true
      })
      assert.deepStrictEqual(choiceOf({ ...single, tool_choice: "required" }), {
        type: "any",
        disable_parallel_tool_use: true
      })
      assert.deepStrictEqual(
        choiceOf({ ...single, tool_choice: { type: "function", function: { name: "get_weather" } } }),
        { type: "tool", name: "get_weather", disable_parallel_tool_use: true }
      )
    })

    it("carries parallel_tool_calls: false without a tool_choice as auto with disable_parallel_tool_use", () => {
      assert.deepStrictEqual(body({ messages: [hi], tools: [fn("get_weather")], parallel_tool_calls: false }), {
        model: WIRE_NAME,
        max_tokens: 4096,
        messages: [{ role: "user", content: "Hi" }],
        tools: [{ name: "get_weather", input_schema: { type: "object", properties: {} } }],
        tool_choice: { type: "auto", disable_parallel_tool_use: true }
      })
    })

    it("sends no tool_choice for parallel_tool_calls: false without tools", () => {
      assert.deepStrictEqual(body({ messages: [hi], parallel_tool_calls: false }), {
        model: WIRE_NAME,
        max_tokens: 4096,
        messages: [{ role: "user", content: "Hi" }]
      })
    })
  })

  describe("the conversation", () => {
    const question = user("Weather in Paris and Rome?")
    const calling = {
      role: "assistant",
      content: "Let me check.",
      tool_calls: [call("call_1", "get_weather", '{"city":"Paris"}'), call("call_2", "get_weather", '{"city":"Rome"}')]
    }
    const callingBlocks = [
      { type: "text", text: "Let me check." },
      { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "call_2", name: "get_weather", input: { city: "Rome" } }
    ]

    it("sends assistant tool_calls as tool_use blocks with parsed input, the text block first", () => {
      assert.deepStrictEqual(body({ messages: [question, calling] }).messages, [
        { role: "user", content: "Weather in Paris and Rome?" },
        { role: "assistant", content: callingBlocks }
      ])
    })

    it("sends a tool call with empty arguments with input {}, and no text block when content is null", () => {
      assert.deepStrictEqual(
        body({ messages: [hi, { role: "assistant", content: null, tool_calls: [call("call_1", "now", "")] }] })
          .messages,
        [
          { role: "user", content: "Hi" },
          { role: "assistant", content: [{ type: "tool_use", id: "call_1", name: "now", input: {} }] }
        ]
      )
    })

    it("merges consecutive tool messages into one user message of tool_result blocks", () => {
      assert.deepStrictEqual(
        body({
          messages: [
            question,
            calling,
            { role: "tool", tool_call_id: "call_1", content: "18°C" },
            { role: "tool", tool_call_id: "call_2", content: [text("21°C")] }
          ]
        }).messages,
        [
          { role: "user", content: "Weather in Paris and Rome?" },
          { role: "assistant", content: callingBlocks },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "call_1", content: "18°C" },
              { type: "tool_result", tool_use_id: "call_2", content: [{ type: "text", text: "21°C" }] }
            ]
          }
        ]
      )
    })

    it("merges tool messages and the user message after them into one user message, tool results first", () => {
      assert.deepStrictEqual(
        body({
          messages: [
            question,
            calling,
            { role: "tool", tool_call_id: "call_1", content: "18°C" },
            { role: "tool", tool_call_id: "call_2", content: "21°C" },
            user("And tomorrow?")
          ]
        }).messages,
        [
          { role: "user", content: "Weather in Paris and Rome?" },
          { role: "assistant", content: callingBlocks },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "call_1", content: "18°C" },
              { type: "tool_result", tool_use_id: "call_2", content: "21°C" },
              { type: "text", text: "And tomorrow?" }
            ]
          }
        ]
      )
    })

    it("puts the tool results first even when the user message comes before them", () => {
      assert.deepStrictEqual(
        body({
          messages: [
            question,
            calling,
            user("Hurry."),
            { role: "tool", tool_call_id: "call_1", content: "18°C" },
            { role: "tool", tool_call_id: "call_2", content: "21°C" }
          ]
        }).messages[2],
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_1", content: "18°C" },
            { type: "tool_result", tool_use_id: "call_2", content: "21°C" },
            { type: "text", text: "Hurry." }
          ]
        }
      )
    })

    it("sends a tool message with empty content as a tool_result without content", () => {
      assert.deepStrictEqual(
        body({
          messages: [
            hi,
            { role: "assistant", content: null, tool_calls: [call("call_1", "ping", "{}")] },
            { role: "tool", tool_call_id: "call_1", content: "" }
          ]
        }).messages[2],
        { role: "user", content: [{ type: "tool_result", tool_use_id: "call_1" }] }
      )
    })

    it("sends images by data URL as base64 sources and by URL as url sources, beside text blocks", () => {
      assert.deepStrictEqual(
        body({
          messages: [user([text("Compare"), image(PNG, "auto"), image("https://example.com/cat.jpg")])]
        }).messages,
        [
          {
            role: "user",
            content: [
              { type: "text", text: "Compare" },
              { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
              { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } }
            ]
          }
        ]
      )
    })

    it("puts an assistant message's thinking_blocks first, as they came, before its text and tool calls", () => {
      const thinking = [
        { type: "thinking", thinking: "Paris first.", signature: "sig-1" },
        { type: "redacted_thinking", data: "opaque" }
      ]
      assert.deepStrictEqual(
        body({
          messages: [
            question,
            { ...calling, reasoning_content: "Paris first.", thinking_blocks: thinking },
            { role: "tool", tool_call_id: "call_1", content: "18°C" },
            { role: "tool", tool_call_id: "call_2", content: "21°C" }
          ],
          reasoning_effort: "low"
        }).messages[1],
        { role: "assistant", content: [...thinking, ...callingBlocks] }
      )
    })

    it("sends an assistant message with thinking_blocks and plain text as blocks, thinking first", () => {
      assert.deepStrictEqual(
        body({
          messages: [
            hi,
            {
              role: "assistant",
              content: "Hello!",
              thinking_blocks: [{ type: "thinking", thinking: "A greeting.", signature: "s" }]
            },
            user("Again")
          ]
        }).messages,
        [
          { role: "user", content: "Hi" },
          {
            role: "assistant",
            content: [
              { type: "thinking", thinking: "A greeting.", signature: "s" },
              { type: "text", text: "Hello!" }
            ]
          },
          { role: "user", content: "Again" }
        ]
      )
    })

    it("keeps a plain assistant string a string", () => {
      assert.deepStrictEqual(
        body({ messages: [hi, { role: "assistant", content: "Hello!" }, user("Again")] }).messages,
        [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello!" },
          { role: "user", content: "Again" }
        ]
      )
    })
  })

  describe("a JSON response", () => {
    it("forces a tool named json_object with an object schema for json_object", () => {
      assert.deepStrictEqual(body({ messages: [hi], response_format: { type: "json_object" } }), {
        model: WIRE_NAME,
        max_tokens: 4096,
        messages: [{ role: "user", content: "Hi" }],
        tools: [
          {
            name: AnthropicMessages.jsonObjectToolName,
            description: "Respond with JSON by calling this tool with it.",
            input_schema: { type: "object" }
          }
        ],
        tool_choice: { type: "tool", name: "json_object" }
      })
      assert.strictEqual(AnthropicMessages.jsonObjectToolName, "json_object")
    })

    it("forces a tool named after a json_schema, with its schema and description", () => {
      const schema = { type: "object", properties: { temp: { type: "number" } }, required: ["temp"] }
      assert.deepStrictEqual(
        body({
          messages: [hi],
          response_format: {
            type: "json_schema",
            json_schema: { name: "forecast", description: "A forecast", schema, strict: false }
          }
        }),
        {
          model: WIRE_NAME,
          max_tokens: 4096,
          messages: [{ role: "user", content: "Hi" }],
          tools: [{ name: "forecast", description: "A forecast", input_schema: schema }],
          tool_choice: { type: "tool", name: "forecast" }
        }
      )
    })

    it("uses an object schema for a json_schema without one", () => {
      assert.deepStrictEqual(
        body({ messages: [hi], response_format: { type: "json_schema", json_schema: { name: "anything" } } }).tools,
        [
          {
            name: "anything",
            description: "Respond with JSON by calling this tool with it.",
            input_schema: { type: "object", properties: {} }
          }
        ]
      )
    })

    it("asks for text with response_format text: no tool", () => {
      assert.deepStrictEqual(body({ messages: [hi], response_format: { type: "text" } }), {
        model: WIRE_NAME,
        max_tokens: 4096,
        messages: [{ role: "user", content: "Hi" }]
      })
    })

    it("names the tool that carries the answer (jsonToolName)", () => {
      assert.strictEqual(
        AnthropicMessages.jsonToolName(ask({ response_format: { type: "json_object" } })),
        "json_object"
      )
      assert.strictEqual(
        AnthropicMessages.jsonToolName(
          ask({ response_format: { type: "json_schema", json_schema: { name: "forecast" } } })
        ),
        "forecast"
      )
      assert.isUndefined(AnthropicMessages.jsonToolName(ask({ response_format: { type: "text" } })))
      assert.isUndefined(AnthropicMessages.jsonToolName(ask()))
    })
  })
})

describe("toChatCompletion", () => {
  type Message = typeof AnthropicMessages.MessageResponse.Type
  const message = (fields: Partial<Message>): Message => ({
    id: "msg_1",
    type: "message",
    role: "assistant",
    content: [{ type: "text", text: "Hi." }],
    stop_reason: "end_turn",
    usage: { input_tokens: 10, output_tokens: 5 },
    ...fields
  })
  const options = { model: WIRE_NAME, created: 1_700_000_000 }
  const usage = {
    prompt_tokens: 10,
    completion_tokens: 5,
    total_tokens: 15,
    prompt_tokens_details: { cached_tokens: 0 }
  }
  const completion = (
    choiceMessage: ChatCompletion.ChatCompletion["choices"][number]["message"],
    finish: ChatCompletion.FinishReason = "stop",
    model = WIRE_NAME
  ): ChatCompletion.ChatCompletion => ({
    id: "msg_1",
    object: "chat.completion",
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, message: choiceMessage, finish_reason: finish, logprobs: null }],
    usage
  })

  it("joins the text blocks into content", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          content: [
            { type: "text", text: "Hello, " },
            { type: "text", text: "world." }
          ]
        }),
        options
      ),
      completion({ role: "assistant", content: "Hello, world." })
    )
  })

  it("gives empty content for a message without blocks", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(message({ content: [] }), options),
      completion({ role: "assistant", content: "" })
    )
  })

  it("takes model from the reply when it has one, else the options' model", () => {
    assert.strictEqual(
      AnthropicMessages.toChatCompletion(message({ model: "claude-3-5-haiku-latest" }), options).model,
      "claude-3-5-haiku-latest"
    )
    assert.strictEqual(AnthropicMessages.toChatCompletion(message({}), options).model, WIRE_NAME)
  })

  it("maps tool_use blocks to tool_calls with the input as JSON text, content null when there is no text", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          content: [
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "now", input: {} }
          ],
          stop_reason: "tool_use"
        }),
        options
      ),
      completion(
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "toolu_2", type: "function", function: { name: "now", arguments: "{}" } }
          ]
        },
        "tool_calls"
      )
    )
  })

  it("keeps the text beside tool calls", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          content: [
            { type: "text", text: "Let me check." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }
          ],
          stop_reason: "tool_use"
        }),
        options
      ),
      completion(
        {
          role: "assistant",
          content: "Let me check.",
          tool_calls: [
            { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }
          ]
        },
        "tool_calls"
      )
    )
  })

  it("puts thinking in reasoning_content and thinking_blocks, redacted thinking kept, never in content", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          content: [
            { type: "thinking", thinking: "First, ", signature: "sig-1" },
            { type: "redacted_thinking", data: "opaque" },
            { type: "thinking", thinking: "then.", signature: "sig-2" },
            { type: "text", text: "42." }
          ]
        }),
        options
      ),
      completion({
        role: "assistant",
        content: "42.",
        reasoning_content: "First, then.",
        thinking_blocks: [
          { type: "thinking", thinking: "First, ", signature: "sig-1" },
          { type: "redacted_thinking", data: "opaque" },
          { type: "thinking", thinking: "then.", signature: "sig-2" }
        ]
      })
    )
  })

  it("keeps a message of only redacted thinking without reasoning_content", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({ content: [{ type: "redacted_thinking", data: "opaque" }] }),
        options
      ),
      completion({ role: "assistant", content: "", thinking_blocks: [{ type: "redacted_thinking", data: "opaque" }] })
    )
  })

  it("makes the JSON tool's input the content, with finish_reason stop", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          content: [{ type: "tool_use", id: "toolu_1", name: "forecast", input: { temp: 18 } }],
          stop_reason: "tool_use"
        }),
        { ...options, jsonTool: "forecast" }
      ),
      completion({ role: "assistant", content: '{"temp":18}' })
    )
  })

  it("says length for a JSON answer cut off at max_tokens", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          content: [{ type: "tool_use", id: "toolu_1", name: "json_object", input: { a: 1 } }],
          stop_reason: "max_tokens"
        }),
        { ...options, jsonTool: "json_object" }
      ),
      completion({ role: "assistant", content: '{"a":1}' }, "length")
    )
  })

  it("maps usage with the prompt cache: prompt_tokens counts input, cache read and cache creation", () => {
    assert.deepStrictEqual(
      AnthropicMessages.toChatCompletion(
        message({
          usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 }
        }),
        options
      ).usage,
      { prompt_tokens: 130, completion_tokens: 5, total_tokens: 135, prompt_tokens_details: { cached_tokens: 100 } }
    )
    assert.deepStrictEqual(
      AnthropicMessages.toUsage({
        input_tokens: 3,
        output_tokens: 4,
        cache_read_input_tokens: null,
        cache_creation_input_tokens: null
      }),
      { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } }
    )
  })

  it("maps each stop_reason to its finish_reason", () => {
    const cases: ReadonlyArray<readonly [string | null, ChatCompletion.FinishReason]> = [
      ["end_turn", "stop"],
      ["stop_sequence", "stop"],
      ["pause_turn", "stop"],
      ["max_tokens", "length"],
      ["model_context_window_exceeded", "length"],
      ["tool_use", "tool_calls"],
      ["refusal", "content_filter"],
      [null, "stop"]
    ]
    for (const [stop, finish] of cases) {
      assert.strictEqual(AnthropicMessages.finishReason(stop), finish, String(stop))
      assert.strictEqual(
        AnthropicMessages.toChatCompletion(message({ stop_reason: stop }), options).choices[0]?.finish_reason,
        finish
      )
    }
  })
})

describe("cache_control, Anthropic's own, is passed on where Anthropic takes it", () => {
  const ephemeral = { type: "ephemeral" }

  it("on text and image parts, on tools, and on system parts (system then goes as blocks)", () => {
    const request = decode({
      messages: [
        { role: "system", content: [{ type: "text", text: "Long instructions.", cache_control: ephemeral }] },
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "Look:", cache_control: ephemeral },
            { type: "image_url", image_url: { url: "https://example.com/a.png" }, cache_control: ephemeral }
          ]
        }
      ],
      tools: [{ ...fn("a"), cache_control: ephemeral }]
    })
    assert.deepStrictEqual(AnthropicMessages.unsupportedFields(request), [])
    const sent = AnthropicMessages.toRequestBody(WIRE_NAME, request)
    assert.deepStrictEqual(sent.system, [
      { type: "text", text: "Long instructions.", cache_control: ephemeral },
      { type: "text", text: "Be brief." }
    ])
    assert.deepStrictEqual(sent.messages, [
      {
        role: "user",
        content: [
          { type: "text", text: "Look:", cache_control: ephemeral },
          { type: "image", source: { type: "url", url: "https://example.com/a.png" }, cache_control: ephemeral }
        ]
      }
    ])
    assert.deepStrictEqual(sent.tools?.[0], {
      name: "a",
      input_schema: { type: "object", properties: {} },
      cache_control: ephemeral
    })
  })
})
