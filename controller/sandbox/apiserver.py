"""The emulated Kubernetes API server: kmock's HTTP server and discovery over our `Store`.

kmock (by Kopf's author) gives the HTTP serving, request parsing into group/version/plural/
namespace/name, and the discovery documents. Its own object emulator is a plain dict merge, so
every resource request is answered here instead, by the store that carries the API server's
semantics; see docs/testing.md for what is and is not reproduced.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from typing import Any

import aiohttp.web
import attrs
import kmock

from controller.sandbox import errors, kinds, openapi, protobuf, rbac, selectors, store, tables
from controller.sandbox import faults as faults_

_VERB_BY_ACTION = {
    kmock.action.LIST: "list",
    kmock.action.WATCH: "watch",
    kmock.action.FETCH: "get",
    kmock.action.CREATE: "create",
    kmock.action.UPDATE: "patch",
    kmock.action.DELETE: "delete",
}
MAX_WATCH_SECONDS = 1800.0
KEPT_REQUESTS = 100  # of kmock's own request log, for debugging a failed test


class RequestCounts:
    """How many requests each client sent, by method and resource: a few counters, never a log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def count(self, method: str, plural: str | None, client: str) -> None:
        with self._lock:
            self._counts[(client, method, plural or "")] += 1

    def total(self, client_prefix: str = "") -> int:
        """Requests so far from clients whose User-Agent starts with `client_prefix`."""
        with self._lock:
            return sum(n for (client, _, _), n in self._counts.items() if client.startswith(client_prefix))

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)


@attrs.frozen
class Access:
    """One kind of call, as Kubernetes RBAC sees it: who, which verb, on what, and where."""

    client: str  # the authenticated user (a ServiceAccount), else the User-Agent
    verb: str  # get, list, watch, create, update, patch, delete
    group: str  # "" for the core group
    resource: str  # the plural, with "/<subresource>" for status, scale, …
    namespaced: bool  # False: a cluster-wide call (a list or watch across namespaces, or a cluster resource)


