"""The emulated cluster's state: objects with the API server's bookkeeping, and every write recorded.

Pure and synchronous (one lock), so the HTTP layer, the workload simulator and the tests can all
use it. It sets what the server sets (uid, creationTimestamp, a global resourceVersion, generation
bumped only by spec changes), refuses what the server refuses (409 on a stale resourceVersion or a
duplicate name), keeps `/status` and the main resource apart, and keeps every change as a watch
event so a watch can resume from any resourceVersion without losing one.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import random
import string
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from controller.sandbox import errors, kinds, patching, selectors, validation

Obj = dict[str, Any]
ObjKey = tuple[kinds.TypeKey, str, str]  # type, namespace ("" if cluster-scoped), name


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    type_key: kinds.TypeKey
    namespace: str
    object: Obj
    previous: Obj | None


@dataclasses.dataclass(frozen=True)
class WriteRecord:
    """One mutating request as the server answered it: the history tests assert on."""

    seq: int
    at: datetime
    verb: str  # create, update, patch, delete
    plural: str
    namespace: str
    name: str
    subresource: str | None
    code: int
    object: Obj | None
    content_type: str | None = None
    client: str = ""


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# How much history is kept. A real API server compacts etcd too (every 5 minutes by default) and
# answers a watch from a compacted resourceVersion with 410 Expired; clients list again. Kept
# bounded so a sandbox that runs for hours (the demo) holds steady memory.
MAX_WATCH_EVENTS = 20_000
MAX_WRITE_RECORDS = 50_000
ORPHAN = "orphan"


class Store:
    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        max_watch_events: int = MAX_WATCH_EVENTS,
        max_write_records: int = MAX_WRITE_RECORDS,
    ) -> None:
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._types: dict[kinds.TypeKey, kinds.ResourceType] = {}
        self._objects: dict[ObjKey, Obj] = {}
        self._events: collections.deque[WatchEvent] = collections.deque(maxlen=max_watch_events)
        self._listeners: list[Callable[[], None]] = []
        self.revision = 1
        self.writes: collections.deque[WriteRecord] = collections.deque(maxlen=max_write_records)
        self._write_count = 0
        for rtype in kinds.BUILT_IN:
            self.register(rtype)

    # ----- types -------------------------------------------------------------------------------
    def register(self, rtype: kinds.ResourceType) -> None:
        with self._lock:
            self._types[rtype.key] = rtype

    def types(self) -> list[kinds.ResourceType]:
        with self._lock:
            return list(self._types.values())

    def find_type(self, group: str, version: str, plural: str) -> kinds.ResourceType:
        with self._lock:
            rtype = self._types.get((group, version, plural))
        if rtype is None:
            raise errors.ApiError(
                404, "NotFound", f"the server could not find the requested resource ({plural})"
            )
        return rtype

    def type_of(self, obj: Obj) -> kinds.ResourceType:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        with self._lock:
            found = next(
                (
                    t
                    for t in self._types.values()
                    if (t.group, t.version, t.kind) == (group, version, obj["kind"])
                ),
                None,
            )
        if found is None:
            raise errors.ApiError(404, "NotFound", f"no kind {obj['kind']} in {obj['apiVersion']}")
        return found

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from the writing thread) after every change."""
        with self._lock:
            self._listeners.append(listener)

    # ----- reads -------------------------------------------------------------------------------
    def get(self, rtype: kinds.ResourceType, namespace: str, name: str) -> Obj:
        with self._lock:
            obj = self._objects.get(self._key(rtype, namespace, name))
            if obj is None:
                raise errors.not_found(f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural, name)
            return copy.deepcopy(obj)

    def list_objects(
        self,
        rtype: kinds.ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], int]:
        by_labels = selectors.parse_label_selector(label_selector)
        by_fields = selectors.parse_field_selector(field_selector)
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (type_key, obj_namespace, _), obj in sorted(self._objects.items())
                if type_key == rtype.key
                and (namespace is None or obj_namespace == namespace)
                and by_labels(obj)
                and by_fields(obj)
            ]
            return items, self.revision

    def events_after(self, rtype: kinds.ResourceType, revision: int) -> list[WatchEvent]:
        """Changes after `revision`; 410 Expired when history that far back was compacted away."""
        with self._lock:
            oldest = self._events[0].revision if self._events else self.revision + 1
            if len(self._events) == self._events.maxlen and revision < oldest - 1:
                raise errors.ApiError(410, "Expired", f"too old resource version: {revision} ({oldest - 1})")
            # Events are appended in revision order, so a binary search would do; linear is plenty here.
            return [
                event for event in self._events if event.revision > revision and event.type_key == rtype.key
            ]

    def history_sizes(self) -> dict[str, int]:
        """How much the store keeps besides objects: for the steady-memory test and the sandbox."""
        with self._lock:
            return {
                "objects": len(self._objects),
                "watch_events": len(self._events),
                "writes": len(self.writes),
            }

    def all_objects(self) -> list[Obj]:
        """Every stored object, of every type: for the garbage collector."""
        with self._lock:
            return [copy.deepcopy(obj) for obj in self._objects.values()]

    def objects(self, plural: str) -> list[Obj]:
        """Every stored object of a plural, any group: for tests and the simulator."""
        with self._lock:
            return [
                copy.deepcopy(obj) for (key, _, _), obj in sorted(self._objects.items()) if key[2] == plural
            ]

    # ----- writes ------------------------------------------------------------------------------
    def create(self, rtype: kinds.ResourceType, namespace: str, body: Obj, *, client: str = "") -> Obj:
        return self._recorded(
            "create", rtype, namespace, _name_of(body), None, None, client, self._create, body
        )

    def replace(
        self,
        rtype: kinds.ResourceType,
        namespace: str,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        client: str = "",
    ) -> Obj:
        return self._recorded(
            "update", rtype, namespace, name, subresource, None, client, self._replace, body
        )

    def patch(
        self,
        rtype: kinds.ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        client: str = "",
    ) -> Obj:
        return self._recorded(
            "patch",
            rtype,
            namespace,
            name,
            subresource,
            content_type,
            client,
            self._patch,
            content_type,
            body,
        )

    def delete(
        self,
        rtype: kinds.ResourceType,
        namespace: str,
        name: str,
        options: Obj | None = None,
        *,
        client: str = "",
    ) -> Obj:
        return self._recorded(
            "delete", rtype, namespace, name, None, None, client, self._delete, options or {}
        )

    # ----- internals ---------------------------------------------------------------------------
    def _key(self, rtype: kinds.ResourceType, namespace: str, name: str) -> ObjKey:
        return (rtype.key, namespace if rtype.namespaced else "", name)

    def _recorded(
        self,
        verb: str,
        rtype: kinds.ResourceType,
        namespace: str,
        name: str,
        subresource: str | None,
        content_type: str | None,
        client: str,
        operation: Callable[..., tuple[int, Obj]],
        *args: Any,
    ) -> Obj:
        with self._lock:
            self._current = (rtype, namespace if rtype.namespaced else "", name, subresource)
            try:
                code, obj = operation(*args)
            except errors.ApiError as exc:
                self._record(verb, rtype, namespace, name, subresource, exc.code, None, content_type, client)
                raise
            self._record(
                verb, rtype, namespace, obj["metadata"]["name"], subresource, code, obj, content_type, client
            )
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return obj

    def _record(
        self,
        verb: str,
        rtype: kinds.ResourceType,
        namespace: str,
        name: str,
        subresource: str | None,
        code: int,
        obj: Obj | None,
        content_type: str | None,
        client: str,
    ) -> None:
        self._write_count += 1
        self.writes.append(
            WriteRecord(
                seq=self._write_count - 1,
                at=self._clock(),
                verb=verb,
                plural=rtype.plural,
                namespace=namespace,
                name=name,
                subresource=subresource,
                code=code,
                object=copy.deepcopy(obj),
                content_type=content_type,
                client=client,
            )
        )

    def _emit(
        self, kind: str, rtype: kinds.ResourceType, namespace: str, obj: Obj, previous: Obj | None
    ) -> None:
        self._events.append(
            WatchEvent(self.revision, kind, rtype.key, namespace, copy.deepcopy(obj), copy.deepcopy(previous))
        )

    def _bump(self, obj: Obj) -> None:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)

    def _generated_name(self, prefix: str) -> str:
        alphabet = string.ascii_lowercase + string.digits
        return prefix + "".join(self._random.choice(alphabet) for _ in range(5))

    def _create(self, body: Obj) -> tuple[int, Obj]:
        rtype, namespace, _, _ = self._current
        if not isinstance(body, dict):
            raise errors.ApiError(400, "BadRequest", "the body of a create must be an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            body_namespace = meta.get("namespace")
            if body_namespace and namespace and body_namespace != namespace:
                raise errors.ApiError(
                    400,
                    "BadRequest",
                    f"the namespace of the object ({body_namespace}) does not match the request",
                )
            meta["namespace"] = namespace or body_namespace or "default"
            namespace = meta["namespace"]
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise errors.ApiError(
                    422, "Invalid", "metadata.name: Required value: name or generateName is required"
                )
            for _ in range(100):
                meta["name"] = self._generated_name(meta["generateName"])
                if self._key(rtype, namespace, meta["name"]) not in self._objects:
                    break
        validation.validate_write(rtype, obj)
        validation.validate_custom_resource(rtype, obj)
        key = self._key(rtype, namespace, meta["name"])
        if key in self._objects:
            raise errors.already_exists(rtype.plural, meta["name"])
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        if rtype.status_subresource:
            obj.pop("status", None)  # status is not settable on create when it is a subresource
        meta["uid"] = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        meta["creationTimestamp"] = _timestamp(self._clock())
        meta["generation"] = 1
        for server_field in ("deletionTimestamp", "managedFields"):
            meta.pop(server_field, None)
        self._bump(obj)
        self._objects[key] = obj
        self._emit("ADDED", rtype, namespace, obj, None)
        if rtype.plural == "customresourcedefinitions":
            for learned in kinds.types_from_crd(obj):
                self._types[learned.key] = learned
        return 201, copy.deepcopy(obj)

    def _existing(self) -> tuple[kinds.ResourceType, str, str, str | None, Obj]:
        rtype, namespace, name, subresource = self._current
        current = self._objects.get(self._key(rtype, namespace, name))
        if current is None:
            raise errors.not_found(rtype.plural, name)
        if subresource not in (None, "status"):
            raise errors.ApiError(
                404, "NotFound", f"subresource {subresource!r} is not served by the emulator"
            )
        if subresource == "status" and not rtype.status_subresource:
            raise errors.ApiError(404, "NotFound", f"{rtype.plural} has no status subresource")
        return rtype, namespace, name, subresource, current

    def _store_update(self, candidate: Obj, *, expected_version: str | None) -> tuple[int, Obj]:
        rtype, namespace, name, subresource, current = self._existing()
        meta = current["metadata"]
        if expected_version and expected_version != meta["resourceVersion"]:
            raise errors.conflict(
                rtype.plural,
                name,
                "the object has been modified; please apply your changes to the latest version",
            )
        if subresource == "status":
            merged = copy.deepcopy(current)
            if "status" in candidate:
                merged["status"] = candidate["status"]
            else:
                merged.pop("status", None)
        else:
            merged = copy.deepcopy(candidate)
            if rtype.status_subresource:  # the main resource never changes status
                if "status" in current:
                    merged["status"] = copy.deepcopy(current["status"])
                else:
                    merged.pop("status", None)
        new_meta = merged.setdefault("metadata", {})
        if new_meta.get("name", name) != name:
            raise errors.ApiError(
                400, "BadRequest", f"metadata.name {new_meta.get('name')!r} does not match {name!r}"
            )
        for server_field in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "namespace",
            "name",
        ):
            if server_field in meta:
                new_meta[server_field] = meta[server_field]
            else:
                new_meta.pop(server_field, None)
        merged["apiVersion"], merged["kind"] = rtype.api_version, rtype.kind
        if rtype.spec_of(merged) != rtype.spec_of(current):
            new_meta["generation"] = int(meta.get("generation", 1)) + 1
        new_meta["resourceVersion"] = meta["resourceVersion"]
        if merged == current:
            return 200, copy.deepcopy(current)  # a no-op write changes nothing, not even the version
        if subresource is None:
            validation.validate_write(rtype, merged)
        validation.validate_custom_resource(rtype, merged)
        key = self._key(rtype, namespace, name)
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            del self._objects[key]
            self._bump(merged)
            self._emit("DELETED", rtype, namespace, merged, current)
            return 200, copy.deepcopy(merged)
        self._bump(merged)
        self._objects[key] = merged
        self._emit("MODIFIED", rtype, namespace, merged, current)
        return 200, copy.deepcopy(merged)

    def _replace(self, body: Obj) -> tuple[int, Obj]:
        if not isinstance(body, dict):
            raise errors.ApiError(400, "BadRequest", "the body of an update must be an object")
        return self._store_update(body, expected_version=body.get("metadata", {}).get("resourceVersion"))

    def _patch(self, content_type: str, body: Any) -> tuple[int, Obj]:
        rtype, _, _, _, current = self._existing()
        patched = patching.apply_patch(current, content_type, body, built_in=rtype.built_in)
        # A resourceVersion in the patch is a precondition: it must still be the current one.
        return self._store_update(
            patched, expected_version=patched.get("metadata", {}).get("resourceVersion")
        )

    def _delete(self, options: Obj) -> tuple[int, Obj]:
        rtype, namespace, name, _, current = self._existing()
        preconditions = options.get("preconditions") or {}
        if preconditions.get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
            raise errors.conflict(rtype.plural, name, "the resourceVersion precondition failed")
        if preconditions.get("uid") not in (None, current["metadata"]["uid"]):
            raise errors.conflict(rtype.plural, name, "the UID precondition failed")
        key = self._key(rtype, namespace, name)
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else None)
        if policy == "Orphan" and ORPHAN not in (current["metadata"].get("finalizers") or []):
            # The API server hands the object to the garbage collector, which removes its dependents'
            # ownerReferences and then this finalizer (`collect_garbage`).
            marked = copy.deepcopy(current)
            marked["metadata"]["finalizers"] = [*(current["metadata"].get("finalizers") or []), ORPHAN]
            marked["metadata"].setdefault("deletionTimestamp", _timestamp(self._clock()))
            self._bump(marked)
            self._objects[key] = marked
            self._emit("MODIFIED", rtype, namespace, marked, current)
            return 200, copy.deepcopy(marked)
        if current["metadata"].get("finalizers"):
            if not current["metadata"].get("deletionTimestamp"):
                marked = copy.deepcopy(current)
                marked["metadata"]["deletionTimestamp"] = _timestamp(self._clock())
                self._bump(marked)
                self._objects[key] = marked
                self._emit("MODIFIED", rtype, namespace, marked, current)
                return 200, copy.deepcopy(marked)
            return 200, copy.deepcopy(current)
        del self._objects[key]
        gone = copy.deepcopy(current)
        self._bump(gone)
        self._emit("DELETED", rtype, namespace, gone, current)
        if rtype.plural == "customresourcedefinitions":
            for learned in kinds.types_from_crd(current):
                self._types.pop(learned.key, None)
        return 200, gone


