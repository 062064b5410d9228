// CommonJS in TypeScript: `import` compiles to require("ironlabsai"), which TypeScript
// allows under "module": "nodenext" (require of ESM, Node 20.19 or later); "node16" cannot express it.
import { IronlabsAI } from "ironlabsai"

export const client: IronlabsAI = new IronlabsAI({
  reliability: { weights: { "openai/gpt-4o": 1 } },
  openai: { apiKey: "sk-package-test" }
})
