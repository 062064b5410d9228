/**
 * Streaming through the facade over real HTTP: an async iterable of OpenAI
 * chunks, failover before the first content, typed errors after it, and
 * early exits that close the connection.
 */
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import type { ChatCompletion } from "@ironlabsai/core"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"
const ask = { messages: [{ role: "user", content: "Describe a sunset." }], stream: true } as const

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start()
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

const connect = (reliability: ConstructorParameters<typeof IronlabsAI>[0]["reliability"]) => {
  const client = new IronlabsAI({
    reliability,
    openai: { apiKey: "sk-test", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-test", baseURL: sim.anthropicBaseUrl }
  })
  clients.push(client)
  return client
}

const chain = { failover_chain: [{ model: GPT, max_retries: 1, backoff: 0.01, timeout: 2 }, { model: HAIKU }] }

const drain = async (iterable: AsyncIterable<ChatCompletion.ChatCompletionChunk>) => {
  const chunks: Array<ChatCompletion.ChatCompletionChunk> = []
  for await (const chunk of iterable) chunks.push(chunk)
  return chunks
}
const text = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
  chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")

describe("Streaming through the facade", () => {
  it("resolves to an async iterable of chunks, each with the routed model", async () => {
    sim.script("gpt-4o", { chunks: ["The ", "sun ", "sinks."] })
    const chunks = await drain(await connect(chain).completions.create(ask))
    assert.strictEqual(text(chunks), "The sun sinks.")
    assert.isTrue(chunks.every((c) => c.model === GPT && c.object === "chat.completion.chunk"))
    assert.deepStrictEqual(
      chunks.map((c) => c.choices[0]?.finish_reason ?? null).filter((f) => f !== null),
      ["stop"]
    )
    assert.strictEqual((sim.requests[0]!.body as { stream?: boolean }).stream, true)
  })

  it("fails over before the first content: gpt-4o 503 twice, Anthropic's events mapped to chunks", async () => {
    sim.script("gpt-4o", { status: 503 }, { status: 503 })
    sim.script("claude-3-5-haiku-20241022", { chunks: ["Amber ", "light."] })
    const chunks = await drain(await connect(chain).completions.create(ask))
    assert.strictEqual(text(chunks), "Amber light.")
    assert.isTrue(chunks.every((c) => c.model === HAIKU))
    assert.deepStrictEqual(
      chunks.map((c) => c.choices[0]?.finish_reason ?? null).filter((f) => f !== null),
      ["stop"]
    )
    // Anthropic's usage arrives on the chunk that finishes, in OpenAI's names.
    const finishing = chunks.find((c) => c.choices[0]?.finish_reason === "stop")
    assert.isAbove(finishing?.usage?.completion_tokens ?? 0, 0)
    assert.deepStrictEqual(
      sim.requests.map((r) => r.model),
      ["gpt-4o", "gpt-4o", "claude-3-5-haiku-20241022"]
    )
  })

  it("a stream that breaks after its first content is not retried: the iterator throws StreamInterrupted", async () => {
    sim.script("gpt-4o", { chunks: ["one ", "two ", "three "], breakAfterChunks: 2 })
    const iterable = await connect(chain).completions.create(ask)
    const seen: Array<string> = []
    try {
      for await (const chunk of iterable) seen.push(chunk.choices[0]?.delta.content ?? "")
      assert.fail("expected the stream to throw")
    } catch (error) {
      const e = error as { _tag?: string; delivered?: string; model?: string; error?: { reason: string } }
      assert.strictEqual(e._tag, "StreamInterrupted")
      assert.strictEqual(e.delivered, "one two ")
      assert.strictEqual(e.model, GPT)
      assert.strictEqual(e.error?.reason, "Transport")
    }
    assert.strictEqual(seen.join(""), "one two ")
    assert.strictEqual(sim.requests.length, 1)
  })

  it("every model failing before content rejects the promise with AllModelsFailed", async () => {
    sim.script("gpt-4o", { status: 401 })
    sim.script("claude-3-5-haiku-20241022", { status: 400 })
    try {
      await connect(chain).completions.create(ask)
      assert.fail("expected a rejection")
    } catch (error) {
      assert.strictEqual((error as { _tag?: string })._tag, "AllModelsFailed")
    }
  })

  it("break in for-await closes the HTTP request", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c ", "d "], stallAfterChunks: 3 })
    const iterable = await connect(chain).completions.create(ask)
    let count = 0
    for await (const chunk of iterable) {
      if (chunk.choices[0]?.delta.content) count++
      if (count === 2) break
    }
    await sim.waitForClientClose(1)
    assert.strictEqual(sim.openRequests(), 0)
  })

  it("an abort mid-stream throws AbortError from the iterator and closes the HTTP request", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b ", "c "], stallAfterChunks: 2 })
    const controller = new AbortController()
    const iterable = await connect(chain).completions.create(ask, { signal: controller.signal })
    const iterator = iterable[Symbol.asyncIterator]()
    await iterator.next()
    controller.abort()
    try {
      for (;;) {
        const { done } = await iterator.next()
        if (done) assert.fail("expected an AbortError")
      }
    } catch (error) {
      assert.strictEqual((error as Error).name, "AbortError")
    }
    await sim.waitForClientClose(1)
    assert.strictEqual(sim.openRequests(), 0)
  })

  it("a stalled stream after its first content times out after the model's timeout", async () => {
    sim.script("gpt-4o", { chunks: ["a ", "b "], stallAfterChunks: 1 })
    const iterable = await connect({ failover_chain: [{ model: GPT, timeout: 0.3 }] }).completions.create(ask)
    const started = Date.now()
    try {
      await drain(iterable)
      assert.fail("expected the stream to throw")
    } catch (error) {
      const e = error as { _tag?: string; error?: { reason: string }; delivered?: string }
      assert.strictEqual(e._tag, "StreamInterrupted")
      assert.strictEqual(e.error?.reason, "Timeout")
      assert.strictEqual(e.delivered, "a ")
    }
    assert.isBelow(Date.now() - started, 1500)
    await sim.waitForClientClose(1)
  })
})
