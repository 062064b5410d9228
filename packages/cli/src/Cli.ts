/**
 * The `ironlabsai` command-line tool, built with `@effect/cli`:
 *
 * - `ironlabsai chat --config reliability.json "prompt"` routes one request
 *   over the config's models (keys and base URLs from `OPENAI_API_KEY`,
 *   `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`) and prints the
 *   answer, the model that gave it and the attempt trace;
 * - `ironlabsai simulate` runs the loopback simulator of both wires until
 *   SIGINT / SIGTERM, optionally injecting failures and latency;
 * - `ironlabsai demo` runs the demo.
 *
 * Exit codes: 0 success (and `--help`, and a stop by SIGINT / SIGTERM), 1 the
 * request failed (`AllModelsFailed`, `DeadlineExceeded`) or another runtime
 * failure, 2 a usage or configuration error (bad flags, a config file that is
 * missing, not JSON or invalid, unusable provider settings in env).
 *
 * @example
 * import { NodeContext, NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Cli } from "@ironlabsai/cli"
 *
 * Cli.run(process.argv).pipe(
 *   Effect.provide(NodeContext.layer),
 *   NodeRuntime.runMain({ disableErrorReporting: true, teardown: Cli.teardown })
 * )
 *
 * @since 0.1.0
 */
import { Args, Command, HelpDoc, Options, Span, ValidationError } from "@effect/cli"
import type { CliApp } from "@effect/cli"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Runtime from "@effect/platform/Runtime"
import type { Attempt, ChatCompletion, Router, RoutingError } from "@ironlabsai/core"
import type { Simulator } from "@ironlabsai/testing"
import {
  Cause,
  Console,
  Duration,
  Effect,
  Either,
  Exit,
  Layer,
  Option,
  Random,
  Redacted,
  Schedule,
  Schema
} from "effect"

// What a command needs beyond its flags is imported when the command runs, so
// that `--help` and usage errors start without loading the HTTP client, the
// providers, the simulator or the demo.
const loadChat = Effect.promise(() =>
  Promise.all([import("@ironlabsai/core"), import("ironlabsai"), import("@ironlabsai/http")])
)
const loadTesting = Effect.promise(() => import("@ironlabsai/testing"))
const loadDemo = Effect.promise(() => import("./Demo.js"))

// =============================================================================
// Errors and exit codes
// =============================================================================

/**
 * The exit codes of the tool.
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = {
  /** Success, `--help`, `--version`, or a stop by SIGINT / SIGTERM. */
  Success: 0,
  /** The request failed (every model failed, or the deadline passed), or another runtime failure. */
  Failure: 1,
  /** A usage or configuration error: bad flags, a config file missing, not JSON or invalid, bad provider env. */
  Usage: 2
} as const

