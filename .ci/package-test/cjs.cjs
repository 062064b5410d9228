// CommonJS: require("ironlabsai") (require(esm), Node 20.19 or later); every subpath
// of the packages named in argv, by require and by import; and the Effect API from
// CommonJS, where require("effect") is effect's CommonJS build while ironlabsai
// runs on its ESM build, through one call against the simulator.
const { Effect, Layer } = require("effect")
const { IronlabsAI, IronlabsClient, UndiciHttpClient } = require("ironlabsai")
const { Simulator } = require("@ironlabsai/testing")

const client = new IronlabsAI({
  reliability: { weights: { "openai/gpt-4o": 1 } },
  openai: { apiKey: "sk-package-test" }
})

/** Subpaths that need an optional peer this install does not have (`ironlabsai/OpenTelemetry`): listed, not loaded. */
const skipped = []

const exportPaths = async (names) => {
  let count = 0
  for (const name of names) {
    const { exports, peerDependenciesMeta = {} } = require(`${name}/package.json`)
    const optional = Object.keys(peerDependenciesMeta).filter((peer) => peerDependenciesMeta[peer]?.optional)
    for (const subpath of Object.keys(exports)) {
      if (subpath === "./package.json" || exports[subpath] === null) continue
      const specifier = subpath === "." ? name : `${name}/${subpath.slice(2)}`
      let required
      try {
        required = require(specifier)
      } catch (error) {
        const missingPeer =
          (error?.code === "MODULE_NOT_FOUND" || error?.code === "ERR_MODULE_NOT_FOUND") &&
          optional.some((peer) => String(error.message).includes(`'${peer}`))
        if (subpath === "." || !missingPeer) throw error
        skipped.push(specifier)
        continue
      }
      const imported = await import(specifier)
      if (Object.keys(required).length === 0) throw new Error(`require("${specifier}") has no exports`)
      if (Object.keys(imported).join() !== Object.keys(required).join()) {
        throw new Error(`require("${specifier}") and import("${specifier}") differ`)
      }
      count++
    }
  }
  return count
}

const effectApi = async () => {
  const sim = await Simulator.start()
  try {
    const Client = IronlabsClient.layer({
      reliability: { weights: { "openai/gpt-4o": 1 } },
      openai: { apiKey: "sk-test", baseURL: sim.openaiBaseUrl }
    }).pipe(Layer.provide(UndiciHttpClient.layer))
    const program = Effect.gen(function* () {
      const client = yield* IronlabsClient
      const response = yield* client.completions.create({ messages: [{ role: "user", content: "Hi" }] })
      return response.model
    })
    return await Effect.runPromise(Effect.provide(program, Client))
  } finally {
    await sim.close()
  }
}

const main = async () => {
  await client.close()
  const names = process.argv.slice(2)
  const count = await exportPaths(names)
  const model = await effectApi()
  if (model !== "openai/gpt-4o") throw new Error(`the Effect API from CommonJS answered with ${JSON.stringify(model)}`)
  console.log(`ok: CommonJS require("ironlabsai") and the facade`)
  console.log(`ok: ${count} export paths of ${names.length} packages, each by require and by import, the same exports`)
  if (skipped.length > 0) console.log(`ok: not loaded, their optional peers not installed: ${skipped.join(", ")}`)
  console.log(`ok: the Effect API from CommonJS (effect's CommonJS build beside ironlabsai's ESM) answered by ${model}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
