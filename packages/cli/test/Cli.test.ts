/**
 * The `ironlabsai` command, end to end: each test spawns `src/bin.ts` under
 * tsx against its own loopback simulator and asserts stdout, stderr and the
 * exit code exactly. The tests run concurrently (each spawn costs a second or
 * two of tsx start-up); a few cheap error paths run `Cli.run` in process.
 *
 * Every spawned run gets the canary key below in OPENAI_API_KEY and
 * ANTHROPIC_API_KEY, and every test asserts it is absent from the output.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import { createServer } from "node:net"
import type { Readable } from "node:stream"
import { fileURLToPath } from "node:url"
import { stripVTControlCharacters } from "node:util"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { ConfigProvider, Effect, Exit, FiberId } from "effect"
import * as Cli from "../src/Cli.js"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url))

const CANARY = "sk-canary-cli-123"
/** A spawn takes a second or two of tsx start-up on an idle machine; far more on a busy one. */
const spawnTimeout = 60_000
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

type Child = ChildProcessByStdio<null, Readable, Readable>

/** The parent's env without any provider settings, plus the canary keys and `extra`. */
const environment = (extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(OPENAI|ANTHROPIC)_/.test(name)) env[name] = value
  }
  return { ...env, OPENAI_API_KEY: CANARY, ANTHROPIC_API_KEY: CANARY, ...extra }
}

const pointedAt = (sim: Simulator.Simulator) =>
  environment({ OPENAI_BASE_URL: sim.openaiBaseUrl, ANTHROPIC_BASE_URL: sim.anthropicBaseUrl })

const spawnCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Child =>
  spawn(process.execPath, ["--conditions=@ironlabsai/source", "--import", "tsx", bin, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })

/** Collects a child's output until it exits (killed after 50 s), and checks that no key leaked. */
const finish = (child: Child): Promise<Result> =>
  new Promise((resolve) => {
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (data) => {
      stdout += data
    })
    child.stderr.on("data", (data) => {
      stderr += data
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      assert.notInclude(stdout + stderr, CANARY, "an API key was printed")
      resolve({ code, signal, stdout, stderr })
    })
  })

const cli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = environment()) => finish(spawnCli(args, env))

/** Runs `f` with a fresh simulator that requires the canary key on both wires. */
const withSimulator = async <A>(f: (sim: Simulator.Simulator) => Promise<A>): Promise<A> => {
  const sim = await Simulator.start({ openaiApiKey: CANARY, anthropicApiKey: CANARY })
  try {
    return await f(sim)
  } finally {
    await sim.close()
  }
}

/** Durations vary and set the column widths: `  1. openai/gpt-4o    ok   12 ms` -> `1. openai/gpt-4o ok N ms`. */
const normalize = (text: string) =>
  text
    .split("\n")
    .map((line) =>
      line
        .replace(/\d+ ms/g, "N ms")
        .replace(/ +/g, " ")
        .trim()
    )
    .join("\n")

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

describe.concurrent("ironlabsai --help", { timeout: spawnTimeout }, () => {
  const help = async (args: ReadonlyArray<string>) => {
    const result = await cli(args)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stderr, "")
    return stripVTControlCharacters(result.stdout)
  }

  it("lists the commands, the environment and the exit codes", async () => {
    const out = await help(["--help"])
    assert.include(out, "ironlabsai 0.1.0")
    assert.include(out, "COMMANDS")
    for (const usage of ["- chat (-c, --config file)", "- simulate [--port integer]", "- demo [--live]"]) {
      assert.include(out, usage)
    }
    assert.include(out, "OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL")
    assert.include(out, "EXIT CODES")
  })

  it("chat --help explains the config file and every option", async () => {
    const out = await help(["chat", "--help"])
    assert.include(out, "$ chat (-c, --config file) [--system text] [--timeout float] [--json] <prompt>")
    assert.include(out, "print the answer, `Model used: <model id>` and the attempt trace")
    for (const option of ["(-c, --config file)", "--system text", "--timeout float", "--json", "<prompt>"]) {
      assert.include(out, option)
    }
    assert.include(out, "failover_chain")
    assert.include(out, "The overall deadline in seconds")
  })

  it("simulate --help explains the port, host and faults", async () => {
    const out = await help(["simulate", "--help"])
    for (const option of ["--port integer", "--host text", "--fail-rate float", "--latency integer", "--verbose"]) {
      assert.include(out, option)
    }
    assert.include(out, "(default 8787)")
    assert.include(out, "Loopback only")
  })

  it("demo --help explains --live and --requests", async () => {
    const out = await help(["demo", "--help"])
    assert.include(out, "$ demo [--live] [--requests integer]")
    assert.include(out, "Use the real providers")
    assert.include(out, "Requests per configuration")
  })
})

