/**
 * The `ironlabsai` command, end to end: each test spawns `src/bin.ts` under
 * tsx against its own loopback simulator and asserts stdout, stderr and the
 * exit code exactly. The tests run concurrently (each spawn costs a second or
 * two of tsx start-up); a few cheap error paths run `Cli.run` in process.
 *
 * Every spawned run gets the canary key below in OPENAI_API_KEY and
 * ANTHROPIC_API_KEY, and every test asserts it is absent from the output.
 * Spawned runs write to pipes, not terminals: every test asserts that their
 * output has no escape code at all.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import type { Readable, Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import { Terminal } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { ConfigProvider, Effect, Exit, FiberId, Layer } from "effect"
import * as Cli from "../src/Cli.js"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url))

const CANARY = "sk-canary-cli-123"
/** The version help must show: the package's own. */
const cliVersion = (createRequire(import.meta.url)("../package.json") as { readonly version: string }).version
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

type Child = ChildProcessByStdio<Writable, Readable, Readable>

/**
 * The parent's env without any provider or Redis settings nor `NO_COLOR` (colour is off because the output is not a
 * terminal, not because of it), plus the canary keys and `extra`.
 */
const environment = (extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(OPENAI|ANTHROPIC|IRONLABSAI)_/.test(name) && name !== "NO_COLOR") env[name] = value
  }
  return { ...env, OPENAI_API_KEY: CANARY, ANTHROPIC_API_KEY: CANARY, ...extra }
}

const pointedAt = (sim: Simulator.Simulator) =>
  environment({ OPENAI_BASE_URL: sim.openaiBaseUrl, ANTHROPIC_BASE_URL: sim.anthropicBaseUrl })

/** Spawns the tool with `input` on its stdin, closed after it (at once without `input`). */
const spawnCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, input = ""): Child => {
  const child = spawn(process.execPath, ["--conditions=@ironlabsai/source", "--import", "tsx", bin, ...args], {
    env,
    stdio: ["pipe", "pipe", "pipe"]
  })
  child.stdin.end(input)
  return child
}

/** Collects a child's output until it exits (killed after 50 s); checks that no key leaked and no escape code was written. */
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
      assert.notInclude(stdout, "\x1b", "an escape code went to stdout, a pipe")
      assert.notInclude(stderr, "\x1b", "an escape code went to stderr, a pipe")
      resolve({ code, signal, stdout, stderr })
    })
  })

const cli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = environment(), input?: string) =>
  finish(spawnCli(args, env, input))

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
  /** The help on stdout, plain text (`finish` checks that no escape code was written). */
  const help = async (args: ReadonlyArray<string>) => {
    const result = await cli(args)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stderr, "")
    return result.stdout
  }

  it("lists the commands, the output streams, the environment and the exit codes, in plain text", async () => {
    const out = await help(["--help"])
    assert.isTrue(out.startsWith(`ironlabsai\n\nironlabsai ${cliVersion} -- `), out)
    assert.include(out, "COMMANDS")
    for (const usage of ["- chat (-c, --config file)", "- simulate [--port integer]", "- demo [--live]"]) {
      assert.include(out, usage)
    }
    assert.include(out, "OUTPUT\n\nWhat a command produces goes to stdout")
    assert.include(out, "nor when NO_COLOR is set or TERM is dumb")
    assert.include(out, "OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL")
    assert.include(out, "EXIT CODES")
  })

  it("chat --help shows the full command, explains the config file, every option and the streams", async () => {
    const out = await help(["chat", "--help"])
    assert.include(
      out,
      "\n$ ironlabsai chat (-c, --config file) [--system text] [--timeout float] [--json] [--stream] [(-v, --verbose)] [--redis text] <prompt>\n"
    )
    assert.include(out, "The answer goes to stdout; `Model used: <model id>` and the attempt trace go to stderr")
    for (const option of [
      "(-c, --config file)",
      "--system text",
      "--timeout float",
      "--json",
      "--stream",
      "(-v, --verbose)",
      "<prompt>"
    ]) {
      assert.include(out, option)
    }
    assert.include(out, "failover_chain")
    assert.include(out, "The overall deadline in seconds")
    assert.include(out, "`-` reads it from stdin until end of input")
    assert.include(out, '{ "error": { "_tag", "message", ..., "attempts" } }')
    assert.include(out, "one line of JSON (NDJSON)")
    assert.include(out, "Print each routing decision on stderr as it happens, one line each")
    assert.include(out, "With --json, each line is the event as a JSON object.")
  })

  it("the full command also with -h, and with options before it", async () => {
    const out = await help(["chat", "-c", fixture("failover.json"), "-h"])
    assert.include(out, "\n$ ironlabsai chat (-c, --config file)")
  })

  it("simulate --help shows the full command, explains the port, host, faults and API keys", async () => {
    const out = await help(["simulate", "--help"])
    assert.include(out, "\n$ ironlabsai simulate [--port integer] [--host text]")
    for (const option of ["--port integer", "--host text", "--fail-rate float", "--latency integer", "--verbose"]) {
      assert.include(out, option)
    }
    assert.include(out, "(default 8787)")
    assert.include(out, "Loopback only")
    assert.include(
      out,
      "Clients must send an API key (ironlabsai and the official SDKs refuse to run without one), but any key is accepted."
    )
  })

  it("demo --help shows the full command, explains --live and --requests", async () => {
    const out = await help(["demo", "--help"])
    assert.include(out, "\n$ ironlabsai demo [--live] [--requests integer] [--redis text]\n")
    assert.include(out, "Use the real providers")
    assert.include(out, "Requests per configuration")
  })

  it("a usage error goes to stderr in plain text, exit 2", async () => {
    const result = await cli(["chat", "Hi"])
    assert.strictEqual(result.code, 2)
    assert.strictEqual(result.stdout, "")
    assert.strictEqual(result.stderr, "Expected to find option: '--config'\n\n")
  })
})

