import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit } from "effect"
import * as Demo from "../src/Demo.js"

describe("Demo", () => {
  it("prints, for both seed configs, numbers that add up, in 80 columns", async () => {
    const lines: Array<string> = []
    await Effect.runPromise(Demo.run({ requests: 40, write: (text) => lines.push(...text.split("\n")) }))
    for (const line of lines) assert.isAtMost([...line].length, 80, line)
    const titles = lines.filter((l) => l.startsWith("Weighted") || l.startsWith("Failover chain"))
    assert.deepStrictEqual(titles, [Demo.scenarios[0]!.title, Demo.scenarios[1]!.title])
    // Per scenario, answers by model add up to the requests answered.
    const rows = lines.filter((l) => /^ {2}(gpt-4o|claude-3-5-haiku) +\d+ /.test(l))
    assert.strictEqual(rows.length, 4)
    const answers = rows.map((l) => Number(l.trim().split(/\s+/)[1]))
    const summaries = lines.filter((l) => l.includes("with the load balancer") && l.includes("answered"))
    assert.strictEqual(summaries.length, 2)
    summaries.forEach((summary, i) => {
      const answeredPct = Number(/(\d+(\.\d+)?)% answered/.exec(summary)![1])
      assert.closeTo(((answers[2 * i]! + answers[2 * i + 1]!) / 40) * 100, answeredPct, 0.05)
    })
    assert.strictEqual(lines.filter((l) => l.includes("gpt-4o alone, no retry") && l.includes("answered")).length, 2)
    // The streamed answer came from claude, after gpt-4o's 429 failed over at once.
    assert.include(lines, "  Salt wind on the glass, / the tide keeps its own time.")
    assert.include(lines, "  Model used: anthropic/claude-3-5-haiku-20241022")
  }, 60_000)
})

describe("Demo --live", () => {
  it("without both keys it fails at once with a message naming them, sending nothing", async () => {
    const lines: Array<string> = []
    const exit = await Effect.runPromiseExit(
      Demo.run({ live: true, write: (text) => lines.push(text) }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_API_KEY", "sk-live-test"]])))
      )
    )
    assert.isTrue(Exit.isFailure(exit))
    if (Exit.isFailure(exit)) {
      assert.include(Cause.pretty(exit.cause), "--live needs OPENAI_API_KEY and ANTHROPIC_API_KEY")
    }
    assert.deepStrictEqual(lines, [])
  })
})