def collect_garbage(cluster: Store) -> int:
    """The garbage collector's part for orphan deletion: dependents of an object being deleted with
    the `orphan` finalizer lose their ownerReference to it, then the finalizer goes. How many it
    orphaned. (Background and foreground cascades are not emulated: nothing here relies on them.)"""
    orphaned = 0
    for owner in [o for o in cluster.all_objects() if ORPHAN in (o["metadata"].get("finalizers") or [])]:
        uid = owner["metadata"]["uid"]
        for dependent in cluster.all_objects():
            refs = dependent["metadata"].get("ownerReferences") or []
            if not any(ref.get("uid") == uid for ref in refs):
                continue
            kept = [ref for ref in refs if ref.get("uid") != uid]
            patch = {"metadata": {"ownerReferences": kept or None}}
            rtype, namespace = cluster.type_of(dependent), dependent["metadata"].get("namespace", "")
            try:
                cluster.patch(
                    rtype,
                    namespace,
                    dependent["metadata"]["name"],
                    "application/merge-patch+json",
                    patch,
                    client=GARBAGE_COLLECTOR,
                )
                orphaned += 1
            except errors.ApiError:
                pass  # deleted meanwhile: nothing to orphan
        finalizers = [f for f in owner["metadata"]["finalizers"] if f != ORPHAN]
        rtype = cluster.type_of(owner)
        try:
            cluster.patch(
                rtype,
                owner["metadata"].get("namespace", ""),
                owner["metadata"]["name"],
                "application/merge-patch+json",
                {"metadata": {"finalizers": finalizers or None}},
                client=GARBAGE_COLLECTOR,
            )
        except errors.ApiError:
            pass  # gone meanwhile
    return orphaned


GARBAGE_COLLECTOR = "sandbox-garbage-collector"


def _name_of(body: Any) -> str:
    if isinstance(body, dict):
        meta = body.get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or "")
    return ""
