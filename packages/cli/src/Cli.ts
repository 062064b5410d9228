/**
 * The `ironlabsai` command-line tool, built with `@effect/cli`:
 *
 * - `ironlabsai chat --config reliability.json "prompt"` routes one request
 *   over the config's models (keys and base URLs from `OPENAI_API_KEY`,
 *   `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`) and writes
 *   the answer to stdout, the model that gave it and the attempt trace to
 *   stderr. `-` as the prompt reads it from stdin; `--stream` writes the answer
 *   as it arrives; `--json` writes one JSON document (NDJSON chunks with
 *   `--stream`) to stdout, on failure too; `-v` / `--verbose` writes each
 *   routing decision (attempt, retry, failover, skip) to stderr as it happens,
 *   one line each (with `--json`, the event as one line of JSON);
 * - `ironlabsai simulate` runs the loopback simulator of both wires until
 *   SIGINT / SIGTERM, optionally injecting failures and latency;
 * - `ironlabsai demo` runs the demo.
 *
 * `chat --redis URL` and `demo --redis URL` (or `IRONLABSAI_REDIS_URL`) keep
 * model health and rate budgets in Redis (`@ironlabsai/redis`), shared with
 * every other process that uses it: a model one run saw rate-limited is
 * skipped by the next.
 *
 * Streams: what a command produces (the answer, the JSON document, the
 * simulator's address, the demo's report) goes to stdout; what it says about
 * it (the trace, log lines, warnings, errors, progress bars) to stderr. A
 * stream that is not a terminal gets no colour nor other escape codes, and no
 * stream does when `NO_COLOR` is set to a non-empty value or `TERM` is `dumb`.
 * Log lines are warnings and errors unless `--log-level` says otherwise.
 *
 * Exit codes: 0 success (and `--help`, and a stop by SIGINT / SIGTERM), 1 the
 * request failed (`AllModelsFailed`, `DeadlineExceeded`, `NoModelAvailable`,
 * `StreamInterrupted`, `InvalidChatRequest`) or another runtime failure, 2 a
 * usage or configuration error (bad flags, a config file that is missing, not
 * JSON or invalid, unusable provider settings in env, an empty prompt on
 * stdin).
 *
 * @example
 * import { NodeContext, NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Cli } from "@ironlabsai/cli"
 *
 * Cli.run(process.argv).pipe(
 *   Effect.provide(NodeContext.layer),
 *   NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
 * )
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { stripVTControlCharacters } from "node:util"
import { Args, Command, HelpDoc, Options, Span, ValidationError } from "@effect/cli"
import type { CliApp } from "@effect/cli"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformRuntime from "@effect/platform/Runtime"
import * as Terminal from "@effect/platform/Terminal"
import * as NodeStream from "@effect/platform-node/NodeStream"
import type {
  Attempt,
  ChatCompletion,
  IronlabsClient,
  ModelHealth,
  ProviderError,
  RouteEvent,
  Router,
  RoutingError
} from "@ironlabsai/core"
import type { RedisConnection } from "@ironlabsai/redis"
import type { Simulator } from "@ironlabsai/testing"
import {
  Cause,
  Clock,
  Config,
  Console,
  Duration,
  Effect,
  Either,
  Exit,
  FiberRef,
  Layer,
  Logger,
  LogLevel,
  Option,
  Random,
  Runtime,
  Schedule,
  Schema,
  Stream
} from "effect"

// What a command needs beyond its flags is imported when the command runs, so
// that `--help` and usage errors start without loading the HTTP client, the
// providers, the simulator or the demo.
const loadChat = Effect.promise(() =>
  Promise.all([import("@ironlabsai/core"), import("ironlabsai"), import("@ironlabsai/http")])
)
const loadTesting = Effect.promise(() => import("@ironlabsai/testing"))
const loadRedis = Effect.promise(() => import("@ironlabsai/redis"))
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
// Output: the command's product on stdout, everything about it on stderr
// =============================================================================

/**
 * Whether each stream may carry colour and the other escape codes (those of
 * `@effect/cli`'s help, of the log lines, of the demo's progress bars): only a
 * terminal, and only when `NO_COLOR` is unset or empty (no-color.org) and
 * `TERM` is not `dumb`.
 */
interface Colours {
  readonly stdout: boolean
  readonly stderr: boolean
}

