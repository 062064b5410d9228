/**
 * The fault catalogue, end to end: the facade over real HTTP against the
 * loopback simulator, asserting where each failure ends (retried, failed over,
 * or a typed error), that sockets are closed, and that no key leaks.
 */
import { spawn } from "node:child_process"
import { getEventListeners, once } from "node:events"
import { Transform } from "node:stream"
import { fileURLToPath } from "node:url"
import { inspect } from "node:util"
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import type { Attempt } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
/** Put into every client here; no error, inspect output or JSON may ever contain it. */
const CANARY = "sk-canary-3f9a1c7e"
const ask = { messages: [{ role: "user", content: "Hi" }] } as const

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start()
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

type Reliability = ConstructorParameters<typeof IronlabsAI>[0]["reliability"]

const connect = (reliability: Reliability, openaiBaseURL = sim.openaiBaseUrl) => {
  const client = new IronlabsAI({
    reliability,
    openai: { apiKey: CANARY, baseURL: openaiBaseURL },
    anthropic: { apiKey: CANARY, baseURL: sim.anthropicBaseUrl }
  })
  clients.push(client)
  return client
}

/** GPT with one retry and a short backoff, then Haiku. */
const chain = (gpt: { timeout?: number; max_retries?: number; backoff?: number } = {}): Reliability => ({
  failover_chain: [{ model: GPT, max_retries: 1, backoff: 0.01, timeout: 2, ...gpt }, { model: HAIKU }]
})

const assertNoCanary = (value: unknown) => {
  for (const text of [String(value), JSON.stringify(value) ?? "", inspect(value, { depth: 10 })]) {
    assert.notInclude(text, CANARY)
  }
}

/** The answer's trace as `model reason` lines, checked for the canary on the way. */
const trace = (attempts: ReadonlyArray<Attempt.Attempt>) => {
  assertNoCanary(attempts)
  return attempts.map((a) => `${a.model} ${a.error?.reason ?? "ok"}`)
}

const settle = async <A>(promise: Promise<A>): Promise<{ value?: A; error?: Error & Record<string, unknown> }> => {
  try {
    return { value: await promise }
  } catch (error) {
    assertNoCanary(error)
    return { error: error as Error & Record<string, unknown> }
  }
}

/** Splits a byte stream into lines. */
const split = () => {
  let rest = ""
  return new Transform({
    readableObjectMode: true,
    transform(chunk, _encoding, done) {
      const lines = (rest + chunk).split("\n")
      rest = lines.pop() ?? ""
      for (const line of lines) this.push(line)
      done()
    }
  })
}

const gptRequests = () => sim.requests.filter((r) => r.model === "gpt-4o")

describe("HTTP statuses, through the router", () => {
  const cases: ReadonlyArray<[string, Simulator.Reply, string, boolean]> = [
    ["408", { status: 408 }, "Timeout", true],
    ["409", { status: 409 }, "ServerError", true],
    ["413", { status: 413 }, "InvalidRequest", false],
    ["529", { status: 529 }, "Overloaded", true],
    [
      "a 502 with a proxy's HTML page",
      { status: 502, body: `<html><body>${"Bad gateway ".repeat(500)}</body></html>` },
      "ServerError",
      true
    ],
    ["a 500 with an empty body", { status: 500, body: "" }, "ServerError", true],
    [
      "429 insufficient_quota",
      { status: 429, error: { type: "insufficient_quota", code: "insufficient_quota" } },
      "QuotaExceeded",
      false
    ],
    ["a 200 with HTML", { status: 200, body: "<html>maintenance</html>" }, "MalformedResponse", false],
    ["a 200 with truncated JSON", { status: 200, body: '{"id":"x","object":"chat.comp' }, "MalformedResponse", false],
    ["a 200 with JSON of the wrong shape", { status: 200, body: '{"hello":"world"}' }, "MalformedResponse", false],
    [
      "a 200 with an error object",
      { status: 200, body: '{"error":{"type":"server_error","message":"oops"}}' },
      "ServerError",
      true
    ],
    ["a 500 with x-should-retry: false", { status: 500, headers: { "x-should-retry": "false" } }, "ServerError", false],
    ["a 400 with x-should-retry: true", { status: 400, headers: { "x-should-retry": "true" } }, "InvalidRequest", true]
  ]
  for (const [name, reply, reason, retried] of cases) {
    it(`${name}: ${reason}, ${retried ? "retried once, then" : "no retry,"} failover`, async () => {
      sim.script("gpt-4o", reply, reply)
      const { value } = await settle(connect(chain()).completions.create(ask))
      const expected = retried
        ? [`${GPT} ${reason}`, `${GPT} ${reason}`, `${HAIKU} ok`]
        : [`${GPT} ${reason}`, `${HAIKU} ok`]
      assert.deepStrictEqual(trace(value!.attempts), expected)
      assert.strictEqual(value!.model, HAIKU)
      for (const attempt of value!.attempts) assert.isBelow(attempt.error?.description?.length ?? 0, 250)
    })
  }
})

