/**
 * The facade's events and logs (DESIGN §10), over real HTTP to the loopback
 * simulator: `client.on`/`off` deliver the router's decisions and model
 * health's transitions, typed and in order; the `logger` and `logLevel`
 * options route the library's log lines, or silence them. The only real-clock
 * tolerance is a retry's delay, drawn from its jittered backoff.
 */
import { afterAll, afterEach, assert, beforeAll, beforeEach, describe, it, vi } from "@effect/vitest"
import type { ModelHealth, RouteEvent } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { type ClientOptions, type Events, IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const OPENAI_KEY = "sk-openai-test-f4c3"
const ANTHROPIC_KEY = "sk-ant-test-f4c3"
const hi = { messages: [{ role: "user" as const, content: "Hi" }] }

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ openaiApiKey: OPENAI_KEY, anthropicApiKey: ANTHROPIC_KEY })
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())
afterEach(() => {
  vi.restoreAllMocks()
})

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

/** A facade client pointed at the simulator, with `options` beside. */
const connect = (
  reliability: ClientOptions["reliability"],
  options: Omit<ClientOptions, "reliability" | "openai" | "anthropic"> = {}
) => {
  const client = new IronlabsAI({
    reliability,
    openai: { apiKey: OPENAI_KEY, baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: ANTHROPIC_KEY, baseURL: sim.anthropicBaseUrl },
    ...options
  })
  clients.push(client)
  return client
}

type Level = "debug" | "info" | "warn" | "error"
interface Line {
  readonly level: Level
  readonly message: string
  readonly fields: Record<string, unknown>
}

