// node-redis ("redis" on npm) smoke test: node node_redis_smoke.js PORT RESP [PASSWORD]
// Environment: RINGKV_USER (an ACL user for the password), RINGKV_TLS_CA
// (connect with TLS, trusting this CA file) with RINGKV_TLS_CERT and
// RINGKV_TLS_KEY (a client certificate).
// Connects (HELLO 3 by default, CLIENT SETINFO, maintenance handshake),
// then set/get/mGet, an auto-pipelined batch, execAsPipeline, MULTI/EXEC,
// binary values and SCAN; prints one JSON object on stdout.
'use strict';
const { createClient, RESP_TYPES } = require('redis');

async function main() {
  const port = parseInt(process.argv[2], 10);
  const RESP = parseInt(process.argv[3] || '3', 10);
  const password = process.argv[4];
  const fs = require('fs');
  const env = process.env;
  const socket = { host: '127.0.0.1', port, reconnectStrategy: false,
                   connectTimeout: 10000 };
  if (env.RINGKV_TLS_CA) {
    Object.assign(socket, {
      tls: true, servername: 'localhost', ca: fs.readFileSync(env.RINGKV_TLS_CA),
      cert: env.RINGKV_TLS_CERT ? fs.readFileSync(env.RINGKV_TLS_CERT) : undefined,
      key: env.RINGKV_TLS_KEY ? fs.readFileSync(env.RINGKV_TLS_KEY) : undefined,
    });
  }
  const client = createClient({ socket, RESP, password,
                                username: env.RINGKV_USER });
  const errors = [];
  client.on('error', (e) => errors.push(String(e && e.message || e)));
  const out = { lib: 'redis', version: require('redis/package.json').version,
                RESP };
  await client.connect();
  out.set = await client.set('nr:a', '1');
  out.get = await client.get('nr:a');
  out.get_missing = await client.get('nr:missing');
  await client.mSet([['nr:b', '2'], ['nr:c', 'three']]);
  out.mget = await client.mGet(['nr:a', 'nr:b', 'nr:missing', 'nr:c']);
  // commands issued in the same tick are pipelined in one write
  out.autopipeline = await Promise.all([
    client.set('nr:p', 'v'), client.get('nr:p'), client.incr('nr:n'),
    client.incrBy('nr:n', 41), client.exists(['nr:p', 'nr:missing'])]);
  out.pipeline = await client.multi()
    .set('nr:q', 'w').get('nr:q').del('nr:q').execAsPipeline();
  out.multi = await client.multi()
    .set('nr:m', 'x').append('nr:m', 'y').get('nr:m').del('nr:m').exec();
  const bin = Buffer.from([...Array(256).keys()]);
  await client.set(Buffer.from('nr:bin\x00'), bin);
  const got = await client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
    .get(Buffer.from('nr:bin\x00'));
  out.bin_ok = Buffer.isBuffer(got) && Buffer.compare(got, bin) === 0;
  await client.set('nr:t', 'v', { EX: 100 });
  out.ttl = await client.ttl('nr:t');
  out.setnx = await client.set('nr:a', 'z', { NX: true });
  const keys = [];
  for await (const batch of client.scanIterator({ MATCH: 'nr:*', COUNT: 2 })) {
    keys.push(...batch);
  }
  out.scan = [...new Set(keys)].sort();
  out.dbsize = await client.dbSize();
  out.info_has_version = /redis_version:/.test(await client.info('server'));
  try { await client.incr('nr:c'); out.incr_error = null; }
  catch (e) { out.incr_error = e.message; }
  await client.close();
  out.errors = errors;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});
