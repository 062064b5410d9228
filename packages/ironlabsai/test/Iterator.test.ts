/**
 * The streamed answer as an async iterator, over real HTTP against the loopback
 * simulator: concurrent `next()` calls, `return()` and `throw()` as the protocol
 * says (and as Node's async generators do), timeouts that count the provider's
 * gaps and not the consumer's, and errors that reach the user as the library's
 * own, with no header in them.
 */
import { getEventListeners } from "node:events"
import { inspect } from "node:util"
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import type { ChatCompletion } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
/** Put into every client here; no error may ever contain it. */
const CANARY = "sk-canary-iter-5d2e"
const ask = { messages: [{ role: "user", content: "Describe a sunset." }], stream: true } as const
const plain = { messages: ask.messages }

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start()
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

type Reliability = ConstructorParameters<typeof IronlabsAI>[0]["reliability"]

const connect = (reliability: Reliability = { failover_chain: [{ model: GPT, timeout: 2 }] }) => {
  const client = new IronlabsAI({
    reliability,
    openai: { apiKey: CANARY, baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: CANARY, baseURL: sim.anthropicBaseUrl }
  })
  clients.push(client)
  return client
}

type Chunk = ChatCompletion.ChatCompletionChunk
type Iterator = AsyncIterator<Chunk>

const open = async (client: IronlabsAI, options?: { signal?: AbortSignal; timeout?: number }): Promise<Iterator> =>
  (await client.completions.create(ask, options))[Symbol.asyncIterator]()

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What a chunk says, in one word: its text, its finish reason, or its role. */
const says = (chunk: Chunk) =>
  chunk.choices[0]?.delta.content ?? chunk.choices[0]?.finish_reason ?? chunk.choices[0]?.delta.role ?? "-"

/** A settled `next()` as one word: what the chunk says, `done`, or the rejection's `_tag` or name. */
const outcome = (settled: PromiseSettledResult<IteratorResult<Chunk>>) => {
  if (settled.status === "rejected") {
    const error = settled.reason as { _tag?: string; name?: string }
    return `throws ${error._tag ?? error.name}`
  }
  return settled.value.done === true ? "done" : says(settled.value.value)
}

const drain = async (iterator: Iterator): Promise<Array<string>> => {
  const seen: Array<string> = []
  for (;;) {
    const result = await iterator.next()
    if (result.done === true) return seen
    seen.push(says(result.value))
  }
}

/** `n` calls to `next()` at once, none awaiting another. */
const nextAtOnce = <A>(iterator: AsyncIterator<A>, n: number) =>
  Promise.allSettled(Array.from({ length: n }, () => iterator.next()))

const LIBRARY_TAGS = [
  "AllModelsFailed",
  "DeadlineExceeded",
  "NoModelAvailable",
  "StreamInterrupted",
  "InvalidChatRequest",
  "ClientClosed"
]

/**
 * The error is one of the library's: a real `Error` with a `_tag` the library
 * documents and a message, that names no header and holds no key, in its
 * message, stack, `inspect` output or JSON, and is no error of a library below.
 */
const assertLibraryError = (error: unknown, tag?: string) => {
  assert.instanceOf(error, Error)
  const e = error as Error & { _tag?: unknown }
  assert.include(LIBRARY_TAGS, e._tag, `unexpected error: ${inspect(error)}`)
  if (tag !== undefined) assert.strictEqual(e._tag, tag)
  assert.isAbove(e.message.length, 10)
  for (const text of [e.message, e.stack ?? "", inspect(error, { depth: 10 }), JSON.stringify(error) ?? ""]) {
    for (const banned of [
      CANARY,
      "authorization",
      "x-api-key",
      "Bearer",
      "FiberFailure",
      "RuntimeException",
      "ResponseError",
      "RequestError",
      "ManagedRuntime"
    ]) {
      assert.notInclude(text.toLowerCase(), banned.toLowerCase(), `${banned} in ${text}`)
    }
  }
}

const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  return assert.fail("expected a rejection")
}