const colours: Effect.Effect<Colours, never, Terminal.Terminal> = Effect.gen(function* () {
  const env = (name: string) => Effect.orElseSucceed(Config.withDefault(Config.string(name), ""), () => "")
  const allowed = (yield* env("NO_COLOR")) === "" && (yield* env("TERM")) !== "dumb"
  const stdoutIsTerminal = yield* Effect.flatMap(Terminal.Terminal, (terminal) => terminal.isTTY)
  return { stdout: allowed && stdoutIsTerminal, stderr: allowed && process.stderr.isTTY === true }
})

/**
 * `console` without the escape codes in what it writes to a stream that may
 * not carry them. `@effect/cli` colours its help and errors with
 * `@effect/printer-ansi` whatever the stream, and has no switch for it.
 */
const withoutColour = (console: Console.Console, colours: Colours): Console.Console => {
  if (colours.stdout && colours.stderr) return console
  const out = colours.stdout ? keep : plain
  const err = colours.stderr ? keep : plain
  const unsafe = console.unsafe
  return {
    ...console,
    log: (...args) => console.log(...out(args)),
    info: (...args) => console.info(...out(args)),
    debug: (...args) => console.debug(...out(args)),
    error: (...args) => console.error(...err(args)),
    warn: (...args) => console.warn(...err(args)),
    trace: (...args) => console.trace(...err(args)),
    unsafe: {
      ...unsafe,
      log: (...args) => unsafe.log(...out(args)),
      info: (...args) => unsafe.info(...out(args)),
      debug: (...args) => unsafe.debug(...out(args)),
      error: (...args) => unsafe.error(...err(args)),
      warn: (...args) => unsafe.warn(...err(args)),
      trace: (...args) => unsafe.trace(...err(args))
    }
  }
}

const keep = (args: ReadonlyArray<unknown>): ReadonlyArray<unknown> => args
const plain = (args: ReadonlyArray<unknown>): ReadonlyArray<unknown> =>
  args.map((arg) => (typeof arg === "string" ? stripVTControlCharacters(arg) : arg))

/**
 * Writes `text` to stdout as it is, with no newline added, once the previous
 * write has been handed over: the answer, a piece of it, or a JSON document.
 * Diagnostics go to stderr with `Console.error`. When the reader has gone
 * (`ironlabsai chat ... | head -c 100`), the command stops quietly, as it
 * does on SIGINT.
 */
const writeOut = (text: string): Effect.Effect<void, CliError, Terminal.Terminal> =>
  Effect.flatMap(Terminal.Terminal, (terminal) => terminal.display(text)).pipe(
    Effect.catchAll((error) => {
      const cause: unknown = error.cause
      const code = typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
      return code === "EPIPE"
        ? Effect.interrupt
        : Effect.fail(
            new CliError({
              message: `Cannot write to stdout: ${cause instanceof Error ? cause.message : error.message}`,
              exitCode: ExitCode.Failure
            })
          )
    })
  )

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
    "Print one JSON document on stdout, and no trace on stderr: the whole completion, its `model` and " +
      "`attempts` included, with `health`: each model's state (healthy, held, open, half-open) after the request. " +
      'On failure the document is { "error": { "_tag", "message", ..., "attempts" } }, the message still goes to ' +
      "stderr and the exit code is unchanged."
  )
)
const stream = Options.boolean("stream").pipe(
  Options.withDescription(
    "Write the answer to stdout as it arrives, then `Model used: <model id>` to stderr. With --json, each chunk " +
      'is one line of JSON (NDJSON), and a failure one last { "error": ... } line. A stream that breaks keeps what ' +
      "was written; the error goes to stderr and the exit code is 1."
  )
)
const chatVerbose = Options.boolean("verbose").pipe(
  Options.withAlias("v"),
  Options.withDescription(
    "Print each routing decision on stderr as it happens, one line each: every attempt as it ends (its outcome, " +
      "the error's reason and HTTP status, its duration), every retry with its wait, every failover with the " +
      "models left, every model skipped and why. With --json, each line is the event as a JSON object. Never a key " +
      "nor the prompt; stdout is unchanged."
  )
)
const chatRedis = Options.text("redis").pipe(
  Options.optional,
  Options.withDescription(
    "Share model health (holds, open breakers, the half-open probe) and rate_limits budgets with every other " +
      "process that uses this Redis: redis://[user:password@]host[:port][/db], or rediss:// for TLS. Default: " +
      "IRONLABSAI_REDIS_URL, with IRONLABSAI_REDIS_PREFIX as the key prefix. The fleet's state of the config's " +
      "models is read before the request is sent (waiting at most 1 s for Redis); while Redis is down the request " +
      "goes on with what this process knows, and a warning goes to stderr."
  )
)
const prompt = Args.text({ name: "prompt" }).pipe(
  Args.withDescription(
    "The user message to send. `-` reads it from stdin until end of input, trailing newlines removed; an empty " +
      "stdin is a usage error."
  )
)

