import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const concise = { role: "user", content: "Please provide a concise response." } as const

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ openaiApiKey: "sk-openai-test", anthropicApiKey: "sk-ant-test" })
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

/** A facade client pointed at the simulator. */
const connect = (reliability: ConstructorParameters<typeof IronlabsAI>[0]["reliability"], timeout?: number) => {
  const client = new IronlabsAI({
    reliability,
    openai: { apiKey: "sk-openai-test", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-ant-test", baseURL: sim.anthropicBaseUrl },
    timeout
  })
  clients.push(client)
  return client
}

/** Settles a promise into its rejection, failing the test if it resolves. */
const rejection = async (promise: Promise<unknown>): Promise<Error & Record<string, unknown>> => {
  try {
    await promise
  } catch (error) {
    return error as Error & Record<string, unknown>
  }
  assert.fail("expected a rejection")
}

describe("IronlabsAI: the seed's examples", () => {
  it("weighted: answers from one of the models, and model says which", async () => {
    const client = connect({
      weights: { [GPT]: 0.7, [HAIKU]: 0.3 },
      max_retries: { [GPT]: 2, [HAIKU]: 1 },
      timeout: { [GPT]: 5.0, [HAIKU]: 5.0 },
      backoff: { [GPT]: 2.0, [HAIKU]: 1.0 },
      model_messages: { [GPT]: [concise] }
    })
    const response = await client.completions.create({
      messages: [{ role: "user", content: "Write a haiku about the ocean." }]
    })
    assert.strictEqual(sim.requests.length, 1)
    const [request] = sim.requests
    const expected = request!.wire === "openai" ? GPT : HAIKU
    assert.strictEqual(response.model, expected)
    assert.strictEqual(response.choices[0]!.message.content, `Simulated answer from ${request!.model}.`)
    const sent = (request!.body as { messages: ReadonlyArray<unknown> }).messages
    assert.deepStrictEqual(
      sent,
      request!.wire === "openai"
        ? [{ role: "user", content: "Write a haiku about the ocean." }, concise]
        : [{ role: "user", content: "Write a haiku about the ocean." }]
    )
  })

  it("failover chain: a 401 on the first model fails over, with the extra messages on the first only", async () => {
    sim.script("gpt-4o", { status: 401 })
    const client = connect({
      failover_chain: [
        { model: GPT, max_retries: 2, timeout: 5.0, backoff: 2.0, messages: [concise] },
        { model: HAIKU, max_retries: 1, timeout: 5.0, backoff: 1.0 }
      ]
    })
    const response = await client.completions.create({ messages: [{ role: "user", content: "Describe a sunset." }] })
    assert.strictEqual(response.model, HAIKU)
    assert.strictEqual(response.choices[0]!.message.content, "Simulated answer from claude-3-5-haiku-20241022.")
    assert.deepStrictEqual(
      sim.requests.map((r) => [r.wire, r.model]),
      [
        ["openai", "gpt-4o"],
        ["anthropic", "claude-3-5-haiku-20241022"]
      ]
    )
    assert.deepStrictEqual((sim.requests[0]!.body as { messages: unknown }).messages, [
      { role: "user", content: "Describe a sunset." },
      concise
    ])
    assert.deepStrictEqual(
      response.attempts.map((a) => [a.model, a.error?.reason, a.error?.status]),
      [
        [GPT, "Authentication", 401],
        [HAIKU, undefined, undefined]
      ]
    )
  })

  it("retries a 503 on the same model over HTTP, then answers", async () => {
    sim.script("gpt-4o", { status: 503 }, { status: 500 })
    const client = connect({ failover_chain: [{ model: GPT, backoff: 0.01 }, { model: HAIKU }] })
    const response = await client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
    assert.strictEqual(response.model, GPT)
    assert.deepStrictEqual(
      sim.requests.map((r) => r.model),
      ["gpt-4o", "gpt-4o", "gpt-4o"]
    )
  })
})

describe("IronlabsAI: failures", () => {
  it("a bad config throws ReliabilityConfigError at construction, naming every path", () => {
    try {
      new IronlabsAI({ reliability: { weights: { [GPT]: -1, "mystery/model": 1 }, timeout: { [GPT]: 0 } } })
      assert.fail("expected the constructor to throw")
    } catch (error) {
      const e = error as Error & { _tag: string; issues: ReadonlyArray<{ path: string }> }
      assert.instanceOf(e, Error)
      assert.strictEqual(e._tag, "ReliabilityConfigError")
      assert.deepStrictEqual(e.issues.map((i) => i.path).sort(), [
        'timeout["openai/gpt-4o"]',
        'weights["mystery/model"]',
        'weights["openai/gpt-4o"]'
      ])
      assert.include(e.message, 'weights["mystery/model"]: unknown provider "mystery"')
    }
  })

  it("a bad timeout option throws at construction", () => {
    assert.throws(() => connect({ failover_chain: [{ model: GPT }] }, -1), /timeout is a number of seconds > 0/)
  })

  it("rejects with AllModelsFailed, keeping _tag and the attempts", async () => {
    sim.script("gpt-4o", { status: 400 })
    sim.script("claude-3-5-haiku-20241022", { status: 403 })
    const client = connect({ failover_chain: [{ model: GPT }, { model: HAIKU }] })
    const error = await rejection(client.completions.create({ messages: [{ role: "user", content: "Hi" }] }))
    assert.instanceOf(error, Error)
    assert.strictEqual(error._tag, "AllModelsFailed")
    const attempts = error.attempts as ReadonlyArray<{ model: string; error?: { reason: string } }>
    assert.deepStrictEqual(
      attempts.map((a) => [a.model, a.error?.reason]),
      [
        [GPT, "InvalidRequest"],
        [HAIKU, "PermissionDenied"]
      ]
    )
  })

  it("an AbortSignal aborts the request in flight: the socket closes, nothing is retried or failed over", async () => {
    sim.script("gpt-4o", { hang: true })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 3 }, { model: HAIKU }] })
    const controller = new AbortController()
    const pending = client.completions.create(
      { messages: [{ role: "user", content: "Hi" }] },
      {
        signal: controller.signal
      }
    )
    await sim.waitForRequests(1)
    controller.abort()
    const error = await rejection(pending)
    assert.strictEqual(error.name, "AbortError")
    await sim.waitForClientClose(1)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.strictEqual(sim.requests.length, 1)
    assert.strictEqual(sim.openRequests(), 0)
  })

  it("an already-aborted signal rejects without sending anything", async () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    const error = await rejection(
      client.completions.create({ messages: [{ role: "user", content: "Hi" }] }, { signal: AbortSignal.abort() })
    )
    assert.strictEqual(error.name, "AbortError")
    assert.strictEqual(sim.requests.length, 0)
  })

  it("the timeout option bounds the whole request: DeadlineExceeded, and the socket is closed", async () => {
    sim.script("gpt-4o", { hang: true })
    const client = connect({ failover_chain: [{ model: GPT, timeout: 30 }] })
    const started = Date.now()
    const error = await rejection(
      client.completions.create({ messages: [{ role: "user", content: "Hi" }] }, { timeout: 0.3 })
    )
    assert.strictEqual(error._tag, "DeadlineExceeded")
    assert.isBelow(Date.now() - started, 2000)
    await sim.waitForClientClose(1)
    assert.strictEqual(sim.openRequests(), 0)
  })
})