describe("Concurrent next() calls", () => {
  it("queue: each gets the next chunk, in order, exactly once; then every pending and later call is done", async () => {
    const chunks = ["a ", "b ", "c ", "d ", "e "]
    sim.script("gpt-4o", { chunks, chunkInterval: "10 millis" }, { chunks, chunkInterval: "10 millis" })
    const client = connect()
    const expected = await drain(await open(client))
    assert.deepStrictEqual(expected.filter((w) => w.endsWith(" ")).join(""), "a b c d e ")

    const iterator = await open(client)
    const settled = await nextAtOnce(iterator, expected.length + 5)
    assert.deepStrictEqual(settled.map(outcome), [...expected, ...Array(5).fill("done")])
    assert.deepStrictEqual(await iterator.next(), { value: undefined, done: true })
    assert.strictEqual(sim.openRequests(), 0)
  })

  it("queued behind chunks already buffered and chunks still to come, in order", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c ", "d "], chunkInterval: "60 millis" })
    const iterator = await open(connect())
    await sleep(100)
    // Some chunks are in, the rest arrive while these wait.
    const first = await nextAtOnce(iterator, 3)
    const rest = await nextAtOnce(iterator, 6)
    const words = [...first, ...rest].map(outcome)
    assert.deepStrictEqual(
      words.filter((w) => w.endsWith(" ")),
      ["a ", "b ", "c ", "d "]
    )
    assert.strictEqual(words.at(-1), "done")
    assert.strictEqual(words.indexOf("done"), words.length - words.filter((w) => w === "done").length)
  })

  it("after an error, the first pending call rejects and the later ones are done, as an async generator's", async () => {
    // The oracle: what a Node async generator (and so openai's Stream and a Readable's iterator) does.
    async function* generator() {
      yield "one "
      yield "two "
      throw new Error("broken")
    }
    const reference = (await nextAtOnce(generator(), 8)).map((s) =>
      s.status === "rejected" ? "throws" : s.value.done === true ? "done" : "chunk"
    )
    assert.deepStrictEqual(reference, ["chunk", "chunk", "throws", "done", "done", "done", "done", "done"])

    sim.script("gpt-4o", { chunks: ["one ", "two ", "three "], breakAfterChunks: 2, chunkInterval: "20 millis" })
    const iterator = await open(connect())
    const settled = await nextAtOnce(iterator, 10)
    const words = settled.map(outcome)
    const thrown = words.indexOf("throws StreamInterrupted")
    assert.deepStrictEqual(
      words.slice(0, thrown).filter((w) => w.endsWith(" ")),
      ["one ", "two "]
    )
    assert.deepStrictEqual(words.slice(thrown), ["throws StreamInterrupted", ...Array(9 - thrown).fill("done")])
    assertLibraryError((settled[thrown] as PromiseRejectedResult).reason, "StreamInterrupted")
    assert.deepStrictEqual(await iterator.next(), { value: undefined, done: true })
  })
})

describe("return() and throw()", () => {
  const stalled = async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c "], stallAfterChunks: 1 })
    const iterator = await open(connect())
    const seen: Array<string> = []
    while (!seen.includes("a ")) seen.push(says(((await iterator.next()) as IteratorYieldResult<Chunk>).value))
    return iterator
  }

  it("return() while next() is pending settles it with done, and closes the HTTP request", async () => {
    const iterator = await stalled()
    const pending = iterator.next()
    await sleep(50)
    const returned = await iterator.return!()
    assert.deepStrictEqual(returned, { value: undefined, done: true })
    assert.deepStrictEqual(await pending, { value: undefined, done: true })
    await sim.waitForClientClose(1)
    assert.strictEqual(sim.openRequests(), 0)
    assert.deepStrictEqual(await iterator.next(), { value: undefined, done: true })
  })

  it("return(value) resolves with that value and done, as a generator's does, and can be called again", async () => {
    const iterator = await stalled()
    assert.deepStrictEqual(await iterator.return!("bye"), { value: "bye", done: true })
    assert.deepStrictEqual(await iterator.return!(), { value: undefined, done: true })
    await sim.waitForClientClose(1)
  })

  it("throw(error) ends the stream: pending calls are done, it rejects with the error, the request is closed", async () => {
    const iterator = await stalled()
    const pending = iterator.next()
    await sleep(50)
    const reason = new Error("the consumer gave up")
    assert.strictEqual(await rejection(iterator.throw!(reason)), reason)
    assert.deepStrictEqual(await pending, { value: undefined, done: true })
    await sim.waitForClientClose(1)
    assert.deepStrictEqual(await iterator.next(), { value: undefined, done: true })
    // A finished generator's throw() rejects with what it was given, too.
    assert.strictEqual(await rejection(iterator.throw!(reason)), reason)
  })

  it("the iterable is its own iterator, as a generator is; a second loop finds it consumed", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b "] })
    const iterable = await connect().completions.create(ask)
    const iterator = iterable[Symbol.asyncIterator]()
    assert.strictEqual(iterable[Symbol.asyncIterator](), iterator)
    for await (const chunk of iterable) if (says(chunk) === "a ") break
    assert.deepStrictEqual(await iterator.next(), { value: undefined, done: true })
  })
})

