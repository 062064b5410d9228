// Prints how long a cold import of the module named by argv[2] takes, in ms.
const start = performance.now()
await import(process.argv[2])
console.log((performance.now() - start).toFixed(1))