/**
 * A failure the tool reports itself: `message` is printed to stderr as is and
 * the process exits with `exitCode`.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliError extends Schema.TaggedError<CliError>("CliError")("CliError", {
  message: Schema.String,
  exitCode: Schema.Number
}) {}

// =============================================================================
// chat
// =============================================================================

const config = Options.file("config").pipe(
  Options.withAlias("c"),
  Options.withDescription(
    "The reliability config, a JSON file in the seed's shape: `weights` (model id -> number) with the optional " +
      "per-model maps `max_retries`, `timeout` (s), `backoff` (s), `model_messages`; or `failover_chain`, a list " +
      'of { "model", "max_retries", "timeout", "backoff", "messages" }.'
  )
)
const system = Options.text("system").pipe(
  Options.optional,
  Options.withDescription("A system message sent before the prompt.")
)
const timeout = Options.float("timeout").pipe(
  Options.optional,
  Options.withDescription("The overall deadline in seconds, all attempts, retries and backoff included.")
)
const json = Options.boolean("json").pipe(
  Options.withDescription(
    "Print the whole completion, its `model` and `attempts` included, as JSON, with `health`: each model's state " +
      "(healthy, held, open, half-open) after the request."
  )
)
const prompt = Args.text({ name: "prompt" }).pipe(Args.withDescription("The user message to send."))

const chatCommand = Command.make(
  "chat",
  { config, system, timeout, json, prompt },
  (options): Effect.Effect<void, CliError, FileSystem.FileSystem> => chat(options)
).pipe(
  Command.withDescription(
    "Send one message through the load balancer; print the answer, `Model used: <model id>` and the attempt trace."
  )
)

interface ChatOptions {
  readonly config: string
  readonly system: Option.Option<string>
  readonly timeout: Option.Option<number>
  readonly json: boolean
  readonly prompt: string
}

const chat = (options: ChatOptions): Effect.Effect<void, CliError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const deadline = yield* positiveSeconds(options.timeout, "--timeout")
    const input = yield* readConfig(options.config)
    const [core, { DefaultProviders, IronlabsClient }, { UndiciHttpClient }] = yield* loadChat
    // Decoded once and env read once, before any client is built: every problem is reported with the
    // file's name or the setting's path, and the client routes over this plan.
    const plan = yield* Either.match(core.Reliability.decode(input, { providers: DefaultProviders.prefixes }), {
      onLeft: (error) =>
        Effect.fail(usageError(`Invalid reliability config in ${options.config}:\n${issueLines(error)}`)),
      onRight: Effect.succeed
    })
    const connections = yield* DefaultProviders.resolveChecked().pipe(Effect.mapError(providerError))
    const redact = redactor([connections.openai.apiKey, connections.anthropic.apiKey])
    const user: ChatCompletion.Message = { role: "user", content: options.prompt }
    const messages: ChatCompletion.ChatCompletionRequest["messages"] = Option.match(options.system, {
      onNone: () => [user],
      onSome: (content) => [{ role: "system", content }, user]
    })
    const client = Layer.effect(
      IronlabsClient,
      Effect.map(DefaultProviders.fromResolved(connections), (providers) =>
        core.IronlabsClient.fromPlan(plan, providers, { timeout: deadline })
      )
    ).pipe(Layer.provide(UndiciHttpClient.layer))
    const [completion, health] = yield* Effect.flatMap(IronlabsClient, (service) =>
      service.completions.create({ messages }).pipe(
        Effect.mapError(
          (error) =>
            new CliError({
              message: redact(error._tag === "InvalidChatRequest" ? error.message : formatRoutingError(error)),
              exitCode: ExitCode.Failure
            })
        ),
        Effect.zip(service.health)
      )
    ).pipe(Effect.provide(client))
    yield* Console.log(
      redact(
        options.json ? JSON.stringify({ ...completionJson(completion), health }, null, 2) : formatCompletion(completion)
      )
    )
  })

/** Reads and parses the config file, naming the file in every error. */
const readConfig = (path: string): Effect.Effect<unknown, CliError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(
        Effect.mapError((error) =>
          usageError(
            error._tag === "SystemError" && error.reason === "NotFound"
              ? `Config file not found: ${path}`
              : `Cannot read config file ${path}: ${error._tag === "SystemError" ? error.reason : error.message}`
          )
        )
      )
    return yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (error) => usageError(`Config file ${path} is not valid JSON: ${errorMessage(error)}`)
    })
  })

const providerError = (error: { readonly message: string }): CliError =>
  usageError(`Invalid provider settings in the environment (OPENAI_* / ANTHROPIC_* variables):\n${issueLines(error)}`)

/** `  - path: message`, one line per issue, as `ReliabilityConfigError`'s message lists them. */
const issueLines = (error: { readonly message: string }): string => error.message.split("\n").slice(1).join("\n")

const usageError = (message: string): CliError => new CliError({ message, exitCode: ExitCode.Usage })

const positiveSeconds = (
  value: Option.Option<number>,
  flag: string
): Effect.Effect<Duration.Duration | undefined, CliError> =>
  Option.match(value, {
    onNone: () => Effect.succeed(undefined),
    onSome: (seconds) =>
      Number.isFinite(seconds) && seconds > 0
        ? Effect.succeed(Duration.millis(seconds * 1000))
        : Effect.fail(usageError(`${flag} is a number of seconds > 0, got ${seconds}`))
  })

/**
 * Replaces every configured API key in `text` with `[redacted]`: a provider
 * that echoes a key in an error body must not get it printed. Keys shorter
 * than 6 characters are not secrets worth garbling the output for.
 */
const redactor =
  (keys: ReadonlyArray<Redacted.Redacted<string> | undefined>) =>
  (text: string): string =>
    keys.reduce<string>((acc, key) => {
      const value = key === undefined ? "" : Redacted.value(key)
      return value.length < 6 ? acc : acc.split(value).join("[redacted]")
    }, text)

