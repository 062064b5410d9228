/**
 * Soak: thousands of requests through the facade under a random mix of 5xx,
 * resets, 429 with retry-after and hangs, over three models; a quarter of them
 * streamed, and all sharing one AbortSignal. Every request settles exactly
 * once, no request is left open on the simulator, no listener is left on the
 * signal, and the heap returns to its baseline.
 */
import { getEventListeners } from "node:events"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const REQUESTS = 2000
const CONCURRENCY = 32

/** A seeded generator (mulberry32), so a failing soak can be replayed. */
const random = (() => {
  let seed = 20261124
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
})()

/** The bad day: about half the calls fail, in every way the catalogue knows. */
const badDay = (): Simulator.Reply => {
  const r = random()
  const latency = Math.floor(random() * 5)
  if (r < 0.5) return { latency }
  if (r < 0.62) return { status: 500, latency }
  if (r < 0.68) return { status: 503 }
  if (r < 0.76) return { reset: "before-headers" }
  if (r < 0.82) return { reset: "mid-body", content: "x".repeat(2000) }
  if (r < 0.97) return { status: 429, headers: { "retry-after-ms": String(5 + Math.floor(random() * 20)) } }
  return { hang: true }
}

let sim: Simulator.Simulator
beforeAll(async () => {
  sim = await Simulator.start({ handler: badDay })
})
afterAll(() => sim.close())

/** Every fourth request is streamed and read to its end; every request carries the one `signal`. */
const settleAll = async (client: IronlabsAI, count: number, signal: AbortSignal) => {
  const outcomes = {
    answered: 0,
    allFailed: 0,
    unavailable: 0,
    interrupted: 0,
    other: [] as Array<unknown>,
    settledTwice: 0
  }
  const messages = [{ role: "user", content: "Soak" }] as const
  let next = 0
  const worker = async () => {
    while (next < count) {
      const streamed = next++ % 4 === 3
      let settled = 0
      try {
        if (streamed) {
          for await (const _ of await client.completions.create({ messages, stream: true }, { signal })) {
            // read to the end
          }
        } else {
          await client.completions.create({ messages }, { signal })
        }
        settled++
        outcomes.answered++
      } catch (error) {
        settled++
        const tag = (error as { _tag?: string })._tag
        if (tag === "AllModelsFailed") outcomes.allFailed++
        else if (tag === "NoModelAvailable") outcomes.unavailable++
        // A stream reset after its first content: not retried, by design.
        else if (tag === "StreamInterrupted" && streamed) outcomes.interrupted++
        else outcomes.other.push(error)
      }
      if (settled !== 1) outcomes.settledTwice++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return outcomes
}

const waitUntil = async (condition: () => boolean, timeoutMs: number) => {
  const end = Date.now() + timeoutMs
  while (!condition() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10))
  return condition()
}

describe("Soak", () => {
  it(`${REQUESTS} requests on a bad day: each settles once, nothing left open, heap back to baseline`, async () => {
    const client = new IronlabsAI({
      reliability: {
        weights: { "openai/gpt-4o": 0.5, "openai/gpt-4o-mini": 0.3, "anthropic/claude-3-5-haiku-20241022": 0.2 },
        max_retries: { "openai/gpt-4o": 2, "openai/gpt-4o-mini": 2, "anthropic/claude-3-5-haiku-20241022": 2 },
        timeout: { "openai/gpt-4o": 0.5, "openai/gpt-4o-mini": 0.5, "anthropic/claude-3-5-haiku-20241022": 0.5 },
        backoff: { "openai/gpt-4o": 0.002, "openai/gpt-4o-mini": 0.002, "anthropic/claude-3-5-haiku-20241022": 0.002 },
        // Every model fails about a third of its calls, so every breaker trips again and again: with "probe",
        // a request that finds all three open calls them anyway, which runs the breakers, holds, probes and
        // forced calls through thousands of transitions.
        health: { on_all_unavailable: "probe" }
      },
      openai: { apiKey: "sk-soak", baseURL: sim.openaiBaseUrl },
      anthropic: { apiKey: "sk-soak", baseURL: sim.anthropicBaseUrl }
    })
    const { signal } = new AbortController()
    // Warm up (JIT, connection pool), then take the baseline.
    await settleAll(client, 200, signal)
    await waitUntil(() => sim.openRequests() === 0, 2000)
    gc()
    const baseline = process.memoryUsage().heapUsed

    const outcomes = await settleAll(client, REQUESTS, signal)
    assert.deepStrictEqual(outcomes.other, [])
    assert.strictEqual(outcomes.settledTwice, 0)
    assert.strictEqual(outcomes.answered + outcomes.allFailed + outcomes.unavailable + outcomes.interrupted, REQUESTS)
    assert.lengthOf(getEventListeners(signal, "abort"), 0)
    // With three models and three attempts each, most requests find an answer. Fewer than without model
    // memory (over 90%): the retry budget allows retries for 20% of requests when every model fails a third
    // of its calls, and a retry stops when another request opened the model meanwhile.
    assert.isAbove(outcomes.answered, REQUESTS * 0.7)
    // Every fault kind happened, so the soak exercised what it claims to.
    const outcomesSeen = new Set(sim.requests.map((r) => r.outcome))
    for (const kind of ["answered", "client-closed", "reset"])
      assert.isTrue(outcomesSeen.has(kind as Simulator.Outcome), kind)

    assert.isTrue(await waitUntil(() => sim.openRequests() === 0, 2000), `${sim.openRequests()} requests left open`)
    sim.reset()
    gc()
    const growth = process.memoryUsage().heapUsed - baseline
    assert.isBelow(growth, 8 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MiB`)
    await client.close()
  }, 60_000)
})
