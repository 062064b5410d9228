import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, IronlabsClient, Provider, type Reliability } from "@ironlabsai/core"
import { ScriptedProvider } from "@ironlabsai/testing"
import { Chunk, Clock, Effect, Either, Exit, Fiber, Schedule, Stream, TestClock } from "effect"

const { breakAfter, delay, fail, hang, stallAfter, succeed } = ScriptedProvider
const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Write a haiku about the ocean." }], stream: true } as const

const setup = (
  reliability: Reliability.Input,
  script: Parameters<typeof ScriptedProvider.make>[0],
  options: Omit<IronlabsClient.Options, "reliability"> = {}
) => {
  const scripted = ScriptedProvider.make(script)
  const client = Either.getOrThrow(IronlabsClient.makeWith({ reliability, ...options }, scripted.registry))
  return { scripted, client }
}

/** Collects a stream in a fiber while the `TestClock` runs ahead. */
const collect = <A, E>(stream: Stream.Stream<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Stream.runCollect(stream))
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.join(fiber).pipe(Effect.map(Chunk.toReadonlyArray), Effect.either)
  })

const text = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
  chunks.map(ChatCompletion.chunkText).join("")

describe("Router: streams", () => {
  it.effect("streams OpenAI chunks in order, every chunk's model the routed id", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: HAIKU }] },
        {
          [HAIKU]: [succeed(undefined, { chunks: ["Salt ", "wind, ", "slow ", "tide."] })]
        }
      )
      const chunks = Either.getOrThrow(yield* collect(client.completions.create(ask)))
      assert.deepStrictEqual(
        chunks.map((c) => [c.choices[0]!.delta.role, c.choices[0]!.delta.content, c.choices[0]!.finish_reason]),
        [
          ["assistant", "", null],
          [undefined, "Salt ", null],
          [undefined, "wind, ", null],
          [undefined, "slow ", null],
          [undefined, "tide.", null],
          [undefined, undefined, "stop"]
        ]
      )
      assert.isTrue(chunks.every((c) => c.model === HAIKU && c.object === "chat.completion.chunk"))
    })
  )

  it.effect("a failure before the first chunk is an ordinary attempt: retried, then failed over", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 1, backoff: 1 }, { model: HAIKU }] },
        { [GPT]: [fail("ServerError"), fail("Overloaded")] }
      )
      const chunks = Either.getOrThrow(yield* collect(client.completions.create(ask)))
      assert.deepStrictEqual(scripted.order(), [GPT, GPT, HAIKU])
      assert.strictEqual(text(chunks), `Scripted answer from ${HAIKU}.`)
      assert.isTrue(chunks.every((c) => c.model === HAIKU))
    })
  )

  it.effect("a role-only preamble does not commit: a failure right after it fails over", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, max_retries: 0 }, { model: HAIKU }] },
        {
          [GPT]: [breakAfter(0, "Overloaded")]
        }
      )
      const chunks = Either.getOrThrow(yield* collect(client.completions.create(ask)))
      assert.deepStrictEqual(scripted.order(), [GPT, HAIKU])
      // Nothing of the failed attempt reached the caller, not even its preamble.
      assert.isTrue(chunks.every((c) => c.model === HAIKU))
      assert.strictEqual(chunks.filter((c) => c.choices[0]!.delta.role === "assistant").length, 1)
    })
  )

  it.effect(
    "after the first content, a failure is StreamInterrupted with the text delivered: no retry, no failover",
    () =>
      Effect.gen(function* () {
        const { scripted, client } = setup(
          { failover_chain: [{ model: GPT, max_retries: 3 }, { model: HAIKU }] },
          {
            [GPT]: [breakAfter(2, "Transport")]
          }
        )
        const stream = client.completions.create(ask)
        const delivered: Array<string> = []
        const result = yield* collect(
          Stream.tap(stream, (c) => Effect.sync(() => delivered.push(ChatCompletion.chunkText(c))))
        )
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) {
          const error = result.left
          assert.strictEqual(error._tag, "StreamInterrupted")
          if (error._tag === "StreamInterrupted") {
            assert.strictEqual(error.model, GPT)
            assert.strictEqual(error.delivered, "Scripted answer ")
            assert.strictEqual(error.delivered, delivered.join(""))
            assert.strictEqual(error.error.reason, "Transport")
            assert.deepStrictEqual(
              error.attempts.map((a) => [a.model, a.outcome]),
              [[GPT, "success"]]
            )
          }
        }
        assert.deepStrictEqual(scripted.order(), [GPT])
      })
  )

  it.effect("the model's timeout bounds the wait for the first chunk", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 2, max_retries: 0 }, { model: HAIKU }] },
        {
          [GPT]: [hang]
        }
      )
      const chunks = Either.getOrThrow(yield* collect(client.completions.create(ask)))
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.startedAt, c.status]),
        [
          [GPT, 0, "interrupted"],
          [HAIKU, 2000, "success"]
        ]
      )
      assert.isTrue(chunks.every((c) => c.model === HAIKU))
    })
  )

  it.effect("the model's timeout bounds every gap after the commit: a stall is StreamInterrupted(Timeout)", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 2 }, { model: HAIKU }] },
        {
          [GPT]: [stallAfter(2)]
        }
      )
      const result = yield* collect(client.completions.create(ask))
      const error = Either.isLeft(result) ? result.left : undefined
      assert.strictEqual(error?._tag, "StreamInterrupted")
      if (error?._tag === "StreamInterrupted") {
        assert.strictEqual(error.error.reason, "Timeout")
        assert.strictEqual(error.delivered, "Scripted answer ")
      }
      assert.deepStrictEqual(
        scripted.calls.map((c) => c.status),
        ["interrupted"]
      )
    })
  )

  it.effect("a slow stream whose every gap is within the timeout is not cut, however long it takes", () =>
    Effect.gen(function* () {
      const pieces = Array.from({ length: 10 }, (_, i) => `${i} `)
      const { client } = setup(
        { failover_chain: [{ model: GPT, timeout: 2 }] },
        {
          [GPT]: [succeed(undefined, { chunks: pieces, interval: "1500 millis" })]
        }
      )
      const chunks = Either.getOrThrow(yield* collect(client.completions.create(ask)))
      assert.strictEqual(text(chunks), pieces.join(""))
    })
  )

  it.effect("the overall deadline bounds the whole stream, after the commit too", () =>
    Effect.gen(function* () {
      const { client } = setup(
        { failover_chain: [{ model: GPT, timeout: 5 }] },
        {
          [GPT]: [succeed(undefined, { chunks: ["a ", "b ", "c ", "d ", "e "], interval: "1 second" })]
        }
      )
      const delivered: Array<string> = []
      const stream = client.completions.create(ask, { timeout: "3500 millis" })
      const result = yield* collect(
        Stream.tap(stream, (c) => Effect.sync(() => delivered.push(ChatCompletion.chunkText(c))))
      )
      assert.strictEqual(Either.isLeft(result) ? result.left._tag : "", "DeadlineExceeded")
      assert.strictEqual(delivered.join(""), "a b c ")
    })
  )

  it.effect("every model failing before its first chunk is AllModelsFailed, with the trace", () =>
    Effect.gen(function* () {
      const { client } = setup(
        {
          failover_chain: [
            { model: GPT, max_retries: 0 },
            { model: HAIKU, max_retries: 0 }
          ]
        },
        {
          [GPT]: [fail("Authentication")],
          [HAIKU]: [breakAfter(0, "Overloaded")]
        }
      )
      const result = yield* collect(client.completions.create(ask))
      const error = Either.isLeft(result) && result.left._tag === "AllModelsFailed" ? result.left : undefined
      assert.strictEqual(error?._tag, "AllModelsFailed")
      assert.deepStrictEqual(
        error?.attempts.map((a) => [a.model, a.error?.reason]),
        [
          [GPT, "Authentication"],
          [HAIKU, "Overloaded"]
        ]
      )
    })
  )

  it.effect("a consumer that stops early stops the provider's stream", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup({ failover_chain: [{ model: GPT }] }, { [GPT]: [stallAfter(3)] })
      const chunks = Either.getOrThrow(yield* collect(Stream.take(client.completions.create(ask), 2)))
      assert.strictEqual(chunks.length, 2)
      assert.deepStrictEqual(
        scripted.calls.map((c) => c.status),
        ["interrupted"]
      )
    })
  )

  it.effect("interrupting the consumer stops everything: no retry, no failover", () =>
    Effect.gen(function* () {
      const { scripted, client } = setup(
        { failover_chain: [{ model: GPT, timeout: 10 }, { model: HAIKU }] },
        {
          [GPT]: [delay("5 seconds", succeed())]
        }
      )
      const fiber = yield* Effect.fork(Stream.runCollect(client.completions.create(ask)))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 hour")
      assert.isTrue(Exit.isInterrupted(exit))
      assert.deepStrictEqual(
        scripted.calls.map((c) => [c.model, c.status]),
        [[GPT, "interrupted"]]
      )
    })
  )

  it.effect("the model's extra messages go with its streamed call", () =>
    Effect.gen(function* () {
      const extra = { role: "user", content: "Please provide a concise response." } as const
      const { scripted, client } = setup({ failover_chain: [{ model: GPT, messages: [extra] }] }, {})
      yield* collect(client.completions.create(ask))
      assert.deepStrictEqual(scripted.calls[0]!.request.messages, [...ask.messages, extra])
    })
  )
})