const formatCompletion = (completion: Router.RoutedCompletion): string => {
  const message = completion.choices[0]?.message
  const calls = (message?.tool_calls ?? []).map((call) =>
    call.type === "function"
      ? `${call.function.name}(${call.function.arguments})`
      : `${call.custom.name}(${call.custom.input})`
  )
  return [
    message?.content ?? (calls.length > 0 ? "" : "(no content)"),
    ...(calls.length > 0 ? [`Tool calls: ${calls.join(", ")}`] : []),
    "",
    `Model used: ${completion.model}`,
    formatTrace(completion.attempts)
  ]
    .join("\n")
    .trimStart()
}

const formatRoutingError = (error: RoutingError.RoutingError): string =>
  `${error.message}\n${formatTrace(error.attempts)}`

/**
 * The attempt trace, one aligned line per attempt:
 * `  1. openai/gpt-4o  Overloaded (HTTP 503)  12 ms  <provider's description>`
 */
const formatTrace = (attempts: ReadonlyArray<Attempt.Attempt>): string => {
  if (attempts.length === 0) return "Attempts: none"
  const rows = attempts.map((attempt, i) => ({
    n: `${i + 1}.`,
    model: attempt.model,
    outcome:
      attempt.skip !== undefined
        ? `skipped: ${attempt.skip.reason}${attempt.skip.cause === undefined ? "" : ` (${attempt.skip.cause})`}`
        : attempt.error === undefined
          ? "ok"
          : `${attempt.error.reason}${attempt.error.status === undefined ? "" : ` (HTTP ${attempt.error.status})`}`,

    duration: `${Math.round(Duration.toMillis(attempt.duration))} ms`,
    description: [
      attempt.skip?.until === undefined
        ? (attempt.error?.description ?? "")
        : `until ${new Date(attempt.skip.until).toISOString()}`,
      // What the request had that this model could not serve, or did not get: named, never silent.
      attempt.skip?.fields === undefined ? "" : `cannot serve ${attempt.skip.fields.join(", ")}`,
      attempt.dropped === undefined ? "" : `dropped ${attempt.dropped.join(", ")}`
    ]
      .filter((part) => part !== "")
      .join("; ")
  }))
  const width = (key: "n" | "model" | "outcome" | "duration") => Math.max(...rows.map((row) => row[key].length))
  const [n, model, outcome, duration] = [width("n"), width("model"), width("outcome"), width("duration")]
  const lines = rows.map((row) =>
    [
      `  ${row.n.padEnd(n)} ${row.model.padEnd(model)}`,
      row.outcome.padEnd(outcome),
      row.duration.padStart(duration),
      row.description
    ]
      .join("  ")
      .trimEnd()
  )
  return [`Attempts (${attempts.length}):`, ...lines].join("\n")
}

/** The completion as plain JSON: durations in milliseconds, errors as their fields. */
const completionJson = (completion: Router.RoutedCompletion) => ({
  ...completion,
  attempts: completion.attempts.map((attempt) => ({
    model: attempt.model,
    outcome: attempt.outcome,
    duration_ms: Math.round(Duration.toMillis(attempt.duration)),
    ...(attempt.skip === undefined ? {} : { skip: attempt.skip }),
    ...(attempt.dropped === undefined ? {} : { dropped: attempt.dropped }),
    ...(attempt.error === undefined
      ? {}
      : {
          error: {
            reason: attempt.error.reason,
            ...(attempt.error.status === undefined ? {} : { status: attempt.error.status }),
            ...(attempt.error.retryAfter === undefined
              ? {}
              : { retry_after_ms: Duration.toMillis(attempt.error.retryAfter) }),
            ...(attempt.error.description === undefined ? {} : { description: attempt.error.description })
          }
        })
  }))
})

// =============================================================================
// simulate
// =============================================================================

