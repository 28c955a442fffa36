-- wrk script: member check-ins at the counter, `POST /api/kiosk/check-in` with the card's
-- URL and its mirror, 1,000 member cards each with a rising counter. Each of wrk's
-- threads taps its own half of the cards in turn, so two taps of one card are 500
-- requests apart and reach the server in order (a counter that did not rise would be
-- refused as a copy; the bench counts refusals afterwards, and there must be none).
-- @TOKEN@ (the kiosk's bearer) and @CODES@ (the members' page codes, by card, comma-
-- separated) are filled in by scripts/bench-checkin.sh.
local threads = {}
local next_id = 0
local codes = {}
for c in string.gmatch("@CODES@", "[^,]+") do table.insert(codes, c) end

function setup(thread)
  thread:set("base", next_id * 500)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local n = 0

function init(args)
  wrk.headers["Authorization"] = "Bearer @TOKEN@"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local card = base + (n % 500)
  local counter = math.floor(n / 500) + 1
  n = n + 1
  local url = string.format("https://book.example.com/m/%s?m=04%012Xx%06X", codes[card + 1], card, counter)
  return wrk.format("POST", "/api/kiosk/check-in", nil, '{"url":"' .. url .. '"}')
end
