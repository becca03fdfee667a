// Single-stream decode beside node-llama-cpp: our Node client (bindings-node) and node-llama-cpp
// each run in a child process of their own with the same model, threads, context and prompt, and
// answer 128 tokens greedily, end tokens banned; the parent alternates the two answer by answer,
// timing each by wall clock (first text, end), so both sides see the same minutes of machine load.
//
// node benches/peers/single-stream.mjs   (run by `make bench-peers`)
// Environment: PEERS_MODEL (GGUF path), PEERS_THREADS (2), PEERS_TOKENS (128), PEERS_RUNS (6),
// PEERS_NODE_DIR (the folder whose node_modules holds node-llama-cpp).
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..')
const threads = Number(process.env.PEERS_THREADS ?? 2)
const tokens = Number(process.env.PEERS_TOKENS ?? 128)
const runs = Number(process.env.PEERS_RUNS ?? 6)
const model = process.env.PEERS_MODEL
const contextSize = 1024
const system = 'You are a helpful assistant.'
// SmolLM2's end-of-text and end-of-turn tokens: banned, so every answer runs to `tokens`.
const END_TOKENS = [0, 2]
// A fresh user message for every answer, so neither side answers from a cached prompt.
const question = (i) => `Story ${i}: tell me a long story about a lighthouse keeper and a storm.`

/** Our Node client: one service, one slot. Returns an `answer(i)` that resolves to its timing. */
async function ours() {
  const OpenAI = createRequire(import.meta.url)(join(root, 'bindings-node'))
  const accessName = 'u-peers/single'
  const openai = new OpenAI({
    services: [{ name: 'single', accessName, model, threads, slots: 1, contextLength: contextSize }],
  })
  await openai.ready()
  return async (i) => {
    const start = performance.now()
    let first
    let count = 0
    const stream = await openai.chat.completions.create({
      model: accessName,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: question(i) },
      ],
      temperature: 0,
      max_tokens: tokens,
      logit_bias: Object.fromEntries(END_TOKENS.map((t) => [t, -100])),
      stream: true,
      stream_options: { include_usage: true },
    })
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) first ??= performance.now()
      if (chunk.usage) count = chunk.usage.completion_tokens
    }
    return { first: first - start, total: performance.now() - start, tokens: count }
  }
}

/** node-llama-cpp from its npm package (prebuilt CPU variants, picked at run time). */
async function nodeLlamaCpp() {
  const dir = process.env.PEERS_NODE_DIR ?? join(root, 'target', 'peers', 'node')
  const nlc = await import(createRequire(join(dir, 'package.json')).resolve('node-llama-cpp'))
  const llama = await nlc.getLlama({ gpu: false, build: 'never' })
  const loaded = await llama.loadModel({ modelPath: model })
  const context = await loaded.createContext({ contextSize, threads, sequences: 1 })
  const sequence = context.getSequence()
  const bias = new nlc.TokenBias(loaded.tokenizer)
  for (const t of END_TOKENS) bias.set(t, 'never')
  return async (i) => {
    // A new session per answer (history cleared); the sequence keeps what a later prompt can reuse.
    const session = new nlc.LlamaChatSession({ contextSequence: sequence, systemPrompt: system, autoDisposeSequence: false })
    const start = performance.now()
    let first
    let count = 0
    await session.prompt(question(i), {
      maxTokens: tokens,
      temperature: 0,
      tokenBias: bias,
      onToken: (t) => {
        first ??= performance.now()
        count += t.length
      },
    })
    const total = performance.now() - start
    session.dispose({ disposeSequence: false })
    return { first: first - start, total, tokens: count }
  }
}

/** Child: load one side, then answer each line `i` on stdin with one JSON timing line. */
async function child(side) {
  const answer = side === 'ours' ? await ours() : await nodeLlamaCpp()
  await answer(-1) // warm-up, as a server's first request would be
  process.stdout.write('ready\n')
  for await (const line of createInterface({ input: process.stdin })) {
    process.stdout.write(`${JSON.stringify(await answer(Number(line)))}\n`)
  }
}

function startChild(side) {
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), side], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]()
  const next = async () => {
    const { value, done } = await lines.next()
    if (done) throw new Error(`${side} exited before answering`)
    return value
  }
  return {
    proc,
    ready: next(),
    async answer(i) {
      proc.stdin.write(`${i}\n`)
      return JSON.parse(await next())
    },
  }
}

