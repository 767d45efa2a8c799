"""A small JSON client over the official `kubernetes` client's transport, for any kind by path.

The generated typed APIs would give each kind its own model classes; the controller works with
plain JSON objects (Deployments, Services, HTTPRoutes, VirtualServices, our CRs) the same way, so it
uses the client's configuration, auth and connection pool and speaks JSON itself.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import kubernetes
import urllib3
import yaml

from controller import errors

# The process id tells two replicas apart in an API server's audit log.
USER_AGENT = f"modelrelease-controller (pid {os.getpid()})"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

Obj = dict[str, Any]


def build_path(
    api_version: str, plural: str, namespace: str | None, name: str | None = None, sub: str | None = None
) -> str:
    prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    parts = [prefix]
    if namespace:
        parts.append(f"namespaces/{quote(namespace)}")
    parts.append(plural)
    if name:
        parts.append(quote(name))
    if sub:
        parts.append(sub)
    return "/".join(parts)


class KubeApi:
    def __init__(self, api_client: Any, *, timeout: float = 10.0) -> None:
        self._client = api_client
        self._client.user_agent = USER_AGENT
        self._timeout = timeout
        # Told (method, HTTP code; 0 for no answer) of each call that fails: the metrics count them.
        self.on_failure: Callable[[str, int], None] | None = None

    @property
    def configuration(self) -> Any:
        return self._client.configuration

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | None = None,
        *,
        context: str | None = None,
        timeout: float = 10.0,
        connections: int | None = None,
    ) -> KubeApi:
        """`connections`: HTTP connections kept to the API server, one per thread that may call at
        once (the client's default, 5 per core, makes extra threads open and drop connections)."""
        configuration = kubernetes.client.Configuration()
        if connections is not None:
            configuration.connection_pool_maxsize = connections
        try:
            try:
                kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=path, context=context, client_configuration=configuration
                )
            except kubernetes.config.ConfigException:
                if path is not None or context is not None:
                    raise  # asked for a kubeconfig: falling back to in-cluster would hide the mistake
                kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
        except (kubernetes.config.ConfigException, OSError, yaml.YAMLError) as error:
            raise errors.ConfigError(str(error)) from error
        return cls(kubernetes.client.ApiClient(configuration), timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        url = self._client.configuration.host + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type, "User-Agent": USER_AGENT}
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                response = self._client.rest_client.pool_manager.request(
                    method,
                    url,
                    body=None if body is None else json.dumps(body),
                    headers=headers,
                    timeout=urllib3.Timeout(total=self._timeout),
                    retries=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                self._failed(method, 0)
                raise errors.UnavailableError(f"{method} {path}: {exc}") from exc
            wait = _throttled_for(response)
            if wait is None or attempt == THROTTLE_RETRIES:
                break
            time.sleep(wait)  # the server said when to come back; the request was not processed
        text = response.data.decode() if response.data else ""
        if 200 <= response.status < 300:
            return json.loads(text) if text else {}
        self._failed(method, response.status)
        raise _error(method, path, response.status, text)

    def _failed(self, method: str, code: int) -> None:
        # 404 and 409 are answers the controller expects (not there yet; written meanwhile, exists).
        if self.on_failure is not None and code not in (404, 409):
            self.on_failure(method, code)

    def stream(self, path: str, query: dict[str, str]) -> Iterator[Obj]:
        """A watch: one decoded event per line until the server ends the response."""
        url = self._client.configuration.host + path + f"?{urlencode(query)}"
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        try:
            response = self._client.rest_client.pool_manager.request(
                "GET",
                url,
                headers=headers,
                preload_content=False,
                retries=False,
                timeout=urllib3.Timeout(connect=self._timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            self._failed("WATCH", 0)
            raise errors.UnavailableError(f"GET {path}: {exc}") from exc
        if not 200 <= response.status < 300:
            self._failed("WATCH", response.status)
            raise _error("GET", path, response.status, response.data.decode())
        pending = b""
        try:
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, json.JSONDecodeError) as exc:
            # The connection broke or the server sent half a line: the watch ended, not the program.
            raise errors.UnavailableError(f"GET {path}: the watch broke off: {exc}") from exc
        finally:
            response.release_conn()

    def get(self, path: str, query: dict[str, str] | None = None) -> Obj:
        return self.request("GET", path, query=query)

    def create(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body=body)

    def merge_patch(self, path: str, body: Obj) -> Obj:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def delete(self, path: str, body: Obj | None = None) -> Obj:
        return self.request("DELETE", path, body=body)

    def list_in(self, api_version: str, plural: str, namespaces: tuple[str, ...]) -> list[Obj]:
        """The objects in these namespaces, or in all of them when none are named."""
        return [
            item
            for namespace in namespaces or (None,)
            for item in self.get(build_path(api_version, plural, namespace)).get("items") or []
        ]


# A 429 with Retry-After means the API server did not process the request and says when to come
# back: priority-and-fairness throttling, or a resource whose storage is still initializing (every
# list of a just-established CRD, for a moment). client-go retries these by itself; so do we, a few
# times and never for long, so a reconcile stays short and a longer outage fails as UnavailableError.
THROTTLE_RETRIES = 3
THROTTLE_WAIT_MAX = 5.0


def _throttled_for(response: Any) -> float | None:
    """Seconds to wait before asking again, when the answer is a 429 that says; None otherwise."""
    if response.status != 429:
        return None
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), THROTTLE_WAIT_MAX)
    except ValueError:
        return None  # no (or an HTTP-date) Retry-After: fail now, the next reconcile retries


def _error(method: str, path: str, code: int, text: str) -> errors.ModelReleaseError:
    try:
        message = json.loads(text).get("message", text)
    except ValueError:
        message = text
    where = f"{method} {path}: {code} {message}"
    if code == 409:
        return errors.ConflictError(where)
    if code == 404:
        return errors.NotFoundError(where)
    if code in (400, 413, 415, 422):  # 413: this body is too large, and will be next time too
        return errors.InvalidError(where)
    if code in (401, 403):
        return errors.ForbiddenError(where)
    return errors.UnavailableError(where)


def kubeconfig_context(path: str | None, context: str | None) -> dict[str, Any]:
    """The named (else the current) context of a kubeconfig; empty when there is none to read."""
    try:
        contexts, active = kubernetes.config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError, yaml.YAMLError):
        return {}
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return dict((chosen or {}).get("context") or {})
