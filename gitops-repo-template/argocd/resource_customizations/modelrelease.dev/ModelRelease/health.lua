-- Argo CD health of a modelrelease.dev ModelRelease, from the status its controller writes.
-- Uses only the base library: Argo CD runs argocd-cm scripts without the Lua standard libraries.
local hs = {}

local function stepText(status, spec)
  local index = status.currentStepIndex
  if index == nil then
    return ""
  end
  local total = nil
  if spec ~= nil and spec.strategy ~= nil and spec.strategy.canary ~= nil and spec.strategy.canary.steps ~= nil then
    total = #spec.strategy.canary.steps
  end
  -- 0-based like the controller's messages and kubectl's Step column, and Argo Rollouts' "3/5":
  -- "step 3/5" is the fourth of five steps, "5/5" all done (promoting).
  local text = "step " .. index
  if total ~= nil then
    text = text .. "/" .. total
  end
  return text .. ", canary weight " .. (status.canaryWeight or 0) .. "%"
end

local function joined(text, part)
  if part == nil or part == "" then
    return text
  end
  if text == "" then
    return part
  end
  return text .. ": " .. part
end

local function withMessage(prefix, status)
  return joined(joined(prefix, status.reason), status.message)
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the modelrelease controller to pick up the release"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation
  return hs
end

local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = withMessage("", status)
elseif phase == "Progressing" or phase == "Promoting" or phase == "Pending" then
  hs.status = "Progressing"
  hs.message = withMessage(stepText(status, obj.spec), status)
elseif phase == "Paused" or phase == "AwaitingApproval" then
  hs.status = "Suspended"
  hs.message = withMessage(stepText(status, obj.spec), status)
elseif phase == "RolledBack" or phase == "Failed" or phase == "Blocked" then
  hs.status = "Degraded"
  hs.message = withMessage(phase, status)
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. phase
end
return hs