describe.concurrent("ironlabsai chat", { timeout: spawnTimeout }, () => {
  it("answers with the seed's weighted config, printing the model used and a one-attempt trace", () =>
    withSimulator(async (sim) => {
      const result = await cli(
        ["chat", "--config", fixture("weighted.json"), "Write a haiku about the ocean."],
        pointedAt(sim)
      )
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stderr, "")
      const match = /^Model used: (\S+)$/m.exec(result.stdout)
      assert.isNotNull(match)
      const model = match![1]!
      assert.oneOf(model, [GPT, HAIKU])
      const wireModel = model.slice(model.indexOf("/") + 1)
      assert.strictEqual(
        normalize(result.stdout),
        [
          `Simulated answer from ${wireModel}.`,
          "",
          `Model used: ${model}`,
          "Attempts (1):",
          `1. ${model} ok N ms`,
          ""
        ].join("\n")
      )
      // The key was sent (the simulator requires it), and gpt-4o got its model message.
      assert.strictEqual(sim.requests.length, 1)
      const body = sim.requests[0]!.body as { messages: ReadonlyArray<{ content: string }> }
      const contents = body.messages.map((m) => m.content)
      assert.deepStrictEqual(
        contents,
        model === GPT
          ? ["Write a haiku about the ocean.", "Please provide a concise response."]
          : ["Write a haiku about the ocean."]
      )
    }))

  it("fails over down the chain: gpt-4o answers 503 twice, the trace shows the retry and the failover", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 503 }, { status: 503 })
      const result = await cli(
        ["chat", "-c", fixture("failover.json"), "--system", "Be brief.", "Describe a sunset."],
        pointedAt(sim)
      )
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stderr, "")
      assert.strictEqual(
        normalize(result.stdout),
        [
          "Simulated answer from claude-3-5-haiku-20241022.",
          "",
          `Model used: ${HAIKU}`,
          "Attempts (3):",
          `1. ${GPT} Overloaded (HTTP 503) N ms Simulated server_error.`,
          `2. ${GPT} Overloaded (HTTP 503) N ms Simulated server_error.`,
          `3. ${HAIKU} ok N ms`,
          ""
        ].join("\n")
      )
      assert.deepStrictEqual(
        sim.requests.map((r) => r.wire),
        ["openai", "openai", "anthropic"]
      )
      // The system message went to Anthropic's `system` parameter.
      assert.strictEqual((sim.requests[2]!.body as { system?: unknown }).system, "Be brief.")
    }))

  it("names the fields a model cannot serve in the trace, and prints the tool calls of an answer", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { toolCalls: [{ id: "call_1", name: "weather", arguments: { city: "Paris" } }] })
      const result = await cli(["chat", "-c", fixture("unservable.json"), "Weather in Paris?"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(
        normalize(result.stdout),
        [
          'Tool calls: weather({"city":"Paris"})',
          "",
          `Model used: ${GPT}`,
          "Attempts (2):",
          `1. ${HAIKU} skipped: unsupported N ms cannot serve messages[1].name`,
          `2. ${GPT} ok N ms`,
          ""
        ].join("\n")
      )
      assert.deepStrictEqual(
        sim.requests.map((r) => r.wire),
        ["openai"]
      )
    }))

  it("--json prints the whole completion, with model and attempts", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 429, headers: { "retry-after-ms": "10" } })
      const result = await cli(["chat", "-c", fixture("failover.json"), "--json", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stderr, "")
      const completion = JSON.parse(result.stdout)
      assert.strictEqual(completion.object, "chat.completion")
      assert.strictEqual(completion.model, GPT)
      assert.strictEqual(completion.choices[0].message.content, "Simulated answer from gpt-4o.")
      assert.strictEqual(completion.attempts.length, 2)
      const [failed, succeeded] = completion.attempts
      assert.deepInclude(failed, { model: GPT, outcome: "failure" })
      assert.deepInclude(failed.error, { reason: "RateLimited", status: 429, retry_after_ms: 10 })
      assert.deepStrictEqual(Object.keys(succeeded), ["model", "outcome", "duration_ms"])
      assert.deepInclude(succeeded, { model: GPT, outcome: "success" })
      assert.isNumber(succeeded.duration_ms)
    }))

  it("--json ends with each model's health: a 401 holds gpt-4o for 5 minutes", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 401, error: { type: "authentication_error" } })
      const before = Date.now()
      const result = await cli(["chat", "-c", fixture("failover.json"), "--json", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      const { model, health } = JSON.parse(result.stdout)
      assert.strictEqual(model, HAIKU)
      assert.deepStrictEqual(
        health.map((h: { model: string; state: string; reason?: string }) => [h.model, h.state, h.reason]),
        [
          [GPT, "held", "Authentication"],
          [HAIKU, "healthy", undefined]
        ]
      )
      // Held from the moment the 401 came back, for the default long hold of 300 s (the real clock: within the run).
      assert.isAtLeast(health[0].until, before + 300_000)
      assert.isAtMost(health[0].until, Date.now() + 300_000)
      assert.deepInclude(health[1], { consecutiveFailures: 0, recentCalls: 1, recentFailures: 0, opens: 0 })
    }))

  it("exits 1 with the error and the trace when every model fails, redacting a key a provider echoes", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 500 }, { status: 502 })
      sim.script("claude-3-5-haiku-20241022", {
        status: 401,
        error: { type: "authentication_error", message: `invalid x-api-key ${CANARY}` }
      })
      const result = await cli(["chat", "-c", fixture("failover.json"), "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "")
      assert.strictEqual(
        normalize(result.stderr),
        [
          `All models failed after 3 attempts: ${GPT}: ServerError x2; ${HAIKU}: Authentication`,
          "Attempts (3):",
          `1. ${GPT} ServerError (HTTP 500) N ms Simulated server_error.`,
          `2. ${GPT} ServerError (HTTP 502) N ms Simulated server_error.`,
          `3. ${HAIKU} Authentication (HTTP 401) N ms invalid x-api-key [redacted]`,
          ""
        ].join("\n")
      )
    }))

  it("exits 2 and lists every offending path of an invalid config", async () => {
    const file = fixture("invalid.json")
    const result = await cli(["chat", "-c", file, "Hi"])
    assert.strictEqual(result.code, 2)
    assert.strictEqual(result.stdout, "")
    assert.strictEqual(
      result.stderr,
      [
        `Invalid reliability config in ${file}:`,
        '  - weights["openai/gpt-4o"]: a weight is a finite number >= 0',
        '  - max_retries["openai/gpt-4o"]: max_retries is an integer >= 0',
        '  - timeout["openai/gpt-4o"]: timeout is a number of seconds > 0',
        '  - weights["mistral/large"]: unknown provider "mistral" (known: openai, anthropic)',
        '  - max_retries["anthropic/claude-3-5-haiku-20241022"]: is not a model in weights',
        ""
      ].join("\n")
    )
  })

  it("exits 2 naming a config file that does not exist", async () => {
    const file = fixture("missing.json")
    const result = await cli(["chat", "--config", file, "Hi"])
    assert.strictEqual(result.code, 2)
    assert.strictEqual(result.stdout, "")
    assert.strictEqual(result.stderr, `Config file not found: ${file}\n`)
  })
})