describe.concurrent("ironlabsai chat", { timeout: spawnTimeout }, () => {
  it("answers with the seed's weighted config: the answer alone on stdout, the model used and the trace on stderr", () =>
    withSimulator(async (sim) => {
      const result = await cli(
        ["chat", "--config", fixture("weighted.json"), "Write a haiku about the ocean."],
        pointedAt(sim)
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const match = /^Model used: (\S+)$/m.exec(result.stderr)
      assert.isNotNull(match)
      const model = match![1]!
      assert.oneOf(model, [GPT, HAIKU])
      const wireModel = model.slice(model.indexOf("/") + 1)
      // `ironlabsai chat ... > answer.txt` gets the answer and nothing else.
      assert.strictEqual(result.stdout, `Simulated answer from ${wireModel}.\n`)
      assert.strictEqual(
        normalize(result.stderr),
        [`Model used: ${model}`, "Attempts (1):", `1. ${model} ok N ms`, ""].join("\n")
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
      assert.strictEqual(result.stdout, "Simulated answer from claude-3-5-haiku-20241022.\n")
      assert.strictEqual(
        normalize(result.stderr),
        [
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
      assert.strictEqual(result.stdout, 'Tool calls: weather({"city":"Paris"})\n')
      assert.strictEqual(
        normalize(result.stderr),
        [
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

  it("a config with routing_strategy, prices, rate_limits and hedge: the cheapest model answers, with its cost", () =>
    withSimulator(async (sim) => {
      const result = await cli(["chat", "-c", fixture("strategies.json"), "--json", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      const completion = JSON.parse(result.stdout)
      assert.strictEqual(completion.model, HAIKU)
      const { prompt_tokens, completion_tokens } = completion.usage
      assert.strictEqual(completion.cost, (prompt_tokens * 0.8 + completion_tokens * 4) / 1_000_000)
      assert.deepStrictEqual(
        sim.requests.map((r) => r.wire),
        ["anthropic"]
      )
    }))

  it("a timeout typed in milliseconds is a warning on stderr; the answer still comes", () =>
    withSimulator(async (sim) => {
      const result = await cli(["chat", "-c", fixture("milliseconds.json"), "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.include(
        result.stderr,
        "reliability config: failover_chain[0].timeout is 5000 s (83 minutes): timeouts are in seconds; did you mean 5?"
      )
      assert.strictEqual(result.stdout, "Simulated answer from gpt-4o.\n")
    }))

  it("--log-level debug shows the router's decisions on stderr: the retry with its delay, the failover", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 503 }, { status: 503 })
      const result = await cli(["--log-level", "debug", "chat", "-c", fixture("failover.json"), "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      const stderr = result.stderr
      assert.match(stderr, /DEBUG[^\n]*retrying/)
      assert.match(stderr, /DEBUG[^\n]*failing over/)
      assert.include(stderr, "reason: Overloaded")
      // Without it, the trace alone: no log lines.
      const quiet = await cli(["chat", "-c", fixture("failover.json"), "Hi"], pointedAt(sim))
      assert.notMatch(quiet.stderr, /DEBUG|WARN/)
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

  it("--json on failure prints the error object on stdout, the message on stderr, exit 1, keys redacted", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 500 }, { status: 502 })
      sim.script("claude-3-5-haiku-20241022", {
        status: 401,
        error: { type: "authentication_error", message: `invalid x-api-key ${CANARY}` }
      })
      const result = await cli(["chat", "-c", fixture("failover.json"), "--json", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 1)
      const message = `All models failed after 3 attempts: ${GPT}: ServerError x2; ${HAIKU}: Authentication`
      assert.strictEqual(result.stderr, `${message}\n`)
      const document = JSON.parse(result.stdout)
      assert.deepStrictEqual(Object.keys(document), ["error"])
      const { error } = document
      assert.deepStrictEqual(Object.keys(error), ["_tag", "message", "attempts"])
      assert.strictEqual(error._tag, "AllModelsFailed")
      assert.strictEqual(error.message, message)
      assert.deepStrictEqual(
        error.attempts.map((a: { model: string; outcome: string; error: { reason: string; status: number } }) => [
          a.model,
          a.outcome,
          a.error.reason,
          a.error.status
        ]),
        [
          [GPT, "failure", "ServerError", 500],
          [GPT, "failure", "ServerError", 502],
          [HAIKU, "failure", "Authentication", 401]
        ]
      )
      assert.strictEqual(error.attempts[2].error.description, "invalid x-api-key [redacted]")
    }))

  it("--json with an invalid config prints a UsageError object, exit 2", async () => {
    const file = fixture("invalid.json")
    const result = await cli(["chat", "-c", file, "--json", "Hi"])
    assert.strictEqual(result.code, 2)
    const message = result.stderr.slice(0, -1)
    assert.isTrue(message.startsWith(`Invalid reliability config in ${file}:\n  - weights`), message)
    assert.deepStrictEqual(JSON.parse(result.stdout), { error: { _tag: "UsageError", message, attempts: [] } })
  })

  it("`-` reads the prompt from stdin until its end, trailing newlines removed", () =>
    withSimulator(async (sim) => {
      const result = await cli(
        ["chat", "-c", fixture("failover.json"), "-"],
        pointedAt(sim),
        "Describe a sunset.\nIn two lines.\n\n"
      )
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout, "Simulated answer from gpt-4o.\n")
      const body = sim.requests[0]!.body as { messages: ReadonlyArray<{ role: string; content: string }> }
      assert.deepStrictEqual(body.messages, [{ role: "user", content: "Describe a sunset.\nIn two lines." }])
    }))

  it("`-` with an empty stdin is a usage error, exit 2, and nothing is sent", () =>
    withSimulator(async (sim) => {
      for (const input of ["", "\n \n"]) {
        const result = await cli(["chat", "-c", fixture("failover.json"), "-"], pointedAt(sim), input)
        assert.strictEqual(result.code, 2)
        assert.strictEqual(result.stdout, "")
        assert.strictEqual(
          result.stderr,
          "The prompt is `-` but stdin is empty: pipe the message in, or give it as the argument\n"
        )
      }
      assert.strictEqual(sim.requests.length, 0)
    }))

  it("--stream writes each piece to stdout as it arrives, then the model used to stderr", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { chunks: ["Salt ", "wind ", "on ", "the ", "glass."], chunkInterval: 250 })
      const child = spawnCli(["chat", "-c", fixture("failover.json"), "--stream", "Hi"], pointedAt(sim))
      const done = finish(child)
      // The first piece is out while the model is still answering (a piece every 250 ms): nothing waits for the rest.
      const first = await new Promise<string>((resolve, reject) => {
        child.stdout.once("data", (data) => resolve(String(data)))
        child.on("exit", () => reject(new Error("chat exited before writing")))
      })
      assert.isTrue(first.startsWith("Salt "), first)
      assert.notInclude(first, "glass.")
      assert.strictEqual(sim.requests[0]!.outcome, "pending")
      const result = await done
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout, "Salt wind on the glass.\n")
      assert.strictEqual(result.stderr, `Model used: ${GPT}\n`)
    }))

  it("--stream prints streamed tool calls as an answer printed whole does", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { toolCalls: [{ name: "weather", arguments: { city: "Paris" } }, { name: "time" }] })
      const result = await cli(["chat", "-c", fixture("failover.json"), "--stream", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout, 'Tool calls: weather({"city":"Paris"}), time({})\n')
      assert.strictEqual(result.stderr, `Model used: ${GPT}\n`)
    }))

  it("--stream --json writes one chunk per line (NDJSON), and nothing to stderr", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { chunks: ["Salt ", "wind."] })
      const result = await cli(["chat", "-c", fixture("failover.json"), "--stream", "--json", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stderr, "")
      assert.isTrue(result.stdout.endsWith("}\n"))
      const chunks = result.stdout
        .slice(0, -1)
        .split("\n")
        .map((line) => JSON.parse(line))
      for (const chunk of chunks) assert.deepInclude(chunk, { object: "chat.completion.chunk", model: GPT })
      const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")
      assert.strictEqual(text, "Salt wind.")
    }))

  it("--stream: a stream that breaks keeps what was written, the error and trace go to stderr, exit 1", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { chunks: ["Salt ", "wind ", "on"], breakAfterChunks: 2 })
      const result = await cli(["chat", "-c", fixture("failover.json"), "--stream", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "Salt wind \n")
      assert.strictEqual(
        normalize(result.stderr),
        [`The stream from ${GPT} broke after 10 characters: Transport`, "Attempts (1):", `1. ${GPT} ok N ms`, ""].join(
          "\n"
        )
      )
    }))

  it("--stream --json: a stream that breaks ends with an error line, exit 1", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { chunks: ["Salt ", "wind ", "on"], breakAfterChunks: 2 })
      const result = await cli(["chat", "-c", fixture("failover.json"), "--stream", "--json", "Hi"], pointedAt(sim))
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stderr, `The stream from ${GPT} broke after 10 characters: Transport\n`)
      const lines = result.stdout
        .slice(0, -1)
        .split("\n")
        .map((line) => JSON.parse(line))
      const { error } = lines.pop()
      const text = lines.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")
      assert.strictEqual(text, "Salt wind ")
      assert.deepStrictEqual(Object.keys(error), ["_tag", "message", "model", "delivered", "cause", "attempts"])
      assert.deepInclude(error, {
        _tag: "StreamInterrupted",
        message: `The stream from ${GPT} broke after 10 characters: Transport`,
        model: GPT,
        delivered: "Salt wind "
      })
      assert.strictEqual(error.cause.reason, "Transport")
      assert.deepStrictEqual(
        error.attempts.map((a: { model: string; outcome: string }) => [a.model, a.outcome]),
        [[GPT, "success"]]
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

describe.concurrent("ironlabsai chat -v", { timeout: spawnTimeout }, () => {
  const PROMPT = "Describe a sunset over the harbour."
  /**
   * gpt-4o answers 503 twice, the first time asking for 100 ms (above the jittered 50 ms backoff of
   * failover.json, so the wait is exactly 100 ms): a retry, then a failover to Haiku.
   */
  const retryThenFailOver = (sim: Simulator.Simulator) =>
    sim.script("gpt-4o", { status: 503, headers: { "retry-after-ms": "100" } }, { status: 503 })
  /** The decisions of {@link retryThenFailOver}, as -v prints them; only the durations of the calls vary. */
  const decisions = [
    `${GPT} attempt 1: failure Overloaded (HTTP 503) after N ms`,
    `${GPT} retrying in 100 ms (Overloaded)`,
    `${GPT} attempt 2: failure Overloaded (HTTP 503) after N ms`,
    `failing over from ${GPT} (Overloaded, HTTP 503), 1 model left`,
    `${HAIKU} attempt 1: success after N ms`
  ]
  /** stderr's lines, a call's measured duration (`after 12 ms`, at the end of an attempt's line) as `after N ms`. */
  const verboseLines = (stderr: string) =>
    stderr.split("\n").map((line) => line.replace(/ after \d+ ms$/, " after N ms"))
  /** The lines of the trace after an answer: as without -v. */
  const trace = [
    `Model used: ${HAIKU}`,
    "Attempts (3):",
    `1. ${GPT} Overloaded (HTTP 503) N ms Simulated server_error.`,
    `2. ${GPT} Overloaded (HTTP 503) N ms Simulated server_error.`,
    `3. ${HAIKU} ok N ms`,
    ""
  ]

  it("prints each decision on stderr in order, the retry with its wait, then the trace as before; stdout unchanged", () =>
    withSimulator(async (sim) => {
      retryThenFailOver(sim)
      const result = await cli(["chat", "-c", fixture("failover.json"), "-v", PROMPT], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout, "Simulated answer from claude-3-5-haiku-20241022.\n")
      const lines = verboseLines(result.stderr)
      assert.deepStrictEqual(lines.slice(0, decisions.length), decisions)
      assert.strictEqual(normalize(lines.slice(decisions.length).join("\n")), trace.join("\n"))
      assert.notInclude(result.stderr, PROMPT)
    }))

  it("--verbose with --stream: each decision is printed when it is made, before the answer comes", () =>
    withSimulator(async (sim) => {
      retryThenFailOver(sim)
      sim.script("claude-3-5-haiku-20241022", {
        chunks: ["Salt ", "wind."],
        firstChunkDelay: 1000,
        chunkInterval: 100
      })
      const child = spawnCli(["chat", "-c", fixture("failover.json"), "--stream", "--verbose", PROMPT], pointedAt(sim))
      const done = finish(child)
      let stdout = ""
      child.stdout.on("data", (data) => {
        stdout += data
      })
      let stderr = ""
      // The failover is on stderr while Haiku has not answered yet (its first chunk comes a second later): nothing
      // waits for the end of the request.
      await new Promise<void>((resolve, reject) => {
        child.stderr.on("data", (data) => {
          stderr += data
          if (stderr.includes("failing over")) resolve()
        })
        child.on("exit", () => reject(new Error(`chat exited before failing over: ${stderr}`)))
      })
      assert.strictEqual(stdout, "")
      const result = await done
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout, "Salt wind.\n")
      assert.deepStrictEqual(verboseLines(result.stderr), [...decisions, `Model used: ${HAIKU}`, ""])
    }))

  it("--json -v: stderr is the events as JSON, one per line, and stdout the JSON answer alone", () =>
    withSimulator(async (sim) => {
      retryThenFailOver(sim)
      const result = await cli(["chat", "-c", fixture("failover.json"), "--json", "-v", PROMPT], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      const completion = JSON.parse(result.stdout)
      assert.strictEqual(completion.model, HAIKU)
      assert.strictEqual(completion.choices[0].message.content, "Simulated answer from claude-3-5-haiku-20241022.")
      assert.isTrue(result.stderr.endsWith("}\n"), result.stderr)
      const events = result.stderr
        .slice(0, -1)
        .split("\n")
        .map((line) => JSON.parse(line))
      // The calls' durations are measured: a number of milliseconds, whatever its value.
      for (const event of events) if (event.type === "attempt") assert.isAtLeast(event.duration_ms, 0)
      assert.deepStrictEqual(
        events.map((event) => (event.type === "attempt" ? { ...event, duration_ms: 0 } : event)),
        [
          {
            type: "attempt",
            model: GPT,
            outcome: "failure",
            attempt: 1,
            duration_ms: 0,
            reason: "Overloaded",
            status: 503,
            probe: false
          },
          { type: "retry", model: GPT, reason: "Overloaded", delay_ms: 100, attempt: 2 },
          {
            type: "attempt",
            model: GPT,
            outcome: "failure",
            attempt: 2,
            duration_ms: 0,
            reason: "Overloaded",
            status: 503,
            probe: false
          },
          { type: "failover", model: GPT, reason: "Overloaded", status: 503, to_models: 1 },
          { type: "attempt", model: HAIKU, outcome: "success", attempt: 1, duration_ms: 0, probe: false }
        ]
      )
      assert.notInclude(result.stderr, PROMPT)
    }))

  it("--stream --json -v: NDJSON chunks on stdout, NDJSON events on stderr", () =>
    withSimulator(async (sim) => {
      retryThenFailOver(sim)
      sim.script("claude-3-5-haiku-20241022", { chunks: ["Salt ", "wind."] })
      const result = await cli(
        ["chat", "-c", fixture("failover.json"), "--stream", "--json", "-v", PROMPT],
        pointedAt(sim)
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const lines = (text: string) =>
        text
          .slice(0, -1)
          .split("\n")
          .map((line) => JSON.parse(line))
      for (const chunk of lines(result.stdout))
        assert.deepInclude(chunk, { object: "chat.completion.chunk", model: HAIKU })
      assert.deepStrictEqual(
        lines(result.stderr).map((event) => [event.type, event.model]),
        [
          ["attempt", GPT],
          ["retry", GPT],
          ["attempt", GPT],
          ["failover", GPT],
          ["attempt", HAIKU]
        ]
      )
    }))

  it("when every model fails: the last failover says no model is left, then the error and the trace", () =>
    withSimulator(async (sim) => {
      sim.script("gpt-4o", { status: 500, headers: { "retry-after-ms": "100" } }, { status: 502 })
      sim.script("claude-3-5-haiku-20241022", {
        status: 401,
        error: { type: "authentication_error", message: `invalid x-api-key ${CANARY}` }
      })
      const result = await cli(["chat", "-c", fixture("failover.json"), "-v", PROMPT], pointedAt(sim))
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "")
      const lines = verboseLines(result.stderr)
      assert.deepStrictEqual(lines.slice(0, 7), [
        `${GPT} attempt 1: failure ServerError (HTTP 500) after N ms`,
        `${GPT} retrying in 100 ms (ServerError)`,
        `${GPT} attempt 2: failure ServerError (HTTP 502) after N ms`,
        `failing over from ${GPT} (ServerError, HTTP 502), 1 model left`,
        `${HAIKU} attempt 1: failure Authentication (HTTP 401) after N ms`,
        `no model left to try after ${HAIKU} (Authentication, HTTP 401)`,
        `All models failed after 3 attempts: ${GPT}: ServerError x2; ${HAIKU}: Authentication`
      ])
      assert.strictEqual(lines[7], "Attempts (3):")
    }))

  it("names a model skipped without a call, and why", () =>
    withSimulator(async (sim) => {
      const result = await cli(["chat", "-c", fixture("unservable.json"), "-v", "Weather in Paris?"], pointedAt(sim))
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(verboseLines(result.stderr).slice(0, 3), [
        `skipped ${HAIKU}: cannot serve messages[1].name`,
        `${GPT} attempt 1: success after N ms`,
        `Model used: ${GPT}`
      ])
    }))

  it("without -v, none of it: the trace alone, and with --json nothing on stderr", () =>
    withSimulator(async (sim) => {
      retryThenFailOver(sim)
      const plain = await cli(["chat", "-c", fixture("failover.json"), PROMPT], pointedAt(sim))
      assert.strictEqual(plain.code, 0, plain.stderr)
      assert.strictEqual(normalize(plain.stderr), trace.join("\n"))
      retryThenFailOver(sim)
      const json = await cli(["chat", "-c", fixture("failover.json"), "--json", PROMPT], pointedAt(sim))
      assert.strictEqual(json.code, 0, json.stderr)
      assert.strictEqual(json.stderr, "")
      assert.strictEqual(JSON.parse(json.stdout).model, HAIKU)
    }))
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
        "Clients must send an API key, but any key is accepted.",
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
  /** Node's terminal, but one whose stdout says it is a terminal. */
  const tty = Layer.effect(
    Terminal.Terminal,
    Effect.map(Terminal.Terminal, (terminal) => ({ ...terminal, isTTY: Effect.succeed(true) }))
  ).pipe(Layer.provide(NodeContext.layer))

  /** Runs the tool with a captured console and the given env; returns the exit code and the output. */
  const run = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}, terminal = false) =>
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
        Effect.provide(terminal ? tty : Layer.empty),
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

  it.live("help on a terminal has colour, none when NO_COLOR is set to anything but empty, or TERM is dumb", () =>
    Effect.gen(function* () {
      const colourful = (env: Readonly<Record<string, string>>) =>
        Effect.map(run(["--help"], env, true), (result) => {
          assert.strictEqual(result.code, 0)
          assert.include(result.stdout, "EXIT CODES")
          return result.stdout.includes("\x1b[")
        })
      assert.isTrue(yield* colourful({}))
      assert.isTrue(yield* colourful({ NO_COLOR: "" }))
      assert.isFalse(yield* colourful({ NO_COLOR: "1" }))
      assert.isFalse(yield* colourful({ NO_COLOR: "false" }))
      assert.isFalse(yield* colourful({ TERM: "dumb" }))
    })
  )

  it("an interruption exits 0, as runMain does", () => {
    assert.strictEqual(Cli.exitCode(Exit.interrupt(FiberId.none)), 0)
  })
})
