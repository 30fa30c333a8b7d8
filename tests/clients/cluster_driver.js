#!/usr/bin/env node
// Drives one Node.js Redis Cluster client (ioredis `Cluster` or node-redis
// `createCluster`) against ringkv for tests/integration/test_node_cluster_clients.py.
//
//   node cluster_driver.js ioredis|node-redis
//
// Reads one JSON command a line on stdin and answers each with one JSON line
// on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}); a long
// command ("loop") first prints {"event": "started"} so that the test can
// kill a node while it runs. The client is used exactly as an application
// would, with its default options unless a command says otherwise.
//
// Commands:
//   {"op": "connect", "ports": [p, ...], "options": {...}}
//   {"op": "masters"}           -> ports the client holds as primaries
//   {"op": "slot_masters"}      -> [[first, last, port], ...] the client's
//                                  slot -> primary map, as ranges
//   {"op": "setget", "prefix": s, "n": n}   n SETs then n GETs, checked
//   {"op": "multi", "tag": t}   multi-key commands on one hash tag
//   {"op": "loop", "seconds": s, "min_ops": n, "keys": k, "preload": m,
//    "count_stale": bool}
//                               SET+GET(+GET of a preloaded key) loop;
//                               counts the errors the application sees
//                               (and, with count_stale, GETs that read an
//                               older value apart, as "stale")
//   {"op": "refresh"}           re-read the topology now
//   {"op": "close"}
'use strict';

const readline = require('readline');

const kind = process.argv[2];
if (kind !== 'ioredis' && kind !== 'node-redis') {
  process.stderr.write('usage: cluster_driver.js ioredis|node-redis\n');
  process.exit(2);
}

let client = null;
const clientErrors = []; // 'error' events: logged, not application errors

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function portOf(addr) {
  return Number(String(addr).split(':').pop());
}

async function connect(ports, options) {
  if (kind === 'ioredis') {
    const Redis = require('ioredis');
    client = new Redis.Cluster(ports.map((port) => ({ host: '127.0.0.1', port })),
      options || {});
    client.on('error', (e) => clientErrors.push(String(e.message)));
    await new Promise((resolve, reject) => {
      client.once('ready', resolve);
      client.once('end', () => reject(new Error('cluster connection ended')));
    });
  } else {
    const { createCluster } = require('redis');
    client = createCluster(Object.assign({
      rootNodes: ports.map((port) => ({ socket: { host: '127.0.0.1', port } })),
    }, options || {}));
    client.on('error', (e) => clientErrors.push(String(e.message)));
    await client.connect();
  }
}

function masters() {
  if (kind === 'ioredis') return client.nodes('master').map((n) => n.options.port);
  return client.masters.map((m) => m.port);
}

function slotMasterPort(slot) {
  if (kind === 'ioredis') {
    const nodes = client.slots[slot];
    return nodes && nodes.length ? portOf(nodes[0]) : null;
  }
  const shard = client.slots[slot];
  return shard && shard.master ? shard.master.port : null;
}

function slotMasters() {
  const ranges = [];
  for (let s = 0; s < 16384; s++) {
    const p = slotMasterPort(s);
    const last = ranges[ranges.length - 1];
    if (last && last[2] === p && last[1] === s - 1) last[1] = s;
    else ranges.push([s, s, p]);
  }
  return ranges;
}

async function set(k, v) { return client.set(k, v); }
async function get(k) { return client.get(k); }

async function setget(prefix, n) {
  for (let i = 0; i < n; i++) {
    const r = await set(`${prefix}${i}`, `v${i}`);
    if (r !== 'OK') throw new Error(`SET ${prefix}${i} answered ${r}`);
  }
  for (let i = 0; i < n; i++) {
    const v = await get(`${prefix}${i}`);
    if (v !== `v${i}`) throw new Error(`GET ${prefix}${i} answered ${v}`);
  }
  return { n };
}