const chatCommand = Command.make(
  "chat",
  { config, system, timeout, json, stream, verbose: chatVerbose, redis: chatRedis, prompt },
  (options): Effect.Effect<void, CliError, FileSystem.FileSystem | Terminal.Terminal> => chat(options)
).pipe(
  Command.withDescription(
    "Send one message through the load balancer. The answer goes to stdout; `Model used: <model id>` and the " +
      "attempt trace go to stderr, so `> answer.txt` keeps the answer alone. -v shows the routing decisions on " +
      "stderr as they are made."
  )
)

interface ChatOptions {
  readonly config: string
  readonly system: Option.Option<string>
  readonly timeout: Option.Option<number>
  readonly json: boolean
  readonly stream: boolean
  readonly verbose: boolean
  readonly redis: Option.Option<string>
  readonly prompt: string
}

/** Why a request failed: the errors of `completions.create`. */
type RequestError = RoutingError.RoutingError | RoutingError.StreamInterrupted | ChatCompletion.InvalidChatRequest

const chat = (options: ChatOptions): Effect.Effect<void, CliError, FileSystem.FileSystem | Terminal.Terminal> =>
  Effect.gen(function* () {
    // Every usage or config problem is found before anything is sent, the prompt on stdin last: with --json
    // the document is its error too.
    const setup = yield* Effect.gen(function* () {
      const deadline = yield* positiveSeconds(options.timeout, "--timeout")
      const input = yield* readConfig(options.config)
      const modules = yield* loadChat
      const [core, { DefaultProviders }] = modules
      // Decoded once and env read once, before any client is built: every problem is reported with the
      // file's name or the setting's path, and the client routes over this plan.
      const plan = yield* Either.match(core.Reliability.decode(input, { providers: DefaultProviders.prefixes }), {
        onLeft: (error) =>
          Effect.fail(usageError(`Invalid reliability config in ${options.config}:\n${issueLines(error)}`)),
        onRight: Effect.succeed
      })
      // Valid but almost certainly a mistake (a timeout typed in milliseconds): a warning on stderr.
      yield* core.IronlabsClient.logWarnings(plan)
      const used = plan.models.map((m) => m.model.provider)
      const connections = yield* DefaultProviders.resolveChecked({}, used).pipe(Effect.mapError(providerError))
      const redis = yield* redisSettings(options.redis)
      const text = yield* readPrompt(options.prompt)
      return { modules, deadline, plan, connections, redis, text }
    }).pipe(
      Effect.tapError((error) =>
        options.json
          ? writeOut(jsonText({ error: { _tag: "UsageError", message: error.message, attempts: [] } }, options))
          : Effect.void
      )
    )
    const [core, { DefaultProviders, IronlabsClient }, { Redaction, UndiciHttpClient }] = setup.modules
    // A provider that echoes a key in an error body must not get it printed, in any encoding.
    const redact = Redaction.redactor([setup.connections.openai.apiKey, setup.connections.anthropic.apiKey])
    const user: ChatCompletion.Message = { role: "user", content: setup.text }
    const messages: ChatCompletion.ChatCompletionRequest["messages"] = Option.match(options.system, {
      onNone: () => [user],
      onSome: (content) => [{ role: "system", content }, user]
    })
    const onEvent = options.verbose ? yield* eventPrinter(options, redact) : undefined
    const clientOptions = { timeout: setup.deadline, onEvent }
    // The level asked for (warnings unless --log-level says otherwise).
    const level = yield* FiberRef.get(FiberRef.currentMinimumLogLevel)
    const { plan, redis } = setup
    const client =
      redis === undefined
        ? Layer.effect(
            IronlabsClient,
            Effect.map(DefaultProviders.fromResolved(setup.connections), (providers) =>
              core.IronlabsClient.fromPlan(plan, providers, clientOptions)
            )
          ).pipe(Layer.provide(UndiciHttpClient.layer))
        : Layer.unwrapEffect(
            Effect.map(loadRedis, ({ RedisBudget, RedisConnection, RedisHealth }) =>
              Layer.scoped(
                IronlabsClient,
                Effect.gen(function* () {
                  const providers = yield* DefaultProviders.fromResolved(setup.connections)
                  const store = yield* core.ModelHealth.ModelHealthStore
                  const budget = yield* core.RateBudget.RateBudget
                  const connection = yield* RedisConnection.RedisConnection
                  const health = store.make({ health: plan.health, retryBudget: plan.retryBudget })
                  yield* loadFleetState(
                    connection,
                    health,
                    plan.models.map((m) => m.model.id)
                  )
                  return core.IronlabsClient.fromPlan(plan, providers, clientOptions, health, budget)
                })
              ).pipe(
                Layer.provide(
                  Layer.merge(
                    UndiciHttpClient.layer,
                    Layer.mergeAll(
                      RedisHealth.layer(),
                      RedisBudget.layer(
                        plan.rateLimits === undefined ? {} : { limits: Object.fromEntries(plan.rateLimits) }
                      )
                    ).pipe(
                      Layer.provideMerge(
                        Layer.scoped(
                          RedisConnection.RedisConnection,
                          // Redis being down is not in the trace: the connection's warning shows at the level
                          // asked for, where the router's own lines show errors only.
                          Effect.locally(
                            RedisConnection.make({
                              url: redis.url,
                              prefix: redis.prefix,
                              // One request, then exit: a short poll reads the fleet's state before it is sent.
                              reconcileInterval: fleetPollInterval
                            }),
                            FiberRef.currentMinimumLogLevel,
                            level
                          )
                        )
                      )
                    )
                  )
                )
              )
            )
          )
    const request = Effect.flatMap(IronlabsClient, (service) =>
      options.stream
        ? streamed(service, messages, options, redact, core.ChatCompletion.chunkText)
        : answered(service, messages, options, redact)
    ).pipe(Effect.provide(client))
    // The trace shows every decision already: the router's own logs show only when asked for
    // (`ironlabsai --log-level debug chat ...`).
    yield* LogLevel.lessThan(level, LogLevel.Warning) ? request : Logger.withMinimumLogLevel(request, LogLevel.Error)
  })