describe("Retry-After over HTTP", () => {
  it("Retry-After in seconds delays the retry by at least that", async () => {
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "0.3" } })
    const { value } = await settle(connect(chain()).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} RateLimited`, `${GPT} ok`])
    const [first, second] = gptRequests()
    assert.isAtLeast(second!.receivedAt - first!.receivedAt, 290)
  })

  it("retry-after-ms is honoured", async () => {
    sim.script("gpt-4o", { status: 429, headers: { "retry-after-ms": "250" } })
    await connect(chain()).completions.create(ask)
    const [first, second] = gptRequests()
    assert.isAtLeast(second!.receivedAt - first!.receivedAt, 240)
  })

  it("an HTTP-date Retry-After is honoured", async () => {
    sim.script("gpt-4o", { status: 503, headers: { "retry-after": new Date(Date.now() + 1500).toUTCString() } })
    await connect(chain({ backoff: 0 })).completions.create(ask)
    const [first, second] = gptRequests()
    // An HTTP-date has whole seconds: the wait is between 0.5 and 1.5 s.
    assert.isAtLeast(second!.receivedAt - first!.receivedAt, 400)
  })

  for (const garbage of ["soon", "-5", "NaN", "1e9"]) {
    it(`a garbage Retry-After (${garbage}) means the normal backoff: no instant retry, no long wait`, async () => {
      sim.script("gpt-4o", { status: 429, headers: { "retry-after": garbage } })
      await connect(chain({ backoff: 0.1 })).completions.create(ask)
      const [first, second] = gptRequests()
      const gap = second!.receivedAt - first!.receivedAt
      assert.isAtLeast(gap, 75)
      assert.isBelow(gap, 1000)
    })
  }

  it("a Retry-After beyond the cap fails over at once", async () => {
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "3600" } })
    const started = Date.now()
    const { value } = await settle(connect(chain()).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} RateLimited`, `${HAIKU} ok`])
    assert.isBelow(Date.now() - started, 1000)
  })

  it("a Retry-After beyond the time left fails over at once", async () => {
    sim.script("gpt-4o", { status: 503, headers: { "retry-after": "5" } })
    const started = Date.now()
    const { value } = await settle(connect(chain()).completions.create(ask, { timeout: 3 }))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} Overloaded`, `${HAIKU} ok`])
    assert.isBelow(Date.now() - started, 1000)
  })
})

describe("Connections", () => {
  it("refused: Transport, retried, then failover", async () => {
    const closed = await Simulator.start()
    const url = closed.openaiBaseUrl
    await closed.close()
    const { value } = await settle(connect(chain(), url).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} Transport`, `${GPT} Transport`, `${HAIKU} ok`])
  })

  it("reset before the status line: Transport, retried", async () => {
    sim.script("gpt-4o", { reset: "before-headers" }, { reset: "before-headers" })
    const { value } = await settle(connect(chain()).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} Transport`, `${GPT} Transport`, `${HAIKU} ok`])
  })

  it("reset in the middle of the body: Transport, retried", async () => {
    sim.script("gpt-4o", { reset: "mid-body", content: "x".repeat(50_000) })
    const { value } = await settle(connect(chain()).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} Transport`, `${GPT} ok`])
  })

  it("accepted but never answered: Timeout per attempt, each socket closed", async () => {
    sim.script("gpt-4o", { hang: true }, { hang: true })
    const { value } = await settle(connect(chain({ timeout: 0.3 })).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} Timeout`, `${GPT} Timeout`, `${HAIKU} ok`])
    assert.deepStrictEqual(
      gptRequests().map((r) => r.outcome),
      ["client-closed", "client-closed"]
    )
    assert.strictEqual(sim.openRequests(), 0)
  })

  it("a body that drips slowly: the attempt timeout covers the whole body, not only the headers", async () => {
    sim.script("gpt-4o", { dripBytesPerSecond: 100 })
    const started = Date.now()
    const { value } = await settle(connect(chain({ timeout: 0.5, max_retries: 0 })).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} Timeout`, `${HAIKU} ok`])
    assert.isBelow(Date.now() - started, 1500)
    await sim.waitForClientClose(1)
  })

  it("redirects are not followed: the key never travels to another origin", async () => {
    const elsewhere = await Simulator.start()
    try {
      sim.script("gpt-4o", { status: 307, headers: { location: `${elsewhere.openaiBaseUrl}/chat/completions` } })
      const { value } = await settle(connect(chain()).completions.create(ask))
      assert.deepStrictEqual(trace(value!.attempts), [`${GPT} InvalidRequest`, `${HAIKU} ok`])
      assert.strictEqual(value!.attempts[0]!.error?.status, 307)
      assert.strictEqual(elsewhere.requests.length, 0)
    } finally {
      await elsewhere.close()
    }
  })
})

