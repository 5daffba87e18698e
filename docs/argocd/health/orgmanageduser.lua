-- Argo CD health of an OrgManagedUser (org.alien.club/v1alpha1): status.phase and the conditions.
-- Active: Healthy, unless the Ready condition is False (Authentik unreachable or refusing) or the
-- password-reset email could not be sent: Degraded. Locked: Suspended. Failed: Degraded. Pending:
-- Progressing, or Degraded when only an administrator can unblock it (plan label, Authentik settings).
-- No status yet, or an older generation observed: Progressing.
local blocked = {
  OrganizationNotEnterprise = true,
  IdentityProviderNotConfigured = true,
  IdentityProviderUnauthorized = true,
}
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
local found = {}
for _, condition in ipairs(status.conditions or {}) do
  found[condition.type] = condition
end
local ready = found["Ready"]
local email = found["PasswordResetEmailSent"]
local function explain(condition)
  return (condition.reason or "NotReady") .. ": " .. (condition.message or "")
end
local phase = status.phase or "Pending"
if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = ready ~= nil and explain(ready) or "Failed"
elseif phase == "Pending" then
  if ready ~= nil then
    hs.message = explain(ready)
    if blocked[ready.reason] then
      hs.status = "Degraded"
    end
  end
elseif ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = explain(ready)
elseif phase == "Locked" then
  hs.status = "Suspended"
  hs.message = "Locked: deactivated in Authentik (spec.active is false)"
elseif phase == "Active" then
  if email ~= nil and email.status == "False" then
    hs.status = "Degraded"
    hs.message = "Password-reset email not sent, " .. explain(email)
  else
    hs.status = "Healthy"
    hs.message = ready ~= nil and ready.message or "Active"
  end
end
return hs
