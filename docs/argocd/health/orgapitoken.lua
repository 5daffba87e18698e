-- Argo CD health of an OrgApiToken (org.alien.club/v1alpha1): status.phase and the conditions.
-- Active: Healthy (the message adds Stale and ExpiringSoon when they are True). Revoked (final, never
-- restored): Suspended. Expired and Failed: Degraded. Pending: Progressing while it waits for its
-- service account, Degraded when it cannot be issued as specified. No status yet, or an older
-- generation observed: Progressing. Revoked and Expired come before the generation check: the operator
-- no longer reconciles a final token, so an edit to one is never observed.
local blocked = {
  OrganizationNotEnterprise = true,
  ManagedUsersCannotHoldTokens = true,
  InvalidSpec = true,
  SecretConflict = true,
}
local hs = {status = "Progressing", message = "Waiting for the operator to issue the token"}
local status = obj.status
if status == nil then
  return hs
end
local found = {}
for _, condition in ipairs(status.conditions or {}) do
  found[condition.type] = condition
end
local ready = found["Ready"]
local function explain(fallback)
  if ready == nil then
    return fallback
  end
  return (ready.reason or fallback) .. ": " .. (ready.message or "")
end
local phase = status.phase or "Pending"
if phase == "Revoked" then
  hs.status = "Suspended"
  hs.message = "Revoked (" .. (status.revocationReason or "deleted") .. ") at " .. (status.revokedAt or "unknown time")
  return hs
end
if phase == "Expired" then
  hs.status = "Degraded"
  hs.message = "Expired at " .. (status.expiresAt or "unknown time") .. ": issue a new OrgApiToken"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
if phase == "Failed" or (ready ~= nil and ready.status == "False" and blocked[ready.reason]) then
  hs.status = "Degraded"
  hs.message = explain("Failed")
elseif phase == "Pending" then
  hs.message = explain("Pending")
elseif phase == "Active" then
  if ready ~= nil and ready.status == "False" then
    hs.status = "Degraded"
    hs.message = explain("NotReady")
  else
    hs.status = "Healthy"
    hs.message = "Token " .. (status.tokenId or "") .. " is in Secret " .. (status.secretName or "")
    if status.expiresAt ~= nil then
      hs.message = hs.message .. ", expires " .. status.expiresAt
    end
    for _, type in ipairs({"ExpiringSoon", "Stale"}) do
      local condition = found[type]
      if condition ~= nil and condition.status == "True" then
        hs.message = hs.message .. "; " .. type .. ": " .. (condition.message or "")
      end
    end
  end
end
return hs
