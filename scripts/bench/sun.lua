-- wrk script: NFC taps of 1,000 NTAG 424 DNA cards as phones send them,
-- `/r/CODE?e=<PICCData>&c=<MAC>`, each card's counter rising. The URLs are made ahead
-- (server/examples/sun_bench.rs urls): wrk's thread N taps the cards of @DIR@/sun-N.txt
-- in file order, so two taps of one card are 500 requests apart and arrive in order.
-- Past the end of its file a thread starts again, and those taps are replays.
-- The requests are formatted once, before the run, as in nfc.lua: wrk shares the two
-- cores with the server, so work done per request here would be taken from the server.
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local reqs = {}
local n = 0

function init(args)
  for line in io.lines(string.format("@DIR@/sun-%d.txt", id)) do
    reqs[#reqs + 1] = wrk.format("GET", line)
  end
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
end
