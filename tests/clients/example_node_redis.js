// docs/clients.md's node-redis example (run by tests/integration/test_node_cluster_clients.py):
//   node example_node_redis.js PORT [PORT...]   (any nodes of the cluster)
const { createCluster } = require('redis');

// node-redis retries MOVED/ASK only: when a node dies, a command sent to it
// fails (its client is dropped at the next topology refresh), so retry
// idempotent commands in the application
async function retry(fn, attempts = 3, delayMs = 100) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

async function main(ports) {
  const cluster = createCluster({
    rootNodes: ports.map((port) => ({ socket: { host: '127.0.0.1', port } })),
    // re-read the topology 100 ms (default 5 s) after a node's connection
    // starts reconnecting, so a dead node's slots move on quickly
    topologyRefreshOnReconnectionAttemptStrategy: 100,
  });
  cluster.on('error', (e) => console.error('cluster error:', e.message));
  await cluster.connect();
  await retry(() => cluster.set('user:1', 'alice'));
  await retry(() => cluster.mSet(['{cart:7}.items', '3', '{cart:7}.total', '42']));
  console.log(await retry(() => cluster.get('user:1')),
    await retry(() => cluster.mGet(['{cart:7}.items', '{cart:7}.total'])));
  await cluster.close();
}

main(process.argv.slice(2).map(Number)).catch((e) => { console.error(e); process.exit(1); });