describe("Deadlines and cancellation", () => {
  it("the overall deadline bounds attempts and backoff together, with the attempts so far", async () => {
    sim.script("gpt-4o", { hang: true }, { hang: true }, { hang: true })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 5, backoff: 0.01, timeout: 0.3 }] })
    const started = Date.now()
    const { error } = await settle(client.completions.create(ask, { timeout: 0.5 }))
    assert.isBelow(Date.now() - started, 900)
    assert.strictEqual(error!._tag, "DeadlineExceeded")
    assert.deepStrictEqual(trace(error!.attempts as ReadonlyArray<Attempt.Attempt>), [`${GPT} Timeout`])
    await sim.waitForClientClose(2)
    assert.strictEqual(sim.openRequests(), 0)
  })

  it("a backoff that cannot end before the deadline fails at once instead of sleeping into it", async () => {
    sim.script("gpt-4o", { status: 500 }, { status: 500 })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 5, backoff: 1 }] })
    const started = Date.now()
    const { error } = await settle(client.completions.create(ask, { timeout: 0.5 }))
    assert.isBelow(Date.now() - started, 300)
    assert.strictEqual(error!._tag, "AllModelsFailed")
    assert.deepStrictEqual(trace(error!.attempts as ReadonlyArray<Attempt.Attempt>), [`${GPT} ServerError`])
  })

  it("an abort during a backoff wait: no late retry, no failover", async () => {
    sim.script("gpt-4o", { status: 500 })
    const client = connect(chain({ backoff: 0.5 }))
    const controller = new AbortController()
    const pending = settle(client.completions.create(ask, { signal: controller.signal }))
    await sim.waitForRequests(1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    controller.abort()
    const { error } = await pending
    assert.strictEqual(error!.name, "AbortError")
    await new Promise((resolve) => setTimeout(resolve, 800))
    assert.strictEqual(sim.requests.length, 1)
  })

  it("an abort closes the socket of the attempt in flight", async () => {
    sim.script("gpt-4o", { hang: true })
    const controller = new AbortController()
    const pending = settle(connect(chain()).completions.create(ask, { signal: controller.signal }))
    await sim.waitForRequests(1)
    controller.abort()
    assert.strictEqual((await pending).error!.name, "AbortError")
    await sim.waitForClientClose(1)
    assert.strictEqual(sim.openRequests(), 0)
  })
})

