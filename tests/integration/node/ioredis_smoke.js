// ioredis smoke test: node ioredis_smoke.js PORT PROTOCOL [PASSWORD]
// Environment: RINGKV_USER (an ACL user for the password), RINGKV_TLS_CA
// (connect with TLS, trusting this CA file) with RINGKV_TLS_CERT and
// RINGKV_TLS_KEY (a client certificate).
// Connects (ready check = INFO, HELLO 3, CLIENT SETINFO), then
// set/get/mget, a pipeline, a MULTI/EXEC, binary values and SCAN; prints
// one JSON object on stdout.  Exit code 0 only if every step ran.
'use strict';
const Redis = require('ioredis');

async function main() {
  const port = parseInt(process.argv[2], 10);
  const protocol = parseInt(process.argv[3] || '3', 10);
  const password = process.argv[4];
  const fs = require('fs');
  const env = process.env;
  const tls = env.RINGKV_TLS_CA ? {
    ca: fs.readFileSync(env.RINGKV_TLS_CA),
    cert: env.RINGKV_TLS_CERT ? fs.readFileSync(env.RINGKV_TLS_CERT) : undefined,
    key: env.RINGKV_TLS_KEY ? fs.readFileSync(env.RINGKV_TLS_KEY) : undefined,
    servername: 'localhost',
  } : undefined;
  const r = new Redis({
    host: '127.0.0.1', port, protocol, password, username: env.RINGKV_USER,
    tls, enableReadyCheck: true, maxRetriesPerRequest: 1,
    connectTimeout: 10000, retryStrategy: () => null, lazyConnect: true,
  });
  const errors = [];
  r.on('error', (e) => errors.push(String(e && e.message || e)));
  const out = { lib: 'ioredis', version: require('ioredis/package.json').version,
                protocol };
  await r.connect();
  out.status = r.status;
  out.set = await r.set('io:a', '1');
  out.get = await r.get('io:a');
  out.get_missing = await r.get('io:missing');
  await r.mset('io:b', '2', 'io:c', 'three');
  out.mget = await r.mget('io:a', 'io:b', 'io:missing', 'io:c');
  out.pipeline = await r.pipeline()
    .set('io:p', 'v').get('io:p').incr('io:n').incrby('io:n', 41)
    .exists('io:p', 'io:missing').exec();
  out.multi = await r.multi()
    .set('io:m', 'x').append('io:m', 'y').get('io:m').del('io:m').exec();
  const bin = Buffer.from([...Array(256).keys()]);
  await r.set(Buffer.from('io:bin\x00'), bin);
  out.bin_ok = Buffer.compare(await r.getBuffer(Buffer.from('io:bin\x00')), bin) === 0;
  await r.set('io:t', 'v', 'EX', 100);
  out.ttl = await r.ttl('io:t');
  out.setnx = await r.set('io:a', 'z', 'NX');
  const keys = [];
  await new Promise((resolve, reject) => {
    const s = r.scanStream({ match: 'io:*', count: 2 });
    s.on('data', (k) => keys.push(...k));
    s.on('end', resolve);
    s.on('error', reject);
  });
  out.scan = [...new Set(keys)].sort();
  out.dbsize = await r.dbsize();
  out.info_has_version = /redis_version:/.test(await r.info('server'));
  try { await r.incr('io:c'); out.incr_error = null; }
  catch (e) { out.incr_error = e.message; }
  out.quit = await r.quit();
  out.errors = errors;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});
