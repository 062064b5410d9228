/**
 * Hedging over HTTP (DESIGN §9): the hedge's answer wins and the losing
 * request's socket is closed, streamed or not.
 */
import { afterAll, assert, beforeAll, beforeEach, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

let sim: Simulator.Simulator
let client: IronlabsAI
beforeAll(async () => {
  sim = await Simulator.start()
  client = new IronlabsAI({
    reliability: { failover_chain: [{ model: GPT, timeout: 30 }, { model: HAIKU }], hedge: { delay: 0.3, budget: 1 } },
    openai: { apiKey: "sk-test", baseURL: sim.openaiBaseUrl },
    anthropic: { apiKey: "sk-test", baseURL: sim.anthropicBaseUrl }
  })
})
afterAll(async () => {
  await client.close()
  await sim.close()
})
beforeEach(() => sim.reset())

describe("hedging over HTTP", () => {
  it("a slow primary is hedged after 300 ms; the hedge answers and the primary's request is closed", async () => {
    sim.script("gpt-4o", { latency: "10 seconds" })
    const started = Date.now()
    const answer = await client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
    assert.strictEqual(answer.model, HAIKU)
    assert.isBelow(Date.now() - started, 5000)
    assert.deepStrictEqual(
      answer.attempts.map((a) => [a.model, a.outcome]),
      [
        [HAIKU, "success"],
        [GPT, "cancelled"]
      ]
    )
    await sim.waitForClientClose(1)
    assert.isAtLeast(sim.requests[1]!.receivedAt - sim.requests[0]!.receivedAt, 250)
  })

  it("streamed: the first content wins, and the loser's stream is closed", async () => {
    sim.script("gpt-4o", { firstChunkDelay: "10 seconds" })
    let text = ""
    for await (const chunk of await client.completions.create({
      messages: [{ role: "user", content: "Hi" }],
      stream: true
    })) {
      assert.strictEqual(chunk.model, HAIKU)
      text += chunk.choices[0]?.delta.content ?? ""
    }
    assert.strictEqual(text, "Simulated answer from claude-3-5-haiku-20241022.")
    await sim.waitForClientClose(1)
  })
})
