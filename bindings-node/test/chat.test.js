'use strict'
// Chat completions on the real SmolLM2 model: whole and streamed answers, breaking out of a
// stream, AbortSignal, and concurrent requests that the engine batches while the event loop runs.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { spec, messages, NO_EOS } = require('./helpers')

const MODEL = 'u-test/chat'
let openai

before(async () => {
  openai = new OpenAI({ services: [spec(MODEL)] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(MODEL, 'chat')
})

test('a chat completion has the OpenAI shape', async () => {
  const r = await openai.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 24 })
  assert.equal(r.object, 'chat.completion')
  assert.match(r.id, /^chatcmpl-/)
  assert.equal(r.model, MODEL)
  assert.equal(r.choices.length, 1)
  assert.equal(r.choices[0].message.role, 'assistant')
  assert.ok(r.choices[0].message.content.length > 0)
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason))
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24)
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)
  // The service's first request: nothing of its prompt was cached.
  assert.deepEqual(r.usage.prompt_tokens_details, { cached_tokens: 0 })
})

test('joined stream chunks equal the whole answer at temperature 0', async () => {
  const body = { model: MODEL, messages, temperature: 0, max_tokens: 32 }
  const whole = await openai.chat.completions.create(body)
  const stream = await openai.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })
  assert.ok(stream instanceof OpenAI.Stream)
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk)
  assert.equal(chunks[0].choices[0].delta.role, 'assistant')
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk')
    assert.equal(c.id, chunks[0].id)
  }
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
  assert.equal(text, whole.choices[0].message.content)
  assert.ok(chunks.length > 3, 'streamed in pieces')
  const usage = chunks.at(-1)
  assert.deepEqual(usage.choices, [])
  // The stream repeats the whole request: its slot kept the prompt's logits, so all of the prompt
  // came from the cache.
  const { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total } = whole.usage
  assert.deepEqual(usage.usage, {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: total,
    prompt_tokens_details: { cached_tokens: prompt },
  })
  assert.equal(chunks.at(-2).choices[0].finish_reason, whole.choices[0].finish_reason)
})

test('prompt tokens taken from the cache are reported as cached_tokens', async () => {
  const system = { role: 'system', content: 'You answer questions about the sea in one sentence. '.repeat(6) }
  const ask = (question) =>
    openai.chat.completions.create({
      model: MODEL,
      messages: [system, { role: 'user', content: question }],
      temperature: 0,
      max_tokens: 2,
    })
  const first = await ask('What is a wave?')
  // The second question starts from the system prompt the first one left in the cache.
  const second = await ask('What is a tide?')
  const [before, cached] = [first, second].map((r) => r.usage.prompt_tokens_details.cached_tokens)
  const half = first.usage.prompt_tokens / 2
  assert.ok(before < half && half < cached && cached < second.usage.prompt_tokens, `${before}, then ${cached} cached`)
})

// Cancellation runs on a one-slot service with EOS banned and 400 tokens to go: a request
// queued behind the cancelled one can only run once its slot is free, and the service's
// token count then tells how far the cancelled one got (tokens are counted when a slot frees).
const ONE_SLOT = 'u-test/one-slot'
const LONG = { model: ONE_SLOT, messages, max_tokens: 400, logit_bias: NO_EOS, stream: true }

/** Runs `cancel` (which starts and cancels one LONG request); returns how many tokens it generated. */
async function tokensOfCancelled(cancel) {
  const before = (await openai.services.retrieve(ONE_SLOT)).usage.completion_tokens
  await cancel()
  const next = await openai.chat.completions.create({ model: ONE_SLOT, messages, max_tokens: 4 })
  assert.ok(next.choices[0].message.content.length > 0)
  const after = (await openai.services.retrieve(ONE_SLOT)).usage.completion_tokens
  return after - before - next.usage.completion_tokens
}

test('breaking out of a stream stops the generation', async () => {
  await openai.services.deploy(spec(ONE_SLOT, { slots: 1 }))
  let stream
  const generated = await tokensOfCancelled(async () => {
    stream = await openai.chat.completions.create(LONG)
    let n = 0
    for await (const chunk of stream) {
      if (chunk.choices[0].delta.content && ++n === 3) break
    }
  })
  assert.ok(generated >= 3 && generated < 100, `the request generated ${generated} tokens after the break`)
  // Still reachable, so it was the break, not the garbage collector, that stopped it.
  assert.ok(stream.controller)
})

