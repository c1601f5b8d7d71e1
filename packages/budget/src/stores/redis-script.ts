/**
 * One Lua script, one atomic call per operation. It mirrors `stores/memory.ts` operation for
 * operation (same refill, same rounding, same "full counts as absent" rule), so the conformance
 * suite can require identical results from both stores.
 *
 * KEYS[1] bucket hash {t, ts, c, r, nx, b}   KEYS[2] reservations hash {id -> "amount|expiresAt|createdAt"}
 * ARGV: op, capacity, refillPerMs, maxDebt, amount, now ('' = Redis server clock), id, leaseMs,
 *       deadline (server ms; '' = none): a call that runs after the caller gave up changes nothing.
 * Returns { ok (0/1), tokens, a, b, status, now } with numbers as %.17g strings (exact round trip).
 */
export const BUCKET_SCRIPT = `
local op = ARGV[1]
local cap = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local maxDebt = tonumber(ARGV[4])
local amount = tonumber(ARGV[5])
local now
-- With caller time (tests), expiry in real time would mean nothing: keep keys a day instead.
local callerTime = ARGV[6] ~= ''
local DAY = 86400000
if ARGV[6] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[6])
end
if ARGV[9] ~= nil and ARGV[9] ~= '' and now > tonumber(ARGV[9]) then
  return { 0, '0', '0', '0', 'late', string.format('%.17g', now) }
end
local bk = KEYS[1]
local rk = KEYS[2]
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

local f = redis.call('HMGET', bk, 't', 'ts', 'c', 'r', 'nx', 'b')
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
  if tok + EPSILON < amount then return { 0, fmt(tok), '0', '0', 'denied', fmt(now) } end
  local left = 0
  if tok > amount then left = tok - amount end
  if op == 'reserve' then
    local id = ARGV[7]
    local lease = tonumber(ARGV[8])
    local expires = now + lease
    redis.call('HSET', rk, id, fmt(amount) .. '|' .. fmt(expires) .. '|' .. fmt(now))
    local pttl = redis.call('PTTL', rk)
    local keep = math.ceil(lease) + 1000
    if callerTime then keep = DAY end
    if pttl < keep then redis.call('PEXPIRE', rk, keep) end
    if left < cap and (nx == nil or expires < nx) then nx = expires end
  end
  if amount > 0 then write(left) end
  return { 1, fmt(left), '0', '0', 'allowed', fmt(now) }
elseif op == 'settle' then
  local id = ARGV[7]
  local rec = redis.call('HGET', rk, id)
  if not rec then return { 0, fmt(tok), '0', '0', 'unknown', fmt(now) } end
  redis.call('HDEL', rk, id)
  local a, e = string.match(rec, '^([^|]+)|([^|]+)|')
  a = tonumber(a); e = tonumber(e)
  if e <= now then return { 0, fmt(tok), '0', '0', 'unknown', fmt(now) } end
  if amount <= a then
    if not present then return { 1, fmt(tok), '0', '0', 'settled', fmt(now) } end
    local after = tok + (a - amount)
    if after > cap then after = cap end
    local refunded = after - tok
    write(after)
    return { 1, fmt(after), fmt(refunded), '0', 'settled', fmt(now) }
  end
  local charged, left = debit(amount - a)
  return { 1, fmt(left), '0', fmt(charged), 'settled', fmt(now) }
elseif op == 'debit' then
  local charged, left = debit(amount)
  return { 1, fmt(left), fmt(charged), fmt(amount - charged), 'charged', fmt(now) }
elseif op == 'rescale' then
  if not present then return { 1, fmt(cap), '0', '0', 'ok', fmt(now) } end
  local scaled = unclamped * cap / oc
  write(scaled)
  return { 1, fmt(scaled), '0', '0', 'ok', fmt(now) }
elseif op == 'peek' then
  return { 1, fmt(tok), '0', '0', 'ok', fmt(now) }
end
return redis.error_reply('ERR unknown budget op ' .. tostring(op))
`;
