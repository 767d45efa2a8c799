"""Argo CD's Lua VM, as far as our scripts can tell: Lua 5.1, `obj` as a global, the chunk's value
returned — and, as Argo CD runs scripts from argocd-cm, with only the base, table and package
libraries plus a safe `os` (time and date) when the standard libraries are off (util/lua/lua.go).
"""

from __future__ import annotations

from typing import Any

from lupa import lua51

# What Argo CD leaves when useOpenLibs is false; the string methods go with the string library.
STRIP_STANDARD_LIBRARIES = """
local safe_os = {time = os.time, date = os.date}
debug.setmetatable("", nil)
string, math, io, debug, coroutine = nil, nil, nil, nil, nil
os = safe_os
for _, name in ipairs({"string", "math", "io", "debug", "coroutine"}) do package.loaded[name] = nil end
package.loaded.os = safe_os
"""


def run(script: str, obj: dict[str, Any], *, open_libs: bool) -> Any:
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    if not open_libs:
        runtime.execute(STRIP_STANDARD_LIBRARIES)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    return to_python(runtime.execute(script))


def to_python(value: Any) -> Any:
    """A Lua table as JSON would carry it: a list when its keys are 1..n, else a dict."""
    if lua51.lua_type(value) != "table":
        return value
    items = {key: to_python(item) for key, item in value.items()}
    if items and all(isinstance(k, int) for k in items) and sorted(items) == list(range(1, len(items) + 1)):
        return [items[k] for k in range(1, len(items) + 1)]
    if not items:
        return {}
    return {str(key): item for key, item in items.items()}