const port = Options.integer("port").pipe(
  Options.withDefault(8787),
  Options.withDescription("The port to listen on (default 8787); 0 picks a free one.")
)
const host = Options.text("host").pipe(
  Options.withDefault("127.0.0.1"),
  Options.withDescription(
    "The address to listen on (default 127.0.0.1). Loopback only: 127.0.0.1 or localhost; others are refused."
  )
)
const failRate = Options.float("fail-rate").pipe(
  Options.withDefault(0),
  Options.withDescription("The fraction of requests, 0..1 (default 0), answered 500 server_error, chosen at random.")
)
const latency = Options.integer("latency").pipe(
  Options.withDefault(0),
  Options.withDescription("Milliseconds to wait before answering each request (default 0).")
)
const seed = Options.integer("seed").pipe(
  Options.optional,
  Options.withDescription("Seeds the random choice of --fail-rate, for a reproducible sequence of failures.")
)
const verbose = Options.boolean("verbose").pipe(
  Options.withAlias("v"),
  Options.withDescription("Print one line per request received: wire, model, outcome.")
)

const simulateCommand = Command.make(
  "simulate",
  { port, host, failRate, latency, seed, verbose },
  (options): Effect.Effect<void, CliError> => simulate(options)
).pipe(
  Command.withDescription(
    "Run the loopback simulator of the OpenAI and Anthropic wires until SIGINT / SIGTERM; print the base URLs."
  )
)

interface SimulateOptions {
  readonly port: number
  readonly host: string
  readonly failRate: number
  readonly latency: number
  readonly seed: Option.Option<number>
  readonly verbose: boolean
}

const loopbackHosts: ReadonlySet<string> = new Set(["127.0.0.1", "localhost"])

const simulate = (options: SimulateOptions): Effect.Effect<void, CliError> =>
  Effect.gen(function* () {
    if (!loopbackHosts.has(options.host)) {
      return yield* usageError(
        `--host ${options.host} refused: the simulator serves loopback only (127.0.0.1 or localhost), ` +
          "it is not meant to be reachable from other machines"
      )
    }
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      return yield* usageError(`--port is an integer from 0 to 65535, got ${options.port}`)
    }
    if (!(options.failRate >= 0 && options.failRate <= 1)) {
      return yield* usageError(`--fail-rate is a fraction from 0 to 1, got ${options.failRate}`)
    }
    if (options.latency < 0)
      return yield* usageError(`--latency is a number of milliseconds >= 0, got ${options.latency}`)

    const random = Option.match(options.seed, { onNone: () => Random.make(Math.random()), onSome: Random.make })
    /** The status each request was answered with, by request id, for the verbose log. */
    const statuses = new Map<number, string>()
    const handler = (request: Simulator.RecordedRequest): Simulator.Reply => {
      const fail = options.failRate > 0 && Effect.runSync(random.next) < options.failRate
      statuses.set(request.id, fail ? "500 (injected)" : "200")
      const delay = options.latency > 0 ? Duration.millis(options.latency) : undefined
      return fail
        ? {
            status: 500,
            error: { type: "server_error", message: "Injected by ironlabsai simulate --fail-rate." },
            latency: delay
          }
        : { latency: delay }
    }

    const testing = yield* loadTesting
    yield* Effect.scoped(
      Effect.gen(function* () {
        const sim = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () => testing.Simulator.start({ port: options.port, handler }),
            catch: (error) =>
              new CliError({
                message: `Cannot listen on 127.0.0.1:${options.port}: ${errorMessage(error)}`,
                exitCode: ExitCode.Failure
              })
          }),
          (sim) => Effect.promise(() => sim.close()).pipe(Effect.zipRight(Console.log("Simulator stopped.")))
        )
        const url = options.host === "localhost" ? sim.url.replace("127.0.0.1", "localhost") : sim.url
        const faults = [
          options.failRate > 0 ? `${options.failRate * 100}% of requests answered 500` : undefined,
          options.latency > 0 ? `${options.latency} ms latency` : undefined
        ].filter((fault) => fault !== undefined)
        yield* Console.log(
          [
            `IronlabsAI simulator listening on ${url} (OpenAI and Anthropic wires).`,
            "Point clients at it:",
            `  export OPENAI_BASE_URL=${url}/v1`,
            `  export ANTHROPIC_BASE_URL=${url}`,
            "Any API key is accepted.",
            `Faults: ${faults.length === 0 ? "none" : faults.join(", ")}.`,
            "Press Ctrl+C to stop."
          ].join("\n")
        )
        if (options.verbose) {
          const flush = requestLog(sim, statuses)
          yield* Effect.addFinalizer(() => flush)
          yield* Effect.forkScoped(Effect.repeat(flush, Schedule.spaced("50 millis")))
        }
        return yield* Effect.never
      })
    )
  })