describe("Timeouts count the provider's gaps, not the consumer's", () => {
  it("a consumer slower than the model's timeout gets every chunk the provider sends on time", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c ", "d "], chunkInterval: "40 millis" })
    const iterator = await open(connect({ failover_chain: [{ model: GPT, timeout: 0.2 }] }))
    const seen: Array<string> = []
    for (;;) {
      await sleep(300)
      const result = await iterator.next()
      if (result.done === true) break
      seen.push(says(result.value))
    }
    assert.deepStrictEqual(
      seen.filter((w) => w.endsWith(" ")),
      ["a ", "b ", "c ", "d "]
    )
  })

  it("a consumer slower than the overall deadline gets every chunk the provider sent within it", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c "], chunkInterval: "20 millis" })
    const iterator = await open(connect(), { timeout: 0.5 })
    await sleep(800)
    const seen = await drain(iterator)
    assert.deepStrictEqual(
      seen.filter((w) => w.endsWith(" ")),
      ["a ", "b ", "c "]
    )
  })

  it("a provider that stalls is cut off at the model's timeout while the consumer is not pulling", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c "], stallAfterChunks: 1 })
    const iterator = await open(connect({ failover_chain: [{ model: GPT, timeout: 0.3 }] }))
    const committed = Date.now()
    await sim.waitForClientClose(1, 1000)
    assert.isBelow(Date.now() - committed, 800)
    // The consumer still gets what came before the stall, then the timeout.
    const settled = await nextAtOnce(iterator, 6)
    const words = settled.map(outcome)
    assert.include(words, "a ")
    const thrown = settled.find((s) => s.status === "rejected") as PromiseRejectedResult
    assertLibraryError(thrown.reason, "StreamInterrupted")
    const error = thrown.reason as { error: { reason: string }; delivered: string }
    assert.strictEqual(error.error.reason, "Timeout")
    assert.strictEqual(error.delivered, "a ")
  })

  it("the overall deadline ends a slow stream on time while the consumer is not pulling", async () => {
    sim.script("gpt-4o", { chunks: Array.from({ length: 20 }, (_, i) => `${i} `), chunkInterval: "100 millis" })
    const controller = new AbortController()
    const iterator = await open(connect(), { timeout: 0.5, signal: controller.signal })
    await sim.waitForClientClose(1, 1500)
    const settled = await nextAtOnce(iterator, 30)
    const thrown = settled.find((s) => s.status === "rejected") as PromiseRejectedResult
    assertLibraryError(thrown.reason, "DeadlineExceeded")
    assert.strictEqual(settled.at(-1)?.status, "fulfilled")
    assert.strictEqual(getEventListeners(controller.signal, "abort").length, 0)
  })

  it("a consumer that never pulls again does not hold the request open: it is read to its end and released", async () => {
    // Far more than the socket buffers hold: the provider can only finish if the client reads.
    const piece = "x".repeat(2000)
    sim.script("gpt-4o", { chunks: Array.from({ length: 4000 }, () => piece) })
    const controller = new AbortController()
    const iterator = await open(connect(), { signal: controller.signal })
    const end = Date.now() + 10_000
    while (sim.requests[0]?.outcome !== "answered" && Date.now() < end) await sleep(20)
    assert.strictEqual(sim.requests[0]?.outcome, "answered")
    assert.strictEqual(sim.openRequests(), 0)
    // Once the client has read the last byte (a little after the server wrote it), nothing is left to
    // cancel: the signal is free of us, and the chunks are still there to read.
    while (getEventListeners(controller.signal, "abort").length > 0 && Date.now() < end) await sleep(20)
    assert.strictEqual(getEventListeners(controller.signal, "abort").length, 0)
    const seen = await drain(iterator)
    assert.strictEqual(seen.filter((w) => w === piece).length, 4000)
  }, 20_000)

  it("the model's timeout bounds the first chunk: a provider silent for longer is failed over", async () => {
    sim.script("gpt-4o", { chunks: ["late "], firstChunkDelay: "1 second" })
    sim.script("claude-3-5-haiku-20241022", { chunks: ["Amber."] })
    const client = connect({ failover_chain: [{ model: GPT, timeout: 0.3, max_retries: 0 }, { model: HAIKU }] })
    const started = Date.now()
    const iterable = await client.completions.create(ask)
    assert.isBelow(Date.now() - started, 900)
    const chunks: Array<Chunk> = []
    for await (const chunk of iterable) chunks.push(chunk)
    assert.isTrue(chunks.every((c) => c.model === HAIKU))
    await sim.waitForClientClose(1)
  })

  it("keep-alive pings are not progress: a provider that only pings is timed out and failed over", async () => {
    sim.script("gpt-4o", { pingOnly: "50 millis" })
    sim.script("claude-3-5-haiku-20241022", { chunks: ["Amber."] })
    const client = connect({ failover_chain: [{ model: GPT, timeout: 0.3, max_retries: 0 }, { model: HAIKU }] })
    const iterable = await client.completions.create(ask)
    const chunks: Array<Chunk> = []
    for await (const chunk of iterable) chunks.push(chunk)
    assert.isTrue(chunks.every((c) => c.model === HAIKU))
    await sim.waitForClientClose(1)
  })
})

