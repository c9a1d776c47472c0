"""Drives Microsoft's azure-iot-hub SDK against the edgewatch simulator.

Run by tests/sim_python_sdk.rs with:
  SIM_CONNECTION_STRING  service connection string printed by the simulator
  REQUESTS_CA_BUNDLE     the simulator's CA (TLS is verified, never disabled)
  SIM_ONLINE_DEVICE      a connected edge device
  SIM_OFFLINE_DEVICE     a disconnected edge device
  SIM_DEVICE_COUNT       how many devices the fleet has
Prints one JSON object with what the SDK returned; exits non-zero on the first mismatch.
"""

import json
import os
import sys

from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, QuerySpecification
from msrest.exceptions import HttpOperationError


def check(condition, message):
    if not condition:
        print("SDK CHECK FAILED: " + message, file=sys.stderr)
        sys.exit(1)


def main():
    online = os.environ["SIM_ONLINE_DEVICE"]
    offline = os.environ["SIM_OFFLINE_DEVICE"]
    expected = int(os.environ["SIM_DEVICE_COUNT"])
    manager = IoTHubRegistryManager.from_connection_string(os.environ["SIM_CONNECTION_STRING"])
    result = {}

    agent = manager.get_module_twin(online, "$edgeAgent")
    reported = agent.properties.reported
    check(agent.module_id == "$edgeAgent", "module id of the $edgeAgent twin")
    check(reported["lastDesiredStatus"]["code"] == 200, "agent reports code 200")
    check(agent.properties.desired["$version"] == reported["lastDesiredVersion"], "deployment applied")
    check("$metadata" in reported and "$lastUpdated" in reported["$metadata"], "reported metadata")
    result["agentModules"] = sorted(reported["modules"].keys())
    result["edgeHubRuntimeStatus"] = reported["systemModules"]["edgeHub"]["runtimeStatus"]

    hub = manager.get_module_twin(online, "$edgeHub")
    check(hub.module_id == "$edgeHub", "module id of the $edgeHub twin")
    result["edgeHubClients"] = sorted(hub.properties.reported["clients"].keys())

    twin = manager.get_twin(online)
    check(twin.device_id == online, "device twin id")
    check(twin.capabilities.iot_edge is True, "capabilities.iotEdge")
    result["etag"] = twin.etag
    result["tags"] = twin.tags

    pages = 0
    seen = []
    token = None
    query = QuerySpecification(query="SELECT * FROM devices WHERE capabilities.iotEdge = true")
    while True:
        page = manager.query_iot_hub(query, token, 10)
        pages += 1
        check(page.type == "twin", "x-ms-item-type is twin")
        seen.extend(item.device_id for item in page.items)
        token = page.continuation_token
        if not token:
            break
        check(pages < 1000, "query paging terminates")
    check(pages > 1, "more than one page")
    check(len(seen) == expected and len(set(seen)) == expected, "every device exactly once")
    result["queryPages"] = pages
    result["queryItems"] = len(seen)

    # A projection, as the cheap read path sends it. The SDK deserializes rows into its
    # Twin model, so it keeps the twin fields it knows (deviceId, moduleId, version,
    # connectionState) and drops the rest; `properties` is absent because not selected.
    projection = QuerySpecification(
        query="SELECT deviceId, moduleId, version, connectionState, "
        "properties.reported.lastDesiredStatus AS status FROM devices.modules "
        "WHERE moduleId = '$edgeAgent'"
    )
    rows = []
    token = None
    projection_pages = 0
    while True:
        page = manager.query_iot_hub(projection, token, 10)
        projection_pages += 1
        rows.extend(page.items)
        token = page.continuation_token
        if not token:
            break
        check(projection_pages < 1000, "projection paging terminates")
    check(all(row.module_id == "$edgeAgent" for row in rows), "projected moduleId")
    check(all(isinstance(row.version, int) for row in rows), "projected version")
    check(all(row.properties is None for row in rows), "unselected properties are absent")
    check(all(row.etag is None for row in rows), "unselected etag is absent")
    result["projectionItems"] = len(rows)
    result["projectionDevices"] = len({row.device_id for row in rows})
    result["projectionPages"] = projection_pages
    result["projectionType"] = page.type
    result["projectionStates"] = sorted({row.connection_state for row in rows})

    ping = CloudToDeviceMethod(method_name="ping", payload={}, response_timeout_in_seconds=10)
    answer = manager.invoke_device_module_method(online, "$edgeAgent", ping)
    check(answer.status == 200, "ping of an online device answers 200")
    result["pingOnlineStatus"] = answer.status

    try:
        manager.invoke_device_module_method(offline, "$edgeAgent", ping)
        check(False, "ping of an offline device must raise")
    except HttpOperationError as error:
        status = error.response.status_code
        body = error.response.json()
        inner = json.loads(body["Message"])
        result["pingOfflineHttpStatus"] = status
        result["pingOfflineErrorCode"] = inner["errorCode"]
        result["pingOfflineHeader"] = error.response.headers.get("iothub-errorcode")

    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