/** Where `chat --redis` shares its state: the flag's URL (else `IRONLABSAI_REDIS_URL`), and the key prefix. */
interface RedisSettings {
  readonly url: string
  readonly prefix: string | undefined
}

/**
 * `--redis`, else `IRONLABSAI_REDIS_URL` (with `IRONLABSAI_REDIS_PREFIX`), checked: a URL node-redis takes, or
 * a usage error naming the flag or the variable, never the URL (it may hold a password). Nothing shared when
 * neither is given.
 */
const redisSettings = (flag: Option.Option<string>): Effect.Effect<RedisSettings | undefined, CliError> =>
  Effect.gen(function* () {
    const env = (name: string) => Effect.orElseSucceed(Config.withDefault(Config.string(name), ""), () => "")
    const [url, source] = Option.isSome(flag)
      ? [flag.value, "--redis"]
      : [yield* env("IRONLABSAI_REDIS_URL"), "IRONLABSAI_REDIS_URL"]
    if (Option.isNone(flag) && url === "") return undefined
    const problem = redisUrlProblem(url)
    if (problem !== undefined) {
      return yield* usageError(
        `${source} must be a redis://[user:password@]host[:port][/db] or rediss:// URL; ${problem}`
      )
    }
    const prefix = yield* env("IRONLABSAI_REDIS_PREFIX")
    if (/[{}]/.test(prefix)) {
      return yield* usageError(
        "IRONLABSAI_REDIS_PREFIX must not contain { or }: the model id in braces is the hash tag"
      )
    }
    return { url, prefix: prefix === "" ? undefined : prefix }
  })

