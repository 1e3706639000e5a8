"""A charger built on the Python `ocpp` package (not our code) that takes password rotations, used
by the end-to-end suite to check that a rotated password is one a compliant charger can use.

Usage: third_party_password_charger.py URL CHARGER_ID 1.6|2.0.1 PASSWORD ANSWER[,ANSWER...]

It connects with HTTP Basic auth (user name = charger id) and boots. For each ANSWER (`Accepted`
or `Rejected`) it waits for the gateway to set its password (1.6 ChangeConfiguration
AuthorizationKey, which it decodes from hex as the OCPP 1.6 security whitepaper says; 2.0.1
SetVariables SecurityCtrlr.BasicAuthPassword, taken as is), answers ANSWER, keeps the new password
only if it accepted it, then reconnects with the password it now holds and boots again. It prints
one JSON line per event to stdout; a refused reconnection is an event too (with the HTTP status).
"""

import asyncio
import base64
import json
import sys

import websockets
from ocpp.routing import on


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


class State:
    def __init__(self, password, answers):
        self.password = password
        self.answers = answers
        self.changed = asyncio.Event()


def v16_charger(state):
    from ocpp.v16 import ChargePoint, call, call_result

    class Charger(ChargePoint):
        @on("ChangeConfiguration")
        def change(self, key, value, **_):
            answer = state.answers.pop(0)
            try:
                decoded = bytes.fromhex(value).decode("utf-8")
            except ValueError:
                decoded = None
            valid = key == "AuthorizationKey" and decoded is not None and 16 <= len(decoded.encode()) <= 20
            emit("password_set", key=key, hex_decoded=decoded is not None, valid=valid, answer=answer)
            if answer == "Accepted" and valid:
                state.password = decoded
            state.changed.set()
            return call_result.ChangeConfiguration(status=answer if valid else "Rejected")

    async def boot(cp):
        return await cp.call(
            call.BootNotification(charge_point_model="PyModel", charge_point_vendor="PyVendor")
        )

    return Charger, boot


def v201_charger(state):
    from ocpp.v201 import ChargePoint, call, call_result

    class Charger(ChargePoint):
        @on("SetVariables")
        def set_variables(self, set_variable_data, **_):
            answer = state.answers.pop(0)
            results = []
            for datum in set_variable_data:
                component = datum["component"]
                variable = datum["variable"]
                value = datum["attribute_value"]
                is_password = (
                    component["name"] == "SecurityCtrlr" and variable["name"] == "BasicAuthPassword"
                )
                valid = is_password and 16 <= len(value) <= 40
                emit("password_set", key=variable["name"], valid=valid, answer=answer)
                if answer == "Accepted" and valid:
                    state.password = value
                results.append(
                    {
                        "attribute_status": answer if valid else "Rejected",
                        "component": component,
                        "variable": variable,
                    }
                )
            state.changed.set()
            return call_result.SetVariables(set_variable_result=results)

    async def boot(cp):
        return await cp.call(
            call.BootNotification(
                charging_station={"model": "PyModel", "vendor_name": "PyVendor"},
                reason="PowerUp",
            )
        )

    return Charger, boot


def connect(url, charger_id, password, subprotocol):
    credentials = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    try:
        return websockets.connect(
            f"{url}/{charger_id}", subprotocols=[subprotocol], additional_headers=headers
        )
    except TypeError:
        return websockets.connect(
            f"{url}/{charger_id}", subprotocols=[subprotocol], extra_headers=headers
        )


def refusal_status(error):
    response = getattr(error, "response", None)
    if response is not None:
        return response.status_code
    return getattr(error, "status_code", None)


async def session(url, charger_id, version, state, wait_for_change):
    """One connection: boot, then (if asked) wait for one password change. False if refused."""
    charger_class, boot = v16_charger(state) if version == "1.6" else v201_charger(state)
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    try:
        ws = await connect(url, charger_id, state.password, subprotocol)
    except Exception as error:  # the handshake was refused
        emit("refused", status=refusal_status(error))
        return False
    async with ws:
        cp = charger_class(charger_id, ws)
        runner = asyncio.create_task(cp.start())
        booted = await boot(cp)
        emit("booted", status=booted.status)
        if wait_for_change:
            state.changed.clear()
            await asyncio.wait_for(state.changed.wait(), timeout=30)
            await asyncio.sleep(0.2)
        runner.cancel()
    return True


async def main():
    url, charger_id, version, password, answers = sys.argv[1:6]
    state = State(password, answers.split(","))
    rounds = len(state.answers)
    if not await session(url, charger_id, version, state, wait_for_change=True):
        return
    for remaining in range(rounds, 0, -1):
        if not await session(url, charger_id, version, state, wait_for_change=remaining > 1):
            return
    emit("finished")


if __name__ == "__main__":
    asyncio.run(main())
