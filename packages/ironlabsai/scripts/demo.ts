/**
 * `pnpm demo`: the seed's two examples, from the Promise facade and from the
 * Effect API, against the embedded loopback simulator (no keys, no network).
 * The simulator plays a bad day: gpt-4o answers 503 to the failover example's
 * first two calls, so the trace shows a retry and a failover.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Simulator } from "@ironlabsai/testing"
import { type Attempt, IronlabsAI, IronlabsClient } from "ironlabsai"
import { ConfigProvider, Duration, Effect, Layer } from "effect"

const GPT = "openai/gpt-4o"
const HAIKU = "anthropic/claude-3-5-haiku-20241022"

const sim = await Simulator.start()
const endpoints = {
  openai: { apiKey: "sk-demo", baseURL: sim.openaiBaseUrl },
  anthropic: { apiKey: "sk-demo", baseURL: sim.anthropicBaseUrl }
}

const trace = (attempts: ReadonlyArray<Attempt.Attempt>) =>
  attempts
    .map(
      (a) =>
        `${a.model} ${a.error ? `${a.error.reason}${a.error.status ? ` ${a.error.status}` : ""}` : "ok"} (${Duration.format(a.duration)})`
    )
    .join(" -> ")

// 1. Weighted, from the Promise facade.
console.log("Weighted (70% gpt-4o, 30% claude-3-5-haiku), Promise API")
const weighted = new IronlabsAI({
  ...endpoints,
  reliability: {
    weights: { [GPT]: 0.7, [HAIKU]: 0.3 },
    max_retries: { [GPT]: 2, [HAIKU]: 1 },
    timeout: { [GPT]: 5.0, [HAIKU]: 5.0 },
    backoff: { [GPT]: 2.0, [HAIKU]: 1.0 },
    model_messages: { [GPT]: [{ role: "user", content: "Please provide a concise response." }] }
  }
})
for (let i = 0; i < 3; i++) {
  const response = await weighted.completions.create({
    messages: [{ role: "user", content: "Write a haiku about the ocean." }]
  })
  console.log(`  ${response.choices[0]?.message.content} Model used: ${response.model}`)
}
await weighted.close()

// 2. Failover chain, from the Promise facade; gpt-4o is overloaded twice.
console.log("\nFailover chain (gpt-4o, then claude-3-5-haiku), Promise API; gpt-4o answers 503 twice")
sim.script("gpt-4o", { status: 503, latency: "20 millis" }, { status: 503, latency: "20 millis" })
const chain = new IronlabsAI({
  ...endpoints,
  reliability: {
    failover_chain: [
      { model: GPT, max_retries: 1, timeout: 5.0, backoff: 0.2 },
      { model: HAIKU, max_retries: 1, timeout: 5.0, backoff: 1.0 }
    ]
  }
})
const failedOver = await chain.completions.create({ messages: [{ role: "user", content: "Describe a sunset." }] })
console.log(`  ${failedOver.choices[0]?.message.content} Model used: ${failedOver.model}`)
console.log(`  Attempts: ${trace(failedOver.attempts)}`)
await chain.close()

// 3. The same chain from the Effect API: IronlabsClient.layer reads keys and base URLs from Config.
console.log("\nFailover chain, Effect API")
const program = Effect.gen(function* () {
  const client = yield* IronlabsClient
  const response = yield* client.completions.create({ messages: [{ role: "user", content: "Describe a sunset." }] })
  console.log(`  ${response.choices[0]?.message.content} Model used: ${response.model}`)
})
const env = ConfigProvider.fromMap(
  new Map([
    ["OPENAI_API_KEY", "sk-demo"],
    ["OPENAI_BASE_URL", sim.openaiBaseUrl],
    ["ANTHROPIC_API_KEY", "sk-demo"],
    ["ANTHROPIC_BASE_URL", sim.anthropicBaseUrl]
  ])
)
await Effect.runPromise(
  program.pipe(
    Effect.provide(
      IronlabsClient.layer({ reliability: { failover_chain: [{ model: GPT }, { model: HAIKU }] } }).pipe(
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(Layer.setConfigProvider(env))
      )
    )
  )
)

console.log(`\nThe simulator received ${sim.requests.length} requests.`)
await sim.close()