/** What is wrong with a Redis URL, if anything, without repeating it. */
const redisUrlProblem = (url: string): string | undefined => {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  if (scheme !== undefined && scheme !== "redis" && scheme !== "rediss") {
    return `got a URL with the scheme ${JSON.stringify(scheme.slice(0, 20))}`
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "got something that is not a URL"
  }
  if (!/^rediss?:\/\//i.test(url) || parsed.hostname === "") return "got a URL without a host"
  if (parsed.pathname !== "" && parsed.pathname !== "/" && !/^\/\d+$/.test(parsed.pathname)) {
    return "got a path that is not a database number"
  }
  try {
    decodeURIComponent(parsed.username)
    decodeURIComponent(parsed.password)
  } catch {
    return "got a user or password that is not percent-encoded properly"
  }
  return undefined
}

/** How often `chat --redis` reads the fleet's state again: often, as it lives for one request. */
const fleetPollInterval = Duration.millis(50)

/**
 * Before `chat --redis` sends its one request: the fleet's state of the config's models, read from Redis. A
 * long-running client learns it as it goes; a process that sends one request and exits must read it first, or
 * it would call a model the fleet holds. The store reads the models it has seen (a peek marks them seen) each
 * time it connects and at each poll: once connected, two polls are waited for. At most 1 s for Redis to answer;
 * not at all once that has passed (the request goes on with what this process knows).
 */
const loadFleetState = (
  connection: RedisConnection.Connection,
  health: ModelHealth.Service,
  models: ReadonlyArray<string>
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    for (const model of models) health.admit(model, now, { peek: true })
    const ready = yield* Effect.sync(connection.isReady).pipe(
      Effect.repeat({ until: (isReady: boolean) => isReady, schedule: Schedule.spaced("5 millis") }),
      Effect.timeoutOption("1 second")
    )
    if (Option.isSome(ready)) yield* Effect.sleep(Duration.times(fleetPollInterval, 2))
  })

/** One request, answered whole: the answer (or the JSON document) on stdout, the trace on stderr. */
const answered = (
  service: IronlabsClient.Service,
  messages: ChatCompletion.ChatCompletionRequest["messages"],
  options: ChatOptions,
  redact: (text: string) => string
): Effect.Effect<void, CliError, Terminal.Terminal> =>
  service.completions.create({ messages }).pipe(
    Effect.zip(service.health),
    Effect.matchEffect({
      onFailure: (error) => failed(error, options, redact),
      onSuccess: ([completion, health]) => {
        if (options.json) return writeOut(redact(jsonText({ ...completionJson(completion), health }, options)))
        const message = completion.choices[0]?.message
        const answer = answerText(message?.content, toolCalls(message?.tool_calls ?? []))
        return Effect.zipRight(
          answer === "" ? Effect.void : writeOut(redact(`${answer}\n`)),
          Console.error(redact(traceText(answer !== "", completion.model, completion.attempts)))
        )
      }
    })
  )

/**
 * One request, streamed: each piece of the answer is written to stdout as it
 * arrives (with --json, each chunk as a line of JSON), then the model used
 * goes to stderr. A failure keeps what was written, ends the line, and is
 * reported as {@link failed} does.
 */
const streamed = (
  service: IronlabsClient.Service,
  messages: ChatCompletion.ChatCompletionRequest["messages"],
  options: ChatOptions,
  redact: (text: string) => string,
  chunkText: (chunk: ChatCompletion.ChatCompletionChunk) => string
): Effect.Effect<void, CliError, Terminal.Terminal> =>
  Effect.gen(function* () {
    let model: string | undefined
    let written = false
    /** Tool calls by index, their name and arguments put together from the deltas. */
    const calls = new Map<number, { name: string; arguments: string }>()
    const result = yield* service.completions.create({ messages, stream: true }).pipe(
      Stream.runForEach((chunk) => {
        model = chunk.model
        if (options.json) return writeOut(redact(`${JSON.stringify(chunk)}\n`))
        for (const call of chunk.choices.flatMap((choice) => choice.delta.tool_calls ?? [])) {
          const entry = calls.get(call.index) ?? { name: "", arguments: "" }
          calls.set(call.index, {
            name: entry.name + (call.function?.name ?? ""),
            arguments: entry.arguments + (call.function?.arguments ?? "")
          })
        }
        const text = chunkText(chunk)
        if (text === "") return Effect.void
        written = true
        return writeOut(redact(text))
      }),
      Effect.either
    )
    // The streamed text ends its line, as an answer printed whole does, and the tool calls follow it.
    const called = callsLine([...calls.values()])
    const tail = `${written ? "\n" : ""}${called === "" ? "" : `${called}\n`}`
    if (tail !== "") yield* writeOut(redact(tail))
    if (Either.isLeft(result)) {
      return yield* result.left instanceof CliError ? Effect.fail(result.left) : failed(result.left, options, redact)
    }
    if (!options.json) {
      yield* Console.error(traceText(written || called !== "", model ?? "-", undefined))
    }
  })

/**
 * Reports a failed request: with --json, the error object on stdout (a line
 * of its own with --stream); on stderr the message, and without --json the
 * attempt trace. Exit code 1.
 */