describe("ironlabsai simulate", { timeout: spawnTimeout }, () => {
  it("prints the base URLs, answers an OpenAI request, logs it, and exits 0 on SIGTERM", async () => {
    const port = await freePort()
    const child = spawnCli(["simulate", "--port", String(port), "--verbose"], environment())
    const done = finish(child)
    const url = `http://127.0.0.1:${port}`
    let stdout = ""
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (data) => {
        stdout += data
        if (stdout.includes("Press Ctrl+C to stop.")) resolve()
      })
      child.on("exit", () => reject(new Error(`simulate exited early: ${stdout}`)))
    })
    assert.include(stdout, `OPENAI_BASE_URL=${url}/v1\n`)
    assert.include(stdout, `ANTHROPIC_BASE_URL=${url}\n`)

    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${CANARY}` },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] })
    })
    assert.strictEqual(response.status, 200)
    const body = (await response.json()) as { choices: ReadonlyArray<{ message: { content: string } }> }
    assert.strictEqual(body.choices[0]?.message.content, "Simulated answer from gpt-4o.")

    child.kill("SIGTERM")
    const result = await done
    // runMain interrupts the main fiber on SIGTERM: the simulator is closed by
    // its finalizer and the process exits 0, not by the signal.
    assert.strictEqual(result.signal, null)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stderr, "")
    assert.strictEqual(
      result.stdout,
      [
        `IronlabsAI simulator listening on ${url} (OpenAI and Anthropic wires).`,
        "Point clients at it:",
        `  export OPENAI_BASE_URL=${url}/v1`,
        `  export ANTHROPIC_BASE_URL=${url}`,
        "Any API key is accepted.",
        "Faults: none.",
        "Press Ctrl+C to stop.",
        "#1 openai gpt-4o answered 200",
        "Simulator stopped.",
        ""
      ].join("\n")
    )
  })
})

describe("Cli.run in process", () => {
  /** Runs the tool with a captured console and the given env; returns the exit code and the output. */
  const run = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) =>
    Effect.gen(function* () {
      const stdout: Array<string> = []
      const stderr: Array<string> = []
      const console = yield* Effect.console
      const capture = {
        ...console,
        log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void stdout.push(args.join(" "))),
        error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => void stderr.push(args.join(" ")))
      }
      const exit = yield* Cli.run(["node", "ironlabsai", ...args]).pipe(
        Effect.withConsole(capture),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
      return { code: Cli.exitCode(exit), exit, stdout: stdout.join("\n"), stderr: stderr.join("\n") }
    })

  it.live("a config file that is not JSON exits 2, naming the file", () =>
    Effect.gen(function* () {
      const file = fixture("not-json.json")
      const result = yield* run(["chat", "-c", file, "Hi"])
      assert.strictEqual(result.code, 2)
      assert.match(result.stderr, new RegExp(`^Config file ${file} is not valid JSON: `))
    })
  )

  it.live("a deadline that passes exits 1 with DeadlineExceeded and the attempts made", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.make({ openaiApiKey: CANARY })
      sim.script("gpt-4o", { hang: true })
      const result = yield* run(["chat", "-c", fixture("failover.json"), "--timeout", "0.3", "Hi"], {
        OPENAI_API_KEY: CANARY,
        OPENAI_BASE_URL: sim.openaiBaseUrl,
        ANTHROPIC_API_KEY: CANARY,
        ANTHROPIC_BASE_URL: sim.anthropicBaseUrl
      })
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "")
      assert.strictEqual(result.stderr, "Deadline of 300ms exceeded: no attempt finished\nAttempts: none")
      assert.notInclude(result.stderr, CANARY)
    }).pipe(Effect.scoped)
  )

  it.live("usage errors exit 2: a non-loopback --host, --timeout 0, no command", () =>
    Effect.gen(function* () {
      const host = yield* run(["simulate", "--host", "0.0.0.0"])
      assert.strictEqual(host.code, 2)
      assert.include(host.stderr, "--host 0.0.0.0 refused: the simulator serves loopback only")
      const timeout = yield* run(["chat", "-c", fixture("failover.json"), "--timeout", "0", "Hi"])
      assert.strictEqual(timeout.code, 2)
      assert.strictEqual(timeout.stderr, "--timeout is a number of seconds > 0, got 0")
      const none = yield* run([])
      assert.strictEqual(none.code, 2)
      assert.include(none.stderr, "Missing command")
      const unknown = yield* run(["chat", "Hi"])
      assert.strictEqual(unknown.code, 2)
      assert.include(unknown.stderr, "Expected to find option: '--config'")
    })
  )

  it("an interruption exits 0, as runMain does", () => {
    assert.strictEqual(Cli.exitCode(Exit.interrupt(FiberId.none)), 0)
  })
})
