'use strict'
// The platform part of the addon's file name, as napi-rs names it (linux-x64-gnu, darwin-arm64 ...).

function isMusl() {
  if (process.platform !== 'linux') return false
  const report = process.report && process.report.getReport ? process.report.getReport() : null
  const header = report && (typeof report === 'string' ? JSON.parse(report) : report).header
  return !(header && header.glibcVersionRuntime)
}

function platformSuffix() {
  const abi =
    process.platform === 'linux' ? (isMusl() ? '-musl' : '-gnu') : process.platform === 'win32' ? '-msvc' : ''
  return `${process.platform}-${process.arch}${abi}`
}

module.exports = { platformSuffix }
