#!/usr/bin/env python3
"""Checks the golden vectors with an independent MessagePack implementation (msgpack-python).

For every vector in vectors.json: the file decodes to exactly the described fields, in the
described key order, with UUIDs as 16-byte binaries; and a canonical vector re-encoded by
msgpack-python gives back the same bytes, so any conforming encoder writes what ours writes.
Prints 'N passed, N failed' and exits non-zero on any failure.
"""
import json
import pathlib
import sys
import uuid

try:
    import msgpack
except ImportError:
    sys.exit("msgpack is not installed: run `./dev setup` (it installs the pinned tools/requirements.txt into .tools/py)")

HERE = pathlib.Path(__file__).resolve().parent


def as_json(value):
    """The decoded value in the JSON form of vectors.json: 16-byte binaries as UUID text."""
    if isinstance(value, bytes):
        if len(value) != 16:
            raise ValueError(f"binary of {len(value)} bytes: only UUIDs are binary in this contract")
        return str(uuid.UUID(bytes=value))
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value


def key_orders(value, path="$"):
    """Every map's key order, so that the order on the wire is checked, not only the content."""
    if isinstance(value, dict):
        yield path, list(value.keys())
        for k, v in value.items():
            yield from key_orders(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from key_orders(v, f"{path}[{i}]")


def check(vector):
    data = (HERE / vector["file"]).read_bytes()
    try:
        decoded = msgpack.unpackb(data, raw=False, strict_map_key=True)
        extra = b""
    except msgpack.ExtraData as e:
        # msgpack-python refuses bytes after the value too; the vector says how many there are.
        decoded, extra = e.unpacked, e.extra
    if len(extra) != vector.get("trailing_bytes", 0):
        return f"{len(extra)} bytes after the map, {vector.get('trailing_bytes', 0)} described"
    if not isinstance(decoded, dict):
        return "not a map"
    got = as_json(decoded)
    if got != vector["fields"]:
        return f"fields differ:\n  got      {got}\n  expected {vector['fields']}"
    if dict(key_orders(got)) != dict(key_orders(vector["fields"])):
        return "key order differs"
    if vector["canonical"]:
        again = msgpack.packb(decoded, use_bin_type=True)
        if again != data:
            return "msgpack-python re-encodes it to other bytes"
    return None


def main():
    spec = json.loads((HERE / "vectors.json").read_text(), object_pairs_hook=dict)
    passed = failed = 0
    for vector in spec["vectors"]:
        problem = check(vector)
        if problem:
            failed += 1
            print(f"FAIL {vector['file']}: {problem}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
