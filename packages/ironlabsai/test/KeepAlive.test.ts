/**
 * Keep-alive is not progress (DESIGN §6), over HTTP on both wires: pings,
 * comments and chunks that carry nothing never reset the wait for the first
 * content or the idle timeout between chunks.
 */
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start()
})
afterAll(() => sim.close())
beforeEach(() => sim.reset())

const clients: Array<IronlabsAI> = []
afterAll(() => Promise.all(clients.map((c) => c.close())))

const wires = [
  { model: "openai/gpt-4o", wireModel: "gpt-4o" },
  { model: "anthropic/claude-3-5-haiku-20241022", wireModel: "claude-3-5-haiku-20241022" }
] as const

/** Streams the answer; resolves to how it ended and when (millis after the start). */
const streamed = async (model: string) => {
  const client = new IronlabsAI({
    reliability: { failover_chain: [{ model, timeout: 1, max_retries: 0 }] },
    openai: { apiKey: "sk-test", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-test", baseURL: sim.anthropicBaseUrl }
  })
  clients.push(client)
  const started = Date.now()
  let text = ""
  try {
    for await (const chunk of await client.completions.create({
      messages: [{ role: "user", content: "Hi" }],
      stream: true
    })) {
      text += chunk.choices[0]?.delta.content ?? ""
    }
    return { text, error: undefined, after: Date.now() - started }
  } catch (error) {
    return { text, error: error as Error & Record<string, unknown>, after: Date.now() - started }
  }
}

const reasonOf = (error: (Error & Record<string, unknown>) | undefined) => {
  const attempts = (error?.["attempts"] ?? []) as ReadonlyArray<{ readonly error?: { readonly reason?: string } }>
  return [error?.["_tag"], attempts[0]?.error?.reason]
}

describe.each(wires)("keep-alive on $wireModel", ({ model, wireModel }) => {
  it("pings every 200 ms for ever: the wait for the first content still ends at the timeout", async () => {
    sim.script(wireModel, { pingOnly: "200 millis" })
    const { error, after } = await streamed(model)
    assert.deepStrictEqual(reasonOf(error), ["AllModelsFailed", "Timeout"])
    assert.isAtLeast(after, 950)
    assert.isBelow(after, 5000)
  })

  it("empty deltas every 200 ms before the content: not progress, Timeout at 1 s", async () => {
    // 15 empty deltas over 3 s, then the answer: it never comes within the timeout.
    sim.script(wireModel, { chunks: [...Array.from({ length: 15 }, () => ""), "late"], chunkInterval: "200 millis" })
    const { error, text, after } = await streamed(model)
    assert.deepStrictEqual(reasonOf(error), ["AllModelsFailed", "Timeout"])
    assert.strictEqual(text, "")
    assert.isBelow(after, 2500)
    await sim.waitForClientClose(1)
  })

  it("empty deltas every 200 ms after the content: the idle timeout still ends the stream", async () => {
    sim.script(wireModel, {
      chunks: ["Hi", ...Array.from({ length: 15 }, () => ""), "late"],
      chunkInterval: "200 millis"
    })
    const { error, text, after } = await streamed(model)
    assert.deepStrictEqual(error?.["_tag"], "StreamInterrupted")
    assert.strictEqual(text, "Hi")
    assert.isBelow(after, 2500)
  })
})