describe("IronlabsAI: process lifetime", () => {
  it("a script that never calls close() exits by itself, reading keys and base URLs from env", async () => {
    const script = fileURLToPath(new URL("fixtures/no-close.ts", import.meta.url))
    const child = spawn(process.execPath, ["--conditions=@ironlabsai/source", "--import", "tsx", script], {
      env: {
        ...process.env,
        OPENAI_API_KEY: "sk-openai-test",
        OPENAI_BASE_URL: sim.openaiBaseUrl,
        ANTHROPIC_API_KEY: "sk-ant-test",
        ANTHROPIC_BASE_URL: sim.anthropicBaseUrl
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (data) => {
      output += data
    })
    child.stderr.on("data", (data) => {
      output += data
    })
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        resolve(null)
      }, 15_000)
      child.on("exit", (exitCode) => {
        clearTimeout(timer)
        resolve(exitCode)
      })
    })
    assert.strictEqual(code, 0, output)
    assert.include(output, "Simulated answer from gpt-4o. Model used: openai/gpt-4o")
  })
})

describe("IronlabsAI: requests from untyped code", () => {
  const untyped = (client: IronlabsAI, request: unknown, options?: unknown) =>
    (client.completions.create as (r: unknown, o?: unknown) => Promise<unknown>)(request, options)

  it("an invalid request rejects with InvalidChatRequest naming each path, and no model is called", async () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    const error = await rejection(untyped(client, { messages: [{ role: "robot", content: 1 }], temperature: 9 }))
    assert.strictEqual(error._tag, "InvalidChatRequest")
    const paths = (error.issues as ReadonlyArray<{ path: string }>).map((i) => i.path)
    assert.includeMembers(paths, ["messages[0].role", "messages[0].content", "temperature"])
    assert.strictEqual(sim.requests.length, 0)
  })

  it("empty messages are rejected", async () => {
    const error = await rejection(untyped(connect({ failover_chain: [{ model: GPT }] }), { messages: [] }))
    assert.strictEqual(error._tag, "InvalidChatRequest")
  })

  it("a bad per-request timeout rejects the promise instead of throwing", async () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    const pending = untyped(client, { messages: [{ role: "user", content: "Hi" }] }, { timeout: "soon" })
    assert.instanceOf(pending, Promise)
    const error = await rejection(pending)
    assert.instanceOf(error, TypeError)
    assert.strictEqual(sim.requests.length, 0)
  })
})

