'use strict'
// The product page's Node.js example runs with only its require and construction changed.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { smollm2 } = require('./helpers')

const example = path.join(__dirname, 'fixtures', 'product-page.js')

function run(file) {
  return spawnSync(process.execPath, [file], { env: { ...process.env, SMOLLM2_GGUF: smollm2() }, encoding: 'utf8' })
}

test('the product page example prints an answer', () => {
  const r = run(example)
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '', 'no error branch')
  assert.ok(r.stdout.trim().length > 0, 'a non-empty answer')
})

test("the product page example's APIError branch fires for an unknown model", () => {
  const source = fs.readFileSync(example, 'utf8')
  const changed = source.replace("model: 'u-8105f7322477/test',", "model: 'u-8105f7322477/unknown',")
  assert.notEqual(changed, source)
  // Next to the original, so `require('modelservice')` resolves the same way.
  const file = path.join(__dirname, 'fixtures', `unknown-model-${process.pid}.js`)
  fs.writeFileSync(file, changed)
  try {
    const r = run(file)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^API Error: 404 404 The model `u-8105f7322477\/unknown` does not exist/)
    assert.match(r.stderr, /Error details: .*code: 'model_not_found'/s)
  } finally {
    fs.rmSync(file, { force: true })
  }
})