/** A logger that keeps every line it is given. */
const recorder = () => {
  const lines: Array<Line> = []
  const at = (level: Level) => (message: string, fields: Record<string, unknown>) => {
    lines.push({ level, message, fields })
  }
  return { lines, logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") } }
}

/** Every route event, by a listener on each of the four types. */
const listen = (client: IronlabsAI) => {
  const events: Array<RouteEvent.RouteEvent> = []
  const push = (event: RouteEvent.RouteEvent) => {
    events.push(event)
  }
  client.on("attempt", push).on("retry", push).on("failover", push).on("skip", push)
  return { events, push }
}

/** The events without what the real clock decides (call durations), a retry's delay checked against its bounds. */
const stable = (events: ReadonlyArray<RouteEvent.RouteEvent>) =>
  events.map((event) => {
    if (event.type === "attempt") {
      assert.isAtLeast(event.duration_ms, 0)
      const { duration_ms: _, ...rest } = event
      return rest
    }
    return event
  })

/** The first event `client` delivers of `type`. */
const next = <K extends keyof Events>(client: IronlabsAI, type: K) =>
  new Promise<Events[K]>((resolve) => {
    const listener = (event: Events[K]) => {
      client.off(type, listener)
      resolve(event)
    }
    client.on(type, listener)
  })

describe("IronlabsAI events: route events", () => {
  it("a retry then a failover: each attempt, the retry and the failover, in order, as they happen", async () => {
    sim.script("gpt-4o", { status: 503 }, { status: 503 })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 1, backoff: 0.01 }, { model: HAIKU }] })
    const { events } = listen(client)
    const response = await client.completions.create(hi)
    assert.strictEqual(response.model, HAIKU)
    const retry = events[1]
    assert.strictEqual(retry?.type, "retry")
    // The backoff's first wait: 0.01 s times a factor in [0.8, 1.2].
    const delay = retry?.type === "retry" ? retry.delay_ms : Number.NaN
    assert.isAtLeast(delay, 8)
    assert.isAtMost(delay, 12)
    assert.deepStrictEqual(stable(events), [
      { type: "attempt", model: GPT, outcome: "failure", attempt: 1, reason: "Overloaded", status: 503, probe: false },
      { type: "retry", model: GPT, reason: "Overloaded", delay_ms: delay, attempt: 2 },
      { type: "attempt", model: GPT, outcome: "failure", attempt: 2, reason: "Overloaded", status: 503, probe: false },
      { type: "failover", model: GPT, reason: "Overloaded", status: 503, to_models: 1 },
      { type: "attempt", model: HAIKU, outcome: "success", attempt: 1, probe: false }
    ])
  })

  it("events are delivered synchronously: each listener has seen its event before the request goes on", async () => {
    sim.script("gpt-4o", { status: 500 })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] })
    const seen: Array<string> = []
    client.on("attempt", (event) => seen.push(`attempt ${event.model} (${sim.requests.length} sent)`))
    client.on("failover", (event) => seen.push(`failover ${event.model} (${sim.requests.length} sent)`))
    await client.completions.create(hi)
    // The failover is told before the second model is called.
    assert.deepStrictEqual(seen, [`attempt ${GPT} (1 sent)`, `failover ${GPT} (1 sent)`, `attempt ${HAIKU} (2 sent)`])
  })

  it("off stops delivery to that listener only; off of a listener never added is ignored", async () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    const first: Array<string> = []
    const second: Array<string> = []
    const one = (event: RouteEvent.AttemptEvent) => first.push(event.outcome)
    const two = (event: RouteEvent.AttemptEvent) => second.push(event.outcome)
    client.on("attempt", one).on("attempt", two)
    await client.completions.create(hi)
    assert.strictEqual(client.off("attempt", one), client)
    client.off("retry", () => {})
    await client.completions.create(hi)
    assert.deepStrictEqual(first, ["success"])
    assert.deepStrictEqual(second, ["success", "success"])
    client.off("attempt", two)
    await client.completions.create(hi)
    assert.deepStrictEqual(second, ["success", "success"])
  })

  it("a listener added twice hears each event twice, until removed once per time it was added", async () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    const heard: Array<string> = []
    const listener = (event: RouteEvent.AttemptEvent) => heard.push(event.model)
    client.on("attempt", listener).on("attempt", listener)
    await client.completions.create(hi)
    client.off("attempt", listener)
    await client.completions.create(hi)
    client.off("attempt", listener)
    await client.completions.create(hi)
    assert.deepStrictEqual(heard, [GPT, GPT, GPT])
  })

  it("a held model: the hold as a health event, then the next request's skip", async () => {
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] })
    const health = next(client, "health")
    const before = Date.now()
    await client.completions.create(hi)
    const after = Date.now()
    const held = await health
    assert.deepStrictEqual(
      { ...held, at: 0, until: 0 },
      {
        model: GPT,
        from: "healthy",
        to: "held",
        at: 0,
        until: 0,
        reason: "RateLimited"
      }
    )
    // A stated wait of 30 s, from when the 429 was recorded.
    assert.isAtLeast(held.until!, before + 30_000)
    assert.isAtMost(held.until!, after + 30_000)
    const { events } = listen(client)
    const response = await client.completions.create(hi)
    assert.strictEqual(response.model, HAIKU)
    assert.deepStrictEqual(stable(events), [
      { type: "skip", model: GPT, reason: "held", until: held.until!, cause: "RateLimited" },
      { type: "attempt", model: HAIKU, outcome: "success", attempt: 1, probe: false }
    ])
  })

  it("a breaker that opens: healthy -> open, with its reason and until", async () => {
    sim.script("gpt-4o", { status: 500 })
    const client = connect({
      failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }],
      health: { consecutive_failures: 1, open_for: 30 }
    })
    const transitions: Array<ModelHealth.Transition> = []
    const opened = next(client, "health")
    client.on("health", (t) => transitions.push(t))
    await client.completions.create(hi)
    const transition = await opened
    assert.deepStrictEqual(
      [transition.model, transition.from, transition.to, transition.reason],
      [GPT, "healthy", "open", "ServerError"]
    )
    assert.isAbove(transition.until!, transition.at)
    assert.deepStrictEqual(transitions, [transition])
  })

  it("after the last health listener is removed, transitions are no longer delivered", async () => {
    sim.script("gpt-4o", { status: 429, headers: { "retry-after": "30" } })
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] })
    const transitions: Array<ModelHealth.Transition> = []
    const listener = (t: ModelHealth.Transition) => transitions.push(t)
    client.on("health", listener).off("health", listener)
    await client.completions.create(hi)
    // The transition happened (the model is held) but nobody was told.
    assert.strictEqual(client.health()[0]?.state, "held")
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.deepStrictEqual(transitions, [])
  })

  it("a listener that throws does not fail the request; it is logged at error level with the event type, not its message", async () => {
    sim.script("gpt-4o", { status: 500 })
    const { lines, logger } = recorder()
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] }, { logger })
    const after: Array<string> = []
    client.on("failover", () => {
      throw new TypeError("the user's secret is 42")
    })
    client.on("failover", (event) => after.push(event.model))
    const response = await client.completions.create(hi)
    assert.strictEqual(response.model, HAIKU)
    // The next listener of the same event still heard it.
    assert.deepStrictEqual(after, [GPT])
    assert.deepStrictEqual(
      lines.filter((line) => line.level === "error"),
      [{ level: "error", message: "event listener threw", fields: { event: "failover", error: "TypeError" } }]
    )
    assert.notInclude(JSON.stringify(lines), "secret")
  })

  it("on and off refuse an unknown type and a listener that is not a function, with a TypeError", () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    const on = client.on as (type: unknown, listener: unknown) => unknown
    const off = client.off as (type: unknown, listener: unknown) => unknown
    assert.throws(() => on.call(client, "error", () => {}), TypeError, /type must be "attempt", "retry"/)
    assert.throws(() => on.call(client, "retry", "nope"), TypeError, /listener must be a function; got a string/)
    assert.throws(() => off.call(client, undefined, () => {}), TypeError, /off\(type, listener\): type must be/)
  })

  it("close() stops watching model health, and resolves", async () => {
    const client = connect({ failover_chain: [{ model: GPT }] })
    client.on("health", () => {})
    await client.close()
    // A listener added after close is kept, but nothing is watched or delivered.
    client.on("health", () => {})
    await client.close()
  })
})

