-- Argo CD health of an OrgServiceAccount (org.alien.club/v1alpha1): status.phase and the Ready condition.
-- Active: Healthy. Locked (spec.active false): Suspended. Ready False (OrganizationNotEnterprise,
-- InvalidSpec, DuplicateEmail): Degraded. No status yet, or an older generation observed: Progressing.
local hs = {status = "Progressing", message = "Waiting for the operator to report a status"}
local status = obj.status
if status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local ready = nil
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
elseif status.phase == "Locked" then
  hs.status = "Suspended"
  hs.message = "Locked: spec.active is false and all its tokens are revoked"
elseif status.phase == "Active" then
  hs.status = "Healthy"
  hs.message = "Active, " .. (status.activeTokens or 0) .. " active tokens"
end
return hs
