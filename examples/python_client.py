#!/usr/bin/env python3
"""A client in another language: publish party events per the wire contract, read lists back.

Run against `ledger serve --site SiteA` (for example `./dev run`):

    PYTHONPATH=.tools/py NATS_URL=<the URL `ledger up` prints> python3 examples/python_client.py

It turns on SiteA's call info and propagation in LEDGER_CONFIG, publishes a three-party call
(two parties at SiteA, one at SiteB), and prints SiteA's LCTParty list as it is published on
ledger.lct.SiteA.<call> (the EventUserEvent) and as it is kept in KV LEDGER_LCT.
"""
import asyncio
import os
import sys
import time
import uuid

import msgpack
import nats


def event(call, site, kind, party, **extra):
    """A party event: a MessagePack map with string keys, UUIDs as 16-byte bin, ts in µs."""
    body = {
        "v": 1,
        "id": uuid.uuid4().bytes,  # event ids should be version 7; any UUID is accepted
        "call": call.bytes,
        "site": site,
        "ts": time.time_ns() // 1000,
        "kind": kind,
        "party": party.bytes,
    }
    body.update(extra)
    return body


async def main():
    url = os.environ.get("NATS_URL")
    if not url:
        sys.exit("set NATS_URL to the server's URL (`ledger up` prints it)")
    nc = await nats.connect(url)
    js = nc.jetstream()

    config = await js.key_value("LEDGER_CONFIG")
    await config.put("SiteA.TServer.sip-enable-call-info", b"true")
    await config.put("SiteA.extrouter.use-data-from", b"current")
    await asyncio.sleep(0.2)  # options take effect for the next event

    call = uuid.uuid4()
    lists = await nc.subscribe(f"ledger.lct.SiteA.{call}")
    joins = [
        ("SiteA", uuid.uuid4(), "+14155550100", "customer"),
        ("SiteA", uuid.uuid4(), "7001", "agent"),
        ("SiteB", uuid.uuid4(), "7001", "agent"),
    ]
    for site, party, dn, role in joins:
        e = event(call, site, "party_joined", party, dn=dn, role=role)
        subject = f"ledger.ev.{call}.{site}.party_joined"
        ack = await js.publish(
            subject,
            msgpack.packb(e, use_bin_type=True),
            headers={"Nats-Msg-Id": str(uuid.UUID(bytes=e["id"]))},
        )
        print(f"published {role} {dn}@{site} at stream sequence {ack.seq}")

    while True:
        msg = await lists.next_msg(timeout=10)
        lct = msgpack.unpackb(msg.data, raw=False)
        if len(lct["parties"]) == len(joins):
            break
    print(f"EventUserEvent on {msg.subject} (seq {lct['seq']}):")
    for p in lct["parties"]:
        print(f"  {uuid.UUID(bytes=p['party'])}  {p['dn']:<14} {p['location']:<6} {p['role']}")

    kv = await js.key_value("LEDGER_LCT")
    stored = msgpack.unpackb((await kv.get(f"SiteA.{call}")).value, raw=False)
    print(f"KV LEDGER_LCT SiteA.{call}: {len(stored['parties'])} parties, seq {stored['seq']}")
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
