import { Bench } from "tinybench"

/** Percentiles and formatting for the benchmark's tables. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export const median = (values: ReadonlyArray<number>) => percentile(values, 50)

/**
 * Each round's rate against raw's rate in the same round: the median, and the
 * lowest and highest round, as text ("0.81x (0.74-0.86)").
 */
export const ratioToRaw = (rates: ReadonlyArray<number>, rawRates: ReadonlyArray<number>) => {
  const ratios = rates.map((rate, round) => rate / rawRates[round]!)
  const mid = median(ratios)
  const range = ratios.length > 1 ? ` (${fixed(Math.min(...ratios), 2)}-${fixed(Math.max(...ratios), 2)})` : ""
  return { median: mid, text: `${fixed(mid, 2)}x${range}` }
}

export const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-")

/**
 * Closed-loop load: `concurrency` calls of `task` in flight for `millis`, each
 * replaced as soon as it settles (tinybench's task concurrency). Returns the
 * throughput over the wall time from the first start to the last settle, and
 * every call's latency.
 */
export const load = async (
  task: () => Promise<unknown>,
  concurrency: number,
  millis: number
): Promise<{ readonly perSecond: number; readonly latencies: ReadonlyArray<number> }> => {
  const bench = new Bench({
    concurrency: "task",
    threshold: concurrency,
    time: millis,
    iterations: 0,
    warmup: false,
    retainSamples: true,
    throws: true
  })
  let settled = 0
  bench.add("load", async () => {
    await task()
    settled = performance.now()
  })
  const start = performance.now()
  await bench.run()
  const latencies = bench.tasks[0]?.result.state === "completed" ? (bench.tasks[0].result.latency.samples ?? []) : []
  return { perSecond: (latencies.length / (settled - start)) * 1000, latencies }
}
