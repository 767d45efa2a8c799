-- The ModelRelease actions Argo CD offers, enabled in the phases where the controller acts on them.
local actions = {}
local phase = nil
if obj.status ~= nil then
  phase = obj.status.phase
end
local rollingOut = phase == "Progressing" or phase == "Paused" or phase == "AwaitingApproval" or phase == "Promoting"
-- Retry rolls a rolled-back or failed revision out again. A Blocked release is looked at again on
-- every reconcile, and an invalid spec needs a fix in Git: retry would change nothing there.
local reason = nil
if obj.status ~= nil then
  reason = obj.status.reason
end
local ended = phase == "RolledBack" or (phase == "Failed" and reason ~= "InvalidSpec")
actions["promote"] = {["disabled"] = not rollingOut}
actions["promote-full"] = {["disabled"] = not rollingOut}
actions["abort"] = {["disabled"] = not rollingOut}
actions["retry"] = {["disabled"] = not ended}
return actions
