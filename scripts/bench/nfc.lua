-- wrk script: NFC taps of 1,000 cards as phones send them, `/r/CODE?m=UIDxCOUNTER`,
-- each card's counter rising. Each of wrk's threads taps its own half of the cards, in
-- turn, so two taps of one card are 500 requests apart and reach the server in order.
-- The requests (@ROUNDS@ rounds of the thread's 500 cards) are formatted once, before
-- the run: wrk shares the two cores with the server, so work done per request here
-- would be taken from the server. Past the last round a thread starts again, and those
-- taps are replays.
local next_id = 0

function setup(thread)
  thread:set("base", next_id * 500)
  next_id = next_id + 1
end

local reqs = {}
local n = 0

function init(args)
  for round = 1, @ROUNDS@ do
    for i = 0, 499 do
      local path = string.format("/r/@CODE@?m=04%012Xx%06X", base + i, round)
      reqs[#reqs + 1] = wrk.format("GET", path)
    end
  end
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
end