const failed = (
  error: RequestError,
  options: ChatOptions,
  redact: (text: string) => string
): Effect.Effect<never, CliError, Terminal.Terminal> =>
  Effect.zipRight(
    options.json ? writeOut(redact(jsonText({ error: errorJson(error) }, options))) : Effect.void,
    Effect.fail(
      new CliError({
        message: redact(
          options.json || error._tag === "InvalidChatRequest"
            ? error.message
            : `${error.message}\n${formatTrace(error.attempts)}`
        ),
        exitCode: ExitCode.Failure
      })
    )
  )

// =============================================================================
// chat -v: the routing decisions as they happen
// =============================================================================

/**
 * The listener of `-v`: each route event, as the router reports it
 * (synchronously), printed at once to stderr as one line, so that it comes
 * between the pieces of a streamed answer and before the trace. With --json
 * the line is the event itself as JSON; else {@link eventLine}, with a
 * coloured symbol in front on a terminal that may carry colour.
 */
const eventPrinter = (
  options: { readonly json: boolean },
  redact: (text: string) => string
): Effect.Effect<RouteEvent.Listener, never, Terminal.Terminal> =>
  Effect.gen(function* () {
    const decorated = (yield* colours).stderr
    const text = (event: RouteEvent.RouteEvent): string =>
      options.json ? JSON.stringify(event) : decorated ? `${eventSymbol(event)} ${eventLine(event)}` : eventLine(event)
    // The command's own console (colour stripped where it may not go, or a test's), from the router's callback.
    const print = Runtime.runSync(yield* Effect.runtime<never>())
    return (event) => print(Console.error(redact(text(event))))
  })

/**
 * A route event in words, for a person reading stderr:
 *
 * - `openai/gpt-4o attempt 1: failure Overloaded (HTTP 503) after 12 ms`
 * - `openai/gpt-4o retrying in 500 ms (Overloaded)`
 * - `failing over from openai/gpt-4o (Overloaded, HTTP 503), 1 model left`
 * - `skipped anthropic/claude-3-5-haiku-20241022: open until 2026-12-01T10:00:00.000Z (Overloaded)`
 * - `anthropic/claude-3-5-haiku-20241022 attempt 1: success after 80 ms`
 */
const eventLine = (event: RouteEvent.RouteEvent): string => {
  switch (event.type) {
    case "attempt": {
      const outcome =
        event.outcome === "failure"
          ? `failure ${event.reason ?? "unknown"}${event.status === undefined ? "" : ` (HTTP ${event.status})`}`
          : event.outcome === "cancelled"
            ? "cancelled (a hedge won)"
            : "success"
      const probe = event.probe ? " (half-open probe)" : ""
      return `${event.model} attempt ${event.attempt}${probe}: ${outcome} after ${Math.round(event.duration_ms)} ms`
    }
    case "retry":
      return `${event.model} retrying in ${Math.round(event.delay_ms)} ms (${event.reason})`
    case "failover": {
      const why = `${event.reason}${event.status === undefined ? "" : `, HTTP ${event.status}`}`
      return event.to_models === 0
        ? `no model left to try after ${event.model} (${why})`
        : `failing over from ${event.model} (${why}), ${event.to_models} model${event.to_models === 1 ? "" : "s"} left`
    }
    case "skip":
      return `skipped ${event.model}: ${skipWords(event)}`
  }
}

/** Why a model was skipped: its state and until when, the budget spent, or the fields it cannot serve. */
const skipWords = (skip: Attempt.Skip): string => {
  const until = skip.until === undefined ? "" : ` until ${new Date(skip.until).toISOString()}`
  switch (skip.reason) {
    case "unsupported":
      return `cannot serve ${skip.fields === undefined ? "the request" : skip.fields.join(", ")}`
    case "retry-budget":
      return "retry budget spent"
    case "budget":
      return `${skip.cause === undefined ? "rate" : skip.cause} budget spent${until}`
    default:
      return `${skip.reason}${until}${skip.cause === undefined ? "" : ` (${skip.cause})`}`
  }
}

/** The symbol in front of a verbose line on a terminal, in its colour. */
const eventSymbol = (event: RouteEvent.RouteEvent): string => {
  switch (event.type) {
    case "attempt":
      return event.outcome === "success" ? sgr("32", "✓") : event.outcome === "failure" ? sgr("31", "✗") : sgr("2", "○")
    case "retry":
      return sgr("33", "↻")
    case "failover":
      return sgr("33", "⇢")
    case "skip":
      return sgr("2", "⤳")
  }
}

/** `text` in an SGR style: 2 dim, 31 red, 32 green, 33 yellow. */
const sgr = (code: string, text: string): string => `\x1b[${code}m${text}\x1b[0m`

