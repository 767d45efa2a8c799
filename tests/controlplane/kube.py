"""What a test does to the real cluster as its administrator: read, write and wait, by resource name.

A thin client over the API server's REST interface (urllib with the administrator's certificate),
so a test says `kube.objects("deployments", ns)` as it would say `kubectl get deployments -n ns`.
Resources are found by discovery, as kubectl finds them, and re-discovered when a name is new (a CRD
installed since).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "modelrelease-tests"
MAX_RETRIES = 10


class KubeError(RuntimeError):
    """An answer other than 2xx: the code, the reason and the server's message."""

    def __init__(self, method: str, path: str, code: int, body: str) -> None:
        try:
            status = json.loads(body)
        except ValueError:
            status = {"message": body}
        self.code = code
        self.reason = str(status.get("reason", ""))
        self.message = str(status.get("message", body))
        super().__init__(f"{method} {path}: {code} {self.reason}: {self.message}")


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    listable: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        where = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        parts = [prefix + where, self.plural, name, subresource]
        return "/".join(part for part in parts if part)


class Kube:
    def __init__(self, url: str, tls: ssl.SSLContext) -> None:
        self.url = url
        # Built once, with no proxies: urlopen would build an opener per call from the environment,
        # and a thread calling while pytest rewrites os.environ (PYTEST_CURRENT_TEST) fails mid-read.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
        )
        self._resources: dict[str, list[Resource]] = {}

    # ----- raw calls ----------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        for attempt in itertools.count(1):
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with self._opener.open(request, timeout=timeout) as answer:
                    return json.loads(answer.read() or b"null")
            except urllib.error.HTTPError as error:
                # 429 with Retry-After is the server asking to be asked again (a new CRD's storage
                # still initialising; priority and fairness): client-go retries it up to 10 times.
                retry_after = error.headers.get("Retry-After")
                if error.code == 429 and retry_after and attempt < MAX_RETRIES:
                    error.close()
                    time.sleep(min(float(retry_after), 1.0))
                    continue
                raise KubeError(method, path, error.code, error.read().decode(errors="replace")) from None
        raise AssertionError("unreachable")

    # ----- discovery ----------------------------------------------------------------------------
    def resource(self, plural: str, group: str | None = None) -> Resource:
        """The served resource called `plural` (in `group` when given; else the only one so called)."""
        for refresh in (False, True):
            if refresh or not self._resources:
                self._discover()
            found = [r for r in self._resources.get(plural, []) if group is None or r.group == group]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise KubeError("GET", "/apis", 0, f"{plural} is served by several groups: name one")
        raise KubeError("GET", "/apis", 404, f"no resource {plural!r} is served")

    def resource_of(self, obj: Obj) -> Resource:
        group, _, version = obj["apiVersion"].rpartition("/")
        for refresh in (False, True):
            if refresh or not self._resources:
                self._discover()
            for candidates in self._resources.values():
                for r in candidates:
                    if (r.group, r.version, r.kind) == (group, version, obj["kind"]):
                        return r
        raise KubeError("GET", "/apis", 404, f"no kind {obj['kind']} in {obj['apiVersion']} is served")

    def namespaced_resources(self) -> list[Resource]:
        """Every namespaced resource served that can be listed (discovery's preferred versions)."""
        self._discover()
        return [
            r for candidates in self._resources.values() for r in candidates if r.namespaced and r.listable
        ]

    def _discover(self) -> None:
        found: dict[str, list[Resource]] = {}
        versions = [("", version) for version in self.call("GET", "/api")["versions"]]
        for group in self.call("GET", "/apis")["groups"]:
            versions.append((group["name"], group["preferredVersion"]["version"]))
        for group_name, version in versions:
            prefix = f"/apis/{group_name}/{version}" if group_name else f"/api/{version}"
            for item in self.call("GET", prefix)["resources"]:
                if "/" in item["name"]:
                    continue  # a subresource
                resource = Resource(
                    group_name,
                    version,
                    item["name"],
                    item["kind"],
                    item["namespaced"],
                    "list" in item["verbs"],
                )
                found.setdefault(item["name"], []).append(resource)
        self._resources = found

    # ----- objects ------------------------------------------------------------------------------
    def get(self, plural: str, namespace: str, name: str, *, group: str | None = None) -> Obj:
        result: Obj = self.call("GET", self.resource(plural, group).path(namespace, name))
        return result

    def objects(self, plural: str, namespace: str = "", *, group: str | None = None) -> list[Obj]:
        items: list[Obj] = self.call("GET", self.resource(plural, group).path(namespace))["items"]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def create(self, obj: Obj, namespace: str = "") -> Obj:
        resource = self.resource_of(obj)
        where = obj.get("metadata", {}).get("namespace") or namespace
        result: Obj = self.call("POST", resource.path(where), obj)
        return result

    def apply(self, obj: Obj, namespace: str = "") -> Obj:
        """Server-side apply, forced: the object as given, whoever wrote it before."""
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        path = resource.path(meta.get("namespace") or namespace, meta["name"])
        result: Obj = self.call(
            "PATCH",
            path,
            obj,
            content_type=APPLY_PATCH,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
        )
        return result

    def patch(
        self,
        plural: str,
        namespace: str,
        name: str,
        patch: Any,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str = "",
        group: str | None = None,
    ) -> Obj:
        path = self.resource(plural, group).path(namespace, name, subresource)
        result: Obj = self.call("PATCH", path, patch, content_type=content_type)
        return result

    def delete(
        self, plural: str, namespace: str, name: str, options: Obj | None = None, *, group: str | None = None
    ) -> Obj:
        result: Obj = self.call("DELETE", self.resource(plural, group).path(namespace, name), options)
        return result

    def exists(self, plural: str, namespace: str, name: str, *, group: str | None = None) -> bool:
        try:
            self.get(plural, namespace, name, group=group)
        except KubeError as error:
            if error.code == 404:
                return False
            raise
        return True


def wait_until(condition: Callable[[], T | None], *, timeout: float, what: str = "", every: float = 0.1) -> T:
    """`condition()`'s first truthy value, asked every `every` seconds until `timeout`; else TimeoutError.

    The real API server has no in-process change signal: a test's wait polls
    the state it waits for, with a deadline, never sleeps a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not within {timeout} s: {what or condition}")
        time.sleep(every)