class AccessRecord:
    """The distinct calls each client made — the set an RBAC Role must allow, and no more than
    that: a set (bounded by the API's shape), never a log of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[Access] = set()

    def note(self, access: Access) -> None:
        with self._lock:
            self._seen.add(access)

    def snapshot(self, client_prefix: str = "") -> frozenset[Access]:
        with self._lock:
            return frozenset(a for a in self._seen if a.client.startswith(client_prefix))


@attrs.define(kw_only=True)
class EmulatedApiServer(kmock.KubernetesScaffold):
    store: store.Store = attrs.field(factory=store.Store)
    faults: faults_.FaultInjector = attrs.field(factory=faults_.FaultInjector)
    requests: RequestCounts = attrs.field(factory=lambda: RequestCounts())
    access: AccessRecord = attrs.field(factory=lambda: AccessRecord())
    denied: AccessRecord = attrs.field(factory=lambda: AccessRecord())  # calls RBAC refused (403)
    _wakeups: set[asyncio.Event] = attrs.field(factory=set, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _closing: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store.subscribe(self._on_change)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock reads `/api/v1/namespaces[/NAME]` as a namespace prefix with no resource (and fails on
        # the bare collection); the Namespace resource gets an internal plural instead.
        if raw_request.rel_url.path.startswith(openapi.PREFIX):
            document = openapi.build_document(self.store.types(), raw_request.rel_url.path)
            if document is None:
                return aiohttp.web.json_response(
                    errors.ApiError(404, "NotFound", "no such OpenAPI document").as_status(), status=404
                )
            return aiohttp.web.json_response(document)
        aliased = _alias_namespace_path(raw_request.rel_url.path)
        if aliased is not None:
            url = raw_request.rel_url
            raw_request = raw_request.clone(rel_url=url.with_path(aliased).with_query(url.query))
        if PROTOBUF in raw_request.headers.get("Content-Type", ""):
            # kubectl's typed `create` commands send protobuf, which kmock cannot read as text: the
            # body is turned into JSON here, before kmock parses the request.
            try:
                decoded = protobuf.decode(await raw_request.read())
            except errors.ApiError as exc:
                return aiohttp.web.json_response(exc.as_status(), status=exc.code)
            raw_request._read_bytes = json.dumps(decoded).encode()  # aiohttp's cache of the read body
        return await super().__call__(raw_request)

    # ----- watch wake-ups (the store may be written from another thread) ------------------------
    def _on_change(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for wakeup in list(self._wakeups):
            wakeup.set()

    def end_watches(self) -> None:
        """Shutting down: every open watch ends now. (A watch whose client died unnoticed would
        otherwise hold the server's graceful shutdown until its timeout.)"""
        self._closing = True
        self._wake_all()

    # ----- dispatch ----------------------------------------------------------------------------
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._loop = asyncio.get_running_loop()
        # kmock keeps every request it served for assertions; a sandbox that runs for hours must not.
        del self._requests[:-KEPT_REQUESTS]
        self.requests.count(
            request.method,
            request.resource.plural if request.resource else None,
            request.headers.get("User-Agent", ""),
        )
        resource = request.resource
        if resource is None or resource.plural is None:
            self._publish_discovery()
            try:
                return await super()._handle(request)
            except kmock.KubernetesEndpointNotFoundError:
                # A path the server does not serve (e.g. discovery of a group it lacks): 404, as a real one.
                missing = errors.ApiError(404, "NotFound", "the server could not find the requested resource")
                return aiohttp.web.json_response(missing.as_status(), status=404)
        verb = (
            "update"
            if request.method == kmock.method.PUT
            else _VERB_BY_ACTION.get(request.action, "")
            if request.action
            else ""
        )
        client = request.headers.get("User-Agent", "")
        try:
            user = rbac.authenticate(request.headers.get("Authorization"))
        except rbac.UnauthenticatedError as exc:
            status = errors.ApiError(401, "Unauthorized", str(exc)).as_status()
            return aiohttp.web.json_response(status, status=401)
        try:
            plural = NAMESPACES_ALIAS.get(resource.plural, resource.plural)
            rtype = self.store.find_type(resource.group or "", resource.version or "", plural)
            name = request.name or _body_name(request)
            subresource = f"/{request.subresource}" if request.subresource else ""
            namespace = request.namespace if rtype.namespaced and request.namespace else None
            access = Access(user or client, verb, rtype.group, rtype.plural + subresource, bool(namespace))
            self.access.note(access)
            if user is not None:
                asked = rbac.Request(verb, rtype.group, rtype.plural + subresource, namespace, request.name)
                if not self._policy().allows(user, asked):
                    self.denied.note(access)
                    raise errors.ApiError(403, "Forbidden", rbac.describe_denial(user, asked))
            fault = self.faults.take(verb, rtype.plural, name, request.subresource, client)
            if fault is not None:
                await self._inject(fault)
            return await self._serve(request, rtype, verb, client)
        except errors.ApiError as exc:
            return aiohttp.web.json_response(exc.as_status(), status=exc.code)

    def _policy(self) -> rbac.Policy:
        objects: list[dict[str, Any]] = []
        for rtype in self.store.types():
            if rtype.group == rbac.GROUP:
                objects.extend(self.store.list_objects(rtype, None, None, None)[0])
        return rbac.Policy.from_objects(objects)

    async def _inject(self, fault: faults_.FaultRule) -> None:
        if fault.hang:
            await asyncio.sleep(fault.hang)  # the fault itself is a slow server; nothing waits on it in tests
            raise errors.ApiError(504, "Timeout", "injected: the server did not answer in time")
        reason = {409: "Conflict", 429: "TooManyRequests", 503: "ServiceUnavailable"}.get(
            fault.code, "InternalError"
        )
        raise errors.ApiError(fault.code, reason, f"injected fault ({fault.code})")

    async def _serve(
        self, request: kmock.Request, rtype: kinds.ResourceType, verb: str, client: str
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        namespace = request.namespace if rtype.namespaced else ""
        accept = request.headers.get("Accept", "")
        include = params.get("includeObject", "PartialObjectMetadata")
        if verb == "list":
            items, revision = self.store.list_objects(
                rtype,
                namespace if rtype.namespaced else None,
                params.get("labelSelector"),
                params.get("fieldSelector"),
            )
            if tables.wants_table(accept):
                return _json(
                    tables.build_table(rtype, items, revision, include_object=include, now=tables.utcnow())
                )
            return _json(
                {
                    "kind": f"{rtype.kind}List",
                    "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(revision)},
                    "items": items,
                }
            )
        if verb == "watch":
            return await self._watch(request, rtype, namespace if rtype.namespaced else None)
        if request.subresource == "scale" and rtype.plural in SCALABLE:
            return _json(self._scale(request, rtype, verb, namespace or "", client))
        if verb == "get":
            obj = self.store.get(rtype, namespace or "", request.name or "")
            if tables.wants_table(accept):
                table = tables.build_table(
                    rtype, [obj], self.store.revision, include_object=include, now=tables.utcnow()
                )
                return _json(table)
            return _json(obj)
        body = _body(request)
        if verb == "create":
            if request.subresource is not None:
                raise errors.ApiError(
                    405, "MethodNotAllowed", f"create on {request.subresource} is not served"
                )
            return _json(self.store.create(rtype, namespace or "", body, client=client), status=201)
        name = request.name or ""
        if verb == "update":
            return _json(
                self.store.replace(
                    rtype, namespace or "", name, body, subresource=request.subresource, client=client
                )
            )
        if verb == "patch":
            content_type = request.headers.get("Content-Type", "")
            return _json(
                self.store.patch(
                    rtype,
                    namespace or "",
                    name,
                    content_type,
                    body,
                    subresource=request.subresource,
                    client=client,
                )
            )
        if verb == "delete":
            options = dict(body or {})
            for option in ("propagationPolicy", "orphanDependents"):
                if option in params and option not in options:
                    options[option] = (
                        params[option] if option != "orphanDependents" else params[option] == "true"
                    )
            return _json(self.store.delete(rtype, namespace or "", name, options, client=client))
        raise errors.ApiError(405, "MethodNotAllowed", f"{request.method} is not served on {rtype.plural}")

    def _scale(
        self, request: kmock.Request, rtype: kinds.ResourceType, verb: str, namespace: str, client: str
    ) -> dict[str, Any]:
        """The `/scale` subresource of Deployments (autoscaling/v1 Scale), as `kubectl scale` uses it."""
        name = request.name or ""
        if verb in ("patch", "update"):
            body = _body(request) or {}
            replicas = (body.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise errors.ApiError(
                    422, "Invalid", "spec.replicas: Invalid value: must be a whole number ≥ 0"
                )
            self.store.patch(
                rtype,
                namespace,
                name,
                "application/merge-patch+json",
                {"spec": {"replicas": replicas}},
                client=client,
            )
        elif verb != "get":
            raise errors.ApiError(405, "MethodNotAllowed", f"{verb} is not served on {rtype.plural}/scale")
        obj = self.store.get(rtype, namespace, name)
        labels = ((obj["spec"].get("selector") or {}).get("matchLabels")) or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")},
            "spec": {"replicas": int(obj["spec"].get("replicas", 1))},
            "status": {
                "replicas": int((obj.get("status") or {}).get("replicas", 0)),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            },
        }

    async def _watch(
        self, request: kmock.Request, rtype: kinds.ResourceType, namespace: str | None
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        label_selector = params.get("labelSelector")
        field_selector = params.get("fieldSelector")
        if request.name:
            name_term = f"metadata.name={request.name}"
            field_selector = f"{field_selector},{name_term}" if field_selector else name_term
        by_labels = selectors.parse_label_selector(label_selector)
        by_fields = selectors.parse_field_selector(field_selector)
        loop = asyncio.get_running_loop()
        timeout = min(float(params.get("timeoutSeconds", MAX_WATCH_SECONDS)), MAX_WATCH_SECONDS)
        deadline = loop.time() + timeout
        since = params.get("resourceVersion", "")
        initial = params.get("sendInitialEvents") == "true"

        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        assert request._raw_request is not None  # kmock keeps it for every served request
        await response.prepare(request._raw_request)

        as_table = tables.wants_table(request.headers.get("Accept", ""))
        include = params.get("includeObject", "PartialObjectMetadata")

        async def send(event_type: str, obj: dict[str, Any]) -> None:
            if as_table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                # `kubectl get -w` asks for Tables: each event carries a one-row Table.
                revision = int(obj["metadata"].get("resourceVersion", 0))
                obj = tables.build_table(rtype, [obj], revision, include_object=include, now=tables.utcnow())
            await response.write(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        try:
            if not since or since == "0" or initial:
                # "Start from any version": the current state as ADDED events, then changes after it.
                items, last = self.store.list_objects(rtype, namespace, label_selector, field_selector)
                for obj in items:
                    await send("ADDED", obj)
                if initial:
                    marker = {
                        "metadata": {
                            "resourceVersion": str(last),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        }
                    }
                    await send("BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.api_version, **marker})
            else:
                try:
                    last = int(since)
                except ValueError as exc:
                    raise errors.ApiError(400, "BadRequest", f"invalid resourceVersion {since!r}") from exc
            while (remaining := deadline - loop.time()) > 0 and not self._closing:
                wakeup.clear()  # cleared before reading, so a write after the read still wakes us
                try:
                    events = self.store.events_after(rtype, last)
                except errors.ApiError as exc:
                    # As the API server does for a compacted resourceVersion: an ERROR event, then the
                    # end of the stream; the client lists again.
                    await send("ERROR", exc.as_status())
                    break
                for event in events:
                    last = event.revision
                    if namespace is not None and event.namespace != namespace:
                        continue
                    now_in = event.type != "DELETED" and by_labels(event.object) and by_fields(event.object)
                    was_in = (
                        event.previous is not None and by_labels(event.previous) and by_fields(event.previous)
                    )
                    if event.type == "DELETED":
                        now_in, was_in = (
                            False,
                            was_in or (by_labels(event.object) and by_fields(event.object)),
                        )
                    if now_in and was_in:
                        await send("MODIFIED", event.object)
                    elif now_in:
                        await send("ADDED", event.object)
                    elif was_in:
                        await send("DELETED", event.object)
                if not events:
                    try:
                        await asyncio.wait_for(wakeup.wait(), timeout=remaining)
                    except TimeoutError:
                        break
        except ConnectionError:
            # The client went away (a killed controller): the watch simply ends.
            self._wakeups.discard(wakeup)
            return response
        except asyncio.CancelledError:
            self._wakeups.discard(wakeup)
            raise
        self._wakeups.discard(wakeup)
        await response.write_eof()
        return response

    # ----- discovery (kmock routes the paths; the documents come from the store's types) --------
    def _publish_discovery(self) -> None:
        """Mirror the store's types into kmock's table, which its `/` path listing reads."""
        for key in list(self.resources):
            del self.resources[key]
        for rtype in self.store.types():
            self.resources[kmock.resource(rtype.group, rtype.version, rtype.plural)] = kmock.ResourceInfo(
                namespaced=rtype.namespaced, kind=rtype.kind, verbs=set(rtype.verbs)
            )

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rtype in self.store.types():
            if rtype.group and rtype.version not in groups.setdefault(rtype.group, []):
                groups[rtype.group].append(rtype.version)
        return groups

    @staticmethod
    def _group_document(group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    async def _serve_api(self, request: kmock.Request) -> dict[str, Any]:
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}

    async def _serve_apis(self, request: kmock.Request) -> dict[str, Any]:
        groups = [self._group_document(group, versions) for group, versions in sorted(self._groups().items())]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    async def _serve_group(self, request: kmock.Request) -> dict[str, Any]:
        group = request.resource.group if request.resource is not None else None
        versions = self._groups().get(group or "")
        if not versions:
            raise kmock.KubernetesResourceNotFoundError()
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_document(group or "", versions)}

    async def _serve_version(self, request: kmock.Request) -> dict[str, Any]:
        group = request.resource.group if request.resource is not None else ""
        version = request.resource.version if request.resource is not None else ""
        served = [t for t in self.store.types() if (t.group, t.version) == (group, version)]
        if not served:
            raise kmock.KubernetesResourceNotFoundError()
        resources: list[dict[str, Any]] = []
        for rtype in sorted(served, key=lambda t: t.plural):
            resources.append(
                {
                    "name": rtype.plural,
                    "singularName": rtype.singular,
                    "namespaced": rtype.namespaced,
                    "kind": rtype.kind,
                    "verbs": list(rtype.verbs),
                    "shortNames": list(rtype.short_names),
                    "categories": list(rtype.categories),
                }
            )
            if rtype.plural in SCALABLE:
                resources.append(
                    {
                        "name": f"{rtype.plural}/scale",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if rtype.status_subresource:
                resources.append(
                    {
                        "name": f"{rtype.plural}/status",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "kind": rtype.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        group_version = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }


PROTOBUF = "application/vnd.kubernetes.protobuf"
SCALABLE = frozenset({"deployments"})
NAMESPACES_ALIAS = {"x-namespaces": "namespaces"}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def _alias_namespace_path(path: str) -> str | None:
    """`/api/v1/namespaces[/NAME[/status|finalize]]` → the same under the internal plural; else None."""
    parts = path.strip("/").split("/")
    if parts[:3] != ["api", "v1", "namespaces"]:
        return None
    if len(parts) in (3, 4) or (len(parts) == 5 and parts[4] in _NAMESPACE_SUBRESOURCES):
        return "/" + "/".join(["api", "v1", "x-namespaces", *parts[3:]])
    return None


def _body(request: kmock.Request) -> Any:
    if not request.body:
        return None
    try:
        return json.loads(request.body)
    except ValueError as exc:
        raise errors.ApiError(400, "BadRequest", f"the request body is not JSON: {exc}") from exc


def _body_name(request: kmock.Request) -> str:
    if request.action == kmock.action.CREATE and request.body:
        try:
            data = json.loads(request.body)
        except ValueError:
            return ""
        if isinstance(data, dict):
            return str((data.get("metadata") or {}).get("name") or "")
    return ""


def _json(payload: dict[str, Any], status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.json_response(payload, status=status)