/** A JSON document for stdout: indented, or one line (NDJSON) with --stream. */
const jsonText = (value: unknown, options: { readonly stream: boolean }): string =>
  `${options.stream ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`

/**
 * The `error` object of `--json`: `_tag` and `message` always, then what the
 * error carries (`deadline_ms`; `models` and `retry_at`; `model`, `delivered`
 * and `cause`; `issues`), and `attempts` always, in the shape of a
 * completion's (empty when no model was tried).
 */
const errorJson = (error: RequestError) => {
  const fields = (() => {
    switch (error._tag) {
      case "AllModelsFailed":
        return {}
      case "DeadlineExceeded":
        return { deadline_ms: Duration.toMillis(error.deadline) }
      case "NoModelAvailable":
        return { models: error.models, ...(error.retryAt === undefined ? {} : { retry_at: error.retryAt }) }
      case "StreamInterrupted":
        return { model: error.model, delivered: error.delivered, cause: providerErrorJson(error.error) }
      case "InvalidChatRequest":
        return { issues: error.issues }
    }
  })()
  return {
    _tag: error._tag,
    message: error.message,
    ...fields,
    attempts: error._tag === "InvalidChatRequest" ? [] : error.attempts.map(attemptJson)
  }
}

/** Reads the prompt: the argument, or with `-` all of stdin, its trailing newlines removed. */
const readPrompt = (prompt: string): Effect.Effect<string, CliError> =>
  prompt !== "-"
    ? Effect.succeed(prompt)
    : NodeStream.toString(() => process.stdin, {
        onFailure: (error) => usageError(`Cannot read the prompt from stdin: ${errorMessage(error)}`)
      }).pipe(
        Effect.map((text) => text.replace(/(\r?\n)+$/, "")),
        Effect.filterOrFail(
          (text) => text.trim() !== "",
          () => usageError("The prompt is `-` but stdin is empty: pipe the message in, or give it as the argument")
        )
      )

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

type Call = { readonly name: string; readonly arguments: string }

/** The calls of an answer's message, as `name` and arguments. */
const toolCalls = (
  calls: NonNullable<ChatCompletion.ChatCompletion["choices"][number]["message"]["tool_calls"]>
): ReadonlyArray<Call> =>
  calls.map((call) =>
    call.type === "function"
      ? { name: call.function.name, arguments: call.function.arguments }
      : { name: call.custom.name, arguments: call.custom.input }
  )

/** `Tool calls: weather({"city":"Paris"}), ...`, or nothing. */
const callsLine = (calls: ReadonlyArray<Call>): string =>
  calls.length === 0 ? "" : `Tool calls: ${calls.map((call) => `${call.name}(${call.arguments})`).join(", ")}`

/** The answer as stdout gets it: the text, then its tool calls; empty when the model said nothing. */
const answerText = (content: string | null | undefined, calls: ReadonlyArray<Call>): string =>
  [content ?? "", callsLine(calls)].filter((part) => part !== "").join("\n")

/** What stderr gets after an answer: `(no content)` for an empty one, the model used and the attempt trace. */
const traceText = (answered: boolean, model: string, attempts: ReadonlyArray<Attempt.Attempt> | undefined): string =>
  [
    ...(answered ? [] : ["(no content)"]),
    `Model used: ${model}`,
    ...(attempts === undefined ? [] : [formatTrace(attempts)])
  ].join("\n")

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
        : attempt.outcome === "cancelled"
          ? "cancelled (a hedge won)"
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
  attempts: completion.attempts.map(attemptJson)
})

const attemptJson = (attempt: Attempt.Attempt) => ({
  model: attempt.model,
  outcome: attempt.outcome,
  duration_ms: Math.round(Duration.toMillis(attempt.duration)),
  ...(attempt.skip === undefined ? {} : { skip: attempt.skip }),
  ...(attempt.dropped === undefined ? {} : { dropped: attempt.dropped }),
  ...(attempt.error === undefined ? {} : { error: providerErrorJson(attempt.error) })
})

