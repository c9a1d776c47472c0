// Drives Microsoft's Node.js service SDK (azure-iothub) against the edgewatch simulator
// listening on port 443, with the connection string it printed (HostName=localhost).
//
// Run by tests/sim_node_sdk.rs with:
//   SIM_CONNECTION_STRING  the simulator's connection string
//   NODE_EXTRA_CA_CERTS    the simulator's CA (TLS is verified, never disabled)
//   SIM_DEVICE             a connected edge device
//   NODE_PATH              where azure-iothub is installed
// Prints one JSON object; exits non-zero on the first failure.
const { Registry, Client } = require('azure-iothub');

const cs = process.env.SIM_CONNECTION_STRING;
const device = process.env.SIM_DEVICE;

// The SDK's promise form of Query.next() without a token re-reads the first page, so
// page with callbacks, which follow Query.continuationToken.
function nextPage(query) {
  return new Promise((resolve, reject) =>
    query.next((err, result) => (err ? reject(err) : resolve(result))));
}

async function main() {
  const registry = Registry.fromConnectionString(cs);
  const twin = await registry.getModuleTwin(device, '$edgeAgent');
  const query = registry.createQuery(
    "SELECT deviceId, moduleId, properties.reported.lastDesiredStatus FROM devices.modules WHERE moduleId = '$edgeAgent'",
    2);
  let rows = [];
  let pages = 0;
  while (query.hasMoreResults && pages < 100) {
    rows = rows.concat(await nextPage(query));
    pages += 1;
  }
  const client = Client.fromConnectionString(cs);
  const ping = await client.invokeDeviceMethod(device, '$edgeAgent', {
    methodName: 'ping', payload: {}, responseTimeoutInSeconds: 10,
  });
  console.log(JSON.stringify({
    moduleId: twin.responseBody.moduleId,
    rows,
    pages,
    pingStatus: ping.result.status,
  }));
}

main().catch((e) => {
  console.error('SDK CHECK FAILED:', e.message);
  process.exit(1);
});