test('an AbortSignal stops a stream with APIUserAbortError', async () => {
  const generated = await tokensOfCancelled(async () => {
    const controller = new AbortController()
    const stream = await openai.chat.completions.create(LONG, { signal: controller.signal })
    let n = 0
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) {
          if (chunk.choices[0].delta.content && ++n === 2) controller.abort()
        }
      })(),
      (e) => e instanceof OpenAI.APIUserAbortError && e instanceof OpenAI.APIError && e.code === 'cancelled',
    )
    assert.equal(n, 2)
  })
  assert.ok(generated >= 2 && generated < 100, `the request generated ${generated} tokens after the abort`)
})

test('an AbortSignal stops a non-streamed completion', async () => {
  const generated = await tokensOfCancelled(async () => {
    const steps = (await openai.services.retrieve(ONE_SLOT)).stats.decode_steps
    const controller = new AbortController()
    const pending = openai.chat.completions.create({ ...LONG, stream: false }, { signal: controller.signal })
    // Abort once the generation is under way.
    while ((await openai.services.retrieve(ONE_SLOT)).stats.decode_steps < steps + 3) {
      await new Promise((r) => setTimeout(r, 10))
    }
    controller.abort()
    await assert.rejects(pending, OpenAI.APIUserAbortError)
  })
  assert.ok(generated < 100, `the request generated ${generated} tokens after the abort`)
  // An already aborted signal never starts one.
  await assert.rejects(
    openai.chat.completions.create({ model: ONE_SLOT, messages }, { signal: AbortSignal.abort() }),
    OpenAI.APIUserAbortError,
  )
})

test("a stream's controller aborts it, as in the SDK", async () => {
  const generated = await tokensOfCancelled(async () => {
    const stream = await openai.chat.completions.create(LONG)
    const seen = []
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) {
          seen.push(chunk)
          stream.controller.abort()
        }
      })(),
      OpenAI.APIUserAbortError,
    )
    assert.equal(seen.length, 1)
  })
  assert.ok(generated < 100, `the request generated ${generated} tokens after the abort`)
  await openai.services.delete(ONE_SLOT, 'one-slot')
})

test('4 concurrent creates overlap, are batched, and the event loop keeps running', async () => {
  const name = 'u-test/concurrent'
  await openai.services.deploy(spec(name))
  try {
    let ticks = 0
    const timer = setInterval(() => ticks++, 5)
    const events = []
    const one = async (i) => {
      const stream = await openai.chat.completions.create({
        model: name,
        messages: [{ role: 'user', content: `Count from ${i} to ${i + 20}.` }],
        max_tokens: 24,
        logit_bias: NO_EOS,
        stream: true,
      })
      let first
      let text = ''
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content
        if (piece) {
          first ??= { i, ticks }
          text += piece
        }
      }
      events.push({ i, first, last: ticks })
      return text
    }
    const ticksAtStart = ticks
    const texts = await Promise.all([0, 1, 2, 3].map(one))
    clearInterval(timer)
    for (const t of texts) assert.ok(t.length > 0)
    // Overlap: every request had produced text before any of them finished.
    const lastStart = Math.max(...events.map((e) => e.first.ticks))
    const firstEnd = Math.min(...events.map((e) => e.last))
    assert.ok(lastStart <= firstEnd, `requests ran one after another: ${JSON.stringify(events)}`)
    // The timer kept firing during generation.
    assert.ok(ticks - ticksAtStart >= 5, `setInterval fired only ${ticks - ticksAtStart} times`)
    const info = await openai.services.retrieve(name)
    assert.ok(info.stats.peak_batch_sequences >= 2, `peak batch ${info.stats.peak_batch_sequences}`)
    assert.equal(info.usage.requests, 4)
    // And the same with whole completions.
    const whole = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        openai.chat.completions.create({
          model: name,
          messages: [{ role: 'user', content: `Count from ${i} to ${i + 20}.` }],
          max_tokens: 8,
        }),
      ),
    )
    for (const r of whole) assert.ok(r.choices[0].message.content.length > 0)
  } finally {
    await openai.services.delete(name, 'concurrent')
  }
})