/** Mean of per-answer ratios with its 95% confidence interval (Student's t), where `target` falls. */
function interval(ratios, target, higherIsBetter) {
  const n = ratios.length
  const m = ratios.reduce((a, b) => a + b, 0) / n
  if (n < 2) return `mean ${m.toFixed(2)} (one answer: no interval)`
  const sd = Math.sqrt(ratios.reduce((a, r) => a + (r - m) ** 2, 0) / (n - 1))
  // Two-sided 95% quantiles of Student's t for 1..=10 degrees of freedom, then ~1.96 + 2.4/df.
  const T95 = [12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23]
  const t = T95[n - 2] ?? 1.96 + 2.4 / (n - 1)
  const [lo, hi] = [m - (t * sd) / Math.sqrt(n), m + (t * sd) / Math.sqrt(n)]
  const met = higherIsBetter ? lo >= target : hi <= target
  const missed = higherIsBetter ? hi < target : lo > target
  const verdict = met ? 'meets' : missed ? 'misses' : 'cannot tell'
  return `mean ${m.toFixed(2)}, 95% interval ${lo.toFixed(2)}-${hi.toFixed(2)}: ${verdict} the target ${higherIsBetter ? '>=' : '<='} ${target}`
}

const fmt = (xs, digits) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  return { mean, text: `${mean.toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})` }
}

async function parent() {
  if (!model) throw new Error('PEERS_MODEL must name the GGUF file')
  const sides = { ours: startChild('ours'), 'node-llama-cpp': startChild('node-llama-cpp') }
  for (const s of Object.values(sides)) await s.ready
  const results = { ours: [], 'node-llama-cpp': [] }
  const load = [loadavg()[0]]
  for (let i = 0; i < runs; i++) {
    // Alternate who goes first, so neither always follows the other's spin-down.
    const order = i % 2 === 0 ? ['ours', 'node-llama-cpp'] : ['node-llama-cpp', 'ours']
    for (const side of order) {
      const r = await sides[side].answer(i)
      results[side].push(r)
      console.error(`  ${side}: first ${r.first.toFixed(0)} ms, ${r.tokens} tokens in ${(r.total / 1000).toFixed(2)} s`)
    }
  }
  load.push(loadavg()[0])
  for (const s of Object.values(sides)) s.proc.stdin.end()
  const figures = {}
  for (const [side, rs] of Object.entries(results)) {
    for (const r of rs) {
      if (r.tokens !== tokens) throw new Error(`${side} answered ${r.tokens} tokens, not ${tokens}`)
    }
    figures[side] = {
      decode: fmt(rs.map((r) => (r.tokens - 1) / ((r.total - r.first) / 1000)), 1),
      first: fmt(rs.map((r) => r.first), 0),
      total: fmt(rs.map((r) => r.total / 1000), 2),
    }
  }
  const [a, b] = [figures.ours, figures['node-llama-cpp']]
  console.log(`single stream: SmolLM2 Q4_1, ${threads} threads, ${tokens} tokens, ${runs} answers each, alternating; load ${load.map((l) => l.toFixed(1)).join(' -> ')}`)
  console.log('figure                         modelservice (node)      node-llama-cpp           ours/peer')
  for (const [name, key] of [['decode tokens/s (mean, range)', 'decode'], ['first token ms', 'first'], ['answer s', 'total']]) {
    console.log(`${name.padEnd(31)}${a[key].text.padEnd(25)}${b[key].text.padEnd(25)}${(a[key].mean / b[key].mean).toFixed(2)}`)
  }
  // Answers alternate, so answer i of each side shares its minutes: ratio them pair by pair.
  const pairs = (f) => results.ours.map((r, i) => f(r) / f(results['node-llama-cpp'][i]))
  const decodeRate = (r) => (r.tokens - 1) / (r.total - r.first)
  console.log(`  decode, answer by answer: ${interval(pairs(decodeRate), 1, true)}`)
  console.log(`  first token, answer by answer: ${interval(pairs((r) => r.first), 1, false)}`)
}

if (process.argv[2]) await child(process.argv[2])
else await parent()