describe("Request options, checked as fetch checks its own", () => {
  const stream = { ...ask, stream: true } as const
  /** `create` as untyped JavaScript calls it. */
  const untyped = (client: IronlabsAI, request: unknown, options?: unknown) =>
    (client.completions.create as (r: unknown, o?: unknown) => Promise<unknown>)(request, options)
  const drain = async (iterable: unknown) => {
    let count = 0
    for await (const _ of iterable as AsyncIterable<unknown>) count++
    return count
  }

  for (const signal of [null, undefined]) {
    it(`signal: ${signal} means no signal, streamed and not`, async () => {
      const client = connect(chain())
      const { value } = await settle(untyped(client, ask, { signal }) as Promise<{ model: string }>)
      assert.strictEqual(value!.model, GPT)
      assert.isAbove(await drain(await untyped(client, stream, { signal })), 0)
    })
  }

  const notSignals: ReadonlyArray<[string, unknown]> = [
    ["an empty object", {}],
    ["a string", "signal"],
    ["a number", 1],
    ["true", true],
    ["an object with only aborted", { aborted: false }],
    ["an EventTarget", new EventTarget()],
    ["the AbortController instead of its signal", new AbortController()]
  ]
  for (const [name, signal] of notSignals) {
    it(`signal: ${name} is a TypeError naming options.signal, before anything is sent`, async () => {
      const client = connect(chain())
      for (const request of [ask, stream]) {
        const pending = untyped(client, request, { signal })
        assert.instanceOf(pending, Promise)
        const { error } = await settle(pending)
        assert.instanceOf(error, TypeError)
        assert.match(error!.message, /^options\.signal must be an AbortSignal/)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.strictEqual(sim.requests.length, 0)
    })
  }

  it("a signal of another realm or a polyfill (what fetch takes) is accepted", async () => {
    const target = new EventTarget()
    const signal = Object.assign(target, { aborted: false })
    const { value } = await settle(untyped(connect(chain()), ask, { signal }) as Promise<{ model: string }>)
    assert.strictEqual(value!.model, GPT)
    assert.lengthOf(getEventListeners(target, "abort"), 0)
  })

  it("one signal shared by 50 concurrent calls: one listener at most, none left after, no warning", async () => {
    const warnings: Array<Error> = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on("warning", onWarning)
    try {
      sim.script("gpt-4o", ...Array.from({ length: 100 }, () => ({ latency: 30, chunkInterval: "5 millis" }) as const))
      const client = connect(chain())
      const { signal } = new AbortController()
      let most = 0
      const sampler = setInterval(() => {
        most = Math.max(most, getEventListeners(signal, "abort").length)
      }, 1)
      const calls = Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0 ? untyped(client, ask, { signal }) : untyped(client, stream, { signal }).then(drain)
      )
      await sim.waitForRequests(50)
      most = Math.max(most, getEventListeners(signal, "abort").length)
      const settled = await Promise.allSettled(calls)
      clearInterval(sampler)
      assert.deepStrictEqual(
        settled.filter((s) => s.status === "rejected"),
        []
      )
      assert.strictEqual(most, 1)
      assert.lengthOf(getEventListeners(signal, "abort"), 0)
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepStrictEqual(
        warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message),
        []
      )
    } finally {
      process.off("warning", onWarning)
    }
  })

  it("aborting a shared signal cancels every call sharing it, and closes each socket", async () => {
    sim.script("gpt-4o", ...Array.from({ length: 20 }, () => ({ hang: true })))
    const client = connect(chain())
    const controller = new AbortController()
    const calls = Array.from({ length: 20 }, () => settle(untyped(client, ask, { signal: controller.signal })))
    await sim.waitForRequests(20)
    controller.abort()
    for (const { error } of await Promise.all(calls)) assert.strictEqual(error!.name, "AbortError")
    for (let id = 1; id <= 20; id++) await sim.waitForClientClose(id)
    assert.lengthOf(getEventListeners(controller.signal, "abort"), 0)
  })

  it("create() after close() rejects with ClientClosed, streamed and not, sending nothing", async () => {
    const client = connect(chain())
    await client.close()
    for (const request of [ask, stream]) {
      const { error } = await settle(untyped(client, request))
      assert.instanceOf(error, Error)
      assert.instanceOf(error, IronlabsAI.ClientClosed)
      assert.strictEqual(error!._tag, "ClientClosed")
      assert.include(error!.message, "close() was called")
    }
    assert.throws(() => client.health(), /close\(\) was called/)
    await client.close()
    assert.strictEqual(sim.requests.length, 0)
  })

  const badTimeouts: ReadonlyArray<[unknown, typeof TypeError | typeof RangeError]> = [
    ["5", TypeError],
    [{ seconds: 5 }, TypeError],
    [true, TypeError],
    [5n, TypeError],
    [0, RangeError],
    [-1, RangeError],
    [Number.NaN, RangeError],
    [Number.POSITIVE_INFINITY, RangeError]
  ]
  for (const [timeout, kind] of badTimeouts) {
    it(`timeout: ${String(timeout)} is a ${kind.name} naming options.timeout, before anything is sent`, async () => {
      const client = connect(chain())
      for (const request of [ask, stream]) {
        const { error } = await settle(untyped(client, request, { timeout }))
        assert.instanceOf(error, kind)
        assert.match(error!.message, /^options\.timeout is a number of seconds > 0/)
      }
      assert.strictEqual(sim.requests.length, 0)
    })
  }

  it("timeout: null means the client's default, as undefined does", async () => {
    const { value } = await settle(untyped(connect(chain()), ask, { timeout: null }) as Promise<{ model: string }>)
    assert.strictEqual(value!.model, GPT)
  })

  it("options that are not an object are a TypeError; null options mean none", async () => {
    const client = connect(chain())
    for (const options of ["fast", 3, true]) {
      const { error } = await settle(untyped(client, ask, options))
      assert.instanceOf(error, TypeError)
      assert.match(error!.message, /^options must be an object/)
    }
    assert.strictEqual(sim.requests.length, 0)
    const { value } = await settle(untyped(client, ask, null) as Promise<{ model: string }>)
    assert.strictEqual(value!.model, GPT)
  })

  it("an option create does not take is refused, naming it, rather than ignored", async () => {
    const client = connect(chain())
    const { error } = await settle(untyped(client, ask, { maxRetries: 3, timeout: 5 }))
    assert.instanceOf(error, TypeError)
    assert.strictEqual(error!.message, "options.maxRetries is not an option of create: it takes signal and timeout")
    assert.strictEqual(sim.requests.length, 0)
    // Left undefined, it asks for nothing.
    const { value } = await settle(untyped(client, ask, { maxRetries: undefined }) as Promise<{ model: string }>)
    assert.strictEqual(value!.model, GPT)
  })
})

