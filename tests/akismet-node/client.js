// npm's akismet-api, unchanged, against hamgate. It addresses Akismet the older way, with the
// key in the host name (`KEY.rest.akismet.com`); here the host is `hamgate.test`, which this
// script resolves to hamgate's loopback address (what DNS does for a real deployment). Prints
// one JSON object of what the client saw.
//
// usage: node client.js PORT KEY BLOG
'use strict'

const dns = require('dns')
const realLookup = dns.lookup
dns.lookup = (host, options, callback) => {
  if (typeof host === 'string' && (host === 'hamgate.test' || host.endsWith('.hamgate.test'))) {
    if (typeof options === 'function') { callback = options; options = {} }
    if (options && options.all) return callback(null, [{ address: '127.0.0.1', family: 4 }])
    return callback(null, '127.0.0.1', 4)
  }
  return realLookup(host, options, callback)
}

const { AkismetClient } = require('akismet-api')

async function main () {
  const [port, key, blog] = process.argv.slice(2)
  const host = `hamgate.test:${port}`
  const out = {}
  const bad = new AkismetClient({ key: 'not-a-key', blog, host, protocol: 'http' })
  out.bad_key_valid = await bad.verifyKey()
  const client = new AkismetClient({ key, blog, host, protocol: 'http' })
  out.good_key_valid = await client.verifyKey()
  out.spam = await client.checkSpam({
    ip: '203.0.113.70',
    type: 'comment',
    name: 'Vid Guy',
    content: 'Check out my channel and subscribe! http://www.youtube.com/user/coolvids123 please subscribe'
  })
  out.ham = await client.checkSpam({
    ip: '203.0.113.71',
    type: 'comment',
    name: 'Ann',
    content: 'This song is amazing, I still listen to it every day'
  })
  // Accepted at first (p 0.11 with the shipped model), near the accept threshold.
  const probe = { ip: '198.51.100.80', type: 'comment', name: 'Sam', content: 'Love it, thanks for sharing' }
  out.probe_before = await client.checkSpam({ ...probe, isTest: true })
  for (let i = 0; i < 4; i++) await client.submitSpam({ ...probe, ip: `198.51.100.${81 + i}` })
  out.probe_after = await client.checkSpam({ ...probe, isTest: true })
  console.log(JSON.stringify(out))
}

main().catch((e) => { console.error(e); process.exit(1) })
