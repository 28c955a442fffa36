-- wrk script: NFC taps of 1,000 NTAG 424 DNA cards as phones send them,
-- `/r/CODE?e=<PICCData>&c=<MAC>`, each card's counter rising. The URLs are made ahead
-- (server/examples/sun_bench.rs urls): wrk's thread N taps the cards of @DIR@/sun-N.txt
-- in file order, so two taps of one card are 500 requests apart and arrive in order.
-- Past the end of its file a thread starts again, and those taps are replays.
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

local paths = {}
local n = 0

function init(args)
  for line in io.lines(string.format("@DIR@/sun-%d.txt", id)) do
    paths[#paths + 1] = line
  end
end

function request()
  n = n + 1
  return wrk.format("GET", paths[(n - 1) % #paths + 1])
end
