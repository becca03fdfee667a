'use strict'
// Model services from JavaScript: deploy, list, retrieve, scale, delete, and a shared registry.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { spec, messages } = require('./helpers')

test('deploy, list, retrieve, scale and delete a service', async () => {
  const openai = new OpenAI()
  const name = 'u-8105f7322477/test'
  const loads = OpenAI.modelLoads()

  const info = await openai.services.deploy(spec(name, { slots: 2, queueSize: 8, threads: 1 }))
  assert.equal(info.name, 'test')
  assert.equal(info.access_name, name)
  assert.match(info.id, /\S/)
  assert.equal(info.status, 'running')
  assert.equal(info.instances, 1)
  assert.equal(info.slots_per_instance, 2)
  assert.equal(info.context_length, 1024)
  assert.equal(info.queue_size, 8)
  assert.equal(info.threads_per_instance, 1)
  assert.equal(info.base_model.architecture, 'llama')
  assert.equal(info.base_model.quantization, 'Q4_1')
  assert.equal(info.base_model.has_chat_template, true)
  assert.equal(OpenAI.modelLoads(), loads + 1)

  const services = await openai.services.list()
  assert.equal(services.object, 'list')
  assert.deepEqual(services.data.map((s) => s.access_name), [name])
  const listed = []
  for await (const service of openai.services.list()) listed.push(service.access_name)
  assert.deepEqual(listed, [name])
  assert.deepEqual((await openai.services.retrieve(name)).id, info.id)
  const models = await openai.models.list()
  assert.equal(models.object, 'list')
  assert.deepEqual(models.data.map((m) => m.id), [name])
  const ids = []
  for await (const model of openai.models.list()) ids.push(model.id)
  assert.deepEqual(ids, [name])
  assert.equal((await openai.models.retrieve(name)).owned_by, 'modelservice')

  // Scaling adds instances on the loaded weights: no second load, and requests still run.
  const scaled = await openai.services.scale(name, 2)
  assert.equal(scaled.instances, 2)
  assert.equal(scaled.id, info.id)
  assert.equal(OpenAI.modelLoads(), loads + 1)
  const answers = await Promise.all(
    [1, 2, 3].map(() => openai.chat.completions.create({ model: name, messages, max_tokens: 4 })),
  )
  for (const a of answers) assert.ok(a.choices[0].message.content.length > 0)
  assert.equal((await openai.services.scale(name, { instances: 1 })).instances, 1)

  // Deleting asks for the display name.
  await assert.rejects(openai.services.delete(name, 'wrong'), (e) => e instanceof OpenAI.BadRequestError && e.param === 'confirm')
  const deleted = await openai.services.delete(name, { confirm: 'test' })
  assert.equal(deleted.id, info.id)
  assert.deepEqual((await openai.services.list()).data, [])
  await assert.rejects(
    openai.chat.completions.create({ model: name, messages }),
    (e) => e instanceof OpenAI.NotFoundError,
  )
})

test('clients share a registry', async () => {
  const first = new OpenAI({ services: [spec('u-test/shared')] })
  const second = new OpenAI({ registry: first })
  const third = new OpenAI({ registry: first.registry, apiKey: 'k', baseURL: 'http://unused' })
  assert.equal(third.apiKey, 'k')
  assert.equal(third.baseURL, 'http://unused')
  await first.ready()
  const r = await second.chat.completions.create({ model: 'u-test/shared', messages, max_tokens: 4 })
  assert.equal(r.model, 'u-test/shared')
  assert.deepEqual((await third.services.list()).data.map((s) => s.access_name), ['u-test/shared'])
  // A separate registry does not see it.
  assert.deepEqual((await new OpenAI().services.list()).data, [])
  await third.services.delete('u-test/shared', 'shared')
  assert.deepEqual((await first.services.list()).data, [])
  assert.ok(new OpenAI.Registry() instanceof OpenAI.Registry)
  assert.throws(() => new OpenAI({ registry: {} }), OpenAI.OpenAIError)
})

test('metrics count requests, tokens and first tokens', async () => {
  const openai = new OpenAI({ services: [spec('u-test/metrics', { threads: 1 })] })
  await openai.ready()
  let promptTokens = 0
  let completionTokens = 0
  for (const n of [1, 2]) {
    const r = await openai.chat.completions.create({ model: 'u-test/metrics', messages, max_tokens: 5, n })
    promptTokens += r.usage.prompt_tokens
    completionTokens += r.usage.completion_tokens
  }
  const text = await openai.completions.create({ model: 'u-test/metrics', prompt: ['One, two,', 'A, B,'], max_tokens: 3 })
  promptTokens += text.usage.prompt_tokens
  completionTokens += text.usage.completion_tokens
  // Too long for the context: refused by the service, and counted there as a 400.
  await assert.rejects(
    openai.chat.completions.create({ model: 'u-test/metrics', messages, max_tokens: 5000 }),
    (e) => e instanceof OpenAI.BadRequestError,
  )

  const metrics = await openai.services.metrics('u-test/metrics')
  assert.equal(metrics.object, 'list')
  assert.equal(metrics.data.length, 1)
  const m = metrics.data[0]
  assert.equal(m.access_name, 'u-test/metrics')
  assert.deepEqual(m.requests, { 200: 3, 400: 1 })
  assert.equal(m.prompt_tokens, promptTokens)
  assert.equal(m.completion_tokens, completionTokens)
  assert.equal(m.time_to_first_token.count, 3)
  assert.equal(m.time_to_first_token.counts.reduce((a, b) => a + b, 0), 3)
  assert.equal(m.latency.count, 3)
  assert.equal(m.queue_depth, 0)
  assert.deepEqual((await openai.services.metrics()).data, metrics.data)
  await assert.rejects(openai.services.metrics('u-test/none'), (e) => e instanceof OpenAI.NotFoundError)
  await openai.services.delete('u-test/metrics', 'metrics')
})
