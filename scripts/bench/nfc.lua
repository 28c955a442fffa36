-- wrk script: NFC taps of 1,000 cards as phones send them, `/r/CODE?m=UIDxCOUNTER`,
-- each card's counter rising. Each of wrk's threads taps its own half of the cards, in
-- turn, so two taps of one card are 500 requests apart and reach the server in order.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("base", next_id * 500)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local n = 0

function request()
  local card = base + (n % 500)
  local counter = math.floor(n / 500) + 1
  n = n + 1
  local path = string.format("/r/@CODE@?m=04%012Xx%06X", card, counter)
  return wrk.format("GET", path)
end
