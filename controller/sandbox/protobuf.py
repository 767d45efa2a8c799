"""Read the protobuf bodies `kubectl create configmap|secret|namespace` send, into JSON objects.

kubectl's typed commands encode built-in kinds as Kubernetes protobuf (`k8s\\0` + runtime.Unknown)
and do not fall back to JSON. The emulator reads the wire format of the few kinds a newcomer creates
that way; anything else is refused with 415 and a hint to use `kubectl apply -f`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from controller.sandbox import errors

MAGIC = b"k8s\x00"
Fields = list[tuple[int, int | bytes]]  # (field number, varint or length-delimited bytes)


def _varint(data: bytes, position: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire == 2:
            length, position = _varint(data, position)
            yield number, data[position : position + length]
            position += length
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _map(entries: list[int | bytes], as_bytes: bool = False) -> dict[str, str]:
    result = {}
    for entry in entries:
        assert isinstance(entry, bytes)
        parts = dict(_fields(entry))
        value = parts.get(2, b"")
        text = base64.b64encode(value).decode() if as_bytes and isinstance(value, bytes) else _text(value)
        result[_text(parts.get(1, b""))] = text
    return result


def _repeated(data: bytes) -> dict[int, list[int | bytes]]:
    grouped: dict[int, list[int | bytes]] = {}
    for number, value in _fields(data):
        grouped.setdefault(number, []).append(value)
    return grouped


def _metadata(data: bytes) -> dict[str, Any]:
    fields = _repeated(data)
    meta: dict[str, Any] = {}
    for number, key in ((1, "name"), (2, "generateName"), (3, "namespace")):
        if number in fields:
            meta[key] = _text(fields[number][0])
    if 11 in fields:
        meta["labels"] = _map(fields[11])
    if 12 in fields:
        meta["annotations"] = _map(fields[12])
    return meta


def _configmap(fields: dict[int, list[int | bytes]]) -> dict[str, Any]:
    body: dict[str, Any] = {"data": _map(fields.get(2, []))}
    if 3 in fields:
        body["binaryData"] = _map(fields[3], as_bytes=True)
    if 4 in fields:
        body["immutable"] = bool(fields[4][0])
    return body


def _secret(fields: dict[int, list[int | bytes]]) -> dict[str, Any]:
    body: dict[str, Any] = {"data": _map(fields.get(2, []), as_bytes=True)}
    if 3 in fields:
        body["type"] = _text(fields[3][0])
    if 4 in fields:
        body["stringData"] = _map(fields[4])
    return body


_KINDS: dict[str, Callable[[dict[int, list[int | bytes]]], dict[str, Any]]] = {
    "ConfigMap": _configmap,
    "Secret": _secret,
    "Namespace": lambda fields: {},
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded ConfigMap, Secret or Namespace; 415 for anything else."""
    try:
        if not body.startswith(MAGIC):
            raise ValueError("no k8s protobuf envelope")
        unknown = _repeated(body[len(MAGIC) :])
        envelope = unknown.get(1, [b""])[0]
        assert isinstance(envelope, bytes)
        type_meta = _repeated(envelope)
        api_version, kind = _text(type_meta.get(1, [b""])[0]), _text(type_meta.get(2, [b""])[0])
        raw = unknown.get(2, [b""])[0]
        assert isinstance(raw, bytes)
        if kind not in _KINDS:
            raise errors.ApiError(
                415,
                "UnsupportedMediaType",
                f"the emulated cluster reads protobuf only for {', '.join(sorted(_KINDS))}: "
                f"send {kind} as JSON (kubectl apply -f)",
            )
        fields = _repeated(raw)
        meta_bytes = fields.get(1, [b""])[0]
        assert isinstance(meta_bytes, bytes)
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": _metadata(meta_bytes),
            **_KINDS[kind](fields),
        }
    except (ValueError, AssertionError, UnicodeDecodeError) as exc:
        raise errors.ApiError(400, "BadRequest", f"the protobuf body cannot be read: {exc}") from exc