/** Prints, in arrival order, each request that has settled since the last call. */
const requestLog = (sim: Simulator.Simulator, statuses: ReadonlyMap<number, string>): Effect.Effect<void> => {
  let next = 0
  return Effect.suspend(() => {
    const lines: Array<string> = []
    for (let request = sim.requests[next]; request !== undefined && request.outcome !== "pending"; ) {
      const status = request.wire === "unknown" ? "404" : statuses.get(request.id)
      lines.push(
        `#${request.id} ${request.wire} ${request.model ?? "-"} ${request.outcome}${status === undefined ? "" : ` ${status}`}`
      )
      next += 1
      request = sim.requests[next]
    }
    return lines.length === 0 ? Effect.void : Console.log(lines.join("\n"))
  })
}

// =============================================================================
// demo
// =============================================================================

const live = Options.boolean("live").pipe(
  Options.withDescription("Use the real providers (keys from env) instead of the embedded simulator.")
)
const requests = Options.integer("requests").pipe(
  Options.optional,
  Options.withDescription("Requests per configuration (default 300).")
)

const demoCommand = Command.make("demo", { live, requests }, (options) =>
  Effect.flatMap(loadDemo, (Demo) =>
    Demo.run({ live: options.live, requests: Option.getOrUndefined(options.requests) })
  )
).pipe(
  Command.withDescription(
    "Run the seed's two configurations under load against a simulated bad day, beside no load balancing."
  )
)

// =============================================================================
// The tool
// =============================================================================

/**
 * The command tree: `ironlabsai chat | simulate | demo`.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("ironlabsai", {}, () =>
  Effect.fail(usageError("Missing command: chat, simulate or demo. Run `ironlabsai --help` for details."))
).pipe(
  Command.withDescription("Client-side load balancing across language-model providers."),
  Command.withSubcommands([chatCommand, simulateCommand, demoCommand])
)

const cli = Command.run(command, {
  name: "ironlabsai",
  version: "0.1.0",
  summary: Span.text("client-side load balancing across language-model providers"),
  footer: HelpDoc.blocks([
    HelpDoc.h1("ENVIRONMENT"),
    HelpDoc.p(
      "chat reads OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, as the official SDKs " +
        "do. Keys are never printed. `ironlabsai simulate` prints the base URLs that point at the simulator."
    ),
    HelpDoc.h1("EXIT CODES"),
    HelpDoc.p(
      "0 success, --help, --version, or stopped by SIGINT / SIGTERM; 1 every model failed, the --timeout " +
        "deadline passed, or another runtime failure (the error and the attempt trace go to stderr); 2 a usage " +
        "error, or a config file that is missing, not JSON or invalid (every offending path is listed)."
    )
  ])
})

/**
 * Runs the tool on a full `process.argv` (runtime and script first). Errors
 * are printed to stderr here (usage errors by `@effect/cli` itself), so run it
 * with `disableErrorReporting` and {@link teardown} for the exit code.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<void, CliError | ValidationError.ValidationError | Error, CliApp.CliApp.Environment> =>
  cli(argv).pipe(Effect.tapErrorCause(report))

const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  return Option.match(Cause.failureOption(cause), {
    onNone: () => Console.error(Cause.pretty(cause)),
    onSome: (error) =>
      error instanceof CliError
        ? Console.error(error.message)
        : ValidationError.isValidationError(error)
          ? Effect.void // already printed by @effect/cli
          : Console.error(`Error: ${errorMessage(error)}`)
  })
}

/**
 * The exit code of a finished run: {@link ExitCode}. An interruption (SIGINT,
 * SIGTERM) exits 0, as `runMain`'s default teardown does.
 *
 * @since 0.1.0
 * @category running
 */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return ExitCode.Success
  return Option.match(Cause.failureOption(exit.cause), {
    onNone: () => ExitCode.Failure,
    onSome: (error) =>
      error instanceof CliError
        ? error.exitCode
        : ValidationError.isValidationError(error)
          ? ExitCode.Usage
          : ExitCode.Failure
  })
}

/**
 * The `runMain` teardown that exits with {@link exitCode}.
 *
 * @since 0.1.0
 * @category running
 */
export const teardown: Runtime.Teardown = (exit, onExit) => onExit(exitCode(exit))

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))