describe("IronlabsAI: nothing dropped silently", () => {
  it("a field the Anthropic wire cannot translate skips claude, with no request to it; gpt-4o answers", async () => {
    sim.reset()
    const client = connect({ failover_chain: [{ model: HAIKU }, { model: GPT }] })
    const response = await client.completions.create({
      messages: [{ role: "user", content: "Hi" }],
      seed: 42,
      presence_penalty: 0.5
    })
    assert.strictEqual(response.model, GPT)
    assert.deepStrictEqual(
      sim.requests.map((r) => r.wire),
      ["openai"]
    )
    // OpenAI received the fields as sent.
    assert.deepInclude(sim.requests[0]!.body as object, { seed: 42, presence_penalty: 0.5 })
    assert.deepStrictEqual(response.attempts[0]?.skip, {
      reason: "unsupported",
      fields: ["presence_penalty", "seed"]
    })
  })

  it("when only claude is configured, the request is refused with the fields named, and nothing is sent", async () => {
    sim.reset()
    const client = connect({ failover_chain: [{ model: HAIKU }] })
    const error = await rejection(
      client.completions.create({ messages: [{ role: "user", content: "Hi", name: "ada" }], temperature: 1.5 })
    )
    assert.strictEqual(error._tag, "NoModelAvailable")
    assert.strictEqual(error.message, `No model available: ${HAIKU}: cannot serve temperature, messages[0].name`)
    assert.deepStrictEqual(sim.requests, [])
  })
})

describe("IronlabsAI: the OpenAI wire passes the request and the answer through whole", () => {
  it("tools, tool_choice, response_format and an unknown field reach OpenAI as sent; tool_calls come back", async () => {
    sim.reset()
    const toolCall = {
      id: "call_1",
      type: "function" as const,
      function: { name: "weather", arguments: '{"city":"Paris"}' }
    }
    sim.script("gpt-4o", {
      body: JSON.stringify({
        id: "chatcmpl-1",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o-2024-08-06",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: null, tool_calls: [toolCall], annotations: [] },
            finish_reason: "tool_calls"
          }
        ],
        usage: {
          prompt_tokens: 5,
          completion_tokens: 7,
          total_tokens: 12,
          prompt_tokens_details: { cached_tokens: 2 }
        },
        service_tier: "default"
      })
    })
    const client = connect({ failover_chain: [{ model: GPT }] })
    const tools = [
      {
        type: "function",
        function: { name: "weather", description: "Weather now", parameters: { type: "object", properties: {} } }
      }
    ] as const
    const request = {
      messages: [
        { role: "user", content: [{ type: "text", text: "Weather in Paris?" }] },
        { role: "assistant", content: null, tool_calls: [toolCall] },
        { role: "tool", tool_call_id: "call_1", content: "18 C" }
      ],
      tools,
      tool_choice: "auto",
      parallel_tool_calls: false,
      response_format: { type: "json_object" },
      some_new_field: 1
    }
    const response = await client.completions.create(
      request as unknown as Parameters<typeof client.completions.create>[0]
    )
    const sent = sim.requests[0]!.body as Record<string, unknown>
    assert.deepStrictEqual(sent.messages, request.messages)
    assert.deepStrictEqual(sent.tools, tools)
    assert.deepInclude(sent, {
      tool_choice: "auto",
      parallel_tool_calls: false,
      response_format: { type: "json_object" },
      some_new_field: 1,
      model: "gpt-4o"
    })
    assert.strictEqual(response.model, GPT)
    assert.strictEqual(response.provider_model, "gpt-4o-2024-08-06")
    assert.deepStrictEqual(response.choices[0]?.message.tool_calls, [toolCall])
    assert.deepInclude(response.choices[0]!.message as object, { annotations: [] })
    assert.deepInclude(response as object, { service_tier: "default" })
    assert.deepStrictEqual((response.usage as { prompt_tokens_details?: unknown }).prompt_tokens_details, {
      cached_tokens: 2
    })
  })

  it("a request the Anthropic wire cannot translate skips claude, naming the fields", async () => {
    sim.reset()
    const client = connect({ failover_chain: [{ model: HAIKU }, { model: GPT }] })
    const response = await client.completions.create({
      messages: [{ role: "user", content: "Weather in Paris?" }],
      n: 2,
      seed: 7,
      logprobs: true
    })
    assert.strictEqual(response.model, GPT)
    assert.deepStrictEqual(response.attempts[0]?.skip, { reason: "unsupported", fields: ["n", "logprobs", "seed"] })
    assert.deepStrictEqual(
      sim.requests.map((r) => r.wire),
      ["openai"]
    )
  })
})