describe("Router: keep-alive is not progress", () => {
  const chunk = (delta: ChatCompletion.ChatCompletionChunk["choices"][number]["delta"]) => ({
    id: "c",
    object: "chat.completion.chunk" as const,
    created: 0,
    model: "m",
    choices: [{ index: 0, delta, finish_reason: null }]
  })
  /** A provider that sends `head`, then `filler` every second, for ever; the times its stream is pulled are kept. */
  const keepAlive = (
    head: ReadonlyArray<ChatCompletion.ChatCompletionChunk>,
    filler: ChatCompletion.ChatCompletionChunk
  ): Provider.Provider => ({
    complete: () => Effect.never,
    stream: () =>
      Stream.concat(
        Stream.fromIterable(head),
        Stream.repeatValue(filler).pipe(Stream.schedule(Schedule.spaced("1 second")))
      )
  })
  const client = (provider: Provider.Provider) =>
    Either.getOrThrow(
      IronlabsClient.makeWith(
        { reliability: { failover_chain: [{ model: GPT, timeout: 5, max_retries: 0 }] } },
        Provider.registry({ openai: provider })
      )
    )
  const role = chunk({ role: "assistant", content: "" })

  it.effect("role-only chunks every second do not reset the wait for the first content: Timeout after 5 s", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(
        Effect.zip(
          Stream.runDrain(client(keepAlive([role], role)).completions.create(ask)).pipe(Effect.flip),
          Clock.currentTimeMillis
        )
      )
      yield* TestClock.adjust("1 minute")
      const [error, at] = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "AllModelsFailed")
      if (error._tag === "AllModelsFailed") assert.strictEqual(error.attempts[0]?.error?.reason, "Timeout")
      assert.strictEqual(at, 5000)
    })
  )

  it.effect(
    "empty chunks after the content do not reset the idle timeout: StreamInterrupted(Timeout) 5 s after it",
    () =>
      Effect.gen(function* () {
        const fiber = yield* Effect.fork(
          Effect.zip(
            Stream.runDrain(
              client(keepAlive([role, chunk({ content: "Hi" })], chunk({}))).completions.create(ask)
            ).pipe(Effect.flip),
            Clock.currentTimeMillis
          )
        )
        yield* TestClock.adjust("1 minute")
        const [error, at] = yield* Fiber.join(fiber)
        assert.strictEqual(error._tag, "StreamInterrupted")
        if (error._tag === "StreamInterrupted") {
          assert.strictEqual(error.error.reason, "Timeout")
          assert.strictEqual(error.delivered, "Hi")
        }
        assert.strictEqual(at, 5000)
      })
  )

  it.effect("the time a consumer takes between pulls is not the provider's: a slow consumer is not timed out", () =>
    Effect.gen(function* () {
      const provider = ScriptedProvider.make({ [GPT]: [succeed(undefined, { chunks: ["a ", "b ", "c"] })] })
      const routed = Either.getOrThrow(
        IronlabsClient.makeWith({ reliability: { failover_chain: [{ model: GPT, timeout: 2 }] } }, provider.registry)
      )
      // Each chunk is taken 10 s after the last: five times the model's timeout.
      const slow = routed.completions.create(ask).pipe(Stream.tap(() => Effect.sleep("10 seconds")))
      const result = yield* collect(slow)
      assert.strictEqual(text(Either.getOrThrow(result)), "a b c")
    })
  )
})
