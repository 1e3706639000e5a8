"""A charger built on the Python `ocpp` package (not our code), used by the end-to-end suite to
check that Voltgate interoperates with an independent OCPP implementation.

Usage: third_party_charger.py URL CHARGER_ID 1.6|2.0.1

It boots, sends a heartbeat and a status notification, then waits for a remote start, answers it,
and prints one JSON line per event to stdout. The `ocpp` package validates every message it
receives against the official schemas, so a malformed payload from the gateway fails here.
"""

import asyncio
import json
import sys

import websockets
from ocpp.routing import on


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def v16_charger():
    from ocpp.v16 import ChargePoint, call, call_result

    class Charger(ChargePoint):
        @on("RemoteStartTransaction")
        def remote_start(self, id_tag, connector_id=None, **_):
            emit("remote_start", id_token=id_tag, connector=connector_id)
            self.done.set()
            return call_result.RemoteStartTransaction(status="Accepted")

    async def script(cp):
        boot = await cp.call(
            call.BootNotification(charge_point_model="PyModel", charge_point_vendor="PyVendor")
        )
        emit("boot", status=boot.status, interval=boot.interval)
        beat = await cp.call(call.Heartbeat())
        emit("heartbeat", current_time=beat.current_time)
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
        )
        emit("status_sent")

    return Charger, script


def v201_charger():
    from ocpp.v201 import ChargePoint, call, call_result

    class Charger(ChargePoint):
        @on("RequestStartTransaction")
        def remote_start(self, id_token, remote_start_id, evse_id=None, **_):
            emit("remote_start", id_token=id_token["id_token"], connector=evse_id)
            self.done.set()
            return call_result.RequestStartTransaction(status="Accepted")

    async def script(cp):
        boot = await cp.call(
            call.BootNotification(
                charging_station={"model": "PyModel", "vendor_name": "PyVendor"},
                reason="PowerUp",
            )
        )
        emit("boot", status=boot.status, interval=boot.interval)
        beat = await cp.call(call.Heartbeat())
        emit("heartbeat", current_time=beat.current_time)
        await cp.call(
            call.StatusNotification(
                timestamp="2026-01-01T00:00:00Z",
                connector_status="Available",
                evse_id=1,
                connector_id=1,
            )
        )
        emit("status_sent")

    return Charger, script


async def main():
    url, charger_id, version = sys.argv[1], sys.argv[2], sys.argv[3]
    charger_class, script = v16_charger() if version == "1.6" else v201_charger()
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    async with websockets.connect(f"{url}/{charger_id}", subprotocols=[subprotocol]) as ws:
        emit("connected", subprotocol=ws.subprotocol)
        cp = charger_class(charger_id, ws)
        cp.done = asyncio.Event()
        runner = asyncio.create_task(cp.start())
        await script(cp)
        await asyncio.wait_for(cp.done.wait(), timeout=30)
        await asyncio.sleep(0.2)
        runner.cancel()
    emit("finished")


if __name__ == "__main__":
    asyncio.run(main())
