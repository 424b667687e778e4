"""A service in another language on the same bus: publishes and consumes
eventwire events with a plain NATS client (nats-py), following
docs/wire-format.md and nothing else.

    python3 peer.py publish PORT      publish one OrderShipped, exit
    python3 peer.py consume PORT      print READY, check one event on test.interop.invoice, exit 0 if valid
"""
import asyncio
import datetime
import json
import sys
import uuid

import nats


async def publish(port: int) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    payload = {"order_id": "py-7", "items": ["mug", "tea"], "total_cents": 1999}
    await nc.publish(
        "test.interop.order-shipped",
        json.dumps(payload).encode(),
        headers={
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": "shipping-py",
            "ce-type": "test.interop.order-shipped",
            "ce-time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "content-type": "application/json",
            "ce-schemaversion": "2",
            "ce-partitionkey": "py-7",
            "ce-correlationid": "checkout-py-7",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "x-carrier": "dhl",
        },
    )
    await nc.flush()
    await nc.close()


def check(cond: bool, what: str) -> None:
    if not cond:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)


async def consume(port: int) -> None:
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    fut = asyncio.get_running_loop().create_future()

    async def on_msg(msg):
        if not fut.done():
            fut.set_result(msg)

    await nc.subscribe("test.interop.invoice", cb=on_msg)
    await nc.flush()
    print("READY", flush=True)
    msg = await asyncio.wait_for(fut, timeout=20)
    h = msg.headers or {}
    check(h.get("ce-specversion") == "1.0", f"ce-specversion {h.get('ce-specversion')}")
    event_id = uuid.UUID(h.get("ce-id", ""))
    check(event_id.version == 7, f"ce-id is a UUIDv7: {event_id}")
    check(h.get("ce-source") == "billing", f"ce-source {h.get('ce-source')}")
    check(h.get("ce-type") == "test.interop.invoice", f"ce-type {h.get('ce-type')}")
    t = datetime.datetime.fromisoformat(h["ce-time"].replace("Z", "+00:00")[:26] + "+00:00")
    check(abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) < 60, f"ce-time {h['ce-time']}")
    check(h.get("content-type") == "application/json", f"content-type {h.get('content-type')}")
    check(h.get("ce-schemaversion") == "3", f"ce-schemaversion {h.get('ce-schemaversion')}")
    check(h.get("ce-partitionkey") == "inv-9", f"ce-partitionkey {h.get('ce-partitionkey')}")
    check(h.get("ce-correlationid") == "checkout-9", f"ce-correlationid {h.get('ce-correlationid')}")
    check(h.get("traceparent") == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "traceparent")
    check(h.get("x-region") == "eu", f"custom header {h.get('x-region')}")
    body = json.loads(msg.data)
    check(body == {"invoice_id": "inv-9", "amount_cents": 4200}, f"payload {body}")
    print("OK", flush=True)
    await nc.close()


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    asyncio.run(publish(port) if mode == "publish" else consume(port))
