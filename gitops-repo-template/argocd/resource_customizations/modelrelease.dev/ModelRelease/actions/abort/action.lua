-- abort: the annotation `kubectl modelrelease abort` sets. Its value is a fresh token (the object's
-- resourceVersion changes with every write), and the controller acts once per token.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrelease.dev/command-abort"] = "argocd-" .. (obj.metadata.resourceVersion or "0")
return obj