describe("Hostile bodies", () => {
  it("a 64 MiB body is stopped at the 16 MiB cap while reading, with bounded memory", async () => {
    const script = fileURLToPath(new URL("fixtures/huge-body-simulator.ts", import.meta.url))
    const child = spawn(process.execPath, ["--conditions=@ironlabsai/source", "--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    try {
      const [line] = (await once(child.stdout.pipe(split()), "data")) as [string]
      const urls = JSON.parse(line) as { openai: string; anthropic: string }
      const client = new IronlabsAI({
        reliability: chain({ max_retries: 0, timeout: 20 }),
        openai: { apiKey: CANARY, baseURL: urls.openai },
        anthropic: { apiKey: CANARY, baseURL: urls.anthropic }
      })
      clients.push(client)
      global.gc?.()
      const before = process.memoryUsage()
      let peak = 0
      const sampler = setInterval(() => {
        const now = process.memoryUsage()
        peak = Math.max(peak, now.heapUsed + now.arrayBuffers - before.heapUsed - before.arrayBuffers)
      }, 2)
      const { value } = await settle(client.completions.create(ask))
      clearInterval(sampler)
      assert.deepStrictEqual(trace(value!.attempts), [`${GPT} ResponseTooLarge`, `${HAIKU} ok`])
      // Reading the whole body would hold 64 MiB of bytes (and more as a string).
      assert.isBelow(peak, 48 * 1024 * 1024, `peak ${(peak / 1048576).toFixed(1)} MiB`)
    } finally {
      child.kill("SIGTERM")
    }
  })

  it("a gzip-compressed body is decompressed", async () => {
    sim.script("gpt-4o", { gzip: true, content: "compressed hello" })
    const { value } = await settle(connect(chain()).completions.create(ask))
    assert.strictEqual(value!.choices[0]!.message.content, "compressed hello")
    assert.strictEqual(value!.model, GPT)
  })

  it("deeply nested JSON in a 200 does not crash", async () => {
    const depth = 200_000
    sim.script("gpt-4o", { body: `{"x":${"[".repeat(depth)}${"]".repeat(depth)}}` })
    const { value } = await settle(connect(chain()).completions.create(ask))
    assert.deepStrictEqual(trace(value!.attempts), [`${GPT} MalformedResponse`, `${HAIKU} ok`])
  })
})

describe("Config and inputs", () => {
  const construct = (options: Partial<ConstructorParameters<typeof IronlabsAI>[0]>) => {
    try {
      new IronlabsAI({
        reliability: { failover_chain: [{ model: GPT }] },
        ...options,
        // The chain's provider has a key unless the test is about it.
        openai: { apiKey: "sk-test-key-0001", ...options.openai }
      })
    } catch (error) {
      assertNoCanary(error)
      return error as Error & { _tag: string; issues: ReadonlyArray<{ path: string; message: string }> }
    }
    return assert.fail("expected the constructor to throw")
  }

  for (const [name, key] of [
    ["CR/LF", `${CANARY}\r\nx-evil: 1`],
    ["NUL", `${CANARY}\u0000`],
    ["an empty key", " "]
  ] as const) {
    it(`an API key with ${name} is rejected without echoing it`, () => {
      const error = construct({ openai: { apiKey: key } })
      // Provider settings have their own error, apart from the reliability config's.
      assert.strictEqual(error._tag, "ConnectionConfigError")
      assert.deepStrictEqual(
        error.issues.map((i) => i.path),
        ["openai.apiKey"]
      )
    })
  }

  for (const [name, key, says] of [
    ["a trailing space", `${CANARY} `, "contains a space"],
    ["a zero-width space", `${CANARY}\u200b`, "contains U+200B, which no HTTP header can carry"],
    ["a no-break space", `\u00a0${CANARY}`, "contains U+00A0, outside printable ASCII"],
    ["a tab", `${CANARY}\t`, "contains a tab"]
  ] as const) {
    it(`an API key with ${name} is a construction error, not a retried Transport failure`, () => {
      const error = construct({ openai: { apiKey: key } })
      assert.strictEqual(error._tag, "ConnectionConfigError")
      assert.deepStrictEqual(error.issues, [
        {
          path: "openai.apiKey",
          message: `${says}: a key is printable ASCII, sent in an HTTP header; the key is not shown`
        }
      ])
    })
  }

  it("a model whose provider has no key is a construction error naming the variable to set", () => {
    const previous = process.env["ANTHROPIC_API_KEY"]
    delete process.env["ANTHROPIC_API_KEY"]
    try {
      const error = construct({ reliability: { failover_chain: [{ model: GPT }, { model: HAIKU }] } })
      assert.strictEqual(error._tag, "ConnectionConfigError")
      assert.deepStrictEqual(error.issues, [
        {
          path: "anthropic.apiKey",
          message:
            'is not set, and the config has anthropic/ models: set ANTHROPIC_API_KEY or pass anthropic: { apiKey } (a host that needs no key takes any, such as "none")'
        }
      ])
      // A provider no model uses needs no key.
      assert.doesNotThrow(() =>
        new IronlabsAI({ reliability: { failover_chain: [{ model: GPT }] }, openai: { apiKey: "sk-x" } }).close()
      )
    } finally {
      if (previous !== undefined) process.env["ANTHROPIC_API_KEY"] = previous
    }
  })

  it("a base URL with user:password@ is rejected without echoing it", () => {
    const error = construct({ anthropic: { baseURL: `https://user:${CANARY}@example.com` } })
    assert.deepStrictEqual(
      error.issues.map((i) => i.path),
      ["anthropic.baseURL"]
    )
  })

  for (const url of ["ftp://example.com/v1", "file:///etc/passwd", "not a url"]) {
    it(`a base URL that is not http(s) is rejected: ${url}`, () => {
      assert.deepStrictEqual(
        construct({ openai: { baseURL: url } }).issues.map((i) => i.path),
        ["openai.baseURL"]
      )
    })
  }

  it("__proto__ and constructor keys never touch prototypes", () => {
    const reliability = JSON.parse(
      '{"weights":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"openai/gpt-4o":1},' +
        '"max_retries":{"__proto__":{"polluted":1}}}'
    )
    const error = construct({ reliability })
    assert.strictEqual(error._tag, "ReliabilityConfigError")
    assert.include(
      error.issues.map((i) => i.path),
      "weights.__proto__"
    )
    assert.isUndefined(({} as Record<string, unknown>).polluted)
    assert.isUndefined((Object.prototype as unknown as Record<string, unknown>).polluted)
  })

  it("a top-level __proto__ key is rejected, not merged", () => {
    const error = construct({ reliability: JSON.parse('{"__proto__":{"weights":{"openai/gpt-4o":1}}}') })
    assert.include(
      error.issues.map((i) => i.path),
      "__proto__"
    )
  })
})