const providerErrorJson = (error: ProviderError.ProviderError) => ({
  reason: error.reason,
  ...(error.status === undefined ? {} : { status: error.status }),
  ...(error.retryAfter === undefined ? {} : { retry_after_ms: Duration.toMillis(error.retryAfter) }),
  ...(error.description === undefined ? {} : { description: error.description })
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
    "Run the loopback simulator of the OpenAI and Anthropic wires until SIGINT / SIGTERM; print the base URLs. " +
      "Clients must send an API key (ironlabsai and the official SDKs refuse to run without one), but any key " +
      "is accepted."
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
            "Clients must send an API key, but any key is accepted.",
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

const demoRedis = Options.text("redis").pipe(
  Options.optional,
  Options.withDescription(
    "Keep the clients' model health and rate budgets in Redis, as a fleet would: redis://[user:password@]host" +
      "[:port][/db], or rediss:// for TLS (default: IRONLABSAI_REDIS_URL). Each run uses keys of its own."
  )
)

const demoCommand = Command.make("demo", { live, requests, redis: demoRedis }, (options) =>
  Effect.gen(function* () {
    const [Demo, { stderr }] = yield* Effect.zip(loadDemo, colours)
    const redis = yield* redisSettings(options.redis)
    return yield* Demo.run({
      live: options.live,
      requests: Option.getOrUndefined(options.requests),
      progress: stderr,
      redis: redis?.url
    })
  })
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

/** The package's own version: `src/` and `dist/` both sit one level below its `package.json`. */
const version = (createRequire(import.meta.url)("../package.json") as { readonly version: string }).version

const cli = Command.run(command, {
  name: "ironlabsai",
  version,
  summary: Span.text("client-side load balancing across language-model providers"),
  footer: HelpDoc.blocks([
    HelpDoc.h1("OUTPUT"),
    HelpDoc.p(
      "What a command produces goes to stdout: chat's answer (or, with --json, its JSON document), the " +
        "simulator's address, the demo's report. What it says about it goes to stderr: the model used and the " +
        "attempt trace, with chat -v each routing decision as it is made, log lines (warnings and errors; see --log-level), errors, progress bars. No colour nor " +
        "other escape codes on a stream that is not a terminal, nor when NO_COLOR is set or TERM is dumb."
    ),
    HelpDoc.h1("ENVIRONMENT"),
    HelpDoc.p(
      "chat reads OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, as the official SDKs " +
        "do. Keys are never printed. `ironlabsai simulate` prints the base URLs that point at the simulator. chat " +
        "and demo read IRONLABSAI_REDIS_URL (and chat IRONLABSAI_REDIS_PREFIX) when --redis is not given: model " +
        "health and rate budgets are then shared through that Redis. Its password is never printed."
    ),
    HelpDoc.h1("EXIT CODES"),
    HelpDoc.p(
      "0 success, --help, --version, or stopped by SIGINT / SIGTERM; 1 every model failed, the --timeout " +
        "deadline passed, the stream broke, or another runtime failure (the error and the attempt trace go to " +
        "stderr); 2 a usage error, an empty prompt on stdin, or a config file that is missing, not JSON or invalid " +
        "(every offending path is listed)."
    )
  ])
})

const subcommands: ReadonlySet<string> = new Set(["chat", "simulate", "demo"])

/**
 * `@effect/cli` shows a subcommand's usage as `$ chat ...` for
 * `ironlabsai chat --help`, but as `$ ironlabsai chat ...` when the help is
 * asked of the parent too: `ironlabsai --help chat --help` is asked instead.
 */
const withFullUsage = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const [runtime = "", script = "", command = "", ...rest] = argv
  return subcommands.has(command) && rest.some((arg) => arg === "--help" || arg === "-h")
    ? [runtime, script, "--help", command, "--help"]
    : argv
}

/**
 * Runs the tool on a full `process.argv` (runtime and script first). Errors
 * are printed to stderr here (usage errors by `@effect/cli` itself), so run it
 * with `disableErrorReporting` and {@link teardown} for the exit code. Log
 * lines go to stderr, by a logger of its own in place of `runMain`'s pretty
 * logger (which writes to stdout).
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<void, CliError | ValidationError.ValidationError | Error, CliApp.CliApp.Environment> =>
  Effect.gen(function* () {
    const { stdout, stderr } = yield* colours
    const console = yield* Effect.console
    const logger = Logger.prettyLogger({ stderr: true, colors: stderr })
    return yield* cli(withFullUsage(argv)).pipe(
      Effect.tapErrorCause(report),
      Effect.withConsole(withoutColour(console, { stdout, stderr })),
      Effect.provide(
        Layer.merge(Logger.remove(Logger.prettyLoggerDefault), Logger.replace(Logger.defaultLogger, logger))
      ),
      // `--log-level` sets a level of its own inside.
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  })

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
export const teardown: PlatformRuntime.Teardown = (exit, onExit) => onExit(exitCode(exit))

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))
