-- The ModelRelease actions Argo CD offers, enabled in the phases where the controller acts on them.
local actions = {}
local phase = nil
if obj.status ~= nil then
  phase = obj.status.phase
end
local rollingOut = phase == "Progressing" or phase == "Paused" or phase == "AwaitingApproval" or phase == "Promoting"
local ended = phase == "RolledBack" or phase == "Failed" or phase == "Blocked"
actions["promote"] = {["disabled"] = not rollingOut}
actions["promote-full"] = {["disabled"] = not rollingOut}
actions["abort"] = {["disabled"] = not rollingOut}
actions["retry"] = {["disabled"] = not ended}
return actions
