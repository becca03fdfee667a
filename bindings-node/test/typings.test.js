'use strict'
// index.d.ts and the wire.d.ts it names its types from against the running code: the TypeScript
// usage file compiles and runs, every declared request and spec field is one the engine
// parses, and live response objects have exactly the declared fields.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const fs = require('node:fs')
const ts = require('typescript')
const OpenAI = require('modelservice')
const { packageDir, smollm2, spec, messages } = require('./helpers')

/** The interfaces of index.d.ts and wire.d.ts: name -> member name -> { optional, type }. */
function declaredInterfaces(interfaces, name) {
  const file = path.join(packageDir, name)
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const visit = (node) => {
    if (ts.isInterfaceDeclaration(node)) {
      const members = new Map()
      for (const m of node.members) {
        if (ts.isPropertySignature(m)) {
          members.set(m.name.getText(source), { optional: Boolean(m.questionToken), type: m.type.getText(source) })
        }
      }
      interfaces.set(node.name.text, members)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return interfaces
}

const interfaces = new Map()
declaredInterfaces(interfaces, 'wire.d.ts')
declaredInterfaces(interfaces, 'index.d.ts')

/** Asserts `value` has exactly the fields of interface `name` (recursing into declared interfaces). */
function conforms(value, name, at = name) {
  const members = interfaces.get(name)
  assert.ok(members, `index.d.ts or wire.d.ts declares ${name}`)
  for (const key of Object.keys(value)) assert.ok(members.has(key), `${at}.${key} is not declared in ${name}`)
  for (const [key, { optional, type }] of members) {
    if (!optional) assert.ok(key in value, `${at}.${key} (declared in ${name}) is missing`)
    if (value[key] === undefined || value[key] === null) continue
    const nested = /^(\w+)(\[\])?(?: \| null)?$/.exec(type)
    if (nested && interfaces.has(nested[1])) {
      if (nested[2]) value[key].forEach((item, i) => conforms(item, nested[1], `${at}.${key}[${i}]`))
      else conforms(value[key], nested[1], `${at}.${key}`)
    }
  }
}

const MODEL = 'u-test/typings'
let openai

before(async () => {
  openai = new OpenAI({ services: [spec(MODEL)] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(MODEL, 'typings')
})

test('the TypeScript usage file compiles against index.d.ts and runs; index.js checks against native.d.ts', () => {
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(packageDir, 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(compiled.status, 0, compiled.stdout + compiled.stderr)
  // And index.js calls the addon as native.d.ts (generated from src/) declares it.
  const js = spawnSync(process.execPath, [tsc, '-p', path.join(packageDir, 'tsconfig.js.json')], { encoding: 'utf8' })
  assert.equal(js.status, 0, js.stdout + js.stderr)
  const run = spawnSync(process.execPath, [path.join(packageDir, 'build', 'test', 'usage.js'), smollm2()], {
    encoding: 'utf8',
  })
  assert.equal(run.status, 0, run.stderr)
  const out = JSON.parse(run.stdout)
  assert.equal(out.status, 'running')
  assert.ok(out.content.length > 0)
  assert.equal(out.streamed, out.content)
  assert.deepEqual(out.models, ['u-ts/usage'])
  assert.equal(out.services, 2)
  assert.equal(out.instances, 2)
  assert.equal(out.caught, 404)
  assert.equal(out.deleted, 'u-ts/usage')
})

test('response objects have exactly the declared fields', async () => {
  const completion = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 4 })
  conforms(completion, 'ChatCompletion')
  const stream = await openai.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 4,
    stream: true,
    stream_options: { include_usage: true },
  })
  let chunks = 0
  for await (const chunk of stream) {
    conforms(chunk, 'ChatCompletionChunk', `chunk ${chunks++}`)
  }
  assert.ok(chunks >= 3)
  const page = await openai.models.list()
  conforms(page, 'Page')
  conforms(page.data[0], 'Model')
  conforms(await openai.services.retrieve(MODEL), 'ServiceInfo')
  const services = await openai.services.list()
  conforms(services, 'Page')
  conforms(services, 'ServiceList')
  conforms(services.data[0], 'ServiceInfo')
  const error = await openai.models.retrieve('u-test/none').catch((e) => e)
  conforms(error.error, 'ErrorBody')
})

/**
 * Asserts the engine parses `field`: a value of the wrong type is refused naming the field (or,
 * for an OpenAI parameter it does not serve yet, that feature's parameter), never as unknown.
 */
function namesField(error, field) {
  assert.ok(error instanceof OpenAI.BadRequestError, `${field}: ${error}`)
  assert.doesNotMatch(error.message, /unknown field/, `${field}: the engine does not parse this field`)
  const param = String(error.param)
  const named = param === field || param.startsWith(`${field}.`) || param.startsWith(`${field}[`)
  assert.ok(named || /not supported/.test(error.message), `${field}: the engine answered ${error.message}`)
}

test('an undeclared field is refused as unknown, naming it', async () => {
  const error = await openai.chat.completions.create({ model: MODEL, messages, max_tokens: 1, temprature: 0 }).catch((e) => e)
  assert.ok(error instanceof OpenAI.BadRequestError)
  assert.equal(error.param, 'temprature')
  assert.throws(() => namesField(error, 'temprature'))
})

test('every declared request field is one the engine parses', async () => {
  const fields = [...interfaces.get('ChatCompletionRequest').keys()]
  assert.ok(fields.length >= 18)
  for (const field of fields) {
    const body = { model: MODEL, messages, max_tokens: 1, [field]: [[]] }
    namesField(await openai.chat.completions.create(body).catch((e) => e), field)
  }
})

test('every declared service spec field is one the engine parses, in either casing', async () => {
  const camel = (k) => k.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
  for (const field of interfaces.get('ServiceSpec').keys()) {
    for (const key of new Set([field, camel(field)])) {
      const body = { name: 'x', access_name: 'u-test/x', model: smollm2(), [key]: [[]] }
      namesField(await openai.services.deploy(body).catch((e) => e), field)
    }
  }
})
