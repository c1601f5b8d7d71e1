/**
 * One Lua script, one atomic call per operation. It mirrors `stores/memory.ts` operation for
 * operation (same refill, same rounding, same "full counts as absent" rule), so the conformance
 * suite can require identical results from both stores.
 *
 * KEYS[1] bucket hash {t, ts, c, r, nx, b}   KEYS[2] reservations hash {id -> "amount|expiresAt|createdAt"}
 * ARGV (trailing ones may be omitted; the hot \`take\` sends five):
 *   1 op, 2 capacity, 3 refillPerMs, 4 amount,
 *   5 deadline (server ms, '' = none): a call that runs after the caller gave up changes nothing,
 *   6 now ('' or absent = the Redis server clock), 7 maxDebt, 8 reservation id, 9 leaseMs.
 * Returns { ok (0/1), tokens, now, status, a, b }: tokens, a and b as %.17g strings (exact round
 * trip), now (server ms, rounded up) as an integer; the fast take path returns the first three.
 */
export const BUCKET_SCRIPT = `
local op = ARGV[1]
local cap = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local maxDebt = tonumber(ARGV[7] or '0')
local now
-- With caller time (tests), expiry in real time would mean nothing: keep keys a day instead.
local callerTime = ARGV[6] ~= nil and ARGV[6] ~= ''
local DAY = 86400000
if callerTime then
  now = tonumber(ARGV[6])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
if ARGV[5] ~= '' and now > tonumber(ARGV[5]) then
  return { 0, '0', math.ceil(now), 'late' }
end
local bk = KEYS[1]
local rk = KEYS[2]
local f = redis.call('HMGET', bk, 't', 'ts', 'c', 'r', 'nx', 'b')

-- Fast path for the common take: a stored, not yet full bucket of the same tier, no reservations.
-- It computes exactly what the general path below computes, without its closures.
if op == 'take' and f[1] and not f[5] and tonumber(f[3]) == cap and tonumber(f[4]) == rate then
  local tok = tonumber(f[1])
  local ts = tonumber(f[2])
  if now > ts then
    tok = tok + (now - ts) * rate
    ts = now
  end
  if tok < cap then
    if tok + 1e-9 < amount then
      return { 0, string.format('%.17g', tok), math.ceil(now) }
    end
    local left = 0
    if tok > amount then left = tok - amount end
    local leftText = string.format('%.17g', left)
    if amount > 0 then
      redis.call('HSET', bk, 't', leftText, 'ts', string.format('%.17g', ts))
      local ms = 0
      if left + 1e-9 < cap then
        ms = math.ceil((cap - 1e-9 - left) / rate)
        while left + ms * rate + 1e-9 < cap do ms = ms + 1 end
      end
      if callerTime then ms = DAY elseif ms < 1 then ms = 1 end
      redis.call('PEXPIRE', bk, ms)
    end
    return { 1, leftText, math.ceil(now) }
  end
end

local function fmt(x) return string.format('%.17g', x) end
local function refilled(tok, ts, c, r)
  if now > ts then tok = tok + (now - ts) * r end
  if tok > c then return c end
  return tok
end
local EPSILON = 1e-9
local function msUntil(tok, target, r)
  if tok + EPSILON >= target then return 0 end
  local ms = math.ceil((target - EPSILON - tok) / r)
  while tok + ms * r + EPSILON < target do ms = ms + 1 end
  return ms
end

local present = f[1] ~= false
local hadNx = f[5] ~= false
local tok, ts, oc, orate, nx, birth
if present then
  ts = tonumber(f[2]); oc = tonumber(f[3]); orate = tonumber(f[4]); birth = tonumber(f[6])
  if f[5] then nx = tonumber(f[5]) end
  tok = refilled(tonumber(f[1]), ts, oc, orate)
  if tok >= oc then
    present = false
    redis.call('DEL', bk)
  end
end
-- Unsettled reservations whose lease ended go back to the bucket they came from.
if present and nx and now >= nx then
  local all = redis.call('HGETALL', rk)
  nx = nil
  for i = 1, #all, 2 do
    local a, e, cr = string.match(all[i + 1], '^([^|]+)|([^|]+)|([^|]+)$')
    a = tonumber(a); e = tonumber(e); cr = tonumber(cr)
    if e <= now then
      redis.call('HDEL', rk, all[i])
      if present and cr >= birth then
        tok = tok + a
        if tok > oc then tok = oc end
        if tok >= oc then present = false end
      end
    elseif nx == nil or e < nx then
      nx = e
    end
  end
  if not present then
    redis.call('DEL', bk)
  else
    -- Persist the refunds now: the operation below may not write (a denial, a peek).
    if ts < now then ts = now end
    if nx then
      redis.call('HSET', bk, 't', fmt(tok), 'ts', fmt(ts), 'nx', fmt(nx))
    else
      redis.call('HSET', bk, 't', fmt(tok), 'ts', fmt(ts))
      redis.call('HDEL', bk, 'nx')
    end
    hadNx = nx ~= nil
    if callerTime then
      redis.call('PEXPIRE', bk, DAY)
    else
      redis.call('PEXPIRE', bk, math.max(1, msUntil(tok, oc, orate)))
    end
  end
end
local unclamped = tok
if present then
  if ts < now then ts = now end
  if tok > cap then tok = cap end
else
  tok = cap; ts = now; birth = now; nx = nil; hadNx = false
end

local function write(newTok)
  if newTok >= cap then
    redis.call('DEL', bk)
    return
  end
  if not present then
    birth = now
    ts = now
  end
  if present and oc == cap and orate == rate then
    -- The common case: same bucket, same tier: only tokens and time change.
    redis.call('HSET', bk, 't', fmt(newTok), 'ts', fmt(ts))
  else
    redis.call('HSET', bk, 't', fmt(newTok), 'ts', fmt(ts), 'c', fmt(cap), 'r', fmt(rate), 'b', fmt(birth))
  end
  if nx then
    redis.call('HSET', bk, 'nx', fmt(nx))
  elseif hadNx then
    redis.call('HDEL', bk, 'nx')
  end
  local ttl = msUntil(newTok, cap, rate)
  if ttl < 1 then ttl = 1 end
  if callerTime then ttl = DAY end
  redis.call('PEXPIRE', bk, ttl)
end

local function debit(amt)
  local floor = 0 - maxDebt
  local wanted = tok - amt
  local left = wanted
  if wanted < floor then
    if tok < floor then left = tok else left = floor end
  end
  local charged = tok - left
  if charged > 0 then write(left) end
  return charged, left
end

if op == 'take' or op == 'reserve' then
  if tok + EPSILON < amount then return { 0, fmt(tok), math.ceil(now), 'denied', '0', '0' } end
  local left = 0
  if tok > amount then left = tok - amount end
  if op == 'reserve' then
    local id = ARGV[8]
    local lease = tonumber(ARGV[9])
    local expires = now + lease
    redis.call('HSET', rk, id, fmt(amount) .. '|' .. fmt(expires) .. '|' .. fmt(now))
    local pttl = redis.call('PTTL', rk)
    local keep = math.ceil(lease) + 1000
    if callerTime then keep = DAY end
    if pttl < keep then redis.call('PEXPIRE', rk, keep) end
    if left < cap and (nx == nil or expires < nx) then nx = expires end
  end
  if amount > 0 then write(left) end
  return { 1, fmt(left), math.ceil(now), 'allowed', '0', '0' }
elseif op == 'settle' then
  local id = ARGV[8]
  local rec = redis.call('HGET', rk, id)
  if not rec then return { 0, fmt(tok), math.ceil(now), 'unknown', '0', '0' } end
  redis.call('HDEL', rk, id)
  local a, e = string.match(rec, '^([^|]+)|([^|]+)|')
  a = tonumber(a); e = tonumber(e)
  if e <= now then return { 0, fmt(tok), math.ceil(now), 'unknown', '0', '0' } end
  if amount <= a then
    if not present then return { 1, fmt(tok), math.ceil(now), 'settled', '0', '0' } end
    local after = tok + (a - amount)
    if after > cap then after = cap end
    local refunded = after - tok
    write(after)
    return { 1, fmt(after), math.ceil(now), 'settled', fmt(refunded), '0' }
  end
  local charged, left = debit(amount - a)
  return { 1, fmt(left), math.ceil(now), 'settled', '0', fmt(charged) }
elseif op == 'debit' then
  local charged, left = debit(amount)
  return { 1, fmt(left), math.ceil(now), 'charged', fmt(charged), fmt(amount - charged) }
elseif op == 'rescale' then
  if not present then return { 1, fmt(cap), math.ceil(now), 'ok', '0', '0' } end
  local scaled = unclamped * cap / oc
  write(scaled)
  return { 1, fmt(scaled), math.ceil(now), 'ok', '0', '0' }
elseif op == 'peek' then
  return { 1, fmt(tok), math.ceil(now), 'ok', '0', '0' }
end
return redis.error_reply('ERR unknown budget op ' .. tostring(op))
`;
