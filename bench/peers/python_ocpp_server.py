#!/usr/bin/env python3
"""OCPP 1.6J central system built on the Python `ocpp` package, for bench/run.sh's `peers` scenario.

It answers BootNotification, Heartbeat, StatusNotification and MeterValues from any charger id
on ws://HOST:PORT/<prefix>/<id> (subprotocol ocpp1.6). The package validates every request and
every answer against the OCPP JSON schemas by default; this server leaves that on, so the
comparison with Voltgate is between two validating servers.

    python_ocpp_server.py [--host 127.0.0.1] [--port 19100]
"""

import argparse
import asyncio
import logging
import signal
from datetime import datetime, timezone

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from websockets.asyncio.server import serve

HEARTBEAT_INTERVAL_S = 60


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CentralSystemSide(ChargePoint):
    """One connected charger, as seen by the central system."""

    @on(Action.boot_notification)
    def on_boot_notification(self, **_payload):
        return call_result.BootNotification(
            current_time=now_iso(), interval=HEARTBEAT_INTERVAL_S, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_payload):
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status_notification(self, **_payload):
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, **_payload):
        return call_result.MeterValues()


async def handle_connection(connection):
    charger_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
    if connection.subprotocol != "ocpp1.6" or not charger_id:
        await connection.close(1002, "expected subprotocol ocpp1.6 and a charger id in the path")
        return
    try:
        await CentralSystemSide(charger_id, connection).start()
    except Exception:  # a closed connection ends the charger's session, whatever the reason
        pass


async def main(host, port):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handle_connection, host, port, subprotocols=["ocpp1.6"], backlog=4096):
        print(f"listening on ws://{host}:{port}/", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.host, args.port))
