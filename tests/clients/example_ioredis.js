// docs/clients.md's ioredis example (run by tests/integration/test_node_cluster_clients.py):
//   node example_ioredis.js PORT [PORT...]   (any nodes of the cluster)
const Redis = require('ioredis');

async function main(ports) {
  // the defaults retry a command whose node went away (retryDelayOnFailover
  // 100 ms, up to maxRedirections 16 times) and re-read CLUSTER SLOTS;
  // slotsRefreshInterval picks up joined nodes within 5 s
  const cluster = new Redis.Cluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    { slotsRefreshInterval: 5000 });
  await cluster.set('user:1', 'alice'); // straight to the slot's primary
  await cluster.mset('{cart:7}.items', '3', '{cart:7}.total', '42'); // one slot
  console.log(await cluster.get('user:1'),
    await cluster.mget('{cart:7}.items', '{cart:7}.total'));
  cluster.disconnect();
}

main(process.argv.slice(2).map(Number)).catch((e) => { console.error(e); process.exit(1); });
