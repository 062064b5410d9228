// ESM: the facade and the core package load from the installed tarballs.
import * as Core from "@ironlabsai/core"
import { IronlabsAI, IronlabsClient, Reliability } from "ironlabsai"

const client = new IronlabsAI({
  reliability: { weights: { "openai/gpt-4o": 1 } },
  openai: { apiKey: "sk-package-test" }
})
if (typeof IronlabsClient.layer !== "function") throw new Error("IronlabsClient.layer is not a function")
if (Reliability !== Core.Reliability) throw new Error("ironlabsai and @ironlabsai/core see different copies of core")
await client.close()
console.log("ok: ESM import of ironlabsai and @ironlabsai/core")