describe("IronlabsAI logs", () => {
  const milliseconds = { failover_chain: [{ model: GPT, timeout: 5000 }] }
  const warning =
    "reliability config: failover_chain[0].timeout is 5000 s (83 minutes): timeouts are in seconds; did you mean 5?"

  it("the logger receives the config warning at construction", () => {
    const { lines, logger } = recorder()
    connect(milliseconds, { logger })
    assert.deepStrictEqual(lines, [{ level: "warn", message: warning, fields: {} }])
  })

  it("by default, warnings go to console.warn as one line; debug lines are not logged", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    const debug = vi.spyOn(console, "debug").mockImplementation(() => {})
    const info = vi.spyOn(console, "info").mockImplementation(() => {})
    sim.script("gpt-4o", { status: 401 })
    const client = connect({ failover_chain: [{ model: GPT, timeout: 5000 }, { model: HAIKU }] })
    await client.completions.create(hi)
    const [held] = client.health()
    assert.deepStrictEqual(warn.mock.calls, [
      [`ironlabsai: ${warning}`],
      [`ironlabsai: model held model=${GPT} reason=Authentication until=${new Date(held!.until!).toISOString()}`]
    ])
    assert.strictEqual(debug.mock.calls.length, 0)
    assert.strictEqual(info.mock.calls.length, 0)
  })

  it('logLevel "debug": the routing decisions, with their fields', async () => {
    sim.script("gpt-4o", { status: 503 }, { status: 503 })
    const { lines, logger } = recorder()
    const client = connect(
      { failover_chain: [{ model: GPT, max_retries: 1, backoff: 0.01 }, { model: HAIKU }] },
      { logger, logLevel: "debug" }
    )
    await client.completions.create(hi)
    const debug = lines.filter((line) => line.level === "debug")
    assert.deepStrictEqual(
      debug.map((line) => [line.message, line.fields.model, line.fields.reason]),
      [
        ["retrying", GPT, "Overloaded"],
        ["failing over", GPT, "Overloaded"]
      ]
    )
    assert.strictEqual(debug[1]?.fields.status, 503)
    assert.isNumber(debug[0]?.fields.delay_ms)
  })

  it("a request that fails is the caller's rejection, not also an unhandled-error log line", async () => {
    sim.script("gpt-4o", { status: 400 })
    const { lines, logger } = recorder()
    const client = connect({ failover_chain: [{ model: GPT, max_retries: 0 }] }, { logger, logLevel: "debug" })
    const error = await client.completions.create(hi).then(
      () => assert.fail("expected a rejection"),
      (e: { readonly _tag: string }) => e
    )
    assert.strictEqual(error._tag, "AllModelsFailed")
    assert.deepStrictEqual(lines, [
      {
        level: "debug",
        message: "no model left to try",
        fields: { model: GPT, reason: "InvalidRequest", status: 400 }
      }
    ])
  })

  it('logLevel "error" drops warnings; a logger without a level drops that level', async () => {
    const { lines, logger } = recorder()
    connect(milliseconds, { logger, logLevel: "error" })
    assert.deepStrictEqual(lines, [])
    const warnings: Array<string> = []
    connect(milliseconds, { logger: { error: () => {}, warn: (message) => warnings.push(message) } })
    connect(milliseconds, { logger: { debug: () => {} } })
    assert.deepStrictEqual(warnings, [warning])
  })

  it("console itself fits as a logger: the message, then the fields", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    connect(milliseconds, { logger: console })
    assert.deepStrictEqual(warn.mock.calls, [[warning, {}]])
  })

  it("logger: false silences everything, warnings and listener failures included", async () => {
    const spies = (["debug", "info", "log", "warn", "error"] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation(() => {})
    )
    sim.script("gpt-4o", { status: 401 })
    const client = connect(
      { failover_chain: [{ model: GPT, timeout: 5000 }, { model: HAIKU }] },
      { logger: false, logLevel: "debug" }
    )
    client.on("attempt", () => {
      throw new Error("boom")
    })
    await client.completions.create(hi)
    assert.strictEqual(client.health()[0]?.state, "held")
    for (const spy of spies) assert.deepStrictEqual(spy.mock.calls, [])
  })

  it('logLevel "silent" silences the default console logger', () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    connect(milliseconds, { logLevel: "silent" })
    assert.deepStrictEqual(warn.mock.calls, [])
  })

  it("a logger that throws does not break the client", async () => {
    sim.script("gpt-4o", { status: 401 })
    const client = connect(
      { failover_chain: [{ model: GPT, timeout: 5000 }, { model: HAIKU }] },
      {
        logger: {
          warn: () => {
            throw new Error("logger down")
          }
        }
      }
    )
    const response = await client.completions.create(hi)
    assert.strictEqual(response.model, HAIKU)
  })

  it("no key and no prompt in any log line, at debug level, through holds, retries and failovers", async () => {
    const prompt = "My account number is 7391-4412, please summarise it."
    sim.script("gpt-4o", { status: 503 }, { status: 429, headers: { "retry-after": "30" } })
    sim.script("claude-3-5-haiku-20241022", { status: 500 })
    const { lines, logger } = recorder()
    const client = connect(
      {
        failover_chain: [
          { model: GPT, max_retries: 1, backoff: 0.01 },
          { model: HAIKU, max_retries: 1, backoff: 0.01 }
        ],
        health: { consecutive_failures: 1, open_for: 30 }
      },
      { logger, logLevel: "debug" }
    )
    client.on("attempt", () => {
      throw new Error(prompt)
    })
    await client.completions.create({ messages: [{ role: "user", content: prompt }] })
    const text = JSON.stringify(lines)
    assert.isAbove(lines.length, 3)
    for (const secret of [OPENAI_KEY, ANTHROPIC_KEY, "7391-4412", "account number"]) assert.notInclude(text, secret)
  })

  it("the options are checked at construction: a TypeError naming the option", () => {
    const reliability = { failover_chain: [{ model: GPT }] }
    const refused = (options: Record<string, unknown>, pattern: RegExp) =>
      assert.throws(
        () => new IronlabsAI({ reliability, openai: { apiKey: OPENAI_KEY }, ...options }),
        TypeError,
        pattern
      )
    refused({ logger: true }, /^logger must be an object with debug, info, warn or error functions .* got a boolean$/)
    refused({ logger: "console" }, /^logger must be .* got a string$/)
    refused({ logger: [] }, /^logger must be .* got an array$/)
    refused(
      { logger: { warn: "yes" } },
      /^logger\.warn must be a function \(message, fields\) or undefined; got a string$/
    )
    refused({ logLevel: "verbose" }, /^logLevel must be "debug", "info", "warn", "error" or "silent"; got "verbose"$/)
    refused({ logLevel: 2 }, /^logLevel must be .* got a number$/)
    refused({ telemetry: {} }, /^telemetry must be the value of tracing\(\) from "ironlabsai\/OpenTelemetry"/)
    refused({ telemetry: { _tag: "Tracing", layer: {} } }, /^telemetry must be/)
    refused({ recordContent: "yes" }, /^recordContent must be a boolean, or null or undefined; got a string$/)
    // null and undefined mean "not given".
    const quiet = new IronlabsAI({
      reliability,
      openai: { apiKey: OPENAI_KEY },
      logger: null,
      logLevel: null,
      telemetry: null,
      recordContent: null
    })
    clients.push(quiet)
  })
})
