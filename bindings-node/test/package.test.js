'use strict'
// The package as a user gets it: `npm pack`, `npm install <tarball>` into another project, then
// `require` and `import` from there.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { packageDir, smollm2 } = require('./helpers')

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

test('npm pack, npm install into another project, require and import', () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'modelservice-user-'))
  try {
    const packed = JSON.parse(
      execFileSync(npm, ['pack', '--json', '--pack-destination', project], { cwd: packageDir, encoding: 'utf8' }),
    )
    const files = packed[0].files.map((f) => f.path).sort()
    for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'wire.d.ts', 'package.json']) assert.ok(files.includes(f), f)
    assert.ok(files.some((f) => f.endsWith('.node')), 'the addon is packed')
    // llama.cpp travels with the addon: its libraries and one CPU backend module per x86 generation.
    for (const f of ['libllama.so.0', 'libggml.so.0', 'libggml-base.so.0', 'libggml-cpu-x64.so']) {
      assert.ok(files.includes(f), `${f} is packed`)
    }
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), files.join(' '))

    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true }))
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--offline', `./${packed[0].filename}`], {
      cwd: project,
      stdio: 'pipe',
    })

    fs.writeFileSync(
      path.join(project, 'cjs.js'),
      [
        "const OpenAI = require('modelservice')",
        "const openai = new OpenAI({ services: [{ name: 'm', accessName: 'u/m', model: process.env.SMOLLM2_GGUF }] })",
        "openai.chat.completions.create({ model: 'u/m', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })",
        '  .then((r) => console.log(r.choices[0].message.content))',
      ].join('\n'),
    )
    const cjs = spawnSync(process.execPath, ['cjs.js'], {
      cwd: project,
      env: { ...process.env, SMOLLM2_GGUF: smollm2() },
      encoding: 'utf8',
    })
    assert.equal(cjs.status, 0, cjs.stderr)
    assert.equal(cjs.stderr, '')
    assert.ok(cjs.stdout.trim().length > 0)

    fs.writeFileSync(
      path.join(project, 'esm.mjs'),
      [
        "import OpenAI, { NotFoundError } from 'modelservice'",
        "const openai = new OpenAI({ services: [{ name: 'm', accessName: 'u/m', model: process.env.SMOLLM2_GGUF }] })",
        "const r = await openai.chat.completions.create({ model: 'u/m', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })",
        "const e = await openai.models.retrieve('u/none').catch((e) => e)",
        "const { variant } = (await openai.services.retrieve('u/m')).cpu_backend",
        "console.log(JSON.stringify({ text: r.choices[0].message.content, notFound: e instanceof NotFoundError && e instanceof OpenAI.APIError, variant }))",
      ].join('\n'),
    )
    const esm = spawnSync(process.execPath, ['esm.mjs'], {
      cwd: project,
      env: { ...process.env, SMOLLM2_GGUF: smollm2() },
      encoding: 'utf8',
    })
    assert.equal(esm.status, 0, esm.stderr)
    const out = JSON.parse(esm.stdout)
    assert.ok(out.text.length > 0)
    assert.equal(out.notFound, true)
    // The CPU backend was loaded from the installed package, not from the build tree.
    assert.ok(files.includes(`libggml-cpu-${out.variant}.so`), out.variant)
    const installed = path.join(project, 'node_modules', 'modelservice', `libggml-cpu-${out.variant}.so`)
    assert.ok(fs.existsSync(installed), installed)
  } finally {
    fs.rmSync(project, { recursive: true, force: true })
  }
})