async function multi(tag) {
  const k = (s) => `{${tag}}.${s}`;
  const res = {};
  if (kind === 'ioredis') {
    res.mset = await client.mset(k('a'), '1', k('b'), '2', k('c'), '3');
    res.mget = await client.mget(k('a'), k('b'), k('c'));
    res.del = await client.del(k('a'), k('b'));
    res.exists = await client.exists(k('a'), k('c'));
    res.incr = await client.incr(k('n'));
    res.pipeline = (await client.pipeline().set(k('p'), 'x').get(k('p')).exec())
      .map(([err, v]) => (err ? String(err) : v));
  } else {
    res.mset = await client.mSet([k('a'), '1', k('b'), '2', k('c'), '3']);
    res.mget = await client.mGet([k('a'), k('b'), k('c')]);
    res.del = await client.del([k('a'), k('b')]);
    res.exists = await client.exists([k('a'), k('c')]);
    res.incr = await client.incr(k('n'));
    res.pipeline = await client.multi().set(k('p'), 'x').get(k('p')).exec();
  }
  return res;
}

// The client loop of the node-kill test: each iteration writes a key,
// reads it back and reads a preloaded key. An error is what reaches the
// application after the client's own retries.
async function loop(cmd) {
  const keys = cmd.keys || 400;
  const preload = cmd.preload || 300;
  for (let i = 0; i < preload; i++) await set(`pre:${i}`, String(i));
  out({ event: 'started' });
  const t0 = Date.now();
  let i = 0; let ok = 0; let maxMs = 0;
  const errors = [];
  const stale = [];
  const clientErrs = [];
  // app_retries > 0: what an application does for idempotent commands
  // when its client does not retry: try again after app_retry_ms
  const retries = cmd.app_retries || 0;
  const retried = async (fn) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        clientErrs.push({ at_ms: Date.now() - t0, error: String(e && e.message) });
        if (attempt >= retries) throw e;
        await new Promise((r) => setTimeout(r, cmd.app_retry_ms || 100));
      }
    }
  };
  while (Date.now() - t0 < cmd.seconds * 1000 || i < (cmd.min_ops || 0)) {
    const k = `s:${i % keys}`;
    const t = Date.now();
    try {
      await retried(() => set(k, String(i)));
      const v = await retried(() => get(k));
      if (v !== String(i)) {
        // a stale read is not an error the client surfaced: counted apart
        // when the test asks (count_stale), else an error as before
        if (!cmd.count_stale) throw new Error(`GET ${k} answered ${v}, wanted ${i}`);
        stale.push({ at_ms: Date.now() - t0, read: `GET ${k} answered ${v}, wanted ${i}` });
      }
      const p = await retried(() => get(`pre:${i % preload}`));
      if (p !== String(i % preload)) throw new Error(`GET pre:${i % preload} answered ${p}`);
      ok++;
    } catch (e) {
      errors.push({ at_ms: Date.now() - t0, error: String(e && e.message) });
    }
    maxMs = Math.max(maxMs, Date.now() - t);
    i++;
  }
  return { iterations: i, ok, errors: errors.length, first_errors: errors.slice(0, 5),
    stale: stale.length, first_stale: stale.slice(0, 3),
    client_errors: clientErrs.length, first_client_errors: clientErrs.slice(0, 5),
    max_iteration_ms: maxMs, seconds: (Date.now() - t0) / 1000 };
}

async function refresh() {
  if (kind === 'ioredis') {
    await new Promise((resolve, reject) => client.refreshSlotsCache((err) => (err ? reject(err) : resolve())));
  } else {
    await client._slots.rediscover();
  }
}

async function handle(cmd) {
  switch (cmd.op) {
    case 'connect': await connect(cmd.ports, cmd.options); return {};
    case 'masters': return { masters: masters() };
    case 'slot_masters': return { ranges: slotMasters() };
    case 'setget': return setget(cmd.prefix || 'k:', cmd.n);
    case 'multi': return multi(cmd.tag || 'u1');
    case 'loop': return loop(cmd);
    case 'refresh': await refresh(); return { masters: masters() };
    case 'close':
      if (kind === 'ioredis') client.disconnect(); else await client.close();
      return { client_error_events: clientErrors.length,
        first_client_error_events: clientErrors.slice(0, 5) };
    default: throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
      const res = await handle(cmd);
      out(Object.assign({ ok: true }, res));
    } catch (e) {
      out({ ok: false, error: String(e && e.stack ? e.stack : e) });
    }
    if (cmd && cmd.op === 'close') process.exit(0);
  });
});
rl.on('close', () => { chain.then(() => process.exit(0)); });
