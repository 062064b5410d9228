/**
 * The router logs each decision (DESIGN §10): a retry with its delay, a
 * failover and why, a skip, a hold and a breaker opening or closing, with the
 * model and reason as annotations, never a key or a prompt.
 */
import { assert, describe, it } from "@effect/vitest"
import { IronlabsClient, ModelHealth, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { type Duration, Effect, Either, Fiber, HashMap, Logger, LogLevel, TestClock } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const PROMPT = "A secret prompt about the ocean."
const ask = { messages: [{ role: "user", content: PROMPT }] } as const

/** Runs a request with every log line kept: level, message and annotations. */
const logged = (
  reliability: Reliability.Input,
  script: Parameters<typeof ScriptedProvider.make>[0],
  /** The clock's step after each request, one per request. */
  steps: ReadonlyArray<Duration.DurationInput> = ["1 minute"]
) =>
  Effect.gen(function* () {
    const lines: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
    const logger = Logger.make(({ annotations, logLevel, message }) => {
      lines.push({
        level: logLevel.label,
        message: String(Array.isArray(message) ? message.join(" ") : message),
        annotations: Object.fromEntries(HashMap.toEntries(annotations))
      })
    })
    const scripted = ScriptedProvider.make(script)
    const health = ModelHealth.unsafeMakeMemory({ health: ModelHealth.defaultPolicy })
    const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability }, scripted.registry, health))
    for (const step of steps) {
      const fiber = yield* Effect.fork(
        Effect.either(client.completions.create(ask)).pipe(
          Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
          Logger.withMinimumLogLevel(LogLevel.Debug)
        )
      )
      yield* TestClock.adjust(step)
      yield* Fiber.join(fiber)
    }
    return lines
  })

describe("Router logs", () => {
  it.effect("a retry with its delay, then a failover with its reason", () =>
    Effect.gen(function* () {
      const lines = yield* logged(
        { failover_chain: [{ model: GPT, max_retries: 1, backoff: 1 }, { model: HAIKU }] },
        {
          [GPT]: [
            ScriptedProvider.fail("ServerError", { status: 500 }),
            ScriptedProvider.fail("ServerError", { status: 500 })
          ]
        }
      )
      assert.deepStrictEqual(
        lines.map((l) => [l.level, l.message, l.annotations["model"], l.annotations["reason"]]),
        [
          ["DEBUG", "retrying", GPT, "ServerError"],
          ["DEBUG", "failing over", GPT, "ServerError"]
        ]
      )
      const delay = lines[0]!.annotations["delay_ms"] as number
      assert.isAtLeast(delay, 800)
      assert.isAtMost(delay, 1200)
      assert.strictEqual(lines[1]!.annotations["status"], 500)
    })
  )

  it.effect("a breaker that opens, the skip it causes, and the close after the probe", () =>
    Effect.gen(function* () {
      const failures = Array.from({ length: 3 }, () => ScriptedProvider.fail("ServerError"))
      const lines = yield* logged(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        { [GPT]: failures },
        // Three failures open the breaker; the fourth request comes while it is open, the fifth after it.
        ["1 second", "1 second", "1 second", "1 minute", "1 second"]
      )
      const seen = lines.map(
        (l) => `${l.level} ${l.message} ${String(l.annotations["model"])} ${String(l.annotations["reason"])}`
      )
      assert.include(seen, `WARN breaker opened ${GPT} ServerError`)
      assert.include(seen, `DEBUG skipped ${GPT} open`)
      assert.include(seen, `INFO breaker closed ${GPT} undefined`)
      // Never the prompt, in any line or annotation.
      assert.isFalse(JSON.stringify(lines).includes(PROMPT))
    })
  )
})