describe("Errors reach the user as the library's own", () => {
  it("a stream broken mid-body: StreamInterrupted, with its attempts", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b "], breakAfterChunks: 1 })
    const iterator = await open(connect())
    const error = await rejection(drain(iterator))
    assertLibraryError(error, "StreamInterrupted")
    assert.isArray((error as { attempts: unknown }).attempts)
  })

  it("an error event mid-stream: StreamInterrupted", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b "], errorAfterChunks: 1 })
    assertLibraryError(await rejection(drain(await open(connect()))), "StreamInterrupted")
  })

  it("every model failing, streamed and not: AllModelsFailed with the attempts", async () => {
    const client = connect({
      failover_chain: [
        { model: GPT, max_retries: 0 },
        { model: HAIKU, max_retries: 0 }
      ]
    })
    sim.script("gpt-4o", { reset: "before-headers" }, { reset: "mid-body", content: "x".repeat(5000) })
    sim.script("claude-3-5-haiku-20241022", { status: 401 }, { status: 500 })
    for (const call of [() => client.completions.create(ask), () => client.completions.create(plain)]) {
      const error = await rejection(call())
      assertLibraryError(error, "AllModelsFailed")
      assert.strictEqual((error as { attempts: ReadonlyArray<unknown> }).attempts.length, 2)
    }
  })

  it("an invalid request, streamed and not: InvalidChatRequest", async () => {
    const client = connect()
    for (const stream of [true, false]) {
      const error = await rejection(
        (client.completions.create as (r: unknown) => Promise<unknown>)({ messages: [{ role: "robot" }], stream })
      )
      assertLibraryError(error, "InvalidChatRequest")
    }
    assert.strictEqual(sim.requests.length, 0)
  })

  it("the overall deadline before the first chunk: DeadlineExceeded", async () => {
    sim.script("gpt-4o", { hang: true })
    assertLibraryError(await rejection(connect().completions.create(ask, { timeout: 0.2 })), "DeadlineExceeded")
  })

  it("create() after close(), streamed and not: ClientClosed, and nothing is sent", async () => {
    const client = connect()
    await client.close()
    for (const call of [() => client.completions.create(ask), () => client.completions.create(plain)]) {
      assertLibraryError(await rejection(call()), "ClientClosed")
    }
    assert.strictEqual(sim.requests.length, 0)
  })

  it("close() while calls are in flight: they end with the library's errors, and their requests close", async () => {
    sim.script("gpt-4o", { hang: true }, { chunks: ["a ", "b "], stallAfterChunks: 1 })
    const client = connect()
    const call = rejection(client.completions.create(plain))
    await sim.waitForRequests(1)
    const iterator = await open(client)
    await iterator.next()
    const pending = nextAtOnce(iterator, 4)
    await client.close()
    assertLibraryError(await call, "ClientClosed")
    const settled = await pending
    const thrown = settled.filter((s) => s.status === "rejected") as Array<PromiseRejectedResult>
    assert.lengthOf(thrown, 1)
    assertLibraryError(thrown[0]!.reason, "ClientClosed")
    await sim.waitForClientClose(1)
    await sim.waitForClientClose(2)
    assert.strictEqual(sim.openRequests(), 0)
  })
})
