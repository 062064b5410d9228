// One facade call against the loopback simulator, which checks the key.
import { Simulator } from "@ironlabsai/testing"
import { IronlabsAI } from "ironlabsai"

const sim = await Simulator.start({ openaiApiKey: "sk-test" })
try {
  const client = new IronlabsAI({
    reliability: { weights: { "openai/gpt-4o": 1 } },
    openai: { apiKey: "sk-test", baseURL: sim.openaiBaseUrl }
  })
  const response = await client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
  await client.close()
  if (response.model !== "openai/gpt-4o")
    throw new Error(`expected model "openai/gpt-4o", got ${JSON.stringify(response.model)}`)
  if (sim.requests.length !== 1) throw new Error(`expected 1 request at the simulator, got ${sim.requests.length}`)
  console.log(`ok: a facade call through the simulator answered by ${response.model}`)
} finally {
  await sim.close()
}
